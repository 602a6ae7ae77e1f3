//! The `Store` trait every backend implements, and the watch stream type.

use std::pin::Pin;
use std::task::{Context, Poll};

use futures::future::BoxFuture;
use futures::stream::{BoxStream, Stream};

use crate::error::StoreError;
use crate::types::{Event, KeyValue, RangeResponse, Txn, TxnResponse};

/// A revisioned key-value store with etcd semantics, usable as `Arc<dyn Store>`.
pub trait Store: Send + Sync + 'static {
    /// The current value of `key`, if present.
    fn get(&self, key: &str) -> BoxFuture<'_, Result<Option<KeyValue>, StoreError>>;

    /// Keys starting with `prefix`, sorted, starting strictly after `start_after` when given, at most `limit` (0 = no limit).
    fn range(
        &self,
        prefix: &str,
        start_after: Option<&str>,
        limit: usize,
    ) -> BoxFuture<'_, Result<RangeResponse, StoreError>>;

    /// Runs a transaction; it is answered only once durable.
    fn txn(&self, txn: Txn) -> BoxFuture<'_, Result<TxnResponse, StoreError>>;

    /// Events under `prefix` with mod_revision >= `from_revision` (from history, then live);
    /// `from_revision <= 0` means "only changes after now".
    /// Fails with `Compacted` if `from_revision` is older than the history kept.
    fn watch(&self, prefix: &str, from_revision: i64) -> Result<WatchStream, StoreError>;

    /// The current store revision (of the last durable change).
    fn revision(&self) -> i64;

    /// Forgets watch history before `revision`: watches from older revisions then fail with `Compacted`.
    fn compact(&self, revision: i64) -> BoxFuture<'_, Result<(), StoreError>>;

    /// Commits what is queued and closes the backend now, whoever still holds a reference:
    /// later calls fail with `Closed`. The default does nothing.
    fn close(&self) -> BoxFuture<'_, ()> {
        Box::pin(futures::future::ready(()))
    }
}

/// A stream of watch events.
///
/// Each item is `Ok` with a non-empty batch of events in revision order; the events of one
/// transaction are never split across items. Events are never dropped silently: a watcher that
/// falls too far behind receives the events already queued for it, then one
/// `Err(StoreError::WatcherLagged)`, and the stream ends. The stream also ends (without an error)
/// when the store shuts down.
pub struct WatchStream {
    inner: BoxStream<'static, Result<Vec<Event>, StoreError>>,
}

impl WatchStream {
    /// Wraps any stream of event batches (for other backends).
    pub fn new(inner: impl Stream<Item = Result<Vec<Event>, StoreError>> + Send + 'static) -> Self {
        Self { inner: Box::pin(inner) }
    }
}

impl Stream for WatchStream {
    type Item = Result<Vec<Event>, StoreError>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.inner.as_mut().poll_next(cx)
    }
}

impl std::fmt::Debug for WatchStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("WatchStream")
    }
}
