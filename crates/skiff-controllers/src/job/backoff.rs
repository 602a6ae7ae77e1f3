//! upstream `backoffRecord`: failures since the last success, so a Job waits 10 s, 20 s,
//! 40 s … (at most 6 min) before replacing a failed pod.

use std::time::Duration;

use jiff::Timestamp;
use k8s_openapi::api::core::v1::Pod;

use super::pod_util::finished_time;

/// upstream `DefaultJobPodFailureBackOff`.
const INITIAL: Duration = Duration::from_secs(10);
/// upstream `MaxJobPodFailureBackOff`.
const MAX: Duration = Duration::from_secs(360);

/// Failures after the last success and when the last one happened.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Record {
    failures: u32,
    last_failure: Option<Timestamp>,
}

impl Record {
    /// upstream `newBackoffRecord`: this record updated with newly finished pods.
    pub fn with(&self, succeeded: &[&Pod], failed: &[&Pod]) -> Record {
        let mut failed_at: Vec<Timestamp> = failed.iter().map(|p| finished_time(p)).collect();
        failed_at.sort();
        let last_success = succeeded.iter().map(|p| finished_time(p)).max();
        match last_success {
            None if failed_at.is_empty() => self.clone(),
            None => Record {
                failures: self.failures + failed_at.len() as u32,
                last_failure: failed_at.last().copied(),
            },
            // A success resets the count; only failures after it count.
            Some(ok) => {
                let after: Vec<Timestamp> = failed_at.into_iter().filter(|t| *t > ok).collect();
                Record {
                    failures: after.len() as u32,
                    last_failure: after.last().copied(),
                }
            }
        }
    }

    /// How long to wait before creating pods again.
    pub fn remaining(&self, now: Timestamp) -> Duration {
        remaining_for(self.failures, self.last_failure, now)
    }
}

/// upstream `getRemainingTimeForFailuresCount`: 10 s doubled per failure after the first,
/// at most 6 min, counted from the last failure.
pub fn remaining_for(failures: u32, last_failure: Option<Timestamp>, now: Timestamp) -> Duration {
    let Some(last) = last_failure.filter(|_| failures > 0) else {
        return Duration::ZERO;
    };
    let mut backoff = INITIAL;
    for _ in 1..failures {
        backoff *= 2;
        if backoff >= MAX {
            backoff = MAX;
            break;
        }
    }
    let elapsed = Duration::try_from(now.duration_since(last)).unwrap_or(Duration::ZERO);
    backoff.saturating_sub(elapsed)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn finished(at: &str, phase: &str) -> Pod {
        serde_json::from_value(json!({"metadata": {"name": "p"}, "status": {"phase": phase,
            "containerStatuses": [{"name": "c", "image": "i", "imageID": "", "ready": false, "restartCount": 0,
              "state": {"terminated": {"exitCode": 1, "finishedAt": at}}}]}}))
        .unwrap()
    }

    /// (name, succeeded pods, failed pods, now, seconds left)
    type Case = (&'static str, Vec<Pod>, Vec<Pod>, &'static str, u64);

    #[test]
    fn exponential_backoff() {
        let t0: Timestamp = "2024-01-01T00:00:00Z".parse().unwrap();
        let f = |s: &str| finished(s, "Failed");
        let cases: Vec<Case> = vec![
            ("no failures", vec![], vec![], "2024-01-01T00:00:00Z", 0),
            (
                "one failure: 10s",
                vec![],
                vec![f("2024-01-01T00:00:00Z")],
                "2024-01-01T00:00:04Z",
                6,
            ),
            (
                "two failures: 20s",
                vec![],
                vec![f("2024-01-01T00:00:00Z"), f("2024-01-01T00:00:01Z")],
                "2024-01-01T00:00:01Z",
                20,
            ),
            (
                "elapsed",
                vec![],
                vec![f("2024-01-01T00:00:00Z")],
                "2024-01-01T00:01:00Z",
                0,
            ),
            (
                "success resets",
                vec![finished("2024-01-01T00:00:05Z", "Succeeded")],
                vec![f("2024-01-01T00:00:00Z")],
                "2024-01-01T00:00:06Z",
                0,
            ),
            (
                "failure after success",
                vec![finished("2024-01-01T00:00:05Z", "Succeeded")],
                vec![f("2024-01-01T00:00:00Z"), f("2024-01-01T00:00:06Z")],
                "2024-01-01T00:00:06Z",
                10,
            ),
        ];
        for (name, ok, failed, now, want) in cases {
            let ok: Vec<&Pod> = ok.iter().collect();
            let failed: Vec<&Pod> = failed.iter().collect();
            let r = Record::default().with(&ok, &failed);
            assert_eq!(r.remaining(now.parse().unwrap()), Duration::from_secs(want), "{name}");
        }
        // Many failures cap at six minutes.
        let r = Record {
            failures: 12,
            last_failure: Some(t0),
        };
        assert_eq!(r.remaining(t0), MAX);
    }
}
