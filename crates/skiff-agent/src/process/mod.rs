//! The `process` runtime: a node agent that runs each container as a process group on this
//! host, from `command`/`args` with its environment, in the pod's directory.
//!
//! Layout: pods live in `DATA_DIR/pods/<uid>/` (`volumes/<name>`, `logs/<container>/<n>.log`,
//! `etc-hosts`). One pod worker per pod ([`worker`]) owns every change to that pod; the pod
//! informer (a kube-runtime reflector over the pods bound to the node) feeds the workers; the
//! kubelet HTTP API ([`server`]) serves container logs and the streaming endpoints (exec,
//! attach, port-forward; [`exec`]).
//!
//! When the agent is root (or [`ProcessOptions::privileged`] says so) each container gets its
//! own mount and UTS namespaces (hostname = pod hostname, the pod's `/etc/hosts`, volumes
//! bind-mounted at their `mountPath`, missing mount points made in the pod's view only, the
//! data directories hidden: [`view`]), cgroup v1 cpu and memory limits, and tmpfs for secrets
//! and memory-backed emptyDirs. Otherwise those features are skipped with a Warning event.

mod backoff;
pub mod bench;
mod cgroup;
mod datadir;
mod env;
mod exec;
mod logs;
pub mod network;
mod probe;
mod server;
mod spawn;
mod status;
mod view;
mod volumes;
mod worker;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use crate::events::{Event as KubeEvent, EventType, Recorder, Reporter};
use futures::StreamExt;
use k8s_openapi::api::core::v1::{ObjectReference, Pod};
use kube::runtime::reflector::{self, Store};
use kube::runtime::{watcher, WatchStreamExt};
use kube::{Api, Client};
use tokio::sync::{mpsc, watch};
use tokio::task::JoinSet;

use crate::node::NodeConfig;

/// `nodeInfo.containerRuntimeVersion` of process nodes.
pub const RUNTIME_VERSION: &str = "process://1.0";

/// How to run a process node.
#[derive(Debug, Clone)]
pub struct ProcessOptions {
    /// The Node's name.
    pub node_name: String,
    /// Where pods live (`DATA_DIR/pods/<uid>/…`).
    pub data_dir: PathBuf,
    /// Port of the kubelet API on 127.0.0.1 (0 picks a free one).
    pub kubelet_port: u16,
    /// The node's InternalIP, also every pod's IP (host networking).
    pub node_ip: String,
    /// cpu capacity (e.g. `"4"`); the host's when `None`.
    pub cpu: Option<String>,
    /// memory capacity (e.g. `"8Gi"`); the host's when `None`.
    pub memory: Option<String>,
    /// pod capacity (default 110).
    pub pods: Option<u32>,
    /// Labels added to the node's.
    pub labels: BTreeMap<String, String>,
    /// First restart back-off (upstream 10 s).
    pub backoff_base: Duration,
    /// Longest restart back-off (upstream 5 min).
    pub backoff_max: Duration,
    /// Use namespaces, cgroups and tmpfs; `None` decides by whether the agent is root.
    pub privileged: Option<bool>,
    /// Size at which a container log file is rotated (upstream 10 MiB).
    pub log_max_bytes: u64,
    /// How often configMap, secret and downwardAPI volumes are refreshed.
    pub volume_resync: Duration,
    /// Bridge networking (a network namespace per pod); `None` shares the host's network.
    pub bridge: Option<network::BridgeOptions>,
    /// The cluster DNS ClusterFirst pods' `/etc/resolv.conf` names (pods get their own
    /// resolv.conf only with privileges).
    pub cluster_dns: Option<std::net::Ipv4Addr>,
    /// The cluster domain of those pods' search path (`cluster.local`).
    pub cluster_domain: String,
    /// The cluster CA: the kubelet API accepts the API server's client certificate signed by
    /// it, and serves a certificate signed by it when its key is given (self-signed otherwise).
    /// Without it the kubelet API refuses every request.
    pub cluster_ca: Option<crate::kubelet_tls::ClusterCa>,
    /// Directories hidden from privileged pods (the node's and the cluster's data
    /// directories, which hold the admin token and every pod's secrets); the pod's own
    /// directory stays visible. Default: `data_dir` and `~/.skiff`.
    pub hidden: Vec<PathBuf>,
    /// The node lease's duration (kubelet `--node-lease-duration-seconds`, 40); renewed every
    /// quarter of it.
    pub lease_duration_seconds: i32,
}

