//! Per-container restart back-off, as kubelet's `flowcontrol.Backoff`.
//!
//! upstream: the first failure restarts at once and arms the back-off at the base (10 s); each
//! later restart doubles it up to the maximum (5 min); an entry untouched for twice the maximum
//! (10 min) starts over.

use std::collections::HashMap;
use std::time::Duration;

use tokio::time::Instant;

struct Entry {
    backoff: Duration,
    last_update: Instant,
}

/// Back-off state of the containers of one pod, keyed by container name.
pub(crate) struct Backoff {
    base: Duration,
    max: Duration,
    entries: HashMap<String, Entry>,
}

impl Backoff {
    pub(crate) fn new(base: Duration, max: Duration) -> Self {
        Backoff {
            base,
            max,
            entries: HashMap::new(),
        }
    }

    fn expired(&self, now: Instant, e: &Entry) -> bool {
        now.saturating_duration_since(e.last_update) > self.max * 2
    }

    /// The current back-off of `key` (the base when there is none).
    pub(crate) fn get(&self, key: &str) -> Duration {
        self.entries.get(key).map(|e| e.backoff).unwrap_or(self.base)
    }

    /// When `key`, whose container finished at `finished`, may restart; `None` when it may now.
    pub(crate) fn in_backoff_until(&self, key: &str, finished: Instant) -> Option<Instant> {
        let now = Instant::now();
        let e = self.entries.get(key)?;
        if self.expired(now, e) {
            return None;
        }
        let until = finished + e.backoff;
        (now < until).then_some(until)
    }

    /// Records a restart of `key`: arms the back-off, or doubles it.
    pub(crate) fn next(&mut self, key: &str) {
        let now = Instant::now();
        let fresh = match self.entries.get(key) {
            None => true,
            Some(e) => self.expired(now, e),
        };
        let backoff = if fresh {
            self.base
        } else {
            (self.entries[key].backoff * 2).min(self.max)
        };
        self.entries.insert(
            key.to_string(),
            Entry {
                backoff,
                last_update: now,
            },
        );
    }
}

/// A duration as Go's `time.Duration.String()` writes it (`10s`, `1m20s`, `5m0s`, `500ms`).
pub(crate) fn go_duration(d: Duration) -> String {
    let nanos = d.as_nanos();
    if nanos == 0 {
        return "0s".into();
    }
    if nanos < 1_000_000_000 {
        return if nanos.is_multiple_of(1_000_000) {
            format!("{}ms", nanos / 1_000_000)
        } else if nanos.is_multiple_of(1_000) {
            format!("{}µs", nanos / 1_000)
        } else {
            format!("{nanos}ns")
        };
    }
    let total_secs = d.as_secs();
    let frac = d.subsec_nanos();
    let (h, m, s) = (total_secs / 3600, (total_secs / 60) % 60, total_secs % 60);
    let mut secs = s.to_string();
    if frac != 0 {
        let f = format!("{frac:09}");
        secs = format!("{s}.{}", f.trim_end_matches('0'));
    }
    if h > 0 {
        format!("{h}h{m}m{secs}s")
    } else if m > 0 {
        format!("{m}m{secs}s")
    } else {
        format!("{secs}s")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_print_as_go_does() {
        let cases = [
            (Duration::from_secs(10), "10s"),
            (Duration::from_secs(80), "1m20s"),
            (Duration::from_secs(300), "5m0s"),
            (Duration::from_millis(500), "500ms"),
            (Duration::from_millis(1500), "1.5s"),
            (Duration::from_secs(3700), "1h1m40s"),
        ];
        for (d, want) in cases {
            assert_eq!(go_duration(d), want, "{d:?}");
        }
    }

    #[tokio::test]
    async fn backoff_doubles_to_the_maximum() {
        let mut b = Backoff::new(Duration::from_secs(10), Duration::from_secs(40));
        assert!(b.in_backoff_until("c", Instant::now()).is_none());
        b.next("c");
        assert_eq!(b.get("c"), Duration::from_secs(10));
        assert!(b.in_backoff_until("c", Instant::now()).is_some());
        for want in [20, 40, 40] {
            b.next("c");
            assert_eq!(b.get("c"), Duration::from_secs(want));
        }
    }
}
