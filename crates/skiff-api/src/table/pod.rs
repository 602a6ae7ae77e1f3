//! Pod rows: READY, the aggregate STATUS, RESTARTS with the last restart's age, and the wide
//! columns (upstream `printPod`).

use std::collections::HashMap;

use jiff::Timestamp;
use serde_json::{json, Value};

use super::duration::{parse_time, since};
use super::json::{arr, at, flag, int, s};

fn is_terminal(phase: &str) -> bool {
    phase == "Succeeded" || phase == "Failed"
}

fn has_condition(pod: &Value, ty: &str) -> bool {
    arr(pod, "status.conditions")
        .iter()
        .any(|c| s(c, "type") == ty && s(c, "status") == "True")
}

/// Upstream `isPodInitializedConditionTrue`: the first Initialized condition decides.
fn initialized(pod: &Value) -> bool {
    arr(pod, "status.conditions")
        .iter()
        .find(|c| s(c, "type") == "Initialized")
        .is_some_and(|c| s(c, "status") == "True")
}

/// The later of two optional times.
fn later(a: Option<Timestamp>, b: Option<Timestamp>) -> Option<Timestamp> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.max(b)),
        (a, b) => a.or(b),
    }
}

fn last_termination(status: &Value) -> Option<Timestamp> {
    at(status, "lastState.terminated").map(|t| parse_time(at(t, "finishedAt").and_then(Value::as_str)))?
}

/// `ExitCode:N` / `Signal:N` (with a prefix) for a terminated state without a reason.
fn exit_reason(term: &Value, prefix: &str) -> String {
    let signal = int(term, "signal");
    if signal != 0 {
        format!("{prefix}Signal:{signal}")
    } else {
        format!("{prefix}ExitCode:{}", int(term, "exitCode"))
    }
}

/// The computed cells of a pod row, before the wide columns.
struct Summary {
    ready: i64,
    total: i64,
    reason: String,
    restarts: i64,
    last_restart: Option<Timestamp>,
}

fn summarize(pod: &Value) -> Summary {
    let phase = s(pod, "status.phase");
    let mut reason = match s(pod, "status.reason") {
        "" => phase.to_string(),
        r => r.to_string(),
    };
    if arr(pod, "status.conditions")
        .iter()
        .any(|c| s(c, "type") == "PodScheduled" && s(c, "reason") == "SchedulingGated")
    {
        reason = "SchedulingGated".into();
    }

    let init_specs = arr(pod, "spec.initContainers");
    let restartable: HashMap<&str, bool> = init_specs
        .iter()
        .map(|c| (s(c, "name"), s(c, "restartPolicy") == "Always"))
        .collect();
    let mut total = arr(pod, "spec.containers").len() as i64;
    total += restartable.values().filter(|r| **r).count() as i64;
    let mut ready = 0;
    let mut restarts = 0;
    let mut sidecar_restarts = 0;
    let mut last_restart = None;
    let mut sidecar_last_restart = None;

    let mut initializing = false;
    for (i, c) in arr(pod, "status.initContainerStatuses").iter().enumerate() {
        let is_sidecar = restartable.get(s(c, "name")).copied().unwrap_or(false);
        restarts += int(c, "restartCount");
        last_restart = later(last_restart, last_termination(c));
        if is_sidecar {
            sidecar_restarts += int(c, "restartCount");
            sidecar_last_restart = later(sidecar_last_restart, last_termination(c));
        }
        let terminated = at(c, "state.terminated");
        let waiting_reason = s(c, "state.waiting.reason");
        if terminated.is_some_and(|t| int(t, "exitCode") == 0) {
            continue;
        }
        if is_sidecar && flag(c, "started") {
            if flag(c, "ready") {
                ready += 1;
            }
            continue;
        }
        if let Some(t) = terminated {
            reason = match s(t, "reason") {
                "" => exit_reason(t, "Init:"),
                r => format!("Init:{r}"),
            };
        } else if !waiting_reason.is_empty() && waiting_reason != "PodInitializing" {
            reason = format!("Init:{waiting_reason}");
        } else {
            reason = format!("Init:{i}/{}", init_specs.len());
        }
        initializing = true;
        break;
    }

    if !initializing || initialized(pod) {
        restarts = sidecar_restarts;
        last_restart = sidecar_last_restart;
        let mut has_running = false;
        for c in arr(pod, "status.containerStatuses").iter().rev() {
            restarts += int(c, "restartCount");
            last_restart = later(last_restart, last_termination(c));
            let waiting = s(c, "state.waiting.reason");
            let terminated = at(c, "state.terminated");
            if !waiting.is_empty() {
                reason = waiting.to_string();
            } else if let Some(t) = terminated {
                reason = match s(t, "reason") {
                    "" => exit_reason(t, ""),
                    r => r.to_string(),
                };
            } else if flag(c, "ready") && at(c, "state.running").is_some() {
                has_running = true;
                ready += 1;
            }
        }
        if reason == "Completed" && has_running {
            reason = if has_condition(pod, "Ready") {
                "Running".into()
            } else {
                "NotReady".into()
            };
        }
    }

    let deleting = at(pod, "metadata.deletionTimestamp").is_some_and(|v| !v.is_null());
    if deleting && s(pod, "status.reason") == "NodeLost" {
        reason = "Unknown".into();
    } else if deleting && !is_terminal(phase) {
        reason = "Terminating".into();
    }
    Summary {
        ready,
        total,
        reason,
        restarts,
        last_restart,
    }
}

