//! `skiff bench controllers`: Deployments of many replicas on many simulated nodes, with every
//! component `skiff up` runs in this process. Reports the time from the first create until every
//! Deployment is Available, Deployments/s and pods/s over it, and the process's peak memory.

use std::fmt::Write as _;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use futures::StreamExt;
use k8s_openapi::api::apps::v1::Deployment;
use kube::api::PostParams;
use kube::runtime::watcher;
use kube::{Api, Client, ResourceExt};
use serde_json::json;
use tokio::time::Instant;

/// Benchmark sizes.
#[derive(Debug, Clone)]
pub struct Opts {
    /// Deployments created.
    pub deployments: usize,
    /// Replicas of each.
    pub replicas: i32,
    /// Simulated nodes.
    pub nodes: usize,
    /// Concurrent create requests.
    pub concurrency: usize,
    /// Directory for the data (a temporary directory when `None`).
    pub dir: Option<PathBuf>,
    /// Give up after this long.
    pub timeout: Duration,
}

/// Runs the benchmark and returns its report.
pub async fn run(opts: Opts) -> anyhow::Result<String> {
    let tmp = tempfile::tempdir()?;
    let dir = opts.dir.clone().unwrap_or_else(|| tmp.path().to_path_buf());
    let running = skiff_apiserver::start(skiff_apiserver::Config::loopback(&dir))
        .await
        .context("starting the API server")?;
    let client = running.client();
    let mut components = crate::up::Components::new();
    crate::up::spawn_controllers(
        &mut components,
        &skiff_controllers::informer::Informers::new(client.clone()),
    );
    let c = client.clone();
    components.spawn(async move {
        skiff_scheduler::run(c, skiff_scheduler::SchedulerOptions::default())
            .await
            .context("scheduler")
    });
    let sim = skiff_agent::sim::SimOptions {
        count: opts.nodes,
        ..Default::default()
    };
    let c = client.clone();
    components.spawn(async move { skiff_agent::sim::run(c, sim).await.context("simulated nodes") });
    wait_for_nodes(&client, opts.nodes, opts.timeout).await?;
    let rss_before = memory_kb("VmRSS");
    // Every store write (object or event) takes one revision.
    let revision_before = running.server.cache.revision();
    let counters = count_writes(&running.server.cache);

    let api: Api<Deployment> = Api::namespaced(client.clone(), "default");
    let (available_tx, mut available_rx) = tokio::sync::mpsc::unbounded_channel();
    let watch = tokio::spawn(watch_available(api.clone(), opts.replicas, available_tx));
    let start = Instant::now();
    let creates = futures::stream::iter(0..opts.deployments)
        .map(|i| {
            let api = api.clone();
            async move { api.create(&PostParams::default(), &deployment(i, opts.replicas)).await }
        })
        .buffer_unordered(opts.concurrency.max(1));
    let failures = creates.filter(|r| futures::future::ready(r.is_err())).count().await;
    anyhow::ensure!(failures == 0, "{failures} creates failed");
    let created = start.elapsed();

    let mut first = None;
    let mut seen = 0usize;
    let deadline = start + opts.timeout;
    while seen < opts.deployments {
        match tokio::time::timeout_at(deadline, available_rx.recv()).await {
            Ok(Some(())) => {
                seen += 1;
                first.get_or_insert_with(|| start.elapsed());
            }
            Ok(None) => anyhow::bail!("the watch of Deployments ended"),
            Err(_) => anyhow::bail!(
                "only {seen} of {} Deployments Available after {:?}",
                opts.deployments,
                opts.timeout
            ),
        }
    }
    let all = start.elapsed();
    // A controller that creates too many pods would look fast; the count must be exact.
    let pods_api: Api<k8s_openapi::api::core::v1::Pod> = Api::namespaced(client.clone(), "default");
    let made = pods_api.list_metadata(&Default::default()).await?.items.len();
    let want = opts.deployments * opts.replicas.max(0) as usize;
    anyhow::ensure!(made == want, "{made} pods exist for {want} replicas");
    let writes = running.server.cache.revision() - revision_before;
    watch.abort();
    let mut by_resource = counters.finish();
    by_resource.sort_by_key(|(_, n)| std::cmp::Reverse(*n));
    let peak = memory_kb("VmHWM");
    components.shutdown().await;
    running.shutdown().await;

    let pods = opts.deployments * opts.replicas.max(0) as usize;
    let secs = all.as_secs_f64();
    let mut out = String::new();
    writeln!(
        out,
        "controllers: {} Deployments x {} replicas on {} simulated nodes ({} pods)",
        opts.deployments, opts.replicas, opts.nodes, pods
    )?;
    writeln!(out, "  created in            {:>8.2} s", created.as_secs_f64())?;
    writeln!(
        out,
        "  first Available after {:>8.2} s",
        first.unwrap_or_default().as_secs_f64()
    )?;
    writeln!(out, "  all Available after   {secs:>8.2} s")?;
    writeln!(out, "  Deployments/s         {:>8.1}", opts.deployments as f64 / secs)?;
    writeln!(out, "  pods/s                {:>8.1}", pods as f64 / secs)?;
    writeln!(
        out,
        "  API writes            {:>8} ({:.1} per pod, {:.0}/s)",
        writes,
        writes as f64 / pods.max(1) as f64,
        writes as f64 / secs
    )?;
    for (plural, n) in by_resource.iter().filter(|(_, n)| *n > 0) {
        writeln!(
            out,
            "    {plural:<22}{n:>8} ({:.2} per pod)",
            *n as f64 / pods.max(1) as f64
        )?;
    }
    writeln!(out, "  RSS before creates    {:>8} kB", rss_before)?;
    writeln!(out, "  peak RSS (VmHWM)      {:>8} kB", peak)?;
    Ok(out)
}

