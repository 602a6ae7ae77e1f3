//! `skiff bench`: benchmarks that print numbers (see BENCHMARKS.md).

use std::path::PathBuf;
use std::time::Duration;

use clap::Subcommand;

#[path = "bench_api/mod.rs"]
pub mod api;
#[path = "bench_controllers.rs"]
pub mod controllers;
#[path = "bench_proxy.rs"]
pub mod proxy;

/// What to measure.
#[derive(Subcommand)]
pub enum What {
    /// Durable writes/s of the embedded store against Debian's etcd-server, same load.
    Store {
        /// Seconds per concurrency level.
        #[arg(long, default_value_t = 5)]
        seconds: u64,
        /// Concurrent clients per level, comma separated.
        #[arg(long, value_delimiter = ',', default_value = "1,16,64")]
        clients: Vec<usize>,
        /// The etcd binary.
        #[arg(long, default_value = "/usr/bin/etcd")]
        etcd: PathBuf,
        /// Directory for the data (a real disk: fsync is measured).
        #[arg(long)]
        dir: Option<PathBuf>,
    },
    /// The API server in this process, driven over HTTPS/HTTP2: pod creates/s and latency,
    /// LIST of many pods (JSON and Table), watch fan-out.
    Api {
        /// Seconds per create concurrency level.
        #[arg(long, default_value_t = 5.0)]
        seconds: f64,
        /// Concurrent create clients per level (one connection each), comma separated.
        #[arg(long, value_delimiter = ',', default_value = "1,16,64")]
        clients: Vec<usize>,
        /// Pods in the namespace that is listed.
        #[arg(long, default_value_t = 10_000)]
        list_pods: usize,
        /// Timed LIST requests of each kind (JSON, Table).
        #[arg(long, default_value_t = 20)]
        list_repeats: usize,
        /// Concurrent watchers (one connection each).
        #[arg(long, default_value_t = 100)]
        watchers: usize,
        /// Configmaps created while they watch.
        #[arg(long, default_value_t = 200)]
        events: usize,
        /// Whole runs, each on a fresh server; prints the medians when more than one.
        #[arg(long, default_value_t = 1)]
        runs: usize,
        /// Directory for the data (a real disk: fsync is measured).
        #[arg(long)]
        dir: Option<PathBuf>,
    },
    /// The scheduler on the SchedulingBasic shape: nodes, placed pods, then measured pods/s.
    Scheduler {
        /// Nodes.
        #[arg(long, default_value_t = 5_000)]
        nodes: usize,
        /// Pods placed before measuring.
        #[arg(long, default_value_t = 1_000)]
        initial_pods: usize,
        /// Pods measured.
        #[arg(long, default_value_t = 10_000)]
        pods: usize,
        /// Directory for the data.
        #[arg(long)]
        dir: Option<PathBuf>,
    },
    /// Deployments on simulated nodes with every controller: time until all are Available,
    /// Deployments/s, pods/s and peak memory.
    Controllers {
        /// Deployments created.
        #[arg(long, default_value_t = 1_000)]
        deployments: usize,
        /// Replicas of each Deployment.
        #[arg(long, default_value_t = 10)]
        replicas: i32,
        /// Simulated nodes.
        #[arg(long, default_value_t = 1_000)]
        nodes: usize,
        /// Concurrent creates.
        #[arg(long, default_value_t = 32)]
        concurrency: usize,
        /// Seconds to wait for every Deployment to be Available.
        #[arg(long, default_value_t = 600)]
        timeout: u64,
        /// Directory for the data.
        #[arg(long)]
        dir: Option<PathBuf>,
    },
    /// HTTP through a ClusterIP against the same backend pod directly (requests/s, latency),
    /// and the time from an endpoint change to traffic following it.
    Proxy {
        /// `bridge` (nftables; the default when root with nft and the CNI plugins) or `host`
        /// (userspace proxy).
        #[arg(long)]
        network: Option<String>,
        /// Concurrent keep-alive connections.
        #[arg(long, default_value_t = 16)]
        connections: usize,
        /// Seconds per measured round.
        #[arg(long, default_value_t = 3.0)]
        seconds: f64,
        /// Rounds per path, alternating direct and ClusterIP.
        #[arg(long, default_value_t = 5)]
        rounds: usize,
        /// Endpoint changes measured.
        #[arg(long, default_value_t = 5)]
        changes: usize,
        /// Directory for the data.
        #[arg(long)]
        dir: Option<PathBuf>,
    },
    /// The backend pods of `bench proxy` run this.
    #[command(hide = true)]
    ProxyBackend {
        /// Port to serve on.
        #[arg(long)]
        port: u16,
    },
    /// Pod startup latency on a process node (create -> Running seen by a watch).
    Pods {
        /// Pods created.
        #[arg(long, default_value_t = 200)]
        pods: usize,
        /// Creates per second.
        #[arg(long, default_value_t = 20.0)]
        rate: f64,
        /// Directory for the data.
        #[arg(long)]
        dir: Option<PathBuf>,
    },
}

/// Runs one benchmark and prints its report.
pub async fn run(what: What) -> anyhow::Result<()> {
    match what {
        What::Store {
            seconds,
            clients,
            etcd,
            dir,
        } => {
            let opts = skiff_store::bench::BenchOpts {
                clients,
                duration: Duration::from_secs(seconds),
                etcd_binary: etcd,
                dir,
                ..Default::default()
            };
            println!("{}", skiff_store::bench::run(opts).await?);
        }
        What::Api {
            seconds,
            clients,
            list_pods,
            list_repeats,
            watchers,
            events,
            runs,
            dir,
        } => {
            let opts = api::Opts {
                clients,
                duration: Duration::from_secs_f64(seconds),
                list_pods,
                list_repeats,
                watchers,
                watch_events: events,
                runs,
                dir,
                ..Default::default()
            };
            print!("{}", api::run(opts).await?);
        }
        What::Scheduler {
            nodes,
            initial_pods,
            pods,
            dir,
        } => {
            let opts = skiff_scheduler::bench::BenchOpts {
                nodes,
                initial_pods,
                measured_pods: pods,
                dir,
                ..Default::default()
            };
            println!("{}", skiff_scheduler::bench::run(opts).await?);
        }
        What::Controllers {
            deployments,
            replicas,
            nodes,
            concurrency,
            timeout,
            dir,
        } => {
            let opts = controllers::Opts {
                deployments,
                replicas,
                nodes,
                concurrency,
                dir,
                timeout: Duration::from_secs(timeout),
            };
            print!("{}", controllers::run(opts).await?);
        }
        What::Proxy {
            network,
            connections,
            seconds,
            rounds,
            changes,
            dir,
        } => {
            let bridge = match network.as_deref() {
                Some("bridge") => true,
                Some("host") => false,
                Some(other) => anyhow::bail!("--network is bridge or host, not {other:?}"),
                None => crate::up::bridge_missing().is_none(),
            };
            let opts = proxy::Opts {
                bridge,
                connections,
                seconds,
                rounds,
                changes,
                dir,
            };
            print!("{}", proxy::run(opts).await?);
        }
        What::ProxyBackend { port } => proxy::backend(port).await?,
        What::Pods { pods, rate, dir } => {
            let opts = skiff_agent::process::bench::BenchOpts {
                pods,
                rate,
                dir,
                ..Default::default()
            };
            print!("{}", skiff_agent::process::bench::run(opts).await?);
        }
    }
    Ok(())
}
