//! The nftables proxy of bridge networking, after kube-proxy's nftables mode: one table of
//! this cluster's own, rewritten atomically (`nft -f`) whenever services or endpoints change.
//!
//! - `services` sends `ClusterIP . proto . port` and, on the nodes' addresses, NodePorts and
//!   LoadBalancer ports (`proto . port`) to a per-service chain;
//! - a service chain picks an endpoint chain with `numgen random` (after the ClientIP
//!   affinity sets, when set); an endpoint chain DNATs to the pod;
//! - traffic from outside the pod network, NodePort traffic and hairpin traffic (a pod
//!   reaching itself) is marked and masqueraded, so replies come back through the host;
//! - service ports without endpoints are rejected, as kube-proxy does;
//! - `externalTrafficPolicy: Local` sends node traffic only to that node's pods (without
//!   masquerading), `internalTrafficPolicy: Local` pod traffic only to the sender's node's pods.
//!
//! The service range is routed to an interface of the cluster's own, a bridge without ports
//! that also holds the addresses the cluster serves itself (the DNS server's), so a service
//! address that no rule takes never leaves the host.

use std::collections::{BTreeMap, HashSet};
use std::fmt::Write as _;
use std::net::{IpAddr, Ipv4Addr};
use std::process::Stdio;

use tokio::io::AsyncWriteExt;

use crate::services::{Backend, ServicePort};
use crate::sources::{NodeAddr, Sources};

/// The packet mark of connections to masquerade (kube-proxy's).
const MASQ_MARK: &str = "0x4000";
/// The host's loopback address, where NodePorts and LoadBalancer ports also answer to the
/// host's own clients (`curl localhost:30080`).
const LOOPBACK: &str = "127.0.0.1";

/// What the nftables proxy needs to know about the cluster.
#[derive(Debug, Clone)]
pub struct Options {
    /// The nftables table (one per cluster, e.g. `skiff-<id>`).
    pub table: String,
    /// The pod network (traffic from elsewhere is masqueraded).
    pub cluster_cidr: String,
    /// The service range, routed to `link`.
    pub service_cidr: String,
    /// The cluster's own interface: a bridge without ports (this kernel has no `dummy`).
    pub link: String,
    /// Addresses the cluster serves itself (the DNS server's), put on `link`.
    pub local_addrs: Vec<Ipv4Addr>,
}

async fn run_cmd(program: &str, args: &[&str], stdin: Option<&str>) -> std::io::Result<()> {
    let mut child = tokio::process::Command::new(program)
        .args(args)
        .stdin(if stdin.is_some() { Stdio::piped() } else { Stdio::null() })
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()?;
    if let (Some(text), Some(mut pipe)) = (stdin, child.stdin.take()) {
        pipe.write_all(text.as_bytes()).await?;
    }
    let out = child.wait_with_output().await?;
    if out.status.success() {
        return Ok(());
    }
    Err(std::io::Error::other(format!(
        "{program} {}: {}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr).trim()
    )))
}

/// Interfaces other than `ours` whose name starts with `prefix` and that hold one of
/// `addrs`: left by a skiff cluster that was killed before it could clean up.
pub async fn stale_links(prefix: &str, ours: &str, addrs: &[Ipv4Addr]) -> Vec<String> {
    let Ok(out) = tokio::process::Command::new("ip")
        .args(["-o", "-4", "addr", "show"])
        .output()
        .await
    else {
        return Vec::new();
    };
    let mut stale: Vec<String> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            let (name, addr) = (*f.get(1)?, f.get(3)?.split('/').next()?);
            let addr: Ipv4Addr = addr.parse().ok()?;
            (name.starts_with(prefix) && name != ours && addrs.contains(&addr)).then(|| name.to_string())
        })
        .collect();
    stale.dedup();
    stale
}

