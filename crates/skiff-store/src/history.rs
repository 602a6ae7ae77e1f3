//! In-memory event history (a bounded ring) and live fan-out to watchers.
//!
//! The ring and the watcher list share one lock, so registering a watch (replaying history,
//! then subscribing) is atomic with respect to publishing a commit: no event falls in between.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::Arc;

use parking_lot::Mutex;
use tokio::sync::mpsc;

use crate::error::StoreError;
use crate::store::WatchStream;
use crate::types::Event;

/// Most events put in one replayed history item.
const REPLAY_CHUNK: usize = 1000;

/// Watch history and watchers of one store.
pub(crate) struct Hub {
    inner: Mutex<HubInner>,
    revision: AtomicI64,
    watch_queue: usize,
}

struct HubInner {
    ring: VecDeque<Event>,
    capacity: usize,
    /// Bytes of keys and values held by `ring`, and the most it may hold.
    bytes: usize,
    max_bytes: usize,
    /// Oldest revision a watch can start from.
    floor: i64,
    watchers: Vec<WatcherTx>,
}

struct WatcherTx {
    prefix: String,
    tx: mpsc::Sender<Vec<Event>>,
    lagged: Arc<AtomicBool>,
}

impl Hub {
    /// A hub for a store at `revision` with no history; keeps at most `capacity` events and
    /// `max_bytes` of their keys and values, and queues `watch_queue` batches per watcher before
    /// dropping it as lagged.
    pub(crate) fn new(revision: i64, capacity: usize, max_bytes: usize, watch_queue: usize) -> Self {
        Hub {
            inner: Mutex::new(HubInner {
                ring: VecDeque::new(),
                capacity: capacity.max(1),
                bytes: 0,
                max_bytes,
                floor: revision + 1,
                watchers: Vec::new(),
            }),
            revision: AtomicI64::new(revision),
            watch_queue: watch_queue.max(1),
        }
    }

    /// The revision of the last published change.
    pub(crate) fn revision(&self) -> i64 {
        self.revision.load(Ordering::Acquire)
    }

    /// Records the events of a durable commit that reached `revision`, and sends them to watchers.
    pub(crate) fn publish(&self, events: Vec<Event>, revision: i64) {
        let mut inner = self.inner.lock();
        self.revision.store(revision, Ordering::Release);
        if events.is_empty() {
            return;
        }
        inner.watchers.retain(|w| {
            let matching: Vec<Event> = events
                .iter()
                .filter(|e| e.kv.key.starts_with(&w.prefix))
                .cloned()
                .collect();
            if matching.is_empty() {
                return !w.tx.is_closed();
            }
            match w.tx.try_send(matching) {
                Ok(()) => true,
                Err(mpsc::error::TrySendError::Full(_)) => {
                    // Dropping the sender ends the stream after what is queued; the flag turns that end into an error.
                    w.lagged.store(true, Ordering::Release);
                    false
                }
                Err(mpsc::error::TrySendError::Closed(_)) => false,
            }
        });
        inner.bytes += events.iter().map(event_bytes).sum::<usize>();
        inner.ring.extend(events);
        inner.evict_over_capacity();
    }

    /// Starts a watch of `prefix` from `from_revision` (<= 0: after the current revision).
    pub(crate) fn watch(&self, prefix: &str, from_revision: i64) -> Result<WatchStream, StoreError> {
        let mut inner = self.inner.lock();
        let current = self.revision.load(Ordering::Acquire);
        let from = if from_revision <= 0 { current + 1 } else { from_revision };
        if from < inner.floor {
            return Err(StoreError::Compacted {
                compact_revision: inner.floor,
            });
        }
        let start = inner.ring.partition_point(|e| e.kv.mod_revision < from);
        let backlog = chunk_by_revision(
            inner
                .ring
                .range(start..)
                .filter(|e| e.kv.key.starts_with(prefix))
                .cloned(),
        );
        let (tx, rx) = mpsc::channel(self.watch_queue);
        let lagged = Arc::new(AtomicBool::new(false));
        inner.watchers.push(WatcherTx {
            prefix: prefix.to_owned(),
            tx,
            lagged: lagged.clone(),
        });
        drop(inner);
        let replay = futures::stream::iter(backlog.into_iter().map(Ok));
        let live = futures::stream::unfold(Some((rx, lagged)), |state| async move {
            let (mut rx, lagged) = state?;
            match rx.recv().await {
                Some(batch) => Some((Ok(batch), Some((rx, lagged)))),
                None if lagged.load(Ordering::Acquire) => Some((Err(StoreError::WatcherLagged), None)),
                None => None,
            }
        });
        Ok(WatchStream::new(futures::StreamExt::chain(replay, live)))
    }

