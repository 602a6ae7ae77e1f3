//! LimitRanger: a namespace's LimitRanges give containers default requests and limits on create
//! (noted in the `kubernetes.io/limit-ranger` annotation) and refuse pods and claims outside
//! their min, max and limit/request ratio.

use serde_json::{json, Map, Value};
use skiff_api::quantity::{from_json, milli_value};

/// The annotation naming what the plugin set.
const ANNOTATION: &str = "kubernetes.io/limit-ranger";

/// Items of `ranges` of the given type (`Container`, `Pod`, `PersistentVolumeClaim`).
fn items<'a>(ranges: &'a [&'a Value], ty: &'a str) -> impl Iterator<Item = &'a Value> + 'a {
    ranges
        .iter()
        .flat_map(|r| r["spec"]["limits"].as_array().into_iter().flatten())
        .filter(move |i| i["type"].as_str() == Some(ty))
}

/// Fills containers' missing requests and limits from the Container items' defaults.
pub fn default_pod(pod: &mut Value, ranges: &[&Value]) {
    let mut limits = Map::new();
    let mut requests = Map::new();
    for item in items(ranges, "Container") {
        for (field, into) in [("default", &mut limits), ("defaultRequest", &mut requests)] {
            for (k, v) in item[field].as_object().into_iter().flatten() {
                into.entry(k.clone()).or_insert(v.clone());
            }
        }
    }
    if limits.is_empty() && requests.is_empty() {
        return;
    }
    let mut notes = Vec::new();
    for (field, what) in [("containers", "container"), ("initContainers", "init container")] {
        let Some(list) = pod["spec"][field].as_array_mut() else {
            continue;
        };
        for c in list {
            let name = c["name"].as_str().unwrap_or_default().to_string();
            let Some(c) = c.as_object_mut() else { continue };
            let res = c.entry("resources").or_insert_with(|| json!({}));
            let set_requests = fill(res, "requests", &requests);
            let set_limits = fill(res, "limits", &limits);
            if !set_requests.is_empty() {
                notes.push(format!("{} request for {what} {name}", set_requests.join(", ")));
            }
            if !set_limits.is_empty() {
                notes.push(format!("{} limit for {what} {name}", set_limits.join(", ")));
            }
        }
    }
    if notes.is_empty() {
        return;
    }
    if let Some(meta) = pod["metadata"].as_object_mut() {
        let annotations = meta.entry("annotations").or_insert_with(|| json!({}));
        if let Some(a) = annotations.as_object_mut() {
            a.insert(
                ANNOTATION.into(),
                json!(format!("LimitRanger plugin set: {}", notes.join("; "))),
            );
        }
    }
}

/// Sets the defaults a container's `field` lacks; returns the names set, sorted.
fn fill(res: &mut Value, field: &str, defaults: &Map<String, Value>) -> Vec<String> {
    if defaults.is_empty() {
        return vec![];
    }
    let Some(res) = res.as_object_mut() else { return vec![] };
    let list = res.entry(field).or_insert_with(|| json!({}));
    let Some(list) = list.as_object_mut() else {
        return vec![];
    };
    let mut set: Vec<String> = Vec::new();
    for (k, v) in defaults {
        if !list.contains_key(k) {
            list.insert(k.clone(), v.clone());
            set.push(k.clone());
        }
    }
    set.sort();
    set
}

/// Checks a pod or claim against the ranges; `Err` is the forbidden reason, several joined as
/// upstream's aggregate error (`[a, b]`).
pub fn validate(plural: &str, obj: &Value, ranges: &[&Value]) -> Result<(), String> {
    let mut errs = Vec::new();
    match plural {
        "pods" => {
            for item in items(ranges, "Container") {
                for field in ["containers", "initContainers"] {
                    for c in obj["spec"][field].as_array().into_iter().flatten() {
                        let r = &c["resources"];
                        check(item, "Container", &r["requests"], &r["limits"], &mut errs);
                    }
                }
            }
            for item in items(ranges, "Pod") {
                let (requests, limits) = (pod_total(obj, "requests"), pod_total(obj, "limits"));
                check(item, "Pod", &requests, &limits, &mut errs);
            }
        }
        "persistentvolumeclaims" => {
            let requests = &obj["spec"]["resources"]["requests"];
            for item in items(ranges, "PersistentVolumeClaim") {
                check(item, "PersistentVolumeClaim", requests, &Value::Null, &mut errs);
            }
        }
        _ => {}
    }
    match errs.len() {
        0 => Ok(()),
        1 => Err(errs.remove(0)),
        _ => Err(format!("[{}]", errs.join(", "))),
    }
}

/// A pod's summed requests or limits, as quantity strings in thousandths (`1500m`).
fn pod_total(pod: &Value, field: &str) -> Value {
    let mut sum: Map<String, Value> = Map::new();
    let mut totals: std::collections::BTreeMap<String, i64> = Default::default();
    for c in pod["spec"]["containers"].as_array().into_iter().flatten() {
        for (k, v) in c["resources"][field].as_object().into_iter().flatten() {
            *totals.entry(k.clone()).or_default() += milli_value(&from_json(v).unwrap_or_default());
        }
    }
    for (k, v) in totals {
        sum.insert(k, json!(format!("{v}m")));
    }
    Value::Object(sum)
}

