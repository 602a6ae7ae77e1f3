//! The Deployment controller (upstream `pkg/controller/deployment`): owns ReplicaSets named
//! `NAME-<pod-template-hash>`, rolls them over with RollingUpdate (maxSurge/maxUnavailable) or
//! Recreate, scales them proportionally, keeps revisions for `kubectl rollout history|undo`,
//! cleans up old ones past revisionHistoryLimit, and reports status with the Progressing and
//! Available conditions.

mod progress;
mod recreate;
mod rolling;
mod sync;
mod util;

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use futures::{FutureExt, StreamExt};
use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet};
use k8s_openapi::api::core::v1::Pod;
use kube::runtime::reflector::{ObjectRef, Store};
use kube::runtime::watcher;
use kube::{Client, ResourceExt};
use tokio::time::Instant;

use crate::events::{Event, EventType, Recorder, Reporter};
use crate::informer::{self, Informers};
use crate::pods::{controller_of, selector_matches};
use crate::Error;

/// upstream: `ConcurrentDeploymentSyncs` is 5; syncs here are cheap, so more run at once.
const CONCURRENT_SYNCS: usize = 16;
/// First retry delay after a failed sync (doubles up to [`MAX_RETRY`]).
const FIRST_RETRY: Duration = Duration::from_millis(50);
const MAX_RETRY: Duration = Duration::from_secs(30);
/// How often every deployment is looked at again regardless of events (upstream resync).
const RESYNC: Duration = Duration::from_secs(30);

/// A deployment's namespace and name.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) struct Key {
    namespace: String,
    name: String,
}

impl Key {
    fn of<K: ResourceExt>(o: &K, name: String) -> Key {
        Key {
            namespace: o.namespace().unwrap_or_default(),
            name,
        }
    }
}

enum Msg {
    Deployment(informer::Event<Deployment>),
    Rs(informer::Event<ReplicaSet>),
    Pod(informer::Event<Pod>),
}

/// The caches and clients every sync reads and writes through.
pub(crate) struct Controller {
    client: Client,
    deployments: Store<Deployment>,
    rss: Store<ReplicaSet>,
    pods: Store<Pod>,
    recorder: Recorder,
}

/// The controller loop's own bookkeeping.
#[derive(Default)]
struct Queue {
    dirty: HashSet<Key>,
    /// When a deployment wants another look (progress deadline, retry after an error).
    timers: HashMap<Key, Instant>,
    failures: HashMap<Key, u32>,
    /// ReplicaSet uid → the deployment controlling it, so losing the owner wakes it.
    rs_owner: HashMap<String, Key>,
}

/// Runs the deployment controller until the future is dropped.
pub async fn run(informers: Informers) -> Result<(), Error> {
    let client = informers.client().clone();
    let (deployments, d_events) = informers.watch(Msg::Deployment);
    let (rss, rs_events) = informers.watch(Msg::Rs);
    let (pods, pod_events) = informers.watch(Msg::Pod);
    let streams = vec![d_events, rs_events, pod_events];
    let mut events = futures::stream::select_all(streams);
    let recorder = Recorder::new(
        client.clone(),
        Reporter {
            controller: "deployment-controller".into(),
            instance: None,
        },
    );
    let c = Controller {
        recorder,
        client,
        deployments,
        rss,
        pods,
    };
    let mut q = Queue::default();
    let mut ready = [false; 3];
    let mut resync = tokio::time::interval(RESYNC);
    loop {
        let next = q.timers.values().min().copied();
        tokio::select! {
            msg = events.next() => {
                let Some(msg) = msg else { return Ok(()) };
                c.handle(&mut q, msg, &mut ready);
                // Take in everything already delivered before syncing.
                while let Some(Some(msg)) = events.next().now_or_never() {
                    c.handle(&mut q, msg, &mut ready);
                }
            }
            _ = sleep_until(next) => {
                let now = Instant::now();
                let due: Vec<Key> = q.timers.iter().filter(|(_, t)| **t <= now).map(|(k, _)| k.clone()).collect();
                for k in due {
                    q.timers.remove(&k);
                    q.dirty.insert(k);
                }
            }
            _ = resync.tick() => {
                let keys: Vec<Key> = c.deployments.state().iter().map(|d| Key::of(&**d, d.name_any())).collect();
                q.dirty.extend(keys);
            }
        }
        if !ready.iter().all(|r| *r) || q.dirty.is_empty() {
            continue;
        }
        let keys: Vec<Key> = q.dirty.drain().collect();
        let c = &c;
        let results: Vec<(Key, Result<Option<Duration>, Error>)> = futures::stream::iter(keys)
            .map(|k| async move {
                let r = c.sync(&k).await;
                (k, r)
            })
            .buffer_unordered(CONCURRENT_SYNCS)
            .collect()
            .await;
        for (k, r) in results {
            match r {
                Ok(recheck) => {
                    q.failures.remove(&k);
                    match recheck {
                        Some(after) => q.timers.insert(k, Instant::now() + after),
                        None => q.timers.remove(&k),
                    };
                }
                Err(e) => {
                    let n = q.failures.entry(k.clone()).or_default();
                    let delay = FIRST_RETRY.saturating_mul(1 << (*n).min(16)).min(MAX_RETRY);
                    *n += 1;
                    tracing::debug!(deployment = %k.name, namespace = %k.namespace, error = %e, ?delay, "deployment sync failed (retried)");
                    q.timers.insert(k, Instant::now() + delay);
                }
            }
        }
    }
}

