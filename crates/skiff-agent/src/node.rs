//! Node registration and heartbeat, shared by every runtime: the Node object (labels, capacity,
//! addresses, nodeInfo, conditions), the Lease in `kube-node-lease`, and the node status loop.
//!
//! upstream: kubelet registers its Node once, renews a Lease every 10 s (a quarter of the 40 s
//! lease duration), recomputes its status every 10 s and posts it only when it changed or when
//! `nodeStatusReportFrequency` (5 min) has passed.

use std::collections::BTreeMap;
use std::time::Duration;

use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::Node;
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use kube::api::{Api, ObjectMeta, Patch, PatchParams, PostParams};
use kube::Client;
use serde_json::{json, Value};

/// Namespace of node leases.
pub const LEASE_NAMESPACE: &str = "kube-node-lease";
/// Lease duration the agent announces (upstream default).
pub const LEASE_DURATION_SECONDS: i32 = 40;
/// How often a lease is renewed (upstream: a quarter of the lease duration).
pub const LEASE_RENEW_INTERVAL: Duration = Duration::from_secs(10);
/// How often the agent recomputes node status (upstream `nodeStatusUpdateFrequency`).
pub const NODE_STATUS_UPDATE_FREQUENCY: Duration = Duration::from_secs(10);
/// How often an unchanged node status is posted anyway (upstream `nodeStatusReportFrequency`).
pub const NODE_STATUS_REPORT_FREQUENCY: Duration = Duration::from_secs(300);
/// The kubelet version nodes report.
pub const KUBELET_VERSION: &str = "v1.33.0-skiff";
/// The kubelet port announced in `status.daemonEndpoints`.
pub const KUBELET_PORT: i32 = 10250;

/// Everything the agent reports about its node.
#[derive(Debug, Clone)]
pub struct NodeConfig {
    /// Node name (also the `kubernetes.io/hostname` label unless `hostname` differs).
    pub name: String,
    /// Host name reported in the `Hostname` address and label.
    pub hostname: String,
    /// Labels added to the default ones.
    pub labels: BTreeMap<String, String>,
    /// Resource capacity (cpu, memory, pods, ephemeral-storage, …).
    pub capacity: BTreeMap<String, String>,
    /// Allocatable resources; the capacity when empty.
    pub allocatable: BTreeMap<String, String>,
    /// The `InternalIP` address.
    pub internal_ip: String,
    /// Pod CIDR written to `spec.podCIDR(s)` at registration, if any (else the cluster's
    /// node IPAM assigns one).
    pub pod_cidr: Option<String>,
    /// Taints the node registers with (kubelet `--register-with-taints`). Taints with keys
    /// under `skiff.dev/` are the agent's: a restarted agent sets them as configured.
    pub taints: Vec<k8s_openapi::api::core::v1::Taint>,
    /// `nodeInfo.containerRuntimeVersion`, e.g. `process://1.0` or `sim://1.0`.
    pub runtime_version: String,
    /// `nodeInfo.osImage`.
    pub os_image: String,
    /// `nodeInfo.kernelVersion`.
    pub kernel_version: String,
    /// `nodeInfo.operatingSystem` (`linux`).
    pub operating_system: String,
    /// `nodeInfo.architecture` in Go's naming (`amd64`, `arm64`).
    pub architecture: String,
    /// `nodeInfo.machineID`.
    pub machine_id: String,
    /// `nodeInfo.bootID`.
    pub boot_id: String,
    /// `nodeInfo.systemUUID`.
    pub system_uuid: String,
    /// Port announced as the kubelet endpoint.
    pub kubelet_port: i32,
    /// The Lease's `leaseDurationSeconds` (kubelet `--node-lease-duration-seconds`, 40); the
    /// lease is renewed every quarter of it.
    pub lease_duration_seconds: i32,
}

