//! Scale check of simulated nodes: an in-process API server, N simulated nodes, N×M pods
//! created already bound; waits until all are Running and prints time and memory (VmRSS).
//!
//! `cargo run --release -p skiff-agent --example sim_scale -- [nodes] [pods-per-node] [--no-agents]`
//! (defaults 1000 and 30). With `--no-agents` only the API server runs, to measure its share;
//! `--no-agents --status` also writes each pod a Running status like the sim's (no agents).

use std::collections::HashSet;
use std::time::{Duration, Instant};

use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, PostParams};
use kube::runtime::watcher::{self, watcher};
use kube::runtime::WatchStreamExt;
use serde_json::json;
use skiff_agent::sim::{SimNodes, SimOptions};

fn proc_status(field: &str) -> String {
    std::fs::read_to_string("/proc/self/status")
        .unwrap_or_default()
        .lines()
        .find(|l| l.starts_with(field))
        .map(|l| l[field.len()..].trim().to_string())
        .unwrap_or_default()
}

fn cpu_seconds() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let after = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or("");
    let f: Vec<&str> = after.split_whitespace().collect();
    let ticks: f64 =
        f.get(11).and_then(|v| v.parse().ok()).unwrap_or(0.0) + f.get(12).and_then(|v| v.parse().ok()).unwrap_or(0.0);
    ticks / 100.0
}

