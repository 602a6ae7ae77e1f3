//! The HTTP surface: authentication, health and version endpoints, discovery, OpenAPI and
//! the resource handlers, served over TLS with HTTP/2 and HTTP/1.1.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use http::{HeaderMap, HeaderValue, StatusCode};
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::service::TowerToHyperService;
use serde_json::json;
use skiff_api::openapi;
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;

use crate::conn::{Activity, ConnCaps, ConnService};
use crate::discovery;
use crate::errors::ApiError;
use crate::inflight::Inflight;
use crate::limits::ServingLimits;
use crate::output::json_response;
use crate::request::{self, Query};
use crate::rest;
use crate::state::ApiServer;

/// The Kubernetes version skiff reports (kubectl picks its client from the minor).
pub const KUBE_MINOR: &str = "33";
/// `gitVersion` of [`KUBE_MINOR`].
pub const KUBE_GIT_VERSION: &str = "v1.33.0";

type Shared = Arc<ApiServer>;

/// Paths served without credentials, as upstream's `system:public-info-viewer` allows.
fn is_public(path: &str) -> bool {
    ["/healthz", "/livez", "/readyz", "/version"]
        .iter()
        .any(|p| path == *p || path.starts_with(&format!("{p}/")))
}

async fn authenticate(State(s): State<Shared>, req: Request, next: Next) -> Response {
    if is_public(req.uri().path()) {
        return next.run(req).await;
    }
    let ok = req
        .headers()
        .get(http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .is_some_and(|t| t.trim() == s.admin_token);
    if !ok {
        // Answered without reading the body: the connection keeps the unread body until the
        // response is sent (see conn::ConnService), so HTTP/2 clients see the 401.
        return ApiError::unauthorized().into_response();
    }
    if let Some(refused) = crate::impersonate::refuse(req.headers()) {
        return refused.into_response();
    }
    next.run(req).await
}

fn bytes_response(content_type: &str, bytes: &'static [u8]) -> Response {
    let mut r = Response::new(Body::from(bytes));
    if let Ok(v) = HeaderValue::from_str(content_type) {
        r.headers_mut().insert(http::header::CONTENT_TYPE, v);
    }
    r
}

async fn healthy() -> &'static str {
    "ok"
}

async fn version() -> Response {
    let v = json!({
        "major": "1",
        "minor": KUBE_MINOR,
        "gitVersion": KUBE_GIT_VERSION,
        "gitCommit": "skiff",
        "gitTreeState": "clean",
        "buildDate": "2025-04-23T00:00:00Z",
        "goVersion": "go1.24.2",
        "compiler": "gc",
        "platform": format!("linux/{}", if cfg!(target_arch = "aarch64") { "arm64" } else { "amd64" }),
        "emulationMajor": "1",
        "emulationMinor": KUBE_MINOR,
        "minCompatibilityMajor": "1",
        "minCompatibilityMinor": "32",
    });
    json_response(StatusCode::OK, &v, &[])
}