/// upstream `minConstraint`, `maxConstraint` and `limitRequestRatioConstraint` for one item.
fn check(item: &Value, ty: &str, requests: &Value, limits: &Value, errs: &mut Vec<String>) {
    let get = |l: &Value, k: &str| from_json(&l[k]).map(|s| (s.clone(), milli_value(&s)));
    for (k, min) in item["min"].as_object().into_iter().flatten() {
        let min_s = &from_json(min).unwrap_or_default();
        let enforced = milli_value(min_s);
        match (get(requests, k), get(limits, k)) {
            (None, _) => errs.push(format!(
                "minimum {k} usage per {ty} is {min_s}.  No request is specified"
            )),
            (Some((req, r)), _) if r < enforced => {
                errs.push(format!("minimum {k} usage per {ty} is {min_s}, but request is {req}"))
            }
            (_, Some((lim, l))) if l < enforced => {
                errs.push(format!("minimum {k} usage per {ty} is {min_s}, but limit is {lim}"))
            }
            _ => {}
        }
    }
    for (k, max) in item["max"].as_object().into_iter().flatten() {
        let max_s = &from_json(max).unwrap_or_default();
        let enforced = milli_value(max_s);
        // upstream `maxRequestConstraint`: a claim has only requests to hold against max.
        if ty == "PersistentVolumeClaim" {
            match get(requests, k) {
                None => errs.push(format!(
                    "maximum {k} usage per {ty} is {max_s}.  No request is specified"
                )),
                Some((req, r)) if r > enforced => {
                    errs.push(format!("maximum {k} usage per {ty} is {max_s}, but request is {req}"))
                }
                _ => {}
            }
            continue;
        }
        match (get(requests, k), get(limits, k)) {
            (_, None) => errs.push(format!("maximum {k} usage per {ty} is {max_s}.  No limit is specified")),
            (_, Some((lim, l))) if l > enforced => {
                errs.push(format!("maximum {k} usage per {ty} is {max_s}, but limit is {lim}"))
            }
            (Some((req, r)), _) if r > enforced => {
                errs.push(format!("maximum {k} usage per {ty} is {max_s}, but request is {req}"))
            }
            _ => {}
        }
    }
    for (k, ratio) in item["maxLimitRequestRatio"].as_object().into_iter().flatten() {
        let ratio_s = &from_json(ratio).unwrap_or_default();
        let req = get(requests, k).map(|r| r.1).filter(|r| *r != 0);
        let lim = get(limits, k).map(|l| l.1).filter(|l| *l != 0);
        match (req, lim) {
            (None, _) => errs.push(format!(
                "{k} max limit to request ratio per {ty} is {ratio_s}, but no request is specified or request is 0"
            )),
            (_, None) => errs.push(format!(
                "{k} max limit to request ratio per {ty} is {ratio_s}, but no limit is specified or limit is 0"
            )),
            (Some(r), Some(l)) => {
                let observed = l as f64 / r as f64;
                if observed * 1000.0 > milli_value(ratio_s) as f64 {
                    errs.push(format!(
                        "{k} max limit to request ratio per {ty} is {ratio_s}, but provided ratio is {observed:.6}"
                    ));
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_fill_what_containers_lack_and_say_so() {
        let range = json!({"spec": {"limits": [{"type": "Container",
            "default": {"cpu": "500m", "memory": "256Mi"}, "defaultRequest": {"cpu": "100m", "memory": "128Mi"}}]}});
        let mut pod = json!({"metadata": {"name": "p"}, "spec": {"containers": [
            {"name": "a", "resources": {"limits": {"cpu": "1"}, "requests": {"cpu": "1"}}},
            {"name": "b"}]}});
        default_pod(&mut pod, &[&range]);
        assert_eq!(pod["spec"]["containers"][0]["resources"]["limits"]["cpu"], "1");
        assert_eq!(pod["spec"]["containers"][0]["resources"]["limits"]["memory"], "256Mi");
        assert_eq!(pod["spec"]["containers"][1]["resources"]["requests"]["cpu"], "100m");
        assert_eq!(
            pod["metadata"]["annotations"][ANNOTATION],
            "LimitRanger plugin set: memory request for container a; memory limit for container a; \
             cpu, memory request for container b; cpu, memory limit for container b"
        );
    }

    #[test]
    fn limits_are_enforced_with_upstream_messages() {
        let range = json!({"spec": {"limits": [
            {"type": "Container", "min": {"cpu": "100m"}, "max": {"cpu": "1"}, "maxLimitRequestRatio": {"cpu": "2"}},
            {"type": "PersistentVolumeClaim", "max": {"storage": "1Gi"}}]}});
        let pod = |req: &str, lim: &str| json!({"spec": {"containers": [{"name": "c", "resources": {"requests": {"cpu": req}, "limits": {"cpu": lim}}}]}});
        let cases = [
            ("inside", pod("500m", "1"), Ok(())),
            (
                "below min",
                pod("50m", "100m"),
                Err("minimum cpu usage per Container is 100m, but request is 50m".to_string()),
            ),
            (
                "over max and ratio",
                pod("500m", "2"),
                Err("[maximum cpu usage per Container is 1, but limit is 2, \
                     cpu max limit to request ratio per Container is 2, but provided ratio is 4.000000]"
                    .to_string()),
            ),
            (
                "no limit",
                json!({"spec": {"containers": [{"name": "c", "resources": {"requests": {"cpu": "200m"}}}]}}),
                Err("[maximum cpu usage per Container is 1.  No limit is specified, \
                     cpu max limit to request ratio per Container is 2, but no limit is specified or limit is 0]"
                    .to_string()),
            ),
        ];
        for (name, obj, want) in cases {
            assert_eq!(validate("pods", &obj, &[&range]), want, "{name}");
        }
        let pvc = json!({"spec": {"resources": {"requests": {"storage": "2Gi"}}}});
        assert_eq!(
            validate("persistentvolumeclaims", &pvc, &[&range]),
            Err("maximum storage usage per PersistentVolumeClaim is 1Gi, but request is 2Gi".to_string())
        );
    }
}