fn report(stage: &str, since: Instant) {
    println!(
        "{stage:<34} t={:>7.1}s  VmRSS={:>12}  VmHWM={:>12}  cpu={:.1}s",
        since.elapsed().as_secs_f64(),
        proc_status("VmRSS:"),
        proc_status("VmHWM:"),
        cpu_seconds()
    );
}

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let no_agents = args.iter().any(|a| a == "--no-agents");
    let write_status = args.iter().any(|a| a == "--status");
    let nums: Vec<usize> = args.iter().filter_map(|a| a.parse().ok()).collect();
    let nodes = nums.first().copied().unwrap_or(1000);
    let per_node = nums.get(1).copied().unwrap_or(30);
    let total = nodes * per_node;
    let t0 = Instant::now();
    report("start", t0);

    let dir = tempfile::tempdir().unwrap();
    let running = skiff_apiserver::start(skiff_apiserver::Config::loopback(dir.path().to_path_buf()))
        .await
        .unwrap();
    let client = skiff_apiserver::local::client(running.server.clone());
    report("API server started", t0);

    let opts = SimOptions {
        count: nodes,
        ..Default::default()
    };
    let names: Vec<String> = (1..=nodes).map(|n| opts.node_name(n)).collect();
    let sim = if no_agents {
        None
    } else {
        let t = Instant::now();
        let sim = SimNodes::start(client.clone(), opts).await.unwrap();
        println!("registered {nodes} nodes in {:.2}s", t.elapsed().as_secs_f64());
        report("nodes registered", t0);
        Some(sim)
    };

    // Count Running pods from a watch (started before the pods, so nothing is missed).
    let pods_all: Api<Pod> = Api::all(client.clone());
    let (running_tx, mut running_rx) = tokio::sync::watch::channel(0usize);
    let counter = tokio::spawn(async move {
        let mut seen: HashSet<String> = HashSet::new();
        let mut stream = watcher(pods_all, watcher::Config::default()).default_backoff().boxed();
        while let Some(ev) = stream.next().await {
            let (watcher::Event::Apply(p) | watcher::Event::InitApply(p)) = (match ev {
                Ok(ev) => ev,
                Err(_) => continue,
            }) else {
                continue;
            };
            if p.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Running") {
                seen.insert(p.metadata.name.unwrap_or_default());
                let _ = running_tx.send(seen.len());
            }
        }
    });

    let t_create = Instant::now();
    let pods: Api<Pod> = Api::default_namespaced(client.clone());
    futures::stream::iter(0..total)
        .map(|i| {
            let pods = pods.clone();
            let node = names[i % nodes].clone();
            async move {
                let pod: Pod = serde_json::from_value(json!({
                    "apiVersion": "v1",
                    "kind": "Pod",
                    "metadata": {"name": format!("p-{i}"), "labels": {"app": "scale"}},
                    "spec": {
                        "nodeName": node,
                        "containers": [{"name": "app", "image": "registry.k8s.io/pause:3.10",
                            "resources": {"requests": {"cpu": "10m", "memory": "16Mi"}}}],
                    },
                }))
                .unwrap();
                pods.create(&PostParams::default(), &pod).await.map(|_| ())
            }
        })
        .buffer_unordered(64)
        .try_collect::<()>()
        .await
        .unwrap();
    println!(
        "created {total} pods in {:.2}s ({:.0}/s)",
        t_create.elapsed().as_secs_f64(),
        total as f64 / t_create.elapsed().as_secs_f64()
    );
    report("pods created", t0);

    if no_agents && write_status {
        let t = Instant::now();
        futures::stream::iter(0..total)
            .map(|i| {
                let pods = pods.clone();
                async move {
                    let now = jiff::Timestamp::now().strftime("%Y-%m-%dT%H:%M:%SZ").to_string();
                    let cond = |ty: &str| json!({"type": ty, "status": "True", "lastProbeTime": null, "lastTransitionTime": now});
                    let body = json!({"status": {
                        "phase": "Running",
                        "conditions": [cond("PodReadyToStartContainers"), cond("Initialized"), cond("Ready"),
                            cond("ContainersReady"), cond("PodScheduled")],
                        "hostIP": "172.20.3.17", "hostIPs": [{"ip": "172.20.3.17"}],
                        "podIP": "10.64.3.17", "podIPs": [{"ip": "10.64.3.17"}],
                        "startTime": now,
                        "containerStatuses": [{
                            "name": "app", "image": "registry.k8s.io/pause:3.10",
                            "imageID": format!("registry.k8s.io/pause@sha256:{}", "a".repeat(64)),
                            "containerID": format!("sim://{:064x}", i),
                            "ready": true, "started": true, "restartCount": 0, "lastState": {},
                            "state": {"running": {"startedAt": now}},
                        }],
                    }});
                    pods.patch_status(&format!("p-{i}"), &kube::api::PatchParams::default(), &kube::api::Patch::Strategic(&body))
                        .await
                        .map(|_| ())
                }
            })
            .buffer_unordered(64)
            .try_collect::<()>()
            .await
            .unwrap();
        println!("wrote {total} statuses in {:.2}s", t.elapsed().as_secs_f64());
        report("statuses written (no agents)", t0);
    }

    if sim.is_some() {
        let deadline = Instant::now() + Duration::from_secs(600);
        let mut last = Instant::now();
        loop {
            let n = *running_rx.borrow_and_update();
            if n >= total {
                break;
            }
            if last.elapsed() >= Duration::from_secs(5) {
                println!("  … {n}/{total} Running");
                last = Instant::now();
            }
            assert!(Instant::now() < deadline, "not all pods Running after 10 minutes");
            let _ = tokio::time::timeout(Duration::from_secs(1), running_rx.changed()).await;
        }
        println!(
            "all {total} pods Running {:.2}s after the first create",
            t_create.elapsed().as_secs_f64()
        );
        report("all Running", t0);
    }
    counter.abort();

    // Steady state: heartbeats only.
    let cpu0 = cpu_seconds();
    let steady = Duration::from_secs(30);
    tokio::time::sleep(steady).await;
    println!(
        "steady state over {}s: {:.1}% of one core",
        steady.as_secs(),
        (cpu_seconds() - cpu0) / steady.as_secs_f64() * 100.0
    );
    report("steady (30 s later)", t0);
    drop(sim);
    drop(pods);
    drop(client);
    running.shutdown().await;
}