impl NodeConfig {
    /// A node describing this host: cpu count, memory, root filesystem size, kernel, OS image,
    /// machine and boot ids, and the address of the default route.
    pub fn from_host(name: &str, runtime_version: &str) -> Self {
        let read = |p: &str| {
            std::fs::read_to_string(p)
                .map(|s| s.trim().to_string())
                .unwrap_or_default()
        };
        let cpus = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1);
        let mut capacity = BTreeMap::new();
        capacity.insert("cpu".to_string(), cpus.to_string());
        if let Some(kib) = meminfo_total_kib() {
            capacity.insert("memory".to_string(), format!("{kib}Ki"));
        }
        capacity.insert("pods".to_string(), "110".to_string());
        if let Some(bytes) = filesystem_bytes("/") {
            capacity.insert("ephemeral-storage".to_string(), format!("{}Ki", bytes / 1024));
        }
        let os_image = read("/etc/os-release")
            .lines()
            .find_map(|l| l.strip_prefix("PRETTY_NAME="))
            .map(|v| v.trim_matches('"').to_string())
            .unwrap_or_else(|| "Linux".to_string());
        NodeConfig {
            name: name.to_string(),
            // upstream: with --hostname-override the node name is the hostname label, which
            // keeps several agents on one host distinct for topology spreading.
            hostname: name.to_string(),
            labels: BTreeMap::new(),
            capacity,
            allocatable: BTreeMap::new(),
            internal_ip: default_route_ip().unwrap_or_else(|| "127.0.0.1".to_string()),
            pod_cidr: None,
            taints: Vec::new(),
            runtime_version: runtime_version.to_string(),
            os_image,
            kernel_version: read("/proc/sys/kernel/osrelease"),
            operating_system: "linux".to_string(),
            architecture: go_arch().to_string(),
            machine_id: read("/etc/machine-id"),
            boot_id: read("/proc/sys/kernel/random/boot_id"),
            system_uuid: read("/sys/class/dmi/id/product_uuid"),
            kubelet_port: KUBELET_PORT,
            lease_duration_seconds: LEASE_DURATION_SECONDS,
        }
    }

    /// How often the lease is renewed: a quarter of its duration (upstream), at least 250 ms.
    pub fn lease_renew_interval(&self) -> Duration {
        renew_interval(self.lease_duration_seconds)
    }

    /// The labels kubelet sets on its node, plus the configured ones.
    pub fn all_labels(&self) -> BTreeMap<String, String> {
        let mut l = BTreeMap::new();
        l.insert("beta.kubernetes.io/arch".to_string(), self.architecture.clone());
        l.insert("beta.kubernetes.io/os".to_string(), self.operating_system.clone());
        l.insert("kubernetes.io/arch".to_string(), self.architecture.clone());
        l.insert("kubernetes.io/hostname".to_string(), self.hostname.clone());
        l.insert("kubernetes.io/os".to_string(), self.operating_system.clone());
        l.extend(self.labels.clone());
        l
    }

    /// The node status with all conditions healthy: heartbeat at `now`, transitions at `since`.
    pub fn status(&self, now: jiff::Timestamp, since: jiff::Timestamp) -> Value {
        let quantities = |m: &BTreeMap<String, String>| -> BTreeMap<String, Quantity> {
            m.iter().map(|(k, v)| (k.clone(), Quantity(v.clone()))).collect()
        };
        let allocatable = if self.allocatable.is_empty() {
            &self.capacity
        } else {
            &self.allocatable
        };
        json!({
            "conditions": conditions(now, since),
            "addresses": [
                {"type": "InternalIP", "address": self.internal_ip},
                {"type": "Hostname", "address": self.hostname},
            ],
            "capacity": quantities(&self.capacity),
            "allocatable": quantities(allocatable),
            "daemonEndpoints": {"kubeletEndpoint": {"Port": self.kubelet_port}},
            "nodeInfo": {
                "machineID": self.machine_id,
                "systemUUID": self.system_uuid,
                "bootID": self.boot_id,
                "kernelVersion": self.kernel_version,
                "osImage": self.os_image,
                "containerRuntimeVersion": self.runtime_version,
                "kubeletVersion": KUBELET_VERSION,
                "kubeProxyVersion": "",
                "operatingSystem": self.operating_system,
                "architecture": self.architecture,
            },
        })
    }

    /// The Node object to create at registration.
    pub fn node_object(&self, now: jiff::Timestamp) -> Node {
        let mut v = json!({
            "apiVersion": "v1",
            "kind": "Node",
            "metadata": {
                "name": self.name,
                "labels": self.all_labels(),
                // upstream: kubelet asks the attach/detach controller to manage volumes
                "annotations": {"volumes.kubernetes.io/controller-managed-attach-detach": "true"},
            },
            "spec": {},
            "status": self.status(now, now),
        });
        if let Some(cidr) = &self.pod_cidr {
            v["spec"] = json!({"podCIDR": cidr, "podCIDRs": [cidr]});
        }
        if !self.taints.is_empty() {
            v["spec"]["taints"] = json!(self.taints);
        }
        serde_json::from_value(v).expect("node object is well formed")
    }
}

