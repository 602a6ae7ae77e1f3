//! Simulated nodes (like kwok): many Nodes served by one process, whose pods move through
//! Pending → Running → (Succeeded | Failed) on a schedule without any process.
//!
//! All nodes of a process share one pod watcher and one node watcher; leases are renewed in
//! small batches spread over the renewal interval (1,000 nodes → about 100 lease updates a
//! second). A node can be killed (it stops renewing its lease and touching its pods) through
//! [`SimNodes::kill`] or by annotating it `skiff.dev/sim-dead=true`.

mod heartbeat;
mod pods;
mod status;

use std::collections::{BTreeMap, HashMap};
use std::net::Ipv4Addr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use kube::Client;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use crate::node::NodeConfig;

/// Pod annotation: how long the pod's containers run before exiting (Go duration: `5s`,
/// `1m30s`, `250ms`). Jobs-like pods (restartPolicy Never/OnFailure) default to
/// [`SimOptions::job_duration`]; pods with restartPolicy Always run forever without it, and
/// exit and restart after it with it.
pub const DURATION_ANNOTATION: &str = "skiff.dev/sim-duration";
/// Pod annotation: the exit code the containers exit with (default `0`).
pub const EXIT_CODE_ANNOTATION: &str = "skiff.dev/sim-exit-code";
/// Node annotation: `"true"` makes the simulated node dead (no lease renewals, no pod updates).
pub const DEAD_ANNOTATION: &str = "skiff.dev/sim-dead";
/// Label on every simulated node.
pub const SIM_LABEL: &str = "skiff.dev/sim";
/// Key of the NoSchedule taint simulated nodes carry in clusters that also run real nodes
/// (as kwok's fake nodes do), so only pods that tolerate it land where nothing runs.
pub const SIM_TAINT_KEY: &str = "skiff.dev/simulated";

/// How to run simulated nodes.
#[derive(Debug, Clone)]
pub struct SimOptions {
    /// Number of nodes.
    pub count: usize,
    /// Node names are `<prefix><n>` for n in 1..=count.
    pub name_prefix: String,
    /// CPU capacity of each node.
    pub cpu: String,
    /// Memory capacity of each node.
    pub memory: String,
    /// Pod capacity of each node.
    pub pods: u32,
    /// Ephemeral storage capacity of each node.
    pub ephemeral_storage: String,
    /// Labels added to each node (besides the kubelet ones and `skiff.dev/sim=true`).
    pub labels: BTreeMap<String, String>,
    /// Shortest delay between seeing a pod and reporting it Running.
    pub startup_delay_min: Duration,
    /// Longest such delay (uniformly random in between).
    pub startup_delay_max: Duration,
    /// How long Job-like pods (restartPolicy Never/OnFailure) run without the annotation.
    pub job_duration: Duration,
    /// Lease renewal interval (upstream 10 s).
    pub lease_interval: Duration,
    /// How often an unchanged node status is re-posted (upstream 5 min).
    pub status_report_interval: Duration,
    /// Node n (1-based) gets pod CIDR `base + n·256 / 24`; default 10.64.0.0 so 16,383 nodes
    /// fit in 10.64.0.0/10, clear of the real nodes' 10.42.0.0/16 and services' 10.43.0.0/16.
    /// `None`: the nodes register without a range and use the one the cluster's node IPAM
    /// assigns (unique cluster-wide; `skiff up` and `skiff agent` run so).
    pub pod_cidr_base: Option<Ipv4Addr>,
    /// Carry the [`SIM_TAINT_KEY`]`=true:NoSchedule` taint.
    pub taint: bool,
    /// Node n gets InternalIP `base + n`.
    pub node_ip_base: Ipv4Addr,
    /// Most API writes (pod status, deletions) in flight at once.
    pub max_in_flight: usize,
}

impl Default for SimOptions {
    fn default() -> Self {
        SimOptions {
            count: 1,
            name_prefix: "skiff-sim-".into(),
            cpu: "4".into(),
            memory: "16Gi".into(),
            pods: 110,
            ephemeral_storage: "100Gi".into(),
            labels: BTreeMap::new(),
            startup_delay_min: Duration::ZERO,
            startup_delay_max: Duration::from_millis(200),
            job_duration: Duration::from_secs(2),
            lease_interval: crate::node::LEASE_RENEW_INTERVAL,
            status_report_interval: crate::node::NODE_STATUS_REPORT_FREQUENCY,
            pod_cidr_base: Some(Ipv4Addr::new(10, 64, 0, 0)),
            taint: false,
            node_ip_base: Ipv4Addr::new(172, 20, 0, 0),
            max_in_flight: 64,
        }
    }
}

impl SimOptions {
    /// The name of node `n` (1-based).
    pub fn node_name(&self, n: usize) -> String {
        format!("{}{n}", self.name_prefix)
    }
}

