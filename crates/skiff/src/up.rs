//! `skiff up`: starts every component in this process and runs until interrupted.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use clap::Args;
use skiff_agent::process::network::BridgeOptions;
use skiff_apiserver::alloc::ServiceCidr;
use skiff_controllers::informer::Informers;

/// Flags of `skiff up`.
#[derive(Args, Debug)]
pub struct UpArgs {
    /// Directory for the store, certificates and kubeconfig (default `~/.skiff`).
    #[arg(long)]
    data_dir: Option<PathBuf>,
    /// Address the API server listens on.
    #[arg(long, default_value = "127.0.0.1:6443")]
    listen: SocketAddr,
    /// Seconds without heartbeats before a node is Unknown (upstream 40; at least 2). This
    /// cluster's own nodes renew their leases four times per period; agents that join need
    /// `--node-lease-duration-seconds` at most this.
    #[arg(long, default_value_t = 40)]
    node_monitor_grace_period: u64,
    /// Seconds pods tolerate a not-ready or unreachable node before eviction (upstream 300).
    #[arg(long, default_value_t = 300)]
    default_toleration_seconds: i64,
    /// Node agents running pods as processes (`skiff-node-1`…), each with its own directory;
    /// 0 runs a control plane alone.
    #[arg(long, default_value_t = 1)]
    nodes: usize,
    /// Merge a `skiff` context into the first file of `$KUBECONFIG` (else `~/.kube/config`)
    /// and make it current, saving the file as it was to `<file>.skiff-backup` once.
    #[arg(long, default_value_t = true, num_args = 0..=1, default_missing_value = "true", action = clap::ArgAction::Set)]
    kubeconfig_merge: bool,
    /// CPU capacity of each simulated node.
    #[arg(long, default_value = "4")]
    sim_node_cpu: String,
    /// Memory capacity of each simulated node.
    #[arg(long, default_value = "16Gi")]
    sim_node_memory: String,
    /// Pod capacity of each simulated node.
    #[arg(long, default_value_t = 110)]
    sim_node_pods: u32,
    /// Seconds a Job-like pod (restartPolicy Never/OnFailure) runs on a simulated node unless
    /// its `skiff.dev/sim-duration` annotation says otherwise.
    #[arg(long, default_value_t = 2.0)]
    sim_job_seconds: f64,
    /// Simulated nodes to register (`skiff-sim-1`…): their pods run without processes.
    #[arg(long, default_value_t = 0)]
    sim_nodes: usize,
    /// First container restart back-off of process nodes, in milliseconds (upstream 10 s);
    /// for tests.
    #[arg(long, default_value_t = 10_000, hide = true)]
    node_backoff_base_ms: u64,
    /// API server serving limits over their upstream defaults, for tests: `name=value,...`
    /// (e.g. `idle-timeout=2s,max-mutating-requests-inflight=1`; see skiff_apiserver::limits).
    #[arg(long, default_value = "", hide = true)]
    api_serving_limits: String,
    /// Pod networking of process nodes: `bridge` (a network namespace per pod on a bridge per
    /// node, services through nftables; needs root, nftables and the CNI plugins) or `host`
    /// (pods share the host's network; services on 127.43.0.0/16 through a userspace proxy).
    /// Default: bridge when it can work here.
    #[arg(long, value_enum)]
    network: Option<Network>,
    /// The Service ClusterIP range (default 10.43.0.0/16 in bridge networking, 127.43.0.0/16
    /// in host networking).
    #[arg(long)]
    service_cidr: Option<ServiceCidr>,
    /// The pod network of bridge networking; node N gets the /24 at N (10.42.N.0/24) and
    /// .0.1 serves the cluster DNS.
    #[arg(long, default_value = "10.42.0.0/16")]
    cluster_cidr: ServiceCidr,
}

/// How pods are networked.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum Network {
    /// A network namespace per pod on a bridge per node.
    Bridge,
    /// Pods share the host's network.
    Host,
}

