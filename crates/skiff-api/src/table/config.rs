//! Rows for ConfigMap, Secret, ServiceAccount, Lease, ControllerRevision, ResourceQuota and
//! HorizontalPodAutoscaler.

use jiff::Timestamp;
use serde_json::{json, Value};

use super::duration::{parse_time, since};
use super::json::{arr, at, int, len_obj, opt_s, s};

fn age(obj: &Value, now: Timestamp) -> Value {
    json!(since(parse_time(opt_s(obj, "metadata.creationTimestamp")), now))
}

pub(crate) fn config_map(cm: &Value, now: Timestamp) -> Vec<Value> {
    let data = len_obj(cm, "data") + len_obj(cm, "binaryData");
    vec![json!(s(cm, "metadata.name")), json!(data), age(cm, now)]
}

pub(crate) fn secret(sec: &Value, now: Timestamp) -> Vec<Value> {
    vec![
        json!(s(sec, "metadata.name")),
        json!(s(sec, "type")),
        json!(len_obj(sec, "data")),
        age(sec, now),
    ]
}

pub(crate) fn service_account(sa: &Value, now: Timestamp) -> Vec<Value> {
    vec![
        json!(s(sa, "metadata.name")),
        json!(arr(sa, "secrets").len() as i64),
        age(sa, now),
    ]
}

pub(crate) fn lease(l: &Value, now: Timestamp) -> Vec<Value> {
    vec![
        json!(s(l, "metadata.name")),
        json!(s(l, "spec.holderIdentity")),
        age(l, now),
    ]
}

/// `kind.group/name` in lower case (name kept) of the controlling owner, else `<none>`.
fn controller_of(obj: &Value) -> String {
    let owner = arr(obj, "metadata.ownerReferences")
        .iter()
        .find(|o| o.get("controller").and_then(Value::as_bool) == Some(true));
    let Some(o) = owner else { return "<none>".into() };
    let group = s(o, "apiVersion").rsplit_once('/').map_or("", |(g, _)| g);
    let kind = s(o, "kind");
    let group_kind = if group.is_empty() {
        kind.to_string()
    } else {
        format!("{kind}.{group}")
    };
    if group_kind.is_empty() {
        return s(o, "name").to_string();
    }
    format!("{}/{}", group_kind.to_lowercase(), s(o, "name"))
}

pub(crate) fn controller_revision(cr: &Value, now: Timestamp) -> Vec<Value> {
    vec![
        json!(s(cr, "metadata.name")),
        json!(controller_of(cr)),
        json!(int(cr, "revision")),
        age(cr, now),
    ]
}

fn quantity_text(v: Option<&Value>) -> String {
    match v {
        Some(Value::String(q)) => q.clone(),
        Some(Value::Number(n)) => n.to_string(),
        _ => "0".into(),
    }
}

pub(crate) fn resource_quota(rq: &Value, now: Timestamp) -> Vec<Value> {
    let mut names: Vec<&String> = at(rq, "status.hard")
        .and_then(Value::as_object)
        .map(|m| m.keys().collect())
        .unwrap_or_default();
    names.sort();
    let (mut request, mut limit) = (Vec::new(), Vec::new());
    for name in names {
        let used = quantity_text(at(rq, "status.used").and_then(|u| u.get(name.as_str())));
        let hard = quantity_text(at(rq, "status.hard").and_then(|h| h.get(name.as_str())));
        let entry = format!("{name}: {used}/{hard}");
        let mut pieces = name.split('.');
        let is_limit = pieces.next() == Some("limits") && pieces.next().is_some();
        if is_limit {
            limit.push(entry);
        } else {
            request.push(entry);
        }
    }
    vec![
        json!(s(rq, "metadata.name")),
        json!(request.join(", ")),
        json!(limit.join(", ")),
        age(rq, now),
    ]
}

/// A quantity pointer printed the Go way (`<nil>` when absent).
fn q(v: Option<&Value>) -> String {
    match v {
        Some(Value::String(q)) => q.clone(),
        Some(Value::Number(n)) => n.to_string(),
        _ => "<nil>".into(),
    }
}

