//! The node snapshot: every node with the pods counted against it, kept incrementally from
//! watch events, and pods the scheduler has assumed onto a node before their binding is seen
//! (upstream "assume"), so binds in flight never overcommit a node.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use k8s_openapi::api::core::v1::{Node, Pod, Taint};

use crate::resources::{PodRequests, Resources};

/// A host port a container asks for (upstream `NodePorts`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostPort {
    /// Host address; `0.0.0.0` when unset.
    pub ip: String,
    /// `TCP`, `UDP` or `SCTP`.
    pub protocol: String,
    /// The port on the host.
    pub port: i32,
}

impl HostPort {
    /// Whether two host ports cannot share a node (upstream: same protocol and port, and
    /// the same address or either a wildcard).
    pub fn conflicts(&self, other: &HostPort) -> bool {
        self.port == other.port
            && self.protocol == other.protocol
            && (self.ip == other.ip || self.ip == "0.0.0.0" || other.ip == "0.0.0.0")
    }
}

/// What the scheduler counts of a pod on a node, computed once per pod.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PodSummary {
    /// Requests (plain and non-zero).
    pub requests: PodRequests,
    /// Host ports of its containers.
    pub host_ports: Vec<HostPort>,
    /// UID of its controller owner (ReplicaSet, StatefulSet, …), for spreading.
    pub owner: Option<String>,
    /// `spec.priority` (0 when unset).
    pub priority: i32,
}

impl PodSummary {
    /// Summarizes a pod.
    pub fn of(pod: &Pod) -> PodSummary {
        let spec = pod.spec.as_ref();
        let mut host_ports = Vec::new();
        if let Some(spec) = spec {
            let sidecars = spec
                .init_containers
                .iter()
                .flatten()
                .filter(|c| c.restart_policy.as_deref() == Some("Always"));
            for c in spec.containers.iter().chain(sidecars) {
                for p in c.ports.iter().flatten() {
                    if p.host_port.unwrap_or(0) > 0 {
                        host_ports.push(HostPort {
                            ip: p
                                .host_ip
                                .clone()
                                .filter(|i| !i.is_empty())
                                .unwrap_or_else(|| "0.0.0.0".into()),
                            protocol: p
                                .protocol
                                .clone()
                                .filter(|i| !i.is_empty())
                                .unwrap_or_else(|| "TCP".into()),
                            port: p.host_port.unwrap_or(0),
                        });
                    }
                }
            }
        }
        let owner = pod
            .metadata
            .owner_references
            .iter()
            .flatten()
            .find(|o| o.controller == Some(true))
            .map(|o| o.uid.clone());
        PodSummary {
            requests: PodRequests::of(pod),
            host_ports,
            owner,
            priority: spec.and_then(|s| s.priority).unwrap_or(0),
        }
    }
}

/// One node and what is counted against it.
#[derive(Debug, Clone, Default)]
pub struct NodeInfo {
    /// The node's name.
    pub name: String,
    /// The Node object; `None` while pods point at a node not (or no longer) seen.
    pub node: Option<Arc<Node>>,
    /// `status.allocatable`.
    pub allocatable: Resources,
    /// Sum of the requests of its pods.
    pub requested: Resources,
    /// Sum of the non-zero requests of its pods (scoring).
    pub non_zero_requested: Resources,
    /// Pods counted here (bound or assumed).
    pub pod_count: i64,
    /// Host ports in use.
    pub used_ports: Vec<HostPort>,
    /// Pods per controller owner UID.
    pub owners: HashMap<String, u32>,
    // Read on every cycle for every node: kept inline to avoid chasing into the Node object.
    cordoned: bool,
    tainted: bool,
}

static NO_LABELS: BTreeMap<String, String> = BTreeMap::new();

impl NodeInfo {
    /// A node with no pods.
    pub fn new(node: Arc<Node>) -> NodeInfo {
        let mut n = NodeInfo {
            name: node.metadata.name.clone().unwrap_or_default(),
            ..Default::default()
        };
        n.set_node(node);
        n
    }

    fn set_node(&mut self, node: Arc<Node>) {
        self.allocatable = node
            .status
            .as_ref()
            .and_then(|s| s.allocatable.as_ref())
            .map(Resources::from_list)
            .unwrap_or_default();
        let spec = node.spec.as_ref();
        self.cordoned = spec.and_then(|s| s.unschedulable).unwrap_or(false);
        self.tainted = spec.and_then(|s| s.taints.as_ref()).is_some_and(|t| !t.is_empty());
        self.node = Some(node);
    }

