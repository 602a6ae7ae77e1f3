//! The pod worker: one task per pod that serializes every change to it (spec updates,
//! container exits, probe results, timers), starts and stops its containers, and reports its
//! status.
//!
//! upstream: kubelet's pod worker + `SyncPod` (init containers in order, then containers;
//! restart policy with back-off), status manager (write only on change), and termination
//! (SIGTERM, SIGKILL after the grace period, then delete with grace 0 and a uid precondition).

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::core::v1::{Container, Pod};
use kube::api::{Api, DeleteParams, Patch, PatchParams, Preconditions};
use serde_json::{json, Value};
use tokio::sync::{mpsc, watch};
use tokio::task::{AbortHandle, JoinSet};
use tokio::time::Instant;

use super::backoff::{go_duration, Backoff};
use super::cgroup::{Cgroup, Limits, Roots};
use super::env::{self, Sources};
use super::exec;
use super::logs::{self, ContainerLogs, PodLogs};
use super::network;
use super::probe::{self, Kind, Report};
use super::spawn::{self, Isolation, Mount, Spec};
use super::status::{self, State};
use super::view::{self, ViewSpec};
use super::{volumes, Agent};
use crate::node::{now, rfc3339};

/// How long a force-deleted pod's containers get between SIGTERM and SIGKILL.
const FORCED_GRACE: Duration = Duration::from_secs(2);
/// How often a pod's status in the API is compared with the worker's even without events
/// (kubelet's status manager resyncs every 10 s).
const STATUS_RESYNC: Duration = Duration::from_secs(10);

/// A running container instance.
struct Proc {
    id: String,
    pid: i32,
    started_at: jiff::Timestamp,
    log: logs::Instance,
    cgroup: Option<Cgroup>,
    probes: Option<AbortHandle>,
    /// When SIGKILL follows the SIGTERM already sent.
    kill_at: Option<Instant>,
    reaped: bool,
    /// Reachable by exec and attach while it runs.
    _streams: exec::Registration,
}

impl Drop for Proc {
    fn drop(&mut self) {
        if let Some(p) = &self.probes {
            p.abort();
        }
        if !self.reaped {
            spawn::signal_group(self.pid, libc::SIGKILL);
            if let Some(cg) = &self.cgroup {
                cg.kill_all();
            }
        }
    }
}

/// A terminated container instance.
#[derive(Clone)]
struct Term {
    id: Option<String>,
    exit_code: i32,
    reason: String,
    message: Option<String>,
    started_at: jiff::Timestamp,
    finished_at: jiff::Timestamp,
    finished: Instant,
    log: Option<logs::Instance>,
}

/// One container of the pod.
struct Ctr {
    spec: Container,
    init: bool,
    restart_count: i32,
    /// Whether an instance was ever started (by this agent or, per the API, a previous one).
    ever_started: bool,
    running: Option<Proc>,
    last: Option<Term>,
    prev: Option<Term>,
    waiting: Option<(String, Option<String>)>,
    retry_at: Option<Instant>,
    ready: bool,
    started: bool,
    backoff_reported: Option<Instant>,
}

impl Ctr {
    fn field_path(&self) -> String {
        if self.init {
            format!("spec.initContainers{{{}}}", self.spec.name)
        } else {
            format!("spec.containers{{{}}}", self.spec.name)
        }
    }

    fn succeeded(&self) -> bool {
        self.running.is_none() && self.last.as_ref().is_some_and(|t| t.exit_code == 0)
    }
}

/// A process exit, reported by the task waiting on it.
struct Exit {
    container: String,
    id: String,
    exit_code: i32,
    oom: bool,
    finished_at: jiff::Timestamp,
}

struct Worker {
    agent: Arc<Agent>,
    pod: Arc<Pod>,
    uid: String,
    ns: String,
    name: String,
    dir: PathBuf,
    volumes: Option<HashMap<String, PathBuf>>,
    volume_error: Option<String>,
    next_volume_sync: Instant,
    start_time: String,
    init: Vec<Ctr>,
    containers: Vec<Ctr>,
    backoff: Backoff,
    exits: mpsc::UnboundedSender<Exit>,
    probes: mpsc::UnboundedSender<probe::Message>,
    tasks: JoinSet<()>,
    last_status: Option<Value>,
    /// The resourceVersion of the pod as the last status write returned it: older copies
    /// from the watch are not compared with the status written since.
    written_rv: Option<u64>,
    /// Set once the pod is being deleted: when SIGKILL follows.
    terminating: Option<Instant>,
    /// Terminal (Succeeded/Failed): nothing starts any more.
    terminal: bool,
    /// Adopted as terminal from the API: its status is left as it is.
    frozen: bool,
    deleted: bool,
    warned: bool,
    /// The pod's address in bridge networking, once its namespace is set up.
    pod_ip: Option<std::net::Ipv4Addr>,
    /// Why the pod's network could not be set up (told once).
    net_error: Option<String>,
}

/// Runs the worker of one pod until the pod is gone from the API.
pub(crate) async fn run(agent: Arc<Agent>, mut rx: watch::Receiver<Option<Arc<Pod>>>) {
    let Some(pod) = rx.borrow_and_update().clone() else {
        return;
    };
    let (exits_tx, mut exits_rx) = mpsc::unbounded_channel();
    let (probes_tx, mut probes_rx) = mpsc::unbounded_channel();
    let mut w = Worker::new(agent, pod, exits_tx, probes_tx);
    w.sync().await;
    loop {
        let wake = w.next_wake();
        tokio::select! {
            changed = rx.changed() => {
                let pod = if changed.is_ok() { rx.borrow_and_update().clone() } else { None };
                match pod {
                    Some(p) => w.pod = p,
                    None => {
                        w.gone().await;
                        return;
                    }
                }
            }
            Some(exit) = exits_rx.recv() => w.on_exit(exit),
            Some(msg) = probes_rx.recv() => w.on_probe(msg),
            Some(_) = w.tasks.join_next(), if !w.tasks.is_empty() => {}
            _ = tokio::time::sleep_until(wake) => {}
        }
        w.sync().await;
    }
}

