//! Ages and durations as upstream prints them (apimachinery `util/duration.HumanDuration`,
//! printers' `translateTimestampSince`).

use jiff::{SignedDuration, Timestamp};

/// Upstream `HumanDuration` for a non-negative duration: `"45s"`, `"5m12s"`, `"2d3h"`, `"3y"`.
pub fn human_duration(d: std::time::Duration) -> String {
    human_signed(SignedDuration::try_from(d).unwrap_or(SignedDuration::MAX))
}

/// `HumanDuration` with upstream's tolerance for clock skew: under two seconds in the future
/// is `"0s"`, further is `"<invalid>"`.
pub(crate) fn human_signed(d: SignedDuration) -> String {
    // Go's int(d.Seconds()) truncates toward zero.
    let seconds = d.as_secs();
    if seconds < -1 {
        return "<invalid>".into();
    }
    if seconds < 0 {
        return "0s".into();
    }
    if seconds < 60 * 2 {
        return format!("{seconds}s");
    }
    let minutes = seconds / 60;
    if minutes < 10 {
        let s = seconds % 60;
        return if s == 0 {
            format!("{minutes}m")
        } else {
            format!("{minutes}m{s}s")
        };
    }
    if minutes < 60 * 3 {
        return format!("{minutes}m");
    }
    let hours = seconds / 3600;
    if hours < 8 {
        let m = minutes % 60;
        return if m == 0 {
            format!("{hours}h")
        } else {
            format!("{hours}h{m}m")
        };
    }
    if hours < 48 {
        return format!("{hours}h");
    }
    if hours < 24 * 8 {
        let h = hours % 24;
        return if h == 0 {
            format!("{}d", hours / 24)
        } else {
            format!("{}d{}h", hours / 24, h)
        };
    }
    if hours < 24 * 365 * 2 {
        return format!("{}d", hours / 24);
    }
    if hours < 24 * 365 * 8 {
        let dy = (hours / 24) % 365;
        return if dy == 0 {
            format!("{}y", hours / 24 / 365)
        } else {
            format!("{}y{}d", hours / 24 / 365, dy)
        };
    }
    format!("{}y", hours / 24 / 365)
}

/// Parses an RFC 3339 timestamp (Time or MicroTime); `None` when absent or unparsable.
pub(crate) fn parse_time(v: Option<&str>) -> Option<Timestamp> {
    v.filter(|s| !s.is_empty()).and_then(|s| s.parse::<Timestamp>().ok())
}

/// Upstream `translateTimestampSince`: `"<unknown>"` for a missing time, else the age.
pub(crate) fn since(ts: Option<Timestamp>, now: Timestamp) -> String {
    match ts {
        Some(t) => human_signed(now.duration_since(t)),
        None => "<unknown>".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn human_duration_boundaries() {
        let cases: &[(&str, u64, &str)] = &[
            ("zero", 0, "0s"),
            ("seconds", 59, "59s"),
            ("under two minutes", 119, "119s"),
            ("two minutes", 120, "2m"),
            ("minutes and seconds", 312, "5m12s"),
            ("ten minutes", 600, "10m"),
            ("just under three hours", 3 * 3600 - 1, "179m"),
            ("three hours", 3 * 3600, "3h"),
            ("hours and minutes", 7 * 3600 + 59 * 60, "7h59m"),
            ("eight hours", 8 * 3600, "8h"),
            ("47 hours", 47 * 3600 + 3599, "47h"),
            ("two days", 48 * 3600, "2d"),
            ("days and hours", 2 * 86400 + 3 * 3600, "2d3h"),
            ("eight days", 8 * 86400, "8d"),
            ("729 days", 729 * 86400, "729d"),
            ("two years", 730 * 86400, "2y"),
            ("years and days", 3 * 365 * 86400 + 10 * 86400, "3y10d"),
            ("eight years", 8 * 365 * 86400, "8y"),
            ("many years", 20 * 365 * 86400 + 86400, "20y"),
        ];
        for (name, secs, want) in cases {
            assert_eq!(human_duration(Duration::from_secs(*secs)), *want, "{name}");
        }
    }

    #[test]
    fn skew_and_unknown() {
        let now: Timestamp = "2024-05-01T12:00:00Z".parse().unwrap();
        let cases: &[(&str, Option<&str>, &str)] = &[
            ("missing", None, "<unknown>"),
            ("one second ahead", Some("2024-05-01T12:00:01Z"), "0s"),
            ("far ahead", Some("2024-05-01T12:00:05Z"), "<invalid>"),
            ("five minutes ago", Some("2024-05-01T11:55:00Z"), "5m"),
            ("micro time", Some("2024-05-01T11:59:30.123456Z"), "29s"),
        ];
        for (name, ts, want) in cases {
            assert_eq!(since(parse_time(*ts), now), *want, "{name}");
        }
    }
}
