//! The scheduling queue (upstream `PriorityQueue`): an active heap ordered by priority then
//! arrival, a backoff heap for pods that failed recently, and a set of unschedulable pods that
//! wait for a cluster event (node added or changed, pod deleted) to be tried again.

use std::cmp::{Ordering, Reverse};
use std::collections::{BinaryHeap, HashMap};
use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::core::v1::Pod;
use tokio::time::Instant;

/// upstream `podMaxInUnschedulablePodsDuration`: unschedulable pods are retried at least this
/// often even without a cluster event.
pub const MAX_IN_UNSCHEDULABLE: Duration = Duration::from_secs(5 * 60);

/// A pending pod and its scheduling history.
#[derive(Debug, Clone)]
pub struct QueuedPod {
    /// The latest version of the pod seen.
    pub pod: Arc<Pod>,
    /// How many times it was popped for scheduling.
    pub attempts: u32,
    /// When the last attempt failed.
    pub last_failure: Option<Instant>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Place {
    Active(u64),
    Backoff(u64),
    Unschedulable(Instant),
}

#[derive(Debug, PartialEq, Eq)]
struct ActiveItem {
    priority: i32,
    seq: u64,
    key: String,
}

impl Ord for ActiveItem {
    // upstream PrioritySort: higher priority first, then earlier arrival.
    fn cmp(&self, other: &Self) -> Ordering {
        self.priority
            .cmp(&other.priority)
            .then_with(|| other.seq.cmp(&self.seq))
    }
}

impl PartialOrd for ActiveItem {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

/// Pending pods of this scheduler.
#[derive(Debug)]
pub struct SchedulingQueue {
    entries: HashMap<String, (QueuedPod, Place)>,
    active: BinaryHeap<ActiveItem>,
    backoff: BinaryHeap<Reverse<(Instant, u64, String)>>,
    seq: u64,
    initial_backoff: Duration,
    max_backoff: Duration,
}

fn priority(pod: &Pod) -> i32 {
    pod.spec.as_ref().and_then(|s| s.priority).unwrap_or(0)
}

impl SchedulingQueue {
    /// An empty queue with upstream's backoff bounds (1 s doubling to 10 s by default).
    pub fn new(initial_backoff: Duration, max_backoff: Duration) -> SchedulingQueue {
        SchedulingQueue {
            entries: HashMap::new(),
            active: BinaryHeap::new(),
            backoff: BinaryHeap::new(),
            seq: 0,
            initial_backoff,
            max_backoff,
        }
    }

    fn next_seq(&mut self) -> u64 {
        self.seq += 1;
        self.seq
    }

    fn push_active(&mut self, key: &str) {
        let seq = self.next_seq();
        let Some((qp, place)) = self.entries.get_mut(key) else {
            return;
        };
        *place = Place::Active(seq);
        let prio = priority(&qp.pod);
        self.active.push(ActiveItem {
            priority: prio,
            seq,
            key: key.to_string(),
        });
    }

    fn push_backoff(&mut self, key: &str, until: Instant) {
        let seq = self.next_seq();
        let Some((_, place)) = self.entries.get_mut(key) else {
            return;
        };
        *place = Place::Backoff(seq);
        self.backoff.push(Reverse((until, seq, key.to_string())));
    }

    /// upstream `calculateBackoffDuration`: initial, doubled per further attempt, capped.
    pub fn backoff_duration(&self, attempts: u32) -> Duration {
        let mut d = self.initial_backoff;
        for _ in 1..attempts {
            if d > self.max_backoff.saturating_sub(d) {
                return self.max_backoff;
            }
            d += d;
        }
        d.min(self.max_backoff)
    }

    fn backoff_expiry(&self, qp: &QueuedPod) -> Option<Instant> {
        qp.last_failure.map(|t| t + self.backoff_duration(qp.attempts))
    }

    /// Moves a waiting pod to active, or to backoff while its backoff lasts.
    fn activate(&mut self, key: &str, now: Instant) {
        let Some((qp, _)) = self.entries.get(key) else { return };
        match self.backoff_expiry(qp) {
            Some(until) if until > now => self.push_backoff(key, until),
            _ => self.push_active(key),
        }
    }

