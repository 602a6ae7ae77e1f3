//! Bridge networking of process pods, as kubelet does it with the CNI `bridge` plugin: the
//! node has a Linux bridge holding the first address of its pod CIDR (also the node's
//! address), and each pod gets a network namespace with a veth on that bridge and an address
//! from the CIDR (host-local IPAM), which all its containers join.
//!
//! The reference CNI plugins (Debian `containernetworking-plugins`) do the interface and
//! address work, as they do under kubelet; the bridge itself is made with iproute2 at node
//! start so the node's address exists before its first pod. Only the bridge, the veths and
//! the namespaces made here are touched, and they are removed when pods and the node go.

use std::io;
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::process::Stdio;

use k8s_openapi::api::core::v1::Pod;
use serde_json::{json, Value};
use tokio::io::AsyncWriteExt;

/// Where Debian installs the CNI plugins.
pub const CNI_BIN: &str = "/usr/lib/cni";

/// How a node networks its pods in bridge mode.
#[derive(Debug, Clone)]
pub struct BridgeOptions {
    /// The node's pod CIDR, `10.42.<n>.0/24`; its `.1` is the bridge's and the node's address.
    pub pod_cidr: (Ipv4Addr, u8),
    /// Where the CNI plugins are.
    pub cni_bin: PathBuf,
}

impl BridgeOptions {
    /// Bridge networking on `pod_cidr` with the defaults.
    pub fn new(pod_cidr: (Ipv4Addr, u8)) -> Self {
        BridgeOptions {
            pod_cidr,
            cni_bin: PathBuf::from(CNI_BIN),
        }
    }

    /// The bridge's address: the node's InternalIP and the pods' gateway.
    pub fn gateway(&self) -> Ipv4Addr {
        Ipv4Addr::from(u32::from(self.pod_cidr.0) + 1)
    }

    /// The pod CIDR as text.
    pub fn cidr(&self) -> String {
        format!("{}/{}", self.pod_cidr.0, self.pod_cidr.1)
    }
}

/// Whether bridge networking can work here: root, and the CNI plugins installed.
pub fn available(cni_bin: &Path) -> bool {
    super::spawn::is_root() && cni_bin.join("bridge").exists() && cni_bin.join("host-local").exists()
}

/// One node's bridge and the pods on it.
#[derive(Debug)]
pub(crate) struct Bridge {
    pub(crate) opts: BridgeOptions,
    /// The bridge interface (at most 15 characters).
    pub(crate) name: String,
    /// host-local's allocation records.
    ipam_dir: PathBuf,
}

async fn ip(args: &[&str]) -> io::Result<()> {
    let out = tokio::process::Command::new("ip").args(args).output().await?;
    if out.status.success() {
        return Ok(());
    }
    Err(io::Error::other(format!(
        "ip {}: {}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr).trim()
    )))
}

impl Bridge {
    /// The bridge of the node whose agent id (node name plus data directory hash) is `id`.
    pub(crate) fn new(opts: BridgeOptions, id: &str, data_dir: &Path) -> Self {
        use std::hash::{Hash, Hasher};
        let mut h = std::collections::hash_map::DefaultHasher::new();
        id.hash(&mut h);
        Bridge {
            opts,
            name: format!("skbr{:08x}", h.finish() as u32),
            ipam_dir: data_dir.join("cni"),
        }
    }

    /// Creates the bridge with the node's address and lets the host route between bridges
    /// and service addresses (`ip_forward`, which the CNI bridge plugin would set anyway).
    pub(crate) async fn setup(&self) -> io::Result<()> {
        // A bridge on our address left by a killed cluster would take our pods' traffic.
        if let Ok(out) = tokio::process::Command::new("ip")
            .args(["-o", "-4", "addr", "show"])
            .output()
            .await
        {
            let gw = self.opts.gateway().to_string();
            for l in String::from_utf8_lossy(&out.stdout).lines() {
                let f: Vec<&str> = l.split_whitespace().collect();
                let (Some(name), Some(addr)) = (f.get(1), f.get(3)) else {
                    continue;
                };
                if name.starts_with("skbr") && *name != self.name && addr.split('/').next() == Some(gw.as_str()) {
                    tracing::warn!(interface = %name, "removing a bridge an earlier skiff cluster left behind");
                    let _ = ip(&["link", "del", name]).await;
                }
            }
        }
        if let Err(e) = ip(&["link", "add", "name", &self.name, "type", "bridge"]).await {
            if !e.to_string().contains("File exists") {
                return Err(e);
            }
        }
        // A bridge without an address of its own takes its lowest port's MAC, and changes it
        // when that pod goes: the other pods' ARP entries for the gateway then point nowhere
        // until they expire (about 30 s without replies from the node). A fixed, locally
        // administered MAC derived from the bridge's name keeps it.
        ip(&["link", "set", &self.name, "address", &self.mac()]).await?;
        let addr = format!("{}/{}", self.opts.gateway(), self.opts.pod_cidr.1);
        ip(&["addr", "replace", &addr, "dev", &self.name]).await?;
        ip(&["link", "set", &self.name, "up"]).await?;
        std::fs::write("/proc/sys/net/ipv4/ip_forward", "1")?;
        tracing::debug!(bridge = %self.name, %addr, "node bridge ready");
        Ok(())
    }