    /// The node's labels.
    pub fn labels(&self) -> &BTreeMap<String, String> {
        self.node
            .as_ref()
            .and_then(|n| n.metadata.labels.as_ref())
            .unwrap_or(&NO_LABELS)
    }

    /// The node's taints.
    pub fn taints(&self) -> &[Taint] {
        if !self.tainted {
            return &[];
        }
        self.node
            .as_ref()
            .and_then(|n| n.spec.as_ref())
            .and_then(|s| s.taints.as_deref())
            .unwrap_or(&[])
    }

    /// Whether the node is cordoned (`spec.unschedulable`).
    pub fn unschedulable(&self) -> bool {
        self.cordoned
    }

    /// Counts a pod against this node.
    pub fn add_pod(&mut self, p: &PodSummary) {
        self.requested.add(&p.requests.requests);
        self.non_zero_requested.add(&p.requests.non_zero);
        self.pod_count += 1;
        self.used_ports.extend(p.host_ports.iter().cloned());
        if let Some(o) = &p.owner {
            *self.owners.entry(o.clone()).or_default() += 1;
        }
    }

    /// Stops counting a pod against this node.
    pub fn remove_pod(&mut self, p: &PodSummary) {
        self.requested.sub(&p.requests.requests);
        self.non_zero_requested.sub(&p.requests.non_zero);
        self.pod_count -= 1;
        for hp in &p.host_ports {
            if let Some(i) = self.used_ports.iter().position(|u| u == hp) {
                self.used_ports.swap_remove(i);
            }
        }
        if let Some(o) = &p.owner {
            if let Some(c) = self.owners.get_mut(o) {
                *c -= 1;
                if *c == 0 {
                    self.owners.remove(o);
                }
            }
        }
    }
}

/// A pod counted against a node.
#[derive(Debug, Clone)]
struct CachedPod {
    node: String,
    summary: Arc<PodSummary>,
    assumed: bool,
}

/// Nodes with the pods on them, bound and assumed.
#[derive(Debug, Default)]
pub struct Cache {
    nodes: Vec<NodeInfo>,
    index: HashMap<String, usize>,
    pods: HashMap<String, CachedPod>,
    present: usize,
}

impl Cache {
    /// All node slots; those with `node == None` only hold pods of an unknown node.
    pub fn nodes(&self) -> &[NodeInfo] {
        &self.nodes
    }

    /// How many nodes exist (have a Node object).
    pub fn num_nodes(&self) -> usize {
        self.present
    }

    /// A node by name.
    pub fn node(&self, name: &str) -> Option<&NodeInfo> {
        self.index.get(name).map(|&i| &self.nodes[i])
    }

    fn slot(&mut self, name: &str) -> usize {
        if let Some(&i) = self.index.get(name) {
            return i;
        }
        self.nodes.push(NodeInfo {
            name: name.to_string(),
            ..Default::default()
        });
        self.index.insert(name.to_string(), self.nodes.len() - 1);
        self.nodes.len() - 1
    }

    /// Adds or replaces a node; returns whether anything the filters read changed (labels,
    /// taints, cordon, allocatable), so pending pods deserve another try.
    pub fn upsert_node(&mut self, node: Arc<Node>) -> bool {
        let name = node.metadata.name.clone().unwrap_or_default();
        let i = self.slot(&name);
        let info = &mut self.nodes[i];
        let changed = match &info.node {
            None => {
                self.present += 1;
                true
            }
            Some(old) => {
                old.metadata.labels != node.metadata.labels
                    || old.spec != node.spec
                    || old.status.as_ref().map(|s| &s.allocatable) != node.status.as_ref().map(|s| &s.allocatable)
            }
        };
        info.set_node(node);
        changed
    }

    /// Removes a node (its pods stay counted until they are deleted).
    pub fn remove_node(&mut self, name: &str) {
        let Some(&i) = self.index.get(name) else { return };
        if self.nodes[i].node.take().is_some() {
            self.present -= 1;
        }
        self.nodes[i].cordoned = false;
        self.nodes[i].tainted = false;
        self.nodes[i].allocatable = Resources::default();
        self.gc_slot(i);
    }

