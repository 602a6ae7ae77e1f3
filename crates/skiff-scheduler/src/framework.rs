//! One scheduling cycle (upstream `schedulePod`): filter a sample of nodes, score the
//! feasible ones with the weighted plugins, pick the best (ties at random); or explain, in
//! upstream's words, why no node fits.

use std::borrow::Cow;
use std::collections::HashMap;

use crate::cache::Cache;
use crate::plugins::{default_filters, default_scores, Code, Filter, PodInfo, Score, Status};

/// upstream `minFeasibleNodesToFind`.
const MIN_FEASIBLE_NODES_TO_FIND: usize = 100;
/// upstream `minFeasibleNodesPercentageToFind`.
const MIN_FEASIBLE_NODES_PERCENTAGE_TO_FIND: usize = 5;

/// upstream `ErrNoNodesAvailable`.
pub const NO_NODES_AVAILABLE: &str = "no nodes available to schedule pods";

/// How many feasible nodes to look for before scoring (upstream `numFeasibleNodesToFind`):
/// all nodes below 100, else a percentage that shrinks as the cluster grows (50% − nodes/125,
/// at least 5%) and at least 100 nodes.
pub fn num_feasible_nodes_to_find(percentage: Option<u32>, num_all: usize) -> usize {
    if num_all < MIN_FEASIBLE_NODES_TO_FIND {
        return num_all;
    }
    let pct = match percentage {
        Some(p) if p > 0 => (p as usize).min(100),
        _ => 50usize
            .saturating_sub(num_all / 125)
            .max(MIN_FEASIBLE_NODES_PERCENTAGE_TO_FIND),
    };
    (num_all * pct / 100).max(MIN_FEASIBLE_NODES_TO_FIND)
}

/// Why a pod could not be scheduled.
#[derive(Debug, Clone, PartialEq)]
pub enum ScheduleError {
    /// The cluster has no nodes (upstream: an error, retried with backoff).
    NoNodes,
    /// No node passed the filters.
    Unschedulable(FitError),
}

impl ScheduleError {
    /// The `FailedScheduling` message and the PodScheduled condition's message.
    pub fn message(&self) -> String {
        match self {
            ScheduleError::NoNodes => NO_NODES_AVAILABLE.to_string(),
            ScheduleError::Unschedulable(f) => f.message(),
        }
    }
}

/// upstream `FitError` with its diagnosis: per-reason node counts, and what preemption would
/// say about the rejected nodes.
#[derive(Debug, Clone, PartialEq)]
pub struct FitError {
    /// Nodes in the cluster.
    pub num_all_nodes: usize,
    /// Nodes rejected per reason.
    pub reasons: HashMap<Cow<'static, str>, usize>,
    /// Nodes rejected with a status preemption cannot resolve.
    pub unresolvable: usize,
    /// Nodes rejected with a status preemption might resolve.
    pub resolvable: usize,
    /// The pod has `preemptionPolicy: Never`.
    pub preempt_never: bool,
}

/// upstream: "%v %v" per reason, sorted as strings, joined with ", ".
fn histogram(reasons: impl IntoIterator<Item = (String, usize)>) -> String {
    let mut v: Vec<String> = reasons.into_iter().map(|(r, n)| format!("{n} {r}")).collect();
    v.sort();
    v.join(", ")
}

impl FitError {
    /// upstream `FitError.Error()` with the DefaultPreemption PostFilter message appended.
    /// skiff does not preempt, so nodes that preemption might help report that no victims
    /// were found, as upstream does when no pod of lower priority runs there.
    pub fn message(&self) -> String {
        let n = self.num_all_nodes;
        let mut msg = format!("0/{n} nodes are available");
        let filter = histogram(self.reasons.iter().map(|(k, v)| (k.to_string(), *v)));
        msg.push_str(&format!(": {filter}."));
        let post = if self.preempt_never {
            "preemption: not eligible due to preemptionPolicy=Never.".to_string()
        } else {
            let mut p = Vec::new();
            if self.unresolvable > 0 {
                p.push((
                    "Preemption is not helpful for scheduling".to_string(),
                    self.unresolvable,
                ));
            }
            if self.resolvable > 0 {
                p.push((
                    "No preemption victims found for incoming pod".to_string(),
                    self.resolvable,
                ));
            }
            format!("preemption: 0/{n} nodes are available: {}.", histogram(p))
        };
        msg.push_str(&format!(" {post}."));
        msg
    }
}

/// Where a pod goes and how much of the cluster was looked at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScheduleResult {
    /// The chosen node.
    pub node: String,
    /// Nodes filtered.
    pub evaluated: usize,
    /// Nodes that passed the filters.
    pub feasible: usize,
}

