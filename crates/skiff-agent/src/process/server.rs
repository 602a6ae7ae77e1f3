//! The kubelet HTTP API of a process node on 127.0.0.1: `GET /containerLogs/{ns}/{pod}/{container}`
//! with kubelet's query options, `/healthz`, and the streaming endpoints (`/exec/…`, `/attach/…`,
//! `/portForward/…`, [`crate::streaming::router`] over [`super::exec::Streams`]). The API server
//! proxies `pods/log`, `exec`, `attach` and `portforward` here. Served over TLS with HTTP/1.1
//! upgrades, every request authenticated ([`crate::kubelet_tls::serve`]).

use std::collections::HashMap;
use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Path, Query, Request, State};
use axum::http::{header, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use tokio::sync::mpsc;

use super::logs::{self, Options};
use super::Agent;

/// Serves the kubelet API on `listener` until it fails.
pub(crate) async fn serve(
    listener: tokio::net::TcpListener,
    tls: Arc<rustls::ServerConfig>,
    agent: Arc<Agent>,
) -> std::io::Result<()> {
    crate::kubelet_tls::serve(listener, tls, router(agent)).await
}

fn router(agent: Arc<Agent>) -> Router {
    let streams = crate::streaming::router(Arc::new(super::exec::Streams(agent.clone())))
        .layer(middleware::from_fn_with_state(agent.clone(), running_container));
    Router::new()
        .route("/healthz", get(|| async { "ok" }))
        .route("/containerLogs/{namespace}/{pod}/{container}", get(container_logs))
        .with_state(agent)
        .merge(streams)
}

fn pod_known(agent: &Agent, ns: &str, pod: &str) -> bool {
    agent
        .pods
        .state()
        .iter()
        .any(|p| p.metadata.namespace.as_deref() == Some(ns) && p.metadata.name.as_deref() == Some(pod))
}

/// upstream kubelet answers exec and attach for a pod it does not run, or a container that is
/// not running, before upgrading: 404 `pod does not exist`, 500 `container not found ("c")`.
async fn running_container(State(agent): State<Arc<Agent>>, req: Request, next: Next) -> Response {
    let parts: Vec<&str> = req.uri().path().trim_start_matches('/').split('/').collect();
    match parts.as_slice() {
        ["exec" | "attach", ns, pod, container] if agent.running.get(ns, pod, container).is_none() => {
            if !pod_known(&agent, ns, pod) {
                return (StatusCode::NOT_FOUND, "pod does not exist").into_response();
            }
            return (StatusCode::INTERNAL_SERVER_ERROR, super::exec::not_found(container)).into_response();
        }
        ["portForward", ns, pod] if !pod_known(&agent, ns, pod) => {
            return (StatusCode::NOT_FOUND, "pod does not exist").into_response();
        }
        _ => {}
    }
    next.run(req).await
}

fn bad_request(msg: String) -> Response {
    (StatusCode::BAD_REQUEST, msg).into_response()
}

/// Go's `strconv.ParseBool`.
fn parse_bool(v: Option<&String>) -> Result<bool, String> {
    match v.map(|s| s.as_str()) {
        None | Some("") => Ok(false),
        Some("1" | "t" | "T" | "true" | "TRUE" | "True") => Ok(true),
        Some("0" | "f" | "F" | "false" | "FALSE" | "False") => Ok(false),
        Some(other) => Err(format!("strconv.ParseBool: parsing {other:?}: invalid syntax")),
    }
}

fn parse_options(q: &HashMap<String, String>) -> Result<(Options, bool), String> {
    let int = |k: &str| -> Result<Option<i64>, String> {
        q.get(k)
            .filter(|v| !v.is_empty())
            .map(|v| v.parse::<i64>().map_err(|_| format!("invalid {k}: {v:?}")))
            .transpose()
    };
    let mut o = Options {
        follow: parse_bool(q.get("follow"))?,
        timestamps: parse_bool(q.get("timestamps"))?,
        ..Default::default()
    };
    if let Some(n) = int("tailLines")? {
        if n < 0 {
            return Err("tailLines must be non-negative".into());
        }
        o.tail_lines = Some(n as usize);
    }
    if let Some(n) = int("limitBytes")? {
        if n < 1 {
            return Err("limitBytes must be a positive integer".into());
        }
        o.limit_bytes = Some(n as usize);
    }
    if let Some(s) = int("sinceSeconds")? {
        if s < 1 {
            return Err("sinceSeconds must be a positive integer".into());
        }
        o.since = Some(jiff::Timestamp::now() - jiff::SignedDuration::from_secs(s));
    }
    if let Some(t) = q.get("sinceTime").filter(|v| !v.is_empty()) {
        let ts: jiff::Timestamp = t.parse().map_err(|e| format!("invalid sinceTime {t:?}: {e}"))?;
        o.since = Some(ts);
    }
    Ok((o, parse_bool(q.get("previous"))?))
}

/// upstream kubelet `getContainerLogs`.
async fn container_logs(
    State(agent): State<Arc<Agent>>,
    Path((namespace, pod, container)): Path<(String, String, String)>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let (opts, previous) = match parse_options(&q) {
        Ok(x) => x,
        Err(e) => return bad_request(e),
    };
    let Some(logs) = agent.logs.get(&namespace, &pod) else {
        let known = agent.pods.state().iter().any(|p| {
            p.metadata.namespace.as_deref() == Some(namespace.as_str())
                && p.metadata.name.as_deref() == Some(pod.as_str())
        });
        if known {
            return bad_request(format!(
                "container {container:?} in pod {pod:?} is waiting to start: ContainerCreating"
            ));
        }
        return (StatusCode::NOT_FOUND, format!("pod {namespace}/{pod} not found")).into_response();
    };
    let Some(c) = logs.containers.get(&container) else {
        return bad_request(format!("container {container} is not valid for pod {pod}"));
    };
    let inst = if previous {
        match &c.previous {
            Some(i) => i.clone(),
            None => {
                return bad_request(format!(
                    "previous terminated container {container:?} in pod {pod:?} not found"
                ))
            }
        }
    } else {
        match &c.current {
            Some(i) => i.clone(),
            None => {
                let reason = c.waiting.clone().unwrap_or_else(|| "ContainerCreating".into());
                return bad_request(format!(
                    "container {container:?} in pod {pod:?} is waiting to start: {reason}"
                ));
            }
        }
    };
    let (tx, mut rx) = mpsc::channel::<Vec<u8>>(16);
    tokio::spawn(logs::stream(inst, opts, tx));
    let body = futures::stream::poll_fn(move |cx| {
        rx.poll_recv(cx)
            .map(|o| o.map(|chunk| Ok::<_, std::io::Error>(bytes_of(chunk))))
    });
    Response::builder()
        .status(StatusCode::OK)
        .header(header::CONTENT_TYPE, "text/plain")
        .body(Body::from_stream(body))
        .unwrap_or_else(|_| StatusCode::INTERNAL_SERVER_ERROR.into_response())
}

fn bytes_of(v: Vec<u8>) -> axum::body::Bytes {
    axum::body::Bytes::from(v)
}