/// The four node conditions kubelet posts when healthy, with upstream reasons and messages.
pub fn conditions(now: jiff::Timestamp, since: jiff::Timestamp) -> Value {
    let c = |ty: &str, status: &str, reason: &str, message: &str| {
        json!({
            "type": ty,
            "status": status,
            "lastHeartbeatTime": rfc3339(now),
            "lastTransitionTime": rfc3339(since),
            "reason": reason,
            "message": message,
        })
    };
    json!([
        c(
            "MemoryPressure",
            "False",
            "KubeletHasSufficientMemory",
            "kubelet has sufficient memory available"
        ),
        c(
            "DiskPressure",
            "False",
            "KubeletHasNoDiskPressure",
            "kubelet has no disk pressure"
        ),
        c(
            "PIDPressure",
            "False",
            "KubeletHasSufficientPID",
            "kubelet has sufficient PID available"
        ),
        c("Ready", "True", "KubeletReady", "kubelet is posting ready status"),
    ])
}

/// Whether a node as stored still shows the status this agent posts, ignoring heartbeat
/// times: conditions (type, status, reason), capacity and allocatable.
pub fn status_matches(node: &Node, cfg: &NodeConfig) -> bool {
    let Some(st) = &node.status else { return false };
    let want = conditions(jiff::Timestamp::UNIX_EPOCH, jiff::Timestamp::UNIX_EPOCH);
    let have = st.conditions.as_deref().unwrap_or_default();
    let conds_ok = want.as_array().into_iter().flatten().all(|w| {
        have.iter()
            .any(|h| h.type_ == w["type"] && h.status == w["status"] && h.reason.as_deref() == w["reason"].as_str())
    });
    let q = |m: &Option<BTreeMap<String, Quantity>>, k: &str| m.as_ref().and_then(|m| m.get(k)).map(|q| q.0.clone());
    let allocatable = if cfg.allocatable.is_empty() {
        &cfg.capacity
    } else {
        &cfg.allocatable
    };
    let cap_ok = cfg
        .capacity
        .iter()
        .all(|(k, v)| q(&st.capacity, k).as_deref() == Some(v))
        && allocatable
            .iter()
            .all(|(k, v)| q(&st.allocatable, k).as_deref() == Some(v));
    conds_ok && cap_ok
}

/// When the stored Ready condition last changed, if it is the one this agent posts.
pub fn ready_since(node: &Node) -> Option<jiff::Timestamp> {
    let c = node
        .status
        .as_ref()?
        .conditions
        .as_ref()?
        .iter()
        .find(|c| c.type_ == "Ready")?;
    if c.status != "True" || c.reason.as_deref() != Some("KubeletReady") {
        return None;
    }
    c.last_transition_time.as_ref().map(|t| t.0)
}