    /// `02:` (locally administered, unicast) and the bridge name's hash.
    fn mac(&self) -> String {
        let h = self.name.trim_start_matches("skbr");
        let b = h.as_bytes();
        let pair = |i: usize| std::str::from_utf8(&b[i..i + 2]).unwrap_or("00");
        if b.len() >= 8 {
            format!("02:00:{}:{}:{}:{}", pair(0), pair(2), pair(4), pair(6))
        } else {
            "02:00:00:00:00:01".to_string()
        }
    }

    /// What removes the bridge and its address records when dropped (at node stop).
    pub(crate) fn teardown_on_drop(&self) -> Teardown {
        Teardown {
            name: self.name.clone(),
            ipam_dir: self.ipam_dir.clone(),
        }
    }

    fn conf(&self) -> Value {
        json!({
            "cniVersion": "1.0.0",
            "name": self.name,
            "type": "bridge",
            "bridge": self.name,
            "isGateway": true,
            "ipMasq": false,
            "hairpinMode": true,
            "ipam": {
                "type": "host-local",
                "ranges": [[{"subnet": self.opts.cidr(), "gateway": self.opts.gateway().to_string()}]],
                "routes": [{"dst": "0.0.0.0/0"}],
                "dataDir": self.ipam_dir,
            }
        })
    }

    async fn cni(&self, command: &str, plugin: &str, id: &str, netns: &Path, conf: &Value) -> Result<Value, String> {
        let mut child = tokio::process::Command::new(self.opts.cni_bin.join(plugin))
            .env_clear()
            .env("CNI_COMMAND", command)
            .env("CNI_CONTAINERID", id)
            .env("CNI_NETNS", netns)
            .env("CNI_IFNAME", if plugin == "loopback" { "lo" } else { "eth0" })
            .env("CNI_PATH", &self.opts.cni_bin)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| format!("running the CNI plugin {plugin}: {e}"))?;
        if let Some(mut stdin) = child.stdin.take() {
            let _ = stdin.write_all(conf.to_string().as_bytes()).await;
        }
        let out = child.wait_with_output().await.map_err(|e| e.to_string())?;
        let body: Value = serde_json::from_slice(&out.stdout).unwrap_or(Value::Null);
        if out.status.success() {
            return Ok(body);
        }
        let msg = body["msg"]
            .as_str()
            .map(str::to_string)
            .unwrap_or_else(|| String::from_utf8_lossy(&out.stderr).trim().to_string());
        Err(format!("plugin type=\"{plugin}\" failed ({command}): {msg}"))
    }

    /// Makes the pod's network namespace at `dir/netns` with loopback up and `eth0` on the
    /// bridge; returns the pod's address.
    pub(crate) async fn add_pod(&self, uid: &str, dir: &Path) -> Result<Ipv4Addr, String> {
        let netns = dir.join("netns");
        // A sandbox left by an earlier run of the agent is replaced.
        self.del_pod(uid, dir).await;
        new_netns(&netns).map_err(|e| format!("creating the network namespace: {e}"))?;
        let lo = json!({"cniVersion": "1.0.0", "name": "lo", "type": "loopback"});
        self.cni("ADD", "loopback", uid, &netns, &lo).await?;
        let res = self.cni("ADD", "bridge", uid, &netns, &self.conf()).await?;
        let addr = res["ips"][0]["address"].as_str().unwrap_or_default();
        let ip = addr
            .split('/')
            .next()
            .and_then(|a| a.parse().ok())
            .ok_or_else(|| format!("the CNI bridge plugin gave no address: {res}"))?;
        tracing::debug!(pod = %uid, %ip, bridge = %self.name, "pod network ready");
        Ok(ip)
    }

    /// Releases the pod's address and removes its namespace (and with it its veth).
    pub(crate) async fn del_pod(&self, uid: &str, dir: &Path) {
        let netns = dir.join("netns");
        if !netns.exists() {
            return;
        }
        if let Err(e) = self.cni("DEL", "bridge", uid, &netns, &self.conf()).await {
            tracing::debug!(pod = %uid, error = %e, "CNI DEL failed");
        }
        drop_netns(dir);
    }
}

/// Removes the pod's network namespace at `dir/netns`, if any.
pub(crate) fn drop_netns(dir: &Path) {
    let netns = dir.join("netns");
    if netns.exists() {
        super::spawn::unmount(&netns);
        let _ = std::fs::remove_file(&netns);
    }
}