/// What bridge networking needs that is missing here, if anything.
pub fn bridge_missing() -> Option<&'static str> {
    let cni = std::path::Path::new(skiff_agent::process::network::CNI_BIN);
    if !skiff_agent::process::network::available(cni) {
        return Some("root and the CNI plugins (Debian package containernetworking-plugins)");
    }
    let on_path =
        |p: &str| std::env::var_os("PATH").is_some_and(|path| std::env::split_paths(&path).any(|d| d.join(p).exists()));
    if !on_path("nft") || !on_path("ip") {
        return Some("nft and ip (Debian packages nftables and iproute2)");
    }
    None
}

/// A short id of this cluster for the names of its host-wide objects (nftables table,
/// interfaces), so clusters of different data directories never touch each other's.
fn cluster_id(data_dir: &std::path::Path) -> String {
    use std::hash::{Hash, Hasher};
    let dir = std::fs::canonicalize(data_dir).unwrap_or_else(|_| data_dir.to_path_buf());
    let mut h = std::collections::hash_map::DefaultHasher::new();
    dir.hash(&mut h);
    format!("{:08x}", h.finish() as u32)
}

fn default_data_dir() -> PathBuf {
    std::env::var_os("HOME")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("."))
        .join(".skiff")
}

/// The tasks of every component in this process.
pub type Components = tokio::task::JoinSet<anyhow::Result<()>>;

/// Starts the controllers of kube-controller-manager, sharing one set of informers.
pub fn spawn_controllers(components: &mut Components, informers: &Informers) {
    use skiff_controllers as c;
    macro_rules! spawn {
        ($arg:expr => $($module:ident),*) => {$({
            let arg = $arg;
            components.spawn(async move {
                c::$module::run(arg).await.context(concat!(stringify!($module), " controller"))
            });
        })*};
    }
    spawn!(informers.clone() => replicaset, deployment, statefulset, daemonset, job, cronjob);
    spawn!(informers.client().clone() => gc, namespace, resourcequota);
    let i = informers.clone();
    components.spawn(async move { c::endpoints::run_endpoints(i).await.context("endpoints controller") });
    let i = informers.clone();
    components.spawn(async move { c::endpoints::run_slices(i).await.context("endpointslice controller") });
    let i = informers.clone();
    components.spawn(async move { c::servicelb::run(i).await.context("service load balancer") });
}