/// One metric's `current/target` text (upstream `formatHPAMetrics`).
fn hpa_metric(spec: &Value, status: Option<&Value>) -> String {
    let current = |source: &str, field: &str| -> Option<String> {
        status
            .and_then(|st| at(st, &format!("{source}.current.{field}")))
            .map(|v| q(Some(v)))
    };
    let unknown = || "<unknown>".to_string();
    match s(spec, "type") {
        ty @ ("External" | "Object") => {
            let source = if ty == "External" { "external" } else { "object" };
            let target = at(spec, &format!("{source}.target"));
            match target.and_then(|t| t.get("averageValue")) {
                Some(avg) => format!(
                    "{}/{} (avg)",
                    current(source, "averageValue").unwrap_or_else(unknown),
                    q(Some(avg))
                ),
                None => {
                    let cur = status
                        .filter(|st| st.get(source).is_some())
                        .map(|_| current(source, "value").unwrap_or_else(|| "<nil>".into()));
                    format!(
                        "{}/{}",
                        cur.unwrap_or_else(unknown),
                        q(target.and_then(|t| t.get("value")))
                    )
                }
            }
        }
        "Pods" => {
            let cur = status
                .filter(|st| st.get("pods").is_some())
                .map(|_| current("pods", "averageValue").unwrap_or_else(|| "<nil>".into()));
            format!(
                "{}/{}",
                cur.unwrap_or_else(unknown),
                q(at(spec, "pods.target.averageValue"))
            )
        }
        ty @ ("Resource" | "ContainerResource") => {
            let source = if ty == "Resource" {
                "resource"
            } else {
                "containerResource"
            };
            let name = s(spec, &format!("{source}.name"));
            let target = at(spec, &format!("{source}.target"));
            match target.and_then(|t| t.get("averageValue")) {
                Some(avg) => {
                    let cur = status
                        .filter(|st| st.get(source).is_some())
                        .map(|_| current(source, "averageValue").unwrap_or_else(|| "<nil>".into()));
                    format!("{name}: {}/{}", cur.unwrap_or_else(unknown), q(Some(avg)))
                }
                None => {
                    let cur = status
                        .and_then(|st| at(st, &format!("{source}.current.averageUtilization")))
                        .and_then(Value::as_i64)
                        .map_or_else(unknown, |u| format!("{u}%"));
                    let tgt = target
                        .and_then(|t| t.get("averageUtilization"))
                        .and_then(Value::as_i64)
                        .map_or_else(|| "<auto>".to_string(), |u| format!("{u}%"));
                    format!("{name}: {cur}/{tgt}")
                }
            }
        }
        _ => "<unknown type>".into(),
    }
}

fn hpa_targets(hpa: &Value) -> String {
    let specs = arr(hpa, "spec.metrics");
    if specs.is_empty() {
        return "<none>".into();
    }
    let statuses = arr(hpa, "status.currentMetrics");
    let max = 2;
    let list: Vec<String> = specs
        .iter()
        .enumerate()
        .map(|(i, m)| hpa_metric(m, statuses.get(i)))
        .collect();
    let count = list.len();
    if count > max {
        format!("{} + {} more...", list[..max].join(", "), count - max)
    } else {
        list.join(", ")
    }
}

pub(crate) fn hpa(hpa: &Value, now: Timestamp) -> Vec<Value> {
    let min = at(hpa, "spec.minReplicas")
        .and_then(Value::as_i64)
        .map_or("<unset>".to_string(), |m| m.to_string());
    vec![
        json!(s(hpa, "metadata.name")),
        json!(format!(
            "{}/{}",
            s(hpa, "spec.scaleTargetRef.kind"),
            s(hpa, "spec.scaleTargetRef.name")
        )),
        json!(hpa_targets(hpa)),
        json!(min),
        json!(int(hpa, "spec.maxReplicas")),
        json!(int(hpa, "status.currentReplicas")),
        age(hpa, now),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hpa_targets_cases() {
        let cases: Vec<(&str, Value, &str)> = vec![
            ("none", json!({}), "<none>"),
            (
                "cpu utilization unknown",
                json!({"spec": {"metrics": [{"type": "Resource", "resource": {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": 50}}}]}}),
                "cpu: <unknown>/50%",
            ),
            (
                "cpu utilization",
                json!({"spec": {"metrics": [{"type": "Resource", "resource": {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": 50}}}]},
                "status": {"currentMetrics": [{"type": "Resource", "resource": {"name": "cpu", "current": {"averageUtilization": 12, "averageValue": "6m"}}}]}}),
                "cpu: 12%/50%",
            ),
            (
                "memory value",
                json!({"spec": {"metrics": [{"type": "Resource", "resource": {"name": "memory", "target": {"type": "AverageValue", "averageValue": "100Mi"}}}]}}),
                "memory: <unknown>/100Mi",
            ),
            (
                "three metrics",
                json!({"spec": {"metrics": [
                {"type": "Pods", "pods": {"target": {"averageValue": "1k"}}},
                {"type": "External", "external": {"target": {"value": "10"}}},
                {"type": "Object", "object": {"target": {"averageValue": "3"}}}]}}),
                "<unknown>/1k, <unknown>/10 + 1 more...",
            ),
        ];
        for (name, obj, want) in cases {
            assert_eq!(hpa_targets(&obj), want, "{name}");
        }
    }

    #[test]
    fn quota_splits_limits() {
        let rq = json!({"status": {"hard": {"pods": "10", "limits.cpu": "2", "requests.cpu": "1", "limits": "x"},
                                   "used": {"pods": "3", "requests.cpu": "500m"}}});
        let now: Timestamp = "2024-05-01T12:00:00Z".parse().unwrap();
        let row = resource_quota(&rq, now);
        assert_eq!(row[1], json!("limits: 0/x, pods: 3/10, requests.cpu: 500m/1"));
        assert_eq!(row[2], json!("limits.cpu: 0/2"));
    }
}
