//! The DaemonSet controller (upstream `pkg/controller/daemon`): one pod per eligible node
//! (nodeSelector, node affinity, taints with the default daemon tolerations), pinned to its
//! node by a `metadata.name` node affinity so the default scheduler binds it; pods leave nodes
//! that stop qualifying; RollingUpdate (maxUnavailable, maxSurge) or OnDelete against
//! ControllerRevisions; expectations guard each owner; status and events as upstream.

mod placement;
mod status;
mod update;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::{FutureExt, StreamExt};
use k8s_openapi::api::apps::v1::{ControllerRevision, DaemonSet};
use k8s_openapi::api::core::v1::{Node, ObjectReference, Pod, PodSpec, PodTemplateSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};
use kube::api::{DeleteParams, Patch, PatchParams, PostParams, Preconditions};
use kube::runtime::reflector::{ObjectRef, Store};
use kube::runtime::watcher;
use kube::{Api, Client, Resource, ResourceExt};
use serde_json::json;

use crate::events::{error_text, Event, EventType, Recorder, Reporter};
use crate::expectations::Expectation;
use crate::history;
use crate::informer::{self, Informers};
use crate::pods::{controller_of, controller_ref, is_available, ready_since, selector_matches};
use crate::Error;

/// upstream `BurstReplicas`: the most pods created or deleted in one sync.
const BURST: usize = 250;
/// How often every DaemonSet is looked at again (availability after minReadySeconds).
const RESYNC: Duration = Duration::from_secs(1);
/// upstream `failedPodsBackoff`: how long a node's failed daemon pod waits before it is killed
/// again, doubling from 1 s up to 15 min, so the controller does not fight a rejecting node.
const FAILED_BACKOFF_START: Duration = Duration::from_secs(1);
const FAILED_BACKOFF_MAX: Duration = Duration::from_secs(15 * 60);
/// upstream `DaemonSetTemplateGenerationKey`, set when the API server records a template
/// generation in the `deprecated.daemonset.template.generation` annotation.
const TEMPLATE_GENERATION_LABEL: &str = "pod-template-generation";
const TEMPLATE_GENERATION_ANNOTATION: &str = "deprecated.daemonset.template.generation";

type Key = (String, String);

enum Msg {
    Ds(informer::Event<DaemonSet>),
    Pod(informer::Event<Pod>),
    Node(informer::Event<Node>),
    Rev(informer::Event<ControllerRevision>),
}

struct Controller {
    client: Client,
    sets: Store<DaemonSet>,
    pods: Store<Pod>,
    nodes: Store<Node>,
    revs: Store<ControllerRevision>,
    recorder: Recorder,
    expectations: HashMap<Key, Expectation>,
    /// Pods controlled by a DaemonSet, by uid, with their owner.
    seen: HashMap<String, Key>,
    /// Failed-pod back-off per (DaemonSet, node): current delay and when it ends.
    backoff: HashMap<(Key, String), (Duration, Instant)>,
    dirty: HashSet<Key>,
}

/// Runs the DaemonSet controller until the future is dropped.
pub async fn run(informers: Informers) -> Result<(), Error> {
    let client = informers.client().clone();
    let (sets, set_events) = informers.watch(Msg::Ds);
    let (pods, pod_events) = informers.watch(Msg::Pod);
    let (nodes, node_events) = informers.watch(Msg::Node);
    let (revs, rev_events) = informers.watch(Msg::Rev);
    let streams = vec![set_events, pod_events, node_events, rev_events];
    let mut events = futures::stream::select_all(streams);
    let mut c = Controller {
        recorder: Recorder::new(
            client.clone(),
            Reporter {
                controller: "daemonset-controller".into(),
                instance: None,
            },
        ),
        client,
        sets,
        pods,
        nodes,
        revs,
        expectations: HashMap::new(),
        seen: HashMap::new(),
        backoff: HashMap::new(),
        dirty: HashSet::new(),
    };
    let mut ready = [false; 4];
    let mut tick = tokio::time::interval(RESYNC);
    loop {
        tokio::select! {
            msg = events.next() => {
                let Some(msg) = msg else { return Ok(()) };
                c.handle(msg, &mut ready);
                while let Some(Some(msg)) = events.next().now_or_never() {
                    c.handle(msg, &mut ready);
                }
            }
            _ = tick.tick() => c.mark_all(),
        }
        if ready.iter().all(|r| *r) {
            let keys: Vec<Key> = c.dirty.drain().collect();
            for key in keys {
                if let Err(e) = c.sync(&key).await {
                    tracing::debug!(error = %e, daemonset = %key.1, "daemonset sync failed (retried)");
                    c.dirty.insert(key);
                }
            }
        }
    }
}

