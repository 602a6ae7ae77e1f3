//! The pod engine of all simulated nodes: one pod watcher and one node watcher feed a single
//! task that keeps a small record per pod, advances it on timers, and writes status and
//! deletions through a bounded number of concurrent requests.
//!
//! upstream: kubelet's pod worker serializes the changes of one pod and its status manager
//! writes status on its own schedule; here each pod has at most one write in flight, and the
//! write carries the pod's state at the moment it is sent, never an older one.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap, VecDeque};
use std::net::Ipv4Addr;
use std::sync::Arc;
use std::time::Duration;

use crate::events::{Event as KubeEvent, EventType, Recorder, Reporter};
use futures::StreamExt;
use k8s_openapi::api::core::v1::ObjectReference;
use k8s_openapi::api::core::v1::{Node, Pod};
use kube::api::{Api, DeleteParams, Patch, PatchParams, Preconditions};
use kube::runtime::watcher::{self, watcher};
use kube::runtime::WatchStreamExt;
use kube::{Client, ResourceExt};
use rand::Rng;
use serde::Deserialize;
use tokio::sync::mpsc;
use tokio::time::Instant;

use crate::images;

use super::{status, Ctl, Shared, DEAD_ANNOTATION, DURATION_ANNOTATION, EXIT_CODE_ANNOTATION};

/// Delay before retrying a failed write.
const RETRY_DELAY: Duration = Duration::from_secs(1);
/// A startup delay at least this long reports the pod Pending (ContainerCreating) first.
const REPORT_PENDING_AFTER: Duration = Duration::from_millis(500);
/// How long a failed pull shows ErrImagePull before ImagePullBackOff (kubelet's next sync).
const ERR_IMAGE_PULL_SHOWN: Duration = Duration::from_secs(3);
/// upstream: container restart back-off starts at 10 s and doubles up to 5 min.
const BACKOFF_INITIAL_SECS: u64 = 10;
const BACKOFF_MAX_SECS: u64 = 300;

/// A container as the simulation needs it.
pub(super) struct Ctr {
    pub(super) name: String,
    pub(super) image: String,
    /// An init container with restartPolicy Always.
    pub(super) sidecar: bool,
    pub(super) mounts: Vec<Mount>,
}

pub(super) struct Mount {
    pub(super) name: String,
    pub(super) path: String,
    pub(super) read_only: bool,
}

/// Where a simulated pod is in its life.
pub(super) enum Stage {
    /// Seen; its containers "start" at `at`.
    Starting { at: Instant },
    /// Containers running; they exit at `until` (never when None).
    Running { until: Option<Instant> },
    /// Waiting to restart the containers after they exited.
    BackOff { until: Instant, delay_secs: u64 },
    /// A container's image cannot be pulled: ErrImagePull, then ImagePullBackOff from
    /// `backoff_at`, and another attempt at `retry_at`.
    PullFailed {
        container: String,
        image: String,
        failures: u32,
        backoff: bool,
        backoff_at: Instant,
        retry_at: Instant,
    },
    /// Terminal.
    Done {
        failed: bool,
        exit_code: i32,
        started: jiff::Timestamp,
    },
}

