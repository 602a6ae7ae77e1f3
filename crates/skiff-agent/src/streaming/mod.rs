//! The kubelet streaming server: `exec`, `attach` and `port-forward` as the API server proxies
//! them (`/exec/{ns}/{pod}/{container}?command=…`, `/attach/…`, `/portForward/{ns}/{pod}`).
//!
//! Transports, as kubectl 1.27–1.33 use them:
//! - SPDY/3.1 (`Upgrade: SPDY/3.1`, protocol chosen from `X-Stream-Protocol-Version`):
//!   `v4.channel.k8s.io` … `channel.k8s.io` for exec/attach, `portforward.k8s.io` for
//!   port-forward. Every kubectl can fall back to it.
//! - WebSocket channels (`v5.channel.k8s.io`, `v4.channel.k8s.io`, `channel.k8s.io` and the
//!   `base64.` variants): exec/attach from kubectl 1.30+, and the channel form of port-forward.
//! - WebSocket carrying SPDY (`SPDY/3.1+portforward.k8s.io`): port-forward from kubectl 1.31+.
//!
//! The runtime behind it is a [`StreamRuntime`]; [`local::LocalProcessRuntime`] runs commands as
//! local processes (used by tests and usable as a building block by the process runtime).

pub mod local;
mod portforward;
mod remotecommand;
pub mod spdy;
mod ws;

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{ready, Context, Poll};

use axum::extract::{Path, Request, State};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use bytes::Bytes;
use futures::future::BoxFuture;
use serde::{Deserialize, Serialize};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::sync::mpsc;

pub type BoxRead = Box<dyn AsyncRead + Send + Unpin>;
pub type BoxWrite = Box<dyn AsyncWrite + Send + Unpin>;

/// Which standard streams the client asked for (`stdin=true&stdout=true&…`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct StreamOpts {
    pub stdin: bool,
    pub stdout: bool,
    pub stderr: bool,
    pub tty: bool,
}

/// A terminal size as clients send it on the resize stream (`{"Width":80,"Height":24}`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TerminalSize {
    #[serde(rename = "Width")]
    pub width: u16,
    #[serde(rename = "Height")]
    pub height: u16,
}

/// How a command (or an attached process) ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Exit {
    Code(i32),
    Signal(i32),
    /// The runtime lost track of it, or it could not run.
    Error(String),
}

/// The pipes of a running command. Each is `Some` only when the corresponding stream was asked
/// for (stderr is `None` with a TTY, where it is merged into stdout).
pub struct Session {
    pub stdin: Option<BoxWrite>,
    pub stdout: Option<BoxRead>,
    pub stderr: Option<BoxRead>,
    /// Terminal size changes (TTY only).
    pub resize: Option<mpsc::Sender<TerminalSize>>,
    /// Resolves when the command ends. Dropping it before that means the client went away: the
    /// runtime should then stop an exec'd command.
    pub exit: BoxFuture<'static, Exit>,
}

/// Why a session could not start.
#[derive(Debug, thiserror::Error)]
pub enum StreamError {
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    Unsupported(String),
    #[error("{0}")]
    Failed(String),
}

/// What the node's runtime provides to the streaming server.
pub trait StreamRuntime: Send + Sync + 'static {
    /// Starts `command` in the container (`opts.tty`: on a new pseudo-terminal).
    fn exec(
        &self,
        ns: &str,
        pod: &str,
        container: &str,
        command: Vec<String>,
        opts: StreamOpts,
    ) -> BoxFuture<'static, Result<Session, StreamError>>;

    /// Attaches to the container's main process: its stdin if the container has `stdin: true`,
    /// its output from now on.
    fn attach(
        &self,
        ns: &str,
        pod: &str,
        container: &str,
        opts: StreamOpts,
    ) -> BoxFuture<'static, Result<Session, StreamError>>;

    /// Opens a TCP connection to `port` inside the pod.
    fn port_forward(
        &self,
        ns: &str,
        pod: &str,
        port: u16,
    ) -> BoxFuture<'static, Result<tokio::net::TcpStream, StreamError>>;
}

/// The streaming routes (GET and POST each). Serve them with HTTP/1.1 upgrades enabled
/// (`axum::serve` does; with hyper-util use `serve_connection_with_upgrades`).
pub fn router(rt: Arc<dyn StreamRuntime>) -> Router {
    Router::new()
        .route("/exec/{ns}/{pod}/{container}", get(exec).post(exec))
        .route("/attach/{ns}/{pod}/{container}", get(attach).post(attach))
        .route("/portForward/{ns}/{pod}", get(port_forward).post(port_forward))
        .with_state(rt)
}

/// The pod and container a request is for.
#[derive(Clone, Debug)]
pub(crate) struct Target {
    pub ns: String,
    pub pod: String,
    pub container: String,
}

async fn exec(
    State(rt): State<Arc<dyn StreamRuntime>>,
    Path((ns, pod, container)): Path<(String, String, String)>,
    req: Request,
) -> Response {
    let q = Query::parse(req.uri().query());
    let command = q.all("command");
    if command.is_empty() {
        return bad_request("you must specify at least one command for the container");
    }
    remotecommand::serve(rt, Target { ns, pod, container }, Some(command), req).await
}

