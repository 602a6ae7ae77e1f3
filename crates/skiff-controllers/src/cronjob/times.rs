//! Which scheduled time a CronJob owes a Job for, and when to look again (upstream
//! `mostRecentScheduleTime`, `nextScheduleTime`, `nextScheduleTimeDuration`).

use std::time::Duration;

use jiff::tz::TimeZone;
use jiff::{SignedDuration, Timestamp};

use super::schedule::Schedule;

/// upstream: `nextScheduleDelta`, padding so a wake-up lands just after the scheduled time.
const NEXT_SCHEDULE_DELTA: SignedDuration = SignedDuration::from_millis(100);

/// What a CronJob's schedule owes at `now`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Recent {
    /// The last schedule time, or the creation time when there is none.
    pub earliest: Timestamp,
    /// The most recent scheduled time not after `now`, when one passed since `earliest`.
    pub most_recent: Option<Timestamp>,
    /// An estimate of how many scheduled times passed (upstream's count, for the warning).
    pub missed: i64,
}

/// The inputs of the computation, read from the CronJob.
pub(super) struct Inputs<'a> {
    pub schedule: &'a Schedule,
    pub tz: &'a TimeZone,
    pub created: Timestamp,
    pub last_schedule: Option<Timestamp>,
    pub starting_deadline_seconds: Option<i64>,
}

/// upstream `mostRecentScheduleTime`; `Err` for a schedule whose activations are less than a
/// second apart or never come.
pub(super) fn most_recent(inp: &Inputs, now: Timestamp, include_deadline: bool) -> Result<Recent, String> {
    let mut earliest = inp.last_schedule.unwrap_or(inp.created);
    if include_deadline {
        if let Some(sds) = inp.starting_deadline_seconds {
            // The controller schedules nothing older than the deadline.
            let deadline = now - SignedDuration::from_secs(sds);
            if deadline > earliest {
                earliest = deadline;
            }
        }
    }
    let none = |missed| Recent {
        earliest,
        most_recent: None,
        missed,
    };
    let next = |t| inp.schedule.next(t, inp.tz);
    let Some(t1) = next(earliest) else {
        return Err("time difference between two schedules is less than 1 second".into());
    };
    if now < t1 {
        return Ok(none(0));
    }
    let Some(t2) = next(t1) else {
        return Err("time difference between two schedules is less than 1 second".into());
    };
    if now < t2 {
        return Ok(Recent {
            earliest,
            most_recent: Some(t1),
            missed: 1,
        });
    }
    let interval = t2
        .duration_since(t1)
        .round(jiff::Unit::Second)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    if interval < 1 {
        return Err("time difference between two schedules is less than 1 second".into());
    }
    let elapsed = now.duration_since(t1).as_secs();
    let missed = elapsed / interval + 1;
    // Jump close to now by the first interval, one interval early so irregular schedules
    // (weekdays only, hour lists) are then walked exactly.
    let mut t = t1 + SignedDuration::from_secs((missed - 2) * interval);
    let mut most_recent = None;
    while let Some(n) = next(t).filter(|n| *n <= now) {
        most_recent = Some(n);
        t = n;
    }
    Ok(Recent {
        earliest,
        most_recent,
        missed,
    })
}

/// upstream `nextScheduleTimeDuration`: how long until the next scheduled time (plus 100 ms).
pub(super) fn until_next(inp: &Inputs, now: Timestamp) -> Option<Duration> {
    let base = match most_recent(inp, now, false) {
        Ok(r) => r.most_recent.unwrap_or(r.earliest),
        Err(_) => now,
    };
    let next = inp.schedule.next(base, inp.tz)?;
    let wait = (next + NEXT_SCHEDULE_DELTA).duration_since(now);
    Some(Duration::try_from(wait).unwrap_or(Duration::ZERO))
}

#[cfg(test)]
mod tests {
    use super::super::schedule::parse;
    use super::*;

    fn ts(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    /// (name, schedule, created, last schedule, deadline, now, want most recent, want missed)
    type Case<'a> = (
        &'a str,
        &'a str,
        &'a str,
        Option<&'a str>,
        Option<i64>,
        &'a str,
        Option<&'a str>,
        i64,
    );

    #[test]
    fn most_recent_schedule_time() {
        let cases: &[Case] = &[
            (
                "nothing due yet",
                "0 * * * *",
                "2024-05-01T10:05:00Z",
                None,
                None,
                "2024-05-01T10:30:00Z",
                None,
                0,
            ),
            (
                "one due",
                "0 * * * *",
                "2024-05-01T10:05:00Z",
                None,
                None,
                "2024-05-01T11:00:30Z",
                Some("2024-05-01T11:00:00Z"),
                1,
            ),
            (
                "from the last schedule time",
                "*/1 * * * *",
                "2024-05-01T00:00:00Z",
                Some("2024-05-01T10:00:00Z"),
                None,
                "2024-05-01T10:01:10Z",
                Some("2024-05-01T10:01:00Z"),
                1,
            ),
            (
                "several missed: the latest",
                "0 * * * *",
                "2024-05-01T10:05:00Z",
                None,
                None,
                "2024-05-01T15:10:00Z",
                Some("2024-05-01T15:00:00Z"),
                5,
            ),
            (
                "more than 100 missed",
                "*/1 * * * *",
                "2024-05-01T00:00:00Z",
                None,
                None,
                "2024-05-01T03:00:30Z",
                Some("2024-05-01T03:00:00Z"),
                180,
            ),
            (
                "deadline bounds the past",
                "*/1 * * * *",
                "2024-05-01T00:00:00Z",
                None,
                Some(200),
                "2024-05-01T03:00:30Z",
                Some("2024-05-01T03:00:00Z"),
                3,
            ),
            (
                "irregular: weekdays",
                "30 6-16/4 * * 1-5",
                "2024-05-03T00:00:00Z",
                None,
                None,
                "2024-05-06T07:00:00Z",
                Some("2024-05-06T06:30:00Z"),
                19,
            ),
        ];
        for (name, spec, created, last, sds, now, want, missed) in cases {
            let schedule = parse(spec).unwrap();
            let inp = Inputs {
                schedule: &schedule,
                tz: &TimeZone::UTC,
                created: ts(created),
                last_schedule: last.map(ts),
                starting_deadline_seconds: *sds,
            };
            let got = most_recent(&inp, ts(now), true).unwrap();
            assert_eq!(got.most_recent, want.map(ts), "{name}");
            assert_eq!(got.missed, *missed, "{name}: missed");
        }
    }

    #[test]
    fn next_wake_up() {
        let schedule = parse("*/1 * * * *").unwrap();
        let inp = Inputs {
            schedule: &schedule,
            tz: &TimeZone::UTC,
            created: ts("2024-05-01T10:00:20Z"),
            last_schedule: None,
            starting_deadline_seconds: None,
        };
        let d = until_next(&inp, ts("2024-05-01T10:00:30Z")).unwrap();
        assert_eq!(d, Duration::from_millis(30_100));
    }
}