/// The previous run of the containers (`lastState.terminated`).
pub(super) struct Term {
    pub(super) exit_code: i32,
    pub(super) started: jiff::Timestamp,
    pub(super) finished: jiff::Timestamp,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Policy {
    Always,
    OnFailure,
    Never,
}

/// What the engine keeps per pod (a few hundred bytes, not the Pod).
pub(super) struct SimPod {
    pub(super) uid: String,
    pub(super) namespace: String,
    pub(super) name: String,
    node: usize,
    pub(super) containers: Vec<Ctr>,
    pub(super) init: Vec<Ctr>,
    policy: Policy,
    /// How long the containers run (None: forever).
    duration: Option<Duration>,
    exit_code: i32,
    pub(super) stage: Stage,
    /// When the stage began (wall clock).
    pub(super) stage_since: jiff::Timestamp,
    pub(super) start_time: Option<jiff::Timestamp>,
    pub(super) ip: Option<Ipv4Addr>,
    pub(super) restarts: i32,
    pub(super) last_term: Option<Term>,
    /// The stored pod has a PodScheduled condition (set by the scheduler), which stays as is.
    pub(super) has_scheduled: bool,
    /// The stage needs reporting.
    report_pending: bool,
    deleting: bool,
    delete_done: bool,
    /// Bumped on every change that needs a write; a write acknowledges the generation it sent.
    generation: u64,
    posted_generation: u64,
    /// Resource version our last status write produced; older watch events are stale.
    posted_rv: u64,
    queued: bool,
    in_flight: bool,
    timer: Option<Instant>,
    /// Watch list epoch in which the pod was last seen.
    epoch: u64,
}

impl SimPod {
    fn needs_write(&self) -> bool {
        (self.deleting && !self.delete_done) || (!self.deleting && self.posted_generation != self.generation)
    }

    fn set_stage(&mut self, stage: Stage, report: bool) {
        self.stage = stage;
        self.stage_since = crate::node::now();
        if report {
            self.generation += 1;
        }
    }
}

/// Pod addresses handed out per node (.2 … .254 of its /24), round robin like host-local IPAM.
struct Ipam {
    used: [u64; 4],
    next: u8,
}

impl Ipam {
    fn new() -> Self {
        Ipam { used: [0; 4], next: 2 }
    }

    fn take(&mut self, base: Ipv4Addr) -> Ipv4Addr {
        for _ in 0..253 {
            let host = self.next;
            self.next = if self.next >= 254 { 2 } else { self.next + 1 };
            if self.used[host as usize / 64] & (1 << (host % 64)) == 0 {
                self.mark(host, true);
                return Ipv4Addr::from(u32::from(base) + host as u32);
            }
        }
        // Exhausted (more than 253 live pods): addresses are fake, share one.
        Ipv4Addr::from(u32::from(base) + 254)
    }

    fn mark(&mut self, host: u8, used: bool) {
        let bit = 1u64 << (host % 64);
        if used {
            self.used[host as usize / 64] |= bit;
        } else {
            self.used[host as usize / 64] &= !bit;
        }
    }