fn key_of(ds: &DaemonSet) -> Key {
    (ds.namespace().unwrap_or_default(), ds.name_any())
}

fn ds_key(ns: Option<String>, r: Option<&OwnerReference>) -> Option<Key> {
    let r = r?;
    (r.kind == "DaemonSet" && r.api_version.starts_with("apps/")).then(|| (ns.unwrap_or_default(), r.name.clone()))
}

fn phase(pod: &Pod) -> &str {
    pod.status.as_ref().and_then(|s| s.phase.as_deref()).unwrap_or("")
}

fn terminal(pod: &Pod) -> bool {
    matches!(phase(pod), "Succeeded" | "Failed")
}

/// upstream `podByCreationTimestampAndPhase`: scheduled first, then oldest, then by name.
fn oldest_first(pods: &mut [Arc<Pod>]) {
    pods.sort_by_cached_key(|p| {
        let unscheduled = p
            .spec
            .as_ref()
            .and_then(|s| s.node_name.as_ref())
            .is_none_or(|n| n.is_empty());
        (
            unscheduled,
            p.metadata.creation_timestamp.as_ref().map(|t| t.0),
            p.name_any(),
        )
    });
}

/// One DaemonSet as a sync sees it.
struct View {
    ds: Arc<DaemonSet>,
    key: Key,
    template: PodTemplateSpec,
    /// The template's spec with the default daemon tolerations, for placement decisions.
    daemon_spec: PodSpec,
    hash: String,
    generation: Option<String>,
}

impl View {
    /// upstream `IsPodUpdated`: the pod carries the current hash (or template generation).
    fn updated(&self, pod: &Pod) -> bool {
        let l = pod.labels();
        l.get(history::HASH_LABEL) == Some(&self.hash)
            || self
                .generation
                .as_ref()
                .is_some_and(|g| l.get(TEMPLATE_GENERATION_LABEL) == Some(g))
    }

    fn rolling(&self) -> Option<&k8s_openapi::api::apps::v1::RollingUpdateDaemonSet> {
        let s = self.ds.spec.as_ref()?.update_strategy.as_ref()?;
        if s.type_.as_deref().is_some_and(|t| t != "RollingUpdate") {
            return None;
        }
        s.rolling_update.as_ref()
    }

    fn min_ready(&self) -> i32 {
        self.ds.spec.as_ref().and_then(|s| s.min_ready_seconds).unwrap_or(0)
    }

    fn owner_ref(&self) -> OwnerReference {
        OwnerReference {
            api_version: "apps/v1".into(),
            kind: "DaemonSet".into(),
            name: self.ds.name_any(),
            uid: self.ds.uid().unwrap_or_default(),
            controller: Some(true),
            block_owner_deletion: Some(true),
        }
    }
}

impl Controller {
    fn mark_all(&mut self) {
        let keys: Vec<Key> = self.sets.state().iter().map(|s| key_of(s)).collect();
        self.dirty.extend(keys);
    }