/// Makes the cluster's interface with its own addresses and the service route, after
/// removing what a killed cluster on the same addresses left behind.
pub async fn setup(opts: &Options) -> std::io::Result<()> {
    for link in stale_links("skd", &opts.link, &opts.local_addrs).await {
        tracing::warn!(interface = %link, "removing what an earlier skiff cluster left behind");
        let _ = run_cmd("ip", &["link", "del", &link], None).await;
        let table = format!("skiff-{}", link.trim_start_matches("skd"));
        let _ = run_cmd("nft", &["delete", "table", "ip", &table], None).await;
    }
    if let Err(e) = run_cmd("ip", &["link", "add", &opts.link, "type", "bridge"], None).await {
        if !e.to_string().contains("File exists") {
            return Err(e);
        }
    }
    run_cmd("ip", &["link", "set", &opts.link, "up"], None).await?;
    for a in &opts.local_addrs {
        run_cmd("ip", &["addr", "replace", &format!("{a}/32"), "dev", &opts.link], None).await?;
    }
    run_cmd("ip", &["route", "replace", &opts.service_cidr, "dev", &opts.link], None).await?;
    std::fs::write("/proc/sys/net/ipv4/ip_forward", "1")?;
    // NodePorts on 127.0.0.1 (as kube-proxy's iptables mode and k3s answer there): packets
    // from the host's loopback address may then be routed to the pods once DNATed. Like
    // ip_forward, it stays set when the cluster stops: other clusters may rely on it.
    std::fs::write("/proc/sys/net/ipv4/conf/all/route_localnet", "1")
}

/// Removes the table and the cluster's interface (with its route) when dropped.
struct Cleanup(Options);

impl Drop for Cleanup {
    fn drop(&mut self) {
        let _ = std::process::Command::new("nft")
            .args(["delete", "table", "ip", &self.0.table])
            .stderr(Stdio::null())
            .status();
        let _ = std::process::Command::new("ip")
            .args(["link", "del", &self.0.link])
            .stderr(Stdio::null())
            .status();
    }
}

/// Runs the proxy until the watches stop; the table and interface go when it ends.
pub async fn run(client: kube::Client, opts: Options) -> Result<(), crate::Error> {
    setup(&opts).await?;
    let _cleanup = Cleanup(opts.clone());
    let mut sources = Sources::start(&client);
    sources.ready().await;
    let mut last = String::new();
    loop {
        let text = ruleset(&sources.ports(), &sources.nodes(), &opts);
        if text != last {
            match run_cmd("nft", &["-f", "-"], Some(&text)).await {
                Ok(()) => {
                    tracing::debug!(table = %opts.table, rules = text.lines().count(), "nftables rules applied");
                }
                Err(e) => {
                    // One service's rules must never block the others': apply without the
                    // services nft refuses.
                    tracing::warn!(error = %e, "applying the nftables rules failed; retrying without the failing services");
                    let accepted = without_refused(&sources.ports(), &sources.nodes(), &opts).await;
                    let retry = ruleset(&accepted, &sources.nodes(), &opts);
                    if let Err(e) = run_cmd("nft", &["-f", "-"], Some(&retry)).await {
                        tracing::warn!(error = %e, "applying the nftables rules failed");
                    }
                }
            }
            // Retried only when something changes: the same input fails the same way.
            last = text;
        }
        if !sources.changed().await {
            return Ok(());
        }
    }
}

/// The ports of every service nft accepts together, adding one service at a time (checked
/// with `nft -c`); each refused service is logged and left out.
async fn without_refused(ports: &[ServicePort], nodes: &[NodeAddr], opts: &Options) -> Vec<ServicePort> {
    let mut accepted: Vec<ServicePort> = Vec::new();
    let mut i = 0;
    while i < ports.len() {
        let service = &ports[i].service;
        let n = ports[i..].iter().take_while(|p| &p.service == service).count();
        let mut trial = accepted.clone();
        trial.extend_from_slice(&ports[i..i + n]);
        match run_cmd("nft", &["-c", "-f", "-"], Some(&ruleset(&trial, nodes, opts))).await {
            Ok(()) => accepted = trial,
            Err(e) => tracing::warn!(%service, error = %e, "service left out of the nftables rules"),
        }
        i += n;
    }
    accepted
}

fn ipv4(ip: IpAddr) -> Option<Ipv4Addr> {
    match ip {
        IpAddr::V4(v) => Some(v),
        IpAddr::V6(_) => None,
    }
}

