//! Probes of one container instance (startup, then liveness and readiness), kubelet style:
//! a result changes only after `successThreshold`/`failureThreshold` equal results in a row,
//! probes wait `initialDelaySeconds` after the container started, and liveness and readiness
//! wait for the startup probe.

use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::core::v1::{Container, Probe};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::mpsc;
use tokio::time::Instant;

use super::spawn::{self, Spec};

/// Which probe.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    Startup,
    Liveness,
    Readiness,
}

impl Kind {
    /// `Liveness`, as kubelet's messages start.
    pub(crate) fn title(self) -> &'static str {
        match self {
            Kind::Startup => "Startup",
            Kind::Liveness => "Liveness",
            Kind::Readiness => "Readiness",
        }
    }

    pub(crate) fn lower(self) -> &'static str {
        match self {
            Kind::Startup => "startup",
            Kind::Liveness => "liveness",
            Kind::Readiness => "readiness",
        }
    }
}

/// What a probe task tells its pod worker.
#[derive(Debug)]
pub(crate) enum Report {
    /// The startup probe succeeded.
    Started,
    /// Readiness changed.
    Ready(bool),
    /// A liveness or startup probe reached its failure threshold: restart the container.
    Failed(Kind),
    /// One probe attempt failed (kubelet's `Unhealthy` event).
    Unhealthy(Kind, String),
}

/// A report about one container instance.
#[derive(Debug)]
pub(crate) struct Message {
    pub(crate) container: String,
    pub(crate) instance: String,
    pub(crate) report: Report,
}

/// Builds the spec of an exec probe command run in the container's context.
pub(crate) type ExecSpec = Arc<dyn Fn(Vec<String>) -> std::io::Result<Spec> + Send + Sync>;

/// Everything a probe task needs.
pub(crate) struct Ctx {
    pub(crate) container: Container,
    pub(crate) instance: String,
    pub(crate) started: Instant,
    pub(crate) host: String,
    pub(crate) exec: ExecSpec,
    pub(crate) tx: mpsc::UnboundedSender<Message>,
}

impl Ctx {
    fn send(&self, report: Report) {
        let _ = self.tx.send(Message {
            container: self.container.name.clone(),
            instance: self.instance.clone(),
            report,
        });
    }
}

/// Runs the probes of a container instance until they are done or the task is aborted.
pub(crate) async fn run(ctx: Arc<Ctx>) {
    if let Some(p) = ctx.container.startup_probe.clone() {
        let mut w = Worker::new(Kind::Startup, &p);
        loop {
            match w.step(&ctx, &p).await {
                Some(true) => break,
                Some(false) => {
                    ctx.send(Report::Failed(Kind::Startup));
                    return;
                }
                None => {}
            }
        }
        ctx.send(Report::Started);
    }
    let live = async {
        let Some(p) = ctx.container.liveness_probe.clone() else {
            return;
        };
        let mut w = Worker::new(Kind::Liveness, &p);
        loop {
            if w.step(&ctx, &p).await == Some(false) {
                ctx.send(Report::Failed(Kind::Liveness));
                // upstream: liveness stops probing until the container restarts
                return;
            }
        }
    };
    let ready = async {
        let Some(p) = ctx.container.readiness_probe.clone() else {
            return;
        };
        let mut w = Worker::new(Kind::Readiness, &p);
        let mut last = None;
        loop {
            let r = w.step(&ctx, &p).await;
            if r.is_some() && r != last {
                ctx.send(Report::Ready(r == Some(true)));
                last = r;
            }
        }
    };
    tokio::join!(live, ready);
}

struct Worker {
    kind: Kind,
    period: Duration,
    first: bool,
    last: Option<bool>,
    run: i32,
}

impl Worker {
    fn new(kind: Kind, p: &Probe) -> Self {
        Worker {
            kind,
            period: Duration::from_secs(p.period_seconds.unwrap_or(10).max(1) as u64),
            first: true,
            last: None,
            run: 0,
        }
    }

    /// Waits for the next probe time, probes once, and returns the (thresholded) result
    /// when it is settled: `Some(true)` healthy, `Some(false)` failed, `None` undecided.
    async fn step(&mut self, ctx: &Ctx, p: &Probe) -> Option<bool> {
        if self.first {
            self.first = false;
            let delay = Duration::from_secs(p.initial_delay_seconds.unwrap_or(0).max(0) as u64);
            tokio::time::sleep_until(ctx.started + delay).await;
        } else {
            tokio::time::sleep(self.period).await;
        }
        let timeout = Duration::from_secs(p.timeout_seconds.unwrap_or(1).max(1) as u64);
        let result = probe(ctx, p, timeout).await;
        let ok = result.is_ok();
        if let Err(msg) = result {
            ctx.send(Report::Unhealthy(self.kind, msg));
        }
        if self.last == Some(ok) {
            self.run += 1;
        } else {
            self.last = Some(ok);
            self.run = 1;
        }
        let success_threshold = p.success_threshold.unwrap_or(1).max(1);
        let failure_threshold = p.failure_threshold.unwrap_or(3).max(1);
        if ok && self.run >= success_threshold {
            Some(true)
        } else if !ok && self.run >= failure_threshold {
            if self.kind != Kind::Readiness {
                self.run = 0;
            }
            Some(false)
        } else {
            None
        }
    }
}

