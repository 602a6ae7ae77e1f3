//! Spreading pods of one controller across nodes, in the spirit of upstream's default
//! `PodTopologySpread` (system default constraint on `kubernetes.io/hostname`): a node with
//! fewer pods of the same controller owner scores higher. skiff groups by controller owner
//! UID rather than by the owner's label selector.

use super::{PodInfo, Score, MAX_NODE_SCORE};
use crate::cache::NodeInfo;

/// The owner spreading score.
pub struct PodTopologySpread;

impl Score for PodTopologySpread {
    fn name(&self) -> &'static str {
        "PodTopologySpread"
    }

    fn weight(&self) -> i64 {
        2
    }

    fn skip(&self, pod: &PodInfo) -> bool {
        pod.summary.owner.is_none()
    }

    fn score(&self, pod: &PodInfo, node: &NodeInfo) -> i64 {
        pod.summary
            .owner
            .as_ref()
            .and_then(|o| node.owners.get(o))
            .map_or(0, |&c| i64::from(c))
    }

    /// upstream PodTopologySpread `NormalizeScore`: `100 * (max + min - s) / max`.
    fn normalize(&self, scores: &mut [i64]) {
        let max = scores.iter().copied().max().unwrap_or(0);
        let min = scores.iter().copied().min().unwrap_or(0);
        for s in scores.iter_mut() {
            *s = if max == 0 {
                MAX_NODE_SCORE
            } else {
                MAX_NODE_SCORE * (max + min - *s) / max
            };
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::plugins::testing::{plain_node, pod, with_pod};

    fn owned_pod(uid: &str) -> PodInfo {
        let p: k8s_openapi::api::core::v1::Pod = serde_json::from_value(json!({
            "metadata": {"name": "p", "namespace": "default", "ownerReferences": [
                {"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "rs", "uid": uid, "controller": true}]},
            "spec": {"containers": []},
        }))
        .unwrap();
        PodInfo::new(std::sync::Arc::new(p))
    }

    #[test]
    fn fewer_siblings_score_higher() {
        let mut two = plain_node();
        two.add_pod(&owned_pod("rs-1").summary);
        two.add_pod(&owned_pod("rs-1").summary);
        let mut one = plain_node();
        one.add_pod(&owned_pod("rs-1").summary);
        one.add_pod(&owned_pod("rs-2").summary);
        let none = with_pod(plain_node(), json!({"containers": []}));
        let p = owned_pod("rs-1");
        let mut s: Vec<i64> = [&two, &one, &none]
            .iter()
            .map(|n| PodTopologySpread.score(&p, n))
            .collect();
        assert_eq!(s, vec![2, 1, 0]);
        PodTopologySpread.normalize(&mut s);
        assert_eq!(s, vec![0, 50, 100]);
        assert!(PodTopologySpread.skip(&pod(json!({"containers": []}))));
    }
}
