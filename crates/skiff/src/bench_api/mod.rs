//! `skiff bench api`: the API server started in this process on a fresh data directory and
//! driven over HTTPS/HTTP2 exactly as a client would, measuring
//! 1. pod creates/s and create latency at several client counts (one connection per client),
//! 2. LIST of many pods, as JSON and as a server-side Table,
//! 3. watch fan-out: events of new configmaps delivered to many watchers.

mod client;

use std::fmt::Write as _;
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use bytes::Bytes;
use http_body_util::BodyExt;
use hyper::{Method, StatusCode};
use serde_json::Value;

use client::{Conn, Target, ACCEPT_TABLE};

/// Namespace of the create and watch loads.
const NS: &str = "bench";
/// Namespace holding exactly the pods of the LIST load.
const LIST_NS: &str = "bench-list";
/// Concurrent clients that fill the LIST namespace.
const FILL_CLIENTS: usize = 64;
/// How long watchers may take to see every event before the run fails.
const WATCH_TIMEOUT: Duration = Duration::from_secs(60);

/// What to measure.
#[derive(Clone, Debug)]
pub struct Opts {
    /// Concurrent create clients, one level each.
    pub clients: Vec<usize>,
    /// How long each create level runs.
    pub duration: Duration,
    /// Pods in the LIST namespace.
    pub list_pods: usize,
    /// Timed LISTs of each kind (JSON, Table).
    pub list_repeats: usize,
    /// Concurrent watchers.
    pub watchers: usize,
    /// Configmaps created while they watch.
    pub watch_events: usize,
    /// Concurrent clients creating those configmaps.
    pub watch_creators: usize,
    /// Whole runs, each on a fresh server; medians are printed when more than one.
    pub runs: usize,
    /// Where the data directory goes (the system temp dir if `None`); fsync is measured.
    pub dir: Option<PathBuf>,
}

impl Default for Opts {
    fn default() -> Self {
        Opts {
            clients: vec![1, 16, 64],
            duration: Duration::from_secs(5),
            list_pods: 10_000,
            list_repeats: 20,
            watchers: 100,
            watch_events: 200,
            watch_creators: 16,
            runs: 1,
            dir: None,
        }
    }
}

/// Latency percentiles of one series.
#[derive(Clone, Copy, Debug, Default)]
pub struct Lat {
    /// Median.
    pub p50: Duration,
    /// 99th percentile (nearest rank).
    pub p99: Duration,
    /// Largest.
    pub max: Duration,
}

impl Lat {
    fn of(mut v: Vec<Duration>) -> Lat {
        if v.is_empty() {
            return Lat::default();
        }
        v.sort_unstable();
        let rank = |q: f64| v[((q * v.len() as f64).ceil() as usize).clamp(1, v.len()) - 1];
        Lat {
            p50: rank(0.50),
            p99: rank(0.99),
            max: v[v.len() - 1],
        }
    }
}

/// One create level.
#[derive(Clone, Debug)]
pub struct CreateLevel {
    /// Concurrent clients.
    pub clients: usize,
    /// Pods created.
    pub creates: usize,
    /// Creates per second over the level.
    pub per_sec: f64,
    /// Create latency.
    pub lat: Lat,
}

/// LIST of the pods of one namespace.
#[derive(Clone, Debug)]
pub struct ListResult {
    /// Pods in the namespace (checked against the response).
    pub pods: usize,
    /// How fast they were created by [`FILL_CLIENTS`] clients.
    pub fill_per_sec: f64,
    /// Timed requests of each kind.
    pub repeats: usize,
    /// Plain JSON list: latency to the last body byte, and the body size.
    pub json: Lat,
    /// Bytes of the JSON list.
    pub json_bytes: usize,
    /// Server-side Table.
    pub table: Lat,
    /// Bytes of the Table.
    pub table_bytes: usize,
}

