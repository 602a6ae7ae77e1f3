//! `skiff agent`: a node (or simulated nodes) joining a skiff server from this host.

use std::path::PathBuf;

use anyhow::Context;
use base64::Engine;
use clap::Args;
use kube::config::{KubeConfigOptions, Kubeconfig};

/// Flags of `skiff agent`.
#[derive(Args, Debug)]
pub struct AgentArgs {
    /// The API server URL (`https://HOST:6443`).
    #[arg(long)]
    server: String,
    /// Bearer token (the admin token in the server's `DATA/pki/admin.token`).
    #[arg(long, env = "SKIFF_TOKEN")]
    token: String,
    /// The server's CA certificate (the server's `DATA/pki/ca.crt`). It also verifies the API
    /// server's client certificate on this node's kubelet API; without it the CA is read from
    /// the `kube-root-ca.crt` ConfigMap (trusting the server on first use).
    #[arg(long)]
    ca_file: Option<PathBuf>,
    /// Node name (default: the host name).
    #[arg(long)]
    name: Option<String>,
    /// Directory for pods and logs.
    #[arg(long, default_value = "/var/lib/skiff-agent")]
    data_dir: PathBuf,
    /// Address other hosts reach this node at (InternalIP).
    #[arg(long, default_value = "127.0.0.1")]
    node_ip: String,
    /// Port of the agent's kubelet API (logs, exec, port-forward).
    #[arg(long, default_value_t = 10250)]
    kubelet_port: u16,
    /// The node lease's duration in seconds (kubelet's flag); the lease is renewed every
    /// quarter of it. Keep it at most the server's `--node-monitor-grace-period`.
    #[arg(long, default_value_t = 40)]
    node_lease_duration_seconds: u16,
    /// Instead of a process node, register this many simulated nodes.
    #[arg(long, default_value_t = 0)]
    sim_nodes: usize,
}

/// The cluster CA: `--ca-file`, else the `kube-root-ca.crt` ConfigMap the server publishes.
async fn cluster_ca(args: &AgentArgs, client: &kube::Client) -> anyhow::Result<String> {
    if let Some(f) = &args.ca_file {
        return std::fs::read_to_string(f).with_context(|| format!("cannot read --ca-file {}", f.display()));
    }
    let cms: kube::Api<k8s_openapi::api::core::v1::ConfigMap> = kube::Api::namespaced(client.clone(), "kube-system");
    let cm = cms.get("kube-root-ca.crt").await.context(
        "cannot read the cluster CA from ConfigMap kube-system/kube-root-ca.crt (pass --ca-file DATA/pki/ca.crt)",
    )?;
    cm.data
        .and_then(|d| d.get("ca.crt").cloned())
        .context("ConfigMap kube-system/kube-root-ca.crt has no ca.crt (pass --ca-file DATA/pki/ca.crt)")
}

/// A client for the server from the flags (token and CA as a kubeconfig would give them).
async fn client(args: &AgentArgs) -> anyhow::Result<kube::Client> {
    let ca = match &args.ca_file {
        Some(f) => {
            let pem = std::fs::read(f).with_context(|| format!("cannot read --ca-file {}", f.display()))?;
            format!(
                "    certificate-authority-data: {}\n",
                base64::engine::general_purpose::STANDARD.encode(pem)
            )
        }
        None => "    insecure-skip-tls-verify: true\n".to_string(),
    };
    let yaml = format!(
        "apiVersion: v1\nkind: Config\nclusters:\n- name: skiff\n  cluster:\n    server: {}\n{ca}contexts:\n- name: skiff\n  context:\n    cluster: skiff\n    user: agent\ncurrent-context: skiff\nusers:\n- name: agent\n  user:\n    token: {}\n",
        args.server, args.token
    );
    let kc = Kubeconfig::from_yaml(&yaml).context("building the client configuration")?;
    let cfg = kube::Config::from_custom_kubeconfig(kc, &KubeConfigOptions::default()).await?;
    Ok(kube::Client::try_from(cfg)?)
}

/// Joins the server and runs until interrupted.
pub async fn run(args: AgentArgs) -> anyhow::Result<()> {
    if args.ca_file.is_none() {
        tracing::warn!("no --ca-file: the server's certificate is not verified");
    }
    let client = client(&args).await?;
    let name = args
        .name
        .clone()
        .unwrap_or_else(|| gethostname::gethostname().to_string_lossy().into_owned());
    let work = async {
        if args.sim_nodes > 0 {
            let opts = skiff_agent::sim::SimOptions {
                count: args.sim_nodes,
                name_prefix: format!("{name}-sim-"),
                lease_interval: skiff_agent::node::renew_interval(args.node_lease_duration_seconds.into()),
                // Pod ranges come from the server's node IPAM, unique across the cluster.
                pod_cidr_base: None,
                ..Default::default()
            };
            skiff_agent::sim::run(client, opts).await.context("simulated nodes")
        } else {
            let mut opts = skiff_agent::process::ProcessOptions::new(&name, &args.data_dir);
            opts.node_ip = args.node_ip.clone();
            opts.kubelet_port = args.kubelet_port;
            // No CA key on this host: the serving certificate is self-signed, as the kubelet's
            // without --tls-cert-file; client certificates are checked against the CA.
            opts.cluster_ca = Some(skiff_agent::kubelet_tls::ClusterCa {
                cert_pem: cluster_ca(&args, &client).await?,
                key_pem: None,
            });
            opts.lease_duration_seconds = args.node_lease_duration_seconds.into();
            skiff_agent::process::run(client, opts)
                .await
                .with_context(|| format!("node {name}"))
        }
    };
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    tokio::select! {
        r = work => r,
        _ = tokio::signal::ctrl_c() => Ok(()),
        _ = term.recv() => Ok(()),
    }
}
