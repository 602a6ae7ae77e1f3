//! The StatefulSet controller (upstream `pkg/controller/statefulset`): pods `NAME-0..N-1` with
//! stable identity and one claim per volumeClaimTemplate, created in order and each only after
//! its predecessors are Running and Ready (OrderedReady) or all at once (Parallel), removed in
//! reverse order; updates by RollingUpdate (highest ordinal first, down to `partition`) or
//! OnDelete, against ControllerRevisions; status and events as upstream writes them.

mod claims;
mod identity;
mod status;

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use futures::{FutureExt, StreamExt};
use k8s_openapi::api::apps::v1::{ControllerRevision, StatefulSet};
use k8s_openapi::api::core::v1::{ObjectReference, PersistentVolumeClaim, Pod, PodTemplateSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;
use kube::api::{DeleteParams, Patch, PatchParams, PostParams, Preconditions};
use kube::runtime::reflector::{ObjectRef, Store};
use kube::runtime::watcher;

use crate::informer::{self, Informers};
use kube::{Api, Client, Resource, ResourceExt};
use serde_json::json;

use crate::events::{error_text, Event, EventType, Recorder, Reporter};
use crate::expectations::Expectation;
use crate::history;
use crate::pods::{controller_ref, is_available, ready_since, selector_matches};
use crate::Error;
use identity::ordinal;
use status::count;

/// How often every set is looked at again (availability after minReadySeconds, timeouts).
const RESYNC: Duration = Duration::from_secs(1);
/// upstream `MaxBatchSize`: the most pods created at once in Parallel mode.
const MAX_BATCH: usize = 500;

type Key = (String, String);

enum Msg {
    Set(informer::Event<StatefulSet>),
    Pod(informer::Event<Pod>),
    Rev(informer::Event<ControllerRevision>),
    Pvc(informer::Event<PersistentVolumeClaim>),
}

struct Controller {
    client: Client,
    sets: Store<StatefulSet>,
    pods: Store<Pod>,
    revs: Store<ControllerRevision>,
    pvcs: Store<PersistentVolumeClaim>,
    recorder: Recorder,
    expectations: HashMap<Key, Expectation>,
    /// Pods controlled by a StatefulSet, by uid, with their set: to notice creations once and
    /// to look at a set again when a pod leaves it.
    seen: HashMap<String, Key>,
    dirty: HashSet<Key>,
}

/// Runs the StatefulSet controller until the future is dropped.
pub async fn run(informers: Informers) -> Result<(), Error> {
    let client = informers.client().clone();
    let (sets, set_events) = informers.watch(Msg::Set);
    let (pods, pod_events) = informers.watch(Msg::Pod);
    let (revs, rev_events) = informers.watch(Msg::Rev);
    let (pvcs, pvc_events) = informers.watch(Msg::Pvc);
    let streams = vec![set_events, pod_events, rev_events, pvc_events];
    let mut events = futures::stream::select_all(streams);
    let mut c = Controller {
        recorder: Recorder::new(
            client.clone(),
            Reporter {
                controller: "statefulset-controller".into(),
                instance: None,
            },
        ),
        client,
        sets,
        pods,
        revs,
        pvcs,
        expectations: HashMap::new(),
        seen: HashMap::new(),
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
                    tracing::debug!(error = %e, set = %key.1, "statefulset sync failed (retried)");
                    c.dirty.insert(key);
                }
            }
        }
    }
}

fn key_of(set: &StatefulSet) -> Key {
    (set.namespace().unwrap_or_default(), set.name_any())
}

/// The set controlling an object, from its controller reference.
fn set_key(ns: Option<String>, r: Option<&OwnerReference>) -> Option<Key> {
    let r = r?;
    (r.kind == "StatefulSet" && r.api_version.starts_with("apps/")).then(|| (ns.unwrap_or_default(), r.name.clone()))
}

fn phase(pod: &Pod) -> &str {
    pod.status.as_ref().and_then(|s| s.phase.as_deref()).unwrap_or("")
}

fn terminating(pod: &Pod) -> bool {
    pod.metadata.deletion_timestamp.is_some()
}

