//! Per-connection serving: connection caps, the per-request wrapper that bounds body reads and
//! keeps an unread request body until the response is sent, and idle tracking.

use std::collections::HashMap;
use std::convert::Infallible;
use std::net::IpAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::body::Body;
use axum::extract::Request;
use axum::response::Response;
use axum::Router;
use bytes::Bytes;
use futures::future::BoxFuture;
use http::{HeaderValue, Version};
use http_body::{Frame, SizeHint};
use http_body_util::BodyExt;
use parking_lot::Mutex;
use tokio::sync::oneshot;
use tokio::time::Instant;
use tower::{Service, ServiceExt};

use crate::body::GuardedBody;
use crate::inflight::Inflight;
use crate::limits::ServingLimits;

/// Open connections, in total and per source address.
#[derive(Default)]
pub struct ConnCaps {
    total: AtomicUsize,
    per_ip: Mutex<HashMap<IpAddr, usize>>,
    last_warning: Mutex<Option<Instant>>,
}

/// One admitted connection; dropping it frees its place.
pub struct ConnSlot {
    caps: Arc<ConnCaps>,
    ip: IpAddr,
}

impl Drop for ConnSlot {
    fn drop(&mut self) {
        self.caps.total.fetch_sub(1, Ordering::Relaxed);
        let mut m = self.caps.per_ip.lock();
        if let Some(n) = m.get_mut(&self.ip) {
            *n -= 1;
            if *n == 0 {
                m.remove(&self.ip);
            }
        }
    }
}

impl ConnCaps {
    /// Admits a connection from `ip`, or `None` (logged, at most every 10 s) when a cap is hit.
    pub fn admit(self: &Arc<Self>, ip: IpAddr, limits: &ServingLimits) -> Option<ConnSlot> {
        let mut m = self.per_ip.lock();
        let total = self.total.load(Ordering::Relaxed);
        let from_ip = m.get(&ip).copied().unwrap_or(0);
        let over_total = limits.max_connections > 0 && total >= limits.max_connections;
        let over_ip = limits.max_connections_per_ip > 0 && from_ip >= limits.max_connections_per_ip;
        if over_total || over_ip {
            drop(m);
            let mut last = self.last_warning.lock();
            if last.is_none_or(|t| t.elapsed() >= Duration::from_secs(10)) {
                *last = Some(Instant::now());
                tracing::warn!(
                    %ip,
                    open = total,
                    from_ip,
                    max = limits.max_connections,
                    max_per_ip = limits.max_connections_per_ip,
                    "connection limit reached; closing new connections"
                );
            }
            return None;
        }
        *m.entry(ip).or_insert(0) += 1;
        self.total.fetch_add(1, Ordering::Relaxed);
        Some(ConnSlot { caps: self.clone(), ip })
    }
}

/// Requests in progress on one connection, and since when it has had none.
pub struct Activity {
    active: AtomicUsize,
    idle_since: Mutex<Instant>,
}

impl Default for Activity {
    fn default() -> Self {
        Activity {
            active: AtomicUsize::new(0),
            idle_since: Mutex::new(Instant::now()),
        }
    }
}

/// A request in progress; it ends when the response body is done or dropped.
struct Busy(Arc<Activity>);

impl Drop for Busy {
    fn drop(&mut self) {
        let mut since = self.0.idle_since.lock();
        if self.0.active.fetch_sub(1, Ordering::AcqRel) == 1 {
            *since = Instant::now();
        }
    }
}

impl Activity {
    fn begin(self: &Arc<Self>) -> Busy {
        self.active.fetch_add(1, Ordering::AcqRel);
        Busy(self.clone())
    }

    /// When the connection becomes idle for `timeout`, or `None` while a request is in progress.
    pub fn idle_deadline(&self, timeout: Duration) -> Option<Instant> {
        let since = self.idle_since.lock();
        (self.active.load(Ordering::Acquire) == 0).then(|| *since + timeout)
    }
}

/// The router as one connection serves it.
#[derive(Clone)]
pub struct ConnService {
    router: Router,
    body_read_timeout: Duration,
    activity: Arc<Activity>,
    inflight: Arc<Inflight>,
}

impl ConnService {
    /// Serves `router` on a connection tracked by `activity`.
    pub fn new(router: Router, limits: &ServingLimits, activity: Arc<Activity>, inflight: Arc<Inflight>) -> Self {
        ConnService {
            router,
            body_read_timeout: limits.body_read_timeout,
            activity,
            inflight,
        }
    }
}