impl ProcessOptions {
    /// Upstream defaults for a node named `node_name` keeping its pods in `data_dir`.
    pub fn new(node_name: impl Into<String>, data_dir: impl Into<PathBuf>) -> Self {
        let data_dir: PathBuf = data_dir.into();
        let mut hidden = vec![data_dir.clone()];
        hidden.extend(std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".skiff")));
        ProcessOptions {
            node_name: node_name.into(),
            data_dir,
            hidden,
            kubelet_port: 0,
            node_ip: "127.0.0.1".into(),
            cpu: None,
            memory: None,
            pods: None,
            labels: BTreeMap::new(),
            backoff_base: Duration::from_secs(10),
            backoff_max: Duration::from_secs(300),
            privileged: None,
            log_max_bytes: 10 * 1024 * 1024,
            volume_resync: Duration::from_secs(60),
            bridge: None,
            cluster_dns: None,
            cluster_domain: "cluster.local".into(),
            cluster_ca: None,
            lease_duration_seconds: crate::node::LEASE_DURATION_SECONDS,
        }
    }
}

/// Why a process node stopped.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The data directory or the kubelet port could not be set up.
    #[error("{0}")]
    Io(#[from] std::io::Error),
    /// Registering the node, or its heartbeat, failed.
    #[error("node {node}: {source}")]
    Node {
        /// The node.
        node: String,
        /// The API error.
        source: kube::Error,
    },
    /// The kubelet API's port could not be opened.
    #[error("cannot listen on {addr}: {source}")]
    Listen {
        /// The address.
        addr: String,
        /// The cause.
        source: std::io::Error,
    },
    /// The kubelet API's certificate or TLS configuration could not be made.
    #[error(transparent)]
    Tls(#[from] crate::kubelet_tls::TlsError),
    /// The kubelet API server stopped.
    #[error("kubelet server: {0}")]
    Server(String),
    /// A benchmark could not run.
    #[error("benchmark: {0}")]
    Bench(String),
}

/// What every pod worker shares.
pub(crate) struct Agent {
    pub(crate) client: Client,
    pub(crate) opts: ProcessOptions,
    pub(crate) privileged: bool,
    pub(crate) cgroups: Option<cgroup::Roots>,
    /// This agent's directory name below the cgroup roots: the node name plus a hash of the
    /// data directory, so agents of the same name in other processes (parallel test clusters)
    /// never clean up each other's containers.
    pub(crate) cgroup_name: String,
    pub(crate) facts: env::NodeFacts,
    pub(crate) logs: logs::Registry,
    /// Running container instances, for exec and attach.
    pub(crate) running: exec::Registry,
    pub(crate) pods: Store<Pod>,
    /// The node's bridge in bridge networking.
    pub(crate) bridge: Option<network::Bridge>,
    events: mpsc::UnboundedSender<(ObjectReference, KubeEvent)>,
}

impl Agent {
    /// Records an event about a pod (or one of its containers, by `field_path`), in order.
    pub(crate) fn event(&self, pod: &Pod, field_path: Option<String>, warning: bool, reason: &str, note: String) {
        let r = ObjectReference {
            api_version: Some("v1".into()),
            kind: Some("Pod".into()),
            name: pod.metadata.name.clone(),
            namespace: pod.metadata.namespace.clone(),
            uid: pod.metadata.uid.clone(),
            field_path,
            ..Default::default()
        };
        let ev = KubeEvent {
            type_: if warning { EventType::Warning } else { EventType::Normal },
            reason: reason.to_string(),
            note: Some(note),
            action: reason.to_string(),
            secondary: None,
        };
        let _ = self.events.send((r, ev));
    }

    pub(crate) fn pods_dir(&self) -> PathBuf {
        self.opts.data_dir.join("pods")
    }
}

/// Runs a process node until an unrecoverable error: registers the Node, heartbeats, serves
/// the kubelet API on 127.0.0.1, and runs the pods bound to the node.
///
/// Dropping the future stops the node: its containers are killed and their cgroups and tmpfs
/// mounts removed (pod directories stay for the next start).
pub async fn run(client: Client, mut opts: ProcessOptions) -> Result<(), Error> {
    let privileged = opts.privileged.unwrap_or_else(spawn::is_root);
    datadir::secure_dir(&opts.data_dir)?;
    std::fs::create_dir_all(opts.data_dir.join("pods"))?;
    let cgroup_name = cgroup_name(&opts);
    let bridge = match opts.bridge.clone() {
        Some(b) => {
            let bridge = network::Bridge::new(b, &cgroup_name, &opts.data_dir);
            bridge.setup().await?;
            // The bridge's address is the node's.
            opts.node_ip = bridge.opts.gateway().to_string();
            Some(bridge)
        }
        None => None,
    };
    let _teardown = bridge.as_ref().map(network::Bridge::teardown_on_drop);
    let listener = tokio::net::TcpListener::bind((opts.node_ip.as_str(), opts.kubelet_port))
        .await
        .map_err(|source| Error::Listen {
            addr: format!("{}:{}", opts.node_ip, opts.kubelet_port),
            source,
        })?;
    let port = listener.local_addr()?.port();
    if opts.cluster_ca.is_none() {
        tracing::warn!(node = %opts.node_name, "no cluster CA: the kubelet API refuses every request");
    }
    let (cert, key) = crate::kubelet_tls::serving_cert(opts.cluster_ca.as_ref(), &opts.node_name, &opts.node_ip)?;
    let kubelet_tls = crate::kubelet_tls::server_config(opts.cluster_ca.as_ref(), &cert, &key)?;

    let mut cfg = NodeConfig::from_host(&opts.node_name, RUNTIME_VERSION);
    cfg.internal_ip = opts.node_ip.clone();
    cfg.pod_cidr = opts.bridge.as_ref().map(network::BridgeOptions::cidr);
    cfg.kubelet_port = i32::from(port);
    cfg.lease_duration_seconds = opts.lease_duration_seconds;
    cfg.labels.extend(opts.labels.clone());
    if let Some(c) = &opts.cpu {
        cfg.capacity.insert("cpu".into(), c.clone());
    }
    if let Some(m) = &opts.memory {
        cfg.capacity.insert("memory".into(), m.clone());
    }
    if let Some(p) = opts.pods {
        cfg.capacity.insert("pods".into(), p.to_string());
    }
    let q = |k: &str| cfg.capacity.get(k).and_then(|v| env::parse_quantity(v)).unwrap_or(0.0);
    let facts = env::NodeFacts {
        node_ip: opts.node_ip.clone(),
        pod_ip: None,
        cpu: q("cpu"),
        memory: q("memory"),
        ephemeral_storage: q("ephemeral-storage"),
    };
    crate::node::register(&client, &cfg)
        .await
        .map_err(|source| Error::Node {
            node: opts.node_name.clone(),
            source,
        })?;

    let cgroups = if privileged { cgroup::Roots::detect() } else { None };
    if let Some(roots) = &cgroups {
        // Containers of a previous run of this agent cannot be adopted: end them.
        roots.clean_node(&cgroup_name);
    }

    let (events_tx, events_rx) = mpsc::unbounded_channel();
    let recorder = Recorder::new(
        client.clone(),
        Reporter {
            controller: "kubelet".into(),
            instance: Some(opts.node_name.clone()),
        },
    );
    let (reader, writer) = reflector::store();
    let agent = Arc::new(Agent {
        client: client.clone(),
        opts: opts.clone(),
        privileged,
        cgroups,
        cgroup_name,
        facts,
        logs: logs::Registry::default(),
        running: exec::Registry::default(),
        pods: reader,
        bridge,
        events: events_tx,
    });
    tracing::info!(node = %opts.node_name, port, privileged, "process node starting");

    let heartbeat = crate::node::run(client.clone(), cfg);
    tokio::select! {
        r = heartbeat => r.map_err(|source| Error::Node { node: opts.node_name.clone(), source }),
        r = server::serve(listener, kubelet_tls, agent.clone()) => r.map_err(|e| Error::Server(e.to_string())),
        _ = publish_events(recorder, events_rx) => Ok(()),
        _ = dispatch(agent, writer) => Ok(()),
    }
}

/// The bridge interface a node agent with these options makes in bridge networking, so the
/// cluster can record what it holds on the host.
pub fn bridge_name(opts: &ProcessOptions) -> String {
    let any = network::BridgeOptions::new((std::net::Ipv4Addr::UNSPECIFIED, 24));
    network::Bridge::new(any, &cgroup_name(opts), &opts.data_dir).name
}

/// `<node>-<hash of the data directory>`: stable across restarts of one agent, distinct
/// between agents.
fn cgroup_name(opts: &ProcessOptions) -> String {
    use std::hash::{Hash, Hasher};
    let dir = std::fs::canonicalize(&opts.data_dir).unwrap_or_else(|_| opts.data_dir.clone());
    let mut h = std::collections::hash_map::DefaultHasher::new();
    dir.hash(&mut h);
    format!("{}-{:08x}", opts.node_name, h.finish() as u32)
}

async fn publish_events(recorder: Recorder, mut rx: mpsc::UnboundedReceiver<(ObjectReference, KubeEvent)>) {
    while let Some((r, ev)) = rx.recv().await {
        if let Err(e) = recorder.publish(&ev, &r).await {
            tracing::debug!(reason = %ev.reason, error = %e, "recording an event failed");
        }
    }
}

/// Feeds pod workers from the informer of the node's pods; a worker ends when its pod is gone.
async fn dispatch(agent: Arc<Agent>, writer: reflector::store::Writer<Pod>) {
    let api: Api<Pod> = Api::all(agent.client.clone());
    let cfg = watcher::Config::default().fields(&format!("spec.nodeName={}", agent.opts.node_name));
    let mut stream = reflector::reflector(writer, watcher(api, cfg))
        .default_backoff()
        .boxed();
    let mut workers: HashMap<String, watch::Sender<Option<Arc<Pod>>>> = HashMap::new();
    let mut tasks: JoinSet<String> = JoinSet::new();
    let mut listed: Option<HashSet<String>> = None;
    loop {
        tokio::select! {
            ev = stream.next() => {
                let Some(ev) = ev else { return };
                match ev {
                    Ok(watcher::Event::Init) => listed = Some(HashSet::new()),
                    Ok(watcher::Event::InitApply(pod)) => {
                        if let (Some(l), Some(uid)) = (listed.as_mut(), pod.metadata.uid.clone()) {
                            l.insert(uid);
                        }
                        apply(&agent, &mut workers, &mut tasks, pod);
                    }
                    Ok(watcher::Event::InitDone) => {
                        if let Some(l) = listed.take() {
                            for (uid, tx) in &workers {
                                if !l.contains(uid) {
                                    tx.send_replace(None);
                                }
                            }
                        }
                    }
                    Ok(watcher::Event::Apply(pod)) => apply(&agent, &mut workers, &mut tasks, pod),
                    Ok(watcher::Event::Delete(pod)) => {
                        if let Some(tx) = pod.metadata.uid.as_ref().and_then(|u| workers.get(u)) {
                            tx.send_replace(None);
                        }
                    }
                    Err(e) => tracing::warn!(error = %e, "watching pods failed"),
                }
            }
            Some(done) = tasks.join_next(), if !tasks.is_empty() => {
                if let Ok(uid) = done {
                    workers.remove(&uid);
                }
            }
        }
    }
}

fn apply(
    agent: &Arc<Agent>,
    workers: &mut HashMap<String, watch::Sender<Option<Arc<Pod>>>>,
    tasks: &mut JoinSet<String>,
    pod: Pod,
) {
    let Some(uid) = pod.metadata.uid.clone() else { return };
    let pod = Arc::new(pod);
    if let Some(tx) = workers.get(&uid) {
        tx.send_replace(Some(pod));
        return;
    }
    let (tx, rx) = watch::channel(Some(pod));
    workers.insert(uid.clone(), tx);
    let agent = agent.clone();
    tasks.spawn(async move {
        worker::run(agent, rx).await;
        uid
    });
}