    fn handle(&mut self, msg: Msg, ready: &mut [bool; 4]) {
        use watcher::Event as E;
        match msg {
            Msg::Ds(e) => match e {
                E::InitDone => ready[0] = true,
                E::Apply(d) | E::InitApply(d) => {
                    self.dirty.insert(key_of(&d));
                }
                E::Delete(d) => {
                    let k = key_of(&d);
                    self.expectations.remove(&k);
                    self.backoff.retain(|(key, _), _| *key != k);
                }
                E::Init => {}
            },
            Msg::Pod(e) => match e {
                E::InitDone => {
                    ready[1] = true;
                    self.mark_all();
                }
                E::Apply(p) | E::InitApply(p) => self.pod_changed(&p, false),
                E::Delete(p) => self.pod_changed(&p, true),
                E::Init => {}
            },
            // A node appearing, changing labels or taints, or going concerns every DaemonSet.
            Msg::Node(e) => match e {
                E::InitDone => {
                    ready[2] = true;
                    self.mark_all();
                }
                E::Apply(_) | E::Delete(_) => self.mark_all(),
                E::InitApply(_) | E::Init => {}
            },
            Msg::Rev(e) => match e {
                E::InitDone => ready[3] = true,
                E::Apply(r) | E::InitApply(r) | E::Delete(r) => {
                    if let Some(k) = ds_key(r.namespace(), controller_of(&r.metadata)) {
                        self.dirty.insert(k);
                    }
                }
                E::Init => {}
            },
        }
    }

    /// Observes a pod event for expectations and marks the DaemonSets it concerns.
    fn pod_changed(&mut self, pod: &Pod, deleted: bool) {
        let uid = pod.uid().unwrap_or_default();
        let key = ds_key(pod.namespace(), controller_ref(pod));
        let prev = if deleted || key.is_none() {
            self.seen.remove(&uid)
        } else {
            None
        };
        if let Some(prev) = prev {
            if let Some(e) = self.expectations.get_mut(&prev) {
                e.dels.remove(&uid);
            }
            self.dirty.insert(prev);
        }
        if let Some(key) = key {
            if !deleted && !self.seen.contains_key(&uid) {
                self.seen.insert(uid.clone(), key.clone());
                if let Some(e) = self.expectations.get_mut(&key) {
                    e.adds -= 1;
                }
            }
            if deleted || pod.metadata.deletion_timestamp.is_some() {
                if let Some(e) = self.expectations.get_mut(&key) {
                    e.dels.remove(&uid);
                }
            }
            self.dirty.insert(key);
        } else if !deleted && controller_ref(pod).is_none() {
            let ns = pod.namespace().unwrap_or_default();
            let keys: Vec<Key> = self
                .sets
                .state()
                .iter()
                .filter(|s| s.namespace().as_deref() == Some(ns.as_str()))
                .filter(|s| {
                    s.spec
                        .as_ref()
                        .is_some_and(|sp| selector_matches(&sp.selector, pod.labels()))
                })
                .map(|s| key_of(s))
                .collect();
            self.dirty.extend(keys);
        }
    }

    async fn event(&self, ds: &DaemonSet, type_: EventType, reason: &str, action: &str, note: String) {
        let ev = Event {
            type_,
            reason: reason.into(),
            note: Some(note),
            action: action.into(),
            secondary: None,
        };
        let mut r: ObjectReference = ds.object_ref(&());
        r.resource_version = None;
        if let Err(e) = self.recorder.publish(&ev, &r).await {
            tracing::debug!(error = %e, "publishing daemonset event failed");
        }
    }