/// Removes a node's bridge when dropped (its veths went with their pods' namespaces).
pub(crate) struct Teardown {
    name: String,
    ipam_dir: PathBuf,
}

impl Drop for Teardown {
    fn drop(&mut self) {
        let _ = std::process::Command::new("ip")
            .args(["link", "del", &self.name])
            .stderr(Stdio::null())
            .status();
        let _ = std::fs::remove_dir_all(&self.ipam_dir);
    }
}

/// Creates a network namespace kept alive by a bind mount at `path` (what `ip netns add`
/// does), from a thread of its own so the agent's threads keep the host's namespace.
fn new_netns(path: &Path) -> io::Result<()> {
    std::fs::File::create(path)?;
    let target = path.to_path_buf();
    std::thread::spawn(move || -> io::Result<()> {
        // SAFETY: unshare only changes this thread's namespace; the thread ends right after.
        if unsafe { libc::unshare(libc::CLONE_NEWNET) } < 0 {
            return Err(io::Error::last_os_error());
        }
        super::spawn::bind_mount(Path::new("/proc/thread-self/ns/net"), &target)
    })
    .join()
    .map_err(|_| io::Error::other("the namespace thread panicked"))?
}

/// `/etc/resolv.conf` of a pod, as kubelet writes it: the cluster DNS with the namespace's
/// search path for ClusterFirst pods, `dnsConfig` merged in; `None` keeps the host's.
pub(crate) fn resolv_conf(pod: &Pod, dns: Option<Ipv4Addr>, domain: &str) -> Option<String> {
    let spec = pod.spec.as_ref()?;
    let ns = pod.metadata.namespace.as_deref().unwrap_or("default");
    let host_net = spec.host_network.unwrap_or(false);
    let policy = spec.dns_policy.as_deref().unwrap_or("ClusterFirst");
    let (mut servers, mut search, mut options): (Vec<String>, Vec<String>, Vec<String>) = match (policy, dns) {
        ("ClusterFirst", Some(d)) if !host_net => cluster(d, ns, domain),
        ("ClusterFirstWithHostNet", Some(d)) => cluster(d, ns, domain),
        ("None", _) => (Vec::new(), Vec::new(), Vec::new()),
        _ => return None,
    };
    if let Some(c) = &spec.dns_config {
        servers.extend(c.nameservers.iter().flatten().cloned());
        search.extend(c.searches.iter().flatten().cloned());
        for o in c.options.iter().flatten() {
            options.retain(|x| x.split(':').next() != Some(o.name.as_deref().unwrap_or_default()));
            options.push(match &o.value {
                Some(v) => format!("{}:{v}", o.name.clone().unwrap_or_default()),
                None => o.name.clone().unwrap_or_default(),
            });
        }
    }
    let mut out = String::new();
    if !search.is_empty() {
        out.push_str(&format!("search {}\n", search.join(" ")));
    }
    for s in servers {
        out.push_str(&format!("nameserver {s}\n"));
    }
    if !options.is_empty() {
        out.push_str(&format!("options {}\n", options.join(" ")));
    }
    Some(out)
}

fn cluster(dns: Ipv4Addr, ns: &str, domain: &str) -> (Vec<String>, Vec<String>, Vec<String>) {
    (
        vec![dns.to_string()],
        vec![
            format!("{ns}.svc.{domain}"),
            format!("svc.{domain}"),
            domain.to_string(),
        ],
        vec!["ndots:5".into()],
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolv_conf_follows_the_dns_policy() {
        let pod = |spec: Value| -> Pod {
            serde_json::from_value(json!({"metadata": {"name": "p", "namespace": "shop"}, "spec": spec})).unwrap()
        };
        let dns = Some(Ipv4Addr::new(10, 43, 0, 10));
        let first = resolv_conf(&pod(json!({"containers": []})), dns, "cluster.local").unwrap();
        assert_eq!(
            first,
            "search shop.svc.cluster.local svc.cluster.local cluster.local\nnameserver 10.43.0.10\noptions ndots:5\n"
        );
        assert!(resolv_conf(
            &pod(json!({"containers": [], "dnsPolicy": "Default"})),
            dns,
            "cluster.local"
        )
        .is_none());
        assert!(resolv_conf(
            &pod(json!({"containers": [], "hostNetwork": true})),
            dns,
            "cluster.local"
        )
        .is_none());
        let custom = resolv_conf(
            &pod(json!({"containers": [], "dnsPolicy": "None", "dnsConfig": {
                "nameservers": ["1.2.3.4"], "searches": ["a.example"], "options": [{"name": "ndots", "value": "2"}]}})),
            dns,
            "cluster.local",
        )
        .unwrap();
        assert_eq!(custom, "search a.example\nnameserver 1.2.3.4\noptions ndots:2\n");
    }
}
