//! What an object costs against a ResourceQuota (upstream `pkg/quota/v1/evaluator/core` and the
//! generic object-count evaluator), shared by quota admission and the quota controller.

use std::collections::BTreeMap;

use serde_json::Value;

use crate::quantity::{format_milli, from_json, is_binary, milli_value};

/// An amount of one quota resource, in thousandths, remembering whether it prints in binary.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Amount {
    /// The amount times 1000.
    pub milli: i64,
    /// Printed with binary suffixes (memory, storage).
    pub binary: bool,
}

impl Amount {
    /// A count of objects.
    pub fn count(n: i64) -> Amount {
        Amount {
            milli: n * 1000,
            binary: false,
        }
    }

    /// Parses a quantity string (0 when unparsable).
    pub fn parse(q: &str) -> Amount {
        Amount {
            milli: milli_value(q),
            binary: is_binary(q),
        }
    }

    fn plus(self, other: Amount) -> Amount {
        Amount {
            milli: self.milli.saturating_add(other.milli),
            binary: self.binary || other.binary,
        }
    }
}

impl std::fmt::Display for Amount {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&format_milli(self.milli, self.binary))
    }
}

/// Resource name → amount.
pub type Usage = BTreeMap<String, Amount>;

/// Adds `b` into `a`.
pub fn add(a: &mut Usage, b: &Usage) {
    for (k, v) in b {
        let e = a.entry(k.clone()).or_default();
        *e = e.plus(*v);
    }
}

/// Parses a `ResourceList` (`{"cpu": "1", …}`).
pub fn parse_list(list: &Value) -> Usage {
    list.as_object()
        .map(|m| {
            m.iter()
                .filter_map(|(k, v)| Some((k.clone(), Amount::parse(&from_json(v)?))))
                .collect()
        })
        .unwrap_or_default()
}

/// Prints a usage as a `ResourceList`.
pub fn to_list(u: &Usage) -> Value {
    Value::Object(
        u.iter()
            .map(|(k, v)| (k.clone(), Value::String(v.to_string())))
            .collect(),
    )
}

/// upstream `prettyPrint`: `a=1,b=2Gi`, sorted by name.
pub fn pretty(u: &Usage) -> String {
    u.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join(",")
}

/// The object-count resource name of a kind (`count/pods`, `count/deployments.apps`).
pub fn count_name(group: &str, plural: &str) -> String {
    if group.is_empty() {
        format!("count/{plural}")
    } else {
        format!("count/{plural}.{group}")
    }
}

/// The legacy object-count name of the core kinds that have one.
fn legacy_count_name(group: &str, plural: &str) -> Option<&'static str> {
    if !group.is_empty() {
        return None;
    }
    Some(match plural {
        "pods" => "pods",
        "services" => "services",
        "configmaps" => "configmaps",
        "secrets" => "secrets",
        "persistentvolumeclaims" => "persistentvolumeclaims",
        "replicationcontrollers" => "replicationcontrollers",
        "resourcequotas" => "resourcequotas",
        _ => return None,
    })
}

const STORAGE_CLASS_SUFFIX: &str = ".storageclass.storage.k8s.io/";

/// Which of a quota's resource names the evaluator of `group`/`plural` accounts for.
pub fn matching_resources<'a>(group: &str, plural: &str, names: impl IntoIterator<Item = &'a String>) -> Vec<String> {
    let count = count_name(group, plural);
    let legacy = legacy_count_name(group, plural);
    names
        .into_iter()
        .filter(|n| {
            if **n == count || Some(n.as_str()) == legacy {
                return true;
            }
            match (group, plural) {
                ("", "pods") => is_pod_compute(n),
                ("", "services") => n.as_str() == "services.nodeports" || n.as_str() == "services.loadbalancers",
                ("", "persistentvolumeclaims") => {
                    n.as_str() == "requests.storage"
                        || n.contains(STORAGE_CLASS_SUFFIX)
                            && (n.ends_with("/requests.storage") || n.ends_with("/persistentvolumeclaims"))
                }
                _ => false,
            }
        })
        .cloned()
        .collect()
}

fn is_pod_compute(name: &str) -> bool {
    matches!(name, "cpu" | "memory" | "ephemeral-storage")
        || name.starts_with("requests.")
        || name.starts_with("limits.")
        || name.starts_with("hugepages-")
}

