//! Resource quantities (`100m`, `1.5`, `128Mi`, `1e3`): parsing to integers the way upstream's
//! `resource.Quantity` rounds, and printing sums back in canonical form.

/// A quantity in thousandths, rounded up as upstream `MilliValue`; 0 when unparsable.
pub fn milli_value(q: &str) -> i64 {
    parse_scaled(q, 3).unwrap_or(0)
}

/// A quantity in whole units, rounded up as upstream `Value`; 0 when unparsable.
pub fn value(q: &str) -> i64 {
    parse_scaled(q, 0).unwrap_or(0)
}

/// Parses `q` and returns `q * 10^scale` rounded up (towards +∞), saturating at `i64` bounds.
fn parse_scaled(q: &str, scale: u32) -> Option<i64> {
    let q = q.trim();
    let split = q
        .find(|c: char| !(c.is_ascii_digit() || c == '.' || c == '+' || c == '-'))
        .unwrap_or(q.len());
    let (num, suffix) = q.split_at(split);
    let (neg, digits) = match num.as_bytes().first() {
        Some(b'-') => (true, &num[1..]),
        Some(b'+') => (false, &num[1..]),
        _ => (false, num),
    };
    if digits.is_empty() || digits == "." || digits.contains(['+', '-']) {
        return None;
    }
    let (int_part, frac_part) = digits.split_once('.').unwrap_or((digits, ""));
    if frac_part.contains('.') {
        return None;
    }
    // value = mantissa * 10^exp10 * 2^exp2 / 10^frac_len
    let mut mantissa: i128 = 0;
    for b in int_part.bytes().chain(frac_part.bytes()) {
        mantissa = mantissa.checked_mul(10)?.checked_add(i128::from(b - b'0'))?;
        if mantissa > 1i128 << 100 {
            return Some(if neg { i64::MIN } else { i64::MAX });
        }
    }
    let (exp10, exp2): (i32, u32) = match suffix {
        "" => (0, 0),
        "n" => (-9, 0),
        "u" => (-6, 0),
        "m" => (-3, 0),
        "k" => (3, 0),
        "M" => (6, 0),
        "G" => (9, 0),
        "T" => (12, 0),
        "P" => (15, 0),
        "E" => (18, 0),
        "Ki" => (0, 10),
        "Mi" => (0, 20),
        "Gi" => (0, 30),
        "Ti" => (0, 40),
        "Pi" => (0, 50),
        "Ei" => (0, 60),
        s if s.starts_with(['e', 'E']) => (s[1..].parse().ok()?, 0),
        _ => return None,
    };
    let exp10 = exp10 + scale as i32 - frac_part.len() as i32;
    let mut v = mantissa.checked_shl(exp2)?;
    if exp10 >= 0 {
        for _ in 0..exp10 {
            v = v.saturating_mul(10);
        }
    } else {
        let div = 10i128.checked_pow(exp10.unsigned_abs())?;
        // Round away from zero for positives (upstream rounds up).
        v = if neg { v / div } else { (v + div - 1) / div };
    }
    let v = if neg { -v } else { v };
    Some(v.clamp(i128::from(i64::MIN), i128::from(i64::MAX)) as i64)
}

/// Prints `milli` thousandths canonically: binary suffixes (`Ki`…`Ei`) when `binary` and the
/// value divides exactly, else decimal suffixes (`k`…`E`), else `m`, as `Quantity.String()`.
pub fn format_milli(milli: i64, binary: bool) -> String {
    if milli == 0 {
        return "0".into();
    }
    if milli % 1000 != 0 {
        return format!("{milli}m");
    }
    let v = milli / 1000;
    if binary {
        for (shift, suffix) in [(60, "Ei"), (50, "Pi"), (40, "Ti"), (30, "Gi"), (20, "Mi"), (10, "Ki")] {
            let unit = 1i64 << shift;
            if v % unit == 0 {
                return format!("{}{suffix}", v / unit);
            }
        }
        // upstream: a binary quantity that is no multiple of 1024 prints in decimal form.
    }
    for (exp, suffix) in [(18, "E"), (15, "P"), (12, "T"), (9, "G"), (6, "M"), (3, "k")] {
        let unit = 10i64.pow(exp);
        if v % unit == 0 {
            return format!("{}{suffix}", v / unit);
        }
    }
    v.to_string()
}

/// A quantity as JSON holds it: a string, or a bare number (YAML `cpu: 2`), as upstream accepts.
pub fn from_json(v: &serde_json::Value) -> Option<String> {
    match v {
        serde_json::Value::String(s) => Some(s.clone()),
        serde_json::Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// Whether a quantity is written with a binary suffix (`Ki`…`Ei`).
pub fn is_binary(q: &str) -> bool {
    q.trim_end().ends_with('i')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantities() {
        let cases = [
            ("100m", 100, 1),
            ("1", 1000, 1),
            ("1.5", 1500, 2),
            ("2", 2000, 2),
            ("1Gi", 1073741824000, 1073741824),
            ("500Mi", 524288000000, 524288000),
            ("1k", 1_000_000, 1000),
            ("1e3", 1_000_000, 1000),
            ("1u", 1, 1),
            ("0", 0, 0),
            ("bogus", 0, 0),
        ];
        for (q, milli, whole) in cases {
            assert_eq!(milli_value(q), milli, "milli {q}");
            assert_eq!(value(q), whole, "value {q}");
        }
    }

    #[test]
    fn formatting() {
        let cases = [
            (0, false, "0"),
            (500, false, "500m"),
            (1500, false, "1500m"),
            (2000, false, "2"),
            (2_000_000, false, "2k"),
            (1 << 30, true, "1073741824m"),
            ((1i64 << 30) * 1000, true, "1Gi"),
            ((1536i64 << 20) * 1000, true, "1536Mi"),
            (1_000_000, true, "1k"),
            (100_000, true, "100"),
        ];
        for (milli, binary, want) in cases {
            assert_eq!(format_milli(milli, binary), want, "{milli} binary={binary}");
        }
    }
}
