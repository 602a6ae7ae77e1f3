//! The standard cron syntax check CronJob validation runs (robfig/cron `ParseStandard`),
//! with robfig's error texts for the common mistakes.

const DESCRIPTORS: &[&str] = &[
    "@yearly",
    "@annually",
    "@monthly",
    "@weekly",
    "@daily",
    "@midnight",
    "@hourly",
];
const MONTHS: &[&str] = &[
    "jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec",
];
const DAYS: &[&str] = &["sun", "mon", "tue", "wed", "thu", "fri", "sat"];

/// Checks a schedule; `Err` holds the message upstream puts after the value.
pub(crate) fn check(schedule: &str) -> Result<(), String> {
    if schedule.starts_with("TZ=") || schedule.starts_with("CRON_TZ=") {
        return Err("cannot use TZ or CRON_TZ in schedule, use timeZone field instead".into());
    }
    if schedule.starts_with('@') {
        if DESCRIPTORS.contains(&schedule) || schedule.starts_with("@every ") {
            return Ok(());
        }
        return Err(format!("unrecognized descriptor: {schedule}"));
    }
    let fields: Vec<&str> = schedule.split_whitespace().collect();
    if fields.len() != 5 {
        return Err(format!(
            "expected exactly 5 fields, found {}: [{}]",
            fields.len(),
            fields.join(" ")
        ));
    }
    let bounds: [(u32, u32, &[&str]); 5] = [(0, 59, &[]), (0, 23, &[]), (1, 31, &[]), (1, 12, MONTHS), (0, 6, DAYS)];
    for (f, (lo, hi, names)) in fields.iter().zip(bounds) {
        for part in f.split(',') {
            check_part(part, lo, hi, names)?;
        }
    }
    Ok(())
}

fn check_part(part: &str, lo: u32, hi: u32, names: &[&str]) -> Result<(), String> {
    let (range, step) = match part.split_once('/') {
        Some((r, s)) => (r, Some(s)),
        None => (part, None),
    };
    if let Some(step) = step {
        parse_num(step, &[])?;
    }
    if range == "*" || range == "?" {
        return Ok(());
    }
    let (start, end) = match range.split_once('-') {
        Some((a, b)) => (parse_num(a, names)?, parse_num(b, names)?),
        None => {
            let n = parse_num(range, names)?;
            (n, n)
        }
    };
    if start < lo {
        return Err(format!("beginning of range ({start}) below minimum ({lo}): {part}"));
    }
    if end > hi {
        return Err(format!("end of range ({end}) above maximum ({hi}): {part}"));
    }
    if start > end {
        return Err(format!(
            "beginning of range ({start}) beyond end of range ({end}): {part}"
        ));
    }
    Ok(())
}

fn parse_num(s: &str, names: &[&str]) -> Result<u32, String> {
    if let Some(i) = names.iter().position(|n| n.eq_ignore_ascii_case(s)) {
        let base = if names.len() == 12 { 1 } else { 0 };
        return Ok(i as u32 + base);
    }
    s.parse::<u32>()
        .map_err(|_| format!("failed to parse int from {s}: strconv.Atoi: parsing \"{s}\": invalid syntax"))
}

#[cfg(test)]
mod tests {
    #[test]
    fn schedules() {
        let cases = [
            ("*/5 * * * *", Ok(())),
            ("0 0 * jan-mar mon", Ok(())),
            ("@hourly", Ok(())),
            ("foo", Err("expected exactly 5 fields, found 1: [foo]".to_string())),
            (
                "60 * * * *",
                Err("end of range (60) above maximum (59): 60".to_string()),
            ),
            (
                "TZ=UTC * * * * *",
                Err("cannot use TZ or CRON_TZ in schedule, use timeZone field instead".to_string()),
            ),
        ];
        for (s, want) in cases {
            assert_eq!(super::check(s), want, "{s}");
        }
    }
}