/// upstream `isRunningAndReady`.
fn running_and_ready(pod: &Pod) -> bool {
    phase(pod) == "Running" && ready_since(pod).is_some()
}

/// upstream `isRunningAndAvailable`.
fn running_and_available(pod: &Pod, min_ready: i32, now: jiff::Timestamp) -> bool {
    phase(pod) == "Running" && is_available(pod, min_ready, now)
}

/// upstream `isUnavailable`: not healthy (running, ready, not terminating) or not available.
fn unavailable(pod: &Pod, min_ready: i32, now: jiff::Timestamp) -> bool {
    !running_and_ready(pod) || terminating(pod) || !is_available(pod, min_ready, now)
}

fn revision_of(pod: &Pod) -> &str {
    pod.labels().get(history::HASH_LABEL).map(String::as_str).unwrap_or("")
}

/// What one pass over the replicas decided.
enum Step {
    /// Go on to the next pod.
    Next,
    /// Stop here (monotonic mode waits for this pod).
    Block,
}

impl Controller {
    fn mark_all(&mut self) {
        let keys: Vec<Key> = self.sets.state().iter().map(|s| key_of(s)).collect();
        self.dirty.extend(keys);
    }

    fn handle(&mut self, msg: Msg, ready: &mut [bool; 4]) {
        use watcher::Event as E;
        match msg {
            Msg::Set(e) => match e {
                E::InitDone => ready[0] = true,
                E::Apply(s) | E::InitApply(s) => {
                    self.dirty.insert(key_of(&s));
                }
                E::Delete(s) => {
                    self.expectations.remove(&key_of(&s));
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
            Msg::Rev(e) => match e {
                E::InitDone => ready[2] = true,
                E::Apply(r) | E::InitApply(r) | E::Delete(r) => {
                    if let Some(k) = set_key(r.namespace(), controller_ref_of(&r)) {
                        self.dirty.insert(k);
                    }
                }
                E::Init => {}
            },
            // Claims are read from the cache when a set syncs; the resync brings their changes.
            Msg::Pvc(e) => {
                if matches!(e, E::InitDone) {
                    ready[3] = true;
                }
            }
        }
    }

    /// Observes a pod event for expectations and marks the sets it concerns.
    fn pod_changed(&mut self, pod: &Pod, deleted: bool) {
        let uid = pod.uid().unwrap_or_default();
        let key = set_key(pod.namespace(), controller_ref(pod));
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
            if deleted || terminating(pod) {
                if let Some(e) = self.expectations.get_mut(&key) {
                    e.dels.remove(&uid);
                }
            }
            self.dirty.insert(key);
        } else if !deleted && controller_ref(pod).is_none() {
            // An orphan may be adopted by a set in its namespace whose selector matches.
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

    async fn event(&self, set: &StatefulSet, type_: EventType, reason: &str, action: &str, note: String) {
        let ev = Event {
            type_,
            reason: reason.into(),
            note: Some(note),
            action: action.into(),
            secondary: None,
        };
        let mut r: ObjectReference = set.object_ref(&());
        r.resource_version = None;
        if let Err(e) = self.recorder.publish(&ev, &r).await {
            tracing::debug!(error = %e, "publishing statefulset event failed");
        }
    }

    /// upstream `syncStatefulSet`: claim pods and revisions, act on the pods when the cache has
    /// caught up with earlier actions, write status, trim history.
    async fn sync(&mut self, key: &Key) -> Result<(), Error> {
        let Some(set) = self.sets.get(&ObjectRef::new(&key.1).within(&key.0)) else {
            self.expectations.remove(key);
            return Ok(());
        };
        let set: &StatefulSet = &set;
        let Some(spec) = set.spec.as_ref() else { return Ok(()) };
        let pods = self.claim_pods(set).await?;
        let revs = self.claim_revisions(set).await?;
        let (current, update, collisions) = self.revisions(set, &revs).await?;
        let now = jiff::Timestamp::now();
        let min_ready = spec.min_ready_seconds.unwrap_or(0);
        let mut counts = count(&pods, min_ready, &current.name_any(), &update.name_any(), now);
        let satisfied = self.expectations.get(key).is_none_or(Expectation::satisfied);
        if satisfied && set.metadata.deletion_timestamp.is_none() {
            let updated_one = self.update_pods(set, &pods, &current, &update).await?;
            counts.current -= i32::from(updated_one);
        } else {
            tracing::debug!(set = %key.1, "waiting for earlier creations/deletions to be observed");
        }
        self.write_status(set, &counts, &current, &update, collisions).await?;
        let mut live: HashSet<String> = [current.name_any(), update.name_any()].into();
        live.extend(pods.iter().map(|p| revision_of(p).to_string()));
        let limit = spec.revision_history_limit.unwrap_or(10);
        for r in history::to_truncate(&revs, &live, limit) {
            tracing::debug!(revision = %r.name_any(), "truncating statefulset history");
            history::delete(&self.client, r).await?;
        }
        Ok(())
    }

    fn owner_ref(set: &StatefulSet) -> OwnerReference {
        OwnerReference {
            api_version: "apps/v1".into(),
            kind: "StatefulSet".into(),
            name: set.name_any(),
            uid: set.uid().unwrap_or_default(),
            controller: Some(true),
            block_owner_deletion: Some(true),
        }
    }

    /// upstream `ClaimPods` with `isMemberOf`: owned pods still selected and named for the set
    /// are kept, others released; matching orphans adopted.
    async fn claim_pods(&self, set: &StatefulSet) -> Result<Vec<Arc<Pod>>, Error> {
        let ns = set.namespace().unwrap_or_default();
        let uid = set.uid().unwrap_or_default();
        let selector = &set.spec.as_ref().map(|s| s.selector.clone()).unwrap_or_default();
        let deleting = set.metadata.deletion_timestamp.is_some();
        let api: Api<Pod> = Api::namespaced(self.client.clone(), &ns);
        let mut owned = Vec::new();
        for pod in self.pods.state() {
            if pod.namespace().as_deref() != Some(ns.as_str()) {
                continue;
            }
            let belongs = selector_matches(selector, pod.labels()) && identity::is_member(set, &pod);
            match controller_ref(&pod) {
                Some(r) if r.uid == uid => {
                    if belongs {
                        owned.push(pod);
                    } else if !deleting {
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
                None if belongs && !deleting && !terminating(&pod) => {
                    tracing::debug!(pod = %pod.name_any(), "adopting orphan pod");
                    let mut refs = pod.owner_references().to_vec();
                    refs.push(Self::owner_ref(set));
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

    /// The set's revisions, sorted, after adopting orphans that match its selector.
    async fn claim_revisions(&self, set: &StatefulSet) -> Result<Vec<Arc<ControllerRevision>>, Error> {
        let ns = set.namespace().unwrap_or_default();
        let selector = set.spec.as_ref().map(|s| s.selector.clone()).unwrap_or_default();
        let all = self.revs.state();
        let (mut owned, orphans) = history::owned_and_orphans(&all, &ns, &set.uid().unwrap_or_default(), &selector);
        if set.metadata.deletion_timestamp.is_none() {
            for r in orphans {
                history::adopt(&self.client, &r, Self::owner_ref(set)).await?;
                owned.push(r);
            }
        }
        history::sort(&mut owned);
        Ok(owned)
    }

    /// upstream `getStatefulSetRevisions`: the update revision is the one recording the current
    /// template (created, or an older equal one renumbered as the newest: a rollback); the
    /// current revision is the one status names, else the update revision.
    async fn revisions(
        &self,
        set: &StatefulSet,
        revs: &[Arc<ControllerRevision>],
    ) -> Result<(ControllerRevision, ControllerRevision, i32), Error> {
        let spec = set.spec.as_ref().cloned().unwrap_or_default();
        let status = set.status.clone().unwrap_or_default();
        let mut collisions = status.collision_count.unwrap_or(0);
        let data = history::template_patch(&spec.template);
        let next = history::next_revision(revs);
        let equal: Vec<&Arc<ControllerRevision>> = revs.iter().filter(|r| history::records(r, &data)).collect();
        let update = match (equal.last(), revs.last()) {
            (Some(e), Some(last)) if e.name_any() == last.name_any() => (**last).clone(),
            (Some(e), _) => {
                tracing::debug!(revision = %e.name_any(), next, "template matches an older revision; renumbering it");
                history::renumber(&self.client, e, next).await?
            }
            (None, _) => {
                let labels = spec
                    .template
                    .metadata
                    .as_ref()
                    .and_then(|m| m.labels.clone())
                    .unwrap_or_default();
                let rev = history::new_revision(
                    Self::owner_ref(set),
                    &set.namespace().unwrap_or_default(),
                    labels,
                    set.annotations().clone(),
                    data,
                    next,
                );
                let created = history::create(&self.client, &set.name_any(), &rev, &mut collisions, Some).await?;
                tracing::debug!(revision = %created.name_any(), "created statefulset revision");
                created
            }
        };
        let current = status
            .current_revision
            .as_deref()
            .and_then(|name| revs.iter().find(|r| r.name_any() == name))
            .map(|r| (**r).clone())
            .unwrap_or_else(|| update.clone());
        Ok((current, update, collisions))
    }

    /// upstream `updateStatefulSet`: create missing pods, restart failed ones, enforce identity
    /// and storage, scale down from the highest ordinal, then roll one pod to the update
    /// revision. Returns whether a pod was deleted for the update.
    async fn update_pods(
        &mut self,
        set: &StatefulSet,
        pods: &[Arc<Pod>],
        current: &ControllerRevision,
        update: &ControllerRevision,
    ) -> Result<bool, Error> {
        let Some(spec) = set.spec.as_ref() else {
            return Ok(false);
        };
        let now = jiff::Timestamp::now();
        let min_ready = spec.min_ready_seconds.unwrap_or(0);
        let monotonic = spec.pod_management_policy.as_deref() != Some("Parallel");
        let replicas = usize::try_from(spec.replicas.unwrap_or(1)).unwrap_or(0);
        let start = spec.ordinals.as_ref().and_then(|o| o.start).unwrap_or(0).max(0);
        let mut slots: Vec<Option<Arc<Pod>>> = vec![None; replicas];
        let mut condemned: Vec<Arc<Pod>> = Vec::new();
        for p in pods {
            let Some(o) = ordinal(p) else { continue };
            match usize::try_from(o - start).ok().filter(|i| *i < replicas) {
                Some(i) => slots[i] = Some(p.clone()),
                None => condemned.push(p.clone()),
            }
        }
        condemned.sort_by_key(|p| std::cmp::Reverse(ordinal(p)));
        // The first unavailable pod (a missing one counts) may be deleted by scale-down even
        // when others wait (upstream `firstUnavailablePod`).
        let first_unavailable: Option<String> = slots
            .iter()
            .enumerate()
            .find(|(_, p)| p.as_ref().is_none_or(|p| unavailable(p, min_ready, now)))
            .map(|(i, _)| identity::pod_name(set, start + i as i32))
            .or_else(|| {
                condemned
                    .iter()
                    .rev()
                    .find(|p| unavailable(p, min_ready, now))
                    .map(|p| p.name_any())
            });

        let strategy = spec.update_strategy.clone().unwrap_or_default();
        let partition = strategy
            .rolling_update
            .as_ref()
            .and_then(|r| r.partition)
            .filter(|_| strategy.type_.as_deref() != Some("OnDelete"));
        let current_template = history::template_of(current).unwrap_or_else(|| spec.template.clone());
        let update_template = history::template_of(update).unwrap_or_else(|| spec.template.clone());

        // Living replicas, in ordinal order; a monotonic pass stops at the first pod that is
        // not yet usable, a burst pass goes over all of them.
        let mut to_create: Vec<(i32, &PodTemplateSpec, String)> = Vec::new();
        let mut blocked = false;
        for (i, slot) in slots.iter().enumerate() {
            let ord = start + i as i32;
            let step = match slot {
                None if self.claim_is_stale(set, ord) => {
                    tracing::debug!(
                        ordinal = ord,
                        "waiting for a deleted claim to go before creating the pod"
                    );
                    Step::Block
                }
                None => {
                    // upstream `newVersionedStatefulSetPod`: below the partition stays at the
                    // current revision.
                    let (t, rev) = if partition.is_some_and(|p| ord < start + p) {
                        (&current_template, current.name_any())
                    } else {
                        (&update_template, update.name_any())
                    };
                    to_create.push((ord, t, rev));
                    Step::Block
                }
                Some(pod) => self.process_replica(set, pod, monotonic, min_ready, now).await?,
            };
            if matches!(step, Step::Block) && monotonic {
                blocked = true;
                break;
            }
        }
        if !to_create.is_empty() {
            self.create_pods(set, &to_create).await?;
            return Ok(false);
        }
        if blocked {
            return Ok(false);
        }

        // Claims of pods about to be removed by scale-down follow the retention policy.
        for p in &condemned {
            self.fix_claims(set, p, true).await?;
        }

        // Scale down, highest ordinal first.
        let mut deleted_any = false;
        for p in &condemned {
            if terminating(p) {
                if monotonic {
                    tracing::debug!(pod = %p.name_any(), "waiting for pod to terminate before scaling down further");
                    return Ok(false);
                }
                continue;
            }
            let first = first_unavailable.as_deref() == Some(p.name_any().as_str());
            if monotonic && !first && (!running_and_ready(p) || !running_and_available(p, min_ready, now)) {
                tracing::debug!(pod = %p.name_any(), "waiting for pods to be ready before scaling down");
                return Ok(false);
            }
            tracing::debug!(pod = %p.name_any(), "terminating pod for scale down");
            self.delete_pod(set, p).await?;
            deleted_any = true;
            if monotonic {
                return Ok(false);
            }
        }
        if deleted_any || strategy.type_.as_deref() == Some("OnDelete") {
            return Ok(false);
        }

        // Rolling update: the highest ordinal not at the update revision goes first, and only
        // while every pod above it is available again.
        let update_min = usize::try_from(partition.unwrap_or(0)).unwrap_or(0);
        for target in (update_min..slots.len()).rev() {
            let Some(p) = &slots[target] else { return Ok(false) };
            if revision_of(p) != update.name_any() && !terminating(p) {
                tracing::debug!(pod = %p.name_any(), "terminating pod for update");
                self.delete_pod(set, p).await?;
                return Ok(true);
            }
            if unavailable(p, min_ready, now) {
                tracing::debug!(pod = %p.name_any(), "waiting for pod to update");
                return Ok(false);
            }
        }
        Ok(false)
    }

    /// upstream `processReplica` for a pod that exists.
    async fn process_replica(
        &mut self,
        set: &StatefulSet,
        pod: &Pod,
        monotonic: bool,
        min_ready: i32,
        now: jiff::Timestamp,
    ) -> Result<Step, Error> {
        // upstream: a pod that ended (Failed, or Succeeded after an eviction) is recreated.
        if matches!(phase(pod), "Failed" | "Succeeded") {
            if !terminating(pod) {
                tracing::debug!(pod = %pod.name_any(), phase = phase(pod), "recreating finished pod");
                self.delete_pod(set, pod).await?;
            }
            return Ok(Step::Block);
        }
        let ord = ordinal(pod).unwrap_or(0);
        if phase(pod) == "Pending" {
            self.create_claims(set, &pod.name_any(), ord).await?;
        }
        if monotonic && (terminating(pod) || !running_and_ready(pod) || !running_and_available(pod, min_ready, now)) {
            tracing::debug!(pod = %pod.name_any(), "waiting for pod to be running, ready and available");
            return Ok(Step::Block);
        }
        self.fix_claims(set, pod, false).await?;
        if !identity::identity_matches(set, pod) {
            let name = pod.name_any();
            let patch = json!({"metadata": {"labels": {
                identity::POD_NAME_LABEL: name,
                identity::POD_INDEX_LABEL: ord.to_string(),
            }}});
            let api: Api<Pod> = Api::namespaced(self.client.clone(), &pod.namespace().unwrap_or_default());
            let res = api.patch(&name, &PatchParams::default(), &Patch::Merge(&patch)).await;
            match res {
                Ok(_) => {}
                Err(e) => {
                    let note = format!(
                        "update Pod {name} in StatefulSet {} failed error: {}",
                        set.name_any(),
                        error_text(&e)
                    );
                    self.event(set, EventType::Warning, "FailedUpdate", "Update", note)
                        .await;
                    return Err(e.into());
                }
            }
        }
        if !identity::storage_matches(set, pod) {
            // Pod volumes are immutable; upstream still creates the missing claims.
            self.create_claims(set, &pod.name_any(), ord).await?;
        }
        Ok(Step::Next)
    }

    /// upstream `PodClaimIsStale`: a claim of this ordinal is being deleted, so the pod must
    /// wait for it to go before it is created with a fresh one.
    fn claim_is_stale(&self, set: &StatefulSet, ord: i32) -> bool {
        identity::claims(set, ord).iter().any(|c| {
            self.pvcs
                .get(&ObjectRef::new(&c.name_any()).within(&c.namespace().unwrap_or_default()))
                .is_some_and(|p| p.metadata.deletion_timestamp.is_some())
        })
    }

    /// upstream `createPersistentVolumeClaims`: creates the claims a pod of ordinal `ord`
    /// mounts that do not exist yet, with the owners the retention policy wants.
    async fn create_claims(&self, set: &StatefulSet, pod_name: &str, ord: i32) -> Result<(), Error> {
        let ns = set.namespace().unwrap_or_default();
        let api: Api<PersistentVolumeClaim> = Api::namespaced(self.client.clone(), &ns);
        for mut claim in identity::claims(set, ord) {
            let name = claim.name_any();
            if self.pvcs.get(&ObjectRef::new(&name).within(&ns)).is_some() {
                continue;
            }
            if let Some(refs) = claims::wanted_refs(&[], set, None, false) {
                claim.metadata.owner_references = Some(refs).filter(|r| !r.is_empty());
            }
            match api.create(&PostParams::default(), &claim).await {
                Ok(_) => {
                    let note = format!(
                        "create Claim {name} Pod {pod_name} in StatefulSet {} success",
                        set.name_any()
                    );
                    self.event(set, EventType::Normal, "SuccessfulCreate", "Create", note)
                        .await;
                }
                // Created earlier and not in the cache yet.
                Err(kube::Error::Api(e)) if e.code == 409 => {}
                Err(e) => {
                    let note = format!(
                        "create Claim {name} for Pod {pod_name} in StatefulSet {} failed error: {}",
                        set.name_any(),
                        error_text(&e)
                    );
                    self.event(set, EventType::Warning, "FailedCreate", "Create", note)
                        .await;
                    return Err(e.into());
                }
            }
        }
        Ok(())
    }

    /// Sets the owner references the retention policy wants on the pod's claims.
    async fn fix_claims(&self, set: &StatefulSet, pod: &Pod, scaled_down: bool) -> Result<(), Error> {
        let Some(ord) = ordinal(pod) else { return Ok(()) };
        let ns = set.namespace().unwrap_or_default();
        let api: Api<PersistentVolumeClaim> = Api::namespaced(self.client.clone(), &ns);
        for c in identity::claims(set, ord) {
            let Some(existing) = self.pvcs.get(&ObjectRef::new(&c.name_any()).within(&ns)) else {
                continue;
            };
            if existing.metadata.deletion_timestamp.is_some() {
                continue;
            }
            if let Some(refs) = claims::wanted_refs(existing.owner_references(), set, Some(pod), scaled_down) {
                tracing::debug!(claim = %c.name_any(), "updating claim owner references for the retention policy");
                let refs = if refs.is_empty() { json!(null) } else { json!(refs) };
                let patch = json!({"metadata": {"uid": existing.uid(), "ownerReferences": refs}});
                ignore_gone(
                    api.patch(&c.name_any(), &PatchParams::default(), &Patch::Merge(&patch))
                        .await,
                )?;
            }
        }
        Ok(())
    }

    /// upstream `CreateStatefulPod`: claims first, then the pod; in slow-start batches when
    /// several are due (Parallel).
    async fn create_pods(&mut self, set: &StatefulSet, pods: &[(i32, &PodTemplateSpec, String)]) -> Result<(), Error> {
        let key = key_of(set);
        self.expectations.insert(key.clone(), Expectation::adds(pods.len()));
        let api: Api<Pod> = Api::namespaced(self.client.clone(), &key.0);
        let mut done = 0;
        let mut batch = 1;
        let mut failure = None;
        while done < pods.len() && failure.is_none() {
            let n = batch.min(pods.len() - done);
            let chunk = &pods[done..done + n];
            let this = &*self;
            let results = futures::future::join_all(chunk.iter().map(|(ord, template, rev)| {
                let api = api.clone();
                async move {
                    let pod = identity::new_pod(set, template, *ord, rev, Self::owner_ref(set));
                    let name = pod.name_any();
                    this.create_claims(set, &name, *ord).await?;
                    api.create(&PostParams::default(), &pod)
                        .await
                        .map_err(|e| (name, Error::from(e)))
                        .map_err(|(name, e)| {
                            tracing::debug!(pod = %name, error = %e, "creating statefulset pod failed");
                            e
                        })
                }
            }))
            .await;
            for (r, (ord, _, _)) in results.into_iter().zip(chunk) {
                let name = identity::pod_name(set, *ord);
                match r {
                    Ok(_) => {
                        let note = format!("create Pod {name} in StatefulSet {} successful", set.name_any());
                        self.event(set, EventType::Normal, "SuccessfulCreate", "Create", note)
                            .await;
                    }
                    Err(Error::Kube(kube::Error::Api(e))) if e.code == 409 => {
                        // Exists already (the cache lags): nothing was created.
                        self.lower_adds(&key, 1);
                    }
                    Err(e) => {
                        self.lower_adds(&key, 1);
                        let text = match &e {
                            Error::Kube(k) => error_text(k),
                            e => e.to_string(),
                        };
                        let note = format!(
                            "create Pod {name} in StatefulSet {} failed error: {text}",
                            set.name_any()
                        );
                        self.event(set, EventType::Warning, "FailedCreate", "Create", note)
                            .await;
                        failure = Some(e);
                    }
                }
            }
            done += n;
            batch = (batch * 2).min(MAX_BATCH);
        }
        self.lower_adds(&key, (pods.len() - done) as i64);
        match failure {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }

    fn lower_adds(&mut self, key: &Key, n: i64) {
        if let Some(e) = self.expectations.get_mut(key) {
            e.adds -= n;
        }
    }

    /// upstream `DeleteStatefulPod` (by uid, so a newer pod of the same name survives).
    async fn delete_pod(&mut self, set: &StatefulSet, pod: &Pod) -> Result<(), Error> {
        let key = key_of(set);
        let uid = pod.uid().unwrap_or_default();
        self.expectations.insert(key.clone(), Expectation::dels([uid.clone()]));
        let api: Api<Pod> = Api::namespaced(self.client.clone(), &key.0);
        let dp = DeleteParams {
            preconditions: Some(Preconditions {
                uid: Some(uid.clone()),
                resource_version: None,
            }),
            ..Default::default()
        };
        let name = pod.name_any();
        match api.delete(&name, &dp).await {
            Ok(_) => {
                let note = format!("delete Pod {name} in StatefulSet {} successful", set.name_any());
                self.event(set, EventType::Normal, "SuccessfulDelete", "Delete", note)
                    .await;
                Ok(())
            }
            Err(kube::Error::Api(e)) if matches!(e.code, 404 | 409) => {
                if let Some(x) = self.expectations.get_mut(&key) {
                    x.dels.remove(&uid);
                }
                Ok(())
            }
            Err(e) => {
                if let Some(x) = self.expectations.get_mut(&key) {
                    x.dels.remove(&uid);
                }
                let note = format!(
                    "delete Pod {name} in StatefulSet {} failed error: {}",
                    set.name_any(),
                    error_text(&e)
                );
                self.event(set, EventType::Warning, "FailedDelete", "Delete", note)
                    .await;
                Err(e.into())
            }
        }
    }
}

fn controller_ref_of(r: &ControllerRevision) -> Option<&OwnerReference> {
    crate::pods::controller_of(&r.metadata)
}

/// Treats "gone" and "changed under us" as nothing to do: the next event brings the truth.
fn ignore_gone<T>(r: Result<T, kube::Error>) -> Result<Option<T>, Error> {
    match r {
        Ok(v) => Ok(Some(v)),
        Err(kube::Error::Api(e)) if matches!(e.code, 404 | 409 | 422) => Ok(None),
        Err(e) => Err(e.into()),
    }
}