/// Why simulated nodes could not run.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Registering a node failed.
    #[error("registering node {node}: {source}")]
    Register {
        /// The node.
        node: String,
        /// The API error.
        source: kube::Error,
    },
    /// The cluster's node IPAM gave the node no pod range.
    #[error("node {node} got no pod range (spec.podCIDR) within a minute: the cluster's node IPAM assigns them")]
    NoPodCidr {
        /// The node.
        node: String,
    },
    /// A background task ended unexpectedly.
    #[error("simulated nodes stopped: {0}")]
    Stopped(String),
}

/// One simulated node as the tasks share it.
pub(crate) struct SimNode {
    pub(crate) cfg: NodeConfig,
    pub(crate) uid: Mutex<Option<String>>,
    /// Killed through [`SimNodes::kill`].
    killed: AtomicBool,
    /// Killed through the [`DEAD_ANNOTATION`].
    dead_annotation: AtomicBool,
    /// When the node last became Ready (transition time of its conditions).
    pub(crate) since: Mutex<jiff::Timestamp>,
    /// First address of its pod range (its podCIDR's base).
    pub(crate) pod_base: Mutex<Ipv4Addr>,
}

impl SimNode {
    pub(crate) fn pod_base(&self) -> Ipv4Addr {
        *self.pod_base.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub(crate) fn alive(&self) -> bool {
        !self.killed.load(Ordering::Relaxed) && !self.dead_annotation.load(Ordering::Relaxed)
    }
}

/// What all tasks share.
pub(crate) struct Shared {
    pub(crate) nodes: Vec<SimNode>,
    pub(crate) by_name: HashMap<String, usize>,
    pub(crate) opts: SimOptions,
}

/// Messages to the pod engine.
pub(crate) enum Ctl {
    /// The node (index) came back to life: resume its pods.
    Revived(usize),
}

/// A running set of simulated nodes; dropping it stops them.
pub struct SimNodes {
    shared: Arc<Shared>,
    ctl: mpsc::UnboundedSender<Ctl>,
    status_tx: mpsc::UnboundedSender<usize>,
    tasks: Vec<JoinHandle<()>>,
}

impl SimNodes {
    /// Registers the nodes and starts their heartbeats and the pod engine; returns once every
    /// node is registered.
    pub async fn start(client: Client, opts: SimOptions) -> Result<SimNodes, Error> {
        let registered_at = crate::node::now();
        let nodes: Vec<SimNode> = (1..=opts.count)
            .map(|n| SimNode {
                cfg: node_config(&opts, n),
                uid: Mutex::new(None),
                killed: AtomicBool::new(false),
                dead_annotation: AtomicBool::new(false),
                since: Mutex::new(registered_at),
                pod_base: Mutex::new(
                    opts.pod_cidr_base
                        .map_or(Ipv4Addr::UNSPECIFIED, |b| offset(b, n as u32 * 256)),
                ),
            })
            .collect();
        let by_name = nodes.iter().enumerate().map(|(i, n)| (n.cfg.name.clone(), i)).collect();
        let shared = Arc::new(Shared { nodes, by_name, opts });
        heartbeat::register_all(&client, &shared).await?;
        let (ctl, ctl_rx) = mpsc::unbounded_channel();
        let (status_tx, status_rx) = mpsc::unbounded_channel();
        let tasks = vec![
            tokio::spawn(heartbeat::run(client.clone(), shared.clone(), status_rx)),
            tokio::spawn(pods::run(client, shared.clone(), ctl_rx, status_tx.clone())),
        ];
        tracing::info!(count = shared.nodes.len(), "simulated nodes registered");
        Ok(SimNodes {
            shared,
            ctl,
            status_tx,
            tasks,
        })
    }

    /// Names of the simulated nodes.
    pub fn names(&self) -> Vec<String> {
        self.shared.nodes.iter().map(|n| n.cfg.name.clone()).collect()
    }

    /// Kills a node: it stops renewing its lease and updating or deleting its pods. Returns
    /// false for an unknown name.
    pub fn kill(&self, name: &str) -> bool {
        let Some(&i) = self.shared.by_name.get(name) else {
            return false;
        };
        self.shared.nodes[i].killed.store(true, Ordering::Relaxed);
        tracing::info!(node = name, "simulated node killed");
        true
    }

    /// Brings a killed node back: it posts its status and catches up with its pods. Returns
    /// false for an unknown name. (A node killed by annotation stays dead until the annotation
    /// is removed.)
    pub fn revive(&self, name: &str) -> bool {
        let Some(&i) = self.shared.by_name.get(name) else {
            return false;
        };
        self.shared.nodes[i].killed.store(false, Ordering::Relaxed);
        if self.shared.nodes[i].alive() {
            let _ = self.ctl.send(Ctl::Revived(i));
            let _ = self.status_tx.send(i);
        }
        tracing::info!(node = name, "simulated node revived");
        true
    }

    /// Whether the node is alive (neither killed nor annotated dead); None if unknown.
    pub fn is_alive(&self, name: &str) -> Option<bool> {
        self.shared.by_name.get(name).map(|&i| self.shared.nodes[i].alive())
    }