/// The plugins and the per-cycle scratch space, reused across cycles.
pub struct Framework {
    filters: Vec<Box<dyn Filter>>,
    scores: Vec<Box<dyn Score>>,
    percentage: Option<u32>,
    next_start: usize,
    rng: u64,
    feasible: Vec<usize>,
    buf: Vec<i64>,
    totals: Vec<i64>,
}

impl Framework {
    /// The default profile.
    pub fn new(percentage_of_nodes_to_score: Option<u32>) -> Framework {
        let seed = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(0x9E37_79B9_7F4A_7C15);
        Framework {
            filters: default_filters(),
            scores: default_scores(),
            percentage: percentage_of_nodes_to_score,
            next_start: 0,
            rng: seed | 1,
            feasible: Vec::new(),
            buf: Vec::new(),
            totals: Vec::new(),
        }
    }

    fn random(&mut self) -> u64 {
        // xorshift64*
        self.rng ^= self.rng >> 12;
        self.rng ^= self.rng << 25;
        self.rng ^= self.rng >> 27;
        self.rng.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn run_filters(&self, pod: &PodInfo, node: &crate::cache::NodeInfo) -> Result<(), Status> {
        for f in &self.filters {
            f.filter(pod, node)?;
        }
        Ok(())
    }

    /// Finds a node for the pod.
    pub fn schedule(&mut self, pod: &PodInfo, cache: &Cache) -> Result<ScheduleResult, ScheduleError> {
        let num_all = cache.num_nodes();
        if num_all == 0 {
            return Err(ScheduleError::NoNodes);
        }
        let want = num_feasible_nodes_to_find(self.percentage, num_all);
        let slots = cache.nodes();
        let len = slots.len();
        let start = self.next_start % len;
        self.feasible.clear();
        let mut failed: Vec<Status> = Vec::new();
        let mut visited = 0;
        for i in 0..len {
            if self.feasible.len() >= want {
                break;
            }
            let idx = (start + i) % len;
            visited = i + 1;
            let node = &slots[idx];
            if node.node.is_none() {
                continue;
            }
            match self.run_filters(pod, node) {
                Ok(()) => self.feasible.push(idx),
                Err(s) => failed.push(s),
            }
        }
        // upstream: the next cycle starts where this one stopped, so all nodes get their turn.
        self.next_start = (start + visited) % len;
        let evaluated = self.feasible.len() + failed.len();
        if self.feasible.is_empty() {
            let mut fit = FitError {
                num_all_nodes: num_all,
                reasons: HashMap::new(),
                unresolvable: 0,
                resolvable: 0,
                preempt_never: pod.spec().and_then(|s| s.preemption_policy.as_deref()) == Some("Never"),
            };
            for s in failed {
                match s.code {
                    Code::Unschedulable => fit.resolvable += 1,
                    Code::UnschedulableAndUnresolvable => fit.unresolvable += 1,
                }
                for r in s.reasons {
                    *fit.reasons.entry(r).or_default() += 1;
                }
            }
            return Err(ScheduleError::Unschedulable(fit));
        }
        let feasible = self.feasible.len();
        if feasible == 1 {
            return Ok(ScheduleResult {
                node: slots[self.feasible[0]].name.clone(),
                evaluated,
                feasible,
            });
        }
        self.totals.clear();
        self.totals.resize(feasible, 0);
        for plugin in &self.scores {
            if plugin.skip(pod) {
                continue;
            }
            self.buf.clear();
            self.buf
                .extend(self.feasible.iter().map(|&i| plugin.score(pod, &slots[i])));
            plugin.normalize(&mut self.buf);
            let w = plugin.weight();
            for (t, s) in self.totals.iter_mut().zip(&self.buf) {
                *t += s * w;
            }
        }
        // upstream selectHost: the highest total, ties broken by reservoir sampling.
        let mut best = 0;
        let mut ties = 0u64;
        for i in 0..feasible {
            if self.totals[i] > self.totals[best] {
                best = i;
                ties = 1;
            } else if self.totals[i] == self.totals[best] {
                ties += 1;
                if self.random().is_multiple_of(ties) {
                    best = i;
                }
            }
        }
        Ok(ScheduleResult {
            node: slots[self.feasible[best]].name.clone(),
            evaluated,
            feasible,
        })
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use k8s_openapi::api::core::v1::Node;
    use serde_json::json;

    use super::*;
    use crate::plugins::testing::pod;

    #[test]
    fn feasible_nodes_to_find() {
        let cases = [
            (None, 50, 50),
            (None, 100, 100),
            (None, 1000, 420),
            (None, 5000, 500),
            (None, 6000, 300),
            (None, 20000, 1000),
            (Some(100), 5000, 5000),
            (Some(1), 5000, 100),
        ];
        for (pct, n, want) in cases {
            assert_eq!(num_feasible_nodes_to_find(pct, n), want, "{pct:?} {n}");
        }
    }

    fn node(name: &str, labels: serde_json::Value, cpu: &str) -> Arc<Node> {
        Arc::new(
            serde_json::from_value(json!({
                "metadata": {"name": name, "labels": labels},
                "status": {"allocatable": {"cpu": cpu, "memory": "8Gi", "pods": "110"}}
            }))
            .unwrap(),
        )
    }

    #[test]
    fn unschedulable_message_is_upstreams() {
        let mut cache = Cache::default();
        cache.upsert_node(node("a", json!({"disk": "hdd"}), "4"));
        cache.upsert_node(node("b", json!({"disk": "ssd"}), "1"));
        cache.upsert_node(node("c", json!({"disk": "ssd"}), "1"));
        let mut fw = Framework::new(None);
        let p = pod(json!({"nodeSelector": {"disk": "ssd"},
            "containers": [{"name": "c", "resources": {"requests": {"cpu": "2"}}}]}));
        let err = fw.schedule(&p, &cache).unwrap_err();
        assert_eq!(
            err.message(),
            "0/3 nodes are available: 1 node(s) didn't match Pod's node affinity/selector, 2 Insufficient cpu. \
             preemption: 0/3 nodes are available: 3 Preemption is not helpful for scheduling.."
        );
        // Fits the node's size but not what is left: preemption might help, no victims.
        let p = pod(json!({"nodeSelector": {"disk": "ssd"},
            "containers": [{"name": "c", "resources": {"requests": {"cpu": "500m"}}}]}));
        let mut cache2 = Cache::default();
        cache2.upsert_node(node("b", json!({"disk": "ssd"}), "1"));
        cache2.upsert_node(node("a", json!({"disk": "hdd"}), "4"));
        cache2.add_pod(
            "x/y",
            "b",
            Arc::new(crate::cache::PodSummary::of(
                &pod(json!({"containers": [
                {"name": "c", "resources": {"requests": {"cpu": "800m"}}}]}))
                .pod,
            )),
            false,
        );
        let err = fw.schedule(&p, &cache2).unwrap_err();
        assert_eq!(
            err.message(),
            "0/2 nodes are available: 1 Insufficient cpu, 1 node(s) didn't match Pod's node affinity/selector. \
             preemption: 0/2 nodes are available: 1 No preemption victims found for incoming pod, \
             1 Preemption is not helpful for scheduling.."
        );
        assert_eq!(ScheduleError::NoNodes.message(), NO_NODES_AVAILABLE);
    }

    #[test]
    fn picks_least_allocated_and_samples() {
        let mut cache = Cache::default();
        for i in 0..300 {
            cache.upsert_node(node(&format!("n{i}"), json!({}), "4"));
        }
        let busy = Arc::new(crate::cache::PodSummary::of(
            &pod(json!({"containers": [{"name": "c", "resources": {"requests": {"cpu": "3", "memory": "1Gi"}}}]})).pod,
        ));
        for i in 0..300 {
            if i != 7 {
                cache.add_pod(&format!("x/{i}"), &format!("n{i}"), busy.clone(), false);
            }
        }
        let mut fw = Framework::new(Some(100));
        let p =
            pod(json!({"containers": [{"name": "c", "resources": {"requests": {"cpu": "100m", "memory": "1Gi"}}}]}));
        let r = fw.schedule(&p, &cache).unwrap();
        assert_eq!(r.node, "n7");
        assert_eq!((r.evaluated, r.feasible), (300, 300));
        // Adaptive sampling: 300 nodes → 48% → 144 nodes, then the next cycle continues after them.
        let mut fw = Framework::new(None);
        let r = fw.schedule(&p, &cache).unwrap();
        assert_eq!(r.evaluated, 144);
        let r = fw.schedule(&p, &cache).unwrap();
        assert_eq!(r.evaluated, 144);
    }

    #[test]
    fn ties_are_broken_at_random() {
        let mut cache = Cache::default();
        for i in 0..4 {
            cache.upsert_node(node(&format!("n{i}"), json!({}), "4"));
        }
        let mut fw = Framework::new(None);
        let p = pod(json!({"containers": []}));
        let chosen: std::collections::HashSet<String> =
            (0..200).map(|_| fw.schedule(&p, &cache).unwrap().node).collect();
        assert_eq!(chosen.len(), 4, "{chosen:?}");
    }
}