fn or_none(v: &str) -> String {
    if v.is_empty() {
        "<none>".into()
    } else {
        v.to_string()
    }
}

fn readiness_gates(pod: &Value) -> String {
    let gates = arr(pod, "spec.readinessGates");
    if gates.is_empty() {
        return "<none>".into();
    }
    let conditions = arr(pod, "status.conditions");
    let true_count = gates
        .iter()
        .filter(|g| {
            conditions
                .iter()
                .find(|c| s(c, "type") == s(g, "conditionType"))
                .is_some_and(|c| s(c, "status") == "True")
        })
        .count();
    format!("{true_count}/{}", gates.len())
}

/// All nine pod cells.
pub(crate) fn cells(pod: &Value, now: Timestamp) -> Vec<Value> {
    let sum = summarize(pod);
    let restarts = match sum.last_restart {
        Some(t) if sum.restarts != 0 => format!("{} ({} ago)", sum.restarts, since(Some(t), now)),
        _ => sum.restarts.to_string(),
    };
    let ip = match arr(pod, "status.podIPs").first() {
        Some(ip) => s(ip, "ip"),
        None => s(pod, "status.podIP"),
    };
    vec![
        json!(s(pod, "metadata.name")),
        json!(format!("{}/{}", sum.ready, sum.total)),
        json!(sum.reason),
        json!(restarts),
        json!(since(
            parse_time(at(pod, "metadata.creationTimestamp").and_then(Value::as_str)),
            now
        )),
        json!(or_none(ip)),
        json!(or_none(s(pod, "spec.nodeName"))),
        json!(or_none(s(pod, "status.nominatedNodeName"))),
        json!(readiness_gates(pod)),
    ]
}