/// Watch fan-out.
#[derive(Clone, Debug)]
pub struct WatchResult {
    /// Concurrent watchers.
    pub watchers: usize,
    /// Objects created (each one event per watcher).
    pub events: usize,
    /// Concurrent creators.
    pub creators: usize,
    /// From each create's response to its event having reached every watcher (0 when the
    /// events arrived before the response).
    pub from_response: Lat,
    /// From each create's request to its event having reached every watcher.
    pub from_request: Lat,
    /// Events delivered per second, all watchers together, first create to last delivery.
    pub delivered_per_sec: f64,
    /// Creates per second during the fan-out.
    pub creates_per_sec: f64,
}

/// The numbers of one run.
#[derive(Clone, Debug)]
pub struct Results {
    /// One per create level.
    pub creates: Vec<CreateLevel>,
    /// The LIST load.
    pub list: ListResult,
    /// The watch load.
    pub watch: WatchResult,
}

/// Runs the benchmark `opts.runs` times and answers a printable report.
pub async fn run(opts: Opts) -> anyhow::Result<String> {
    let mut out = String::new();
    let mut all = Vec::new();
    for i in 0..opts.runs.max(1) {
        let load_before = loadavg();
        let r = measure(&opts).await.with_context(|| format!("run {}", i + 1))?;
        let _ = writeln!(
            out,
            "== run {} of {}: {} CPUs, load average (1 min) {load_before} before, {} after",
            i + 1,
            opts.runs.max(1),
            std::thread::available_parallelism().map_or(0, |n| n.get()),
            loadavg()
        );
        out.push_str(&report(&opts, &r));
        all.push(r);
    }
    if all.len() > 1 {
        let _ = writeln!(out, "== median of {} runs", all.len());
        out.push_str(&report(&opts, &median(&all)));
    }
    out.push_str(&verdict(&opts, &median(&all)));
    Ok(out)
}

/// The 1-minute load average, as a hint of how much else ran on the machine.
fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|s| s.split_whitespace().next().map(str::to_owned))
        .unwrap_or_else(|| "?".into())
}