    /// upstream `syncDaemonSet`.
    async fn sync(&mut self, key: &Key) -> Result<(), Error> {
        let Some(ds) = self.sets.get(&ObjectRef::new(&key.1).within(&key.0)) else {
            self.expectations.remove(key);
            return Ok(());
        };
        // upstream: a DaemonSet being deleted is left alone; its history may be gone already.
        if ds.metadata.deletion_timestamp.is_some() {
            return Ok(());
        }
        let Some(spec) = ds.spec.as_ref() else { return Ok(()) };
        let empty = spec.selector.match_labels.as_ref().is_none_or(|m| m.is_empty())
            && spec.selector.match_expressions.as_ref().is_none_or(|m| m.is_empty());
        if empty {
            let note = "This daemon set is selecting all pods. A non-empty selector is required.".to_string();
            self.event(&ds, EventType::Warning, "SelectingAll", "Sync", note).await;
            return Ok(());
        }
        let pods = self.claim_pods(&ds).await?;
        let (cur, old, collisions) = self.construct_history(&ds).await?;
        let view = View {
            key: key.clone(),
            template: spec.template.clone(),
            daemon_spec: placement::daemon_spec(&spec.template.spec.clone().unwrap_or_default()),
            hash: cur
                .labels()
                .get(history::HASH_LABEL)
                .cloned()
                .unwrap_or_else(|| cur.name_any()),
            generation: ds.annotations().get(TEMPLATE_GENERATION_ANNOTATION).cloned(),
            ds: ds.clone(),
        };
        let mut nodes: Vec<Arc<Node>> = self.nodes.state();
        nodes.sort_by_key(|n| n.name_any());
        if !self.satisfied(key) {
            tracing::debug!(daemonset = %key.1, "waiting for earlier creations/deletions to be observed");
            return self.write_status(&view, &nodes, &pods, collisions, false).await;
        }
        let acted = self.manage(&view, &nodes, &pods).await?;
        if !acted && self.satisfied(key) && view.rolling().is_some() {
            self.rolling_update(&view, &nodes, &pods).await?;
        }
        self.cleanup_history(&view, &old, &pods).await?;
        self.write_status(&view, &nodes, &pods, collisions, true).await
    }

    fn satisfied(&self, key: &Key) -> bool {
        self.expectations.get(key).is_none_or(Expectation::satisfied)
    }

    /// upstream `ClaimPods`: owned pods still selected are kept, others released; matching
    /// orphans adopted.
    async fn claim_pods(&self, ds: &DaemonSet) -> Result<Vec<Arc<Pod>>, Error> {
        let ns = ds.namespace().unwrap_or_default();
        let uid = ds.uid().unwrap_or_default();
        let selector = ds.spec.as_ref().map(|s| s.selector.clone()).unwrap_or_default();
        let api: Api<Pod> = Api::namespaced(self.client.clone(), &ns);
        let mut owned = Vec::new();
        for pod in self.pods.state() {
            if pod.namespace().as_deref() != Some(ns.as_str()) {
                continue;
            }
            let matches = selector_matches(&selector, pod.labels());
            match controller_ref(&pod) {
                Some(r) if r.uid == uid => {
                    if matches {
                        owned.push(pod);
                    } else {
                        tracing::debug!(pod = %pod.name_any(), "releasing pod no longer selected");
                        let rest: Vec<&OwnerReference> =
                            pod.owner_references().iter().filter(|r| r.uid != uid).collect();
                        let refs = if rest.is_empty() { json!(null) } else { json!(rest) };
                        let patch = json!({"metadata": {"uid": pod.uid(), "ownerReferences": refs}});
                        ignore_gone(
                            api.patch(&pod.name_any(), &PatchParams::default(), &Patch::Merge(&patch))
                                .await,
                        )?;
                    }
                }
                Some(_) => {}
                None if matches && pod.metadata.deletion_timestamp.is_none() => {
                    tracing::debug!(pod = %pod.name_any(), "adopting orphan pod");
                    let mut refs = pod.owner_references().to_vec();
                    refs.push(OwnerReference {
                        api_version: "apps/v1".into(),
                        kind: "DaemonSet".into(),
                        name: ds.name_any(),
                        uid: uid.clone(),
                        controller: Some(true),
                        block_owner_deletion: Some(true),
                    });
                    let patch = json!({"metadata": {"uid": pod.uid(), "ownerReferences": refs}});
                    let res = api
                        .patch(&pod.name_any(), &PatchParams::default(), &Patch::Merge(&patch))
                        .await;
                    if let Some(p) = ignore_gone(res)? {
                        owned.push(Arc::new(p));
                    }
                }
                None => {}
            }
        }
        Ok(owned)
    }