    fn release(&mut self, base: Ipv4Addr, ip: Ipv4Addr) {
        let off = u32::from(ip).wrapping_sub(u32::from(base));
        if (2..=254).contains(&off) {
            self.mark(off as u8, false);
        }
    }
}

/// What a write did.
enum Outcome {
    /// Status written; the resource version it produced.
    Posted(u64),
    /// Delete accepted (or the pod was gone or replaced already).
    Deleted,
    /// The status cannot be written (pod gone or replaced, status refused): stop writing it.
    Gone,
    /// Try again later.
    Failed,
}

struct WriteDone {
    key: String,
    uid: String,
    generation: u64,
    outcome: Outcome,
}

#[derive(Deserialize)]
struct MetaOnly {
    metadata: MetaRv,
}

#[derive(Deserialize)]
struct MetaRv {
    #[serde(rename = "resourceVersion", default)]
    resource_version: String,
}

struct Engine {
    client: Client,
    shared: Arc<Shared>,
    pods: HashMap<String, SimPod>,
    timers: BinaryHeap<Reverse<(Instant, String)>>,
    ready: VecDeque<String>,
    in_flight: usize,
    ipam: Vec<Ipam>,
    epoch: u64,
    done_tx: mpsc::UnboundedSender<WriteDone>,
    status_tx: mpsc::UnboundedSender<usize>,
}

/// Runs the engine until aborted.
pub(super) async fn run(
    client: Client,
    shared: Arc<Shared>,
    mut ctl: mpsc::UnboundedReceiver<Ctl>,
    status_tx: mpsc::UnboundedSender<usize>,
) {
    let pods_api: Api<Pod> = Api::all(client.clone());
    let field = if shared.nodes.len() == 1 {
        format!("spec.nodeName={}", shared.nodes[0].cfg.name)
    } else {
        "spec.nodeName!=".to_string()
    };
    let mut pod_events = watcher(pods_api, watcher::Config::default().fields(&field))
        .default_backoff()
        .boxed();
    let mut node_events = watcher(Api::<Node>::all(client.clone()), watcher::Config::default())
        .default_backoff()
        .boxed();
    let (done_tx, mut done_rx) = mpsc::unbounded_channel();
    let mut e = Engine {
        client,
        ipam: (0..shared.nodes.len()).map(|_| Ipam::new()).collect(),
        shared,
        pods: HashMap::new(),
        timers: BinaryHeap::new(),
        ready: VecDeque::new(),
        in_flight: 0,
        epoch: 0,
        done_tx,
        status_tx,
    };
    loop {
        let next_timer = e.timers.peek().map(|Reverse((t, _))| *t);
        tokio::select! {
            ev = pod_events.next() => match ev {
                Some(Ok(ev)) => e.on_pod_event(ev),
                Some(Err(err)) => tracing::warn!(error = %err, "simulated nodes: pod watch failed"),
                None => return,
            },
            ev = node_events.next() => match ev {
                Some(Ok(ev)) => e.on_node_event(ev),
                Some(Err(err)) => tracing::warn!(error = %err, "simulated nodes: node watch failed"),
                None => return,
            },
            Some(done) = done_rx.recv() => e.on_done(done),
            Some(c) = ctl.recv() => match c {
                Ctl::Revived(i) => e.revive(i),
            },
            _ = sleep_until(next_timer) => e.fire_timers(),
        }
        e.pump();
    }
}

async fn sleep_until(t: Option<Instant>) {
    match t {
        Some(t) => tokio::time::sleep_until(t).await,
        None => std::future::pending().await,
    }
}

fn key_of(pod: &Pod) -> String {
    format!("{}/{}", pod.namespace().unwrap_or_default(), pod.name_any())
}

impl Engine {
    fn on_pod_event(&mut self, ev: watcher::Event<Pod>) {
        match ev {
            watcher::Event::Init => self.epoch += 1,
            watcher::Event::InitApply(p) | watcher::Event::Apply(p) => self.on_pod(p),
            watcher::Event::InitDone => {
                let epoch = self.epoch;
                let stale: Vec<String> = self
                    .pods
                    .iter()
                    .filter(|(_, p)| p.epoch < epoch)
                    .map(|(k, _)| k.clone())
                    .collect();
                for k in stale {
                    self.forget(&k);
                }
            }
            watcher::Event::Delete(p) => {
                let key = key_of(&p);
                if self
                    .pods
                    .get(&key)
                    .is_some_and(|s| Some(&s.uid) == p.metadata.uid.as_ref())
                {
                    self.forget(&key);
                }
            }
        }
    }

    fn forget(&mut self, key: &str) {
        if let Some(p) = self.pods.remove(key) {
            if let Some(ip) = p.ip {
                if !matches!(p.stage, Stage::Done { .. }) {
                    self.ipam[p.node].release(self.shared.nodes[p.node].pod_base(), ip);
                }
            }
        }
    }

    fn on_pod(&mut self, pod: Pod) {
        let Some(node) = pod
            .spec
            .as_ref()
            .and_then(|s| s.node_name.as_deref())
            .and_then(|n| self.shared.by_name.get(n).copied())
        else {
            return;
        };
        let key = key_of(&pod);
        let uid = pod.metadata.uid.clone().unwrap_or_default();
        if self.pods.get(&key).is_some_and(|p| p.uid != uid) {
            // Replaced by a pod of the same name: the old one's delete event was missed.
            self.forget(&key);
        }
        let rv: u64 = pod
            .metadata
            .resource_version
            .as_deref()
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
        let epoch = self.epoch;
        if let Some(p) = self.pods.get_mut(&key) {
            p.epoch = epoch;
            p.has_scheduled = has_condition(&pod, "PodScheduled");
            if pod.metadata.deletion_timestamp.is_some() && !p.deleting {
                p.deleting = true;
            }
            // Someone else changed the status we posted (the node lifecycle controller marks
            // pods of an unreachable node not ready): report ours again, as kubelet's status
            // manager does when it reconciles.
            if rv > p.posted_rv && p.posted_generation == p.generation && !status_agrees(&pod, p) {
                p.generation += 1;
            }
        } else {
            let p = self.admit(&pod, node, uid, rv);
            self.pods.insert(key.clone(), p);
        }
        self.drive(&key);
    }