/// Runs the benchmark once on a fresh server and answers the numbers.
pub async fn measure(opts: &Opts) -> anyhow::Result<Results> {
    let mut builder = tempfile::Builder::new();
    builder.prefix("skiff-bench-api-");
    let dir = match &opts.dir {
        Some(d) => builder.tempdir_in(d)?,
        None => builder.tempdir()?,
    };
    let running = skiff_apiserver::start(skiff_apiserver::Config::loopback(dir.path()))
        .await
        .context("starting the API server")?;
    let ca = std::fs::read_to_string(dir.path().join("pki").join("ca.crt")).context("reading the CA")?;
    let target = Target::new(running.addr, &ca, &running.server.admin_token)?;

    let mut admin = target.connect().await?;
    for ns in [NS, LIST_NS] {
        let body = format!(r#"{{"apiVersion":"v1","kind":"Namespace","metadata":{{"name":"{ns}"}}}}"#);
        admin
            .expect(
                StatusCode::CREATED,
                Method::POST,
                "/api/v1/namespaces",
                None,
                Some(body.into()),
            )
            .await?;
    }

    let mut creates = Vec::new();
    for (level, &clients) in opts.clients.iter().enumerate() {
        creates.push(create_level(&target, level, clients, opts.duration).await?);
    }
    let list = list(&target, &mut admin, opts).await?;
    let watch = watch(&target, &mut admin, opts).await?;
    drop(admin);
    running.shutdown().await;
    Ok(Results { creates, list, watch })
}

/// A small pod as a Deployment's template would make it.
fn pod_json(name: &str) -> Bytes {
    format!(
        concat!(
            r#"{{"apiVersion":"v1","kind":"Pod","metadata":{{"name":"{name}","labels":{{"app":"bench","tier":"web"}},"#,
            r#""annotations":{{"bench.skiff.dev/purpose":"load"}}}},"spec":{{"containers":[{{"name":"web","#,
            r#""image":"registry.k8s.io/nginx:1.27","ports":[{{"containerPort":80,"protocol":"TCP"}}],"#,
            r#""env":[{{"name":"MODE","value":"bench"}}],"resources":{{"requests":{{"cpu":"100m","memory":"64Mi"}},"#,
            r#""limits":{{"memory":"128Mi"}}}}}}],"restartPolicy":"Always"}}}}"#
        ),
        name = name
    )
    .into()
}

async fn create_pod(conn: &mut Conn, ns: &str, name: &str) -> anyhow::Result<()> {
    conn.expect(
        StatusCode::CREATED,
        Method::POST,
        &format!("/api/v1/namespaces/{ns}/pods"),
        None,
        Some(pod_json(name)),
    )
    .await
    .map(drop)
}

async fn connect_all(target: &Target, n: usize) -> anyhow::Result<Vec<Conn>> {
    futures::future::try_join_all((0..n).map(|_| target.connect())).await
}

/// `clients` connections creating pods back to back for `duration`.
async fn create_level(
    target: &Target,
    level: usize,
    clients: usize,
    duration: Duration,
) -> anyhow::Result<CreateLevel> {
    let conns = connect_all(target, clients).await?;
    let start = Instant::now();
    let deadline = start + duration;
    let tasks: Vec<_> = conns
        .into_iter()
        .enumerate()
        .map(|(c, mut conn)| {
            tokio::spawn(async move {
                let mut lats = Vec::new();
                while Instant::now() < deadline {
                    let name = format!("pod-{level}-{c}-{}", lats.len());
                    let t = Instant::now();
                    create_pod(&mut conn, NS, &name).await?;
                    lats.push(t.elapsed());
                }
                anyhow::Ok(lats)
            })
        })
        .collect();
    let mut lats = Vec::new();
    for t in tasks {
        lats.extend(t.await??);
    }
    let elapsed = start.elapsed();
    Ok(CreateLevel {
        clients,
        creates: lats.len(),
        per_sec: lats.len() as f64 / elapsed.as_secs_f64(),
        lat: Lat::of(lats),
    })
}

/// Fills [`LIST_NS`] with `opts.list_pods` pods, then times LISTs as JSON and as Table.
async fn list(target: &Target, admin: &mut Conn, opts: &Opts) -> anyhow::Result<ListResult> {
    let conns = connect_all(target, FILL_CLIENTS.min(opts.list_pods.max(1))).await?;
    let next = Arc::new(AtomicUsize::new(0));
    let start = Instant::now();
    let tasks: Vec<_> = conns
        .into_iter()
        .map(|mut conn| {
            let (next, total) = (next.clone(), opts.list_pods);
            tokio::spawn(async move {
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    if i >= total {
                        return anyhow::Ok(());
                    }
                    create_pod(&mut conn, LIST_NS, &format!("list-{i:05}")).await?;
                }
            })
        })
        .collect();
    for t in tasks {
        t.await??;
    }
    let fill_per_sec = opts.list_pods as f64 / start.elapsed().as_secs_f64();

    let (json, json_bytes) = timed_list(admin, opts, None).await?;
    let (table, table_bytes) = timed_list(admin, opts, Some(ACCEPT_TABLE)).await?;
    Ok(ListResult {
        pods: opts.list_pods,
        fill_per_sec,
        repeats: opts.list_repeats,
        json,
        json_bytes,
        table,
        table_bytes,
    })
}

/// One untimed LIST that checks the answer (and warms up), then `opts.list_repeats` timed ones;
/// answers their latency and the body size.
async fn timed_list(admin: &mut Conn, opts: &Opts, accept: Option<&str>) -> anyhow::Result<(Lat, usize)> {
    let path = format!("/api/v1/namespaces/{LIST_NS}/pods");
    let body = admin.expect(StatusCode::OK, Method::GET, &path, accept, None).await?;
    let v: Value = serde_json::from_slice(&body)?;
    let (what, n) = match accept {
        None => ("items", v["items"].as_array().map_or(0, Vec::len)),
        Some(_) => ("rows", v["rows"].as_array().map_or(0, Vec::len)),
    };
    if n != opts.list_pods {
        bail!("LIST answered {n} {what}, expected {}", opts.list_pods);
    }
    let mut lats = Vec::new();
    for _ in 0..opts.list_repeats {
        let t = Instant::now();
        let b = admin.expect(StatusCode::OK, Method::GET, &path, accept, None).await?;
        lats.push(t.elapsed());
        drop(b);
    }
    Ok((Lat::of(lats), body.len()))
}

