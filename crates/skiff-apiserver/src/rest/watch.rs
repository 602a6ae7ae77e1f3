//! WATCH: events from the watch cache, filtered by namespace and selectors (an object moving
//! out of a selector is DELETED for that watcher), as JSON lines or Table rows, with
//! bookmarks; the stream stays open until its timeout or the client leaves.

use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::response::Response;
use bytes::Bytes;
use http::{HeaderValue, StatusCode};
use serde_json::{json, Value};
use skiff_api::protobuf::Ordered;
use skiff_api::registry::ResourceDef;
use tokio::sync::{broadcast, mpsc};
use tokio_stream::wrappers::ReceiverStream;

use super::read::{self, Selectors};
use super::storage::Server;
use super::Request;
use crate::cache::{EventKind, WatchEvent};
use crate::errors::{ApiError, ApiResult};
use crate::output::{self, Format};

/// Interval between bookmarks when the client allows them (upstream: about a minute).
const BOOKMARK_EVERY: Duration = Duration::from_secs(60);
/// How long a watch from a future resourceVersion waits for the cache to get there.
const FUTURE_RV_WAIT: Duration = Duration::from_secs(3);

/// What one watcher sends.
struct Encoder {
    def: &'static ResourceDef,
    namespace: Option<String>,
    selectors: Selectors,
    format: Format,
    sent_columns: bool,
}

impl Encoder {
    fn visible(&self, obj: &Arc<Value>) -> Option<Arc<Value>> {
        if let Some(ns) = &self.namespace {
            if obj["metadata"]["namespace"].as_str() != Some(ns.as_str()) {
                return None;
            }
        }
        let v = read::view(self.def, obj);
        self.selectors.matches(self.def, &v).then_some(v)
    }

    fn line(&mut self, kind: &str, obj: &Value) -> Bytes {
        match self.format {
            Format::Json => event_line(kind, &Ordered::object(obj)),
            Format::Metadata => event_line(kind, &output::partial(obj)),
            Format::Table(include) => {
                let first = !self.sent_columns;
                self.sent_columns = true;
                let meta = json!({"resourceVersion": obj["metadata"]["resourceVersion"]});
                event_line(kind, &output::table(self.def, [obj], include, meta, first))
            }
        }
    }

    /// The line for one cache event, if this watcher sees it.
    fn event(&mut self, ev: &WatchEvent) -> Option<Bytes> {
        let now = self.visible(&ev.object);
        // Without selectors an object and its previous state (same key, same namespace) are
        // visible alike, so the previous state is parsed only for selector watches.
        let before = if self.selectors.is_empty() {
            now.clone().filter(|_| ev.has_prev())
        } else {
            ev.prev().and_then(|p| self.visible(&p))
        };
        let kind = match (ev.kind, before.is_some(), now.is_some()) {
            (EventKind::Deleted, true, _) => "DELETED",
            (EventKind::Deleted, false, _) => return None,
            (_, false, true) => "ADDED",
            (_, true, true) => "MODIFIED",
            (_, true, false) => "DELETED",
            (_, false, false) => return None,
        };
        let obj = match (now, before) {
            (Some(n), _) => n,
            // Left the selector: the previous content at this event's resourceVersion (as upstream).
            (None, Some(b)) => {
                let mut o = (*b).clone();
                crate::meta::meta_mut(&mut o).insert("resourceVersion".into(), json!(ev.revision.to_string()));
                Arc::new(o)
            }
            (None, None) => return None,
        };
        // The common case shares one serialization among all watchers.
        if self.format == Format::Json && kind == ev.kind.as_str() && Arc::ptr_eq(&ev.object, &obj) {
            return Some(ev.json_line());
        }
        Some(self.line(kind, &obj))
    }

    fn bookmark(&mut self, revision: i64, initial_end: bool) -> Bytes {
        let mut meta = json!({"resourceVersion": revision.to_string(), "creationTimestamp": null});
        if initial_end {
            meta["annotations"] = json!({"k8s.io/initial-events-end": "true"});
        }
        let obj = match self.format {
            Format::Metadata => {
                json!({"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1", "metadata": meta})
            }
            _ => json!({"kind": self.def.kind, "apiVersion": self.def.api_version(), "metadata": meta}),
        };
        event_line("BOOKMARK", &Ordered::object(&obj))
    }
}