impl Worker {
    fn new(
        agent: Arc<Agent>,
        pod: Arc<Pod>,
        exits: mpsc::UnboundedSender<Exit>,
        probes: mpsc::UnboundedSender<probe::Message>,
    ) -> Self {
        let uid = pod.metadata.uid.clone().unwrap_or_default();
        let ns = pod.metadata.namespace.clone().unwrap_or_default();
        let name = pod.metadata.name.clone().unwrap_or_default();
        let dir = agent.pods_dir().join(&uid);
        let st = pod.status.as_ref();
        let start_time = st
            .and_then(|s| s.start_time.as_ref())
            .map(|t| rfc3339(t.0))
            .unwrap_or_else(|| rfc3339(now()));
        let previous = |init: bool, name: &str| {
            st.and_then(|s| {
                if init {
                    s.init_container_statuses.as_ref()
                } else {
                    s.container_statuses.as_ref()
                }
            })
            .and_then(|v| v.iter().find(|c| c.name == name))
            .map(|c| (c.restart_count, c.container_id.is_some()))
        };
        let ctr = |spec: &Container, init: bool| {
            let (restart_count, ever_started) = previous(init, &spec.name).unwrap_or((0, false));
            Ctr {
                spec: spec.clone(),
                init,
                restart_count,
                ever_started,
                running: None,
                last: None,
                prev: None,
                waiting: None,
                retry_at: None,
                ready: false,
                started: false,
                backoff_reported: None,
            }
        };
        let spec = pod.spec.clone().unwrap_or_default();
        let init = spec.init_containers.iter().flatten().map(|c| ctr(c, true)).collect();
        let containers = spec.containers.iter().map(|c| ctr(c, false)).collect();
        let phase = st.and_then(|s| s.phase.clone()).unwrap_or_default();
        let frozen = phase == "Succeeded" || phase == "Failed";
        let backoff = Backoff::new(agent.opts.backoff_base, agent.opts.backoff_max);
        Worker {
            agent,
            pod,
            uid,
            ns,
            name,
            dir,
            volumes: None,
            volume_error: None,
            next_volume_sync: Instant::now(),
            start_time,
            init,
            containers,
            backoff,
            exits,
            probes,
            tasks: JoinSet::new(),
            last_status: None,
            written_rv: None,
            terminating: None,
            terminal: frozen,
            frozen,
            deleted: false,
            warned: false,
            pod_ip: None,
            net_error: None,
        }
    }

    fn restart_policy(&self) -> String {
        self.pod
            .spec
            .as_ref()
            .and_then(|s| s.restart_policy.clone())
            .unwrap_or_else(|| "Always".into())
    }

    fn pod_label(&self) -> String {
        // upstream format.Pod: name_namespace(uid)
        format!("{}_{}({})", self.name, self.ns, self.uid)
    }

    fn all(&self) -> impl Iterator<Item = &Ctr> {
        self.init.iter().chain(self.containers.iter())
    }

    fn all_mut(&mut self) -> impl Iterator<Item = &mut Ctr> {
        self.init.iter_mut().chain(self.containers.iter_mut())
    }

    fn ctr_mut(&mut self, name: &str) -> Option<&mut Ctr> {
        self.all_mut().find(|c| c.spec.name == name)
    }

    fn next_wake(&self) -> Instant {
        let far = Instant::now() + Duration::from_secs(3600);
        let mut t = far;
        let mut consider = |x: Option<Instant>| {
            if let Some(x) = x {
                t = t.min(x);
            }
        };
        if self.terminating.is_some() || !self.terminal {
            for c in self.all() {
                consider(c.retry_at);
                consider(c.running.as_ref().and_then(|p| p.kill_at));
            }
        }
        consider(self.terminating);
        if !self.terminal && self.terminating.is_none() {
            consider(Some(self.next_volume_sync));
        }
        if !self.frozen && !self.deleted {
            consider(Some(Instant::now() + STATUS_RESYNC));
        }
        t
    }

    fn event(&self, c: Option<&Ctr>, warning: bool, reason: &str, note: String) {
        self.agent
            .event(&self.pod, c.map(|c| c.field_path()), warning, reason, note);
    }

    /// Brings the pod's containers in line with its spec and reports the status.
    async fn sync(&mut self) {
        if self.deleted {
            return;
        }
        if self.pod.metadata.deletion_timestamp.is_some() {
            self.terminate().await;
            return;
        }
        if !self.terminal && self.sync_network().await {
            self.sync_volumes().await;
            if self.volumes.is_some() {
                self.warn_degraded();
                self.sync_containers().await;
            }
        }
        self.report().await;
    }

    /// Whether the pod has its network: its own namespace on the node's bridge in bridge
    /// networking (made once, before anything starts), the host's otherwise.
    async fn sync_network(&mut self) -> bool {
        let Some(bridge) = self.agent.bridge.as_ref().filter(|_| !self.host_network()) else {
            return true;
        };
        if self.pod_ip.is_some() {
            return true;
        }
        if let Err(e) = std::fs::create_dir_all(&self.dir) {
            tracing::warn!(pod = %self.name, error = %e, "creating the pod directory failed");
            return false;
        }
        match bridge.add_pod(&self.uid, &self.dir).await {
            Ok(ip) => {
                self.pod_ip = Some(ip);
                self.net_error = None;
                true
            }
            Err(e) => {
                let msg = format!("Failed to create pod sandbox: failed to set up pod network: {e}");
                if self.net_error.as_deref() != Some(msg.as_str()) {
                    self.event(None, true, "FailedCreatePodSandBox", msg.clone());
                }
                self.net_error = Some(msg);
                self.next_volume_sync = Instant::now() + Duration::from_secs(2);
                false
            }
        }
    }

    /// The node facts with this pod's own address.
    fn facts(&self) -> env::NodeFacts {
        let mut f = self.agent.facts.clone();
        f.pod_ip = self.pod_ip.map(|ip| ip.to_string());
        f
    }

    /// The pod's address: its own in bridge networking, the node's otherwise.
    fn ip(&self) -> String {
        self.pod_ip
            .map(|ip| ip.to_string())
            .unwrap_or_else(|| self.agent.opts.node_ip.clone())
    }