    /// upstream `constructHistory`: the revision recording the current template (created, or
    /// renumbered as the newest when an old one matches: a rollback) and the others.
    async fn construct_history(
        &self,
        ds: &DaemonSet,
    ) -> Result<(ControllerRevision, Vec<Arc<ControllerRevision>>, Option<i32>), Error> {
        let ns = ds.namespace().unwrap_or_default();
        let spec = ds.spec.clone().unwrap_or_default();
        let owner = OwnerReference {
            api_version: "apps/v1".into(),
            kind: "DaemonSet".into(),
            name: ds.name_any(),
            uid: ds.uid().unwrap_or_default(),
            controller: Some(true),
            block_owner_deletion: Some(true),
        };
        let all = self.revs.state();
        let (mut revs, orphans) = history::owned_and_orphans(&all, &ns, &owner.uid, &spec.selector);
        for r in orphans {
            history::adopt(&self.client, &r, owner.clone()).await?;
            revs.push(r);
        }
        history::sort(&mut revs);
        let data = history::template_patch(&spec.template);
        let (current, old): (Vec<_>, Vec<_>) = revs.into_iter().partition(|r| history::records(r, &data));
        let next = old.iter().map(|r| r.revision).max().unwrap_or(0) + 1;
        let status_count = ds.status.as_ref().and_then(|s| s.collision_count);
        let mut collisions = status_count.unwrap_or(0);
        let cur = match current.last() {
            None => {
                let labels = spec
                    .template
                    .metadata
                    .as_ref()
                    .and_then(|m| m.labels.clone())
                    .unwrap_or_default();
                let rev = history::new_revision(owner, &ns, labels, ds.annotations().clone(), data, next);
                // upstream `ComputeHash`: the collision count enters the hash once there is one.
                let probe = |c: i32| (status_count.is_some() || c > 0).then_some(c);
                let created = history::create(&self.client, &ds.name_any(), &rev, &mut collisions, probe).await?;
                tracing::debug!(revision = %created.name_any(), "created daemonset revision");
                created
            }
            Some(last) => {
                // upstream `dedupCurHistories`: one current revision is kept.
                for dup in &current[..current.len() - 1] {
                    tracing::debug!(revision = %dup.name_any(), "deleting duplicate daemonset revision");
                    history::delete(&self.client, dup).await?;
                }
                if last.revision < next {
                    tracing::debug!(revision = %last.name_any(), next, "renumbering matching revision");
                    history::renumber(&self.client, last, next).await?
                } else {
                    (**last).clone()
                }
            }
        };
        let collisions = (status_count.is_some() || collisions > 0).then_some(collisions);
        Ok((cur, old, collisions))
    }

    /// Daemon pods by the node they run on or are pinned to; terminal pods being deleted are
    /// left out (upstream `getNodesToDaemonPods`).
    fn by_node(pods: &[Arc<Pod>]) -> BTreeMap<String, Vec<Arc<Pod>>> {
        let mut m: BTreeMap<String, Vec<Arc<Pod>>> = BTreeMap::new();
        for p in pods {
            if terminal(p) && p.metadata.deletion_timestamp.is_some() {
                continue;
            }
            if let Some(n) = placement::target_node(p) {
                m.entry(n).or_default().push(p.clone());
            }
        }
        m
    }

