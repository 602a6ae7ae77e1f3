//! Event correlation as client-go's `EventCorrelator` does it, for every recorder in skiff
//! (controllers and node agents):
//!
//! - an event repeating the same source, object, type, reason *and* message is counted into
//!   the first one (a growing series: `x7 over 2m`); a different message is a new event;
//! - once [`MAX_SIMILAR`] different messages of one source, object, type and reason arrive
//!   within [`SIMILAR_WINDOW`], that one and the rest are counted into one event whose
//!   message is `(combined from similar events): <latest message>`.
//!
//! This decides only; the recorder does the requests.

use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

/// How long a recorded event can still grow a series (client-go and kube use 6 minutes).
pub const SERIES_TTL: Duration = Duration::from_secs(6 * 60);
/// Distinct messages of one kind of event before they are combined (client-go
/// `defaultAggregateMaxEvents`).
pub const MAX_SIMILAR: usize = 10;
/// The window of that count (client-go `defaultAggregateIntervalInSeconds`, 600).
pub const SIMILAR_WINDOW: Duration = Duration::from_secs(600);
/// The prefix of a combined event's message (client-go).
pub const COMBINED_PREFIX: &str = "(combined from similar events): ";

/// Past this many remembered entries the expired ones are dropped, at most every 10 s.
const SWEEP_AT: usize = 4096;

/// What identifies an event for correlation, message aside.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Source {
    /// Reporting component and instance.
    pub reporter: (String, String),
    /// kind, namespace, name, uid and field path of the object (not its resourceVersion).
    pub regarding: [Option<String>; 5],
    /// `Normal` or `Warning`.
    pub type_: String,
    /// The reason.
    pub reason: String,
    /// The action (events.k8s.io).
    pub action: String,
}

/// What to do with an event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision<T> {
    /// Create a new event with this message.
    Create {
        /// The message to record (possibly combined).
        note: String,
    },
    /// Count it into the recorded event `event` (its series count becomes `count`), with
    /// this message.
    Count {
        /// The event recorded earlier, as the recorder stored it.
        event: T,
        /// The new count.
        count: i32,
        /// The message to record (a combined event takes the latest).
        note: String,
    },
}

struct Series<T> {
    event: T,
    count: i32,
    at: Instant,
}

struct Similar {
    messages: HashSet<String>,
    since: Instant,
}

/// The correlation state of one recorder; `T` is the recorder's stored event.
pub struct Correlator<T> {
    series: HashMap<(Source, String), Series<T>>,
    similar: HashMap<Source, Similar>,
    swept: Instant,
}

impl<T> Default for Correlator<T> {
    fn default() -> Self {
        Correlator {
            series: HashMap::new(),
            similar: HashMap::new(),
            swept: Instant::now(),
        }
    }
}

impl<T: Clone> Correlator<T> {
    /// Decides how an event of `source` with message `note` is recorded at `now`.
    pub fn observe(&mut self, source: &Source, note: &str, now: Instant) -> Decision<T> {
        self.sweep(now);
        let similar = self.similar.entry(source.clone()).or_insert_with(|| Similar {
            messages: HashSet::new(),
            since: now,
        });
        if now.duration_since(similar.since) > SIMILAR_WINDOW {
            similar.messages.clear();
            similar.since = now;
        }
        similar.messages.insert(note.to_string());
        // client-go: the key of a combined event leaves the message out.
        let (key, note) = if similar.messages.len() >= MAX_SIMILAR {
            (String::new(), format!("{COMBINED_PREFIX}{note}"))
        } else {
            (note.to_string(), note.to_string())
        };
        match self.series.get(&(source.clone(), key)) {
            Some(s) if now.duration_since(s.at) < SERIES_TTL => Decision::Count {
                event: s.event.clone(),
                count: s.count + 1,
                note,
            },
            _ => Decision::Create { note },
        }
    }

    /// Remembers the event recorded for `source` and `note` (as [`Decision`] gave it) with
    /// its count.
    pub fn recorded(&mut self, source: Source, note: &str, event: T, count: i32, now: Instant) {
        let key = if note.starts_with(COMBINED_PREFIX) {
            String::new()
        } else {
            note.to_string()
        };
        self.series.insert((source, key), Series { event, count, at: now });
    }

    fn sweep(&mut self, now: Instant) {
        if self.series.len() + self.similar.len() > SWEEP_AT && now.duration_since(self.swept) > Duration::from_secs(10)
        {
            self.series.retain(|_, s| now.duration_since(s.at) < SERIES_TTL);
            self.similar.retain(|_, s| now.duration_since(s.since) < SIMILAR_WINDOW);
            self.swept = now;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn source(reason: &str) -> Source {
        Source {
            reporter: ("kubelet".into(), "n1".into()),
            regarding: [
                Some("Pod".into()),
                Some("default".into()),
                Some("p".into()),
                Some("uid".into()),
                Some("spec.containers{c}".into()),
            ],
            type_: "Warning".into(),
            reason: reason.into(),
            action: reason.into(),
        }
    }

    /// Records like a recorder would; returns (event id, count, note).
    fn record(c: &mut Correlator<u32>, next: &mut u32, s: &Source, note: &str, now: Instant) -> (u32, i32, String) {
        let (id, count, note) = match c.observe(s, note, now) {
            Decision::Create { note } => {
                *next += 1;
                (*next, 1, note)
            }
            Decision::Count { event, count, note } => (event, count, note),
        };
        c.recorded(s.clone(), &note, id, count, now);
        (id, count, note)
    }

    #[test]
    fn same_message_counts_and_different_messages_are_distinct() {
        let mut c = Correlator::default();
        let mut next = 0;
        let t = Instant::now();
        let s = source("Unhealthy");
        let refused = "Liveness probe failed: dial tcp 127.0.0.1:8080: connect: connection refused";
        let status = "Readiness probe failed: HTTP probe failed with statuscode: 500";
        assert_eq!(record(&mut c, &mut next, &s, refused, t).0, 1);
        assert_eq!(record(&mut c, &mut next, &s, refused, t), (1, 2, refused.to_string()));
        assert_eq!(record(&mut c, &mut next, &s, status, t), (2, 1, status.to_string()));
        assert_eq!(record(&mut c, &mut next, &s, refused, t).1, 3);
        // Another reason is another event even with the same message.
        assert_eq!(record(&mut c, &mut next, &source("Killing"), refused, t).0, 3);
        // A series expires.
        assert_eq!(record(&mut c, &mut next, &s, refused, t + SERIES_TTL).0, 4);
    }

    #[test]
    fn many_similar_messages_are_combined() {
        let mut c = Correlator::default();
        let mut next = 0;
        let t = Instant::now();
        let s = source("Unhealthy");
        for i in 1..MAX_SIMILAR {
            let (id, count, _) = record(&mut c, &mut next, &s, &format!("m{i}"), t);
            assert_eq!((id, count), (i as u32, 1));
        }
        let (id, count, note) = record(&mut c, &mut next, &s, "m10", t);
        assert_eq!((id, count), (10, 1));
        assert_eq!(note, "(combined from similar events): m10");
        let (id, count, note) = record(&mut c, &mut next, &s, "m11", t);
        assert_eq!((id, count), (10, 2));
        assert_eq!(note, "(combined from similar events): m11");
        // Within the window every message is combined now, as client-go does.
        assert_eq!(record(&mut c, &mut next, &s, "m3", t).0, 10);
        // After the window messages are their own again.
        assert_eq!(record(&mut c, &mut next, &s, "m3", t + SIMILAR_WINDOW * 2).2, "m3");
    }
}