/// What one object costs: its object count, and for pods, services and claims what they hold.
pub fn usage(group: &str, plural: &str, obj: &Value, now: jiff::Timestamp) -> Usage {
    let mut u = Usage::new();
    u.insert(count_name(group, plural), Amount::count(1));
    match (group, plural) {
        ("", "pods") => {
            if counts_for_compute(obj, now) {
                add(&mut u, &pod_compute(obj));
            }
        }
        ("", "services") => {
            u.insert("services".into(), Amount::count(1));
            let ty = obj["spec"]["type"].as_str().unwrap_or("ClusterIP");
            if ty == "LoadBalancer" {
                u.insert("services.loadbalancers".into(), Amount::count(1));
            }
            if ty == "NodePort" || ty == "LoadBalancer" {
                let ports = obj["spec"]["ports"].as_array().map(Vec::len).unwrap_or(0);
                u.insert("services.nodeports".into(), Amount::count(ports as i64));
            }
        }
        ("", "persistentvolumeclaims") => {
            u.insert("persistentvolumeclaims".into(), Amount::count(1));
            let storage = from_json(&obj["spec"]["resources"]["requests"]["storage"])
                .map(|q| Amount::parse(&q))
                .unwrap_or_default();
            u.insert("requests.storage".into(), storage);
            if let Some(class) = obj["spec"]["storageClassName"].as_str().filter(|c| !c.is_empty()) {
                u.insert(format!("{class}{STORAGE_CLASS_SUFFIX}requests.storage"), storage);
                u.insert(
                    format!("{class}{STORAGE_CLASS_SUFFIX}persistentvolumeclaims"),
                    Amount::count(1),
                );
            }
        }
        _ => {
            if let Some(name) = legacy_count_name(group, plural) {
                u.insert(name.into(), Amount::count(1));
            }
        }
    }
    u
}

/// upstream `QuotaV1Pod`: terminal pods, and pods past their deletion grace, hold no compute.
pub fn counts_for_compute(pod: &Value, now: jiff::Timestamp) -> bool {
    let phase = pod["status"]["phase"].as_str().unwrap_or("");
    if phase == "Succeeded" || phase == "Failed" {
        return false;
    }
    let deleted = pod["metadata"]["deletionTimestamp"]
        .as_str()
        .and_then(|t| t.parse::<jiff::Timestamp>().ok());
    match (deleted, pod["metadata"]["deletionGracePeriodSeconds"].as_i64()) {
        (Some(t), Some(grace)) => now <= t + jiff::SignedDuration::from_secs(grace),
        _ => true,
    }
}

/// A pod's effective requests or limits (`field`): the sum of its containers and sidecars, or the
/// largest init step if larger, plus overhead (upstream `PodRequests`/`PodLimits`).
fn pod_resources(pod: &Value, field: &str) -> Usage {
    let of = |c: &Value| parse_list(&c["resources"][field]);
    let mut sum = Usage::new();
    for c in pod["spec"]["containers"].as_array().into_iter().flatten() {
        add(&mut sum, &of(c));
    }
    let mut sidecars = Usage::new();
    let mut init_max = Usage::new();
    for c in pod["spec"]["initContainers"].as_array().into_iter().flatten() {
        let r = of(c);
        if c["restartPolicy"].as_str() == Some("Always") {
            add(&mut sidecars, &r);
            max_into(&mut init_max, &sidecars);
        } else {
            let mut step = sidecars.clone();
            add(&mut step, &r);
            max_into(&mut init_max, &step);
        }
    }
    add(&mut sum, &sidecars);
    max_into(&mut sum, &init_max);
    add(&mut sum, &parse_list(&pod["spec"]["overhead"]));
    sum
}

fn max_into(a: &mut Usage, b: &Usage) {
    for (k, v) in b {
        let e = a.entry(k.clone()).or_default();
        if v.milli > e.milli {
            *e = *v;
        }
    }
}

/// upstream `podComputeUsageHelper`: requests count as `cpu` and `requests.cpu`, limits as
/// `limits.cpu`, and one `pods`.
fn pod_compute(pod: &Value) -> Usage {
    let mut u = Usage::new();
    u.insert("pods".into(), Amount::count(1));
    compute_names(&pod_resources(pod, "requests"), &pod_resources(pod, "limits"), &mut u);
    u
}

fn compute_names(requests: &Usage, limits: &Usage, u: &mut Usage) {
    for (k, v) in requests {
        if matches!(k.as_str(), "cpu" | "memory" | "ephemeral-storage") || k.starts_with("hugepages-") {
            u.insert(k.clone(), *v);
        }
        u.insert(format!("requests.{k}"), *v);
    }
    for (k, v) in limits {
        if matches!(k.as_str(), "cpu" | "memory" | "ephemeral-storage") {
            u.insert(format!("limits.{k}"), *v);
        }
    }
}

