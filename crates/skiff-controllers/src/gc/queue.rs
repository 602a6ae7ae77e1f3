//! A work queue like client-go's rate-limited workqueue: an item is queued once, never handed
//! to two workers at once (an add while it runs queues it again afterwards), and retried
//! with per-item exponential back-off.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap, HashSet, VecDeque};
use std::time::Duration;

use tokio::time::Instant;

use super::graph::Uid;

/// upstream `DefaultControllerRateLimiter` starts at 5 ms; 50 ms keeps retries of a slow
/// object from spinning.
const BASE_DELAY: Duration = Duration::from_millis(50);
/// Longest back-off of one item.
const MAX_DELAY: Duration = Duration::from_secs(60);

/// Items waiting for a worker.
#[derive(Debug, Default)]
pub struct Queue {
    order: VecDeque<Uid>,
    queued: HashSet<Uid>,
    processing: HashSet<Uid>,
    dirty: HashSet<Uid>,
    delayed: BinaryHeap<Reverse<(Instant, Uid)>>,
    failures: HashMap<Uid, u32>,
}

impl Queue {
    /// Queues `uid` now (once).
    pub fn add(&mut self, uid: Uid) {
        if self.processing.contains(&uid) {
            self.dirty.insert(uid);
        } else if self.queued.insert(uid) {
            self.order.push_back(uid);
        }
    }

    /// The next item for a worker.
    pub fn pop(&mut self) -> Option<Uid> {
        let uid = self.order.pop_front()?;
        self.queued.remove(&uid);
        self.processing.insert(uid);
        Some(uid)
    }

    /// A worker finished `uid`; `forget` resets its back-off.
    pub fn done(&mut self, uid: Uid, forget: bool) {
        self.processing.remove(&uid);
        if forget {
            self.failures.remove(&uid);
        }
        if self.dirty.remove(&uid) {
            self.add(uid);
        }
    }

    /// A worker wants `uid` looked at again after its back-off.
    pub fn retry(&mut self, uid: Uid) {
        let n = self.failures.entry(uid).or_insert(0);
        let delay = BASE_DELAY.saturating_mul(1 << (*n).min(20)).min(MAX_DELAY);
        *n += 1;
        self.delayed.push(Reverse((Instant::now() + delay, uid)));
        self.done(uid, false);
    }

    /// When the earliest retry is due.
    pub fn next_delayed(&self) -> Option<Instant> {
        self.delayed.peek().map(|Reverse((t, _))| *t)
    }

    /// Queues the retries that are due.
    pub fn promote(&mut self, now: Instant) {
        while let Some(Reverse((t, uid))) = self.delayed.peek().copied() {
            if t > now {
                break;
            }
            self.delayed.pop();
            self.add(uid);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn items_run_once_at_a_time_and_retry_with_backoff() {
        let (a, b) = (Uid::parse("a").0, Uid::parse("b").0);
        let mut q = Queue::default();
        q.add(a);
        q.add(a);
        q.add(b);
        assert_eq!(q.pop(), Some(a));
        q.add(a);
        assert_eq!(q.pop(), Some(b), "a is running: its new add waits");
        assert_eq!(q.pop(), None);
        q.done(a, true);
        assert_eq!(q.pop(), Some(a), "queued again after it finished");
        q.retry(a);
        assert_eq!(q.pop(), None);
        let due = q.next_delayed().unwrap();
        q.promote(due);
        assert_eq!(q.pop(), Some(a));
        q.retry(a);
        let second = q.next_delayed().unwrap();
        assert!(second - Instant::now() > BASE_DELAY, "back-off grows");
    }
}