    async fn sync_volumes(&mut self) {
        if self.volumes.is_some() && Instant::now() < self.next_volume_sync {
            return;
        }
        self.next_volume_sync = Instant::now() + self.agent.opts.volume_resync;
        if let Err(e) = std::fs::create_dir_all(&self.dir) {
            tracing::warn!(pod = %self.name, error = %e, "creating the pod directory failed");
            return;
        }
        let mut src = Sources::new(self.agent.client.clone(), &self.ns);
        let facts = self.facts();
        match volumes::prepare(&self.pod, &self.dir, self.agent.privileged, &facts, &mut src).await {
            Ok(v) => {
                let hostname = self.hostname();
                let hosts = volumes::hosts_file(&self.pod, &self.ip(), &hostname);
                let _ = std::fs::write(self.dir.join("etc-hosts"), hosts);
                let opts = &self.agent.opts;
                match network::resolv_conf(&self.pod, opts.cluster_dns, &opts.cluster_domain) {
                    Some(conf) => {
                        let _ = std::fs::write(self.dir.join("etc-resolv.conf"), conf);
                    }
                    None => {
                        let _ = std::fs::remove_file(self.dir.join("etc-resolv.conf"));
                    }
                }
                self.volumes = Some(v);
                self.volume_error = None;
            }
            Err(e) => {
                let msg = format!("MountVolume.SetUp failed for volume \"{}\" : {}", e.volume, e.message);
                if self.volume_error.as_deref() != Some(msg.as_str()) {
                    self.event(None, true, "FailedMount", msg.clone());
                }
                self.volume_error = Some(msg);
                // upstream retries mounts quickly at first; a missing ConfigMap appears soon.
                self.next_volume_sync = Instant::now() + self.agent.opts.backoff_base.min(Duration::from_secs(2));
            }
        }
    }

    fn hostname(&self) -> String {
        let spec = self.pod.spec.as_ref();
        let h = spec
            .and_then(|s| s.hostname.clone())
            .filter(|h| !h.is_empty())
            .unwrap_or_else(|| self.name.clone());
        // upstream truncates to 63 characters and trims trailing '-' and '.'
        let h: String = h.chars().take(63).collect();
        h.trim_end_matches(['-', '.']).to_string()
    }

    /// The pod's network namespace for a container to join (bridge networking).
    fn netns_join(&self) -> Vec<std::fs::File> {
        if self.pod_ip.is_none() {
            return Vec::new();
        }
        match std::fs::File::open(self.dir.join("netns")) {
            Ok(f) => vec![f],
            Err(e) => {
                tracing::warn!(pod = %self.name, error = %e, "opening the pod's network namespace failed");
                Vec::new()
            }
        }
    }

    fn host_network(&self) -> bool {
        self.pod.spec.as_ref().and_then(|s| s.host_network).unwrap_or(false)
    }

    /// Unprivileged agents say once per pod which isolation features they skip.
    fn warn_degraded(&mut self) {
        if self.warned || self.agent.privileged {
            return;
        }
        self.warned = true;
        let mut missing = Vec::new();
        if !self.host_network() {
            missing.push(format!("hostname {:?} and the pod's /etc/hosts", self.hostname()));
        }
        let mounts: Vec<String> = self
            .all()
            .flat_map(|c| c.spec.volume_mounts.iter().flatten())
            .map(|m| m.mount_path.clone())
            .collect();
        if !mounts.is_empty() {
            missing.push(format!(
                "volume mounts at {} (the volumes are in {})",
                mounts.join(", "),
                self.dir.join("volumes").display()
            ));
        }
        let limited = self.all().any(|c| {
            c.spec
                .resources
                .as_ref()
                .and_then(|r| r.limits.as_ref())
                .is_some_and(|l| l.contains_key("cpu") || l.contains_key("memory"))
        });
        if limited {
            missing.push("cpu and memory limits".into());
        }
        if !missing.is_empty() {
            self.event(
                None,
                true,
                "Degraded",
                format!(
                    "The process runtime is not running as root, so these are not applied: {}",
                    missing.join("; ")
                ),
            );
        }
    }

    async fn sync_containers(&mut self) {
        let policy = self.restart_policy();
        let mut init_done = true;
        for i in 0..self.init.len() {
            let c = &self.init[i];
            if c.succeeded() {
                continue;
            }
            init_done = false;
            if c.running.is_some() {
                break;
            }
            match &c.last {
                Some(_) if policy == "Never" => {
                    self.terminal = true;
                }
                Some(_) => self.maybe_restart(true, i).await,
                None => {
                    if c.retry_at.is_none_or(|t| Instant::now() >= t) {
                        self.start(true, i).await;
                    }
                }
            }
            break;
        }
        if init_done {
            for i in 0..self.containers.len() {
                let c = &self.containers[i];
                if c.running.is_some() {
                    continue;
                }
                match &c.last {
                    None => {
                        if c.retry_at.is_none_or(|t| Instant::now() >= t) {
                            self.start(false, i).await;
                        }
                    }
                    Some(t) => {
                        let restart = match policy.as_str() {
                            "Always" => true,
                            "OnFailure" => t.exit_code != 0,
                            _ => false,
                        };
                        if restart {
                            self.maybe_restart(false, i).await;
                        }
                    }
                }
            }
        }
        let (phase, _, _) = self.phase();
        if phase == "Succeeded" || phase == "Failed" {
            self.terminal = true;
        }
    }

    /// Restarts a terminated container unless it is in back-off (CrashLoopBackOff).
    async fn maybe_restart(&mut self, init: bool, i: usize) {
        let label = self.pod_label();
        let c = if init { &self.init[i] } else { &self.containers[i] };
        let Some(last) = &c.last else { return };
        let name = c.spec.name.clone();
        if let Some(until) = self.backoff.in_backoff_until(&name, last.finished) {
            let msg = format!(
                "back-off {} restarting failed container={name} pod={label}",
                go_duration(self.backoff.get(&name))
            );
            let finished = last.finished;
            let c = if init {
                &mut self.init[i]
            } else {
                &mut self.containers[i]
            };
            c.waiting = Some(("CrashLoopBackOff".into(), Some(msg)));
            c.retry_at = Some(until);
            if c.backoff_reported != Some(finished) {
                c.backoff_reported = Some(finished);
                let c = if init { &self.init[i] } else { &self.containers[i] };
                self.event(
                    Some(c),
                    true,
                    "BackOff",
                    format!("Back-off restarting failed container {name} in pod {label}"),
                );
            }
            return;
        }
        self.backoff.next(&name);
        self.start(init, i).await;
    }