    /// upstream `manage`: create pods on nodes that should run one and have none, delete failed
    /// pods (with back-off), extra pods, and pods on nodes that should not run one. Returns
    /// whether anything was asked of the API.
    async fn manage(&mut self, v: &View, nodes: &[Arc<Node>], pods: &[Arc<Pod>]) -> Result<bool, Error> {
        let by_node = Self::by_node(pods);
        let surge = v.rolling().is_some_and(|r| update::scaled(r.max_surge.as_ref(), 1) > 0);
        let mut create: Vec<String> = Vec::new();
        let mut delete: Vec<Arc<Pod>> = Vec::new();
        let now = Instant::now();
        let node_names: HashSet<String> = nodes.iter().map(|n| n.name_any()).collect();
        for node in nodes {
            let name = node.name_any();
            let (should_run, should_continue) = placement::should_run(&v.daemon_spec, node);
            let daemon_pods = by_node.get(&name).cloned().unwrap_or_default();
            if should_run && daemon_pods.is_empty() {
                create.push(name);
            } else if should_continue {
                let mut running = Vec::new();
                for p in daemon_pods.iter().filter(|p| p.metadata.deletion_timestamp.is_none()) {
                    match phase(p) {
                        "Failed" => {
                            let bk = (v.key.clone(), name.clone());
                            let (delay, until) = self.backoff.get(&bk).copied().unwrap_or((Duration::ZERO, now));
                            if now < until {
                                tracing::debug!(pod = %p.name_any(), node = %name, "failed daemon pod in back-off");
                                continue;
                            }
                            let delay = (delay * 2).clamp(FAILED_BACKOFF_START, FAILED_BACKOFF_MAX);
                            self.backoff.insert(bk, (delay, now + delay));
                            let note = format!(
                                "Found failed daemon pod {}/{} on node {name}, will try to kill it",
                                v.key.0,
                                p.name_any()
                            );
                            self.event(&v.ds, EventType::Warning, "FailedDaemonPod", "Delete", note)
                                .await;
                            delete.push(p.clone());
                        }
                        "Succeeded" => delete.push(p.clone()),
                        _ => running.push(p.clone()),
                    }
                }
                oldest_first(&mut running);
                if !surge {
                    // More than one pod on a node: all but the oldest go.
                    delete.extend(running.into_iter().skip(1));
                } else if running.len() > 1 {
                    // With surge a node keeps the oldest new pod, and the oldest old pod only
                    // while the new one is not yet available and the old one is ready.
                    let (mut oldest_new, mut oldest_old) = (None, None);
                    for p in running {
                        let slot = if v.updated(&p) {
                            &mut oldest_new
                        } else {
                            &mut oldest_old
                        };
                        if slot.is_none() {
                            *slot = Some(p);
                        } else {
                            delete.push(p);
                        }
                    }
                    if let (Some(new), Some(old)) = (oldest_new, oldest_old) {
                        if ready_since(&old).is_none() || is_available(&new, v.min_ready(), jiff::Timestamp::now()) {
                            delete.push(old);
                        }
                    }
                }
            } else {
                delete.extend(
                    daemon_pods
                        .iter()
                        .filter(|p| p.metadata.deletion_timestamp.is_none())
                        .cloned(),
                );
            }
        }
        // upstream deletes unscheduled pods pinned to nodes that are gone; skiff also deletes
        // bound ones there, which is what upstream's pod GC does for orphaned pods.
        for (node, ps) in &by_node {
            if !node_names.contains(node) {
                tracing::debug!(%node, "deleting daemon pods of a node that is gone");
                delete.extend(ps.iter().filter(|p| p.metadata.deletion_timestamp.is_none()).cloned());
            }
        }
        self.sync_nodes(v, &delete, &create).await
    }

