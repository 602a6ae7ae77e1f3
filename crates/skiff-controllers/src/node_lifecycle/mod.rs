//! Node lifecycle: a node whose heartbeats (Lease renewals, status posts) stop for the grace
//! period becomes Unknown and is tainted unreachable; condition taints follow the Ready
//! condition and cordoning; pods on NoExecute-tainted nodes are evicted after their
//! tolerations; terminating pods on nodes that no longer exist are removed (pod GC).

pub mod eviction;
pub mod taints;

use std::collections::HashMap;
use std::time::{Duration, Instant};

use crate::events::{Event, EventType, Recorder, Reporter};
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::{Node, NodeCondition, ObjectReference, Pod};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::api::{DeleteParams, Patch, PatchParams, Preconditions};
use kube::runtime::reflector::{ObjectRef, Store};
use kube::{Api, Client, Resource, ResourceExt};
use serde_json::json;

use crate::informer::Informers;
use crate::Error;

/// Namespace of node leases.
const LEASE_NAMESPACE: &str = "kube-node-lease";

/// Settings of the controller.
#[derive(Debug, Clone)]
pub struct Options {
    /// How often node health is checked (upstream `--node-monitor-period`, 5 s).
    pub monitor_period: Duration,
    /// How long without heartbeats before a node is Unknown (upstream
    /// `--node-monitor-grace-period`, 40 s).
    pub grace_period: Duration,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            monitor_period: Duration::from_secs(5),
            grace_period: Duration::from_secs(40),
        }
    }
}

/// The last heartbeat seen from a node and when this controller saw it change.
struct Health {
    beat: String,
    observed: Instant,
}

struct Controller {
    client: Client,
    opts: Options,
    nodes: Store<Node>,
    leases: Store<Lease>,
    pods: Store<Pod>,
    /// Keeps the watches running.
    _informers: Informers,
    recorder: Recorder,
    health: HashMap<String, Health>,
    /// Nodes already told to renew their lease more often.
    slow_told: std::collections::HashSet<String>,
}

/// Runs the controller until the future is dropped.
pub async fn run(informers: Informers, opts: Options) -> Result<(), Error> {
    let client = informers.client().clone();
    let nodes = informers.synced().await?;
    let leases = informers.synced().await?;
    let pods = informers.synced().await?;
    let reporter = Reporter {
        controller: "node-controller".into(),
        instance: None,
    };
    let recorder = Recorder::new(client.clone(), reporter);
    let mut c = Controller {
        client,
        opts,
        nodes,
        leases,
        pods,
        recorder,
        health: HashMap::new(),
        slow_told: Default::default(),
        _informers: informers,
    };
    let mut ticker = tokio::time::interval(c.opts.monitor_period);
    loop {
        ticker.tick().await;
        c.reconcile_all().await;
    }
}

fn heartbeat(node: &Node, lease: Option<&Lease>) -> String {
    let renew = lease
        .and_then(|l| l.spec.as_ref())
        .and_then(|s| s.renew_time.as_ref())
        .map(|t| t.0.to_string());
    let posted = node
        .status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .and_then(|c| c.iter().find(|c| c.type_ == "Ready"))
        .and_then(|c| c.last_heartbeat_time.as_ref())
        .map(|t| t.0.to_string());
    format!("{renew:?}|{posted:?}")
}

fn pod_ref(pod: &Pod) -> ObjectReference {
    pod.object_ref(&())
}

impl Controller {
    async fn reconcile_all(&mut self) {
        let now = Instant::now();
        let nodes = self.nodes.state();
        let mut pods_by_node: HashMap<String, Vec<std::sync::Arc<Pod>>> = HashMap::new();
        for p in self.pods.state() {
            if let Some(n) = p.spec.as_ref().and_then(|s| s.node_name.clone()) {
                pods_by_node.entry(n).or_default().push(p);
            }
        }
        self.health
            .retain(|name, _| nodes.iter().any(|n| n.name_any() == *name));
        for node in &nodes {
            let name = node.name_any();
            let lease = self.leases.get(&ObjectRef::new(&name).within(LEASE_NAMESPACE));
            let beat = heartbeat(node, lease.as_deref());
            self.check_renewals(&name, lease.as_deref());
            let h = self.health.entry(name.clone()).or_insert_with(|| Health {
                beat: beat.clone(),
                observed: now,
            });
            if h.beat != beat {
                h.beat = beat;
                h.observed = now;
            }
            let stale = now.duration_since(h.observed) > self.opts.grace_period;
            let pods = pods_by_node.remove(&name).unwrap_or_default();
            let result = self.reconcile_node(node, stale, &pods).await;
            if let Err(e) = result {
                tracing::debug!(node = %name, error = %e, "node reconcile failed; retrying next period");
            }
        }
        // Pod GC: terminating pods whose node is gone have no agent to finish them.
        for (node, pods) in pods_by_node {
            for p in pods.iter().filter(|p| p.metadata.deletion_timestamp.is_some()) {
                tracing::debug!(pod = %p.name_any(), %node, "force-deleting terminating pod of a missing node");
                self.delete_pod(p, 0).await;
            }
        }
    }

    /// Warns once about a node that renews its lease (every quarter of its duration, as
    /// kubelet) too rarely for the grace period: it would flap NotReady while healthy.
    fn check_renewals(&mut self, node: &str, lease: Option<&Lease>) {
        let Some(secs) = lease
            .and_then(|l| l.spec.as_ref())
            .and_then(|s| s.lease_duration_seconds)
        else {
            return;
        };
        let renew = Duration::from_millis(u64::try_from(secs).unwrap_or(0) * 250);
        if renew * 2 > self.opts.grace_period && self.slow_told.insert(node.to_string()) {
            tracing::warn!(
                node,
                "node renews its lease every {renew:?}, too rarely for the node monitor grace period of {:?}: start its agent with --node-lease-duration-seconds {} or less",
                self.opts.grace_period,
                self.opts.grace_period.as_secs().max(1)
            );
        }
    }