    /// Starts an instance of a container.
    async fn start(&mut self, init: bool, i: usize) {
        let spec = if init { &self.init[i] } else { &self.containers[i] }.spec.clone();
        let fail_waiting = |w: &mut Worker, reason: &str, msg: String, retry: bool| {
            let retry_at = retry.then(|| Instant::now() + w.agent.opts.backoff_base);
            let c = if init { &mut w.init[i] } else { &mut w.containers[i] };
            let changed = c.waiting.as_ref().map(|(r, m)| (r.as_str(), m.clone())) != Some((reason, Some(msg.clone())));
            c.waiting = Some((reason.to_string(), Some(msg.clone())));
            c.retry_at = retry_at;
            if changed {
                let c = if init { &w.init[i] } else { &w.containers[i] };
                w.event(Some(c), true, "Failed", format!("Error: {msg}"));
            }
        };
        let command = spec.command.clone().unwrap_or_default();
        let args = spec.args.clone().unwrap_or_default();
        if command.is_empty() && args.is_empty() {
            let msg = format!(
                "no command specified: the process runtime does not run images, so container {:?} must set command or args",
                spec.name
            );
            fail_waiting(self, "CreateContainerError", msg, false);
            return;
        }
        let mut src = Sources::new(self.agent.client.clone(), &self.ns);
        let facts = self.facts();
        let resolved = match env::resolve(&self.pod, &spec, &facts, &mut src).await {
            Ok(r) => r,
            Err(msg) => {
                fail_waiting(self, "CreateContainerConfigError", msg, true);
                return;
            }
        };
        if !resolved.invalid_names.is_empty() {
            self.event(
                None,
                true,
                "InvalidEnvironmentVariableNames",
                format!(
                    "Keys [{}] from the EnvFrom were skipped since they are considered invalid environment variable names.",
                    resolved.invalid_names.join(", ")
                ),
            );
        }
        let mut vars = resolved.vars;
        if !vars.iter().any(|(k, _)| k == "PATH") {
            vars.push(("PATH".into(), env::DEFAULT_PATH.into()));
        }
        if !vars.iter().any(|(k, _)| k == "HOSTNAME") {
            let h = if self.host_network() {
                host_name()
            } else {
                self.hostname()
            };
            vars.push(("HOSTNAME".into(), h));
        }
        let lookup: HashMap<&str, &str> = vars.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        // Without `command`, `args` run as the command: images are not run, so there is no
        // entrypoint for them to follow (busybox has none either).
        let mut argv: Vec<String> = command.iter().chain(&args).map(|s| env::expand(s, &lookup)).collect();
        let program = argv.remove(0);

        let image = spec.image.clone().unwrap_or_default();
        {
            let c = if init { &self.init[i] } else { &self.containers[i] };
            self.event(
                Some(c),
                false,
                "Pulled",
                format!("Container image {image:?} already present on machine"),
            );
        }
        let cwd = spec
            .working_dir
            .clone()
            .filter(|w| !w.is_empty())
            .map(PathBuf::from)
            .unwrap_or_else(|| self.dir.clone());
        // With privileges a missing working directory is made in the container's view only.
        if !self.agent.privileged && !cwd.exists() {
            let _ = std::fs::create_dir_all(&cwd);
        }
        let hostname = if self.host_network() {
            host_name()
        } else {
            self.hostname()
        };
        let namespaces = self.agent.privileged.then(|| {
            let view = ViewSpec {
                mounts: self.mounts(&spec),
                hidden: view::hidden_dirs(&self.agent.opts.hidden),
                pod_dir: std::fs::canonicalize(&self.dir).unwrap_or_else(|_| self.dir.clone()),
                cwd: cwd.clone(),
            };
            (hostname.clone(), view)
        });

        let c = if init { &self.init[i] } else { &self.containers[i] };
        let restart = if c.ever_started {
            c.restart_count + 1
        } else {
            c.restart_count
        };
        let cgroup = self.cgroup_for(&spec, restart);
        let cg_files = cgroup.as_ref().and_then(|cg| cg.procs_files().ok()).unwrap_or_default();
        let log_path = self.dir.join("logs").join(&spec.name).join(format!("{restart}.log"));
        let writer = match logs::Writer::create(log_path, self.agent.opts.log_max_bytes) {
            Ok(w) => w,
            Err(e) => {
                fail_waiting(
                    self,
                    "CreateContainerError",
                    format!("creating the log file: {e}"),
                    true,
                );
                return;
            }
        };
        let exec_env = vars.clone();
        let started_at = now();
        let started = Instant::now();
        let own_namespaces = namespaces.is_some();
        let child = spawn::spawn(Spec {
            program: program.clone(),
            args: argv.clone(),
            env: vars,
            cwd: cwd.clone(),
            isolation: Isolation {
                namespaces,
                join: self.netns_join(),
                cgroups: cg_files,
            },
            stdin: spec.stdin == Some(true),
        });
        let id = new_id();
        let c = if init {
            &mut self.init[i]
        } else {
            &mut self.containers[i]
        };
        c.restart_count = restart;
        c.ever_started = true;
        c.waiting = None;
        c.retry_at = None;
        let mut child = match child {
            Ok(ch) => ch,
            Err(e) => {
                let msg = match e.kind() {
                    std::io::ErrorKind::NotFound => {
                        format!("exec: {program:?}: executable file not found in $PATH")
                    }
                    _ => format!("exec: {program:?}: {e}"),
                };
                let log = writer.instance.clone();
                writer.finish(Duration::from_millis(100)).await;
                if let Some(cg) = &cgroup {
                    cg.remove().await;
                }
                // upstream: a runtime that cannot start the process reports StartError (128)
                let t = Term {
                    id: Some(id),
                    exit_code: 128,
                    reason: "StartError".into(),
                    message: Some(msg.clone()),
                    started_at,
                    finished_at: now(),
                    finished: Instant::now(),
                    log: Some(log),
                };
                c.prev = c.last.take();
                c.last = Some(t);
                let c = if init { &self.init[i] } else { &self.containers[i] };
                self.event(
                    Some(c),
                    true,
                    "Failed",
                    format!("Error: failed to start container {:?}: {msg}", spec.name),
                );
                return;
            }
        };
        let pid = child.id().map(|p| p as i32).unwrap_or(0);
        let (output, _) = tokio::sync::broadcast::channel(256);
        if let Some(out) = child.stdout.take() {
            writer.pump("stdout", out, Some(output.clone()));
        }
        if let Some(err) = child.stderr.take() {
            writer.pump("stderr", err, Some(output.clone()));
        }
        let streams = Arc::new(exec::Running {
            id: id.clone(),
            pid,
            env: exec_env.clone(),
            cwd: cwd.clone(),
            cgroup: cgroup.clone(),
            namespaces: own_namespaces,
            output: std::sync::Mutex::new(Some(output)),
            stdin: child.stdin.take().map(|s| Arc::new(tokio::sync::Mutex::new(Some(s)))),
            stdin_once: spec.stdin_once == Some(true),
            exited: tokio::sync::watch::channel(None).0,
        });
        let registration = self
            .agent
            .running
            .register(&self.ns, &self.name, &spec.name, streams.clone());
        let log = writer.instance.clone();
        let exits = self.exits.clone();
        let (cname, cid, cg) = (spec.name.clone(), id.clone(), cgroup.clone());
        self.tasks.spawn(async move {
            let status = child.wait().await;
            let finished_at = now();
            // The container ends with its main process (as its PID namespace would).
            spawn::signal_group(pid, libc::SIGKILL);
            if let Some(cg) = &cg {
                cg.kill_all();
            }
            let oom = cg.as_ref().is_some_and(|cg| cg.oom_killed());
            writer.finish(Duration::from_secs(2)).await;
            if let Some(cg) = &cg {
                cg.remove().await;
            }
            use std::os::unix::process::ExitStatusExt;
            let exit_code = match status {
                Ok(s) => s.code().unwrap_or_else(|| 128 + s.signal().unwrap_or(9)),
                Err(_) => 128 + 9,
            };
            streams.ended(exit_code);
            let _ = exits.send(Exit {
                container: cname,
                id: cid,
                exit_code,
                oom,
                finished_at,
            });
        });
        let probes = self.spawn_probes(&spec, &id, pid, started, exec_env, cwd, cgroup.clone());
        let c = if init {
            &mut self.init[i]
        } else {
            &mut self.containers[i]
        };
        c.started = spec.startup_probe.is_none();
        c.ready = c.started && spec.readiness_probe.is_none() && !init;
        c.running = Some(Proc {
            id,
            pid,
            started_at,
            log,
            cgroup,
            probes,
            kill_at: None,
            reaped: false,
            _streams: registration,
        });
        let c = if init { &self.init[i] } else { &self.containers[i] };
        self.event(Some(c), false, "Created", format!("Created container: {}", spec.name));
        self.event(Some(c), false, "Started", format!("Started container {}", spec.name));
    }