    /// upstream `rollingUpdate`.
    async fn rolling_update(&mut self, v: &View, nodes: &[Arc<Node>], pods: &[Arc<Pod>]) -> Result<bool, Error> {
        let Some(ru) = v.rolling() else { return Ok(false) };
        let mut by_node = Self::by_node(pods);
        let mut should_run: HashMap<String, bool> = HashMap::new();
        for n in nodes {
            let run = placement::should_run(&v.daemon_spec, n).0;
            should_run.insert(n.name_any(), run);
            if run {
                by_node.entry(n.name_any()).or_default();
            }
        }
        let desired = should_run.values().filter(|r| **r).count();
        let mut max_surge = update::scaled(ru.max_surge.as_ref(), desired);
        let mut max_unavailable = update::scaled(ru.max_unavailable.as_ref(), desired);
        if desired > 0 && max_surge == 0 && max_unavailable == 0 {
            // upstream: an impossible configuration falls back to one unavailable.
            max_unavailable = 1;
            max_surge = 0;
        }
        let node_pods: Vec<update::NodePods> = by_node
            .iter()
            .map(|(n, ps)| update::NodePods {
                node: n.clone(),
                pods: ps.iter().map(|p| p.as_ref()).collect(),
                should_run: should_run.get(n).copied().unwrap_or(false),
            })
            .collect();
        let lim = update::Limits {
            max_surge,
            max_unavailable,
            desired,
            min_ready: v.min_ready(),
        };
        let plan = update::plan(&node_pods, |p| v.updated(p), &lim, jiff::Timestamp::now());
        if !plan.delete.is_empty() || !plan.create.is_empty() {
            tracing::debug!(daemonset = %v.key.1, delete = ?plan.delete, create = ?plan.create, "rolling update step");
        }
        let delete: Vec<Arc<Pod>> = pods
            .iter()
            .filter(|p| plan.delete.contains(&p.name_any()))
            .cloned()
            .collect();
        self.sync_nodes(v, &delete, &plan.create).await
    }

    /// upstream `syncNodes`: deletions and creations (in slow-start batches) under
    /// expectations; a new pod is the template with the default tolerations, the revision hash
    /// label and a node affinity pinning it to its node.
    async fn sync_nodes(&mut self, v: &View, delete: &[Arc<Pod>], create: &[String]) -> Result<bool, Error> {
        let create = &create[..create.len().min(BURST)];
        let mut seen_uids = HashSet::new();
        let delete: Vec<&Arc<Pod>> = delete
            .iter()
            .filter(|p| seen_uids.insert(p.uid().unwrap_or_default()))
            .take(BURST)
            .collect();
        if create.is_empty() && delete.is_empty() {
            return Ok(false);
        }
        let mut exp = Expectation::dels(delete.iter().filter_map(|p| p.uid()));
        exp.adds = create.len() as i64;
        self.expectations.insert(v.key.clone(), exp);
        let api: Api<Pod> = Api::namespaced(self.client.clone(), &v.key.0);

        let mut template = v.template.clone();
        let meta = template.metadata.get_or_insert_with(ObjectMeta::default);
        let labels = meta.labels.get_or_insert_with(BTreeMap::new);
        if let Some(g) = &v.generation {
            labels.insert(TEMPLATE_GENERATION_LABEL.into(), g.clone());
        }
        labels.insert(history::HASH_LABEL.into(), v.hash.clone());
        let spec = v.daemon_spec.clone();
        let meta = template.metadata.clone().unwrap_or_default();
        let owner = v.owner_ref();
        let new_pod = |node: &str| Pod {
            metadata: ObjectMeta {
                generate_name: Some(format!("{}-", v.ds.name_any())),
                namespace: Some(v.key.0.clone()),
                labels: meta.labels.clone(),
                annotations: meta.annotations.clone(),
                finalizers: meta.finalizers.clone(),
                owner_references: Some(vec![owner.clone()]),
                ..Default::default()
            },
            spec: Some(PodSpec {
                affinity: Some(placement::pin_to_node(spec.affinity.clone(), node)),
                ..spec.clone()
            }),
            status: None,
        };

        let mut failure = None;
        let mut done = 0;
        let mut batch = 1;
        let pp = PostParams::default();
        while done < create.len() && failure.is_none() {
            let n = batch.min(create.len() - done);
            let batch_pods: Vec<Pod> = create[done..done + n].iter().map(|node| new_pod(node)).collect();
            let results = futures::future::join_all(batch_pods.iter().map(|p| api.create(&pp, p))).await;
            for r in results {
                match r {
                    Ok(p) => {
                        let name = p.name_any();
                        let note = format!("Created pod: {name}");
                        self.event(&v.ds, EventType::Normal, "SuccessfulCreate", "Create", note)
                            .await;
                    }
                    Err(e) => {
                        self.lower_adds(&v.key, 1);
                        let terminating_ns = matches!(&e, kube::Error::Api(a) if a.code == 403 && a.message.contains("being terminated"));
                        if !terminating_ns {
                            let note = format!("Error creating: {}", error_text(&e));
                            self.event(&v.ds, EventType::Warning, "FailedCreate", "Create", note)
                                .await;
                            failure = Some(e);
                        }
                    }
                }
            }
            done += n;
            batch *= 2;
        }
        // Creations never attempted will not be observed.
        self.lower_adds(&v.key, (create.len() - done) as i64);

        let results = futures::future::join_all(delete.iter().map(|p| {
            let dp = DeleteParams {
                preconditions: Some(Preconditions {
                    uid: p.uid(),
                    resource_version: None,
                }),
                ..Default::default()
            };
            let api = api.clone();
            async move { api.delete(&p.name_any(), &dp).await }
        }))
        .await;
        for (p, r) in delete.iter().zip(results) {
            let name = p.name_any();
            match r {
                Ok(_) => {
                    let note = format!("Deleted pod: {name}");
                    self.event(&v.ds, EventType::Normal, "SuccessfulDelete", "Delete", note)
                        .await;
                }
                Err(e) => {
                    if let Some(x) = self.expectations.get_mut(&v.key) {
                        x.dels.remove(&p.uid().unwrap_or_default());
                    }
                    if !matches!(&e, kube::Error::Api(a) if a.code == 404 || a.code == 409) {
                        let note = format!("Error deleting: {}", error_text(&e));
                        self.event(&v.ds, EventType::Warning, "FailedDelete", "Delete", note)
                            .await;
                        failure.get_or_insert(e);
                    }
                }
            }
        }
        match failure {
            Some(e) => Err(e.into()),
            None => Ok(true),
        }
    }

