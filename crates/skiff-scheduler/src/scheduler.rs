//! The scheduling loop: informers (kube-runtime watchers on nodes and pods) feed the node
//! snapshot and the queue; one task pops pods, runs a cycle, assumes the pod onto the chosen
//! node and hands the binding to a task of its own, many in flight.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::api::core::v1::{Binding, Node, ObjectReference, Pod};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::api::PostParams;
use kube::runtime::watcher::{self, Event};
use kube::runtime::WatchStreamExt;
use kube::{Api, Client};
use tokio::sync::mpsc;
use tokio::task::{JoinHandle, JoinSet};
use tokio::time::Instant;

use crate::cache::{Cache, PodSummary};
use crate::events::{Report, Reporter};
use crate::framework::{Framework, ScheduleError};
use crate::plugins::PodInfo;
use crate::queue::{QueuedPod, SchedulingQueue};
use crate::{Error, SchedulerOptions};

/// How often unschedulable pods are checked for the 5-minute flush.
const LEFTOVER_FLUSH_PERIOD: Duration = Duration::from_secs(30);
/// Pods scheduled before the loop looks at new watch events again.
const BATCH: usize = 64;

enum Msg {
    Pod(Box<Event<Pod>>),
    Node(Box<Event<Node>>),
    Bound {
        key: String,
        pod: Arc<Pod>,
        node: String,
        qp: QueuedPod,
        result: Result<(), kube::Error>,
    },
}

/// Aborts the spawned watcher tasks when the scheduler future is dropped.
struct Tasks(Vec<JoinHandle<()>>);

impl Drop for Tasks {
    fn drop(&mut self) {
        for t in &self.0 {
            t.abort();
        }
    }
}

fn spawn_watch<K>(api: Api<K>, tx: mpsc::UnboundedSender<Msg>, wrap: fn(Event<K>) -> Msg) -> JoinHandle<()>
where
    K: kube::Resource + Clone + serde::de::DeserializeOwned + std::fmt::Debug + Send + Sync + 'static,
{
    tokio::spawn(async move {
        // Deserialization happens here, on this task, not on the scheduling loop.
        let mut stream = std::pin::pin!(watcher::watcher(api, watcher::Config::default()).default_backoff());
        while let Some(ev) = stream.next().await {
            match ev {
                Ok(ev) => {
                    if tx.send(wrap(ev)).is_err() {
                        return;
                    }
                }
                Err(e) => tracing::warn!("scheduler watch: {e}"),
            }
        }
    })
}

fn key_of(pod: &Pod) -> String {
    format!(
        "{}/{}",
        pod.metadata.namespace.as_deref().unwrap_or(""),
        pod.metadata.name.as_deref().unwrap_or("")
    )
}

fn node_name(pod: &Pod) -> Option<&str> {
    pod.spec
        .as_ref()
        .and_then(|s| s.node_name.as_deref())
        .filter(|n| !n.is_empty())
}

fn is_terminal(pod: &Pod) -> bool {
    matches!(
        pod.status.as_ref().and_then(|s| s.phase.as_deref()),
        Some("Succeeded") | Some("Failed")
    )
}

struct State {
    client: Client,
    opts: SchedulerOptions,
    cache: Cache,
    queue: SchedulingQueue,
    fw: Framework,
    reporter: Reporter,
    tx: mpsc::UnboundedSender<Msg>,
    in_flight: usize,
    /// Bindings in flight; aborted if the scheduler is dropped.
    binds: JoinSet<()>,
    pods_synced: bool,
    nodes_synced: bool,
    pod_relist: Option<HashSet<String>>,
    node_relist: Option<HashSet<String>>,
}

impl State {
    fn responsible(&self, pod: &Pod) -> bool {
        let name = pod
            .spec
            .as_ref()
            .and_then(|s| s.scheduler_name.as_deref())
            .filter(|n| !n.is_empty())
            .unwrap_or("default-scheduler");
        name == self.opts.scheduler_name && pod.metadata.deletion_timestamp.is_none() && !is_terminal(pod)
    }

    /// A cluster event that may let pending pods fit.
    fn cluster_event(&mut self, what: &str) {
        let moved = self.queue.move_all_unschedulable(Instant::now());
        if moved > 0 {
            tracing::debug!(event = what, moved, "moving unschedulable pods back to the queue");
        }
    }

