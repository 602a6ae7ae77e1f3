//! The ReplicaSet and ReplicationController controller: keeps `replicas` pods matching each
//! owner's selector, adopting orphans, releasing pods relabelled out of the selector, creating
//! in slow-start batches guarded by expectations, and deleting surplus pods by upstream rank.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::events::{Event, EventType, Recorder, Reporter};
use futures::{FutureExt, StreamExt};
use k8s_openapi::api::apps::v1::ReplicaSet;
use k8s_openapi::api::core::v1::{Pod, PodTemplateSpec, ReplicationController};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta, OwnerReference};
use kube::api::{DeleteParams, Patch, PatchParams, PostParams, Preconditions};
use kube::runtime::reflector::{ObjectRef, Store};
use kube::runtime::watcher;
use kube::{Api, Client, ResourceExt};
use serde_json::json;

use crate::expectations::Expectation;
use crate::informer::{self, Informers};
use crate::pods::{controller_ref, is_active, is_available, ready_since, selector_matches};
use crate::Error;

/// upstream: `burstReplicas`, the most pods created or deleted in one sync.
const BURST_REPLICAS: usize = 500;
/// How often owners waiting on time (availability after minReadySeconds, expectation
/// timeouts) are looked at again.
const RECHECK: Duration = Duration::from_secs(1);
/// How often every owner is looked at again.
const RESYNC: Duration = Duration::from_secs(30);
/// upstream: `--concurrent-replicaset-syncs` (5); owners are independent, so more overlap the
/// API round trips of slow-start batches.
const CONCURRENT_SYNCS: usize = 16;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Kind {
    ReplicaSet,
    ReplicationController,
}

