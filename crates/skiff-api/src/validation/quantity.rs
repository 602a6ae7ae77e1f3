//! Just enough of `resource.Quantity` to check its syntax and compare two values.

/// Parses a quantity string into a number, or `None` when the syntax is not upstream's
/// `^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$` form with a known suffix.
pub fn parse(q: &str) -> Option<f64> {
    let q = q.trim();
    let split = q
        .find(|c: char| !(c.is_ascii_digit() || c == '.' || c == '+' || c == '-'))
        .unwrap_or(q.len());
    let (num, suffix) = q.split_at(split);
    // Signs may only lead the number; a sign after digits belongs to an exponent suffix.
    let digits = num.strip_prefix(['+', '-']).unwrap_or(num);
    if digits.is_empty() || digits.contains(['+', '-']) || digits.matches('.').count() > 1 || digits == "." {
        return None;
    }
    let base: f64 = num.parse().ok()?;
    let mult = match suffix {
        "" => 1.0,
        "n" => 1e-9,
        "u" => 1e-6,
        "m" => 1e-3,
        "k" => 1e3,
        "M" => 1e6,
        "G" => 1e9,
        "T" => 1e12,
        "P" => 1e15,
        "E" => 1e18,
        "Ki" => 1024f64,
        "Mi" => 1024f64.powi(2),
        "Gi" => 1024f64.powi(3),
        "Ti" => 1024f64.powi(4),
        "Pi" => 1024f64.powi(5),
        "Ei" => 1024f64.powi(6),
        s if s.starts_with(['e', 'E']) => {
            let exp: i32 = s[1..].parse().ok()?;
            10f64.powi(exp)
        }
        _ => return None,
    };
    Some(base * mult)
}

/// Upstream's decoding error for a malformed quantity.
pub(crate) const QUANTITY_ERROR: &str =
    "quantities must match the regular expression '^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'";

#[cfg(test)]
mod tests {
    #[test]
    fn parses_upstream_forms() {
        let cases = [
            ("100m", Some(0.1)),
            ("1", Some(1.0)),
            ("1Gi", Some(1073741824.0)),
            ("128Mi", Some(134217728.0)),
            ("1e3", Some(1000.0)),
            ("-1", Some(-1.0)),
            ("abc", None),
            ("1Gb", None),
            ("", None),
            ("1.2.3", None),
        ];
        for (q, want) in cases {
            assert_eq!(super::parse(q), want, "{q}");
        }
    }
}
