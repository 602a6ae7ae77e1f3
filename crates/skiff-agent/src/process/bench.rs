//! `skiff bench pods`: pod startup latency on the process runtime. An API server, the scheduler
//! and one process node run in this process; pods (`sleep 3600`) are created at a steady rate,
//! and each pod's latency is from just before its create request to the first watch event
//! showing it `Running`. Reports p50, p99 and max, then deletes the pods.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::api::core::v1::{Node, Pod};
use kube::api::{DeleteParams, ListParams, PostParams};
use kube::runtime::watcher;
use kube::Api;
use serde_json::json;
use tokio::time::Instant;

use super::{Error, ProcessOptions};

/// Benchmark knobs.
#[derive(Debug, Clone)]
pub struct BenchOpts {
    /// Pods measured (the target is over 200).
    pub pods: usize,
    /// Creates per second.
    pub rate: f64,
    /// Directory for the store and the node (a temporary directory inside it; system temp
    /// when `None`).
    pub dir: Option<PathBuf>,
    /// Give up after this long.
    pub timeout: Duration,
}

impl Default for BenchOpts {
    fn default() -> Self {
        BenchOpts {
            pods: 200,
            rate: 20.0,
            dir: None,
            timeout: Duration::from_secs(120),
        }
    }
}

fn bench_err(what: &str) -> impl Fn(kube::Error) -> Error + '_ {
    move |e| Error::Bench(format!("{what}: {e}"))
}

fn pod_object(name: &str) -> Pod {
    serde_json::from_value(json!({
        "metadata": {"name": name, "labels": {"bench": "pods"}},
        "spec": {
            "terminationGracePeriodSeconds": 1,
            "containers": [{"name": "c", "image": "busybox", "command": ["sleep", "3600"]}],
        }
    }))
    .expect("valid pod")
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let i = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[i.clamp(1, sorted.len()) - 1]
}

fn ms(d: Duration) -> String {
    format!("{:.1} ms", d.as_secs_f64() * 1000.0)
}

/// Runs the benchmark and returns its report.
pub async fn run(opts: BenchOpts) -> Result<String, Error> {
    let tmp = match &opts.dir {
        Some(d) => tempfile::tempdir_in(d),
        None => tempfile::tempdir(),
    }
    .map_err(|e| Error::Bench(format!("temporary directory: {e}")))?;
    let running = skiff_apiserver::start(skiff_apiserver::Config::loopback(tmp.path().join("api")))
        .await
        .map_err(|e| Error::Bench(format!("starting the API server: {e}")))?;
    let client = running.client();
    let mut tasks = tokio::task::JoinSet::new();
    let c = client.clone();
    tasks.spawn(async move {
        if let Err(e) = skiff_scheduler::run(c, Default::default()).await {
            tracing::error!(error = %e, "scheduler stopped");
        }
    });
    let mut node = ProcessOptions::new("bench-node", tmp.path().join("node"));
    node.pods = Some(opts.pods as u32 + 10);
    node.cluster_ca = Some(crate::kubelet_tls::ClusterCa {
        cert_pem: running.ca_pem.clone(),
        key_pem: Some(running.ca_key_pem.clone()),
    });
    let c = client.clone();
    tasks.spawn(async move {
        if let Err(e) = super::run(c, node).await {
            tracing::error!(error = %e, "process node stopped");
        }
    });
    let result = measure(client, &opts).await;
    tasks.shutdown().await;
    running.shutdown().await;
    drop(tmp);
    result
}