/// One line of a watch stream.
fn event_line(kind: &str, object: &impl serde::Serialize) -> Bytes {
    #[derive(serde::Serialize)]
    struct Line<'a, T> {
        #[serde(rename = "type")]
        kind: &'a str,
        object: &'a T,
    }
    let mut v = serde_json::to_vec(&Line { kind, object }).unwrap_or_default();
    v.push(b'\n');
    Bytes::from(v)
}

fn error_line(e: &ApiError) -> Bytes {
    event_line("ERROR", &Ordered::object(&e.to_status()))
}

fn expired(rv: i64, oldest: i64) -> ApiError {
    ApiError::gone(format!("too old resource version: {rv} ({oldest})"))
}

/// `GET ...?watch=true`.
pub async fn watch(server: Server, req: Request) -> ApiResult<Response> {
    let def = req.target.def;
    let selectors = Selectors::parse(&req)?;
    let initial = matches!(req.query.send_initial_events.as_deref(), Some("true"));
    let from = match req.query.resource_version.as_deref() {
        None | Some("") | Some("0") => None,
        Some(_) if initial => None,
        Some(s) => Some(
            s.parse::<i64>()
                .map_err(|_| ApiError::bad_request(format!("invalid resource version: {s}")))?,
        ),
    };
    if let Some(rv) = from {
        if rv > server.cache.revision()
            && tokio::time::timeout(FUTURE_RV_WAIT, server.cache.wait_for(rv))
                .await
                .is_err()
        {
            return Err(ApiError::new(
                504,
                "Timeout",
                format!("Too large resource version: {rv}, current: {}", server.cache.revision()),
            ));
        }
    }
    let bookmarks = req.query.bookmarks();
    let timeout = match req.query.timeout_seconds.as_deref().and_then(|s| s.parse::<u64>().ok()) {
        Some(t) if t > 0 => Duration::from_secs(t),
        // Upstream picks 30–60 minutes so watchers do not all reconnect at once.
        _ => Duration::from_secs(1800 + rand::random::<u64>() % 1800),
    };
    let mut enc = Encoder {
        def,
        namespace: req.target.namespace.clone(),
        selectors,
        format: req.format(),
        sent_columns: false,
    };
    let (tx, rx) = mpsc::channel::<Result<Bytes, std::io::Error>>(256);
    match server.cache.subscribe(def, from) {
        Err(oldest) => {
            let _ = tx.try_send(Ok(error_line(&expired(from.unwrap_or(0), oldest))));
        }
        Ok(sub) => {
            let cache = server.cache.clone();
            tokio::spawn(async move {
                let mut last = from.unwrap_or(sub.revision);
                for ev in &sub.backlog {
                    if let Some(line) = enc.event(ev) {
                        if tx.send(Ok(line)).await.is_err() {
                            return;
                        }
                    }
                    last = last.max(ev.revision);
                }
                if initial && bookmarks && tx.send(Ok(enc.bookmark(sub.revision, true))).await.is_err() {
                    return;
                }
                let mut live = sub.live;
                let deadline = tokio::time::sleep(timeout);
                tokio::pin!(deadline);
                let mut ticker = tokio::time::interval(BOOKMARK_EVERY);
                ticker.tick().await;
                loop {
                    let line = tokio::select! {
                        r = live.recv() => match r {
                            Ok(ev) if ev.revision <= last => continue,
                            Ok(ev) => {
                                last = ev.revision;
                                match enc.event(&ev) { Some(l) => l, None => continue }
                            }
                            Err(broadcast::error::RecvError::Lagged(_)) => {
                                // Too far behind to catch up: end with 410 so the client relists.
                                let _ = tx.send(Ok(error_line(&expired(last, cache.revision())))).await;
                                return;
                            }
                            Err(broadcast::error::RecvError::Closed) => return,
                        },
                        _ = ticker.tick(), if bookmarks => {
                            let rev = cache.revision();
                            if !live.is_empty() { continue }
                            last = last.max(rev);
                            enc.bookmark(last, false)
                        }
                        _ = tx.closed() => return,
                        _ = &mut deadline => return,
                    };
                    if tx.send(Ok(line)).await.is_err() {
                        return;
                    }
                }
            });
        }
    }
    let mut resp = Response::new(Body::from_stream(ReceiverStream::new(rx)));
    *resp.status_mut() = StatusCode::OK;
    resp.headers_mut()
        .insert(http::header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    Ok(resp)
}