    /// Bind mounts for a container: its volumeMounts and the pod's /etc/hosts.
    fn mounts(&self, spec: &Container) -> Vec<Mount> {
        let mut out = Vec::new();
        let vols = self.volumes.clone().unwrap_or_default();
        let pod_volumes = self
            .pod
            .spec
            .as_ref()
            .and_then(|s| s.volumes.clone())
            .unwrap_or_default();
        for m in spec.volume_mounts.iter().flatten() {
            let Some(src) = vols.get(&m.name) else { continue };
            let mut source = src.clone();
            if let Some(sub) = m.sub_path.as_deref().filter(|s| !s.is_empty()) {
                source = source.join(sub);
                if !source.exists() {
                    let _ = std::fs::create_dir_all(&source);
                }
            }
            // upstream: configMap, secret, downwardAPI and projected volumes are read-only
            let atomic = pod_volumes.iter().any(|v| {
                v.name == m.name
                    && (v.config_map.is_some()
                        || v.secret.is_some()
                        || v.downward_api.is_some()
                        || v.projected.is_some())
            });
            out.push(Mount {
                source,
                target: PathBuf::from(&m.mount_path),
                read_only: m.read_only == Some(true) || atomic,
            });
        }
        let hosts = self.dir.join("etc-hosts");
        if !self.host_network() && hosts.exists() && !out.iter().any(|m| m.target == Path::new("/etc/hosts")) {
            out.push(Mount {
                source: hosts,
                target: PathBuf::from("/etc/hosts"),
                read_only: false,
            });
        }
        let resolv = self.dir.join("etc-resolv.conf");
        if resolv.exists() && !out.iter().any(|m| m.target == Path::new("/etc/resolv.conf")) {
            out.push(Mount {
                source: resolv,
                target: PathBuf::from("/etc/resolv.conf"),
                read_only: false,
            });
        }
        out
    }