/// Registers the node: creates it, or when it exists already (the agent restarted) brings its
/// labels up to date and posts its status. Returns the node as stored.
///
/// upstream: kubelet's `tryRegisterWithAPIServer` (create, then reconcile an existing node).
pub async fn register(client: &Client, cfg: &NodeConfig) -> Result<Node, kube::Error> {
    let nodes: Api<Node> = Api::all(client.clone());
    let now = now();
    match nodes.create(&PostParams::default(), &cfg.node_object(now)).await {
        Ok(node) if status_matches(&node, cfg) => Ok(node),
        Ok(_) => post_status(client, cfg, now, now).await,
        Err(kube::Error::Api(e)) if e.code == 409 => {
            let existing = nodes.get(&cfg.name).await?;
            let missing: BTreeMap<_, _> = cfg
                .all_labels()
                .into_iter()
                .filter(|(k, v)| existing.metadata.labels.as_ref().and_then(|l| l.get(k)) != Some(v))
                .collect();
            if !missing.is_empty() {
                let patch = json!({"metadata": {"labels": missing}});
                nodes
                    .patch(&cfg.name, &PatchParams::default(), &Patch::Merge(&patch))
                    .await?;
            }
            if let Some(taints) = own_taints(&existing, &cfg.taints) {
                let patch = json!({"metadata": {"resourceVersion": existing.metadata.resource_version}, "spec": {"taints": taints}});
                nodes
                    .patch(&cfg.name, &PatchParams::default(), &Patch::Merge(&patch))
                    .await?;
            }
            let since = ready_since(&existing).unwrap_or(now);
            post_status(client, cfg, now, since).await
        }
        Err(e) => Err(e),
    }
}

/// The taints `node` should carry given the agent's own (`skiff.dev/` keys) in `want`, or
/// `None` when they are already so. Taints of others are kept.
fn own_taints(
    node: &Node,
    want: &[k8s_openapi::api::core::v1::Taint],
) -> Option<Vec<k8s_openapi::api::core::v1::Taint>> {
    let have = node.spec.as_ref().and_then(|s| s.taints.clone()).unwrap_or_default();
    let own = |t: &&k8s_openapi::api::core::v1::Taint| t.key.starts_with("skiff.dev/");
    let same = |a: &k8s_openapi::api::core::v1::Taint, b: &k8s_openapi::api::core::v1::Taint| {
        a.key == b.key && a.value == b.value && a.effect == b.effect
    };
    let have_own: Vec<_> = have.iter().filter(own).collect();
    if have_own.len() == want.len() && want.iter().all(|w| have_own.iter().any(|h| same(h, w))) {
        return None;
    }
    let mut out: Vec<_> = have.iter().filter(|t| !own(t)).cloned().collect();
    out.extend(want.iter().cloned());
    Some(out)
}

/// Posts the node's healthy status (strategic merge: conditions merge by type, so conditions
/// set by others stay).
pub async fn post_status(
    client: &Client,
    cfg: &NodeConfig,
    now: jiff::Timestamp,
    since: jiff::Timestamp,
) -> Result<Node, kube::Error> {
    let nodes: Api<Node> = Api::all(client.clone());
    let patch = json!({"status": cfg.status(now, since)});
    nodes
        .patch_status(&cfg.name, &PatchParams::default(), &Patch::Strategic(&patch))
        .await
}

/// How often a lease of `duration_seconds` is renewed: a quarter of it (upstream
/// `renewInterval = 0.25 × leaseDuration`), at least 250 ms.
pub fn renew_interval(duration_seconds: i32) -> Duration {
    let ms = u64::try_from(duration_seconds).unwrap_or(0) * 250;
    Duration::from_millis(ms.max(250))
}

/// The Lease kubelet keeps for its node: holder = node, `duration` seconds, owned by the Node.
pub fn lease_object(node: &str, node_uid: Option<&str>, duration: i32, now: jiff::Timestamp) -> Lease {
    let owner = node_uid.map(|uid| {
        vec![k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference {
            api_version: "v1".into(),
            kind: "Node".into(),
            name: node.to_string(),
            uid: uid.to_string(),
            ..Default::default()
        }]
    });
    Lease {
        metadata: ObjectMeta {
            name: Some(node.to_string()),
            namespace: Some(LEASE_NAMESPACE.to_string()),
            owner_references: owner,
            ..Default::default()
        },
        spec: Some(k8s_openapi::api::coordination::v1::LeaseSpec {
            holder_identity: Some(node.to_string()),
            lease_duration_seconds: Some(duration),
            renew_time: Some(k8s_openapi::apimachinery::pkg::apis::meta::v1::MicroTime(now)),
            ..Default::default()
        }),
    }
}