impl<B> Service<http::Request<B>> for ConnService
where
    B: http_body::Body<Data = Bytes> + Send + 'static,
    B::Error: Into<axum::BoxError>,
{
    type Response = Response;
    type Error = Infallible;
    type Future = BoxFuture<'static, Result<Response, Infallible>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: http::Request<B>) -> Self::Future {
        let busy = self.activity.begin();
        let (parts, body) = req.into_parts();
        let (tx, mut rx) = oneshot::channel();
        let body = GuardedBody::new(Body::new(body), Instant::now() + self.body_read_timeout, tx);
        let mut req = Request::from_parts(parts, Body::new(body));
        req.extensions_mut().insert(self.inflight.clone());
        let version = req.version();
        let router = self.router.clone();
        Box::pin(async move {
            let Ok(resp) = router.oneshot(req).await;
            // A body the handler left unread (401, 413, early errors) is kept until the
            // response is sent; an HTTP/1 connection cannot be reused after it.
            let mut unread = rx.try_recv().ok().filter(|b| !http_body::Body::is_end_stream(b));
            if version == Version::HTTP_2 {
                if let Some(b) = unread.take() {
                    unread = drain(b).await;
                }
            }
            let (mut parts, body) = resp.into_parts();
            if unread.is_some() && matches!(version, Version::HTTP_10 | Version::HTTP_11) {
                parts
                    .headers
                    .insert(http::header::CONNECTION, HeaderValue::from_static("close"));
            }
            let body = Holding {
                inner: body,
                _keep: (unread, busy),
            };
            Ok(Response::from_parts(parts, Body::new(body)))
        })
    }
}

/// Most of an unread HTTP/2 request body read (and discarded) before the response is sent.
const DRAIN_BYTES: usize = 8 << 20;
/// Longest an unread HTTP/2 request body is read before the response is sent.
const DRAIN_TIME: Duration = Duration::from_secs(5);

/// Reads an unread HTTP/2 request body to its end, discarding it, so the client finishes its
/// upload and then reads the response: answering mid-upload makes clients such as curl and
/// Go's report the reset stream instead of the status. Bounded in bytes and time (nothing is
/// kept, so memory stays flat); `Some` with what is left when a bound is hit.
async fn drain(mut body: Body) -> Option<Body> {
    let deadline = Instant::now() + DRAIN_TIME;
    let mut read = 0usize;
    while read < DRAIN_BYTES {
        match tokio::time::timeout_at(deadline, body.frame()).await {
            Ok(Some(Ok(f))) => read += f.data_ref().map_or(0, Bytes::len),
            Ok(None) | Ok(Some(Err(_))) => return None,
            Err(_) => break,
        }
    }
    Some(body)
}

/// A response body that keeps `_keep` alive until it is done or dropped.
pub struct Holding<K> {
    /// The response body.
    pub inner: Body,
    /// What lives as long as the response.
    pub _keep: K,
}

impl<K: Unpin + Send + 'static> http_body::Body for Holding<K> {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, axum::Error>>> {
        Pin::new(&mut self.inner).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn caps() {
        let caps = Arc::new(ConnCaps::default());
        let limits = ServingLimits {
            max_connections: 3,
            max_connections_per_ip: 2,
            ..Default::default()
        };
        let a: IpAddr = "127.0.0.1".parse().unwrap();
        let b: IpAddr = "127.0.0.2".parse().unwrap();
        let s1 = caps.admit(a, &limits).unwrap();
        let _s2 = caps.admit(a, &limits).unwrap();
        assert!(caps.admit(a, &limits).is_none(), "per-ip cap");
        let _s3 = caps.admit(b, &limits).unwrap();
        assert!(caps.admit(b, &limits).is_none(), "total cap");
        drop(s1);
        assert!(caps.admit(a, &limits).is_some());
    }

    #[test]
    fn idle_tracking() {
        let act = Arc::new(Activity::default());
        assert!(act.idle_deadline(Duration::from_secs(1)).is_some());
        let busy = act.begin();
        assert!(act.idle_deadline(Duration::from_secs(1)).is_none());
        drop(busy);
        assert!(act.idle_deadline(Duration::from_secs(1)).is_some());
    }
}
