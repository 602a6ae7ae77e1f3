//! The Job controller (upstream `pkg/controller/job`): runs pods until `completions` succeed,
//! at most `parallelism` at once, in NonIndexed or Indexed mode; counts finished pods through
//! the `batch.kubernetes.io/job-tracking` finalizer so the counts survive pod deletion; backs
//! off 10 s, 20 s, … before replacing failed pods; fails the Job past backoffLimit,
//! activeDeadlineSeconds or a podFailurePolicy FailJob rule; suspends and resumes; and writes
//! the status and conditions (SuccessCriteriaMet/FailureTarget, then Complete/Failed) and the
//! events upstream writes. The TTL-after-finished controller runs beside it.

mod backoff;
mod failure_policy;
mod indexes;
mod manage;
mod per_index;
mod pod_util;
mod success_policy;
mod sync;
mod ttl;

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use futures::{FutureExt, StreamExt};
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;
use kube::api::{Patch, PatchParams};
use kube::runtime::events::{Recorder, Reporter};
use kube::runtime::reflector::{ObjectRef, Store};
use kube::runtime::watcher;

use crate::informer::{self, Informers};
use kube::{Api, Client, ResourceExt};
use serde_json::json;
use tokio::time::Instant;

use crate::expectations::Expectation;
use crate::pods::controller_ref;
use crate::Error;
pub(crate) use manage::namespace_terminating;
use pod_util::{has_finalizer, TRACKING_FINALIZER};

/// How often due requeues are looked at.
const TICK: Duration = Duration::from_millis(100);
/// How often every Job is looked at again, whatever happened.
const RESYNC: Duration = Duration::from_secs(10);
/// Retry delay after a failed sync.
const RETRY: Duration = Duration::from_secs(1);

/// A Job by namespace and name.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct Key {
    namespace: String,
    name: String,
}

// Events pass through once and are never stored, so their size does not matter.
#[allow(clippy::large_enum_variant)]
enum Msg {
    Job(informer::Event<Job>),
    Pod(informer::Event<Pod>),
}

/// The controller's caches and bookkeeping.
struct Controller {
    client: Client,
    jobs: Store<Job>,
    pods: Store<Pod>,
    recorder: Recorder,
    /// Pod creations and deletions issued and not yet seen, per Job.
    expectations: HashMap<Key, Expectation>,
    /// Pods whose tracking finalizer removal was issued and not yet seen, per Job.
    rm_finalizers: HashMap<Key, HashSet<String>>,
    /// Pod uids seen so far, to notice creations once.
    seen: HashSet<String>,
    /// Failures since the last success, per Job.
    backoff: HashMap<Key, backoff::Record>,
    /// The Job as our last status write returned it, until the cache catches up.
    written: HashMap<Key, Job>,
    /// Pods (namespace, name) whose finalizer must go: their Job is gone.
    orphans: HashSet<(String, String)>,
    /// Pod names per namespace, so a sync reads its namespace's pods only.
    pods_by_ns: HashMap<String, HashSet<String>>,
    dirty: HashSet<Key>,
    due: HashMap<Key, Instant>,
}

/// Runs the Job controller and the TTL-after-finished controller until the future is dropped.
pub async fn run(informers: Informers) -> Result<(), Error> {
    let client = informers.client().clone();
    let (jobs, job_events) = informers.watch(Msg::Job);
    let (pods, pod_events) = informers.watch(Msg::Pod);
    let streams = vec![job_events, pod_events];
    let ttl = tokio::spawn(ttl::run(client.clone(), jobs.clone()));
    let _abort_ttl = AbortOnDrop(ttl);
    let mut events = futures::stream::select_all(streams);
    let mut c = Controller {
        recorder: Recorder::new(
            client.clone(),
            Reporter {
                controller: "job-controller".into(),
                instance: None,
            },
        ),
        client,
        jobs,
        pods,
        expectations: HashMap::new(),
        rm_finalizers: HashMap::new(),
        seen: HashSet::new(),
        backoff: HashMap::new(),
        written: HashMap::new(),
        orphans: HashSet::new(),
        pods_by_ns: HashMap::new(),
        dirty: HashSet::new(),
        due: HashMap::new(),
    };
    let mut ready = [false; 2];
    let mut tick = tokio::time::interval(TICK);
    let mut resync = tokio::time::interval(RESYNC);
    loop {
        tokio::select! {
            msg = events.next() => {
                let Some(msg) = msg else { return Ok(()) };
                c.handle(msg, &mut ready);
                while let Some(Some(msg)) = events.next().now_or_never() {
                    c.handle(msg, &mut ready);
                }
            }
            _ = tick.tick() => c.take_due(),
            _ = resync.tick() => c.mark_all(),
        }
        if !ready.iter().all(|r| *r) {
            continue;
        }
        c.clean_orphans().await;
        for key in c.dirty.drain().collect::<Vec<_>>() {
            if let Err(e) = c.sync(&key).await {
                tracing::debug!(error = %e, job = %key.name, "job sync failed (retried)");
                c.requeue(&key, RETRY);
            }
        }
    }
}

struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// The Job a pod's controller reference names, if it is a batch/v1 Job.
fn job_key_of(pod: &Pod) -> Option<(Key, String)> {
    let r: &OwnerReference = controller_ref(pod)?;
    (r.kind == "Job" && r.api_version == "batch/v1").then(|| {
        (
            Key {
                namespace: pod.namespace().unwrap_or_default(),
                name: r.name.clone(),
            },
            r.uid.clone(),
        )
    })
}

fn key_of(job: &Job) -> Option<Key> {
    Some(Key {
        namespace: job.namespace()?,
        name: job.name_any(),
    })
}

impl Controller {
    /// The cached pods of one namespace.
    fn pods_in(&self, ns: &str) -> Vec<Arc<Pod>> {
        let Some(names) = self.pods_by_ns.get(ns) else {
            return Vec::new();
        };
        names
            .iter()
            .filter_map(|n| self.pods.get(&ObjectRef::new(n).within(ns)))
            .collect()
    }

    fn requeue(&mut self, key: &Key, after: Duration) {
        let at = Instant::now() + after;
        let slot = self.due.entry(key.clone()).or_insert(at);
        *slot = (*slot).min(at);
    }

    fn take_due(&mut self) {
        let now = Instant::now();
        let dirty = &mut self.dirty;
        self.due.retain(|k, at| {
            if *at <= now {
                dirty.insert(k.clone());
                false
            } else {
                true
            }
        });
    }

    fn mark_all(&mut self) {
        let keys: Vec<Key> = self.jobs.state().iter().filter_map(|j| key_of(j)).collect();
        self.dirty.extend(keys);
    }

    /// The freshest copy of a Job: the cache, or our last write when that is newer.
    fn job(&self, key: &Key) -> Option<Job> {
        let cached = self.jobs.get(&ObjectRef::new(&key.name).within(&key.namespace))?;
        let rv = |j: &Job| {
            j.metadata
                .resource_version
                .as_deref()
                .and_then(|v| v.parse::<u64>().ok())
                .unwrap_or(0)
        };
        match self.written.get(key) {
            Some(w) if w.metadata.uid == cached.metadata.uid && rv(w) > rv(&cached) => Some(w.clone()),
            _ => Some((*cached).clone()),
        }
    }

    fn handle(&mut self, msg: Msg, ready: &mut [bool; 2]) {
        match msg {
            Msg::Job(watcher::Event::InitDone) => {
                ready[0] = true;
                self.mark_all();
            }
            Msg::Pod(watcher::Event::InitDone) => {
                // A relist may have missed deletions: rebuild the index from the cache.
                self.pods_by_ns.clear();
                for p in self.pods.state() {
                    let ns = p.metadata.namespace.clone().unwrap_or_default();
                    self.pods_by_ns.entry(ns).or_default().insert(p.name_any());
                }
                ready[1] = true;
                self.mark_all();
            }
            Msg::Job(watcher::Event::Apply(j) | watcher::Event::InitApply(j)) => {
                if let Some(key) = key_of(&j) {
                    self.dirty.insert(key);
                }
            }
            Msg::Job(watcher::Event::Delete(j)) => {
                let Some(key) = key_of(&j) else { return };
                self.expectations.remove(&key);
                self.rm_finalizers.remove(&key);
                self.backoff.remove(&key);
                self.written.remove(&key);
                // upstream: a deleted Job's pods lose the finalizer so they can go.
                let juid = j.metadata.uid.clone().unwrap_or_default();
                for p in self.pods.state() {
                    if has_finalizer(&p) && job_key_of(&p).is_some_and(|(_, u)| u == juid) {
                        self.orphans.insert((p.namespace().unwrap_or_default(), p.name_any()));
                    }
                }
            }
            Msg::Pod(watcher::Event::Apply(p) | watcher::Event::InitApply(p)) => self.pod_changed(&p, false),
            Msg::Pod(watcher::Event::Delete(p)) => self.pod_changed(&p, true),
            Msg::Job(watcher::Event::Init) | Msg::Pod(watcher::Event::Init) => {}
        }
    }

