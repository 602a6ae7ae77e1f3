//! upstream `NodeResourcesBalancedAllocation`: prefers nodes where cpu and memory would be
//! used in similar fractions.

use super::{PodInfo, Score, MAX_NODE_SCORE};
use crate::cache::NodeInfo;

/// The balanced allocation score.
pub struct BalancedAllocation;

impl Score for BalancedAllocation {
    fn name(&self) -> &'static str {
        "NodeResourcesBalancedAllocation"
    }

    fn weight(&self) -> i64 {
        1
    }

    /// upstream: best-effort pods are skipped.
    fn skip(&self, pod: &PodInfo) -> bool {
        let r = &pod.summary.requests.requests;
        r.milli_cpu == 0 && r.memory == 0
    }

    fn score(&self, pod: &PodInfo, node: &NodeInfo) -> i64 {
        let req = &pod.summary.requests.requests;
        let used = &node.requested;
        let alloc = &node.allocatable;
        let mut fractions = [0f64; 2];
        let mut n = 0;
        for (r, a) in [
            (used.milli_cpu + req.milli_cpu, alloc.milli_cpu),
            (used.memory + req.memory, alloc.memory),
        ] {
            if a == 0 {
                continue;
            }
            fractions[n] = (r as f64 / a as f64).min(1.0);
            n += 1;
        }
        // upstream: with two resources the standard deviation is |f1 - f2| / 2.
        let std = if n == 2 {
            ((fractions[0] - fractions[1]) / 2.0).abs()
        } else {
            0.0
        };
        ((1.0 - std) * MAX_NODE_SCORE as f64) as i64
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::plugins::testing::{plain_node, pod, with_pod};

    fn requests(r: serde_json::Value) -> serde_json::Value {
        json!({"containers": [{"name": "c", "resources": {"requests": r}}]})
    }

    #[test]
    fn cases() {
        // plain node: 4 cpu, 8Gi
        let cpu_heavy = with_pod(plain_node(), requests(json!({"cpu": "2"})));
        let cases = [
            (
                "balanced on empty node",
                plain_node(),
                requests(json!({"cpu": "1", "memory": "2Gi"})),
                100,
            ),
            // cpu 1/4, memory 0 -> std 0.125
            ("cpu only", plain_node(), requests(json!({"cpu": "1"})), 87),
            // cpu 3/4, memory 2/8 -> std 0.25
            (
                "cpu heavy node",
                cpu_heavy,
                requests(json!({"cpu": "1", "memory": "2Gi"})),
                75,
            ),
        ];
        for (name, n, spec, want) in cases {
            assert_eq!(BalancedAllocation.score(&pod(spec), &n), want, "{name}");
        }
        assert!(BalancedAllocation.skip(&pod(json!({"containers": [{"name": "c"}]}))));
    }
}
