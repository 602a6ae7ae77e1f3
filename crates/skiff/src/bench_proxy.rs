//! `skiff bench proxy`: HTTP requests/s and latency to one backend pod, reached directly and
//! through its Service's ClusterIP, alternating in one run; and how long traffic takes to
//! follow an endpoint change (a new ready pod gets traffic; a deleted pod stops getting it).
//!
//! A cluster of its own in this process: API server, EndpointSlice controller, scheduler, one
//! process node and the proxy of the chosen networking (nftables in bridge mode, userspace in
//! host mode). Backends are pods running this binary's `bench proxy-backend`, a small hyper
//! server, so the backend is never the bottleneck of what is compared. Bridge mode uses its own
//! ranges (10.240.0.0/16 pods, 10.241.0.0/16 services) so it never meets a running cluster's.

use std::fmt::Write as _;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use bytes::Bytes;
use http_body_util::{BodyExt, Empty, Full};
use k8s_openapi::api::core::v1::{Pod, Service};
use kube::api::{DeleteParams, PostParams};
use kube::{Api, Client};
use serde_json::json;
use skiff_apiserver::alloc::ServiceCidr;
use tokio::time::Instant;

/// Benchmark settings.
#[derive(Debug, Clone)]
pub struct Opts {
    /// `bridge` or `host` networking (bridge when it can work here).
    pub bridge: bool,
    /// Concurrent keep-alive connections.
    pub connections: usize,
    /// Seconds per measured round.
    pub seconds: f64,
    /// Rounds of each path (direct, ClusterIP), alternating.
    pub rounds: usize,
    /// Endpoint changes measured.
    pub changes: usize,
    /// Directory for the data (a temporary directory when `None`).
    pub dir: Option<PathBuf>,
}

/// Serves `GET` with the pod's name (`POD_NAME`) on `port` until killed: the backend pods.
pub async fn backend(port: u16) -> anyhow::Result<()> {
    let name = Bytes::from(std::env::var("POD_NAME").unwrap_or_default());
    let listener = tokio::net::TcpListener::bind(("0.0.0.0", port)).await?;
    loop {
        let (conn, _) = listener.accept().await?;
        let _ = conn.set_nodelay(true);
        let name = name.clone();
        tokio::spawn(async move {
            let svc = hyper::service::service_fn(move |_req| {
                let body = Full::new(name.clone());
                async move { Ok::<_, std::convert::Infallible>(hyper::Response::new(body)) }
            });
            let io = hyper_util::rt::TokioIo::new(conn);
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(io, svc)
                .await;
        });
    }
}

/// One GET on a fresh or given connection; returns the body.
async fn get(sender: &mut hyper::client::conn::http1::SendRequest<Empty<Bytes>>) -> anyhow::Result<Bytes> {
    let req = hyper::Request::get("/").header("host", "bench").body(Empty::new())?;
    let resp = sender.send_request(req).await?;
    Ok(resp.into_body().collect().await?.to_bytes())
}

async fn connect(addr: SocketAddr) -> anyhow::Result<hyper::client::conn::http1::SendRequest<Empty<Bytes>>> {
    let tcp = tokio::net::TcpStream::connect(addr).await?;
    tcp.set_nodelay(true)?;
    let (sender, conn) = hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(tcp)).await?;
    tokio::spawn(conn);
    Ok(sender)
}

/// Requests/s and per-request latencies (µs) of `connections` keep-alive clients for `secs`.
async fn load(addr: SocketAddr, connections: usize, secs: f64) -> anyhow::Result<(f64, Vec<u64>)> {
    let end = Instant::now() + Duration::from_secs_f64(secs);
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..connections {
        tasks.spawn(async move {
            let mut sender = connect(addr).await?;
            let mut lat = Vec::new();
            while Instant::now() < end {
                let t = Instant::now();
                get(&mut sender).await?;
                lat.push(t.elapsed().as_micros() as u64);
            }
            anyhow::Ok(lat)
        });
    }
    let start = Instant::now();
    let mut all = Vec::new();
    while let Some(r) = tasks.join_next().await {
        all.extend(r??);
    }
    Ok((all.len() as f64 / start.elapsed().as_secs_f64(), all))
}

fn pct(v: &mut [u64], p: f64) -> u64 {
    if v.is_empty() {
        return 0;
    }
    v.sort_unstable();
    v[((v.len() as f64 - 1.0) * p).round() as usize]
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(f64::total_cmp);
    v.get(v.len() / 2).copied().unwrap_or(0.0)
}