/// upstream pod `Constraints`: when a quota limits cpu or memory, every container must state
/// them; `Err` carries `must specify limits.cpu for: a,b; requests.memory for: a`.
pub fn pod_constraints(pod: &Value, required: &[String]) -> Result<(), String> {
    const VALIDATED: [&str; 6] = [
        "cpu",
        "memory",
        "requests.cpu",
        "requests.memory",
        "limits.cpu",
        "limits.memory",
    ];
    let required: Vec<&str> = required
        .iter()
        .map(String::as_str)
        .filter(|r| VALIDATED.contains(r))
        .collect();
    if required.is_empty() {
        return Ok(());
    }
    let mut missing: BTreeMap<&str, Vec<String>> = BTreeMap::new();
    let containers = ["containers", "initContainers"]
        .into_iter()
        .flat_map(|f| pod["spec"][f].as_array().into_iter().flatten());
    for c in containers {
        let mut have = Usage::new();
        compute_names(
            &parse_list(&c["resources"]["requests"]),
            &parse_list(&c["resources"]["limits"]),
            &mut have,
        );
        for r in &required {
            if !have.contains_key(*r) {
                missing
                    .entry(r)
                    .or_default()
                    .push(c["name"].as_str().unwrap_or_default().to_string());
            }
        }
    }
    if missing.is_empty() {
        return Ok(());
    }
    let parts: Vec<String> = missing
        .into_iter()
        .map(|(r, mut names)| {
            names.sort();
            names.dedup();
            format!("{r} for: {}", names.join(","))
        })
        .collect();
    Err(format!("must specify {}", parts.join("; ")))
}

/// Whether a quota's scopes (`spec.scopes`, `spec.scopeSelector`) select the object. Only pods
/// can match a scoped quota, as upstream.
pub fn scopes_match(quota: &Value, plural: &str, obj: &Value) -> bool {
    let mut selectors: Vec<(String, String, Vec<String>)> = quota["spec"]["scopes"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|s| Some((s.as_str()?.to_string(), "Exists".to_string(), vec![])))
        .collect();
    for e in quota["spec"]["scopeSelector"]["matchExpressions"]
        .as_array()
        .into_iter()
        .flatten()
    {
        let values = e["values"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|v| v.as_str().map(String::from))
            .collect();
        selectors.push((
            e["scopeName"].as_str().unwrap_or_default().into(),
            e["operator"].as_str().unwrap_or_default().into(),
            values,
        ));
    }
    if selectors.is_empty() {
        return true;
    }
    if plural != "pods" {
        return false;
    }
    selectors
        .iter()
        .all(|(scope, op, values)| pod_scope(obj, scope, op, values))
}

fn pod_scope(pod: &Value, scope: &str, op: &str, values: &[String]) -> bool {
    let holds = match scope {
        "Terminating" => pod["spec"]["activeDeadlineSeconds"].as_i64().is_some_and(|s| s >= 0),
        "NotTerminating" => pod["spec"]["activeDeadlineSeconds"].as_i64().is_none_or(|s| s < 0),
        "BestEffort" => is_best_effort(pod),
        "NotBestEffort" => !is_best_effort(pod),
        "PriorityClass" => {
            let class = pod["spec"]["priorityClassName"].as_str().unwrap_or("");
            return match op {
                "In" => values.iter().any(|v| v == class),
                "NotIn" => !values.iter().any(|v| v == class),
                "Exists" => !class.is_empty(),
                "DoesNotExist" => class.is_empty(),
                _ => false,
            };
        }
        _ => return false,
    };
    match op {
        "DoesNotExist" => !holds,
        _ => holds,
    }
}

