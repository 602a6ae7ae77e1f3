//! upstream `matchPodFailurePolicy`: the first rule matching a failed pod's exit codes or
//! conditions decides whether the failure fails the Job, is ignored, or counts.

use k8s_openapi::api::batch::v1::{PodFailurePolicy, PodFailurePolicyOnExitCodesRequirement};
use k8s_openapi::api::core::v1::{ContainerStatus, Pod};

/// What a matching rule asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Fail the whole Job at once.
    FailJob,
    /// Do not count the failure against backoffLimit.
    Ignore,
    /// Count it as usual.
    Count,
    /// Fail the pod's index (with backoffLimitPerIndex).
    FailIndex,
}

/// The outcome for one failed pod.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    /// The Job failure message, for FailJob.
    pub fail_job: Option<String>,
    /// Whether the failure counts against backoffLimit.
    pub count: bool,
    /// The matching rule's action, if a rule matched.
    pub action: Option<Action>,
}

fn action(s: &str) -> Option<Action> {
    match s {
        "FailJob" => Some(Action::FailJob),
        "Ignore" => Some(Action::Ignore),
        "Count" => Some(Action::Count),
        "FailIndex" => Some(Action::FailIndex),
        _ => None,
    }
}

fn terminated_match<'a>(
    statuses: &'a Option<Vec<ContainerStatus>>,
    req: &PodFailurePolicyOnExitCodesRequirement,
) -> Option<(&'a ContainerStatus, i32)> {
    statuses.iter().flatten().find_map(|cs| {
        let code = cs.state.as_ref()?.terminated.as_ref()?.exit_code;
        // upstream: exit code 0 never matches; a rule may name one container.
        if code == 0 || req.container_name.as_ref().is_some_and(|n| *n != cs.name) {
            return None;
        }
        let listed = req.values.contains(&code);
        let hit = match req.operator.as_str() {
            "In" => listed,
            "NotIn" => !listed,
            _ => false,
        };
        hit.then_some((cs, code))
    })
}

/// Matches a failed pod against the policy.
pub fn evaluate(policy: &PodFailurePolicy, pod: &Pod) -> Outcome {
    let ns = pod.metadata.namespace.as_deref().unwrap_or_default();
    let name = pod.metadata.name.as_deref().unwrap_or_default();
    let st = pod.status.clone().unwrap_or_default();
    for (index, rule) in policy.rules.iter().enumerate() {
        let Some(act) = action(&rule.action) else { continue };
        let message = if let Some(req) = &rule.on_exit_codes {
            let hit = terminated_match(&st.container_statuses, req)
                .or_else(|| terminated_match(&st.init_container_statuses, req));
            let Some((cs, code)) = hit else { continue };
            format!(
                "Container {} for pod {ns}/{name} failed with exit code {code} matching {} rule at index {index}",
                cs.name, rule.action
            )
        } else if let Some(patterns) = &rule.on_pod_conditions {
            let hit = st
                .conditions
                .iter()
                .flatten()
                .find(|c| patterns.iter().any(|p| p.type_ == c.type_ && p.status == c.status));
            let Some(c) = hit else { continue };
            format!(
                "Pod {ns}/{name} has condition {} matching {} rule at index {index}",
                c.type_, rule.action
            )
        } else {
            continue;
        };
        return Outcome {
            fail_job: (act == Action::FailJob).then_some(message),
            count: act != Action::Ignore,
            action: Some(act),
        };
    }
    Outcome {
        fail_job: None,
        count: true,
        action: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn rules() {
        let policy: PodFailurePolicy = serde_json::from_value(json!({"rules": [
            {"action": "Ignore", "onPodConditions": [{"type": "DisruptionTarget", "status": "True"}]},
            {"action": "FailJob", "onExitCodes": {"containerName": "main", "operator": "In", "values": [42]}},
            {"action": "Count", "onExitCodes": {"operator": "NotIn", "values": [1]}}
        ]}))
        .unwrap();
        let pod = |code: i32, cond: Option<&str>| -> Pod {
            serde_json::from_value(
                json!({"metadata": {"name": "p", "namespace": "ns"}, "status": {"phase": "Failed",
                "conditions": cond.map(|c| vec![json!({"type": c, "status": "True"})]).unwrap_or_default(),
                "containerStatuses": [{"name": "main", "image": "i", "imageID": "", "ready": false, "restartCount": 0,
                  "state": {"terminated": {"exitCode": code}}}]}}),
            )
            .unwrap()
        };
        let cases = [
            (
                "disruption ignored",
                pod(1, Some("DisruptionTarget")),
                None,
                false,
                Some(Action::Ignore),
            ),
            (
                "exit 42 fails the job",
                pod(42, None),
                Some("Container main for pod ns/p failed with exit code 42 matching FailJob rule at index 1"),
                true,
                Some(Action::FailJob),
            ),
            ("exit 3 counts", pod(3, None), None, true, Some(Action::Count)),
            ("exit 1 matches nothing and counts", pod(1, None), None, true, None),
        ];
        for (name, p, msg, count, act) in cases {
            let got = evaluate(&policy, &p);
            assert_eq!(got.fail_job.as_deref(), msg, "{name}");
            assert_eq!((got.count, got.action), (count, act), "{name}");
        }
    }
}