    fn handle(&mut self, msg: Msg) {
        match msg {
            Msg::Pod(ev) => match *ev {
                Event::Init => self.pod_relist = Some(HashSet::new()),
                Event::InitApply(p) => {
                    if let Some(seen) = &mut self.pod_relist {
                        seen.insert(key_of(&p));
                    }
                    self.pod_applied(p);
                }
                Event::InitDone => {
                    if let Some(seen) = self.pod_relist.take() {
                        for k in self.cache.pod_keys() {
                            if !seen.contains(&k) {
                                self.pod_deleted(&k);
                            }
                        }
                    }
                    self.pods_synced = true;
                }
                Event::Apply(p) => self.pod_applied(p),
                Event::Delete(p) => self.pod_deleted(&key_of(&p)),
            },
            Msg::Node(ev) => match *ev {
                Event::Init => self.node_relist = Some(HashSet::new()),
                Event::InitApply(n) => {
                    if let Some(seen) = &mut self.node_relist {
                        seen.insert(n.metadata.name.clone().unwrap_or_default());
                    }
                    self.node_applied(n);
                }
                Event::InitDone => {
                    if let Some(seen) = self.node_relist.take() {
                        for n in self.cache.node_names() {
                            if !seen.contains(&n) {
                                self.cache.remove_node(&n);
                            }
                        }
                    }
                    self.nodes_synced = true;
                }
                Event::Apply(n) => self.node_applied(n),
                Event::Delete(n) => self.cache.remove_node(n.metadata.name.as_deref().unwrap_or("")),
            },
            Msg::Bound {
                key,
                pod,
                node,
                qp,
                result,
            } => {
                self.in_flight -= 1;
                self.bound(key, pod, node, qp, result);
            }
        }
    }

    fn node_applied(&mut self, n: Node) {
        let name = n.metadata.name.clone().unwrap_or_default();
        if self.cache.upsert_node(Arc::new(n)) {
            tracing::debug!(node = %name, "node added or changed");
            self.cluster_event("NodeChange");
        }
    }

    fn pod_applied(&mut self, pod: Pod) {
        let key = key_of(&pod);
        if let Some(node) = node_name(&pod) {
            self.queue.delete(&key);
            if is_terminal(&pod) {
                if self.cache.remove_pod(&key).is_some() {
                    self.cluster_event("AssignedPodTerminated");
                }
            } else {
                // Confirms an assumed pod, or counts a pod someone else placed.
                let node = node.to_string();
                self.cache.add_pod(&key, &node, Arc::new(PodSummary::of(&pod)), false);
            }
            return;
        }
        if self.cache.is_assumed(&key) {
            return; // our binding is in flight
        }
        if self.responsible(&pod) {
            self.queue.add_or_update(&key, Arc::new(pod), Instant::now());
        } else {
            self.queue.delete(&key);
        }
    }

    fn pod_deleted(&mut self, key: &str) {
        self.queue.delete(key);
        if self.cache.remove_pod(key).is_some() {
            self.cluster_event("AssignedPodDelete");
        }
    }

    fn bound(&mut self, key: String, pod: Arc<Pod>, node: String, qp: QueuedPod, result: Result<(), kube::Error>) {
        match result {
            Ok(()) => {
                tracing::debug!(pod = %key, %node, "bound");
                self.reporter.report(Report::Scheduled { pod, node });
            }
            Err(e) => {
                // upstream: forget the assumed pod, then retry after a backoff.
                if self.cache.is_assumed(&key) {
                    self.cache.remove_pod(&key);
                    self.cluster_event("AssumedPodForgotten");
                }
                let gone = matches!(&e, kube::Error::Api(s) if s.code == 404);
                let taken =
                    matches!(&e, kube::Error::Api(s) if s.code == 409 && s.message.contains("already assigned"));
                tracing::debug!(pod = %key, %node, "binding failed: {e}");
                if gone || taken {
                    return; // the watch tells the rest
                }
                let message = format!("binding rejected: {e}");
                self.reporter.report(Report::Failed {
                    pod: qp.pod.clone(),
                    reason: "SchedulerError",
                    message,
                });
                self.queue.requeue_backoff(&key, qp, Instant::now());
            }
        }
    }

