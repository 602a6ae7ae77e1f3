//! Completed indexes of an Indexed Job as `status.completedIndexes` writes them: sorted
//! intervals, `1,3-5,7` (upstream `orderedIntervals`).

use std::collections::BTreeSet;

/// Parses `1,3-5,7`, keeping indexes below `completions` (upstream `parseIndexesFromString`).
pub fn parse(text: &str, completions: i32) -> BTreeSet<i32> {
    let mut out = BTreeSet::new();
    for part in text.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let (lo, hi) = match part.split_once('-') {
            Some((a, b)) => (a.parse::<i32>(), b.parse::<i32>()),
            None => (part.parse::<i32>(), part.parse::<i32>()),
        };
        let (Ok(lo), Ok(hi)) = (lo, hi) else {
            tracing::debug!(part, "ignoring a malformed completed index");
            continue;
        };
        out.extend((lo.max(0)..=hi.min(completions - 1)).filter(|i| *i < completions));
    }
    out
}

/// Formats indexes as sorted intervals.
pub fn format(ix: &BTreeSet<i32>) -> String {
    let mut parts: Vec<String> = Vec::new();
    let mut iter = ix.iter().copied().peekable();
    while let Some(start) = iter.next() {
        let mut end = start;
        while iter.peek() == Some(&(end + 1)) {
            end += 1;
            iter.next();
        }
        // upstream writes a pair as `3,4` and longer runs as `3-5`.
        parts.push(match end - start {
            0 => start.to_string(),
            1 => format!("{start},{end}"),
            _ => format!("{start}-{end}"),
        });
    }
    parts.join(",")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip() {
        let cases = [
            ("", 5, vec![], ""),
            ("0", 5, vec![0], "0"),
            ("0,1,2", 5, vec![0, 1, 2], "0-2"),
            ("1,3-5,7", 10, vec![1, 3, 4, 5, 7], "1,3-5,7"),
            ("3-9", 5, vec![3, 4], "3,4"),
            ("0-1,5", 10, vec![0, 1, 5], "0,1,5"),
            ("x,2", 5, vec![2], "2"),
        ];
        for (text, completions, want, formatted) in cases {
            let got = parse(text, completions);
            assert_eq!(got.iter().copied().collect::<Vec<_>>(), want, "{text}");
            assert_eq!(format(&got), formatted, "{text}");
        }
    }
}