/// The index `i` of a `cm-i` ADDED event line, if it is one.
fn event_index(line: &[u8]) -> anyhow::Result<Option<usize>> {
    let v: Value = serde_json::from_slice(line).context("watch event")?;
    match v["type"].as_str() {
        Some("ADDED") => Ok(v["object"]["metadata"]["name"]
            .as_str()
            .and_then(|n| n.strip_prefix("cm-"))
            .and_then(|n| n.parse().ok())),
        Some("ERROR") => bail!("watch ended with {}", v["object"]),
        _ => Ok(None),
    }
}

/// Reads a watch stream until every one of `events` configmaps was seen; answers the arrival
/// time of each.
async fn read_watch(mut body: hyper::body::Incoming, events: usize) -> anyhow::Result<Vec<Instant>> {
    let mut seen: Vec<Option<Instant>> = vec![None; events];
    let mut missing = events;
    let mut buf = Vec::new();
    while missing > 0 {
        let Some(frame) = body.frame().await else {
            bail!("watch stream ended with {missing} events missing");
        };
        let now = Instant::now();
        let Ok(data) = frame?.into_data() else { continue };
        buf.extend_from_slice(&data);
        let mut used = 0;
        while let Some(nl) = buf[used..].iter().position(|&b| b == b'\n') {
            if let Some(i) = event_index(&buf[used..used + nl])? {
                if let Some(slot @ None) = seen.get_mut(i) {
                    *slot = Some(now);
                    missing -= 1;
                }
            }
            used += nl + 1;
        }
        buf.drain(..used);
    }
    Ok(seen.into_iter().flatten().collect())
}

/// `opts.watchers` watchers on the configmaps of [`NS`] from the current revision; then
/// `opts.watch_events` configmaps are created and their delivery timed.
async fn watch(target: &Target, admin: &mut Conn, opts: &Opts) -> anyhow::Result<WatchResult> {
    let list_path = format!("/api/v1/namespaces/{NS}/configmaps");
    let body = admin
        .expect(StatusCode::OK, Method::GET, &list_path, None, None)
        .await?;
    let v: Value = serde_json::from_slice(&body)?;
    let Some(rv) = v["metadata"]["resourceVersion"].as_str() else {
        bail!("list without resourceVersion");
    };
    let watch_path = format!("{list_path}?watch=true&resourceVersion={rv}");
    let events = opts.watch_events;

    let mut watchers = Vec::new();
    for mut conn in connect_all(target, opts.watchers).await? {
        let resp = conn.start(Method::GET, &watch_path, None, None).await?;
        if resp.status() != StatusCode::OK {
            bail!("watch: {}", resp.status());
        }
        watchers.push(tokio::spawn(async move {
            let r = tokio::time::timeout(WATCH_TIMEOUT, read_watch(resp.into_body(), events)).await;
            drop(conn);
            r.map_err(|_| anyhow::anyhow!("watchers did not see every event within {WATCH_TIMEOUT:?}"))?
        }));
    }

    let creators = connect_all(target, opts.watch_creators.max(1)).await?;
    let next = Arc::new(AtomicUsize::new(0));
    let start = Instant::now();
    let tasks: Vec<_> = creators
        .into_iter()
        .map(|mut conn| {
            let (next, path) = (next.clone(), list_path.clone());
            tokio::spawn(async move {
                let mut times = Vec::new();
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    if i >= events {
                        return anyhow::Ok(times);
                    }
                    let body = format!(
                        r#"{{"apiVersion":"v1","kind":"ConfigMap","metadata":{{"name":"cm-{i}","labels":{{"app":"bench"}}}},"data":{{"index":"{i}","payload":"{}"}}}}"#,
                        "x".repeat(256)
                    );
                    let sent = Instant::now();
                    conn.expect(StatusCode::CREATED, Method::POST, &path, None, Some(body.into()))
                        .await?;
                    times.push((i, sent, Instant::now()));
                }
            })
        })
        .collect();
    let mut sent = vec![start; events];
    let mut answered = vec![start; events];
    let mut last_answer = start;
    for t in tasks {
        for (i, s, a) in t.await?? {
            sent[i] = s;
            answered[i] = a;
            last_answer = last_answer.max(a);
        }
    }
    let mut all_seen = vec![start; events];
    for w in watchers {
        for (i, at) in w.await??.into_iter().enumerate() {
            all_seen[i] = all_seen[i].max(at);
        }
    }
    let last = all_seen.iter().copied().max().unwrap_or(start);
    Ok(WatchResult {
        watchers: opts.watchers,
        events,
        creators: opts.watch_creators.max(1),
        from_response: Lat::of(
            (0..events)
                .map(|i| all_seen[i].saturating_duration_since(answered[i]))
                .collect(),
        ),
        from_request: Lat::of((0..events).map(|i| all_seen[i] - sent[i]).collect()),
        delivered_per_sec: (events * opts.watchers) as f64 / (last - start).as_secs_f64(),
        creates_per_sec: events as f64 / (last_answer - start).as_secs_f64(),
    })
}