fn backend_pod(name: &str, port: u16) -> anyhow::Result<Pod> {
    let exe = std::env::current_exe()?.to_string_lossy().into_owned();
    Ok(serde_json::from_value(json!({
        "metadata": {"name": name, "labels": {"app": "bench"}},
        "spec": {"containers": [{
            "name": "backend", "image": "skiff",
            "command": [exe, "bench", "proxy-backend", "--port", port.to_string()],
            "env": [{"name": "POD_NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}}],
            "ports": [{"name": "http", "containerPort": port}],
            "readinessProbe": {"tcpSocket": {"port": "http"}, "periodSeconds": 1},
        }]}
    }))?)
}

/// Polls until `f` gives a value or `limit` passes.
async fn until<T, F, Fut>(what: &str, limit: Duration, mut f: F) -> anyhow::Result<T>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = Instant::now() + limit;
    loop {
        if let Some(v) = f().await {
            return Ok(v);
        }
        anyhow::ensure!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The pod's address once it is Ready.
async fn ready_ip(pods: &Api<Pod>, name: &str) -> anyhow::Result<String> {
    until(&format!("{name} Ready"), Duration::from_secs(60), || async {
        let p = pods.get(name).await.ok()?;
        let st = p.status?;
        let ready = st.conditions?.iter().any(|c| c.type_ == "Ready" && c.status == "True");
        ready.then_some(st.pod_ip?)
    })
    .await
}

/// Which backend answers one request on a fresh connection (so the proxy chooses anew).
async fn who(addr: SocketAddr) -> Option<String> {
    let mut s = tokio::time::timeout(Duration::from_secs(1), connect(addr))
        .await
        .ok()?
        .ok()?;
    let body = tokio::time::timeout(Duration::from_secs(1), get(&mut s))
        .await
        .ok()?
        .ok()?;
    Some(String::from_utf8_lossy(&body).into_owned())
}

/// Runs the benchmark and returns its report.
pub async fn run(opts: Opts) -> anyhow::Result<String> {
    let tmp = tempfile::tempdir()?;
    let dir = opts.dir.clone().unwrap_or_else(|| tmp.path().to_path_buf());
    let pod_net: ServiceCidr = "10.240.0.0/16".parse().map_err(anyhow::Error::msg)?;
    let service_cidr = if opts.bridge {
        "10.241.0.0/16".parse().map_err(anyhow::Error::msg)?
    } else {
        ServiceCidr::HOST
    };
    let cfg = skiff_apiserver::Config {
        service_cidr,
        ..skiff_apiserver::Config::loopback(&dir)
    };
    let running = skiff_apiserver::start(cfg).await.context("starting the API server")?;
    let client: Client = running.client();
    let mut components = crate::up::Components::new();
    let informers = skiff_controllers::informer::Informers::new(client.clone());
    components.spawn(async move {
        skiff_controllers::endpoints::run_slices(informers)
            .await
            .context("slices")
    });
    let c = client.clone();
    components.spawn(async move { skiff_scheduler::run(c, Default::default()).await.context("scheduler") });
    let mut node = skiff_agent::process::ProcessOptions::new("bench-node", dir.join("node"));
    node.cluster_ca = Some(skiff_agent::kubelet_tls::ClusterCa {
        cert_pem: running.ca_pem.clone(),
        key_pem: Some(running.ca_key_pem.clone()),
    });
    let c = client.clone();
    if opts.bridge {
        node.bridge = Some(skiff_agent::process::network::BridgeOptions::new((
            pod_net.nth(1 << 8),
            24,
        )));
        let proxy = skiff_proxy::nft::Options {
            table: "skiff-bench".into(),
            cluster_cidr: pod_net.to_string(),
            service_cidr: service_cidr.to_string(),
            link: "skdbench".into(),
            local_addrs: vec![pod_net.nth(1)],
        };
        components.spawn(async move { skiff_proxy::nft::run(c, proxy).await.context("proxy") });
    } else {
        let proxy = skiff_proxy::userspace::Options {
            node_ips: vec![std::net::Ipv4Addr::LOCALHOST.into()],
        };
        components.spawn(async move { skiff_proxy::userspace::run(c, proxy).await.context("proxy") });
    }
    let c = client.clone();
    components.spawn(async move { skiff_agent::process::run(c, node).await.context("node") });

    let pods: Api<Pod> = Api::namespaced(client.clone(), "default");
    let services: Api<Service> = Api::namespaced(client.clone(), "default");
    let svc: Service = serde_json::from_value(json!({
        "metadata": {"name": "bench"},
        "spec": {"selector": {"app": "bench"}, "ports": [{"port": 80, "targetPort": "http"}]}
    }))?;
    let svc = services.create(&PostParams::default(), &svc).await?;
    let vip: std::net::IpAddr = svc.spec.and_then(|s| s.cluster_ip).context("no ClusterIP")?.parse()?;
    let vip = SocketAddr::new(vip, 80);
    let mut port = 18080u16;
    let mut next_port = || {
        port += 1;
        port
    };
    let p = next_port();
    pods.create(&PostParams::default(), &backend_pod("backend-0", p)?)
        .await?;
    let direct = SocketAddr::new(ready_ip(&pods, "backend-0").await?.parse()?, p);
    until("the ClusterIP answering", Duration::from_secs(30), || async {
        (who(vip).await.as_deref() == Some("backend-0")).then_some(())
    })
    .await?;

    let mut out = String::new();
    let mode = if opts.bridge {
        "bridge (nftables)"
    } else {
        "host (userspace)"
    };
    let _ = writeln!(
        out,
        "proxy: {mode}, {} keep-alive connections, {} rounds of {:.1} s per path, alternating",
        opts.connections, opts.rounds, opts.seconds
    );
    let (mut d_rps, mut v_rps, mut d_p99, mut v_p99, mut d_p50, mut v_p50) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new(), Vec::new(), Vec::new());
    // A short warm-up of both paths first.
    load(direct, opts.connections, 0.5).await?;
    load(vip, opts.connections, 0.5).await?;
    for _ in 0..opts.rounds {
        let (rps, mut lat) = load(direct, opts.connections, opts.seconds).await?;
        d_rps.push(rps);
        d_p50.push(pct(&mut lat, 0.5) as f64);
        d_p99.push(pct(&mut lat, 0.99) as f64);
        let (rps, mut lat) = load(vip, opts.connections, opts.seconds).await?;
        v_rps.push(rps);
        v_p50.push(pct(&mut lat, 0.5) as f64);
        v_p99.push(pct(&mut lat, 0.99) as f64);
    }
    let (dr, vr) = (median(&mut d_rps), median(&mut v_rps));
    let _ = writeln!(
        out,
        "  direct to the pod  {dr:>9.0} req/s  p50 {:>6.0} µs  p99 {:>6.0} µs",
        median(&mut d_p50),
        median(&mut d_p99)
    );
    let _ = writeln!(
        out,
        "  through ClusterIP  {vr:>9.0} req/s  p50 {:>6.0} µs  p99 {:>6.0} µs",
        median(&mut v_p50),
        median(&mut v_p99)
    );
    let _ = writeln!(out, "  ratio (ClusterIP / direct, medians): {:.2}", vr / dr);

    // Endpoint changes: a new ready pod starts getting traffic; a deleted one stops.
    let (mut add_ms, mut del_ms) = (Vec::new(), Vec::new());
    let mut current = "backend-0".to_string();
    for i in 1..=opts.changes {
        let name = format!("backend-{i}");
        let p = next_port();
        pods.create(&PostParams::default(), &backend_pod(&name, p)?).await?;
        ready_ip(&pods, &name).await?;
        let t0 = Instant::now();
        until(&format!("traffic reaching {name}"), Duration::from_secs(30), || async {
            (who(vip).await.as_deref() == Some(name.as_str())).then_some(())
        })
        .await?;
        add_ms.push(t0.elapsed().as_secs_f64() * 1000.0);
        let t0 = Instant::now();
        pods.delete(&current, &DeleteParams::default()).await?;
        tracing::debug!(pod = %current, "bench: deleted");
        let gone = current.clone();
        until(&format!("traffic leaving {gone}"), Duration::from_secs(30), || async {
            // Ten answers in a row from elsewhere.
            for _ in 0..10 {
                match who(vip).await {
                    Some(n) if n != gone => {}
                    _ => return None,
                }
            }
            Some(())
        })
        .await?;
        del_ms.push(t0.elapsed().as_secs_f64() * 1000.0);
        current = name;
    }
    let _ = writeln!(
        out,
        "endpoint changes ({}): new ready pod gets traffic after median {:.0} ms (max {:.0}); deleted pod stops after median {:.0} ms (max {:.0})",
        opts.changes,
        median(&mut add_ms),
        add_ms.iter().copied().fold(0.0, f64::max),
        median(&mut del_ms),
        del_ms.iter().copied().fold(0.0, f64::max),
    );
    components.shutdown().await;
    running.shutdown().await;
    Ok(out)
}