    fn gc_slot(&mut self, i: usize) {
        if self.nodes[i].node.is_some() || self.nodes[i].pod_count > 0 {
            return;
        }
        let removed = self.nodes.swap_remove(i);
        self.index.remove(&removed.name);
        if i < self.nodes.len() {
            let moved = self.nodes[i].name.clone();
            self.index.insert(moved, i);
        }
    }

    /// Counts a pod against `node`, replacing whatever was counted for `key` before.
    pub fn add_pod(&mut self, key: &str, node: &str, summary: Arc<PodSummary>, assumed: bool) {
        if let Some(old) = self.pods.get_mut(key) {
            if old.node == node && old.summary == summary {
                old.assumed = assumed;
                return;
            }
            self.remove_pod(key);
        }
        let i = self.slot(node);
        self.nodes[i].add_pod(&summary);
        self.pods.insert(
            key.to_string(),
            CachedPod {
                node: node.to_string(),
                summary,
                assumed,
            },
        );
    }

    /// Stops counting a pod; returns the node it was on.
    pub fn remove_pod(&mut self, key: &str) -> Option<String> {
        let p = self.pods.remove(key)?;
        if let Some(&i) = self.index.get(&p.node) {
            self.nodes[i].remove_pod(&p.summary);
            self.gc_slot(i);
        }
        Some(p.node)
    }

    /// Whether the pod is assumed (bound by us, binding not yet observed).
    pub fn is_assumed(&self, key: &str) -> bool {
        self.pods.get(key).is_some_and(|p| p.assumed)
    }

    /// Whether the pod is counted on some node.
    pub fn has_pod(&self, key: &str) -> bool {
        self.pods.contains_key(key)
    }

    /// Keys of all counted pods (for resyncing after a relist).
    pub fn pod_keys(&self) -> Vec<String> {
        self.pods.keys().cloned().collect()
    }

    /// Names of all nodes that exist.
    pub fn node_names(&self) -> Vec<String> {
        self.nodes
            .iter()
            .filter(|n| n.node.is_some())
            .map(|n| n.name.clone())
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node(name: &str, cpu: &str) -> Arc<Node> {
        Arc::new(
            serde_json::from_value(serde_json::json!({
                "metadata": {"name": name},
                "status": {"allocatable": {"cpu": cpu, "memory": "1Gi", "pods": "10"}}
            }))
            .unwrap(),
        )
    }

    fn summary(cpu: &str) -> Arc<PodSummary> {
        let pod: Pod = serde_json::from_value(serde_json::json!({
            "spec": {"containers": [{"name": "c", "resources": {"requests": {"cpu": cpu}}}]}
        }))
        .unwrap();
        Arc::new(PodSummary::of(&pod))
    }

    #[test]
    fn assume_confirm_forget() {
        let mut c = Cache::default();
        assert!(c.upsert_node(node("a", "2")));
        assert!(!c.upsert_node(node("a", "2")), "same node is no change");
        assert!(c.upsert_node(node("a", "3")), "allocatable changed");
        c.add_pod("ns/p", "a", summary("500m"), true);
        assert!(c.is_assumed("ns/p"));
        assert_eq!(c.node("a").unwrap().requested.milli_cpu, 500);
        // The binding is observed: same pod, no longer assumed, counted once.
        c.add_pod("ns/p", "a", summary("500m"), false);
        assert!(!c.is_assumed("ns/p"));
        assert_eq!(c.node("a").unwrap().requested.milli_cpu, 500);
        assert_eq!(c.node("a").unwrap().pod_count, 1);
        assert_eq!(c.remove_pod("ns/p").as_deref(), Some("a"));
        assert_eq!(c.node("a").unwrap().requested.milli_cpu, 0);
    }

    #[test]
    fn pods_on_unknown_nodes_are_kept() {
        let mut c = Cache::default();
        c.add_pod("ns/p", "ghost", summary("1"), false);
        assert_eq!(c.num_nodes(), 0);
        c.upsert_node(node("ghost", "4"));
        assert_eq!(c.num_nodes(), 1);
        assert_eq!(c.node("ghost").unwrap().requested.milli_cpu, 1000);
        c.remove_node("ghost");
        assert_eq!(c.num_nodes(), 0);
        assert!(c.node("ghost").is_some(), "still holds its pod");
        c.remove_pod("ns/p");
        assert!(c.node("ghost").is_none());
    }
}