async fn attach(
    State(rt): State<Arc<dyn StreamRuntime>>,
    Path((ns, pod, container)): Path<(String, String, String)>,
    req: Request,
) -> Response {
    remotecommand::serve(rt, Target { ns, pod, container }, None, req).await
}

async fn port_forward(
    State(rt): State<Arc<dyn StreamRuntime>>,
    Path((ns, pod)): Path<(String, String)>,
    req: Request,
) -> Response {
    portforward::serve(
        rt,
        Target {
            ns,
            pod,
            container: String::new(),
        },
        req,
    )
    .await
}

pub(crate) fn bad_request(msg: impl Into<String>) -> Response {
    (http::StatusCode::BAD_REQUEST, msg.into()).into_response()
}

/// The decoded query string.
pub(crate) struct Query(Vec<(String, String)>);

impl Query {
    pub fn parse(raw: Option<&str>) -> Self {
        Self(serde_urlencoded::from_str(raw.unwrap_or("")).unwrap_or_default())
    }

    pub fn all(&self, key: &str) -> Vec<String> {
        self.0
            .iter()
            .filter(|(k, _)| k == key)
            .map(|(_, v)| v.clone())
            .collect()
    }

    pub fn flag(&self, key: &str) -> bool {
        self.0
            .iter()
            .any(|(k, v)| k == key && matches!(v.as_str(), "1" | "true" | "True" | "TRUE"))
    }
}

/// Transport detection on the raw request.
pub(crate) fn is_websocket(req: &Request) -> bool {
    header_tokens(req, http::header::UPGRADE).any(|t| t.eq_ignore_ascii_case("websocket"))
}

pub(crate) fn is_spdy(req: &Request) -> bool {
    header_tokens(req, http::header::UPGRADE).any(|t| t.eq_ignore_ascii_case("SPDY/3.1"))
}

/// All comma-separated values of a (possibly repeated) header.
pub(crate) fn header_tokens<'a>(
    req: &'a Request,
    name: impl http::header::AsHeaderName,
) -> impl Iterator<Item = &'a str> + 'a {
    req.headers()
        .get_all(name)
        .into_iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .filter(|t| !t.is_empty())
}

/// Picks the first protocol the client offers (in its order) that we support, as upstream's
/// `httpstream.Handshake` does. `Ok(None)`: the client offered none (legacy). `Err`: the 403
/// answer when there is no common protocol.
pub(crate) fn negotiate_spdy(req: &Request, supported: &[&'static str]) -> Result<Option<&'static str>, Box<Response>> {
    let offered: Vec<&str> = header_tokens(req, "x-stream-protocol-version").collect();
    if offered.is_empty() {
        return Ok(None);
    }
    if let Some(p) = offered.iter().find_map(|o| supported.iter().find(|s| *s == o)) {
        return Ok(Some(*p));
    }
    let msg = format!(
        "unable to upgrade: unable to negotiate protocol: client supports {offered:?}, server supports {supported:?}"
    );
    let mut resp = (http::StatusCode::FORBIDDEN, msg).into_response();
    for s in supported {
        resp.headers_mut()
            .append("x-accepted-stream-protocol-versions", http::HeaderValue::from_static(s));
    }
    Err(Box::new(resp))
}

/// The 101 answer to a SPDY upgrade.
pub(crate) fn spdy_switching(protocol: Option<&str>) -> Response {
    let mut resp = Response::new(axum::body::Body::empty());
    *resp.status_mut() = http::StatusCode::SWITCHING_PROTOCOLS;
    let h = resp.headers_mut();
    h.insert(http::header::CONNECTION, http::HeaderValue::from_static("Upgrade"));
    h.insert(http::header::UPGRADE, http::HeaderValue::from_static("SPDY/3.1"));
    if let Some(p) = protocol.and_then(|p| http::HeaderValue::from_str(p).ok()) {
        h.insert("x-stream-protocol-version", p);
    }
    resp
}

/// An [`AsyncRead`] over chunks arriving on a channel; end of input when every sender is gone.
pub(crate) struct ChanReader {
    rx: mpsc::Receiver<Bytes>,
    buf: Bytes,
}

impl ChanReader {
    pub fn new(rx: mpsc::Receiver<Bytes>) -> Self {
        Self { rx, buf: Bytes::new() }
    }
}

impl AsyncRead for ChanReader {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, out: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        while self.buf.is_empty() {
            match ready!(self.rx.poll_recv(cx)) {
                Some(b) => self.buf = b,
                None => return Poll::Ready(Ok(())),
            }
        }
        let n = self.buf.len().min(out.remaining());
        let chunk = self.buf.split_to(n);
        out.put_slice(&chunk);
        Poll::Ready(Ok(()))
    }
}

/// A reader and a writer joined into one duplex stream.
pub(crate) struct Joined<R, W>(pub R, pub W);

impl<R: AsyncRead + Unpin, W: Unpin> AsyncRead for Joined<R, W> {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_read(cx, buf)
    }
}

impl<R: Unpin, W: AsyncWrite + Unpin> AsyncWrite for Joined<R, W> {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.1).poll_write(cx, buf)
    }
    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.1).poll_flush(cx)
    }
    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.1).poll_shutdown(cx)
    }
}