/// Starts the API server and the components, and waits for Ctrl-C or SIGTERM.
pub async fn run(args: UpArgs) -> anyhow::Result<()> {
    let heartbeat = crate::up_nodes::Heartbeat::for_grace_period(args.node_monitor_grace_period)?;
    let data_dir = args.data_dir.clone().unwrap_or_else(default_data_dir);
    let network = match args.network {
        Some(Network::Bridge) => {
            if let Some(what) = bridge_missing() {
                anyhow::bail!("bridge networking needs {what}");
            }
            Network::Bridge
        }
        Some(Network::Host) => Network::Host,
        None => match bridge_missing() {
            None => Network::Bridge,
            Some(what) => {
                if args.nodes > 0 {
                    tracing::warn!("host networking: bridge networking needs {what}");
                }
                Network::Host
            }
        },
    };
    std::fs::create_dir_all(&data_dir).with_context(|| format!("creating {}", data_dir.display()))?;
    let data_dir = std::fs::canonicalize(&data_dir).unwrap_or(data_dir);
    let id = cluster_id(&data_dir);
    let mut claim = crate::claim::lock_data_dir(&data_dir)?;
    let holdings = crate::claim::register(&mut claim, &id, &data_dir, |live| {
        holdings(&args, network, &id, &data_dir, live)
    })?;
    let service_cidr = holdings.service_cidr;
    let cfg = skiff_apiserver::Config {
        listen: args.listen,
        service_cidr,
        limits: skiff_apiserver::limits::ServingLimits::default().with_overrides(&args.api_serving_limits)?,
        ..skiff_apiserver::Config::loopback(&data_dir)
    };
    let running = skiff_apiserver::start(cfg).await.context("starting the API server")?;
    running
        .server
        .set_default_toleration_seconds(args.default_toleration_seconds);
    let client = running.client();
    let lifecycle = skiff_controllers::node_lifecycle::Options {
        grace_period: Duration::from_secs(args.node_monitor_grace_period),
        monitor_period: heartbeat.monitor_period,
    };
    let mut components = Components::new();
    let informers = Informers::new(client.clone());
    let i = informers.clone();
    components.spawn(async move {
        skiff_controllers::node_lifecycle::run(i, lifecycle)
            .await
            .context("node lifecycle controller")
    });
    let c = client.clone();
    let local_path = skiff_controllers::local_path::Options {
        base_dir: data_dir.join("storage"),
    };
    components.spawn(async move {
        skiff_controllers::local_path::run(c, local_path)
            .await
            .context("local-path provisioner")
    });
    spawn_controllers(&mut components, &informers);
    let ipam = crate::up_nodes::ipam_options(&args.cluster_cidr, network == Network::Bridge, args.nodes);
    let i = informers.clone();
    components.spawn(async move {
        skiff_controllers::nodeipam::run(i, ipam)
            .await
            .context("node IPAM controller")
    });
    let c = client.clone();
    // The address the cluster's own services (the DNS server) listen on in bridge networking.
    let cluster_addr = args.cluster_cidr.nth(1);
    let dns_listen = match network {
        Network::Bridge => {
            let proxy = skiff_proxy::nft::Options {
                table: format!("skiff-{id}"),
                cluster_cidr: args.cluster_cidr.to_string(),
                service_cidr: service_cidr.to_string(),
                link: format!("skd{id}"),
                local_addrs: vec![cluster_addr],
            };
            // The DNS server's address must exist before it binds.
            skiff_proxy::nft::setup(&proxy)
                .await
                .context("setting up the service network")?;
            components.spawn(async move { skiff_proxy::nft::run(c, proxy).await.context("service proxy") });
            SocketAddr::new(cluster_addr.into(), 53)
        }
        Network::Host => {
            let proxy = skiff_proxy::userspace::Options {
                node_ips: vec![std::net::Ipv4Addr::LOCALHOST.into()],
            };
            components.spawn(async move { skiff_proxy::userspace::run(c, proxy).await.context("service proxy") });
            SocketAddr::from(([127, 0, 0, 1], 0))
        }
    };
    let dns_opts = skiff_proxy::dns::DnsOptions {
        listen: vec![dns_listen],
        ..Default::default()
    };
    let dns = skiff_proxy::dns::start(client.clone(), dns_opts)
        .await
        .map_err(|e| anyhow::anyhow!("starting the cluster DNS: {e}"))?;
    let dns_addr = dns.addrs().first().copied().context("the cluster DNS has no address")?;
    skiff_proxy::dns::publish(&client, service_cidr.dns().into(), dns_addr)
        .await
        .context("publishing the kube-dns service")?;
    components.spawn(async move { dns.wait().await.context("cluster DNS") });
    let (c, ca) = (client.clone(), running.ca_pem.clone());
    components.spawn(async move {
        skiff_controllers::serviceaccount::run_with(c, Some(ca))
            .await
            .context("serviceaccount controller")
    });
    let c = client.clone();
    components.spawn(async move {
        skiff_scheduler::run(c, skiff_scheduler::SchedulerOptions::default())
            .await
            .context("scheduler")
    });
    for i in 1..=args.nodes {
        let name = format!("skiff-node-{i}");
        let mut opts = skiff_agent::process::ProcessOptions::new(&name, data_dir.join("nodes").join(&name));
        opts.backoff_base = Duration::from_millis(args.node_backoff_base_ms);
        opts.cluster_dns = Some(service_cidr.dns());
        // The kubelet API serves a certificate signed by the cluster CA.
        opts.cluster_ca = Some(skiff_agent::kubelet_tls::ClusterCa {
            cert_pem: running.ca_pem.clone(),
            key_pem: Some(running.ca_key_pem.clone()),
        });
        // The whole cluster directory (admin token, store) is hidden from pods, not only the node's.
        opts.hidden.push(data_dir.clone());
        opts.lease_duration_seconds = heartbeat.lease_duration_seconds;
        if network == Network::Bridge {
            let cidr = (args.cluster_cidr.nth(u32::try_from(i)? << 8), 24);
            opts.bridge = Some(BridgeOptions::new(cidr));
        }
        let c = client.clone();
        components.spawn(async move {
            skiff_agent::process::run(c, opts)
                .await
                .with_context(|| format!("node {name}"))
        });
    }
    if args.sim_nodes > 0 {
        let opts = skiff_agent::sim::SimOptions {
            count: args.sim_nodes,
            cpu: args.sim_node_cpu.clone(),
            memory: args.sim_node_memory.clone(),
            pods: args.sim_node_pods,
            job_duration: Duration::from_secs_f64(args.sim_job_seconds.max(0.0)),
            lease_interval: heartbeat.renew_interval(),
            // Pod ranges come from the node IPAM, unique across every kind of node.
            pod_cidr_base: None,
            // Beside real nodes, only pods that ask for it land where nothing runs.
            taint: args.nodes > 0,
            ..Default::default()
        };
        components.spawn(async move { skiff_agent::sim::run(client, opts).await.context("simulated nodes") });
    }
    println!("skiff is up at {}", running.url);
    if args.nodes > 0 && args.sim_nodes > 0 {
        println!("{}", crate::up_nodes::SIM_TAINT_NOTE);
    }
    println!("kubeconfig: {}", running.kubeconfig.display());
    if args.kubeconfig_merge {
        crate::up_nodes::merge_kubeconfig(&running.kubeconfig);
    } else {
        println!("try: kubectl --kubeconfig {} get all -A", running.kubeconfig.display());
    }
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
        Some(done) = components.join_next() => {
            // A component never returns while healthy.
            return match done {
                Ok(Err(e)) => Err(e),
                Ok(Ok(())) => Err(anyhow::anyhow!("a component stopped unexpectedly")),
                Err(e) => Err(anyhow::anyhow!("a component panicked: {e}")),
            };
        }
    }
    tracing::info!("shutting down");
    // Node agents stop their containers when their tasks end.
    components.shutdown().await;
    tracing::debug!("components stopped");
    running.shutdown().await;
    tracing::debug!("store closed");
    drop(claim);
    Ok(())
}

