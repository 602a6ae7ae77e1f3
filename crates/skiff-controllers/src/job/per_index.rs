//! upstream `backoffLimitPerIndex` for Indexed Jobs: each index gets its own failure budget
//! (the `batch.kubernetes.io/job-index-failure-count` annotation carried from a failed pod to
//! its replacement) and its own back-off; an index past its budget is failed for good and
//! listed in `status.failedIndexes`.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use jiff::Timestamp;
use k8s_openapi::api::core::v1::Pod;

use super::backoff::remaining_for;
use super::failure_policy::{self, Action};
use super::pod_util::{completion_index, finished_time, has_finalizer, is_failed, uid};
use super::sync::Params;

/// Failures of the pod's index before this pod.
pub const FAILURE_COUNT: &str = "batch.kubernetes.io/job-index-failure-count";
/// Failures of the pod's index that a podFailurePolicy Ignore rule did not count.
pub const IGNORED_FAILURE_COUNT: &str = "batch.kubernetes.io/job-index-ignored-failure-count";

fn annotation(pod: &Pod, key: &str) -> i32 {
    pod.metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get(key))
        .and_then(|v| v.parse::<i32>().ok())
        .filter(|v| *v >= 0)
        .unwrap_or(0)
}

/// upstream `isIndexFailed`: the pod failed with its index's budget spent, or a FailIndex rule
/// matched it.
fn index_failed(p: &Params, limit: i32, pod: &Pod) -> bool {
    if !is_failed(pod, p.only_replace_failed) {
        return false;
    }
    let counted = match p.spec.pod_failure_policy.as_ref() {
        Some(policy) => {
            let o = failure_policy::evaluate(policy, pod);
            if o.action == Some(Action::FailIndex) {
                return true;
            }
            o.count
        }
        None => true,
    };
    counted && annotation(pod, FAILURE_COUNT) >= limit
}

/// upstream `calculateFailedIndexes`: the failed indexes of the status plus newly failed ones.
pub fn failed_indexes(p: &Params, limit: i32, previous: &str, pods: &[Arc<Pod>]) -> BTreeSet<i32> {
    let completions = p.completions.unwrap_or(0);
    let mut out = super::indexes::parse(previous, completions);
    out.extend(
        pods.iter()
            .filter(|x| has_finalizer(x) && index_failed(p, limit, x))
            .filter_map(|x| completion_index(x))
            .filter(|i| *i < completions),
    );
    out
}

/// upstream `getPodsWithDelayedDeletionPerIndex`: per index still to be retried, its latest
/// failed pod, kept (finalizer and all) until its replacement carries the failure count on.
pub fn delayed_deletion(
    p: &Params,
    pods: &[Arc<Pod>],
    active: &[Arc<Pod>],
    expected_rm: &HashSet<String>,
    succeeded: &BTreeSet<i32>,
    failed: &BTreeSet<i32>,
) -> HashMap<i32, Arc<Pod>> {
    let completions = p.completions.unwrap_or(0);
    let active_ix: HashSet<i32> = active.iter().filter_map(|x| completion_index(x)).collect();
    let absolute = |x: &Pod| annotation(x, FAILURE_COUNT) + annotation(x, IGNORED_FAILURE_COUNT);
    let mut out: HashMap<i32, Arc<Pod>> = HashMap::new();
    for pod in pods {
        if !has_finalizer(pod) || expected_rm.contains(uid(pod)) || !is_failed(pod, p.only_replace_failed) {
            continue;
        }
        let Some(ix) = completion_index(pod).filter(|i| *i < completions) else {
            continue;
        };
        if succeeded.contains(&ix) || failed.contains(&ix) || active_ix.contains(&ix) {
            continue;
        }
        let newer = out
            .get(&ix)
            .is_none_or(|last| absolute(last) <= absolute(pod) && finished_time(pod) >= finished_time(last));
        if newer {
            out.insert(ix, pod.clone());
        }
    }
    out
}

/// upstream `getNewIndexFailureCounts`: the annotations of the pod replacing `replaced`.
pub fn replacement_counts(p: &Params, replaced: Option<&Pod>) -> (i32, i32) {
    let Some(old) = replaced else { return (0, 0) };
    let (mut failures, mut ignored) = (annotation(old, FAILURE_COUNT), annotation(old, IGNORED_FAILURE_COUNT));
    let counted = p
        .spec
        .pod_failure_policy
        .as_ref()
        .is_none_or(|policy| failure_policy::evaluate(policy, old).count);
    if counted {
        failures += 1;
    } else {
        ignored += 1;
    }
    (failures, ignored)
}

/// upstream `getRemainingTimePerIndex`: the back-off left before retrying an index.
pub fn remaining(replaced: Option<&Pod>, now: Timestamp) -> Duration {
    let Some(old) = replaced else { return Duration::ZERO };
    let failures = annotation(old, FAILURE_COUNT) + annotation(old, IGNORED_FAILURE_COUNT) + 1;
    remaining_for(failures as u32, Some(finished_time(old)), now)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn params(spec: serde_json::Value) -> Params {
        let job: k8s_openapi::api::batch::v1::Job =
            serde_json::from_value(json!({"metadata": {"name": "j"}, "spec": spec})).unwrap();
        Params::of(&job)
    }

    fn failed_pod(ix: i32, failures: i32, code: i32) -> Arc<Pod> {
        Arc::new(
            serde_json::from_value(json!({"metadata": {"name": format!("j-{ix}"), "uid": format!("u{ix}-{failures}"),
                "finalizers": ["batch.kubernetes.io/job-tracking"],
                "annotations": {"batch.kubernetes.io/job-completion-index": ix.to_string(), FAILURE_COUNT: failures.to_string()}},
                "status": {"phase": "Failed", "containerStatuses": [{"name": "c", "image": "i", "imageID": "", "ready": false,
                    "restartCount": 0, "state": {"terminated": {"exitCode": code}}}]}}))
            .unwrap(),
        )
    }

    #[test]
    fn index_budgets() {
        let p = params(
            json!({"completions": 4, "completionMode": "Indexed", "backoffLimitPerIndex": 1,
            "podFailurePolicy": {"rules": [
                {"action": "FailIndex", "onExitCodes": {"operator": "In", "values": [42]}},
                {"action": "Ignore", "onExitCodes": {"operator": "In", "values": [7]}}]},
            "template": {}}),
        );
        // Index 0 failed once (budget left), 1 failed twice (spent), 2 hit FailIndex, 3 ignored.
        let pods = vec![
            failed_pod(0, 0, 1),
            failed_pod(1, 1, 1),
            failed_pod(2, 0, 42),
            failed_pod(3, 1, 7),
        ];
        let failed = failed_indexes(&p, 1, "", &pods);
        assert_eq!(failed.into_iter().collect::<Vec<_>>(), [1, 2]);
        let failed: BTreeSet<i32> = [1, 2].into();
        let delayed = delayed_deletion(&p, &pods, &[], &HashSet::new(), &BTreeSet::new(), &failed);
        let mut waiting: Vec<i32> = delayed.keys().copied().collect();
        waiting.sort();
        assert_eq!(waiting, [0, 3], "indexes to retry keep their last failed pod");
        assert_eq!(replacement_counts(&p, Some(&pods[0])), (1, 0));
        assert_eq!(
            replacement_counts(&p, Some(&pods[3])),
            (1, 1),
            "an ignored failure is counted apart"
        );
        assert_eq!(replacement_counts(&p, None), (0, 0));
    }
}