    /// The record of a pod seen for the first time; a pod this agent ran before a restart
    /// (sim container ids) is adopted where it was.
    fn admit(&mut self, pod: &Pod, node: usize, uid: String, rv: u64) -> SimPod {
        let spec = pod.spec.clone().unwrap_or_default();
        let ann = pod.annotations();
        let policy = match spec.restart_policy.as_deref() {
            Some("Never") => Policy::Never,
            Some("OnFailure") => Policy::OnFailure,
            _ => Policy::Always,
        };
        let annotated = ann.get(DURATION_ANNOTATION).and_then(|v| super::parse_go_duration(v));
        let duration = match policy {
            Policy::Always => annotated,
            _ => Some(annotated.unwrap_or(self.shared.opts.job_duration)),
        };
        let exit_code = ann
            .get(EXIT_CODE_ANNOTATION)
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(0);
        let ctr = |c: &k8s_openapi::api::core::v1::Container| Ctr {
            name: c.name.clone(),
            image: c.image.clone().unwrap_or_default(),
            sidecar: c.restart_policy.as_deref() == Some("Always"),
            mounts: c
                .volume_mounts
                .iter()
                .flatten()
                .map(|m| Mount {
                    name: m.name.clone(),
                    path: m.mount_path.clone(),
                    read_only: m.read_only == Some(true),
                })
                .collect(),
        };
        let now = crate::node::now();
        let mut p = SimPod {
            uid,
            namespace: pod.namespace().unwrap_or_default(),
            name: pod.name_any(),
            node,
            containers: spec.containers.iter().map(ctr).collect(),
            init: spec.init_containers.iter().flatten().map(ctr).collect(),
            policy,
            duration,
            exit_code,
            stage: Stage::Starting { at: Instant::now() },
            stage_since: now,
            start_time: None,
            ip: None,
            restarts: 0,
            last_term: None,
            has_scheduled: has_condition(pod, "PodScheduled"),
            report_pending: false,
            deleting: pod.metadata.deletion_timestamp.is_some(),
            delete_done: false,
            generation: 1,
            posted_generation: 0,
            posted_rv: 0,
            queued: false,
            in_flight: false,
            timer: None,
            epoch: self.epoch,
        };
        let st = pod.status.clone().unwrap_or_default();
        let phase = st.phase.as_deref().unwrap_or("Pending");
        let ours = st.container_statuses.as_ref().is_some_and(|cs| {
            !cs.is_empty()
                && cs
                    .iter()
                    .all(|c| c.container_id.as_deref().is_some_and(|id| id.starts_with("sim://")))
        });
        let ts = |t: &Option<k8s_openapi::apimachinery::pkg::apis::meta::v1::Time>| t.as_ref().map(|t| t.0);
        if phase == "Succeeded" || phase == "Failed" {
            p.stage = Stage::Done {
                failed: phase == "Failed",
                exit_code: 0,
                started: now,
            };
            p.posted_generation = p.generation;
            p.posted_rv = rv;
        } else if phase == "Running" && ours {
            let running = st
                .container_statuses
                .as_ref()
                .and_then(|cs| cs[0].state.as_ref())
                .and_then(|s| s.running.as_ref())
                .and_then(|r| ts(&r.started_at));
            p.restarts = st
                .container_statuses
                .as_ref()
                .map(|cs| cs[0].restart_count)
                .unwrap_or(0);
            p.start_time = ts(&st.start_time);
            p.ip = st.pod_ip.as_deref().and_then(|ip| ip.parse().ok());
            if let Some(ip) = p.ip {
                let base = self.shared.nodes[node].pod_base();
                let off = u32::from(ip).wrapping_sub(u32::from(base));
                if (2..=254).contains(&off) {
                    self.ipam[node].mark(off as u8, true);
                }
            }
            if let Some(started) = running {
                let elapsed = Duration::from_secs(now.as_second().saturating_sub(started.as_second()).max(0) as u64);
                let until = p.duration.map(|d| Instant::now() + d.saturating_sub(elapsed));
                p.stage = Stage::Running { until };
                p.stage_since = started;
                p.posted_generation = p.generation;
                p.posted_rv = rv;
            }
        }
        if matches!(p.stage, Stage::Starting { .. }) {
            let (lo, hi) = (self.shared.opts.startup_delay_min, self.shared.opts.startup_delay_max);
            let delay = if hi > lo { rand::rng().random_range(lo..=hi) } else { lo };
            p.stage = Stage::Starting {
                at: Instant::now() + delay,
            };
            p.report_pending = delay >= REPORT_PENDING_AFTER;
            if !p.report_pending {
                // Nothing to report until the containers run.
                p.posted_generation = p.generation;
            }
        }
        p
    }