fn median_f64(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v.get(v.len() / 2).copied().unwrap_or_default()
}

fn median_dur(mut v: Vec<Duration>) -> Duration {
    v.sort_unstable();
    v.get(v.len() / 2).copied().unwrap_or_default()
}

fn median_lat(v: impl Iterator<Item = Lat> + Clone) -> Lat {
    Lat {
        p50: median_dur(v.clone().map(|l| l.p50).collect()),
        p99: median_dur(v.clone().map(|l| l.p99).collect()),
        max: median_dur(v.map(|l| l.max).collect()),
    }
}

/// The median of each number over several runs of the same options.
pub fn median(runs: &[Results]) -> Results {
    let first = &runs[0];
    let creates = (0..first.creates.len())
        .map(|i| CreateLevel {
            clients: first.creates[i].clients,
            creates: median_f64(runs.iter().map(|r| r.creates[i].creates as f64).collect()) as usize,
            per_sec: median_f64(runs.iter().map(|r| r.creates[i].per_sec).collect()),
            lat: median_lat(runs.iter().map(|r| r.creates[i].lat)),
        })
        .collect();
    let list = ListResult {
        fill_per_sec: median_f64(runs.iter().map(|r| r.list.fill_per_sec).collect()),
        json: median_lat(runs.iter().map(|r| r.list.json)),
        table: median_lat(runs.iter().map(|r| r.list.table)),
        ..first.list.clone()
    };
    let watch = WatchResult {
        from_response: median_lat(runs.iter().map(|r| r.watch.from_response)),
        from_request: median_lat(runs.iter().map(|r| r.watch.from_request)),
        delivered_per_sec: median_f64(runs.iter().map(|r| r.watch.delivered_per_sec).collect()),
        creates_per_sec: median_f64(runs.iter().map(|r| r.watch.creates_per_sec).collect()),
        ..first.watch.clone()
    };
    Results { creates, list, watch }
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// Formats one run's numbers as tables.
pub fn report(opts: &Opts, r: &Results) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "pod creates (POST, one HTTP/2 connection per client), {:.1}s per level",
        opts.duration.as_secs_f64()
    );
    let _ = writeln!(
        out,
        "{:>7} | {:>8} {:>9} | {:>8} {:>8} {:>8}",
        "clients", "creates", "creates/s", "p50 ms", "p99 ms", "max ms"
    );
    for l in &r.creates {
        let _ = writeln!(
            out,
            "{:>7} | {:>8} {:>9.0} | {:>8.2} {:>8.2} {:>8.2}",
            l.clients,
            l.creates,
            l.per_sec,
            ms(l.lat.p50),
            ms(l.lat.p99),
            ms(l.lat.max)
        );
    }
    let l = &r.list;
    let _ = writeln!(
        out,
        "\nLIST of {} pods (filled at {:.0} creates/s by {} clients), {} timed requests each, to the last body byte",
        l.pods, l.fill_per_sec, FILL_CLIENTS, l.repeats
    );
    let _ = writeln!(
        out,
        "{:>7} | {:>9} | {:>8} {:>8} {:>8}",
        "as", "MB", "p50 ms", "p99 ms", "max ms"
    );
    for (name, lat, bytes) in [("JSON", l.json, l.json_bytes), ("Table", l.table, l.table_bytes)] {
        let _ = writeln!(
            out,
            "{:>7} | {:>9.2} | {:>8.2} {:>8.2} {:>8.2}",
            name,
            bytes as f64 / 1e6,
            ms(lat.p50),
            ms(lat.p99),
            ms(lat.max)
        );
    }
    let w = &r.watch;
    let _ = writeln!(
        out,
        "\nwatch fan-out: {} watchers (one connection each), {} configmaps created by {} clients ({:.0} creates/s)",
        w.watchers, w.events, w.creators, w.creates_per_sec
    );
    let _ = writeln!(
        out,
        "{:>32} | {:>8} {:>8} {:>8}",
        "event at all watchers, from", "p50 ms", "p99 ms", "max ms"
    );
    for (name, lat) in [("create response", w.from_response), ("create request", w.from_request)] {
        let _ = writeln!(
            out,
            "{:>32} | {:>8.2} {:>8.2} {:>8.2}",
            name,
            ms(lat.p50),
            ms(lat.p99),
            ms(lat.max)
        );
    }
    let _ = writeln!(
        out,
        "events delivered: {:.0}/s (all watchers together)\n",
        w.delivered_per_sec
    );
    out
}

