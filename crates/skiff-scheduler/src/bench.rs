//! `skiff bench scheduler`: upstream's SchedulingBasic shape (scheduler_perf) against an
//! in-process API server. Nodes are Node objects only; some pods are already placed; then
//! the measured pods are created at a high rate while the scheduler runs. Reports pods/s
//! from the first measured create to the last binding observed through a watch, and the
//! create→bound latency percentiles.

use std::borrow::Cow;
use std::collections::HashMap;
use std::fmt::Write as _;
use std::path::PathBuf;
use std::time::Duration;

use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::core::v1::{Node, Pod};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::api::PostParams;
use kube::runtime::watcher;
use kube::{Api, Client};
use serde::Deserialize;
use serde_json::json;
use tokio::sync::mpsc;
use tokio::time::Instant;

use crate::{Error, SchedulerOptions};

/// Benchmark sizes and knobs.
#[derive(Debug, Clone)]
pub struct BenchOpts {
    /// Nodes (upstream SchedulingBasic: 5,000).
    pub nodes: usize,
    /// Pods placed before measuring (created with `spec.nodeName`; upstream: 1,000).
    pub initial_pods: usize,
    /// Pods measured (upstream: 10,000 at 5,000 nodes).
    pub measured_pods: usize,
    /// Concurrent create requests.
    pub create_concurrency: usize,
    /// Scheduler bindings in flight.
    pub parallelism: usize,
    /// Scheduler `percentageOfNodesToScore` (`None`: adaptive).
    pub percentage_of_nodes_to_score: Option<u32>,
    /// Directory for the store (a temporary directory when `None`).
    pub dir: Option<PathBuf>,
    /// Give up after this long.
    pub timeout: Duration,
}

impl Default for BenchOpts {
    fn default() -> Self {
        BenchOpts {
            nodes: 5_000,
            initial_pods: 1_000,
            measured_pods: 10_000,
            create_concurrency: 128,
            parallelism: SchedulerOptions::default().parallelism,
            percentage_of_nodes_to_score: None,
            dir: None,
            timeout: Duration::from_secs(300),
        }
    }
}

/// Just enough of a pod to see its binding, so the observer's decoding is not measured as
/// scheduler cost.
#[derive(Clone, Debug, Deserialize)]
struct BoundPod {
    metadata: ObjectMeta,
    #[serde(default)]
    spec: BoundSpec,
}

#[derive(Clone, Debug, Default, Deserialize)]
struct BoundSpec {
    #[serde(rename = "nodeName", default)]
    node_name: Option<String>,
}

impl kube::Resource for BoundPod {
    type DynamicType = ();
    type Scope = k8s_openapi::NamespaceResourceScope;

    fn kind(_: &()) -> Cow<'_, str> {
        "Pod".into()
    }
    fn group(_: &()) -> Cow<'_, str> {
        "".into()
    }
    fn version(_: &()) -> Cow<'_, str> {
        "v1".into()
    }
    fn plural(_: &()) -> Cow<'_, str> {
        "pods".into()
    }
    fn meta(&self) -> &ObjectMeta {
        &self.metadata
    }
    fn meta_mut(&mut self) -> &mut ObjectMeta {
        &mut self.metadata
    }
}

fn bench_err(what: &str) -> impl Fn(kube::Error) -> Error + '_ {
    move |e| Error::Bench(format!("{what}: {e}"))
}

/// upstream scheduler_perf `node-default.yaml`: 4 cpu, 32Gi, 110 pods, Ready.
fn node_object(name: &str) -> Node {
    serde_json::from_value(json!({
        "metadata": {"name": name, "labels": {"kubernetes.io/hostname": name}},
        "status": {
            "capacity": {"cpu": "4", "memory": "32Gi", "pods": "110"},
            "allocatable": {"cpu": "4", "memory": "32Gi", "pods": "110"},
            "conditions": [{"type": "Ready", "status": "True", "reason": "KubeletReady"}],
        }
    }))
    .expect("valid node")
}

/// upstream scheduler_perf `pod-default.yaml`: one pause container, 100m and 500Mi.
fn pod_object(name: &str, node: Option<&str>) -> Pod {
    let mut p: Pod = serde_json::from_value(json!({
        "metadata": {"name": name},
        "spec": {"containers": [{
            "name": "pause",
            "image": "registry.k8s.io/pause:3.10",
            "ports": [{"containerPort": 80}],
            "resources": {
                "requests": {"cpu": "100m", "memory": "500Mi"},
                "limits": {"cpu": "100m", "memory": "500Mi"},
            },
        }]}
    }))
    .expect("valid pod");
    if let (Some(spec), Some(n)) = (p.spec.as_mut(), node) {
        spec.node_name = Some(n.to_string());
    }
    p
}

/// Creates the cluster objects, runs the scheduler and reports throughput and latency.
pub async fn run(opts: BenchOpts) -> Result<String, Error> {
    let tmp;
    let dir = match &opts.dir {
        Some(d) => tempfile::tempdir_in(d),
        None => tempfile::tempdir(),
    };
    tmp = dir.map_err(|e| Error::Bench(format!("temporary directory: {e}")))?;
    let running = skiff_apiserver::start(skiff_apiserver::Config::loopback(tmp.path().to_path_buf()))
        .await
        .map_err(|e| Error::Bench(format!("starting the API server: {e}")))?;
    let client = skiff_apiserver::local::client(running.server.clone());
    let result = measure(client, &opts).await;
    running.shutdown().await;
    drop(tmp);
    result
}

