//! Rows for workload controllers: Deployment, ReplicaSet, ReplicationController, StatefulSet,
//! DaemonSet, Job and CronJob.

use jiff::Timestamp;
use serde_json::{json, Value};

use super::duration::{human_signed, parse_time, since};
use super::json::{arr, at, containers, format_label_selector, format_labels, int, opt_s, s};
use crate::selector::LabelSelector;

fn age(obj: &Value, now: Timestamp) -> Value {
    json!(since(parse_time(opt_s(obj, "metadata.creationTimestamp")), now))
}

/// `spec.replicas`, which defaulting always sets (to 1 when omitted).
fn desired(obj: &Value) -> i64 {
    at(obj, "spec.replicas").and_then(Value::as_i64).unwrap_or(1)
}

fn template_spec(obj: &Value) -> Option<&Value> {
    at(obj, "spec.template.spec")
}

/// ReplicaSet and ReplicationController (whose selector is a plain map).
pub(crate) fn replicas(obj: &Value, now: Timestamp, map_selector: bool) -> Vec<Value> {
    let (names, images) = containers(template_spec(obj));
    let selector = if map_selector {
        format_labels(at(obj, "spec.selector"))
    } else {
        format_label_selector(at(obj, "spec.selector"))
    };
    vec![
        json!(s(obj, "metadata.name")),
        json!(desired(obj)),
        json!(int(obj, "status.replicas")),
        json!(int(obj, "status.readyReplicas")),
        age(obj, now),
        json!(names),
        json!(images),
        json!(selector),
    ]
}

pub(crate) fn deployment(obj: &Value, now: Timestamp) -> Vec<Value> {
    let (names, images) = containers(template_spec(obj));
    // Upstream prints the selector's String() here (empty rather than <none>), <invalid> on error.
    let selector = match LabelSelector::from_json(at(obj, "spec.selector").unwrap_or(&Value::Null)) {
        Ok(sel) => sel.to_string(),
        Err(_) => "<invalid>".into(),
    };
    vec![
        json!(s(obj, "metadata.name")),
        json!(format!("{}/{}", int(obj, "status.readyReplicas"), desired(obj))),
        json!(int(obj, "status.updatedReplicas")),
        json!(int(obj, "status.availableReplicas")),
        age(obj, now),
        json!(names),
        json!(images),
        json!(selector),
    ]
}

pub(crate) fn stateful_set(obj: &Value, now: Timestamp) -> Vec<Value> {
    let (names, images) = containers(template_spec(obj));
    vec![
        json!(s(obj, "metadata.name")),
        json!(format!("{}/{}", int(obj, "status.readyReplicas"), desired(obj))),
        age(obj, now),
        json!(names),
        json!(images),
    ]
}

pub(crate) fn daemon_set(obj: &Value, now: Timestamp) -> Vec<Value> {
    let (names, images) = containers(template_spec(obj));
    vec![
        json!(s(obj, "metadata.name")),
        json!(int(obj, "status.desiredNumberScheduled")),
        json!(int(obj, "status.currentNumberScheduled")),
        json!(int(obj, "status.numberReady")),
        json!(int(obj, "status.updatedNumberScheduled")),
        json!(int(obj, "status.numberAvailable")),
        json!(format_labels(at(obj, "spec.template.spec.nodeSelector"))),
        age(obj, now),
        json!(names),
        json!(images),
        json!(format_label_selector(at(obj, "spec.selector"))),
    ]
}

/// Upstream `hasJobCondition`: the first condition of the type decides.
fn job_condition(obj: &Value, ty: &str) -> bool {
    arr(obj, "status.conditions")
        .iter()
        .find(|c| s(c, "type") == ty)
        .is_some_and(|c| s(c, "status") == "True")
}

fn job_status(obj: &Value) -> &'static str {
    if job_condition(obj, "Complete") {
        "Complete"
    } else if job_condition(obj, "Failed") {
        "Failed"
    } else if at(obj, "metadata.deletionTimestamp").is_some_and(|v| !v.is_null()) {
        "Terminating"
    } else if job_condition(obj, "Suspended") {
        "Suspended"
    } else if job_condition(obj, "FailureTarget") {
        "FailureTarget"
    } else {
        "Running"
    }
}