    /// Adds a new pending pod, or records a newer version of a queued one. An unschedulable
    /// pod whose spec or labels changed is tried again (upstream `isPodUpdated`).
    pub fn add_or_update(&mut self, key: &str, pod: Arc<Pod>, now: Instant) {
        match self.entries.get_mut(key) {
            None => {
                self.entries.insert(
                    key.to_string(),
                    (
                        QueuedPod {
                            pod,
                            attempts: 0,
                            last_failure: None,
                        },
                        Place::Active(0),
                    ),
                );
                self.push_active(key);
            }
            Some((qp, place)) => {
                let changed = qp.pod.spec != pod.spec
                    || qp.pod.metadata.labels != pod.metadata.labels
                    || qp.pod.metadata.annotations != pod.metadata.annotations;
                let waiting = matches!(place, Place::Unschedulable(_));
                qp.pod = pod;
                if waiting && changed {
                    self.activate(key, now);
                }
            }
        }
    }

    /// Forgets a pod (deleted, bound elsewhere, or no longer ours).
    pub fn delete(&mut self, key: &str) -> bool {
        self.entries.remove(key).is_some()
    }

    /// Whether the pod is queued in any sub-queue.
    pub fn contains(&self, key: &str) -> bool {
        self.entries.contains_key(key)
    }

    /// Takes the next pod to schedule, counting the attempt; the caller puts it back with
    /// [`Self::requeue_unschedulable`] or [`Self::requeue_backoff`] when it fails.
    pub fn pop(&mut self) -> Option<(String, QueuedPod)> {
        while let Some(item) = self.active.pop() {
            match self.entries.get(&item.key) {
                Some((_, Place::Active(seq))) if *seq == item.seq => {
                    let (mut qp, _) = self.entries.remove(&item.key).expect("present");
                    qp.attempts += 1;
                    return Some((item.key, qp));
                }
                _ => continue, // stale heap entry
            }
        }
        None
    }

    /// Puts back a pod no node fits; it waits for a cluster event or the periodic flush.
    pub fn requeue_unschedulable(&mut self, key: &str, mut qp: QueuedPod, now: Instant) {
        qp.last_failure = Some(now);
        self.entries.insert(key.to_string(), (qp, Place::Unschedulable(now)));
    }

    /// Puts back a pod that failed for a transient reason (a binding error); it is retried
    /// when its backoff ends.
    pub fn requeue_backoff(&mut self, key: &str, mut qp: QueuedPod, now: Instant) {
        qp.last_failure = Some(now);
        self.entries.insert(key.to_string(), (qp, Place::Active(0)));
        self.activate(key, now);
    }

    /// upstream `MoveAllToActiveOrBackoffQueue`: a cluster event may have made unschedulable
    /// pods fit.
    pub fn move_all_unschedulable(&mut self, now: Instant) -> usize {
        let keys: Vec<String> = self
            .entries
            .iter()
            .filter(|(_, (_, p))| matches!(p, Place::Unschedulable(_)))
            .map(|(k, _)| k.clone())
            .collect();
        for k in &keys {
            self.activate(k, now);
        }
        keys.len()
    }

    /// Moves pods whose backoff ended to active, and pods unschedulable for longer than
    /// [`MAX_IN_UNSCHEDULABLE`] back into play.
    pub fn flush(&mut self, now: Instant) {
        while let Some(Reverse((until, seq, key))) = self.backoff.peek().cloned() {
            if until > now {
                break;
            }
            self.backoff.pop();
            if matches!(self.entries.get(&key), Some((_, Place::Backoff(s))) if *s == seq) {
                self.push_active(&key);
            }
        }
    }

    /// Unschedulable pods waiting longer than [`MAX_IN_UNSCHEDULABLE`] go back to active.
    pub fn flush_unschedulable_leftover(&mut self, now: Instant) {
        let keys: Vec<String> = self
            .entries
            .iter()
            .filter(
                |(_, (_, p))| matches!(p, Place::Unschedulable(t) if now.duration_since(*t) >= MAX_IN_UNSCHEDULABLE),
            )
            .map(|(k, _)| k.clone())
            .collect();
        for k in &keys {
            self.activate(k, now);
        }
    }

