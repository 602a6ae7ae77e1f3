//! In-flight request limits, as kube-apiserver's `--max-requests-inflight` and
//! `--max-mutating-requests-inflight`: a request beyond them is answered 429 with
//! `Retry-After: 1` at once. Long-running requests (watch, exec, attach, port-forward, logs,
//! proxy) are not counted, as upstream. A request holds its place until its response is sent.
//! Upstream exempts `system:masters`; skiff's only identity is the admin, so the limits apply
//! to every request that arrives over the network (in-process components are not limited).

use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::extract::Request;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use http::{HeaderValue, Method};
use parking_lot::Mutex;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::time::Instant;

use crate::conn::Holding;
use crate::errors::ApiError;
use crate::limits::ServingLimits;

/// The two pools of in-flight requests of one server.
pub struct Inflight {
    readonly: Option<Arc<Semaphore>>,
    mutating: Option<Arc<Semaphore>>,
    last_warning: Mutex<Option<Instant>>,
}

impl Inflight {
    /// Pools sized by `limits` (0 = unlimited).
    pub fn new(limits: &ServingLimits) -> Self {
        let pool = |n: usize| (n > 0).then(|| Arc::new(Semaphore::new(n)));
        Inflight {
            readonly: pool(limits.max_requests_inflight),
            mutating: pool(limits.max_mutating_requests_inflight),
            last_warning: Mutex::new(None),
        }
    }
}

/// Subresources whose requests run long (upstream's `BasicLongRunningRequestCheck`).
const LONG_RUNNING_SUBRESOURCES: &[&str] = &["attach", "exec", "proxy", "log", "portforward"];

/// Whether the request is long-running: a watch or a streaming subresource.
fn long_running(req: &Request) -> bool {
    let watch = req
        .uri()
        .query()
        .unwrap_or("")
        .split('&')
        .any(|kv| matches!(kv.split_once('=').unwrap_or((kv, "")), ("watch", "true" | "1" | "True")));
    if watch {
        return true;
    }
    match crate::request::parse_path(req.uri().path()) {
        Some(Ok(t)) => t.sub.as_deref().is_some_and(|s| LONG_RUNNING_SUBRESOURCES.contains(&s)),
        _ => false,
    }
}

fn too_many_requests() -> Response {
    let mut r = ApiError::new(429, "TooManyRequests", "Too many requests, please try again later.").into_response();
    r.headers_mut()
        .insert(http::header::RETRY_AFTER, HeaderValue::from_static("1"));
    r
}

/// Middleware: admits the request into its pool or answers 429.
pub async fn limit(req: Request, next: Next) -> Response {
    let Some(pools) = req.extensions().get::<Arc<Inflight>>().cloned() else {
        return next.run(req).await;
    };
    let mutating = !matches!(*req.method(), Method::GET | Method::HEAD);
    let pool = if mutating { &pools.mutating } else { &pools.readonly };
    let Some(pool) = pool.clone() else {
        return next.run(req).await;
    };
    if long_running(&req) {
        return next.run(req).await;
    }
    let permit: OwnedSemaphorePermit = match pool.try_acquire_owned() {
        Ok(p) => p,
        Err(_) => {
            let mut last = pools.last_warning.lock();
            if last.is_none_or(|t| t.elapsed() >= Duration::from_secs(10)) {
                *last = Some(Instant::now());
                tracing::warn!(mutating, "in-flight request limit reached; answering 429");
            } else {
                tracing::debug!(mutating, path = req.uri().path(), "in-flight limit: 429");
            }
            return too_many_requests();
        }
    };
    let resp = next.run(req).await;
    resp.map(|b| {
        Body::new(Holding {
            inner: b,
            _keep: permit,
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::routing::{get, post};
    use axum::Router;
    use tokio::sync::Notify;
    use tower::ServiceExt;

    fn app(release: Arc<Notify>, pools: Arc<Inflight>) -> Router {
        let r2 = release.clone();
        Router::new()
            .route(
                "/slow",
                get(move || async move {
                    r2.notified().await;
                    "done"
                }),
            )
            .route("/fast", get(|| async { "ok" }).post(|| async { "ok" }))
            .route("/api/v1/pods", get(|| async { "watching" }))
            .route(
                "/post",
                post(move || async move {
                    release.notified().await;
                    "done"
                }),
            )
            .layer(axum::middleware::from_fn(limit))
            .layer(axum::Extension(pools))
    }

    fn req(method: &str, uri: &str) -> Request {
        http::Request::builder()
            .method(method)
            .uri(uri)
            .body(Body::empty())
            .unwrap()
    }

    #[tokio::test]
    async fn readonly_pool_full_is_429() {
        let release = Arc::new(Notify::new());
        let pools = Arc::new(Inflight::new(&ServingLimits {
            max_requests_inflight: 1,
            max_mutating_requests_inflight: 1,
            ..Default::default()
        }));
        let a = app(release.clone(), pools);
        let slow = tokio::spawn(a.clone().oneshot(req("GET", "/slow")));
        tokio::task::yield_now().await;
        tokio::time::sleep(Duration::from_millis(50)).await;
        let r = a.clone().oneshot(req("GET", "/fast")).await.unwrap();
        assert_eq!(r.status(), 429);
        assert_eq!(r.headers()["retry-after"], "1");
        let body = axum::body::to_bytes(r.into_body(), 1 << 20).await.unwrap();
        let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(v["reason"], "TooManyRequests");
        assert_eq!(v["message"], "Too many requests, please try again later.");
        // Mutating requests have their own pool; watches are not counted.
        assert_eq!(a.clone().oneshot(req("POST", "/fast")).await.unwrap().status(), 200);
        let w = a.clone().oneshot(req("GET", "/api/v1/pods?watch=true")).await.unwrap();
        assert_eq!(w.status(), 200);
        release.notify_one();
        let done = slow.await.unwrap().unwrap();
        // The place is held until the response body is gone.
        drop(done);
        assert_eq!(a.oneshot(req("GET", "/fast")).await.unwrap().status(), 200);
    }
}
