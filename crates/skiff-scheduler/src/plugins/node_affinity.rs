//! upstream `NodeAffinity`: `nodeSelector` and required node affinity filter nodes; preferred
//! node affinity terms add their weights to the score.

use skiff_api::node_affinity::{required_matches, term_matches};

use super::{default_normalize, Filter, PodInfo, Score, Status};
use crate::cache::NodeInfo;

/// upstream `ErrReasonPod`.
pub const ERR_REASON: &str = "node(s) didn't match Pod's node affinity/selector";

/// The node selector and affinity plugin.
pub struct NodeAffinity;

impl Filter for NodeAffinity {
    fn name(&self) -> &'static str {
        "NodeAffinity"
    }

    fn filter(&self, pod: &PodInfo, node: &NodeInfo) -> Result<(), Status> {
        let Some(spec) = pod.spec() else { return Ok(()) };
        if required_matches(spec, node.labels(), &node.name) {
            Ok(())
        } else {
            Err(Status::unresolvable(ERR_REASON))
        }
    }
}

impl Score for NodeAffinity {
    fn name(&self) -> &'static str {
        "NodeAffinity"
    }

    fn weight(&self) -> i64 {
        2
    }

    fn skip(&self, pod: &PodInfo) -> bool {
        preferred(pod).is_empty()
    }

    fn score(&self, pod: &PodInfo, node: &NodeInfo) -> i64 {
        preferred(pod)
            .iter()
            .filter(|t| t.weight != 0 && term_matches(&t.preference, node.labels(), &node.name))
            .map(|t| i64::from(t.weight))
            .sum()
    }

    fn normalize(&self, scores: &mut [i64]) {
        default_normalize(scores, false);
    }
}

fn preferred(pod: &PodInfo) -> &[k8s_openapi::api::core::v1::PreferredSchedulingTerm] {
    pod.spec()
        .and_then(|s| s.affinity.as_ref())
        .and_then(|a| a.node_affinity.as_ref())
        .and_then(|na| na.preferred_during_scheduling_ignored_during_execution.as_deref())
        .unwrap_or(&[])
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::plugins::testing::{node, pod};

    fn required(terms: serde_json::Value) -> serde_json::Value {
        json!({"containers": [], "affinity": {"nodeAffinity": {
            "requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": terms}}}})
    }

    #[test]
    fn filter_cases() {
        let n = node(
            json!({"name": "n1", "labels": {"disk": "ssd", "zone": "a", "cores": "8"}}),
            json!({}),
            json!({}),
        );
        let cases = [
            ("no constraints", json!({"containers": []}), true),
            (
                "selector matches",
                json!({"containers": [], "nodeSelector": {"disk": "ssd"}}),
                true,
            ),
            (
                "selector mismatch",
                json!({"containers": [], "nodeSelector": {"disk": "ssd", "zone": "b"}}),
                false,
            ),
            (
                "In",
                required(json!([{"matchExpressions": [{"key": "zone", "operator": "In", "values": ["a", "b"]}]}])),
                true,
            ),
            (
                "NotIn",
                required(json!([{"matchExpressions": [{"key": "zone", "operator": "NotIn", "values": ["a"]}]}])),
                false,
            ),
            (
                "NotIn missing label",
                required(json!([{"matchExpressions": [{"key": "gpu", "operator": "NotIn", "values": ["x"]}]}])),
                true,
            ),
            (
                "Exists",
                required(json!([{"matchExpressions": [{"key": "disk", "operator": "Exists"}]}])),
                true,
            ),
            (
                "DoesNotExist",
                required(json!([{"matchExpressions": [{"key": "disk", "operator": "DoesNotExist"}]}])),
                false,
            ),
            (
                "Gt",
                required(json!([{"matchExpressions": [{"key": "cores", "operator": "Gt", "values": ["4"]}]}])),
                true,
            ),
            (
                "Lt",
                required(json!([{"matchExpressions": [{"key": "cores", "operator": "Lt", "values": ["4"]}]}])),
                false,
            ),
            (
                "terms are ORed",
                required(json!([
                    {"matchExpressions": [{"key": "zone", "operator": "In", "values": ["z"]}]},
                    {"matchFields": [{"key": "metadata.name", "operator": "In", "values": ["n1"]}]}])),
                true,
            ),
            ("empty term matches nothing", required(json!([{}])), false),
            ("no terms match nothing", required(json!([])), false),
        ];
        for (name, spec, ok) in cases {
            let r = Filter::filter(&NodeAffinity, &pod(spec), &n);
            assert_eq!(r.is_ok(), ok, "{name}");
            if let Err(s) = r {
                assert_eq!(s.reasons, vec![ERR_REASON], "{name}");
            }
        }
    }

    #[test]
    fn score_sums_matching_preferred_weights() {
        let p = pod(json!({"containers": [], "affinity": {"nodeAffinity": {
            "preferredDuringSchedulingIgnoredDuringExecution": [
                {"weight": 10, "preference": {"matchExpressions": [{"key": "disk", "operator": "In", "values": ["ssd"]}]}},
                {"weight": 30, "preference": {"matchExpressions": [{"key": "zone", "operator": "In", "values": ["a"]}]}}]}}}));
        let nodes = [
            node(json!({"labels": {"disk": "ssd", "zone": "a"}}), json!({}), json!({})),
            node(json!({"labels": {"zone": "a"}}), json!({}), json!({})),
            node(json!({"labels": {}}), json!({}), json!({})),
        ];
        assert!(!NodeAffinity.skip(&p));
        let mut s: Vec<i64> = nodes.iter().map(|n| Score::score(&NodeAffinity, &p, n)).collect();
        assert_eq!(s, vec![40, 30, 0]);
        NodeAffinity.normalize(&mut s);
        assert_eq!(s, vec![100, 75, 0]);
        assert!(NodeAffinity.skip(&pod(json!({"containers": []}))));
    }
}