    async fn reconcile_node(&self, node: &Node, stale: bool, pods: &[std::sync::Arc<Pod>]) -> Result<(), Error> {
        let name = node.name_any();
        let mut node = node.clone();
        if stale && taints::ready_status(&node) != "Unknown" {
            node = self.mark_unknown(&node).await?;
            for p in pods {
                self.mark_pod_not_ready(p).await;
            }
        }
        let current = node.spec.as_ref().and_then(|s| s.taints.clone()).unwrap_or_default();
        let want = taints::desired(&node);
        if let Some(new) = taints::reconcile(&current, &want, &jiff::Timestamp::now()) {
            tracing::debug!(node = %name, taints = ?new.iter().map(|t| (&t.key, &t.effect)).collect::<Vec<_>>(), "updating condition taints");
            let patch = json!({"metadata": {"resourceVersion": node.resource_version()}, "spec": {"taints": new}});
            let api: Api<Node> = Api::all(self.client.clone());
            node = api.patch(&name, &PatchParams::default(), &Patch::Merge(&patch)).await?;
        }
        let taints = node.spec.as_ref().and_then(|s| s.taints.clone()).unwrap_or_default();
        let now = jiff::Timestamp::now().as_second();
        for p in pods.iter().filter(|p| p.metadata.deletion_timestamp.is_none()) {
            let due = match eviction::verdict(p, &taints) {
                eviction::Verdict::Keep => false,
                eviction::Verdict::EvictNow => true,
                eviction::Verdict::EvictAt(t) => t <= now,
            };
            if due {
                self.evict(p).await;
            }
        }
        Ok(())
    }

    /// Sets every condition of the node to Unknown (upstream `tryUpdateNodeHealth`).
    async fn mark_unknown(&self, node: &Node) -> Result<Node, Error> {
        let name = node.name_any();
        let now = Time(jiff::Timestamp::now());
        let mut conds: Vec<NodeCondition> = node
            .status
            .as_ref()
            .and_then(|s| s.conditions.clone())
            .unwrap_or_default();
        if conds.is_empty() {
            conds.push(NodeCondition {
                type_: "Ready".into(),
                status: "Unknown".into(),
                reason: Some("NodeStatusNeverUpdated".into()),
                message: Some("Kubelet never posted node status.".into()),
                last_transition_time: Some(now.clone()),
                last_heartbeat_time: Some(now.clone()),
            });
        }
        for c in &mut conds {
            if c.status != "Unknown" {
                c.status = "Unknown".into();
                c.last_transition_time = Some(now.clone());
            }
            if c.reason.as_deref() != Some("NodeStatusNeverUpdated") {
                c.reason = Some("NodeStatusUnknown".into());
                c.message = Some("Kubelet stopped posting node status.".into());
            }
        }
        tracing::debug!(node = %name, "no heartbeat within the grace period; marking Unknown");
        let patch = json!({"metadata": {"resourceVersion": node.resource_version()}, "status": {"conditions": conds}});
        let api: Api<Node> = Api::all(self.client.clone());
        let updated = api
            .patch_status(&name, &PatchParams::default(), &Patch::Merge(&patch))
            .await?;
        let ev = Event {
            type_: EventType::Normal,
            reason: "NodeNotReady".into(),
            note: Some(format!("Node {name} status is now: NodeNotReady")),
            action: "NodeNotReady".into(),
            secondary: None,
        };
        let _ = self.recorder.publish(&ev, &node.object_ref(&())).await;
        Ok(updated)
    }

    /// Marks a pod of an unreachable node not ready (upstream `MarkPodsNotReady`).
    async fn mark_pod_not_ready(&self, pod: &Pod) {
        let (Some(ns), name) = (pod.namespace(), pod.name_any()) else {
            return;
        };
        let patch = json!({"status": {"conditions": [{"type": "Ready", "status": "False", "lastTransitionTime": Time(jiff::Timestamp::now())}]}});
        let api: Api<Pod> = Api::namespaced(self.client.clone(), &ns);
        if let Err(e) = api
            .patch_status(&name, &PatchParams::default(), &Patch::Strategic(&patch))
            .await
        {
            tracing::debug!(pod = %name, error = %e, "marking pod not ready failed");
        }
    }

    async fn evict(&self, pod: &Pod) {
        let (ns, name) = (pod.namespace().unwrap_or_default(), pod.name_any());
        tracing::debug!(pod = %format!("{ns}/{name}"), "evicting pod from a NoExecute-tainted node");
        let ev = Event {
            type_: EventType::Normal,
            reason: "TaintManagerEviction".into(),
            note: Some(format!("Marking for deletion Pod {ns}/{name}")),
            action: "Delete".into(),
            secondary: None,
        };
        let _ = self.recorder.publish(&ev, &pod_ref(pod)).await;
        self.delete_pod(pod, -1).await;
    }

    /// Deletes a pod (grace `-1` = the pod's own), guarded by its uid.
    async fn delete_pod(&self, pod: &Pod, grace: i64) {
        let (ns, name) = (pod.namespace().unwrap_or_default(), pod.name_any());
        let api: Api<Pod> = Api::namespaced(self.client.clone(), &ns);
        let dp = DeleteParams {
            grace_period_seconds: u32::try_from(grace).ok(),
            preconditions: Some(Preconditions {
                uid: pod.uid(),
                resource_version: None,
            }),
            ..Default::default()
        };
        if let Err(e) = api.delete(&name, &dp).await {
            tracing::debug!(pod = %name, error = %e, "pod deletion failed");
        }
    }
}