fn deployment(i: usize, replicas: i32) -> Deployment {
    let name = format!("bench-{i}");
    serde_json::from_value(json!({
        "metadata": {"name": name},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": name}},
            "template": {
                "metadata": {"labels": {"app": name}},
                "spec": {"containers": [{"name": "c", "image": "nginx",
                    "resources": {"requests": {"cpu": "10m", "memory": "16Mi"}}}]}
            }
        }
    }))
    .unwrap_or_default()
}

/// Sends one message per Deployment the first time it is Available with every replica.
async fn watch_available(api: Api<Deployment>, replicas: i32, tx: tokio::sync::mpsc::UnboundedSender<()>) {
    let mut done = std::collections::HashSet::new();
    let mut stream = std::pin::pin!(watcher(api, watcher::Config::default()));
    while let Some(ev) = stream.next().await {
        let objs = match ev {
            Ok(watcher::Event::Apply(d) | watcher::Event::InitApply(d)) => vec![d],
            _ => continue,
        };
        for d in objs {
            let status = d.status.as_ref();
            let available = status.and_then(|s| s.available_replicas).unwrap_or(0) >= replicas
                && status
                    .and_then(|s| s.conditions.as_ref())
                    .is_some_and(|cs| cs.iter().any(|c| c.type_ == "Available" && c.status == "True"));
            if available && done.insert(d.name_any()) && tx.send(()).is_err() {
                return;
            }
        }
    }
}

async fn wait_for_nodes(client: &Client, nodes: usize, timeout: Duration) -> anyhow::Result<()> {
    let api: Api<k8s_openapi::api::core::v1::Node> = Api::all(client.clone());
    let deadline = Instant::now() + timeout;
    loop {
        let n = api.list_metadata(&Default::default()).await?.items.len();
        if n >= nodes {
            return Ok(());
        }
        anyhow::ensure!(Instant::now() < deadline, "only {n} of {nodes} nodes registered");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// A field of /proc/self/status in kB (0 when unreadable).
fn memory_kb(field: &str) -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with(field))
                .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        })
        .unwrap_or(0)
}

/// Per-resource write counters fed by watch-cache subscriptions.
struct WriteCounters(Vec<(&'static str, Arc<AtomicU64>, tokio::task::JoinHandle<()>)>);

impl WriteCounters {
    /// Stops counting and returns the counts by resource.
    fn finish(self) -> Vec<(&'static str, u64)> {
        self.0
            .into_iter()
            .map(|(plural, n, task)| {
                task.abort();
                (plural, n.load(Ordering::Relaxed))
            })
            .collect()
    }
}

/// Counts every event of every resource from now on (a lagging receiver counts what it skipped).
fn count_writes(cache: &skiff_apiserver::cache::Cache) -> WriteCounters {
    let mut out = Vec::new();
    let mut seen = std::collections::HashSet::new();
    // events.k8s.io and core events share one store prefix: count them once.
    for def in skiff_api::registry::RESOURCES.iter().filter(|d| seen.insert(d.plural)) {
        let Ok(sub) = cache.subscribe(def, Some(cache.revision())) else {
            continue;
        };
        let n = Arc::new(AtomicU64::new(sub.backlog.len() as u64));
        let mut live = sub.live;
        let counter = n.clone();
        let task = tokio::spawn(async move {
            use tokio::sync::broadcast::error::RecvError;
            loop {
                match live.recv().await {
                    Ok(_) => counter.fetch_add(1, Ordering::Relaxed),
                    Err(RecvError::Lagged(k)) => counter.fetch_add(k, Ordering::Relaxed),
                    Err(RecvError::Closed) => return,
                };
            }
        });
        out.push((def.plural, n, task));
    }
    WriteCounters(out)
}