/// Renews the node's lease of `duration` seconds (creating it when missing).
pub async fn renew_lease(
    client: &Client,
    node: &str,
    node_uid: Option<&str>,
    duration: i32,
) -> Result<(), kube::Error> {
    let leases: Api<Lease> = Api::namespaced(client.clone(), LEASE_NAMESPACE);
    let now = jiff::Timestamp::now();
    let patch = json!({"spec": {
        "holderIdentity": node,
        "leaseDurationSeconds": duration,
        "renewTime": rfc3339_micro(now),
    }});
    match leases.patch(node, &PatchParams::default(), &Patch::Merge(&patch)).await {
        Ok(_) => Ok(()),
        Err(kube::Error::Api(e)) if e.code == 404 => {
            match leases
                .create(&PostParams::default(), &lease_object(node, node_uid, duration, now))
                .await
            {
                Ok(_) => Ok(()),
                // Created concurrently: the next renewal patches it.
                Err(kube::Error::Api(e)) if e.code == 409 => Ok(()),
                Err(e) => Err(e),
            }
        }
        Err(e) => Err(e),
    }
}

/// Keeps one node registered and alive: registers it, renews its lease every quarter of its
/// duration (10 s by default), and re-posts its status when it drifted (someone marked it
/// NotReady; checked every 10 s, or at each renewal when those are more frequent) or every
/// 5 minutes.
/// Runs until an unrecoverable error; errors of single requests are logged and retried.
pub async fn run(client: Client, cfg: NodeConfig) -> Result<(), kube::Error> {
    let node = register(&client, &cfg).await?;
    let mut uid = node.metadata.uid.clone();
    let nodes: Api<Node> = Api::all(client.clone());
    let mut since = ready_since(&node).unwrap_or_else(now);
    let mut last_post = tokio::time::Instant::now();
    let renew = cfg.lease_renew_interval();
    let mut lease_tick = tokio::time::interval(renew);
    // A short grace period needs fast renewals; a NotReady mark is then undone as fast.
    let mut status_tick = tokio::time::interval(NODE_STATUS_UPDATE_FREQUENCY.min(renew));
    loop {
        tokio::select! {
            _ = lease_tick.tick() => {
                if let Err(e) = renew_lease(&client, &cfg.name, uid.as_deref(), cfg.lease_duration_seconds).await {
                    tracing::warn!(node = %cfg.name, error = %e, "renewing the node lease failed");
                }
            }
            _ = status_tick.tick() => {
                let current = match nodes.get_opt(&cfg.name).await {
                    Ok(Some(n)) => n,
                    Ok(None) => match register(&client, &cfg).await {
                        // upstream kubelet re-registers only on restart; skiff re-creates the
                        // node at once so a deleted node comes back as a restarted agent would.
                        Ok(n) => {
                            uid = n.metadata.uid.clone();
                            since = now();
                            last_post = tokio::time::Instant::now();
                            continue;
                        }
                        Err(e) => {
                            tracing::warn!(node = %cfg.name, error = %e, "registering the node failed");
                            continue;
                        }
                    },
                    Err(e) => {
                        tracing::warn!(node = %cfg.name, error = %e, "reading the node failed");
                        continue;
                    }
                };
                let drifted = !status_matches(&current, &cfg);
                if drifted || last_post.elapsed() >= NODE_STATUS_REPORT_FREQUENCY {
                    let t = now();
                    if drifted {
                        since = t;
                    }
                    match post_status(&client, &cfg, t, since).await {
                        Ok(_) => last_post = tokio::time::Instant::now(),
                        Err(e) => tracing::warn!(node = %cfg.name, error = %e, "posting node status failed"),
                    }
                }
            }
        }
    }
}

