//! upstream `TaintToleration`: NoSchedule and NoExecute taints keep out pods that do not
//! tolerate them (a NotReady node carries `node.kubernetes.io/not-ready`, so readiness is
//! filtered here too); untolerated PreferNoSchedule taints lower the score.

use k8s_openapi::api::core::v1::{Taint, Toleration};

use super::{default_normalize, Filter, PodInfo, Score, Status};
use crate::cache::NodeInfo;

/// upstream `v1helper.TolerationToleratesTaint`.
pub fn tolerates(t: &Toleration, taint: &Taint) -> bool {
    if let Some(e) = t.effect.as_deref().filter(|e| !e.is_empty()) {
        if e != taint.effect {
            return false;
        }
    }
    if let Some(k) = t.key.as_deref().filter(|k| !k.is_empty()) {
        if k != taint.key {
            return false;
        }
    }
    match t.operator.as_deref() {
        Some("Exists") => true,
        Some("Equal") | Some("") | None => t.value.as_deref().unwrap_or("") == taint.value.as_deref().unwrap_or(""),
        Some(_) => false,
    }
}

fn tolerations(pod: &PodInfo) -> &[Toleration] {
    pod.spec().and_then(|s| s.tolerations.as_deref()).unwrap_or(&[])
}

/// The taint filter and PreferNoSchedule score.
pub struct TaintToleration;

impl Filter for TaintToleration {
    fn name(&self) -> &'static str {
        "TaintToleration"
    }

    fn filter(&self, pod: &PodInfo, node: &NodeInfo) -> Result<(), Status> {
        let tols = tolerations(pod);
        let untolerated = node
            .taints()
            .iter()
            .filter(|t| t.effect == "NoSchedule" || t.effect == "NoExecute")
            .find(|taint| !tols.iter().any(|t| tolerates(t, taint)));
        match untolerated {
            None => Ok(()),
            Some(t) => Err(Status::unresolvable(format!(
                "node(s) had untolerated taint {{{}: {}}}",
                t.key,
                t.value.as_deref().unwrap_or("")
            ))),
        }
    }
}

impl Score for TaintToleration {
    fn name(&self) -> &'static str {
        "TaintToleration"
    }

    fn weight(&self) -> i64 {
        3
    }

    /// Counts untolerated PreferNoSchedule taints; tolerations with another explicit effect
    /// do not count (upstream `getAllTolerationPreferNoSchedule`).
    fn score(&self, pod: &PodInfo, node: &NodeInfo) -> i64 {
        let taints = node.taints();
        if taints.is_empty() {
            return 0;
        }
        let tols: Vec<&Toleration> = tolerations(pod)
            .iter()
            .filter(|t| {
                t.effect
                    .as_deref()
                    .is_none_or(|e| e.is_empty() || e == "PreferNoSchedule")
            })
            .collect();
        taints
            .iter()
            .filter(|t| t.effect == "PreferNoSchedule")
            .filter(|taint| !tols.iter().any(|t| tolerates(t, taint)))
            .count() as i64
    }

    fn normalize(&self, scores: &mut [i64]) {
        default_normalize(scores, true);
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::plugins::testing::{node, pod};

    fn tainted(taints: serde_json::Value) -> NodeInfo {
        node(json!({}), json!({"taints": taints}), json!({}))
    }

    #[test]
    fn filter_cases() {
        let gpu = tainted(json!([{"key": "dedicated", "value": "gpu", "effect": "NoSchedule"}]));
        let not_ready = tainted(json!([{"key": "node.kubernetes.io/not-ready", "effect": "NoExecute"}]));
        let soft = tainted(json!([{"key": "k", "value": "v", "effect": "PreferNoSchedule"}]));
        let cases = [
            (
                "untolerated",
                json!([]),
                &gpu,
                Some("node(s) had untolerated taint {dedicated: gpu}"),
            ),
            (
                "equal toleration",
                json!([{"key": "dedicated", "value": "gpu", "effect": "NoSchedule"}]),
                &gpu,
                None,
            ),
            (
                "wrong value",
                json!([{"key": "dedicated", "value": "cpu"}]),
                &gpu,
                Some("node(s) had untolerated taint {dedicated: gpu}"),
            ),
            ("exists any key", json!([{"operator": "Exists"}]), &gpu, None),
            (
                "other effect",
                json!([{"key": "dedicated", "operator": "Exists", "effect": "NoExecute"}]),
                &gpu,
                Some("node(s) had untolerated taint {dedicated: gpu}"),
            ),
            (
                "not ready node",
                json!([]),
                &not_ready,
                Some("node(s) had untolerated taint {node.kubernetes.io/not-ready: }"),
            ),
            ("prefer no schedule does not filter", json!([]), &soft, None),
        ];
        for (name, tols, n, want) in cases {
            let p = pod(json!({"containers": [], "tolerations": tols}));
            let got = Filter::filter(&TaintToleration, &p, n)
                .err()
                .map(|s| s.reasons[0].to_string());
            assert_eq!(got.as_deref(), want, "{name}");
        }
    }

    #[test]
    fn score_prefers_fewer_untolerated_soft_taints() {
        let nodes = [
            tainted(json!([])),
            tainted(json!([{"key": "a", "effect": "PreferNoSchedule"}])),
            tainted(json!([{"key": "a", "effect": "PreferNoSchedule"}, {"key": "b", "effect": "PreferNoSchedule"}])),
        ];
        let p = pod(json!({"containers": [], "tolerations": [{"key": "b", "operator": "Exists"}]}));
        let mut scores: Vec<i64> = nodes.iter().map(|n| Score::score(&TaintToleration, &p, n)).collect();
        assert_eq!(scores, vec![0, 1, 1]);
        TaintToleration.normalize(&mut scores);
        assert_eq!(scores, vec![100, 0, 0]);
    }
}
