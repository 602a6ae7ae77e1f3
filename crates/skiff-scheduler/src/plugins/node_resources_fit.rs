//! upstream `NodeResourcesFit`: requests must fit in allocatable minus what the node's pods
//! (bound and assumed) request; scores by the LeastAllocated strategy (cpu and memory,
//! weight 1 each).

use std::borrow::Cow;

use super::{Code, Filter, PodInfo, Score, Status, MAX_NODE_SCORE};
use crate::cache::NodeInfo;

/// The resource fit filter and least-allocated score.
pub struct NodeResourcesFit;

impl Filter for NodeResourcesFit {
    fn name(&self) -> &'static str {
        "NodeResourcesFit"
    }

    fn filter(&self, pod: &PodInfo, node: &NodeInfo) -> Result<(), Status> {
        let req = &pod.summary.requests.requests;
        let alloc = &node.allocatable;
        let used = &node.requested;
        // Fast path: no allocation unless something is short.
        let pods_short = node.pod_count + 1 > alloc.pods;
        let cpu_short = req.milli_cpu > 0 && req.milli_cpu > alloc.milli_cpu - used.milli_cpu;
        let mem_short = req.memory > 0 && req.memory > alloc.memory - used.memory;
        let eph_short =
            req.ephemeral_storage > 0 && req.ephemeral_storage > alloc.ephemeral_storage - used.ephemeral_storage;
        let scalar_short = req
            .scalar
            .iter()
            .any(|(n, v)| *v > 0 && *v > alloc.scalar(n) - used.scalar(n));
        if !(pods_short || cpu_short || mem_short || eph_short || scalar_short) {
            return Ok(());
        }
        let mut st = Status {
            code: Code::Unschedulable,
            reasons: Vec::with_capacity(2),
        };
        // upstream: a request larger than the whole node is unresolvable by preemption.
        let mut add = |reason: Cow<'static, str>, unresolvable: bool| {
            st.reasons.push(reason);
            if unresolvable {
                st.code = Code::UnschedulableAndUnresolvable;
            }
        };
        if pods_short {
            add("Too many pods".into(), false);
        }
        if req.is_empty() {
            return Err(st);
        }
        if cpu_short {
            add("Insufficient cpu".into(), req.milli_cpu > alloc.milli_cpu);
        }
        if mem_short {
            add("Insufficient memory".into(), req.memory > alloc.memory);
        }
        if eph_short {
            add(
                "Insufficient ephemeral-storage".into(),
                req.ephemeral_storage > alloc.ephemeral_storage,
            );
        }
        for (n, v) in &req.scalar {
            if *v > 0 && *v > alloc.scalar(n) - used.scalar(n) {
                add(format!("Insufficient {n}").into(), *v > alloc.scalar(n));
            }
        }
        Err(st)
    }
}

/// upstream `leastRequestedScore`.
fn least_requested(requested: i64, capacity: i64) -> i64 {
    if capacity == 0 || requested > capacity {
        return 0;
    }
    (capacity - requested) * MAX_NODE_SCORE / capacity
}

impl Score for NodeResourcesFit {
    fn name(&self) -> &'static str {
        "NodeResourcesFit"
    }

    fn weight(&self) -> i64 {
        1
    }

    fn score(&self, pod: &PodInfo, node: &NodeInfo) -> i64 {
        let req = &pod.summary.requests.non_zero;
        let used = &node.non_zero_requested;
        let alloc = &node.allocatable;
        let mut total = 0;
        let mut weights = 0;
        for (r, a) in [
            (used.milli_cpu + req.milli_cpu, alloc.milli_cpu),
            (used.memory + req.memory, alloc.memory),
        ] {
            if a == 0 {
                continue;
            }
            total += least_requested(r, a);
            weights += 1;
        }
        if weights == 0 {
            0
        } else {
            total / weights
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::plugins::testing::{node, plain_node, pod, with_pod};

    fn requests(r: serde_json::Value) -> serde_json::Value {
        json!({"containers": [{"name": "c", "resources": {"requests": r}}]})
    }

    #[test]
    fn filter_cases() {
        let half_full = with_pod(plain_node(), requests(json!({"cpu": "2", "memory": "4Gi"})));
        let full_of_pods = {
            let mut n = node(json!({}), json!({}), json!({"cpu": "4", "memory": "8Gi", "pods": "1"}));
            n.add_pod(&pod(json!({"containers": []})).summary);
            n
        };
        let cases = [
            ("fits", requests(json!({"cpu": "2"})), &half_full, Ok(())),
            (
                "best effort fits",
                json!({"containers": [{"name": "c"}]}),
                &half_full,
                Ok(()),
            ),
            (
                "cpu short",
                requests(json!({"cpu": "3"})),
                &half_full,
                Err((Code::Unschedulable, vec!["Insufficient cpu"])),
            ),
            (
                "cpu and memory short",
                requests(json!({"cpu": "3", "memory": "5Gi"})),
                &half_full,
                Err((Code::Unschedulable, vec!["Insufficient cpu", "Insufficient memory"])),
            ),
            (
                "larger than the node",
                requests(json!({"cpu": "5"})),
                &half_full,
                Err((Code::UnschedulableAndUnresolvable, vec!["Insufficient cpu"])),
            ),
            (
                "ephemeral storage",
                requests(json!({"ephemeral-storage": "1Gi"})),
                &half_full,
                Err((
                    Code::UnschedulableAndUnresolvable,
                    vec!["Insufficient ephemeral-storage"],
                )),
            ),
            (
                "extended resource",
                requests(json!({"example.com/gpu": "1"})),
                &half_full,
                Err((Code::UnschedulableAndUnresolvable, vec!["Insufficient example.com/gpu"])),
            ),
            (
                "too many pods",
                json!({"containers": []}),
                &full_of_pods,
                Err((Code::Unschedulable, vec!["Too many pods"])),
            ),
        ];
        for (name, spec, n, want) in cases {
            let got = Filter::filter(&NodeResourcesFit, &pod(spec), n)
                .map_err(|s| (s.code, s.reasons.iter().map(|r| r.to_string()).collect::<Vec<_>>()));
            let want = want.map_err(|(c, r)| (c, r.into_iter().map(String::from).collect::<Vec<_>>()));
            assert_eq!(got, want, "{name}");
        }
    }

    #[test]
    fn least_allocated_prefers_emptier_nodes() {
        let empty = plain_node();
        let busy = with_pod(plain_node(), requests(json!({"cpu": "3", "memory": "6Gi"})));
        let p = pod(requests(json!({"cpu": "1", "memory": "2Gi"})));
        // empty: cpu (4-1)/4 = 75, memory (8-2)/8 = 75
        assert_eq!(Score::score(&NodeResourcesFit, &p, &empty), 75);
        // busy: cpu 0, memory 0
        assert_eq!(Score::score(&NodeResourcesFit, &p, &busy), 0);
        // A best-effort pod counts the upstream defaults (100m, 200Mi).
        let be = pod(json!({"containers": [{"name": "c"}]}));
        assert_eq!(Score::score(&NodeResourcesFit, &be, &empty), (97 + 97) / 2);
    }
}