    /// Advances the pod's stage as far as the clock allows, then queues a write if one is
    /// needed and arms a timer for the next step.
    fn drive(&mut self, key: &str) {
        let Some(p) = self.pods.get_mut(key) else { return };
        let node = &self.shared.nodes[p.node];
        if !node.alive() {
            return;
        }
        let now = Instant::now();
        let mut next: Option<Instant> = None;
        let mut pull_events = Vec::new();
        if !p.deleting {
            loop {
                match p.stage {
                    Stage::Starting { at } if at <= now => {
                        let t = crate::node::now();
                        p.start_time.get_or_insert(t);
                        if p.ip.is_none() {
                            p.ip = Some(self.ipam[p.node].take(node.pod_base()));
                        }
                        if let Some(stage) = pull_failure(p, 1, now) {
                            pull_events.push(images::failed_pull_events(stage_image(&stage)));
                            p.set_stage(stage, true);
                            continue;
                        }
                        p.set_stage(
                            Stage::Running {
                                until: p.duration.map(|d| now + d),
                            },
                            true,
                        );
                    }
                    Stage::Starting { at } => {
                        next = Some(at);
                        break;
                    }
                    Stage::Running { until: Some(until) } if until <= now => {
                        let started = p.stage_since;
                        let restart = match p.policy {
                            Policy::Always => true,
                            Policy::OnFailure => p.exit_code != 0,
                            Policy::Never => false,
                        };
                        if restart {
                            p.restarts += 1;
                            p.last_term = Some(Term {
                                exit_code: p.exit_code,
                                started,
                                finished: crate::node::now(),
                            });
                            // upstream: the first restart is immediate, later ones back off
                            let delay_secs = if p.restarts <= 1 {
                                0
                            } else {
                                (BACKOFF_INITIAL_SECS << (p.restarts - 2).min(8)).min(BACKOFF_MAX_SECS)
                            };
                            p.set_stage(
                                Stage::BackOff {
                                    until: now + Duration::from_secs(delay_secs),
                                    delay_secs,
                                },
                                delay_secs > 0,
                            );
                        } else {
                            if let Some(ip) = p.ip {
                                self.ipam[p.node].release(node.pod_base(), ip);
                            }
                            p.set_stage(
                                Stage::Done {
                                    failed: p.exit_code != 0,
                                    exit_code: p.exit_code,
                                    started,
                                },
                                true,
                            );
                        }
                    }
                    Stage::Running { until } => {
                        next = until;
                        break;
                    }
                    Stage::BackOff { until, .. } if until <= now => {
                        p.set_stage(
                            Stage::Running {
                                until: p.duration.map(|d| now + d),
                            },
                            true,
                        );
                    }
                    Stage::BackOff { until, .. } => {
                        next = Some(until);
                        break;
                    }
                    Stage::PullFailed {
                        backoff: false,
                        backoff_at,
                        ..
                    } if backoff_at <= now => {
                        if let Stage::PullFailed { backoff, image, .. } = &mut p.stage {
                            *backoff = true;
                            pull_events.push(images::backoff_events(image));
                        }
                        p.generation += 1;
                    }
                    Stage::PullFailed { retry_at, failures, .. } if retry_at <= now => {
                        match pull_failure(p, failures + 1, now) {
                            Some(stage) => {
                                pull_events.push(images::failed_pull_events(stage_image(&stage)));
                                p.set_stage(stage, true);
                            }
                            // The pod's image was changed to one that exists.
                            None => p.set_stage(Stage::Starting { at: now }, false),
                        }
                    }
                    Stage::PullFailed {
                        backoff,
                        backoff_at,
                        retry_at,
                        ..
                    } => {
                        next = Some(if backoff { retry_at } else { backoff_at.min(retry_at) });
                        break;
                    }
                    Stage::Done { .. } => break,
                }
            }
        }
        for evs in pull_events {
            publish_pull_events(&self.client, p, &node.cfg.name, evs);
        }
        if let Some(t) = next {
            if p.timer != Some(t) {
                p.timer = Some(t);
                self.timers.push(Reverse((t, key.to_string())));
            }
        }
        if p.needs_write() && !p.queued && !p.in_flight {
            p.queued = true;
            self.ready.push_back(key.to_string());
        }
    }