/// An nft set literal; `None` when empty (nft refuses `{ }`).
fn set_of(items: impl IntoIterator<Item = String>) -> Option<String> {
    let v: Vec<String> = items.into_iter().collect();
    (!v.is_empty()).then(|| format!("{{ {} }}", v.join(", ")))
}

/// The whole table for these service ports and nodes.
pub fn ruleset(ports: &[ServicePort], nodes: &[NodeAddr], opts: &Options) -> String {
    let t = &opts.table;
    let mut chains = String::new();
    let mut sets = String::new();
    let mut svc_map: Vec<String> = Vec::new();
    let mut node_map: Vec<String> = Vec::new();
    let mut no_endpoints: Vec<String> = Vec::new();
    let mut no_node_endpoints: Vec<String> = Vec::new();
    let node_ips: Vec<Ipv4Addr> = nodes.iter().filter_map(|n| ipv4(n.ip)).collect();
    // A key of a map given twice makes nft refuse the whole table ("File exists"): the first
    // service port to claim an address and port keeps it (the ports come sorted, and a
    // LoadBalancer port a later Service also asks for is withheld from it by `services`).
    let mut taken: HashSet<String> = HashSet::new();
    let pod_cidr_of: BTreeMap<&str, &str> = nodes
        .iter()
        .filter_map(|n| Some((n.name.as_str(), n.pod_cidr.as_deref()?)))
        .collect();
    for (i, p) in ports.iter().enumerate() {
        let Some(vip) = p.cluster_ip.and_then(ipv4) else {
            continue;
        };
        let proto = p.protocol.nft();
        if !taken.insert(format!("{vip} . {proto} . {}", p.port)) {
            continue;
        }
        let usable: Vec<&Backend> = p.usable(None).into_iter().filter(|b| ipv4(b.ip).is_some()).collect();
        let svc = format!("svc-{i}");
        let ext_ports: Vec<u16> = p
            .node_port
            .into_iter()
            .chain(p.load_balancer.then_some(p.port))
            .filter(|np| taken.insert(format!("{proto} . {np}")))
            .collect();
        if usable.is_empty() {
            no_endpoints.push(format!("{vip} . {proto} . {}", p.port));
            no_node_endpoints.extend(ext_ports.iter().map(|np| format!("{proto} . {np}")));
            continue;
        }
        svc_map.push(format!("{vip} . {proto} . {} : goto {svc}", p.port));
        // Endpoint chains, and the affinity sets they refresh.
        let mut sep_names = Vec::new();
        for (j, b) in usable.iter().enumerate() {
            let sep = format!("sep-{i}-{j}");
            let _ = writeln!(chains, "\tchain {sep} {{");
            let _ = writeln!(chains, "\t\tip saddr {} jump mark-masq", b.ip);
            if let Some(secs) = p.affinity_seconds {
                let _ = writeln!(
                    sets,
                    "\tset aff-{i}-{j} {{ type ipv4_addr; flags dynamic,timeout; timeout {secs}s; }}"
                );
                let _ = writeln!(chains, "\t\tupdate @aff-{i}-{j} {{ ip saddr }}");
            }
            let _ = writeln!(chains, "\t\tmeta l4proto {proto} dnat to {}:{}", b.ip, b.port);
            let _ = writeln!(chains, "\t}}");
            sep_names.push((sep, *b));
        }
        let pick = |names: &[&(String, &Backend)]| -> String {
            let arms: Vec<String> = names
                .iter()
                .enumerate()
                .map(|(k, (sep, _))| format!("{k} : goto {sep}"))
                .collect();
            format!("numgen random mod {} vmap {{ {} }}", names.len(), arms.join(", "))
        };
        let affinity = |names: &[&(String, &Backend)], out: &mut String| {
            if p.affinity_seconds.is_some() {
                for (sep, _) in names {
                    let set = sep.replacen("sep-", "aff-", 1);
                    let _ = writeln!(out, "\t\tip saddr @{set} goto {sep}");
                }
            }
        };
        let all: Vec<&(String, &Backend)> = sep_names.iter().collect();
        let on_node = |node: &str| -> Vec<&(String, &Backend)> {
            sep_names
                .iter()
                .filter(|(_, b)| b.node.as_deref() == Some(node))
                .collect()
        };
        // The service chain (in-cluster traffic).
        let _ = writeln!(chains, "\tchain {svc} {{");
        let _ = writeln!(chains, "\t\tip saddr != {} jump mark-masq", opts.cluster_cidr);
        if p.internal_local {
            for (node, cidr) in &pod_cidr_of {
                let local = on_node(node);
                if local.is_empty() {
                    let _ = writeln!(chains, "\t\tip saddr {cidr} drop");
                } else {
                    affinity(&local, &mut chains);
                    let _ = writeln!(chains, "\t\tip saddr {cidr} {}", pick(&local));
                }
            }
        }
        affinity(&all, &mut chains);
        let _ = writeln!(chains, "\t\t{}", pick(&all));
        let _ = writeln!(chains, "\t}}");
        // NodePort and LoadBalancer traffic.
        if !ext_ports.is_empty() {
            let ext = format!("ext-{i}");
            let _ = writeln!(chains, "\tchain {ext} {{");
            if p.external_local {
                // The host's own connections to 127.0.0.1 are masqueraded anyway: they take
                // the cluster-wide policy (kube-proxy does the same for local traffic).
                let _ = writeln!(chains, "\t\tip daddr {LOOPBACK} goto {svc}");
                // Only the receiving node's pods, and the client's address kept.
                for n in nodes {
                    let Some(ip) = ipv4(n.ip) else { continue };
                    let local = on_node(&n.name);
                    if local.is_empty() {
                        let _ = writeln!(chains, "\t\tip daddr {ip} drop");
                    } else {
                        affinity(&local, &mut chains);
                        let _ = writeln!(chains, "\t\tip daddr {ip} {}", pick(&local));
                    }
                }
                let _ = writeln!(chains, "\t\tdrop");
            } else {
                let _ = writeln!(chains, "\t\tjump mark-masq");
                let _ = writeln!(chains, "\t\tgoto {svc}");
            }
            let _ = writeln!(chains, "\t}}");
            node_map.extend(ext_ports.iter().map(|np| format!("{proto} . {np} : goto {ext}")));
        }
    }
    let mut out = String::new();
    let _ = writeln!(out, "add table ip {t}");
    let _ = writeln!(out, "delete table ip {t}");
    let _ = writeln!(out, "table ip {t} {{");
    let elements = |v: Option<String>| v.map(|s| format!(" elements = {s};")).unwrap_or_default();
    let _ = writeln!(
        out,
        "\tmap service-ips {{ type ipv4_addr . inet_proto . inet_service : verdict;{} }}",
        elements(set_of(svc_map))
    );
    let _ = writeln!(
        out,
        "\tmap service-nodeports {{ type inet_proto . inet_service : verdict;{} }}",
        elements(set_of(node_map))
    );
    let _ = writeln!(
        out,
        "\tset nodeport-ips {{ type ipv4_addr;{} }}",
        elements(set_of(node_ips.iter().map(|ip| ip.to_string())))
    );
    let _ = writeln!(
        out,
        "\tset no-endpoint-services {{ type ipv4_addr . inet_proto . inet_service;{} }}",
        elements(set_of(no_endpoints))
    );
    let _ = writeln!(
        out,
        "\tset no-endpoint-nodeports {{ type inet_proto . inet_service;{} }}",
        elements(set_of(no_node_endpoints))
    );
    out.push_str(&sets);
    let reject = "ct state new ip daddr . meta l4proto . th dport @no-endpoint-services reject";
    let reject_np = "ct state new ip daddr @nodeport-ips meta l4proto . th dport @no-endpoint-nodeports reject";
    let _ = writeln!(
        out,
        "\tchain filter-forward {{ type filter hook forward priority -110; policy accept; {reject}; }}"
    );
    let _ = writeln!(
        out,
        "\tchain filter-output {{ type filter hook output priority -110; policy accept; {reject}; {reject_np}; }}"
    );
    let _ = writeln!(
        out,
        "\tchain filter-input {{ type filter hook input priority -110; policy accept; {reject_np}; }}"
    );
    let _ = writeln!(
        out,
        "\tchain nat-prerouting {{ type nat hook prerouting priority -100; policy accept; jump services; }}"
    );
    let _ = writeln!(
        out,
        "\tchain nat-output {{ type nat hook output priority -100; policy accept; jump services; ip daddr {LOOPBACK} meta l4proto . th dport vmap @service-nodeports; }}"
    );
    let _ = writeln!(
        out,
        "\tchain nat-postrouting {{ type nat hook postrouting priority 100; policy accept; meta mark & {MASQ_MARK} == 0 return; meta mark set meta mark ^ {MASQ_MARK}; masquerade fully-random; }}"
    );
    let _ = writeln!(out, "\tchain mark-masq {{ meta mark set meta mark | {MASQ_MARK}; }}");
    let _ = writeln!(
        out,
        "\tchain services {{ ip daddr . meta l4proto . th dport vmap @service-ips; ip daddr @nodeport-ips meta l4proto . th dport vmap @service-nodeports; }}"
    );
    out.push_str(&chains);
    out.push_str("}\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::services::Protocol;

    fn port(name: &str, backends: &[(&str, &str, bool)]) -> ServicePort {
        ServicePort {
            service: format!("default/{name}"),
            port_name: String::new(),
            protocol: Protocol::Tcp,
            cluster_ip: Some("10.43.0.5".parse().unwrap()),
            port: 80,
            node_port: Some(30080),
            load_balancer: false,
            affinity_seconds: None,
            external_local: false,
            internal_local: false,
            backends: backends
                .iter()
                .map(|(ip, node, ready)| Backend {
                    ip: ip.parse().unwrap(),
                    port: 8080,
                    node: Some(node.to_string()),
                    ready: *ready,
                    serving: *ready,
                })
                .collect(),
        }
    }

    fn opts() -> Options {
        Options {
            table: "skiff-test".into(),
            cluster_cidr: "10.42.0.0/16".into(),
            service_cidr: "10.43.0.0/16".into(),
            link: "skd".into(),
            local_addrs: vec![],
        }
    }

    fn nodes() -> Vec<NodeAddr> {
        vec![NodeAddr {
            name: "n1".into(),
            ip: "10.42.1.1".parse().unwrap(),
            pod_cidr: Some("10.42.1.0/24".into()),
        }]
    }

    #[test]
    fn ready_endpoints_are_balanced_and_others_rejected() {
        let rules = ruleset(
            &[port(
                "web",
                &[
                    ("10.42.1.2", "n1", true),
                    ("10.42.1.3", "n1", false),
                    ("10.42.1.4", "n1", true),
                ],
            )],
            &nodes(),
            &opts(),
        );
        assert!(rules.contains("10.43.0.5 . tcp . 80 : goto svc-0"), "{rules}");
        assert!(
            rules.contains("numgen random mod 2 vmap { 0 : goto sep-0-0, 1 : goto sep-0-1 }"),
            "{rules}"
        );
        assert!(rules.contains("meta l4proto tcp dnat to 10.42.1.4:8080"), "{rules}");
        assert!(!rules.contains("10.42.1.3"), "not-ready endpoints get no traffic");
        assert!(rules.contains("tcp . 30080 : goto ext-0"), "{rules}");
        assert!(
            rules.contains("set nodeport-ips { type ipv4_addr; elements = { 10.42.1.1 }; }"),
            "{rules}"
        );
        let empty = ruleset(&[port("web", &[])], &nodes(), &opts());
        assert!(empty.contains("elements = { 10.43.0.5 . tcp . 80 }"), "{empty}");
        assert!(empty.contains("elements = { tcp . 30080 }"), "{empty}");
        assert!(!empty.contains("chain svc-0"), "{empty}");
    }

    #[test]
    fn affinity_and_local_policies() {
        let mut p = port("web", &[("10.42.1.2", "n1", true), ("10.42.2.2", "n2", true)]);
        p.affinity_seconds = Some(60);
        p.external_local = true;
        let rules = ruleset(&[p], &nodes(), &opts());
        assert!(
            rules.contains("set aff-0-0 { type ipv4_addr; flags dynamic,timeout; timeout 60s; }"),
            "{rules}"
        );
        assert!(rules.contains("update @aff-0-1 { ip saddr }"), "{rules}");
        assert!(rules.contains("ip saddr @aff-0-0 goto sep-0-0"), "{rules}");
        assert!(
            rules.contains("ip daddr 10.42.1.1 numgen random mod 1 vmap { 0 : goto sep-0-0 }"),
            "only node n1's pod for traffic to n1: {rules}"
        );
    }

    /// Two services asking for one NodePort-map key (a LoadBalancer port two Services share,
    /// or a LoadBalancer port equal to another's NodePort) used to make nft refuse the whole
    /// table ("File exists"): the first keeps the key, and every other rule stays.
    #[test]
    fn a_key_two_services_ask_for_goes_to_the_first() {
        let mut a = port("a", &[("10.42.1.2", "n1", true)]);
        a.load_balancer = true;
        let mut b = port("b", &[("10.42.1.3", "n1", true)]);
        b.cluster_ip = Some("10.43.0.6".parse().unwrap());
        b.load_balancer = true;
        b.node_port = Some(30081);
        let mut c = port("c", &[]);
        c.cluster_ip = Some("10.43.0.7".parse().unwrap());
        c.node_port = Some(80);
        let rules = ruleset(&[a, b, c], &nodes(), &opts());
        let node_map = rules.lines().find(|l| l.contains("map service-nodeports")).unwrap();
        assert_eq!(node_map.matches("tcp . 80 : goto").count(), 1, "{rules}");
        assert!(node_map.contains("tcp . 80 : goto ext-0"), "{rules}");
        assert!(
            rules.contains("tcp . 30081 : goto ext-1"),
            "b keeps its NodePort: {rules}"
        );
        assert!(
            rules.contains("10.43.0.6 . tcp . 80 : goto svc-1"),
            "b keeps its ClusterIP: {rules}"
        );
        assert!(
            !rules.contains("elements = { tcp . 80 }"),
            "c's port is a's, not rejected: {rules}"
        );
        nft_check(&rules);
    }

    /// NodePorts answer on the host's 127.0.0.1 too: DNAT in the output hook, and with
    /// `externalTrafficPolicy: Local` the cluster-wide policy for the host's own clients.
    #[test]
    fn nodeports_answer_on_loopback() {
        let mut p = port("web", &[("10.42.1.2", "n1", true)]);
        p.external_local = true;
        let rules = ruleset(&[p], &nodes(), &opts());
        let output = rules.lines().find(|l| l.contains("chain nat-output")).unwrap();
        assert!(
            output.contains("ip daddr 127.0.0.1 meta l4proto . th dport vmap @service-nodeports"),
            "{output}"
        );
        assert!(rules.contains("ip daddr 127.0.0.1 goto svc-0"), "{rules}");
        nft_check(&rules);
    }

    fn nft_check(text: &str) {
        let mut child = std::process::Command::new("nft")
            .args(["-c", "-f", "-"])
            .stdin(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("nft (Debian package nftables) is installed");
        use std::io::Write;
        child.stdin.take().unwrap().write_all(text.as_bytes()).unwrap();
        let out = child.wait_with_output().unwrap();
        assert!(out.status.success(), "{}\n{text}", String::from_utf8_lossy(&out.stderr));
    }

    /// The kernel's own parser accepts what we write (`nft -c` checks without applying; CI
    /// runs as root with Debian's nftables installed).
    #[test]
    fn nft_accepts_the_ruleset() {
        let mut p = port("web", &[("10.42.1.2", "n1", true), ("10.42.2.2", "n2", true)]);
        p.affinity_seconds = Some(60);
        p.internal_local = true;
        let mut q = port("lb", &[("10.42.1.3", "n1", true)]);
        q.cluster_ip = Some("10.43.0.6".parse().unwrap());
        q.load_balancer = true;
        q.external_local = true;
        q.node_port = Some(30081);
        let empty = port("none", &[]);
        for ports in [vec![p, q, empty], vec![]] {
            nft_check(&ruleset(&ports, &nodes(), &opts()));
        }
    }
}