async fn sleep_until(t: Option<Instant>) {
    match t {
        Some(t) => tokio::time::sleep_until(t).await,
        None => std::future::pending().await,
    }
}

impl Controller {
    fn handle(&self, q: &mut Queue, msg: Msg, ready: &mut [bool; 3]) {
        match msg {
            Msg::Deployment(watcher::Event::InitDone) => ready[0] = true,
            Msg::Rs(watcher::Event::InitDone) => ready[1] = true,
            Msg::Pod(watcher::Event::InitDone) => ready[2] = true,
            Msg::Deployment(watcher::Event::Init) | Msg::Rs(watcher::Event::Init) | Msg::Pod(watcher::Event::Init) => {}
            Msg::Deployment(watcher::Event::Apply(d) | watcher::Event::InitApply(d)) => {
                q.dirty.insert(Key::of(&*d, d.name_any()));
            }
            Msg::Deployment(watcher::Event::Delete(d)) => {
                let k = Key::of(&*d, d.name_any());
                q.timers.remove(&k);
                q.failures.remove(&k);
            }
            Msg::Rs(watcher::Event::Apply(rs) | watcher::Event::InitApply(rs)) => self.rs_changed(q, &rs, false),
            Msg::Rs(watcher::Event::Delete(rs)) => self.rs_changed(q, &rs, true),
            Msg::Pod(watcher::Event::Delete(p)) => self.pod_gone(q, &p),
            Msg::Pod(watcher::Event::Apply(p)) => {
                // Only a pod that stopped running matters (Recreate waits for old pods).
                let phase = p.status.as_ref().and_then(|s| s.phase.as_deref());
                if matches!(phase, Some("Succeeded" | "Failed")) {
                    self.pod_gone(q, &p);
                }
            }
            Msg::Pod(watcher::Event::InitApply(_)) => {}
        }
    }

    /// upstream: `addReplicaSet`/`updateReplicaSet`/`deleteReplicaSet` — the controlling
    /// deployment, the previous one, or for an orphan every deployment that could adopt it.
    fn rs_changed(&self, q: &mut Queue, rs: &ReplicaSet, deleted: bool) {
        let uid = rs.uid().unwrap_or_default();
        let owner = controller_of(&rs.metadata)
            .filter(|r| r.kind == "Deployment" && r.api_version == "apps/v1")
            .map(|r| Key::of(rs, r.name.clone()));
        let prev = if deleted {
            q.rs_owner.remove(&uid)
        } else {
            match &owner {
                Some(o) => q.rs_owner.insert(uid, o.clone()),
                None => q.rs_owner.remove(&uid),
            }
        };
        if let Some(p) = prev {
            q.dirty.insert(p);
        }
        match owner {
            Some(o) => {
                q.dirty.insert(o);
            }
            None if !deleted => {
                let ns = rs.namespace().unwrap_or_default();
                for d in self.deployments.state() {
                    let sel = d.spec.as_ref().map(|s| &s.selector);
                    if d.namespace().as_deref() == Some(&ns) && sel.is_some_and(|s| selector_matches(s, rs.labels())) {
                        q.dirty.insert(Key::of(&*d, d.name_any()));
                    }
                }
            }
            None => {}
        }
    }

    /// A pod of one of our ReplicaSets is gone or finished: its deployment looks again.
    fn pod_gone(&self, q: &mut Queue, p: &Pod) {
        let Some(r) = controller_of(&p.metadata).filter(|r| r.kind == "ReplicaSet") else {
            return;
        };
        let ns = p.namespace().unwrap_or_default();
        if let Some(rs) = self.rss.get(&ObjectRef::new(&r.name).within(&ns)) {
            if let Some(d) = controller_of(&rs.metadata).filter(|r| r.kind == "Deployment") {
                q.dirty.insert(Key::of(p, d.name.clone()));
            }
        }
    }

    fn deployment(&self, key: &Key) -> Option<Deployment> {
        self.deployments
            .get(&ObjectRef::new(&key.name).within(&key.namespace))
            .map(|d| (*d).clone())
    }

    /// Publishes an event about the deployment.
    async fn event(&self, d: &Deployment, type_: EventType, reason: &str, note: String) {
        let ev = Event {
            type_,
            reason: reason.into(),
            note: Some(note),
            action: reason.into(),
            secondary: None,
        };
        let reference = k8s_openapi::api::core::v1::ObjectReference {
            api_version: Some("apps/v1".into()),
            kind: Some("Deployment".into()),
            name: d.metadata.name.clone(),
            namespace: d.metadata.namespace.clone(),
            uid: d.metadata.uid.clone(),
            resource_version: d.metadata.resource_version.clone(),
            field_path: None,
        };
        if let Err(e) = self.recorder.publish(&ev, &reference).await {
            tracing::debug!(error = %e, reason, "recording a deployment event failed");
        }
    }
}