async fn measure(client: Client, opts: &BenchOpts) -> Result<String, Error> {
    let ns = "default";
    let mut out = String::new();
    let t = Instant::now();
    let nodes: Api<Node> = Api::all(client.clone());
    futures::stream::iter(0..opts.nodes)
        .map(|i| {
            let nodes = nodes.clone();
            async move {
                nodes
                    .create(&PostParams::default(), &node_object(&format!("node-{i}")))
                    .await
            }
        })
        .buffer_unordered(64)
        .try_collect::<Vec<_>>()
        .await
        .map_err(bench_err("creating nodes"))?;
    let nodes_secs = t.elapsed().as_secs_f64();

    let pods: Api<Pod> = Api::namespaced(client.clone(), ns);
    let t = Instant::now();
    let n_nodes = opts.nodes.max(1);
    futures::stream::iter(0..opts.initial_pods)
        .map(|i| {
            let pods = pods.clone();
            async move {
                let node = format!("node-{}", i % n_nodes);
                pods.create(&PostParams::default(), &pod_object(&format!("placed-{i}"), Some(&node)))
                    .await
            }
        })
        .buffer_unordered(64)
        .try_collect::<Vec<_>>()
        .await
        .map_err(bench_err("creating placed pods"))?;
    let placed_secs = t.elapsed().as_secs_f64();

    // The observer: first time each pod is seen bound.
    let (bound_tx, mut bound_rx) = mpsc::unbounded_channel::<(String, Instant)>();
    let observer = {
        let api: Api<BoundPod> = Api::namespaced(client.clone(), ns);
        tokio::spawn(async move {
            let mut seen = std::collections::HashSet::new();
            let mut s = std::pin::pin!(watcher::watcher(api, watcher::Config::default()));
            while let Some(ev) = s.next().await {
                let objs = match ev {
                    Ok(watcher::Event::Apply(p)) | Ok(watcher::Event::InitApply(p)) => p,
                    _ => continue,
                };
                if objs.spec.node_name.as_deref().is_some_and(|n| !n.is_empty()) {
                    let name = objs.metadata.name.unwrap_or_default();
                    if seen.insert(name.clone()) && bound_tx.send((name, Instant::now())).is_err() {
                        return;
                    }
                }
            }
        })
    };

    let sched_opts = SchedulerOptions {
        parallelism: opts.parallelism,
        percentage_of_nodes_to_score: opts.percentage_of_nodes_to_score,
        ..Default::default()
    };
    let scheduler = tokio::spawn(crate::run(client.clone(), sched_opts));

    // Warm-up: the scheduler has synced once it binds this pod.
    pods.create(&PostParams::default(), &pod_object("warmup", None))
        .await
        .map_err(bench_err("creating the warm-up pod"))?;
    let deadline = Instant::now() + opts.timeout;
    loop {
        match tokio::time::timeout_at(deadline, bound_rx.recv()).await {
            Ok(Some((name, _))) if name == "warmup" => break,
            Ok(Some(_)) => continue,
            _ => return Err(Error::Bench("the warm-up pod was not scheduled".into())),
        }
    }

    // Measured phase.
    let n = opts.measured_pods;
    let start = Instant::now();
    let creator = {
        let pods = pods.clone();
        let conc = opts.create_concurrency.max(1);
        tokio::spawn(async move {
            futures::stream::iter(0..n)
                .map(|i| {
                    let pods = pods.clone();
                    async move {
                        let issued = Instant::now();
                        pods.create(&PostParams::default(), &pod_object(&format!("pod-{i}"), None))
                            .await
                            .map(|_| (i, issued))
                    }
                })
                .buffer_unordered(conc)
                .try_collect::<Vec<_>>()
                .await
        })
    };
    let mut bound: HashMap<String, Instant> = HashMap::with_capacity(n);
    while bound.len() < n {
        match tokio::time::timeout_at(deadline, bound_rx.recv()).await {
            Ok(Some((name, at))) => {
                if name.starts_with("pod-") {
                    bound.insert(name, at);
                }
            }
            _ => break,
        }
    }
    let created = creator
        .await
        .map_err(|e| Error::Bench(format!("creator: {e}")))?
        .map_err(bench_err("creating measured pods"))?;
    let create_end = created.iter().map(|(_, t)| *t).max().unwrap_or(start);
    scheduler.abort();
    observer.abort();
    let _ = scheduler.await;
    let _ = observer.await;
    if bound.len() < n {
        return Err(Error::Bench(format!(
            "only {} of {n} pods were bound within {:?}",
            bound.len(),
            opts.timeout
        )));
    }
    let last = bound.values().copied().max().unwrap_or(start);
    let total = last.duration_since(start).as_secs_f64();
    let mut lat: Vec<f64> = created
        .iter()
        .filter_map(|(i, issued)| {
            bound
                .get(&format!("pod-{i}"))
                .map(|b| b.duration_since(*issued).as_secs_f64())
        })
        .collect();
    lat.sort_by(|a, b| a.total_cmp(b));
    let pct = |p: f64| lat[((lat.len() as f64 * p).ceil() as usize).clamp(1, lat.len()) - 1] * 1000.0;
    let _ = writeln!(
        out,
        "scheduler SchedulingBasic: {} nodes ({nodes_secs:.1} s to create), {} placed pods ({placed_secs:.1} s), {n} measured pods",
        opts.nodes, opts.initial_pods
    );
    let _ = writeln!(
        out,
        "  throughput: {:.0} pods/s ({n} pods in {total:.2} s; creates issued over {:.2} s, {:.0} creates/s)",
        n as f64 / total,
        create_end.duration_since(start).as_secs_f64(),
        n as f64 / create_end.duration_since(start).as_secs_f64().max(1e-9),
    );
    let _ = writeln!(
        out,
        "  create→bound latency: p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms",
        pct(0.50),
        pct(0.99),
        pct(1.0)
    );
    Ok(out)
}