/// The issue's targets against these numbers.
pub fn verdict(opts: &Opts, r: &Results) -> String {
    let mut out = String::new();
    let ok = |met: bool| if met { "met" } else { "MISSED" };
    if let Some(l) = r.creates.iter().find(|l| l.clients == 16) {
        let _ = writeln!(
            out,
            "target p99 create <= 5 ms at 16 clients: {:.2} ms, {}",
            ms(l.lat.p99),
            ok(l.lat.p99 <= Duration::from_millis(5))
        );
    }
    if opts.list_pods == 10_000 {
        let _ = writeln!(
            out,
            "target LIST of 10,000 pods <= 50 ms: p50 {:.2} ms ({}), p99 {:.2} ms ({})",
            ms(r.list.json.p50),
            ok(r.list.json.p50 <= Duration::from_millis(50)),
            ms(r.list.json.p99),
            ok(r.list.json.p99 <= Duration::from_millis(50)),
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_use_nearest_rank() {
        let v: Vec<Duration> = (1..=100).map(Duration::from_millis).collect();
        let l = Lat::of(v);
        assert_eq!(l.p50, Duration::from_millis(50));
        assert_eq!(l.p99, Duration::from_millis(99));
        assert_eq!(l.max, Duration::from_millis(100));
        assert_eq!(Lat::of(vec![]).p99, Duration::ZERO);
    }

    #[test]
    fn watch_lines_are_parsed() {
        let line = br#"{"type":"ADDED","object":{"metadata":{"name":"cm-17"}}}"#;
        assert_eq!(event_index(line).unwrap(), Some(17));
        let other = br#"{"type":"MODIFIED","object":{"metadata":{"name":"cm-17"}}}"#;
        assert_eq!(event_index(other).unwrap(), None);
        assert!(event_index(br#"{"type":"ERROR","object":{"code":410}}"#).is_err());
    }

    /// A tiny run of every phase, so the benchmark keeps working as the server changes.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn tiny_run_measures_every_phase() {
        let opts = Opts {
            clients: vec![1, 4],
            duration: Duration::from_millis(300),
            list_pods: 200,
            list_repeats: 3,
            watchers: 5,
            watch_events: 20,
            watch_creators: 4,
            runs: 1,
            dir: None,
        };
        let r = measure(&opts).await.unwrap();
        assert_eq!(r.creates.iter().map(|l| l.clients).collect::<Vec<_>>(), vec![1, 4]);
        assert!(r.creates.iter().all(|l| l.creates > 0 && l.lat.p99 >= l.lat.p50));
        assert!(r.list.json_bytes > 200 * 100 && r.list.table_bytes > 0);
        assert!(r.list.json.p50 > Duration::ZERO && r.list.table.p50 > Duration::ZERO);
        assert!(r.watch.delivered_per_sec > 0.0);
        let text = report(&opts, &r);
        assert!(text.contains("LIST of 200 pods"), "{text}");
        assert!(text.contains("watch fan-out: 5 watchers"), "{text}");
        assert!(median(&[r.clone(), r]).creates.len() == 2);
    }
}