fn port_of(c: &Container, port: &IntOrString) -> Result<u16, String> {
    match port {
        IntOrString::Int(n) => u16::try_from(*n).map_err(|_| format!("invalid port number: {n}")),
        IntOrString::String(name) => {
            if let Ok(n) = name.parse::<u16>() {
                return Ok(n);
            }
            c.ports
                .iter()
                .flatten()
                .find(|p| p.name.as_deref() == Some(name.as_str()))
                .and_then(|p| u16::try_from(p.container_port).ok())
                .ok_or_else(|| format!("couldn't find port: {name} in {}", c.name))
        }
    }
}

/// One probe attempt: `Ok` when healthy, else the failure message kubelet would give.
async fn probe(ctx: &Ctx, p: &Probe, timeout: Duration) -> Result<(), String> {
    if let Some(h) = &p.http_get {
        let port = port_of(&ctx.container, &h.port)?;
        let host = h
            .host
            .clone()
            .filter(|h| !h.is_empty())
            .unwrap_or_else(|| ctx.host.clone());
        let path = h.path.clone().filter(|p| !p.is_empty()).unwrap_or_else(|| "/".into());
        let scheme = h.scheme.as_deref().unwrap_or("HTTP").to_lowercase();
        let url = format!("{scheme}://{host}:{port}{path}");
        if scheme != "http" {
            return Err(format!(
                "Get \"{url}\": HTTPS probes are not supported by the process runtime"
            ));
        }
        let mut headers = String::new();
        let mut has_ua = false;
        let mut has_accept = false;
        for hd in h.http_headers.iter().flatten() {
            has_ua |= hd.name.eq_ignore_ascii_case("user-agent");
            has_accept |= hd.name.eq_ignore_ascii_case("accept");
            headers.push_str(&format!("{}: {}\r\n", hd.name, hd.value));
        }
        if !has_ua {
            headers.push_str("User-Agent: kube-probe/1.33\r\n");
        }
        if !has_accept {
            headers.push_str("Accept: */*\r\n");
        }
        let req = format!("GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\n{headers}Connection: close\r\n\r\n");
        let attempt = async {
            let mut s = tokio::net::TcpStream::connect((host.as_str(), port))
                .await
                .map_err(|e| format!("Get \"{url}\": dial tcp {host}:{port}: connect: {}", io_msg(&e)))?;
            s.write_all(req.as_bytes())
                .await
                .map_err(|e| format!("Get \"{url}\": {e}"))?;
            let mut buf = Vec::new();
            let mut chunk = [0u8; 1024];
            while !buf.windows(2).any(|w| w == b"\r\n") {
                let n = s.read(&mut chunk).await.map_err(|e| format!("Get \"{url}\": {e}"))?;
                if n == 0 {
                    return Err(format!("Get \"{url}\": EOF"));
                }
                buf.extend_from_slice(&chunk[..n]);
            }
            let line = String::from_utf8_lossy(&buf);
            let code: u16 = line
                .split_whitespace()
                .nth(1)
                .and_then(|c| c.parse().ok())
                .ok_or_else(|| format!("Get \"{url}\": malformed HTTP response"))?;
            if (200..400).contains(&code) {
                Ok(())
            } else {
                Err(format!("HTTP probe failed with statuscode: {code}"))
            }
        };
        return match tokio::time::timeout(timeout, attempt).await {
            Ok(r) => r,
            Err(_) => Err(format!(
                "Get \"{url}\": context deadline exceeded (Client.Timeout exceeded while awaiting headers)"
            )),
        };
    }
    if let Some(t) = &p.tcp_socket {
        let port = port_of(&ctx.container, &t.port)?;
        let host = t
            .host
            .clone()
            .filter(|h| !h.is_empty())
            .unwrap_or_else(|| ctx.host.clone());
        return match tokio::time::timeout(timeout, tokio::net::TcpStream::connect((host.as_str(), port))).await {
            Ok(Ok(_)) => Ok(()),
            Ok(Err(e)) => Err(format!("dial tcp {host}:{port}: connect: {}", io_msg(&e))),
            Err(_) => Err(format!("dial tcp {host}:{port}: i/o timeout")),
        };
    }
    if let Some(e) = &p.exec {
        let command = e.command.clone().unwrap_or_default();
        if command.is_empty() {
            return Err("exec probe has no command".into());
        }
        let spec = (ctx.exec)(command.clone()).map_err(|e| e.to_string())?;
        let mut child = spawn::spawn(spec).map_err(|e| format!("exec {:?}: {e}", command[0]))?;
        let pid = child.id().map(|p| p as i32).unwrap_or(0);
        let mut out = child.stdout.take();
        let mut err = child.stderr.take();
        let run = async {
            let mut o = Vec::new();
            let mut e2 = Vec::new();
            let ro = async {
                if let Some(r) = out.as_mut() {
                    let _ = r.read_to_end(&mut o).await;
                }
            };
            let re = async {
                if let Some(r) = err.as_mut() {
                    let _ = r.read_to_end(&mut e2).await;
                }
            };
            let (_, _, status) = tokio::join!(ro, re, child.wait());
            o.extend(e2);
            (status, o)
        };
        return match tokio::time::timeout(timeout, run).await {
            Ok((Ok(st), _)) if st.success() => Ok(()),
            Ok((_, output)) => Err(String::from_utf8_lossy(&output).into_owned()),
            Err(_) => {
                spawn::signal_group(pid, libc::SIGKILL);
                Err(format!("command {:?} timed out", command.join(" ")))
            }
        };
    }
    if p.grpc.is_some() {
        return Err("gRPC probes are not supported by the process runtime".into());
    }
    Ok(())
}

fn io_msg(e: &std::io::Error) -> String {
    match e.kind() {
        std::io::ErrorKind::ConnectionRefused => "connection refused".into(),
        _ => e.to_string(),
    }
}