    /// Forgets history before `revision`.
    pub(crate) fn compact(&self, revision: i64) -> Result<(), StoreError> {
        let mut inner = self.inner.lock();
        if revision > self.revision.load(Ordering::Acquire) {
            return Err(StoreError::FutureRevision);
        }
        while inner.ring.front().is_some_and(|e| e.kv.mod_revision < revision) {
            inner.pop_front();
        }
        inner.floor = inner.floor.max(revision);
        Ok(())
    }

    /// Number of live watchers (for tests and metrics).
    pub(crate) fn watcher_count(&self) -> usize {
        self.inner.lock().watchers.len()
    }
}

impl HubInner {
    /// Drops the oldest revisions, whole, until the ring fits its event and byte limits.
    fn evict_over_capacity(&mut self) {
        while self.ring.len() > self.capacity || self.bytes > self.max_bytes {
            let Some(oldest) = self.ring.front().map(|e| e.kv.mod_revision) else {
                break;
            };
            while self.ring.front().is_some_and(|e| e.kv.mod_revision == oldest) {
                self.pop_front();
            }
            self.floor = self.floor.max(oldest + 1);
        }
    }

    fn pop_front(&mut self) {
        if let Some(event) = self.ring.pop_front() {
            self.bytes -= event_bytes(&event);
        }
    }
}

/// Memory an event holds in the ring, roughly: its key and values.
fn event_bytes(e: &Event) -> usize {
    e.kv.key.len() + e.kv.value.len() + e.prev.as_ref().map_or(0, |p| p.key.len() + p.value.len())
}

/// Splits events into items of about `REPLAY_CHUNK`, never splitting one revision.
fn chunk_by_revision(events: impl Iterator<Item = Event>) -> Vec<Vec<Event>> {
    let mut chunks: Vec<Vec<Event>> = Vec::new();
    let mut current: Vec<Event> = Vec::new();
    for event in events {
        let same_revision = current
            .last()
            .is_some_and(|last| last.kv.mod_revision == event.kv.mod_revision);
        if current.len() >= REPLAY_CHUNK && !same_revision {
            chunks.push(std::mem::take(&mut current));
        }
        current.push(event);
    }
    if !current.is_empty() {
        chunks.push(current);
    }
    chunks
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::types::{EventType, KeyValue};

    fn event(revision: i64) -> Event {
        let kv = KeyValue {
            key: "k".into(),
            value: bytes::Bytes::new(),
            create_revision: revision,
            mod_revision: revision,
            version: 1,
        };
        Event {
            kind: EventType::Put,
            kv,
            prev: None,
        }
    }

    #[test]
    fn replay_chunks_never_split_a_revision() {
        // (name, revisions of the events, expected chunk sizes)
        let cases: Vec<(&str, Vec<i64>, Vec<usize>)> = vec![
            ("empty", vec![], vec![]),
            ("small", vec![1, 2, 3], vec![3]),
            ("one per revision", (0..2500).collect(), vec![1000, 1000, 500]),
            ("big revision stays whole", vec![7; 1500], vec![1500]),
            (
                "revision crossing the limit",
                (0..999).chain([5000, 5000, 5000]).chain([6000]).collect(),
                vec![1002, 1],
            ),
        ];
        for (name, revisions, want) in cases {
            let chunks = chunk_by_revision(revisions.into_iter().map(event));
            assert_eq!(chunks.iter().map(Vec::len).collect::<Vec<_>>(), want, "{name}");
        }
    }
}