fn job_completions(obj: &Value) -> String {
    let succeeded = int(obj, "status.succeeded");
    if let Some(c) = at(obj, "spec.completions").and_then(Value::as_i64) {
        return format!("{succeeded}/{c}");
    }
    let parallelism = int(obj, "spec.parallelism");
    if parallelism > 1 {
        format!("{succeeded}/1 of {parallelism}")
    } else {
        format!("{succeeded}/1")
    }
}

fn job_duration(obj: &Value, now: Timestamp) -> String {
    let Some(start) = parse_time(opt_s(obj, "status.startTime")) else {
        return String::new();
    };
    let end = parse_time(opt_s(obj, "status.completionTime")).unwrap_or(now);
    human_signed(end.duration_since(start))
}

pub(crate) fn job(obj: &Value, now: Timestamp) -> Vec<Value> {
    let (names, images) = containers(template_spec(obj));
    vec![
        json!(s(obj, "metadata.name")),
        json!(job_status(obj)),
        json!(job_completions(obj)),
        json!(job_duration(obj, now)),
        age(obj, now),
        json!(names),
        json!(images),
        json!(format_label_selector(at(obj, "spec.selector"))),
    ]
}

pub(crate) fn cron_job(obj: &Value, now: Timestamp) -> Vec<Value> {
    let (names, images) = containers(at(obj, "spec.jobTemplate.spec.template.spec"));
    let last = match parse_time(opt_s(obj, "status.lastScheduleTime")) {
        Some(t) => since(Some(t), now),
        None => "<none>".into(),
    };
    let suspend = match at(obj, "spec.suspend").and_then(Value::as_bool) {
        Some(true) => "True",
        Some(false) => "False",
        None => "<unset>",
    };
    vec![
        json!(s(obj, "metadata.name")),
        json!(s(obj, "spec.schedule")),
        json!(opt_s(obj, "spec.timeZone").unwrap_or("<none>")),
        json!(suspend),
        json!(arr(obj, "status.active").len() as i64),
        json!(last),
        age(obj, now),
        json!(names),
        json!(images),
        json!(format_label_selector(at(obj, "spec.jobTemplate.spec.selector"))),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn job_status_and_completions() {
        let now: Timestamp = "2024-05-01T12:00:00Z".parse().unwrap();
        let cases: Vec<(&str, Value, &str, &str, &str)> = vec![
            (
                "running",
                json!({"spec": {"completions": 3}, "status": {"succeeded": 1, "startTime": "2024-05-01T11:58:00Z"}}),
                "Running",
                "1/3",
                "2m",
            ),
            (
                "complete",
                json!({"spec": {"completions": 1}, "status": {"succeeded": 1, "startTime": "2024-05-01T11:00:00Z",
                "completionTime": "2024-05-01T11:00:07Z", "conditions": [{"type": "Complete", "status": "True"}]}}),
                "Complete",
                "1/1",
                "7s",
            ),
            (
                "failed",
                json!({"status": {"conditions": [{"type": "Failed", "status": "True"}]}}),
                "Failed",
                "0/1",
                "",
            ),
            (
                "suspended",
                json!({"spec": {"parallelism": 3}, "status": {"conditions": [{"type": "Suspended", "status": "True"}]}}),
                "Suspended",
                "0/1 of 3",
                "",
            ),
            (
                "failure target",
                json!({"status": {"conditions": [{"type": "FailureTarget", "status": "True"}]}}),
                "FailureTarget",
                "0/1",
                "",
            ),
            (
                "terminating",
                json!({"metadata": {"deletionTimestamp": "2024-05-01T11:00:00Z"}}),
                "Terminating",
                "0/1",
                "",
            ),
            (
                "false condition ignored",
                json!({"status": {"conditions": [{"type": "Complete", "status": "False"}]}}),
                "Running",
                "0/1",
                "",
            ),
        ];
        for (name, obj, status, completions, duration) in cases {
            let row = job(&obj, now);
            assert_eq!(row[1], json!(status), "{name}");
            assert_eq!(row[2], json!(completions), "{name}");
            assert_eq!(row[3], json!(duration), "{name}");
        }
    }
}