/// QoS BestEffort: no container states a cpu or memory request or limit.
fn is_best_effort(pod: &Value) -> bool {
    ["containers", "initContainers"]
        .into_iter()
        .flat_map(|f| pod["spec"][f].as_array().into_iter().flatten())
        .all(|c| {
            ["requests", "limits"].iter().all(|field| {
                let l = parse_list(&c["resources"][*field]);
                ["cpu", "memory"].iter().all(|r| l.get(*r).is_none_or(|a| a.milli == 0))
            })
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn now() -> jiff::Timestamp {
        "2026-01-01T00:00:00Z".parse().unwrap()
    }

    #[test]
    fn pod_usage() {
        let cases = [
            (
                "requests and limits summed",
                json!({"spec": {"containers": [
                    {"name": "a", "resources": {"requests": {"cpu": "100m", "memory": "64Mi"}, "limits": {"cpu": "1"}}},
                    {"name": "b", "resources": {"requests": {"cpu": "400m", "memory": "64Mi"}}}]}}),
                vec![
                    ("count/pods", "1"),
                    ("cpu", "500m"),
                    ("limits.cpu", "1"),
                    ("memory", "128Mi"),
                    ("pods", "1"),
                    ("requests.cpu", "500m"),
                    ("requests.memory", "128Mi"),
                ],
            ),
            (
                "init container larger than the rest",
                json!({"spec": {"initContainers": [{"name": "i", "resources": {"requests": {"cpu": "2"}}}],
                    "containers": [{"name": "a", "resources": {"requests": {"cpu": "1"}}}]}}),
                vec![("count/pods", "1"), ("cpu", "2"), ("pods", "1"), ("requests.cpu", "2")],
            ),
            (
                "finished pod holds only its object count",
                json!({"spec": {"containers": [{"name": "a", "resources": {"requests": {"cpu": "1"}}}]},
                    "status": {"phase": "Succeeded"}}),
                vec![("count/pods", "1")],
            ),
            (
                "pod past its deletion grace",
                json!({"metadata": {"deletionTimestamp": "2025-12-31T23:00:00Z", "deletionGracePeriodSeconds": 30},
                    "spec": {"containers": [{"name": "a"}]}}),
                vec![("count/pods", "1")],
            ),
        ];
        for (name, pod, want) in cases {
            let got: Vec<(String, String)> = usage("", "pods", &pod, now())
                .into_iter()
                .map(|(k, v)| (k, v.to_string()))
                .collect();
            let want: Vec<(String, String)> = want.into_iter().map(|(k, v)| (k.into(), v.into())).collect();
            assert_eq!(got, want, "{name}");
        }
    }

    #[test]
    fn other_kinds() {
        let svc = json!({"spec": {"type": "NodePort", "ports": [{"port": 80}, {"port": 443}]}});
        let u = usage("", "services", &svc, now());
        assert_eq!(u["services.nodeports"], Amount::count(2));
        assert_eq!(u["services"], Amount::count(1));
        let pvc = json!({"spec": {"storageClassName": "local-path", "resources": {"requests": {"storage": "1Gi"}}}});
        let u = usage("", "persistentvolumeclaims", &pvc, now());
        assert_eq!(u["requests.storage"].to_string(), "1Gi");
        assert_eq!(
            u["local-path.storageclass.storage.k8s.io/persistentvolumeclaims"],
            Amount::count(1)
        );
        let u = usage("apps", "deployments", &json!({}), now());
        assert_eq!(u.keys().collect::<Vec<_>>(), ["count/deployments.apps"]);
    }

    #[test]
    fn matching_and_constraints() {
        let hard: Vec<String> = ["requests.cpu", "limits.memory", "count/deployments.apps", "configmaps"]
            .map(String::from)
            .to_vec();
        assert_eq!(matching_resources("", "pods", &hard), ["requests.cpu", "limits.memory"]);
        assert_eq!(
            matching_resources("apps", "deployments", &hard),
            ["count/deployments.apps"]
        );
        assert_eq!(matching_resources("", "configmaps", &hard), ["configmaps"]);
        let pod = json!({"spec": {"containers": [
            {"name": "a", "resources": {"requests": {"cpu": "1"}}},
            {"name": "b"}]}});
        assert_eq!(
            pod_constraints(&pod, &hard).unwrap_err(),
            "must specify limits.memory for: a,b; requests.cpu for: b"
        );
    }

    #[test]
    fn scopes() {
        let best_effort = json!({"spec": {"containers": [{"name": "a"}]}});
        let burstable = json!({"spec": {"activeDeadlineSeconds": 10,
            "containers": [{"name": "a", "resources": {"requests": {"cpu": "1"}}}]}});
        let q = |scopes: Value| json!({"spec": {"scopes": scopes}});
        assert!(scopes_match(&q(json!(["BestEffort"])), "pods", &best_effort));
        assert!(!scopes_match(&q(json!(["BestEffort"])), "pods", &burstable));
        assert!(scopes_match(
            &q(json!(["NotBestEffort", "Terminating"])),
            "pods",
            &burstable
        ));
        assert!(!scopes_match(&q(json!(["BestEffort"])), "services", &json!({})));
        assert!(scopes_match(&json!({"spec": {}}), "services", &json!({})));
        let pc = json!({"spec": {"scopeSelector": {"matchExpressions": [
            {"scopeName": "PriorityClass", "operator": "In", "values": ["high"]}]}}});
        assert!(scopes_match(
            &pc,
            "pods",
            &json!({"spec": {"priorityClassName": "high", "containers": []}})
        ));
        assert!(!scopes_match(&pc, "pods", &best_effort));
    }
}