    /// Runs until a background task ends (they do not end on their own).
    pub async fn wait(mut self) -> Result<(), Error> {
        let tasks = std::mem::take(&mut self.tasks);
        let (res, _, rest) = futures::future::select_all(tasks).await;
        for t in rest {
            t.abort();
        }
        Err(Error::Stopped(match res {
            Ok(()) => "a task returned".into(),
            Err(e) => e.to_string(),
        }))
    }
}

impl Drop for SimNodes {
    fn drop(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
    }
}

/// Runs `opts.count` simulated nodes until an error.
pub async fn run(client: Client, opts: SimOptions) -> Result<(), Error> {
    SimNodes::start(client, opts).await?.wait().await
}

fn offset(base: Ipv4Addr, n: u32) -> Ipv4Addr {
    Ipv4Addr::from(u32::from(base).wrapping_add(n))
}

fn node_config(opts: &SimOptions, n: usize) -> NodeConfig {
    let name = opts.node_name(n);
    let id = status::fake_hex(&name, 32);
    let mut labels = opts.labels.clone();
    labels.insert(SIM_LABEL.into(), "true".into());
    let capacity: BTreeMap<String, String> = [
        ("cpu", opts.cpu.clone()),
        ("memory", opts.memory.clone()),
        ("pods", opts.pods.to_string()),
        ("ephemeral-storage", opts.ephemeral_storage.clone()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect();
    let pod_cidr = opts.pod_cidr_base.map(|b| format!("{}/24", offset(b, n as u32 * 256)));
    let taints = if opts.taint {
        vec![k8s_openapi::api::core::v1::Taint {
            key: SIM_TAINT_KEY.into(),
            value: Some("true".into()),
            effect: "NoSchedule".into(),
            time_added: None,
        }]
    } else {
        Vec::new()
    };
    NodeConfig {
        hostname: name.clone(),
        name,
        labels,
        capacity,
        allocatable: BTreeMap::new(),
        internal_ip: offset(opts.node_ip_base, n as u32).to_string(),
        pod_cidr,
        taints,
        runtime_version: "sim://1.0".into(),
        os_image: "skiff simulated node".into(),
        kernel_version: "simulated".into(),
        operating_system: "linux".into(),
        architecture: "amd64".into(),
        machine_id: id.clone(),
        boot_id: format!(
            "{}-{}-{}-{}-{}",
            &id[..8],
            &id[8..12],
            &id[12..16],
            &id[16..20],
            &id[20..32]
        ),
        system_uuid: format!(
            "{}-{}-{}-{}-{}",
            &id[..8],
            &id[8..12],
            &id[12..16],
            &id[16..20],
            &id[20..32]
        ),
        kubelet_port: crate::node::KUBELET_PORT,
        // Renewed every quarter of the duration, as kubelet does.
        lease_duration_seconds: i32::try_from(opts.lease_interval.as_millis().div_ceil(250))
            .unwrap_or(i32::MAX)
            .max(1),
    }
}

/// Parses a Go duration (`300ms`, `1.5s`, `2m30s`, `1h`).
pub(crate) fn parse_go_duration(s: &str) -> Option<Duration> {
    let s = s.trim();
    if s == "0" {
        return Some(Duration::ZERO);
    }
    let mut rest = s;
    let mut total = 0f64;
    if rest.is_empty() {
        return None;
    }
    while !rest.is_empty() {
        let num_len = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        if num_len == 0 {
            return None;
        }
        let value: f64 = rest[..num_len].parse().ok()?;
        rest = &rest[num_len..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let scale = match &rest[..unit_len] {
            "ns" => 1e-9,
            "us" | "µs" => 1e-6,
            "ms" => 1e-3,
            "s" => 1.0,
            "m" => 60.0,
            "h" => 3600.0,
            _ => return None,
        };
        rest = &rest[unit_len..];
        total += value * scale;
    }
    Duration::try_from_secs_f64(total).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_durations() {
        let cases = [
            ("seconds", "5s", Some(Duration::from_secs(5))),
            ("millis", "250ms", Some(Duration::from_millis(250))),
            ("compound", "1m30s", Some(Duration::from_secs(90))),
            ("fraction", "1.5s", Some(Duration::from_millis(1500))),
            ("hours", "2h", Some(Duration::from_secs(7200))),
            ("zero", "0", Some(Duration::ZERO)),
            ("no unit", "5", None),
            ("bad unit", "5x", None),
            ("empty", "", None),
        ];
        for (name, input, want) in cases {
            assert_eq!(parse_go_duration(input), want, "{name}");
        }
    }

    #[test]
    fn node_configs_get_distinct_ranges() {
        let opts = SimOptions::default();
        let a = node_config(&opts, 1);
        let b = node_config(&opts, 300);
        assert_eq!(a.name, "skiff-sim-1");
        assert_eq!(a.pod_cidr.as_deref(), Some("10.64.1.0/24"));
        assert_eq!(b.pod_cidr.as_deref(), Some("10.65.44.0/24"));
        assert_eq!(a.internal_ip, "172.20.0.1");
        assert_eq!(a.runtime_version, "sim://1.0");
        assert_eq!(a.labels[SIM_LABEL], "true");
    }
}