async fn openapi_v2(headers: HeaderMap) -> Response {
    let accept = headers
        .get(http::header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if accept.contains("protobuf") {
        bytes_response(openapi::V2_PROTOBUF_CONTENT_TYPE, openapi::v2_protobuf())
    } else {
        bytes_response("application/json", openapi::v2_json())
    }
}

async fn openapi_v2_pb() -> Response {
    bytes_response(openapi::V2_PROTOBUF_CONTENT_TYPE, openapi::v2_protobuf())
}

async fn openapi_v3_index() -> Response {
    bytes_response("application/json", openapi::v3_index())
}

async fn openapi_v3_doc(req: Request) -> Response {
    let path = req.uri().path().trim_start_matches("/openapi/v3/");
    match openapi::v3_document(path) {
        Some(d) => bytes_response("application/json", d),
        None => ApiError::no_route().into_response(),
    }
}

/// Discovery documents and resource requests.
async fn api(State(s): State<Shared>, req: Request) -> Response {
    let (parts, body) = req.into_parts();
    let path = parts.uri.path().to_string();
    let segs: Vec<&str> = path.trim_matches('/').split('/').collect();
    let aggregated = discovery::aggregated_version(&parts.headers);
    let discovery_doc = match segs.as_slice() {
        ["api"] | ["apis"] => {
            let core = segs[0] == "api";
            return match aggregated {
                Some(v) => {
                    let mut r = json_response(StatusCode::OK, &discovery::aggregated(v, core), &[]);
                    if let Ok(ct) = HeaderValue::from_str(&discovery::aggregated_content_type(v)) {
                        r.headers_mut().insert(http::header::CONTENT_TYPE, ct);
                    }
                    r
                }
                None if core => json_response(StatusCode::OK, &discovery::api_versions(), &[]),
                None => json_response(StatusCode::OK, &discovery::api_group_list(), &[]),
            };
        }
        ["api", v] => discovery::resource_list("", v),
        ["apis", g] => discovery::api_group(g),
        ["apis", g, v] => discovery::resource_list(g, v),
        _ => None,
    };
    if let Some(doc) = discovery_doc {
        return json_response(StatusCode::OK, &doc, &[]);
    }
    let target = match request::parse_path(&path) {
        Some(Ok(t)) => t,
        Some(Err(e)) => return e.into_response(),
        None => return ApiError::no_route().into_response(),
    };
    let query = match Query::parse(parts.uri.query()) {
        Ok(q) => q,
        Err(e) => return e.into_response(),
    };
    if matches!(target.sub.as_deref(), Some("exec" | "attach" | "portforward")) {
        return rest::connect(&s, &target, parts)
            .await
            .unwrap_or_else(IntoResponse::into_response);
    }
    let r = rest::Request {
        target,
        query,
        headers: parts.headers,
        raw_query: parts.uri.query().unwrap_or("").to_string(),
    };
    rest::dispatch(s, parts.method, r, body).await
}

/// The router of every endpoint.
pub fn router(server: Shared) -> Router {
    Router::new()
        .route("/healthz", get(healthy))
        .route("/livez", get(healthy))
        .route("/readyz", get(healthy))
        .route("/version", get(version))
        .route("/openapi/v2", get(openapi_v2))
        .route("/swagger-2.0.0.pb-v1", get(openapi_v2_pb))
        .route("/openapi/v3", get(openapi_v3_index))
        .route("/openapi/v3/{*path}", get(openapi_v3_doc))
        .fallback(api)
        .layer(middleware::from_fn(crate::inflight::limit))
        .layer(middleware::from_fn_with_state(server.clone(), authenticate))
        .with_state(server)
}

/// Accepts TLS connections on `listener` and serves `router` on each until the process ends,
/// within `limits` (connection caps, handshake, header, idle and body timeouts, in-flight caps).
pub async fn serve(listener: TcpListener, tls: Arc<rustls::ServerConfig>, router: Router, limits: ServingLimits) {
    let acceptor = TlsAcceptor::from(tls);
    let limits = Arc::new(limits);
    let caps = Arc::new(ConnCaps::default());
    let inflight = Arc::new(Inflight::new(&limits));
    // Connections live in this set so that ending the server (aborting this task) ends them.
    let mut connections = tokio::task::JoinSet::new();
    loop {
        while connections.try_join_next().is_some() {}
        let (tcp, peer): (_, SocketAddr) = match listener.accept().await {
            Ok(c) => c,
            Err(e) => {
                // Out of file descriptors and the like: back off briefly instead of spinning.
                tracing::warn!(error = %e, "accept failed");
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                continue;
            }
        };
        let Some(slot) = caps.admit(peer.ip(), &limits) else {
            drop(tcp);
            continue;
        };
        let _ = tcp.set_nodelay(true);
        let acceptor = acceptor.clone();
        let activity = Arc::new(Activity::default());
        let svc = ConnService::new(router.clone(), &limits, activity.clone(), inflight.clone());
        let limits = limits.clone();
        connections.spawn(async move {
            let _slot = slot;
            let tls = match tokio::time::timeout(limits.tls_handshake_timeout, acceptor.accept(tcp)).await {
                Ok(Ok(t)) => t,
                Ok(Err(e)) => {
                    tracing::debug!(%peer, error = %e, "TLS handshake failed");
                    return;
                }
                Err(_) => {
                    tracing::debug!(%peer, "TLS handshake timed out");
                    return;
                }
            };
            serve_connection(tls, peer, svc, &activity, &limits).await;
        });
    }
}

/// Serves HTTP/1.1 or HTTP/2 on one TLS connection until it ends or stays idle too long.
async fn serve_connection(
    tls: tokio_rustls::server::TlsStream<tokio::net::TcpStream>,
    peer: SocketAddr,
    svc: ConnService,
    activity: &Activity,
    limits: &ServingLimits,
) {
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout);
    builder.http2().timer(TokioTimer::new());
    let conn = builder.serve_connection_with_upgrades(TokioIo::new(tls), TowerToHyperService::new(svc));
    tokio::pin!(conn);
    let mut closing = false;
    loop {
        // Re-checked at least every idle timeout, and when the connection could go idle.
        let wake = activity
            .idle_deadline(limits.idle_timeout)
            .unwrap_or_else(|| tokio::time::Instant::now() + limits.idle_timeout);
        tokio::select! {
            r = conn.as_mut() => {
                if let Err(e) = r {
                    tracing::debug!(%peer, error = %e, "connection ended with error");
                }
                return;
            }
            _ = tokio::time::sleep_until(wake), if !closing => {
                if activity.idle_deadline(limits.idle_timeout).is_some_and(|d| d <= tokio::time::Instant::now()) {
                    tracing::debug!(%peer, "closing idle connection");
                    conn.as_mut().graceful_shutdown();
                    closing = true;
                }
            }
        }
    }
}
