//! Cron schedules as the CronJob controller reads them: robfig/cron's `ParseStandard` (five
//! fields, lists, ranges, steps, month and day names, `@hourly`-style descriptors and `@every`)
//! and its `Next`, walked in the CronJob's time zone.
//!
//! Written here rather than taken from a crate because the controller must agree with upstream
//! on the details a general-purpose cron crate decides differently: a day-of-month or
//! day-of-week field written `*` or `*/1` makes the two day fields AND-ed while any other form
//! (even `*/2`) makes them OR-ed (robfig's "star bit"); `N/step` means `N-max/step`; there is
//! no seconds field, no `L`/`W`/`#`, and Sunday is only `0`; and times are found by walking
//! wall-clock fields with absolute hour and minute steps, so a time skipped by a DST jump does
//! not run that day and a time repeated by a DST fall-back runs twice, as on a real cluster.

use jiff::civil::date;
use jiff::tz::TimeZone;
use jiff::{SignedDuration, Timestamp, ToSpan, Zoned};

/// Marks a day field written as `*` (or `?`, or `*/1`).
const STAR: u64 = 1 << 63;

/// Why a schedule does not parse; the text follows robfig/cron's messages.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct ParseError(String);

/// A parsed schedule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Schedule {
    /// Five cron fields as bit sets (bit n set = value n allowed), day fields with [`STAR`].
    Fields {
        /// Minutes 0–59.
        minute: u64,
        /// Hours 0–23.
        hour: u64,
        /// Days of the month 1–31.
        dom: u64,
        /// Months 1–12.
        month: u64,
        /// Days of the week 0–6 (Sunday is 0).
        dow: u64,
    },
    /// `@every DURATION`: a constant delay (whole seconds, at least one).
    Every(SignedDuration),
}

struct Bounds {
    min: u32,
    max: u32,
    names: &'static [&'static str],
}

const MINUTE: Bounds = Bounds {
    min: 0,
    max: 59,
    names: &[],
};
const HOUR: Bounds = Bounds {
    min: 0,
    max: 23,
    names: &[],
};
const DOM: Bounds = Bounds {
    min: 1,
    max: 31,
    names: &[],
};
const MONTH: Bounds = Bounds {
    min: 1,
    max: 12,
    names: &[
        "jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec",
    ],
};
const DOW: Bounds = Bounds {
    min: 0,
    max: 6,
    names: &["sun", "mon", "tue", "wed", "thu", "fri", "sat"],
};

fn all(b: &Bounds) -> u64 {
    bits(b.min, b.max, 1) | STAR
}

fn bits(min: u32, max: u32, step: u32) -> u64 {
    (min..=max).step_by(step as usize).fold(0, |acc, v| acc | (1 << v))
}

/// Parses a standard schedule (robfig `ParseStandard`).
pub fn parse(spec: &str) -> Result<Schedule, ParseError> {
    let spec = spec.trim();
    if spec.is_empty() {
        return Err(ParseError("empty spec string".into()));
    }
    if spec.starts_with("TZ=") || spec.starts_with("CRON_TZ=") {
        return Err(ParseError(
            "cannot use TZ or CRON_TZ in schedule, use timeZone field instead".into(),
        ));
    }
    if let Some(rest) = spec.strip_prefix('@') {
        return descriptor(rest, spec);
    }
    let fields: Vec<&str> = spec.split_whitespace().collect();
    if fields.len() != 5 {
        return Err(ParseError(format!(
            "expected exactly 5 fields, found {}: {}",
            fields.len(),
            spec
        )));
    }
    Ok(Schedule::Fields {
        minute: field(fields[0], &MINUTE)?,
        hour: field(fields[1], &HOUR)?,
        dom: field(fields[2], &DOM)?,
        month: field(fields[3], &MONTH)? & !STAR,
        dow: field(fields[4], &DOW)?,
    })
}