    /// When the earliest backoff ends.
    pub fn next_backoff(&self) -> Option<Instant> {
        self.backoff.peek().map(|Reverse((t, _, _))| *t)
    }

    /// Whether a pod is ready to pop.
    pub fn has_active(&self) -> bool {
        !self.active.is_empty()
    }

    /// Number of pending pods in all sub-queues.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether no pod is pending.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pod(name: &str, prio: i32) -> Arc<Pod> {
        Arc::new(
            serde_json::from_value(serde_json::json!({
                "metadata": {"name": name, "namespace": "d"},
                "spec": {"containers": [], "priority": prio}
            }))
            .unwrap(),
        )
    }

    #[test]
    fn priority_then_fifo() {
        let now = Instant::now();
        let mut q = SchedulingQueue::new(Duration::from_secs(1), Duration::from_secs(10));
        q.add_or_update("d/a", pod("a", 0), now);
        q.add_or_update("d/b", pod("b", 10), now);
        q.add_or_update("d/c", pod("c", 0), now);
        let order: Vec<String> = std::iter::from_fn(|| q.pop().map(|(k, _)| k)).collect();
        assert_eq!(order, vec!["d/b", "d/a", "d/c"]);
    }

    #[test]
    fn backoff_doubles_and_caps() {
        let q = SchedulingQueue::new(Duration::from_secs(1), Duration::from_secs(10));
        let got: Vec<u64> = (1..=6).map(|a| q.backoff_duration(a).as_secs()).collect();
        assert_eq!(got, vec![1, 2, 4, 8, 10, 10]);
    }

    #[test]
    fn unschedulable_waits_for_event_then_backoff() {
        let t0 = Instant::now();
        let mut q = SchedulingQueue::new(Duration::from_secs(1), Duration::from_secs(10));
        q.add_or_update("d/a", pod("a", 0), t0);
        let (k, qp) = q.pop().unwrap();
        q.requeue_unschedulable(&k, qp, t0);
        assert!(q.pop().is_none());
        q.flush(t0 + Duration::from_secs(5));
        assert!(q.pop().is_none(), "no event: stays unschedulable");
        // An event right away: still backing off (1 s after the first attempt).
        q.move_all_unschedulable(t0 + Duration::from_millis(100));
        assert!(q.pop().is_none());
        assert_eq!(q.next_backoff(), Some(t0 + Duration::from_secs(1)));
        q.flush(t0 + Duration::from_secs(1));
        let (_, qp) = q.pop().unwrap();
        assert_eq!(qp.attempts, 2);
    }

    #[test]
    fn update_of_unschedulable_pod_with_new_spec_retries() {
        let t0 = Instant::now();
        let mut q = SchedulingQueue::new(Duration::from_secs(1), Duration::from_secs(10));
        q.add_or_update("d/a", pod("a", 0), t0);
        let (k, qp) = q.pop().unwrap();
        q.requeue_unschedulable(&k, qp, t0);
        // A status-only update (same spec) does not retry.
        q.add_or_update("d/a", pod("a", 0), t0 + Duration::from_secs(2));
        assert!(q.pop().is_none());
        q.add_or_update("d/a", pod("a", 5), t0 + Duration::from_secs(2));
        assert!(q.pop().is_some());
        assert!(q.is_empty());
    }

    #[test]
    fn leftover_unschedulable_pods_are_flushed() {
        let t0 = Instant::now();
        let mut q = SchedulingQueue::new(Duration::from_secs(1), Duration::from_secs(10));
        q.add_or_update("d/a", pod("a", 0), t0);
        let (k, qp) = q.pop().unwrap();
        q.requeue_unschedulable(&k, qp, t0);
        q.flush_unschedulable_leftover(t0 + Duration::from_secs(60));
        assert!(q.pop().is_none());
        q.flush_unschedulable_leftover(t0 + MAX_IN_UNSCHEDULABLE);
        assert!(q.pop().is_some());
    }
}