    fn schedule_one(&mut self, key: String, qp: QueuedPod) {
        let info = PodInfo::new(qp.pod.clone());
        match self.fw.schedule(&info, &self.cache) {
            Ok(r) => {
                tracing::debug!(pod = %key, node = %r.node, evaluated = r.evaluated, feasible = r.feasible, "scheduled");
                self.cache.add_pod(&key, &r.node, info.summary.clone(), true);
                self.in_flight += 1;
                self.spawn_bind(key, qp, r.node);
            }
            Err(e) => {
                let message = e.message();
                tracing::debug!(pod = %key, attempts = qp.attempts, "unschedulable: {message}");
                let pod = qp.pod.clone();
                let reason = match e {
                    ScheduleError::NoNodes => {
                        self.queue.requeue_backoff(&key, qp, Instant::now());
                        "SchedulerError"
                    }
                    ScheduleError::Unschedulable(_) => {
                        self.queue.requeue_unschedulable(&key, qp, Instant::now());
                        "Unschedulable"
                    }
                };
                self.reporter.report(Report::Failed { pod, reason, message });
            }
        }
    }

    fn spawn_bind(&mut self, key: String, qp: QueuedPod, node: String) {
        let pod = qp.pod.clone();
        let ns = pod.metadata.namespace.clone().unwrap_or_default();
        let name = pod.metadata.name.clone().unwrap_or_default();
        let api: Api<Pod> = Api::namespaced(self.client.clone(), &ns);
        let binding = Binding {
            metadata: ObjectMeta {
                name: Some(name.clone()),
                namespace: Some(ns),
                uid: pod.metadata.uid.clone(),
                ..Default::default()
            },
            target: ObjectReference {
                api_version: Some("v1".into()),
                kind: Some("Node".into()),
                name: Some(node.clone()),
                ..Default::default()
            },
        };
        let tx = self.tx.clone();
        self.binds.spawn(async move {
            let result = api
                .create_subresource::<_, serde::de::IgnoredAny>("binding", &name, &PostParams::default(), &binding)
                .await
                .map(|_| ());
            let _ = tx.send(Msg::Bound {
                key,
                pod,
                node,
                qp,
                result,
            });
        });
    }
}

/// Runs the scheduler until the returned future is dropped.
pub async fn run(client: Client, opts: SchedulerOptions) -> Result<(), Error> {
    let (tx, mut rx) = mpsc::unbounded_channel();
    let _tasks = Tasks(vec![
        spawn_watch(Api::<Node>::all(client.clone()), tx.clone(), |e| Msg::Node(Box::new(e))),
        spawn_watch(Api::<Pod>::all(client.clone()), tx.clone(), |e| Msg::Pod(Box::new(e))),
    ]);
    let reporter = Reporter::start(client.clone(), opts.scheduler_name.clone());
    let mut st = State {
        client,
        queue: SchedulingQueue::new(opts.initial_backoff, opts.max_backoff),
        fw: Framework::new(opts.percentage_of_nodes_to_score),
        opts,
        cache: Cache::default(),
        reporter,
        tx,
        in_flight: 0,
        binds: JoinSet::new(),
        pods_synced: false,
        nodes_synced: false,
        pod_relist: None,
        node_relist: None,
    };
    let parallelism = st.opts.parallelism.max(1);
    let mut next_leftover_flush = Instant::now() + LEFTOVER_FLUSH_PERIOD;
    tracing::info!(scheduler = %st.opts.scheduler_name, "scheduler starting");
    loop {
        // Take in everything the watches and binders reported before deciding anything.
        loop {
            match rx.try_recv() {
                Ok(m) => st.handle(m),
                Err(mpsc::error::TryRecvError::Empty) => break,
                Err(mpsc::error::TryRecvError::Disconnected) => return Err(Error::Stopped),
            }
        }
        while st.binds.try_join_next().is_some() {}
        let now = Instant::now();
        st.queue.flush(now);
        if now >= next_leftover_flush {
            st.queue.flush_unschedulable_leftover(now);
            next_leftover_flush = now + LEFTOVER_FLUSH_PERIOD;
        }
        if st.pods_synced && st.nodes_synced {
            let mut n = 0;
            while n < BATCH && st.in_flight < parallelism {
                let Some((key, qp)) = st.queue.pop() else { break };
                st.schedule_one(key, qp);
                n += 1;
            }
            if n > 0 {
                tokio::task::yield_now().await;
                continue;
            }
        }
        let deadline = st
            .queue
            .next_backoff()
            .unwrap_or(next_leftover_flush)
            .min(next_leftover_flush);
        tokio::select! {
            m = rx.recv() => match m {
                Some(m) => st.handle(m),
                None => return Err(Error::Stopped),
            },
            _ = tokio::time::sleep_until(deadline) => {}
        }
    }
}