    fn fire_timers(&mut self) {
        let now = Instant::now();
        while let Some(Reverse((t, _))) = self.timers.peek() {
            if *t > now {
                break;
            }
            let Some(Reverse((t, key))) = self.timers.pop() else {
                break;
            };
            if let Some(p) = self.pods.get_mut(&key) {
                if p.timer == Some(t) {
                    p.timer = None;
                }
            }
            self.drive(&key);
        }
    }

    /// Sends queued writes while fewer than the limit are in flight.
    fn pump(&mut self) {
        while self.in_flight < self.shared.opts.max_in_flight {
            let Some(key) = self.ready.pop_front() else { break };
            let Some(p) = self.pods.get_mut(&key) else { continue };
            p.queued = false;
            let node = &self.shared.nodes[p.node];
            if !node.alive() || !p.needs_write() || p.in_flight {
                continue;
            }
            p.in_flight = true;
            self.in_flight += 1;
            let client = self.client.clone();
            let done = self.done_tx.clone();
            let (ns, name, uid, generation) = (p.namespace.clone(), p.name.clone(), p.uid.clone(), p.generation);
            if p.deleting {
                tokio::spawn(async move {
                    let outcome = delete(client, &ns, &name, &uid).await;
                    let _ = done.send(WriteDone {
                        key,
                        uid,
                        generation,
                        outcome,
                    });
                });
            } else {
                if matches!(p.stage, Stage::Starting { .. }) && !p.report_pending {
                    // Nothing worth reporting yet.
                    p.in_flight = false;
                    self.in_flight -= 1;
                    p.posted_generation = p.generation;
                    continue;
                }
                let body = status::patch(p, &node.cfg.internal_ip);
                tokio::spawn(async move {
                    let outcome = patch_status(client, &ns, &name, &body).await;
                    let _ = done.send(WriteDone {
                        key,
                        uid,
                        generation,
                        outcome,
                    });
                });
            }
        }
    }