    /// Observes a pod event for expectations and marks the Job it belongs to.
    fn pod_changed(&mut self, pod: &Pod, deleted: bool) {
        let ns = pod.metadata.namespace.clone().unwrap_or_default();
        if deleted {
            if let Some(names) = self.pods_by_ns.get_mut(&ns) {
                names.remove(&pod.name_any());
            }
        } else {
            self.pods_by_ns.entry(ns).or_default().insert(pod.name_any());
        }
        let uid = pod.uid().unwrap_or_default();
        let first = if deleted {
            self.seen.remove(&uid);
            false
        } else {
            self.seen.insert(uid.clone())
        };
        let Some((key, juid)) = job_key_of(pod) else {
            if has_finalizer(pod) && !deleted {
                self.orphans
                    .insert((pod.namespace().unwrap_or_default(), pod.name_any()));
            }
            if !deleted {
                // An orphan may be adopted by a Job whose selector matches.
                let ns = pod.namespace().unwrap_or_default();
                let keys: Vec<Key> = self
                    .jobs
                    .state()
                    .iter()
                    .filter(|j| j.metadata.namespace.as_deref() == Some(ns.as_str()))
                    .filter_map(|j| key_of(j))
                    .collect();
                self.dirty.extend(keys);
            }
            return;
        };
        if let Some(e) = self.expectations.get_mut(&key) {
            if first {
                e.adds -= 1;
            }
            if deleted || pod.metadata.deletion_timestamp.is_some() {
                e.dels.remove(&uid);
            }
        }
        if deleted || !has_finalizer(pod) {
            if let Some(s) = self.rm_finalizers.get_mut(&key) {
                s.remove(&uid);
            }
        }
        let job = self.jobs.get(&ObjectRef::new(&key.name).within(&key.namespace));
        if job
            .as_ref()
            .is_none_or(|j| j.metadata.uid.as_deref() != Some(juid.as_str()))
        {
            if has_finalizer(pod) && !deleted {
                self.orphans.insert((key.namespace.clone(), pod.name_any()));
            }
            return;
        }
        self.dirty.insert(key);
    }

    /// upstream `cleanupPodFinalizers`: pods whose Job is gone lose the tracking finalizer.
    async fn clean_orphans(&mut self) {
        for (ns, name) in std::mem::take(&mut self.orphans) {
            let Some(pod) = self.pods.get(&ObjectRef::new(&name).within(&ns)) else {
                continue;
            };
            if !has_finalizer(&pod) {
                continue;
            }
            // Still (or again) owned by a Job we know: that Job's sync handles it.
            if let Some((key, juid)) = job_key_of(&pod) {
                let job = self.jobs.get(&ObjectRef::new(&key.name).within(&key.namespace));
                if job.is_some_and(|j| j.metadata.uid.as_deref() == Some(juid.as_str()) && !sync::is_finished(&j)) {
                    continue;
                }
            }
            tracing::debug!(pod = %name, namespace = %ns, "removing the tracking finalizer of an orphan pod");
            let api: Api<Pod> = Api::namespaced(self.client.clone(), &ns);
            if let Err(e) = remove_finalizer(&api, &name).await {
                tracing::debug!(error = %e, pod = %name, "removing an orphan's finalizer failed (retried)");
                self.orphans.insert((ns, name));
            }
        }
    }
}

/// Removes the tracking finalizer (a strategic merge patch, as upstream); a pod already gone
/// counts as done.
async fn remove_finalizer(api: &Api<Pod>, name: &str) -> Result<(), kube::Error> {
    let patch = json!({"metadata": {"$deleteFromPrimitiveList/finalizers": [TRACKING_FINALIZER]}});
    match api
        .patch(name, &PatchParams::default(), &Patch::Strategic(&patch))
        .await
    {
        Ok(_) => Ok(()),
        Err(kube::Error::Api(s)) if s.code == 404 => Ok(()),
        Err(e) => Err(e),
    }
}