    fn cgroup_for(&self, spec: &Container, restart: i32) -> Option<Cgroup> {
        let roots = self.agent.cgroups.as_ref()?;
        let r = spec.resources.as_ref();
        let get = |m: Option<
            &std::collections::BTreeMap<String, k8s_openapi::apimachinery::pkg::api::resource::Quantity>,
        >,
                   k: &str| m.and_then(|m| m.get(k)).and_then(|q| env::parse_quantity(&q.0));
        let limits = r.and_then(|r| r.limits.as_ref());
        let requests = r.and_then(|r| r.requests.as_ref());
        let l = Limits::from_resources(get(limits, "cpu"), get(requests, "cpu"), get(limits, "memory"));
        let rel = Roots::node_rel(&self.agent.cgroup_name)
            .join(format!("pod{}", self.uid))
            .join(format!("{}-{restart}", spec.name));
        match roots.create(&rel, &l) {
            Ok(cg) => Some(cg),
            Err(e) => {
                tracing::warn!(pod = %self.name, container = %spec.name, error = %e, "creating cgroups failed");
                None
            }
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn spawn_probes(
        &mut self,
        spec: &Container,
        id: &str,
        pid: i32,
        started: Instant,
        env: Vec<(String, String)>,
        cwd: PathBuf,
        cgroup: Option<Cgroup>,
    ) -> Option<AbortHandle> {
        if spec.startup_probe.is_none() && spec.liveness_probe.is_none() && spec.readiness_probe.is_none() {
            return None;
        }
        let privileged = self.agent.privileged;
        let exec: probe::ExecSpec = Arc::new(move |argv: Vec<String>| {
            let mut argv = argv;
            let program = argv.remove(0);
            let mut join = Vec::new();
            if privileged {
                for ns in ["net", "mnt", "uts"] {
                    join.push(std::fs::File::open(format!("/proc/{pid}/ns/{ns}"))?);
                }
            }
            let cgroups = cgroup.as_ref().and_then(|c| c.procs_files().ok()).unwrap_or_default();
            Ok(Spec {
                program,
                args: argv,
                env: env.clone(),
                cwd: cwd.clone(),
                isolation: Isolation {
                    namespaces: None,
                    join,
                    cgroups,
                },
                stdin: false,
            })
        });
        let ctx = Arc::new(probe::Ctx {
            container: spec.clone(),
            instance: id.to_string(),
            started,
            host: self.ip(),
            exec,
            tx: self.probes.clone(),
        });
        Some(self.tasks.spawn(probe::run(ctx)))
    }

    fn on_exit(&mut self, exit: Exit) {
        let Some(c) = self.ctr_mut(&exit.container) else { return };
        let Some(mut p) = c.running.take_if(|p| p.id == exit.id) else {
            return;
        };
        p.reaped = true;
        let reason = if exit.oom {
            "OOMKilled"
        } else if exit.exit_code == 0 {
            "Completed"
        } else {
            "Error"
        };
        let t = Term {
            id: Some(p.id.clone()),
            exit_code: if exit.oom { 137 } else { exit.exit_code },
            reason: reason.into(),
            message: None,
            started_at: p.started_at,
            finished_at: exit.finished_at,
            finished: Instant::now(),
            log: Some(p.log.clone()),
        };
        c.prev = c.last.take();
        c.last = Some(t);
        c.ready = false;
        c.started = false;
    }

    fn on_probe(&mut self, msg: probe::Message) {
        let grace = self.grace_seconds();
        let Some(c) = self.ctr_mut(&msg.container) else { return };
        if c.running.as_ref().is_none_or(|p| p.id != msg.instance) {
            return;
        }
        match msg.report {
            Report::Started => {
                c.started = true;
                c.ready = c.spec.readiness_probe.is_none() && !c.init;
            }
            Report::Ready(r) => c.ready = r && c.started,
            Report::Unhealthy(kind, out) => {
                let c = self.all().find(|c| c.spec.name == msg.container);
                self.event(c, true, "Unhealthy", format!("{} probe failed: {out}", kind.title()));
            }
            Report::Failed(kind) => {
                let probe_grace = match kind {
                    Kind::Liveness => c.spec.liveness_probe.as_ref(),
                    _ => c.spec.startup_probe.as_ref(),
                }
                .and_then(|p| p.termination_grace_period_seconds);
                let grace = probe_grace.unwrap_or(grace);
                c.ready = false;
                if let Some(p) = c.running.as_mut() {
                    spawn::signal_group(p.pid, libc::SIGTERM);
                    p.kill_at = Some(Instant::now() + Duration::from_secs(grace.max(0) as u64));
                }
                let name = msg.container.clone();
                let c = self.all().find(|c| c.spec.name == name);
                self.event(
                    c,
                    false,
                    "Killing",
                    format!("Container {name} failed {} probe, will be restarted", kind.lower()),
                );
            }
        }
    }

    fn grace_seconds(&self) -> i64 {
        self.pod
            .spec
            .as_ref()
            .and_then(|s| s.termination_grace_period_seconds)
            .unwrap_or(30)
    }

    /// SIGKILLs instances whose grace period ran out.
    fn enforce_kills(&mut self) {
        let now = Instant::now();
        for c in self.all_mut() {
            if let Some(p) = c.running.as_mut() {
                if p.kill_at.is_some_and(|t| now >= t) {
                    spawn::signal_group(p.pid, libc::SIGKILL);
                    if let Some(cg) = &p.cgroup {
                        cg.kill_all();
                    }
                    p.kill_at = Some(now + Duration::from_secs(3600));
                }
            }
        }
    }

    /// The pod is being deleted: stop its containers, report, then delete it for good.
    async fn terminate(&mut self) {
        if self.terminating.is_none() {
            let grace = self
                .pod
                .metadata
                .deletion_grace_period_seconds
                .unwrap_or_else(|| self.grace_seconds())
                .max(0) as u64;
            let deadline = Instant::now() + Duration::from_secs(grace);
            self.terminating = Some(deadline);
            let names: Vec<String> = self
                .all()
                .filter(|c| c.running.is_some())
                .map(|c| c.spec.name.clone())
                .collect();
            for c in self.all_mut() {
                c.waiting = None;
                c.retry_at = None;
                if let Some(p) = c.running.as_mut() {
                    spawn::signal_group(p.pid, libc::SIGTERM);
                    p.kill_at = Some(deadline);
                }
            }
            for n in names {
                let c = self.all().find(|c| c.spec.name == n);
                self.event(c, false, "Killing", format!("Stopping container {n}"));
            }
        } else if let Some(g) = self.pod.metadata.deletion_grace_period_seconds {
            // A second delete may shorten the grace period.
            let deadline = Instant::now() + Duration::from_secs(g.max(0) as u64);
            if self.terminating.is_some_and(|t| deadline < t) {
                self.terminating = Some(deadline);
                for c in self.all_mut() {
                    if let Some(p) = c.running.as_mut() {
                        p.kill_at = Some(deadline);
                    }
                }
            }
        }
        self.enforce_kills();
        if self.all().any(|c| c.running.is_some()) {
            // While stopping, only the logs move; the final status is written once, below.
            self.publish_logs();
            return;
        }
        self.terminal = true;
        if !self.frozen {
            self.report().await;
        }
        let api: Api<Pod> = Api::namespaced(self.agent.client.clone(), &self.ns);
        let dp = DeleteParams {
            grace_period_seconds: Some(0),
            preconditions: Some(Preconditions {
                uid: Some(self.uid.clone()),
                resource_version: None,
            }),
            ..Default::default()
        };
        match api.delete(&self.name, &dp).await {
            Ok(_) => self.deleted = true,
            Err(kube::Error::Api(e)) if e.code == 404 || e.code == 409 => self.deleted = true,
            Err(e) => {
                tracing::warn!(pod = %self.name, error = %e, "deleting the pod failed; retrying");
                self.terminating = Some(Instant::now() + Duration::from_secs(1));
            }
        }
    }

    /// The pod is gone from the API: stop what still runs and remove its traces.
    async fn gone(&mut self) {
        let deadline = Instant::now() + FORCED_GRACE;
        for c in self.all_mut() {
            if let Some(p) = c.running.as_mut() {
                spawn::signal_group(p.pid, libc::SIGTERM);
                p.kill_at = Some(deadline);
            }
        }
        while self.all().any(|c| c.running.is_some()) {
            self.enforce_kills();
            // Exits arrive through the channel the main loop owns; poll the processes here.
            tokio::time::sleep(Duration::from_millis(50)).await;
            for c in self.all_mut() {
                if let Some(p) = &c.running {
                    if !alive(p.pid) {
                        if let Some(mut p) = c.running.take() {
                            p.reaped = true;
                        }
                    }
                }
            }
            if Instant::now() > deadline + Duration::from_secs(5) {
                break;
            }
        }
        self.tasks.shutdown().await;
        self.agent.logs.remove(&self.ns, &self.name, &self.uid);
        volumes::unmount_all(&self.dir);
        if let Some(b) = &self.agent.bridge {
            b.del_pod(&self.uid, &self.dir).await;
        }
        if let Some(roots) = &self.agent.cgroups {
            roots.remove_pod(&self.agent.cgroup_name, &self.uid);
        }
        if let Err(e) = std::fs::remove_dir_all(&self.dir) {
            if e.kind() != std::io::ErrorKind::NotFound {
                tracing::warn!(pod = %self.name, error = %e, "removing the pod directory failed");
            }
        }
    }

    /// The pod phase and the phase-relevant states of init and regular containers.
    fn phase(&self) -> (&'static str, Vec<State>, Vec<State>) {
        let policy = self.restart_policy();
        let state = |c: &Ctr| -> State {
            if c.running.is_some() {
                return State::Running;
            }
            let terminated_final = self.terminal || self.terminating.is_some();
            match (&c.last, &c.waiting) {
                (Some(t), _) if terminated_final || !self.will_restart(c) => {
                    State::Terminated { exit_code: t.exit_code }
                }
                (Some(t), _) => State::Waiting {
                    restarting: true,
                    failed_before: t.exit_code != 0,
                },
                (None, _) => State::Waiting {
                    restarting: false,
                    failed_before: false,
                },
            }
        };
        let init: Vec<State> = self.init.iter().map(state).collect();
        let ctrs: Vec<State> = self.containers.iter().map(state).collect();
        let terminal = self.terminating.is_some() && self.all().all(|c| c.running.is_none());
        (status::phase(&policy, &init, &ctrs, terminal), init, ctrs)
    }

    /// Whether a terminated container will be started again under the restart policy.
    fn will_restart(&self, c: &Ctr) -> bool {
        let Some(t) = &c.last else { return true };
        let policy = self.restart_policy();
        if c.init {
            return t.exit_code != 0 && policy != "Never";
        }
        match policy.as_str() {
            "Always" => true,
            "OnFailure" => t.exit_code != 0,
            _ => false,
        }
    }

    fn container_status(&self, c: &Ctr, default_reason: &str) -> Value {
        let term_json = |t: &Term| {
            let mut v = json!({
                "exitCode": t.exit_code,
                "reason": t.reason,
                "startedAt": rfc3339(t.started_at),
                "finishedAt": rfc3339(t.finished_at),
            });
            if let Some(m) = &t.message {
                v["message"] = json!(m);
            }
            if let Some(id) = &t.id {
                v["containerID"] = json!(format!("process://{id}"));
            }
            json!({"terminated": v})
        };
        let waiting_json = |reason: &str, message: Option<&String>| {
            let mut v = json!({"reason": reason});
            if let Some(m) = message {
                v["message"] = json!(m);
            }
            json!({"waiting": v})
        };
        let final_ = self.terminal || self.terminating.is_some();
        let (state, last, id) = if let Some(p) = &c.running {
            (
                json!({"running": {"startedAt": rfc3339(p.started_at)}}),
                c.last.as_ref().map(term_json),
                Some(p.id.clone()),
            )
        } else if let Some(t) = c.last.as_ref().filter(|_| final_ || !self.will_restart(c)) {
            (term_json(t), c.prev.as_ref().map(term_json), t.id.clone())
        } else if let Some(t) = &c.last {
            let (r, m) = c.waiting.clone().unwrap_or_else(|| ("ContainerCreating".into(), None));
            (waiting_json(&r, m.as_ref()), Some(term_json(t)), t.id.clone())
        } else {
            let (r, m) = c.waiting.clone().unwrap_or_else(|| (default_reason.to_string(), None));
            (waiting_json(&r, m.as_ref()), None, None)
        };
        let ready = if c.init {
            c.succeeded()
        } else {
            c.ready && c.running.is_some()
        };
        let mut v = json!({
            "name": c.spec.name,
            "state": state,
            "lastState": last.unwrap_or_else(|| json!({})),
            "ready": ready,
            "restartCount": c.restart_count,
            "image": c.spec.image.clone().unwrap_or_default(),
            "imageID": "",
            "started": c.running.is_some() && c.started,
        });
        if let Some(id) = id {
            v["containerID"] = json!(format!("process://{id}"));
        }
        v
    }

    fn status_json(&self) -> Value {
        let (phase, _, _) = self.phase();
        let has_init = !self.init.is_empty();
        let default_reason = if has_init {
            "PodInitializing"
        } else {
            "ContainerCreating"
        };
        let init_statuses: Vec<Value> = self
            .init
            .iter()
            .map(|c| self.container_status(c, default_reason))
            .collect();
        let statuses: Vec<Value> = self
            .containers
            .iter()
            .map(|c| self.container_status(c, default_reason))
            .collect();
        let facts = status::Facts {
            phase,
            sandbox_ready: self.volumes.is_some(),
            incomplete_init: self
                .init
                .iter()
                .filter(|c| !c.succeeded())
                .map(|c| c.spec.name.clone())
                .collect(),
            has_init,
            unready: self
                .containers
                .iter()
                .filter(|c| !(c.ready && c.running.is_some()))
                .map(|c| c.spec.name.clone())
                .collect(),
        };
        let conds = status::conditions(&facts);
        let ts = rfc3339(now());
        let host_ip = &self.agent.opts.node_ip;
        let ip = self.ip();
        let qos = self
            .pod
            .status
            .as_ref()
            .and_then(|s| s.qos_class.clone())
            .unwrap_or_else(|| status::qos_class(&self.pod).to_string());
        let mut st = json!({
            "phase": phase,
            "conditions": status::conditions_json(&self.pod, &conds, &ts),
            "hostIP": host_ip,
            "hostIPs": [{"ip": host_ip}],
            "podIP": ip,
            "podIPs": [{"ip": ip}],
            "startTime": self.start_time,
            "qosClass": qos,
            "containerStatuses": statuses,
        });
        if has_init {
            st["initContainerStatuses"] = json!(init_statuses);
        }
        st
    }

    /// Publishes logs for the kubelet API and writes the status when it changed.
    async fn report(&mut self) {
        self.publish_logs();
        if self.frozen {
            return;
        }
        let st = self.status_json();
        // Compare without transition times: they follow the statuses.
        if self.last_status.as_ref() == Some(&strip_times(&st)) {
            // Someone else may have overwritten it (the node lifecycle controller marks the
            // pods of a node it lost NotReady): write it again, as kubelet's status manager.
            let rv = self
                .pod
                .metadata
                .resource_version
                .as_deref()
                .and_then(|v| v.parse::<u64>().ok());
            let stale_copy = matches!((rv, self.written_rv), (Some(rv), Some(w)) if rv < w);
            let api = serde_json::to_value(&self.pod.status).unwrap_or(Value::Null);
            if stale_copy || !status::api_differs(&api, &st) {
                return;
            }
            tracing::debug!(pod = %self.name, "pod status in the API differs from the agent's; writing it again");
        }
        let api: Api<Pod> = Api::namespaced(self.agent.client.clone(), &self.ns);
        let patch = json!({"status": st});
        match api
            .patch_status(&self.name, &PatchParams::default(), &Patch::Merge(&patch))
            .await
        {
            Ok(p) => {
                self.last_status = Some(strip_times(&st));
                self.written_rv = p.metadata.resource_version.as_deref().and_then(|v| v.parse().ok());
                // The conditions' transition times are read back from the pod as written.
                self.pod = Arc::new(p);
            }
            Err(e) => {
                tracing::debug!(pod = %self.name, error = %e, "writing pod status failed");
                self.last_status = None;
            }
        }
    }

    fn publish_logs(&self) {
        let mut containers = HashMap::new();
        for c in self.all() {
            let term_log = |t: &Option<Term>| t.as_ref().and_then(|t| t.log.clone());
            let final_ = self.terminal || self.terminating.is_some() || !self.will_restart(c);
            let (current, previous) = if let Some(p) = &c.running {
                (Some(p.log.clone()), term_log(&c.last))
            } else if final_ && c.last.is_some() {
                (term_log(&c.last), term_log(&c.prev))
            } else {
                // Waiting to restart: both show the last terminated instance (as kubelet).
                (term_log(&c.last), term_log(&c.last))
            };
            let waiting = c.waiting.as_ref().map(|(r, _)| r.clone()).or_else(|| {
                Some(
                    if self.init.is_empty() {
                        "ContainerCreating"
                    } else {
                        "PodInitializing"
                    }
                    .into(),
                )
            });
            containers.insert(
                c.spec.name.clone(),
                ContainerLogs {
                    current,
                    previous,
                    waiting,
                },
            );
        }
        self.agent.logs.set(
            &self.ns,
            &self.name,
            PodLogs {
                uid: self.uid.clone(),
                containers,
            },
        );
    }
}

impl Drop for Worker {
    fn drop(&mut self) {
        // Stopping the agent stops its containers (Proc's Drop kills them); tmpfs mounts go too.
        for c in self.all_mut() {
            c.running = None;
        }
        volumes::unmount_all(&self.dir);
        // The node is stopping: its bridge and address records go with it, so dropping the
        // namespace (and with it the veth) is enough.
        network::drop_netns(&self.dir);
        if let Some(roots) = &self.agent.cgroups {
            roots.remove_pod(&self.agent.cgroup_name, &self.uid);
        }
    }
}

fn strip_times(v: &Value) -> Value {
    let mut v = v.clone();
    if let Some(conds) = v.get_mut("conditions").and_then(|c| c.as_array_mut()) {
        for c in conds {
            if let Some(o) = c.as_object_mut() {
                o.remove("lastTransitionTime");
            }
        }
    }
    v
}

fn alive(pid: i32) -> bool {
    // SAFETY: kill with signal 0 only checks for existence.
    pid > 0 && unsafe { libc::kill(pid, 0) } == 0 && {
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
        // A zombie waits for its reaper and runs no more.
        !stat
            .rsplit(')')
            .next()
            .unwrap_or_default()
            .trim_start()
            .starts_with('Z')
    }
}

/// The host's name (for hostNetwork pods).
fn host_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|s| s.trim().to_string())
        .unwrap_or_default()
}

/// A container instance id: 32 hex digits.
fn new_id() -> String {
    use rand::Rng;
    let mut rng = rand::rng();
    (0..16).map(|_| format!("{:02x}", rng.random::<u8>())).collect()
}