impl Kind {
    fn name(self) -> &'static str {
        match self {
            Kind::ReplicaSet => "ReplicaSet",
            Kind::ReplicationController => "ReplicationController",
        }
    }
    fn api_version(self) -> &'static str {
        match self {
            Kind::ReplicaSet => "apps/v1",
            Kind::ReplicationController => "v1",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct Key {
    kind: Kind,
    namespace: String,
    name: String,
}

impl Key {
    fn of(kind: Kind, o: &impl ResourceExt) -> Key {
        Key {
            kind,
            namespace: o.namespace().unwrap_or_default(),
            name: o.name_any(),
        }
    }
}

/// What the controller needs of a ReplicaSet or ReplicationController.
struct Owner {
    key: Key,
    meta: ObjectMeta,
    replicas: i32,
    selector: LabelSelector,
    template: PodTemplateSpec,
    min_ready_seconds: i32,
    status: serde_json::Value,
}

impl Owner {
    fn from_rs(rs: &ReplicaSet) -> Option<Owner> {
        let spec = rs.spec.as_ref()?;
        let status = rs.status.as_ref().map(|s| serde_json::to_value(s).unwrap_or_default());
        Some(Owner {
            key: Key {
                kind: Kind::ReplicaSet,
                namespace: rs.namespace()?,
                name: rs.name_any(),
            },
            meta: rs.metadata.clone(),
            replicas: spec.replicas.unwrap_or(1),
            selector: spec.selector.clone(),
            template: spec.template.clone().unwrap_or_default(),
            min_ready_seconds: spec.min_ready_seconds.unwrap_or(0),
            status: status.unwrap_or_default(),
        })
    }

    fn from_rc(rc: &ReplicationController) -> Option<Owner> {
        let spec = rc.spec.as_ref()?;
        let template = spec.template.clone().unwrap_or_default();
        // upstream: an RC without a selector selects its template's labels.
        let match_labels = spec
            .selector
            .clone()
            .filter(|s| !s.is_empty())
            .or_else(|| template.metadata.as_ref().and_then(|m| m.labels.clone()));
        let status = rc.status.as_ref().map(|s| serde_json::to_value(s).unwrap_or_default());
        Some(Owner {
            key: Key {
                kind: Kind::ReplicationController,
                namespace: rc.namespace()?,
                name: rc.name_any(),
            },
            meta: rc.metadata.clone(),
            replicas: spec.replicas.unwrap_or(1),
            selector: LabelSelector {
                match_labels,
                match_expressions: None,
            },
            template,
            min_ready_seconds: spec.min_ready_seconds.unwrap_or(0),
            status: status.unwrap_or_default(),
        })
    }

    fn uid(&self) -> &str {
        self.meta.uid.as_deref().unwrap_or_default()
    }

    fn deleting(&self) -> bool {
        self.meta.deletion_timestamp.is_some()
    }

    fn owner_ref(&self) -> OwnerReference {
        OwnerReference {
            api_version: self.key.kind.api_version().into(),
            kind: self.key.kind.name().into(),
            name: self.key.name.clone(),
            uid: self.uid().into(),
            controller: Some(true),
            block_owner_deletion: Some(true),
        }
    }

    fn object_ref(&self) -> k8s_openapi::api::core::v1::ObjectReference {
        k8s_openapi::api::core::v1::ObjectReference {
            api_version: Some(self.key.kind.api_version().into()),
            kind: Some(self.key.kind.name().into()),
            name: Some(self.key.name.clone()),
            namespace: Some(self.key.namespace.clone()),
            uid: self.meta.uid.clone(),
            resource_version: self.meta.resource_version.clone(),
            field_path: None,
        }
    }
}

/// upstream: `ActivePodsWithRanks` ordering; pods first in the order are deleted first.
fn deletion_order(pods: &mut [Arc<Pod>]) {
    let mut per_node: HashMap<String, usize> = HashMap::new();
    for p in pods.iter() {
        if let Some(n) = p.spec.as_ref().and_then(|s| s.node_name.clone()) {
            *per_node.entry(n).or_default() += 1;
        }
    }
    let rank_key = |p: &Pod| {
        let node = p.spec.as_ref().and_then(|s| s.node_name.clone());
        let assigned = node.is_some();
        let phase = match p.status.as_ref().and_then(|s| s.phase.as_deref()) {
            Some("Pending") | None => 0,
            Some("Unknown") => 1,
            _ => 2,
        };
        let ready = ready_since(p);
        let colocated = node.map(|n| per_node.get(&n).copied().unwrap_or(0)).unwrap_or(0);
        let ready_time = ready.flatten();
        let restarts: i32 = p
            .status
            .as_ref()
            .and_then(|s| s.container_statuses.as_ref())
            .map(|cs| cs.iter().map(|c| c.restart_count).sum())
            .unwrap_or(0);
        let created = p.metadata.creation_timestamp.as_ref().map(|t| t.0);
        (
            assigned,
            phase,
            ready.is_some(),
            std::cmp::Reverse(colocated),
            std::cmp::Reverse(ready_time),
            std::cmp::Reverse(restarts),
            std::cmp::Reverse(created),
        )
    };
    pods.sort_by_cached_key(|p| rank_key(p));
}

enum Msg {
    Rs(informer::Event<ReplicaSet>),
    Rc(informer::Event<ReplicationController>),
    Pod(informer::Event<Pod>),
}

struct Controller {
    client: Client,
    rs: Store<ReplicaSet>,
    rc: Store<ReplicationController>,
    pods: Store<Pod>,
    rs_recorder: Recorder,
    rc_recorder: Recorder,
    /// Shared by concurrent syncs; held only for map updates, never across an await.
    expectations: Mutex<HashMap<Key, Expectation>>,
    /// Pod uid → the owner it was first seen under, to notice pod creations once.
    seen: HashMap<String, Option<String>>,
    /// Owner uid → its key, to find the owner a pod names.
    by_uid: HashMap<String, Key>,
    dirty: HashSet<Key>,
}

/// The pods of one batch of syncs, grouped once: by controlling owner uid, and orphans by
/// namespace (the only pods a sync looks at).
#[derive(Default)]
struct PodIndex {
    by_owner: HashMap<String, Vec<Arc<Pod>>>,
    orphans: HashMap<String, Vec<Arc<Pod>>>,
}

impl PodIndex {
    fn build(pods: &Store<Pod>) -> PodIndex {
        let mut index = PodIndex::default();
        for pod in pods.state() {
            match controller_ref(&pod) {
                Some(r) => index.by_owner.entry(r.uid.clone()).or_default().push(pod),
                None => index
                    .orphans
                    .entry(pod.namespace().unwrap_or_default())
                    .or_default()
                    .push(pod),
            }
        }
        index
    }
}

/// Runs the ReplicaSet and ReplicationController controller until the future is dropped.
pub async fn run(informers: Informers) -> Result<(), Error> {
    let client = informers.client().clone();
    let (rs, rs_events) = informers.watch(Msg::Rs);
    let (rc, rc_events) = informers.watch(Msg::Rc);
    let (pods, pod_events) = informers.watch(Msg::Pod);
    let streams = vec![rs_events, rc_events, pod_events];
    let mut events = futures::stream::select_all(streams);
    let recorder = |controller: &str| {
        Recorder::new(
            client.clone(),
            Reporter {
                controller: controller.into(),
                instance: None,
            },
        )
    };
    let mut c = Controller {
        rs_recorder: recorder("replicaset-controller"),
        rc_recorder: recorder("replication-controller"),
        client: client.clone(),
        rs,
        rc,
        pods,
        expectations: Mutex::default(),
        seen: HashMap::new(),
        by_uid: HashMap::new(),
        dirty: HashSet::new(),
    };
    let mut ready = [false; 3];
    let mut tick = tokio::time::interval(RECHECK);
    let mut resync = tokio::time::interval(RESYNC);
    loop {
        tokio::select! {
            msg = events.next() => {
                let Some(msg) = msg else { return Ok(()) };
                c.handle(msg, &mut ready);
                // Take in everything already delivered before syncing.
                while let Some(Some(msg)) = events.next().now_or_never() {
                    c.handle(msg, &mut ready);
                }
            }
            _ = tick.tick() => c.mark_waiting(),
            _ = resync.tick() => c.mark_all(),
        }
        if ready.iter().all(|r| *r) && !c.dirty.is_empty() {
            let keys: Vec<Key> = c.dirty.drain().collect();
            let index = Arc::new(PodIndex::build(&c.pods));
            let c_ref = &c;
            let results: Vec<Option<Key>> = futures::stream::iter(keys)
                .map(|key| {
                    let index = index.clone();
                    async move {
                        let r = c_ref.sync(&key, &index).await;
                        r.err().map(|e| {
                            tracing::debug!(error = %e, owner = %key.name, "sync failed (retried)");
                            key
                        })
                    }
                })
                .buffer_unordered(CONCURRENT_SYNCS)
                .collect()
                .await;
            let failed: Vec<Key> = results.into_iter().flatten().collect();
            c.dirty.extend(failed);
        }
    }
}

impl Controller {
    fn owner(&self, key: &Key) -> Option<Owner> {
        match key.kind {
            Kind::ReplicaSet => Owner::from_rs(&*self.rs.get(&ObjectRef::new(&key.name).within(&key.namespace))?),
            Kind::ReplicationController => {
                Owner::from_rc(&*self.rc.get(&ObjectRef::new(&key.name).within(&key.namespace))?)
            }
        }
    }

    fn mark_all(&mut self) {
        let keys: Vec<Key> = self.by_uid.values().cloned().collect();
        self.dirty.extend(keys);
    }

    /// Marks owners whose state changes with time alone: ready pods becoming available after
    /// minReadySeconds, and expectations that may have timed out.
    fn mark_waiting(&mut self) {
        let waiting_expectations: Vec<Key> = self
            .expectations
            .lock()
            .map(|e| {
                e.iter()
                    .filter(|(_, x)| !x.satisfied())
                    .map(|(k, _)| k.clone())
                    .collect()
            })
            .unwrap_or_default();
        self.dirty.extend(waiting_expectations);
        let rs = self.rs.state().into_iter().filter(|o| {
            o.spec.as_ref().is_some_and(|s| s.min_ready_seconds.unwrap_or(0) > 0)
                && o.status
                    .as_ref()
                    .is_some_and(|s| s.ready_replicas != s.available_replicas)
        });
        let rs: Vec<Key> = rs.filter_map(|o| Owner::from_rs(&o)).map(|o| o.key).collect();
        let rc = self.rc.state().into_iter().filter(|o| {
            o.spec.as_ref().is_some_and(|s| s.min_ready_seconds.unwrap_or(0) > 0)
                && o.status
                    .as_ref()
                    .is_some_and(|s| s.ready_replicas != s.available_replicas)
        });
        let rc: Vec<Key> = rc.filter_map(|o| Owner::from_rc(&o)).map(|o| o.key).collect();
        self.dirty.extend(rs.into_iter().chain(rc));
    }

    fn handle(&mut self, msg: Msg, ready: &mut [bool; 3]) {
        match msg {
            Msg::Rs(watcher::Event::InitDone) => ready[0] = true,
            Msg::Rc(watcher::Event::InitDone) => ready[1] = true,
            Msg::Pod(watcher::Event::InitDone) => {
                ready[2] = true;
                self.mark_all();
            }
            Msg::Rs(watcher::Event::Apply(o) | watcher::Event::InitApply(o)) => {
                self.owner_seen(Key::of(Kind::ReplicaSet, &*o), o.uid())
            }
            Msg::Rc(watcher::Event::Apply(o) | watcher::Event::InitApply(o)) => {
                self.owner_seen(Key::of(Kind::ReplicationController, &*o), o.uid())
            }
            Msg::Rs(watcher::Event::Delete(o)) => self.owner_gone(Key::of(Kind::ReplicaSet, &*o), o.uid()),
            Msg::Rc(watcher::Event::Delete(o)) => self.owner_gone(Key::of(Kind::ReplicationController, &*o), o.uid()),
            Msg::Pod(watcher::Event::Apply(p) | watcher::Event::InitApply(p)) => self.pod_changed(&p, false),
            Msg::Pod(watcher::Event::Delete(p)) => self.pod_changed(&p, true),
            Msg::Rs(watcher::Event::Init) | Msg::Rc(watcher::Event::Init) | Msg::Pod(watcher::Event::Init) => {}
        }
    }

    fn owner_seen(&mut self, key: Key, uid: Option<String>) {
        if let Some(uid) = uid {
            self.by_uid.insert(uid, key.clone());
        }
        self.dirty.insert(key);
    }

    fn owner_gone(&mut self, key: Key, uid: Option<String>) {
        if let Some(uid) = uid {
            self.by_uid.remove(&uid);
        }
        if let Ok(mut e) = self.expectations.lock() {
            e.remove(&key);
        }
    }

    fn owner_key_of(pod: &Pod, r: &OwnerReference) -> Option<Key> {
        let kind = match (r.api_version.as_str(), r.kind.as_str()) {
            ("apps/v1", "ReplicaSet") => Kind::ReplicaSet,
            ("v1", "ReplicationController") => Kind::ReplicationController,
            _ => return None,
        };
        Some(Key {
            kind,
            namespace: pod.namespace()?,
            name: r.name.clone(),
        })
    }

    /// Observes a pod event for expectations and marks the owners it concerns.
    fn pod_changed(&mut self, pod: &Pod, deleted: bool) {
        let uid = pod.uid().unwrap_or_default();
        let key = controller_ref(pod).and_then(|r| Self::owner_key_of(pod, r));
        if let Some(key) = &key {
            if let Ok(mut exp) = self.expectations.lock() {
                if let Some(e) = exp.get_mut(key) {
                    if !self.seen.contains_key(&uid) && !deleted {
                        e.adds -= 1;
                    }
                    if deleted || pod.metadata.deletion_timestamp.is_some() {
                        e.dels.remove(&uid);
                    }
                }
            }
            self.dirty.insert(key.clone());
        }
        // The owner it had before (a release, or ownership moving) wants another look too.
        if deleted {
            if let Some(Some(prev)) = self.seen.remove(&uid) {
                self.mark_by_uid(&prev);
            }
        } else {
            let prev = self.seen.insert(uid, controller_ref(pod).map(|r| r.uid.clone()));
            if let Some(Some(prev)) = prev {
                if controller_ref(pod).is_none_or(|r| r.uid != prev) {
                    self.mark_by_uid(&prev);
                }
            }
        }
        // An orphan may be adopted by any owner in its namespace whose selector matches.
        if key.is_none() && !deleted {
            let labels = pod.labels();
            let ns = pod.namespace();
            let rs = self.rs.state().into_iter().filter(|o| {
                o.namespace() == ns && o.spec.as_ref().is_some_and(|s| selector_matches(&s.selector, labels))
            });
            let rs: Vec<Key> = rs.map(|o| Key::of(Kind::ReplicaSet, &*o)).collect();
            let rc = self.rc.state().into_iter().filter(|o| o.namespace() == ns);
            let rc: Vec<Key> = rc
                .filter_map(|o| Owner::from_rc(&o))
                .filter(|o| selector_matches(&o.selector, labels))
                .map(|o| o.key)
                .collect();
            self.dirty.extend(rs.into_iter().chain(rc));
        }
    }

    fn mark_by_uid(&mut self, uid: &str) {
        if let Some(key) = self.by_uid.get(uid) {
            self.dirty.insert(key.clone());
        }
    }

    fn recorder(&self, kind: Kind) -> &Recorder {
        match kind {
            Kind::ReplicaSet => &self.rs_recorder,
            Kind::ReplicationController => &self.rc_recorder,
        }
    }

    /// upstream: `syncReplicaSet` — claim pods, manage replicas when expectations are met,
    /// then write status.
    async fn sync(&self, key: &Key, index: &PodIndex) -> Result<(), Error> {
        let Some(owner) = self.owner(key) else {
            if let Ok(mut e) = self.expectations.lock() {
                e.remove(key);
            }
            return Ok(());
        };
        let pods_api: Api<Pod> = Api::namespaced(self.client.clone(), &key.namespace);
        let candidates = index
            .by_owner
            .get(owner.uid())
            .into_iter()
            .chain(index.orphans.get(&key.namespace))
            .flatten()
            .cloned()
            .collect::<Vec<Arc<Pod>>>();
        let mut owned = Vec::new();
        for pod in candidates {
            let matches = selector_matches(&owner.selector, pod.labels());
            match controller_ref(&pod) {
                Some(r) if r.uid == owner.uid() => {
                    if matches {
                        owned.push(pod);
                    } else if !owner.deleting() {
                        self.release(&pods_api, &owner, &pod).await?;
                    }
                }
                Some(_) => {}
                None => {
                    if matches && !owner.deleting() && pod.metadata.deletion_timestamp.is_none() {
                        if let Some(p) = self.adopt(&pods_api, &owner, &pod).await? {
                            owned.push(Arc::new(p));
                        }
                    }
                }
            }
        }
        let active: Vec<Arc<Pod>> = owned.iter().filter(|p| is_active(p)).cloned().collect();
        let satisfied = self
            .expectations
            .lock()
            .map(|e| e.get(key).is_none_or(Expectation::satisfied))
            .unwrap_or(true);
        if satisfied && !owner.deleting() {
            self.manage(&pods_api, &owner, active.clone()).await?;
        }
        self.update_status(&owner, &active).await
    }

    async fn release(&self, api: &Api<Pod>, owner: &Owner, pod: &Pod) -> Result<(), Error> {
        let rest: Vec<&OwnerReference> = pod.owner_references().iter().filter(|r| r.uid != owner.uid()).collect();
        let refs = if rest.is_empty() { json!(null) } else { json!(rest) };
        let patch = json!({"metadata": {"uid": pod.uid(), "ownerReferences": refs}});
        match api
            .patch(&pod.name_any(), &PatchParams::default(), &Patch::Merge(&patch))
            .await
        {
            Ok(_) => Ok(()),
            // Gone or changed under us: the next event brings the truth.
            Err(kube::Error::Api(e)) if e.code == 404 || e.code == 409 || e.code == 422 => Ok(()),
            Err(e) => Err(e.into()),
        }
    }

    async fn adopt(&self, api: &Api<Pod>, owner: &Owner, pod: &Pod) -> Result<Option<Pod>, Error> {
        let mut refs = pod.owner_references().to_vec();
        refs.push(owner.owner_ref());
        let patch = json!({"metadata": {"uid": pod.uid(), "ownerReferences": refs}});
        match api
            .patch(&pod.name_any(), &PatchParams::default(), &Patch::Merge(&patch))
            .await
        {
            Ok(p) => Ok(Some(p)),
            Err(kube::Error::Api(e)) if e.code == 404 || e.code == 409 || e.code == 422 => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    /// upstream: `manageReplicas` — create in slow-start batches or delete the lowest-ranked.
    async fn manage(&self, api: &Api<Pod>, owner: &Owner, mut active: Vec<Arc<Pod>>) -> Result<(), Error> {
        let want = usize::try_from(owner.replicas.max(0)).unwrap_or(0);
        if active.len() < want {
            let diff = (want - active.len()).min(BURST_REPLICAS);
            self.expect(&owner.key, Expectation::adds(diff));
            let pod = self.pod_from_template(owner);
            let pp = PostParams::default();
            let mut done = 0;
            let mut batch = 1;
            let mut failure = None;
            // upstream: slow start — batches of 1, 2, 4, … stop at the first failure.
            while done < diff && failure.is_none() {
                let n = batch.min(diff - done);
                let results = futures::future::join_all((0..n).map(|_| api.create(&pp, &pod))).await;
                for r in results {
                    match r {
                        Ok(p) => {
                            let note = format!("Created pod: {}", p.name_any());
                            self.event(owner, EventType::Normal, "SuccessfulCreate", "Create", note)
                                .await;
                        }
                        Err(e) => {
                            self.lower_adds(&owner.key, 1);
                            let note = format!("Error creating: {}", crate::events::error_text(&e));
                            self.event(owner, EventType::Warning, "FailedCreate", "Create", note)
                                .await;
                            failure = Some(e);
                        }
                    }
                }
                done += n;
                batch *= 2;
            }
            // Creations never attempted will not be observed.
            self.lower_adds(&owner.key, (diff - done) as i64);
            if let Some(e) = failure {
                return Err(e.into());
            }
        } else if active.len() > want {
            let diff = (active.len() - want).min(BURST_REPLICAS);
            deletion_order(&mut active);
            let victims = &active[..diff];
            self.expect(&owner.key, Expectation::dels(victims.iter().filter_map(|p| p.uid())));
            for pod in victims {
                let dp = DeleteParams {
                    preconditions: Some(Preconditions {
                        uid: pod.uid(),
                        resource_version: None,
                    }),
                    ..Default::default()
                };
                match api.delete(&pod.name_any(), &dp).await {
                    Ok(_) => {
                        let note = format!("Deleted pod: {}", pod.name_any());
                        self.event(owner, EventType::Normal, "SuccessfulDelete", "Delete", note)
                            .await;
                    }
                    Err(e) => {
                        if let Ok(mut exp) = self.expectations.lock() {
                            if let Some(x) = exp.get_mut(&owner.key) {
                                x.dels.remove(&pod.uid().unwrap_or_default());
                            }
                        }
                        if !matches!(&e, kube::Error::Api(a) if a.code == 404) {
                            let note = format!("Error deleting: {}", crate::events::error_text(&e));
                            self.event(owner, EventType::Warning, "FailedDelete", "Delete", note)
                                .await;
                        }
                    }
                }
            }
        }
        Ok(())
    }

    fn lower_adds(&self, key: &Key, n: i64) {
        if let Ok(mut exp) = self.expectations.lock() {
            if let Some(e) = exp.get_mut(key) {
                e.adds -= n;
            }
        }
    }

    fn expect(&self, key: &Key, e: Expectation) {
        if let Ok(mut exp) = self.expectations.lock() {
            exp.insert(key.clone(), e);
        }
    }

    fn pod_from_template(&self, owner: &Owner) -> Pod {
        let tm = owner.template.metadata.clone().unwrap_or_default();
        Pod {
            metadata: ObjectMeta {
                generate_name: Some(format!("{}-", owner.key.name)),
                namespace: Some(owner.key.namespace.clone()),
                labels: tm.labels,
                annotations: tm.annotations,
                finalizers: tm.finalizers,
                owner_references: Some(vec![owner.owner_ref()]),
                ..Default::default()
            },
            spec: owner.template.spec.clone(),
            status: None,
        }
    }

    async fn event(&self, owner: &Owner, type_: EventType, reason: &str, action: &str, note: String) {
        let ev = Event {
            type_,
            reason: reason.into(),
            note: Some(note),
            action: action.into(),
            secondary: None,
        };
        let _ = self.recorder(owner.key.kind).publish(&ev, &owner.object_ref()).await;
    }

    async fn update_status(&self, owner: &Owner, active: &[Arc<Pod>]) -> Result<(), Error> {
        let now = jiff::Timestamp::now();
        let template_labels = owner
            .template
            .metadata
            .as_ref()
            .and_then(|m| m.labels.clone())
            .unwrap_or_default();
        let fully = active
            .iter()
            .filter(|p| template_labels.iter().all(|(k, v)| p.labels().get(k) == Some(v)))
            .count();
        let ready = active.iter().filter(|p| ready_since(p).is_some()).count();
        let available = active
            .iter()
            .filter(|p| is_available(p, owner.min_ready_seconds, now))
            .count();
        let want = json!({
            "replicas": active.len(),
            "fullyLabeledReplicas": fully,
            "readyReplicas": ready,
            "availableReplicas": available,
            "observedGeneration": owner.meta.generation,
        });
        let current = &owner.status;
        let field = |k: &str| current.get(k).cloned().unwrap_or(json!(0));
        let same = ["replicas", "fullyLabeledReplicas", "readyReplicas", "availableReplicas"]
            .iter()
            .all(|k| field(k) == want[*k])
            && current.get("observedGeneration").cloned().unwrap_or(json!(null)) == want["observedGeneration"];
        if same {
            return Ok(());
        }
        let patch = json!({"status": want});
        let pp = PatchParams::default();
        let name = &owner.key.name;
        let res = match owner.key.kind {
            Kind::ReplicaSet => Api::<ReplicaSet>::namespaced(self.client.clone(), &owner.key.namespace)
                .patch_status(name, &pp, &Patch::Merge(&patch))
                .await
                .map(|_| ()),
            Kind::ReplicationController => {
                Api::<ReplicationController>::namespaced(self.client.clone(), &owner.key.namespace)
                    .patch_status(name, &pp, &Patch::Merge(&patch))
                    .await
                    .map(|_| ())
            }
        };
        match res {
            Err(kube::Error::Api(e)) if e.code == 404 => Ok(()),
            r => r.map_err(Error::from),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    #[test]
    fn deletion_prefers_unscheduled_pending_notready_newest() {
        let pod = |name: &str, node: Option<&str>, phase: &str, ready: bool, created: &str| -> Arc<Pod> {
            Arc::new(
                serde_json::from_value(json!({
                    "metadata": {"name": name, "creationTimestamp": created},
                    "spec": {"nodeName": node, "containers": []},
                    "status": {"phase": phase, "conditions": [{"type": "Ready", "status": if ready {"True"} else {"False"}}]}
                }))
                .unwrap(),
            )
        };
        let mut pods = vec![
            pod("old-ready", Some("n1"), "Running", true, "2024-01-01T00:00:00Z"),
            pod("new-ready", Some("n2"), "Running", true, "2024-01-02T00:00:00Z"),
            pod("not-ready", Some("n3"), "Running", false, "2024-01-01T00:00:00Z"),
            pod("pending", Some("n4"), "Pending", false, "2024-01-01T00:00:00Z"),
            pod("unscheduled", None, "Pending", false, "2024-01-01T00:00:00Z"),
        ];
        deletion_order(&mut pods);
        let names: Vec<String> = pods.iter().map(|p| p.name_any()).collect();
        assert_eq!(names, ["unscheduled", "pending", "not-ready", "new-ready", "old-ready"]);
    }
}