fn descriptor(name: &str, spec: &str) -> Result<Schedule, ParseError> {
    let fields = |minute, hour, dom, month, dow| Schedule::Fields {
        minute,
        hour,
        dom,
        month,
        dow,
    };
    let any_month = all(&MONTH) & !STAR;
    Ok(match name {
        "yearly" | "annually" => fields(1, 1, 1 << 1, 1 << 1, all(&DOW)),
        "monthly" => fields(1, 1, 1 << 1, any_month, all(&DOW)),
        "weekly" => fields(1, 1, all(&DOM), any_month, 1),
        "daily" | "midnight" => fields(1, 1, all(&DOM), any_month, all(&DOW)),
        "hourly" => fields(1, all(&HOUR) & !STAR, all(&DOM), any_month, all(&DOW)),
        _ => match name.strip_prefix("every ") {
            Some(d) => {
                let d = go_duration(d.trim())
                    .ok_or_else(|| ParseError(format!("failed to parse duration {spec}: invalid duration")))?;
                // robfig: at least a second, and whole seconds only.
                let secs = d.as_secs().max(1);
                Schedule::Every(SignedDuration::from_secs(secs))
            }
            None => return Err(ParseError(format!("unrecognized descriptor: {spec}"))),
        },
    })
}

/// A Go `time.ParseDuration` string (`1h30m`, `90s`, `1.5h`); None when malformed.
fn go_duration(s: &str) -> Option<SignedDuration> {
    let mut rest = s;
    let mut total = 0f64;
    if rest.is_empty() {
        return None;
    }
    while !rest.is_empty() {
        let num_len = rest.find(|c: char| !(c.is_ascii_digit() || c == '.'))?;
        let n: f64 = rest[..num_len].parse().ok()?;
        rest = &rest[num_len..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let scale = match &rest[..unit_len] {
            "ns" => 1e-9,
            "us" | "µs" => 1e-6,
            "ms" => 1e-3,
            "s" => 1.0,
            "m" => 60.0,
            "h" => 3600.0,
            _ => return None,
        };
        total += n * scale;
        rest = &rest[unit_len..];
    }
    Some(SignedDuration::from_secs_f64(total))
}

fn field(text: &str, b: &Bounds) -> Result<u64, ParseError> {
    text.split(',').try_fold(0, |acc, part| Ok(acc | range(part, b)?))
}

/// One comma-separated part: `*`, `?`, `N`, `N-M`, each optionally `/STEP`.
fn range(part: &str, b: &Bounds) -> Result<u64, ParseError> {
    let (span, step) = match part.split_once('/') {
        Some((span, step)) => (span, Some(step)),
        None => (part, None),
    };
    if step.is_some_and(|s| s.contains('/')) {
        return Err(ParseError(format!("too many slashes: {part}")));
    }
    let (mut start, mut end, mut extra);
    let single;
    if span == "*" || span == "?" {
        (start, end, extra, single) = (b.min, b.max, STAR, false);
    } else {
        extra = 0;
        match span.split_once('-') {
            Some((lo, hi)) => {
                if hi.contains('-') {
                    return Err(ParseError(format!("too many hyphens: {part}")));
                }
                (start, end, single) = (number(lo, b)?, number(hi, b)?, false);
            }
            None => {
                let n = number(span, b)?;
                (start, end, single) = (n, n, true);
            }
        }
    }
    let step = match step {
        None => 1,
        Some(s) => {
            let s = plain_int(s)?;
            // robfig: `N/step` means `N-max/step`.
            if single {
                end = b.max;
            }
            if s > 1 {
                extra = 0;
            }
            s
        }
    };
    if start < b.min {
        return Err(ParseError(format!(
            "beginning of range ({start}) below minimum ({}): {part}",
            b.min
        )));
    }
    if end > b.max {
        return Err(ParseError(format!(
            "end of range ({end}) above maximum ({}): {part}",
            b.max
        )));
    }
    if start > end {
        return Err(ParseError(format!(
            "beginning of range ({start}) beyond end of range ({end}): {part}"
        )));
    }
    if step == 0 {
        return Err(ParseError(format!("step of range should be a positive number: {part}")));
    }
    start = start.max(b.min);
    Ok(bits(start, end, step) | extra)
}

fn number(s: &str, b: &Bounds) -> Result<u32, ParseError> {
    if let Some(i) = b.names.iter().position(|n| n.eq_ignore_ascii_case(s)) {
        return Ok(i as u32 + b.min);
    }
    plain_int(s)
}

fn plain_int(s: &str) -> Result<u32, ParseError> {
    s.parse::<u32>().map_err(|_| {
        ParseError(format!(
            "failed to parse int from {s}: strconv.Atoi: parsing {s:?}: invalid syntax"
        ))
    })
}

fn has(set: u64, v: i8) -> bool {
    set & (1u64 << (v as u32)) != 0
}

/// robfig `dayMatches`: AND when either day field is a star, OR otherwise.
fn day_matches(dom: u64, dow: u64, t: &Zoned) -> bool {
    let dom_ok = has(dom, t.day());
    let dow_ok = has(dow, t.weekday().to_sunday_zero_offset());
    if dom & STAR != 0 || dow & STAR != 0 {
        dom_ok && dow_ok
    } else {
        dom_ok || dow_ok
    }
}

impl Schedule {
    /// The first activation strictly after `after`, walked in `tz`; None when there is none
    /// within five years (robfig returns the zero time then, e.g. for `0 0 30 2 *`).
    pub fn next(&self, after: Timestamp, tz: &TimeZone) -> Option<Timestamp> {
        match *self {
            Schedule::Every(d) => {
                let nanos = SignedDuration::new(0, after.subsec_nanosecond());
                after.checked_add(d - nanos).ok()
            }
            Schedule::Fields {
                minute,
                hour,
                dom,
                month,
                dow,
            } => next_fields([minute, hour, dom, month, dow], after, tz),
        }
    }
}

fn at(tz: &TimeZone, y: i16, m: i8, d: i8, h: i8) -> Option<Zoned> {
    date(y, m, d).at(h, 0, 0, 0).to_zoned(tz.clone()).ok()
}

/// robfig `SpecSchedule.Next`, step for step.
fn next_fields([minute, hour, dom, month, dow]: [u64; 5], after: Timestamp, tz: &TimeZone) -> Option<Timestamp> {
    let abs = |t: &Zoned, secs: i64| t.checked_add(SignedDuration::from_secs(secs)).ok();
    // Start at the next whole second.
    let mut t = after.to_zoned(tz.clone());
    t = t
        .checked_add(SignedDuration::from_secs(1) - SignedDuration::new(0, t.subsec_nanosecond()))
        .ok()?;
    let year_limit = t.year() + 5;
    let mut added = false;
    'wrap: loop {
        if t.year() > year_limit {
            return None;
        }
        while !has(month, t.month()) {
            if !added {
                added = true;
                t = at(tz, t.year(), t.month(), 1, 0)?;
            }
            t = t.checked_add(1.month()).ok()?;
            if t.month() == 1 {
                continue 'wrap;
            }
        }
        while !day_matches(dom, dow, &t) {
            if !added {
                added = true;
                t = at(tz, t.year(), t.month(), t.day(), 0)?;
            }
            t = t.checked_add(1.day()).ok()?;
            // A DST change moved midnight: go back to it.
            let h = i64::from(t.hour());
            if h != 0 {
                t = if h > 12 {
                    abs(&t, (24 - h) * 3600)?
                } else {
                    abs(&t, -h * 3600)?
                };
            }
            if t.day() == 1 {
                continue 'wrap;
            }
        }
        while !has(hour, t.hour()) {
            if !added {
                added = true;
                t = at(tz, t.year(), t.month(), t.day(), t.hour())?;
            }
            t = abs(&t, 3600)?;
            if t.hour() == 0 {
                continue 'wrap;
            }
        }
        while !has(minute, t.minute()) {
            if !added {
                added = true;
                t = abs(&t, -i64::from(t.second()))?;
            }
            t = abs(&t, 60)?;
            if t.minute() == 0 {
                continue 'wrap;
            }
        }
        // Standard schedules fire at second 0.
        while t.second() != 0 {
            t = abs(&t, 1)?;
            if t.second() == 0 {
                continue 'wrap;
            }
        }
        return Some(t.timestamp());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ts(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    #[test]
    fn parse_accepts_and_refuses_like_robfig() {
        let cases: &[(&str, Result<(), &str>)] = &[
            ("*/1 * * * *", Ok(())),
            ("0,15,30,45 * * * *", Ok(())),
            ("0 0 * jan-mar MON", Ok(())),
            ("5/15 * * * *", Ok(())),
            ("0 9 1-7 * 1-5", Ok(())),
            ("@hourly", Ok(())),
            ("@midnight", Ok(())),
            ("@every 1h30m", Ok(())),
            ("? * * * *", Ok(())),
            ("* * * *", Err("expected exactly 5 fields, found 4: * * * *")),
            ("* * * * * *", Err("expected exactly 5 fields, found 6: * * * * * *")),
            ("60 * * * *", Err("end of range (60) above maximum (59): 60")),
            ("* * 0 * *", Err("beginning of range (0) below minimum (1): 0")),
            ("* * * * 7", Err("end of range (7) above maximum (6): 7")),
            (
                "5-1 * * * *",
                Err("beginning of range (5) beyond end of range (1): 5-1"),
            ),
            ("*/0 * * * *", Err("step of range should be a positive number: */0")),
            (
                "x * * * *",
                Err("failed to parse int from x: strconv.Atoi: parsing \"x\": invalid syntax"),
            ),
            ("@fortnightly", Err("unrecognized descriptor: @fortnightly")),
            (
                "TZ=UTC * * * * *",
                Err("cannot use TZ or CRON_TZ in schedule, use timeZone field instead"),
            ),
            (
                "CRON_TZ=Europe/Berlin 0 * * * *",
                Err("cannot use TZ or CRON_TZ in schedule, use timeZone field instead"),
            ),
        ];
        for (spec, want) in cases {
            let got = parse(spec).map(|_| ()).map_err(|e| e.to_string());
            assert_eq!(got, want.map_err(str::to_string), "{spec}");
        }
    }

    #[test]
    fn next_activation_in_utc() {
        let cases = [
            (
                "every minute",
                "*/1 * * * *",
                "2024-05-01T10:00:30Z",
                Some("2024-05-01T10:01:00Z"),
            ),
            (
                "exactly on a match moves on",
                "*/1 * * * *",
                "2024-05-01T10:01:00Z",
                Some("2024-05-01T10:02:00Z"),
            ),
            (
                "quarter hours",
                "0,15,30,45 * * * *",
                "2024-05-01T10:16:00Z",
                Some("2024-05-01T10:30:00Z"),
            ),
            (
                "N/step is N-max/step",
                "5/15 * * * *",
                "2024-05-01T10:36:00Z",
                Some("2024-05-01T10:50:00Z"),
            ),
            (
                "range with step",
                "10-30/10 * * * *",
                "2024-05-01T10:31:00Z",
                Some("2024-05-01T11:10:00Z"),
            ),
            (
                "hour wraps the day",
                "0 3 * * *",
                "2024-05-01T04:00:00Z",
                Some("2024-05-02T03:00:00Z"),
            ),
            (
                "month names",
                "0 0 1 mar *",
                "2024-05-01T00:00:00Z",
                Some("2025-03-01T00:00:00Z"),
            ),
            (
                "day names",
                "0 12 * * FRI",
                "2024-05-01T00:00:00Z",
                Some("2024-05-03T12:00:00Z"),
            ),
            // 2024-05-01 is a Wednesday: dom 15 OR Monday.
            (
                "dom and dow both restricted are OR-ed",
                "0 9 15 * mon",
                "2024-05-01T00:00:00Z",
                Some("2024-05-06T09:00:00Z"),
            ),
            (
                "a */2 day field is not a star",
                "0 9 */2 * mon",
                "2024-05-01T10:00:00Z",
                Some("2024-05-03T09:00:00Z"),
            ),
            (
                "a */1 day field is a star (AND)",
                "0 9 */1 * mon",
                "2024-05-01T10:00:00Z",
                Some("2024-05-06T09:00:00Z"),
            ),
            (
                "@hourly",
                "@hourly",
                "2024-05-01T10:59:59Z",
                Some("2024-05-01T11:00:00Z"),
            ),
            ("@daily", "@daily", "2024-05-01T10:00:00Z", Some("2024-05-02T00:00:00Z")),
            (
                "@weekly is Sunday",
                "@weekly",
                "2024-05-01T10:00:00Z",
                Some("2024-05-05T00:00:00Z"),
            ),
            (
                "@monthly",
                "@monthly",
                "2024-05-01T10:00:00Z",
                Some("2024-06-01T00:00:00Z"),
            ),
            (
                "@yearly",
                "@yearly",
                "2024-05-01T10:00:00Z",
                Some("2025-01-01T00:00:00Z"),
            ),
            (
                "leap day",
                "0 0 29 2 *",
                "2024-03-01T00:00:00Z",
                Some("2028-02-29T00:00:00Z"),
            ),
            ("impossible date", "0 0 30 2 *", "2024-03-01T00:00:00Z", None),
            (
                "@every",
                "@every 1h30m",
                "2024-05-01T10:00:00.5Z",
                Some("2024-05-01T11:30:00Z"),
            ),
        ];
        for (name, spec, after, want) in cases {
            let got = parse(spec).unwrap().next(ts(after), &TimeZone::UTC);
            assert_eq!(got, want.map(ts), "{name}: {spec} after {after}");
        }
    }

    #[test]
    fn next_activation_across_dst() {
        let ny = TimeZone::get("America/New_York").unwrap();
        let berlin = TimeZone::get("Europe/Berlin").unwrap();
        let cases = [
            // 2024-03-10 02:00 EST jumps to 03:00 EDT: 02:30 does not exist that day.
            (
                "spring-forward gap is skipped",
                "30 2 * * *",
                &ny,
                "2024-03-10T05:00:00Z",
                "2024-03-11T06:30:00Z",
            ),
            (
                "after the jump",
                "0 3 * * *",
                &ny,
                "2024-03-10T05:00:00Z",
                "2024-03-10T07:00:00Z",
            ),
            // 2024-11-03 01:00–02:00 happens twice; 01:30 runs in both.
            (
                "fall-back first 01:30",
                "30 1 * * *",
                &ny,
                "2024-11-03T04:00:00Z",
                "2024-11-03T05:30:00Z",
            ),
            (
                "fall-back second 01:30",
                "30 1 * * *",
                &ny,
                "2024-11-03T05:30:00Z",
                "2024-11-03T06:30:00Z",
            ),
            (
                "a zone's midnight",
                "0 0 * * *",
                &berlin,
                "2024-07-01T12:00:00Z",
                "2024-07-01T22:00:00Z",
            ),
            (
                "winter offset",
                "0 9 * * *",
                &berlin,
                "2024-12-01T12:00:00Z",
                "2024-12-02T08:00:00Z",
            ),
        ];
        for (name, spec, tz, after, want) in cases {
            let got = parse(spec).unwrap().next(ts(after), tz);
            assert_eq!(got, Some(ts(want)), "{name}");
        }
    }
}