/// The ranges and host objects this cluster takes, or the one-line refusal naming the live
/// cluster that holds one of them. Host networking without `--service-cidr` takes the first
/// loopback range no live cluster uses.
fn holdings(
    args: &UpArgs,
    network: Network,
    id: &str,
    data_dir: &std::path::Path,
    live: &[crate::claim::Live],
) -> anyhow::Result<crate::claim::Holdings> {
    use crate::claim::{free_loopback_range, in_use, Holdings};
    let service_cidr = match (args.service_cidr, network) {
        (Some(c), _) => c,
        (None, Network::Bridge) => ServiceCidr::BRIDGE,
        (None, Network::Host) => free_loopback_range(live)
            .ok_or_else(|| anyhow::anyhow!("every loopback service range is in use; choose one with --service-cidr"))?,
    };
    let ours = match network {
        Network::Bridge => Holdings {
            cluster_cidr: Some(args.cluster_cidr),
            service_cidr,
            table: Some(format!("skiff-{id}")),
            links: std::iter::once(format!("skd{id}"))
                .chain((1..=args.nodes).map(|i| {
                    let name = format!("skiff-node-{i}");
                    let dir = data_dir.join("nodes").join(&name);
                    skiff_agent::process::bridge_name(&skiff_agent::process::ProcessOptions::new(&name, dir))
                }))
                .collect(),
        },
        Network::Host => Holdings {
            cluster_cidr: None,
            service_cidr,
            table: None,
            links: Vec::new(),
        },
    };
    for l in live {
        if let Some(range) = ours.conflict(&l.holdings) {
            let flags = match network {
                Network::Bridge => "--cluster-cidr and --service-cidr",
                Network::Host => "--service-cidr",
            };
            return Err(in_use(range, l, flags));
        }
    }
    Ok(ours)
}