async fn measure(client: kube::Client, opts: &BenchOpts) -> Result<String, Error> {
    let deadline = Instant::now() + opts.timeout;
    let nodes: Api<Node> = Api::all(client.clone());
    loop {
        let ready = nodes.get_opt("bench-node").await.ok().flatten().is_some_and(|n| {
            n.status
                .and_then(|s| s.conditions)
                .into_iter()
                .flatten()
                .any(|c| c.type_ == "Ready" && c.status == "True")
        });
        if ready {
            break;
        }
        if Instant::now() > deadline {
            return Err(Error::Bench("the node did not become Ready".into()));
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    let pods: Api<Pod> = Api::namespaced(client.clone(), "default");
    // The observer: when each pod is first seen Running.
    let running: Arc<Mutex<HashMap<String, Instant>>> = Arc::default();
    let (synced_tx, synced_rx) = tokio::sync::oneshot::channel();
    let observer = {
        let running = running.clone();
        let pods = pods.clone();
        tokio::spawn(async move {
            let mut synced = Some(synced_tx);
            let mut stream = watcher(pods, watcher::Config::default().labels("bench=pods")).boxed();
            while let Some(ev) = stream.next().await {
                let now = Instant::now();
                let pod = match ev {
                    Ok(watcher::Event::InitDone) => {
                        if let Some(tx) = synced.take() {
                            let _ = tx.send(());
                        }
                        continue;
                    }
                    Ok(watcher::Event::Apply(p) | watcher::Event::InitApply(p)) => p,
                    _ => continue,
                };
                let phase = pod.status.as_ref().and_then(|s| s.phase.as_deref());
                if phase == Some("Running") {
                    if let Some(name) = pod.metadata.name {
                        running.lock().unwrap().entry(name).or_insert(now);
                    }
                }
            }
        })
    };
    let _ = synced_rx.await;

    let created: Arc<Mutex<HashMap<String, Instant>>> = Arc::default();
    let period = Duration::from_secs_f64(1.0 / opts.rate.max(0.001));
    let mut ticker = tokio::time::interval(period);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut creates = tokio::task::JoinSet::new();
    let t0 = Instant::now();
    for i in 0..opts.pods {
        ticker.tick().await;
        let name = format!("bench-{i}");
        let pods = pods.clone();
        let created = created.clone();
        creates.spawn(async move {
            created.lock().unwrap().insert(name.clone(), Instant::now());
            pods.create(&PostParams::default(), &pod_object(&name))
                .await
                .map(|_| ())
        });
    }
    while let Some(r) = creates.join_next().await {
        r.map_err(|e| Error::Bench(format!("create task: {e}")))?
            .map_err(bench_err("creating a pod"))?;
    }
    let create_secs = t0.elapsed().as_secs_f64();
    loop {
        if running.lock().unwrap().len() >= opts.pods {
            break;
        }
        if Instant::now() > deadline {
            observer.abort();
            return Err(Error::Bench(format!(
                "only {} of {} pods were Running in time",
                running.lock().unwrap().len(),
                opts.pods
            )));
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let all_secs = t0.elapsed().as_secs_f64();
    observer.abort();

    let mut lat: Vec<Duration> = {
        let created = created.lock().unwrap();
        let running = running.lock().unwrap();
        created
            .iter()
            .filter_map(|(n, c)| running.get(n).map(|r| r.saturating_duration_since(*c)))
            .collect()
    };
    lat.sort();
    let mean = lat.iter().sum::<Duration>() / lat.len().max(1) as u32;

    // Clean up: delete every pod and wait until the node has stopped them.
    let t = Instant::now();
    pods.delete_collection(&DeleteParams::default(), &ListParams::default().labels("bench=pods"))
        .await
        .map_err(bench_err("deleting the pods"))?;
    let mut left = usize::MAX;
    while Instant::now() < deadline + Duration::from_secs(60) {
        left = pods
            .list_metadata(&ListParams::default().labels("bench=pods"))
            .await
            .map_err(bench_err("listing the pods"))?
            .items
            .len();
        if left == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let delete_secs = t.elapsed().as_secs_f64();

    let mut out = String::new();
    let _ = writeln!(
        out,
        "pod startup (process runtime, 1 node): {} pods created at {:.0}/s in {create_secs:.1} s, all Running after {all_secs:.1} s",
        opts.pods, opts.rate
    );
    let _ = writeln!(
        out,
        "create -> Running (watch): p50 {}  p99 {}  max {}  mean {}",
        ms(percentile(&lat, 50.0)),
        ms(percentile(&lat, 99.0)),
        ms(lat.last().copied().unwrap_or_default()),
        ms(mean)
    );
    if left == 0 {
        let _ = writeln!(out, "deleted all pods (containers stopped) in {delete_secs:.1} s");
    } else {
        let _ = writeln!(out, "{left} pods were still being deleted after {delete_secs:.1} s");
    }
    Ok(out)
}