    fn on_done(&mut self, d: WriteDone) {
        self.in_flight -= 1;
        let Some(p) = self.pods.get_mut(&d.key) else { return };
        if p.uid != d.uid {
            return;
        }
        p.in_flight = false;
        match d.outcome {
            Outcome::Posted(rv) => {
                if d.generation == p.generation {
                    p.posted_generation = d.generation;
                }
                p.posted_rv = p.posted_rv.max(rv);
            }
            Outcome::Deleted => p.delete_done = true,
            Outcome::Gone => p.posted_generation = p.generation,
            Outcome::Failed => {
                let t = Instant::now() + RETRY_DELAY;
                p.timer = Some(t);
                self.timers.push(Reverse((t, d.key)));
                return;
            }
        }
        self.drive(&d.key);
    }

    fn on_node_event(&mut self, ev: watcher::Event<Node>) {
        let node = match ev {
            watcher::Event::Apply(n) | watcher::Event::InitApply(n) => n,
            watcher::Event::Delete(n) => {
                // Deleted by someone: the heartbeat registers it again.
                if let Some(&i) = self.shared.by_name.get(&n.name_any()) {
                    let _ = self.status_tx.send(i);
                }
                return;
            }
            watcher::Event::Init | watcher::Event::InitDone => return,
        };
        let Some(&i) = self.shared.by_name.get(&node.name_any()) else {
            return;
        };
        let n = &self.shared.nodes[i];
        let was_alive = n.alive();
        let dead = node.annotations().get(DEAD_ANNOTATION).is_some_and(|v| v == "true");
        n.dead_annotation.store(dead, std::sync::atomic::Ordering::Relaxed);
        *n.uid.lock().unwrap() = node.metadata.uid.clone();
        if n.alive() {
            if !was_alive {
                tracing::info!(node = %n.cfg.name, "simulated node revived by annotation");
                self.revive(i);
                let _ = self.status_tx.send(i);
            } else if !crate::node::status_matches(&node, &n.cfg) {
                // Marked NotReady/Unknown by the node lifecycle controller while alive.
                let _ = self.status_tx.send(i);
            }
        } else if was_alive {
            tracing::info!(node = %n.cfg.name, "simulated node killed by annotation");
        }
    }

