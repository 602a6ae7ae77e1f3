//! What the Job controller reads of its pods: the tracking finalizer, completion indexes,
//! failure, finish times, and which active pods go first.

use std::cmp::Reverse;
use std::sync::Arc;

use jiff::Timestamp;
use k8s_openapi::api::core::v1::Pod;

use crate::pods::ready_since;

/// upstream `batch.kubernetes.io/job-tracking`: keeps a finished pod until the Job counted it.
pub const TRACKING_FINALIZER: &str = "batch.kubernetes.io/job-tracking";
/// Annotation (and label) with an Indexed Job pod's completion index.
pub const COMPLETION_INDEX: &str = "batch.kubernetes.io/job-completion-index";

/// The pod's phase, "" when unknown.
pub fn phase(p: &Pod) -> &str {
    p.status.as_ref().and_then(|s| s.phase.as_deref()).unwrap_or("")
}

/// Whether the pod carries the tracking finalizer.
pub fn has_finalizer(p: &Pod) -> bool {
    p.metadata
        .finalizers
        .as_ref()
        .is_some_and(|f| f.iter().any(|f| f == TRACKING_FINALIZER))
}

/// The pod's uid ("" when missing).
pub fn uid(p: &Pod) -> &str {
    p.metadata.uid.as_deref().unwrap_or_default()
}

/// upstream `getCompletionIndex`: the annotation as a non-negative number.
pub fn completion_index(p: &Pod) -> Option<i32> {
    p.metadata
        .annotations
        .as_ref()?
        .get(COMPLETION_INDEX)?
        .parse::<i32>()
        .ok()
        .filter(|i| *i >= 0)
}

/// Whether the pod is terminating: deleted but not yet finished (upstream `CountTerminatingPods`).
pub fn is_terminating(p: &Pod) -> bool {
    p.metadata.deletion_timestamp.is_some() && !matches!(phase(p), "Succeeded" | "Failed")
}

/// upstream `isPodFailed`: Failed, or (unless only failed pods are replaced) deleted before
/// it succeeded — an orphaned or evicted pod may never reach Failed.
pub fn is_failed(p: &Pod, only_replace_failed: bool) -> bool {
    if phase(p) == "Failed" {
        return true;
    }
    !only_replace_failed && p.metadata.deletion_timestamp.is_some() && phase(p) != "Succeeded"
}

/// Whether the pod is Ready.
pub fn is_ready(p: &Pod) -> bool {
    ready_since(p).is_some()
}

/// upstream `getFinishedTime`: the last container finish, else when it stopped being ready,
/// else its deletion, else its creation.
pub fn finished_time(p: &Pod) -> Timestamp {
    let st = p.status.as_ref();
    let containers = st
        .and_then(|s| s.container_statuses.as_ref())
        .into_iter()
        .flatten()
        .filter_map(|c| c.state.as_ref()?.terminated.as_ref()?.finished_at.as_ref())
        .map(|t| t.0)
        .max();
    let not_ready = || {
        st?.conditions
            .as_ref()?
            .iter()
            .find(|c| c.type_ == "Ready" && c.status == "False")?
            .last_transition_time
            .as_ref()
            .map(|t| t.0)
    };
    containers
        .or_else(not_ready)
        .or_else(|| p.metadata.deletion_timestamp.as_ref().map(|t| t.0))
        .or_else(|| p.metadata.creation_timestamp.as_ref().map(|t| t.0))
        .unwrap_or_else(Timestamp::now)
}

/// Sum of container restarts (init containers included) of a pod that still runs.
pub fn restarts(p: &Pod) -> i32 {
    let Some(st) = p.status.as_ref() else { return 0 };
    let sum = |v: &Option<Vec<k8s_openapi::api::core::v1::ContainerStatus>>| {
        v.iter().flatten().map(|c| c.restart_count).sum::<i32>()
    };
    sum(&st.init_container_statuses) + sum(&st.container_statuses)
}

/// upstream `controller.ActivePods` order: the pods to remove first come first (unscheduled,
/// pending, not ready, ready most recently, most restarts, newest).
pub fn sort_for_removal(pods: &mut [Arc<Pod>]) {
    pods.sort_by_cached_key(|p| {
        let assigned = p.spec.as_ref().and_then(|s| s.node_name.as_ref()).is_some();
        let phase_rank = match phase(p) {
            "Pending" | "" => 0,
            "Unknown" => 1,
            _ => 2,
        };
        let ready = ready_since(p);
        // A missing time sorts as the newest.
        let ready_at = ready.flatten().unwrap_or(Timestamp::MAX);
        let max_restarts = p
            .status
            .as_ref()
            .and_then(|s| s.container_statuses.as_ref())
            .and_then(|cs| cs.iter().map(|c| c.restart_count).max())
            .unwrap_or(0);
        let created = p
            .metadata
            .creation_timestamp
            .as_ref()
            .map(|t| t.0)
            .unwrap_or(Timestamp::MAX);
        (
            assigned,
            phase_rank,
            ready.is_some(),
            Reverse(ready_at),
            Reverse(max_restarts),
            Reverse(created),
        )
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn pod(v: serde_json::Value) -> Pod {
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn failure_and_terminating() {
        let deleted_running = pod(
            json!({"metadata": {"name": "a", "deletionTimestamp": "2024-01-01T00:00:00Z"},
            "status": {"phase": "Running"}}),
        );
        let failed = pod(json!({"metadata": {"name": "b"}, "status": {"phase": "Failed"}}));
        let deleted_succeeded = pod(
            json!({"metadata": {"name": "c", "deletionTimestamp": "2024-01-01T00:00:00Z"},
            "status": {"phase": "Succeeded"}}),
        );
        let cases = [
            ("deleted running counts as failed", &deleted_running, false, true, true),
            (
                "deleted running waits with podReplacementPolicy Failed",
                &deleted_running,
                true,
                false,
                true,
            ),
            ("failed", &failed, false, true, false),
            (
                "deleted succeeded is not failed",
                &deleted_succeeded,
                false,
                false,
                false,
            ),
        ];
        for (name, p, only_failed, want_failed, want_terminating) in cases {
            assert_eq!(is_failed(p, only_failed), want_failed, "{name}");
            assert_eq!(is_terminating(p), want_terminating, "{name}");
        }
    }

    #[test]
    fn removal_order() {
        let p = |name: &str, node: Option<&str>, phase: &str, ready: bool, created: &str| {
            Arc::new(pod(json!({
                "metadata": {"name": name, "creationTimestamp": created},
                "spec": {"nodeName": node, "containers": []},
                "status": {"phase": phase, "conditions": [{"type": "Ready", "status": if ready {"True"} else {"False"}}]}
            })))
        };
        let mut pods = vec![
            p("old-ready", Some("n"), "Running", true, "2024-01-01T00:00:00Z"),
            p("new-running", Some("n"), "Running", false, "2024-01-02T00:00:00Z"),
            p("pending", Some("n"), "Pending", false, "2024-01-01T00:00:00Z"),
            p("unscheduled", None, "Pending", false, "2024-01-01T00:00:00Z"),
        ];
        sort_for_removal(&mut pods);
        let names: Vec<_> = pods.iter().map(|p| p.metadata.name.clone().unwrap()).collect();
        assert_eq!(names, ["unscheduled", "pending", "new-running", "old-ready"]);
    }
}