    fn lower_adds(&mut self, key: &Key, n: i64) {
        if let Some(e) = self.expectations.get_mut(key) {
            e.adds -= n;
        }
    }

    /// upstream `cleanupHistory`: the oldest old revisions beyond revisionHistoryLimit go,
    /// unless a pod still carries their hash.
    async fn cleanup_history(&self, v: &View, old: &[Arc<ControllerRevision>], pods: &[Arc<Pod>]) -> Result<(), Error> {
        let limit = v.ds.spec.as_ref().and_then(|s| s.revision_history_limit).unwrap_or(10);
        let mut to_kill = old.len() as i64 - i64::from(limit);
        if to_kill <= 0 {
            return Ok(());
        }
        let live: HashSet<&str> = pods
            .iter()
            .filter_map(|p| p.labels().get(history::HASH_LABEL).map(String::as_str))
            .collect();
        for r in old {
            if to_kill <= 0 {
                break;
            }
            if r.labels()
                .get(history::HASH_LABEL)
                .is_some_and(|h| live.contains(h.as_str()))
            {
                continue;
            }
            tracing::debug!(revision = %r.name_any(), "deleting old daemonset revision");
            history::delete(&self.client, r).await?;
            to_kill -= 1;
        }
        Ok(())
    }
}

/// Treats "gone" and "changed under us" as nothing to do: the next event brings the truth.
fn ignore_gone<T>(r: Result<T, kube::Error>) -> Result<Option<T>, Error> {
    match r {
        Ok(v) => Ok(Some(v)),
        Err(kube::Error::Api(e)) if matches!(e.code, 404 | 409 | 422) => Ok(None),
        Err(e) => Err(e.into()),
    }
}