    /// Catches up with the pods of a node that came back.
    fn revive(&mut self, node: usize) {
        let keys: Vec<String> = self
            .pods
            .iter()
            .filter(|(_, p)| p.node == node)
            .map(|(k, _)| k.clone())
            .collect();
        for k in keys {
            self.drive(&k);
        }
    }
}

fn has_condition(pod: &Pod, ty: &str) -> bool {
    pod.status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .is_some_and(|cs| cs.iter().any(|c| c.type_ == ty))
}

/// Whether the stored status shows what the pod's stage reports (phase and readiness).
fn status_agrees(pod: &Pod, p: &SimPod) -> bool {
    let st = pod.status.as_ref();
    let phase = st.and_then(|s| s.phase.as_deref()).unwrap_or("Pending");
    let ready = st
        .and_then(|s| s.conditions.as_ref())
        .and_then(|cs| cs.iter().find(|c| c.type_ == "Ready"))
        .is_some_and(|c| c.status == "True");
    match p.stage {
        Stage::Starting { .. } => !p.report_pending || phase == "Pending",
        Stage::Running { .. } => phase == "Running" && ready,
        Stage::BackOff { .. } => phase == "Running" && !ready,
        Stage::Done { failed, .. } => phase == if failed { "Failed" } else { "Succeeded" },
        Stage::PullFailed { .. } => phase == "Pending",
    }
}

/// Records kubelet's image events for the failing container, in order, in the background.
fn publish_pull_events(client: &Client, p: &SimPod, node: &str, evs: Vec<images::PullEvent>) {
    let Stage::PullFailed { container, .. } = &p.stage else {
        return;
    };
    let recorder = Recorder::new(
        client.clone(),
        Reporter {
            controller: "kubelet".into(),
            instance: Some(node.to_string()),
        },
    );
    let reference = ObjectReference {
        api_version: Some("v1".into()),
        kind: Some("Pod".into()),
        name: Some(p.name.clone()),
        namespace: Some(p.namespace.clone()),
        uid: Some(p.uid.clone()),
        field_path: Some(format!("spec.containers{{{container}}}")),
        resource_version: None,
    };
    tokio::spawn(async move {
        for e in evs {
            let ev = KubeEvent {
                type_: if e.warning {
                    EventType::Warning
                } else {
                    EventType::Normal
                },
                reason: e.reason.into(),
                note: Some(e.message),
                action: e.action.into(),
                secondary: None,
            };
            if let Err(err) = recorder.publish(&ev, &reference).await {
                tracing::debug!(error = %err, "recording an image event failed");
            }
        }
    });
}

/// The image-pull failure stage for attempt `failures` if one of the pod's containers has an
/// image that does not exist.
fn pull_failure(p: &SimPod, failures: u32, now: Instant) -> Option<Stage> {
    let c = p.containers.iter().find(|c| !images::exists(&c.image))?;
    Some(Stage::PullFailed {
        container: c.name.clone(),
        image: c.image.clone(),
        failures,
        backoff: false,
        backoff_at: now + ERR_IMAGE_PULL_SHOWN,
        retry_at: now + images::pull_backoff(failures),
    })
}

fn stage_image(stage: &Stage) -> &str {
    match stage {
        Stage::PullFailed { image, .. } => image,
        _ => "",
    }
}

async fn patch_status(client: Client, ns: &str, name: &str, body: &serde_json::Value) -> Outcome {
    let req = kube::core::Request::new(format!("/api/v1/namespaces/{ns}/pods"));
    let req = match req.patch_subresource("status", name, &PatchParams::default(), &Patch::Strategic(body)) {
        Ok(r) => r,
        Err(e) => {
            tracing::warn!(pod = name, error = %e, "building a status patch failed");
            return Outcome::Gone;
        }
    };
    match client.request::<MetaOnly>(req).await {
        Ok(m) => Outcome::Posted(m.metadata.resource_version.parse().unwrap_or(0)),
        // 404: gone; 409/422: the uid precondition failed (a new pod of that name) or the
        // status is refused, which retrying would not change.
        Err(kube::Error::Api(e)) if matches!(e.code, 404 | 409 | 422) => {
            if e.code == 422 {
                tracing::warn!(namespace = ns, pod = name, error = %e.message, "simulated pod status refused");
            }
            Outcome::Gone
        }
        Err(e) => {
            tracing::warn!(namespace = ns, pod = name, error = %e, "posting simulated pod status failed");
            Outcome::Failed
        }
    }
}

async fn delete(client: Client, ns: &str, name: &str, uid: &str) -> Outcome {
    let api: Api<Pod> = Api::namespaced(client, ns);
    let dp = DeleteParams {
        grace_period_seconds: Some(0),
        preconditions: Some(Preconditions {
            uid: Some(uid.to_string()),
            resource_version: None,
        }),
        ..Default::default()
    };
    match api.delete(name, &dp).await {
        // 404/409: gone already, or replaced by a new pod of that name (uid precondition).
        Ok(_) => Outcome::Deleted,
        Err(kube::Error::Api(e)) if e.code == 404 || e.code == 409 => Outcome::Deleted,
        Err(e) => {
            tracing::warn!(namespace = ns, pod = name, error = %e, "deleting a simulated pod failed");
            Outcome::Failed
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ipam_hands_out_round_robin_and_reuses_released() {
        let base = Ipv4Addr::new(10, 64, 1, 0);
        let mut ipam = Ipam::new();
        let a = ipam.take(base);
        let b = ipam.take(base);
        assert_eq!(a, Ipv4Addr::new(10, 64, 1, 2));
        assert_eq!(b, Ipv4Addr::new(10, 64, 1, 3));
        ipam.release(base, a);
        for _ in 0..251 {
            ipam.take(base);
        }
        // all but .2 used; the next goes back to .2
        assert_eq!(ipam.take(base), a);
        assert_eq!(ipam.take(base), Ipv4Addr::new(10, 64, 1, 254));
    }
}
