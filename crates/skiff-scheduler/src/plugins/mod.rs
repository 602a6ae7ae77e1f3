//! Filter and score plugins, one file each, named as upstream's so `FailedScheduling`
//! messages and logs read the same.

use std::borrow::Cow;
use std::sync::Arc;

use k8s_openapi::api::core::v1::Pod;

use crate::cache::{NodeInfo, PodSummary};

pub mod balanced_allocation;
pub mod node_affinity;
pub mod node_name;
pub mod node_ports;
pub mod node_resources_fit;
pub mod node_unschedulable;
pub mod pod_topology_spread;
pub mod taint_toleration;

/// upstream: `MaxNodeScore`.
pub const MAX_NODE_SCORE: i64 = 100;

/// The pod being scheduled, with what the plugins compute once per cycle (upstream PreFilter).
#[derive(Debug, Clone)]
pub struct PodInfo {
    /// `namespace/name`.
    pub key: String,
    /// The pod.
    pub pod: Arc<Pod>,
    /// Requests, host ports, owner and priority.
    pub summary: Arc<PodSummary>,
}

impl PodInfo {
    /// Prepares a pod for a scheduling cycle.
    pub fn new(pod: Arc<Pod>) -> PodInfo {
        let key = format!(
            "{}/{}",
            pod.metadata.namespace.as_deref().unwrap_or(""),
            pod.metadata.name.as_deref().unwrap_or("")
        );
        PodInfo {
            key,
            summary: Arc::new(PodSummary::of(&pod)),
            pod,
        }
    }

    /// The pod's spec fields plugins read.
    pub fn spec(&self) -> Option<&k8s_openapi::api::core::v1::PodSpec> {
        self.pod.spec.as_ref()
    }
}

/// Whether preemption could help a node that a filter rejected (upstream status codes).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Code {
    /// Removing pods from the node might make room.
    Unschedulable,
    /// Nothing on the node can change the outcome.
    UnschedulableAndUnresolvable,
}

/// Why a filter rejected a node: the reasons as they appear in `FailedScheduling`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Status {
    /// Whether preemption might help.
    pub code: Code,
    /// Upstream reason strings (counted per node in the message).
    pub reasons: Vec<Cow<'static, str>>,
}

impl Status {
    /// A rejection that preemption cannot resolve.
    pub fn unresolvable(reason: impl Into<Cow<'static, str>>) -> Status {
        Status {
            code: Code::UnschedulableAndUnresolvable,
            reasons: vec![reason.into()],
        }
    }

    /// A rejection that removing pods might resolve.
    pub fn unschedulable(reason: impl Into<Cow<'static, str>>) -> Status {
        Status {
            code: Code::Unschedulable,
            reasons: vec![reason.into()],
        }
    }
}

/// A filter plugin: can the pod run on this node?
pub trait Filter: Send + Sync {
    /// Upstream plugin name.
    fn name(&self) -> &'static str;
    /// `Ok` when the node passes.
    fn filter(&self, pod: &PodInfo, node: &NodeInfo) -> Result<(), Status>;
}

/// A score plugin: how good is this node for the pod (0–100 after normalizing)?
pub trait Score: Send + Sync {
    /// Upstream plugin name.
    fn name(&self) -> &'static str;
    /// Upstream default weight.
    fn weight(&self) -> i64;
    /// Whether this plugin has nothing to say about the pod (upstream PreScore `Skip`).
    fn skip(&self, _pod: &PodInfo) -> bool {
        false
    }
    /// The raw score of one feasible node.
    fn score(&self, pod: &PodInfo, node: &NodeInfo) -> i64;
    /// Scales raw scores of all feasible nodes to 0–100.
    fn normalize(&self, _scores: &mut [i64]) {}
}

/// The default profile's filters, in upstream order (the first failing one decides a node's
/// reason).
pub fn default_filters() -> Vec<Box<dyn Filter>> {
    vec![
        Box::new(node_unschedulable::NodeUnschedulable),
        Box::new(node_name::NodeName),
        Box::new(taint_toleration::TaintToleration),
        Box::new(node_affinity::NodeAffinity),
        Box::new(node_ports::NodePorts),
        Box::new(node_resources_fit::NodeResourcesFit),
    ]
}

/// The default profile's scores with upstream weights.
pub fn default_scores() -> Vec<Box<dyn Score>> {
    vec![
        Box::new(taint_toleration::TaintToleration),
        Box::new(node_affinity::NodeAffinity),
        Box::new(node_resources_fit::NodeResourcesFit),
        Box::new(pod_topology_spread::PodTopologySpread),
        Box::new(balanced_allocation::BalancedAllocation),
    ]
}

/// upstream `helper.DefaultNormalizeScore`: scales so the highest raw score becomes 100
/// (or, reversed, the lowest does).
pub fn default_normalize(scores: &mut [i64], reverse: bool) {
    let max = scores.iter().copied().max().unwrap_or(0);
    if max == 0 {
        if reverse {
            scores.iter_mut().for_each(|s| *s = MAX_NODE_SCORE);
        }
        return;
    }
    for s in scores.iter_mut() {
        let v = MAX_NODE_SCORE * *s / max;
        *s = if reverse { MAX_NODE_SCORE - v } else { v };
    }
}

#[cfg(test)]
pub(crate) mod testing {
    //! Builders for plugin tests.

    use std::sync::Arc;

    use k8s_openapi::api::core::v1::{Node, Pod};

    use super::PodInfo;
    use crate::cache::{NodeInfo, PodSummary};

    pub fn pod(spec: serde_json::Value) -> PodInfo {
        let p: Pod = serde_json::from_value(serde_json::json!({
            "metadata": {"name": "p", "namespace": "default"},
            "spec": spec,
        }))
        .unwrap();
        PodInfo::new(Arc::new(p))
    }

    pub fn node(meta: serde_json::Value, spec: serde_json::Value, allocatable: serde_json::Value) -> NodeInfo {
        let mut m = meta;
        if m.get("name").is_none() {
            m["name"] = "n".into();
        }
        let n: Node = serde_json::from_value(serde_json::json!({
            "metadata": m,
            "spec": spec,
            "status": {"allocatable": allocatable},
        }))
        .unwrap();
        NodeInfo::new(Arc::new(n))
    }

    pub fn plain_node() -> NodeInfo {
        node(
            serde_json::json!({}),
            serde_json::json!({}),
            serde_json::json!({"cpu": "4", "memory": "8Gi", "pods": "110"}),
        )
    }

    pub fn with_pod(mut n: NodeInfo, spec: serde_json::Value) -> NodeInfo {
        let p = pod(spec);
        n.add_pod(&p.summary);
        n
    }

    #[allow(dead_code)]
    pub fn summary(spec: serde_json::Value) -> PodSummary {
        (*pod(spec).summary).clone()
    }
}