/// The STATUS cell alone (for tests and callers that summarize pods).
pub(crate) fn status(pod: &Value) -> String {
    summarize(pod).reason
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pod(extra: Value) -> Value {
        let mut p = json!({
            "metadata": {"name": "p", "creationTimestamp": "2024-05-01T11:00:00Z"},
            "spec": {"containers": [{"name": "app", "image": "nginx"}]},
            "status": {"phase": "Pending"}
        });
        merge(&mut p, extra);
        p
    }

    fn merge(a: &mut Value, b: Value) {
        match (a, b) {
            (Value::Object(a), Value::Object(b)) => {
                for (k, v) in b {
                    merge(a.entry(k).or_insert(Value::Null), v);
                }
            }
            (a, b) => *a = b,
        }
    }

    fn running(ready: bool) -> Value {
        json!({"name": "app", "ready": ready, "restartCount": 0, "state": {"running": {"startedAt": "2024-05-01T11:00:00Z"}}})
    }

    #[test]
    fn pod_status_strings() {
        let cases: Vec<(&str, Value, &str, &str)> = vec![
            ("pending", json!({}), "Pending", "0/1"),
            (
                "status reason wins",
                json!({"status": {"phase": "Failed", "reason": "Evicted"}}),
                "Evicted",
                "0/1",
            ),
            (
                "running",
                json!({"status": {"phase": "Running", "containerStatuses": [running(true)]}}),
                "Running",
                "1/1",
            ),
            (
                "container creating",
                json!({"status": {"containerStatuses": [{"name": "app", "state": {"waiting": {"reason": "ContainerCreating"}}}]}}),
                "ContainerCreating",
                "0/1",
            ),
            (
                "crashloop",
                json!({"status": {"phase": "Running", "containerStatuses": [{"name": "app", "restartCount": 4,
                    "state": {"waiting": {"reason": "CrashLoopBackOff"}},
                    "lastState": {"terminated": {"exitCode": 1, "reason": "Error", "finishedAt": "2024-05-01T11:58:00Z"}}}]}}),
                "CrashLoopBackOff",
                "0/1",
            ),
            (
                "completed",
                json!({"status": {"phase": "Succeeded", "containerStatuses": [{"name": "app",
                    "state": {"terminated": {"exitCode": 0, "reason": "Completed"}}}]}}),
                "Completed",
                "0/1",
            ),
            (
                "oom killed",
                json!({"status": {"phase": "Running", "containerStatuses": [{"name": "app",
                    "state": {"terminated": {"exitCode": 137, "reason": "OOMKilled"}}}]}}),
                "OOMKilled",
                "0/1",
            ),
            (
                "exit code without reason",
                json!({"status": {"phase": "Failed", "containerStatuses": [{"name": "app", "state": {"terminated": {"exitCode": 3}}}]}}),
                "ExitCode:3",
                "0/1",
            ),
            (
                "signal without reason",
                json!({"status": {"phase": "Failed", "containerStatuses": [{"name": "app", "state": {"terminated": {"exitCode": 0, "signal": 9}}}]}}),
                "Signal:9",
                "0/1",
            ),
            (
                "init in progress",
                json!({"spec": {"initContainers": [{"name": "i1"}, {"name": "i2"}]},
                       "status": {"initContainerStatuses": [
                           {"name": "i1", "state": {"terminated": {"exitCode": 0, "reason": "Completed"}}},
                           {"name": "i2", "state": {"running": {}}}]}}),
                "Init:1/2",
                "0/1",
            ),
            (
                "init pod initializing counts as progress",
                json!({"spec": {"initContainers": [{"name": "i1"}]},
                       "status": {"initContainerStatuses": [{"name": "i1", "state": {"waiting": {"reason": "PodInitializing"}}}]}}),
                "Init:0/1",
                "0/1",
            ),
            (
                "init waiting reason",
                json!({"spec": {"initContainers": [{"name": "i1"}]},
                       "status": {"initContainerStatuses": [{"name": "i1", "state": {"waiting": {"reason": "ImagePullBackOff"}}}]}}),
                "Init:ImagePullBackOff",
                "0/1",
            ),
            (
                "init failed with reason",
                json!({"spec": {"initContainers": [{"name": "i1"}]},
                       "status": {"initContainerStatuses": [{"name": "i1", "state": {"terminated": {"exitCode": 1, "reason": "Error"}}}]}}),
                "Init:Error",
                "0/1",
            ),
            (
                "init failed without reason",
                json!({"spec": {"initContainers": [{"name": "i1"}]},
                       "status": {"initContainerStatuses": [{"name": "i1", "state": {"terminated": {"exitCode": 2}}}]}}),
                "Init:ExitCode:2",
                "0/1",
            ),
            (
                "sidecar counts in ready and total",
                json!({"spec": {"initContainers": [{"name": "side", "restartPolicy": "Always"}]},
                       "status": {"phase": "Running", "conditions": [{"type": "Initialized", "status": "True"}],
                           "initContainerStatuses": [{"name": "side", "started": true, "ready": true, "state": {"running": {}}}],
                           "containerStatuses": [running(true)]}}),
                "Running",
                "2/2",
            ),
            (
                "completed with a running container and Ready",
                json!({"spec": {"containers": [{"name": "a"}, {"name": "b"}]},
                       "status": {"phase": "Running", "conditions": [{"type": "Ready", "status": "True"}],
                           "containerStatuses": [
                               {"name": "a", "ready": true, "state": {"running": {}}},
                               {"name": "b", "state": {"terminated": {"exitCode": 0, "reason": "Completed"}}}]}}),
                "Running",
                "1/2",
            ),
            (
                "completed with a running container, not Ready",
                json!({"spec": {"containers": [{"name": "a"}, {"name": "b"}]},
                       "status": {"phase": "Running",
                           "containerStatuses": [
                               {"name": "a", "ready": true, "state": {"running": {}}},
                               {"name": "b", "state": {"terminated": {"exitCode": 0, "reason": "Completed"}}}]}}),
                "NotReady",
                "1/2",
            ),
            (
                "terminating",
                json!({"metadata": {"deletionTimestamp": "2024-05-01T11:59:00Z"},
                       "status": {"phase": "Running", "containerStatuses": [running(true)]}}),
                "Terminating",
                "1/1",
            ),
            (
                "deleted after success stays Completed",
                json!({"metadata": {"deletionTimestamp": "2024-05-01T11:59:00Z"},
                       "status": {"phase": "Succeeded", "containerStatuses": [{"name": "app",
                           "state": {"terminated": {"exitCode": 0, "reason": "Completed"}}}]}}),
                "Completed",
                "0/1",
            ),
            (
                "node lost",
                json!({"metadata": {"deletionTimestamp": "2024-05-01T11:59:00Z"},
                       "status": {"phase": "Running", "reason": "NodeLost"}}),
                "Unknown",
                "0/1",
            ),
            (
                "scheduling gated",
                json!({"status": {"conditions": [{"type": "PodScheduled", "status": "False", "reason": "SchedulingGated"}]}}),
                "SchedulingGated",
                "0/1",
            ),
        ];
        let now: Timestamp = "2024-05-01T12:00:00Z".parse().unwrap();
        for (name, extra, want_status, want_ready) in cases {
            let p = pod(extra);
            assert_eq!(status(&p), want_status, "{name}");
            let row = cells(&p, now);
            assert_eq!(row[1], json!(want_ready), "{name} ready");
            assert_eq!(row[2], json!(want_status), "{name} row");
        }
    }

    #[test]
    fn restarts_and_wide_cells() {
        let now: Timestamp = "2024-05-01T12:00:00Z".parse().unwrap();
        let p = pod(json!({
            "spec": {"nodeName": "n1", "readinessGates": [{"conditionType": "www.example.com/gate"}]},
            "status": {"phase": "Running", "podIP": "10.0.0.9", "podIPs": [{"ip": "10.0.0.9"}],
                "conditions": [{"type": "www.example.com/gate", "status": "True"}],
                "containerStatuses": [{"name": "app", "ready": true, "restartCount": 3, "state": {"running": {}},
                    "lastState": {"terminated": {"exitCode": 1, "finishedAt": "2024-05-01T11:55:00Z"}}}]}
        }));
        let row = cells(&p, now);
        assert_eq!(
            row,
            vec![
                json!("p"),
                json!("1/1"),
                json!("Running"),
                json!("3 (5m ago)"),
                json!("60m"),
                json!("10.0.0.9"),
                json!("n1"),
                json!("<none>"),
                json!("1/1")
            ]
        );
        let fresh = pod(json!({}));
        let row = cells(&fresh, now);
        assert_eq!(row[3], json!("0"));
        assert_eq!(
            &row[5..],
            &[json!("<none>"), json!("<none>"), json!("<none>"), json!("<none>")]
        );
    }
}