/// The current time, whole seconds (the precision of `metav1.Time`).
pub(crate) fn now() -> jiff::Timestamp {
    let t = jiff::Timestamp::now();
    jiff::Timestamp::from_second(t.as_second()).unwrap_or(t)
}

/// RFC 3339 with seconds, as `metav1.Time` is written.
pub(crate) fn rfc3339(t: jiff::Timestamp) -> String {
    t.strftime("%Y-%m-%dT%H:%M:%SZ").to_string()
}

/// RFC 3339 with microseconds, as `metav1.MicroTime` is written.
pub(crate) fn rfc3339_micro(t: jiff::Timestamp) -> String {
    t.strftime("%Y-%m-%dT%H:%M:%S.%6fZ").to_string()
}

fn go_arch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        "x86" => "386",
        "powerpc64" => "ppc64le",
        other => other,
    }
}

fn meminfo_total_kib() -> Option<u64> {
    let s = std::fs::read_to_string("/proc/meminfo").ok()?;
    let line = s.lines().find(|l| l.starts_with("MemTotal:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

fn filesystem_bytes(path: &str) -> Option<u64> {
    let c = std::ffi::CString::new(path).ok()?;
    let mut st = std::mem::MaybeUninit::<libc::statvfs>::zeroed();
    // SAFETY: `c` is a valid NUL-terminated path and `st` points to writable memory of the
    // right size; statvfs fills it on success.
    let rc = unsafe { libc::statvfs(c.as_ptr(), st.as_mut_ptr()) };
    if rc != 0 {
        return None;
    }
    // SAFETY: statvfs returned 0, so the struct is initialised.
    let st = unsafe { st.assume_init() };
    // The field types differ between targets (u32 or u64).
    #[allow(clippy::useless_conversion)]
    let (blocks, frsize) = (u64::from(st.f_blocks), u64::from(st.f_frsize));
    Some(blocks.saturating_mul(frsize))
}

/// The local address of the default route (no packet is sent: connecting a UDP socket only
/// picks the route).
fn default_route_ip() -> Option<String> {
    let sock = std::net::UdpSocket::bind("0.0.0.0:0").ok()?;
    sock.connect("192.0.2.1:9").ok()?;
    let ip = sock.local_addr().ok()?.ip();
    (!ip.is_unspecified()).then(|| ip.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn node_object_has_kubelet_labels_conditions_and_info() {
        let mut cfg = NodeConfig::from_host("n1", "process://1.0");
        cfg.hostname = "n1".into();
        let t = jiff::Timestamp::from_second(1_700_000_000).unwrap();
        let node = cfg.node_object(t);
        let labels = node.metadata.labels.clone().unwrap();
        for k in [
            "kubernetes.io/hostname",
            "kubernetes.io/os",
            "kubernetes.io/arch",
            "beta.kubernetes.io/os",
            "beta.kubernetes.io/arch",
        ] {
            assert!(labels.contains_key(k), "{k}");
        }
        assert_eq!(labels["kubernetes.io/os"], "linux");
        let st = node.status.as_ref().unwrap();
        let info = st.node_info.as_ref().unwrap();
        assert_eq!(info.kubelet_version, KUBELET_VERSION);
        assert_eq!(info.container_runtime_version, "process://1.0");
        let ready = st
            .conditions
            .as_ref()
            .unwrap()
            .iter()
            .find(|c| c.type_ == "Ready")
            .unwrap();
        assert_eq!(ready.reason.as_deref(), Some("KubeletReady"));
        assert_eq!(ready.message.as_deref(), Some("kubelet is posting ready status"));
        assert_eq!(st.capacity.as_ref().unwrap()["pods"].0, "110");
        assert!(status_matches(&node, &cfg));
        assert_eq!(ready_since(&node), Some(t));
    }

    #[test]
    fn times_are_written_as_kubernetes_writes_them() {
        let t = jiff::Timestamp::from_second(1_700_000_000).unwrap();
        assert_eq!(rfc3339(t), "2023-11-14T22:13:20Z");
        assert_eq!(rfc3339_micro(t), "2023-11-14T22:13:20.000000Z");
    }
}
