//! upstream `matchSuccessPolicy`: an Indexed Job may succeed early, when the indexes (or the
//! number of indexes) a rule names have succeeded.

use std::collections::BTreeSet;

use k8s_openapi::api::batch::v1::SuccessPolicy;

use super::indexes;

/// The SuccessCriteriaMet message when a rule matches the succeeded indexes.
pub fn matches(policy: &SuccessPolicy, completions: i32, succeeded: &BTreeSet<i32>) -> Option<String> {
    if succeeded.is_empty() {
        return None;
    }
    for (index, rule) in policy.rules.iter().enumerate() {
        let count = rule.succeeded_count.and_then(|c| usize::try_from(c).ok());
        let hit = match rule.succeeded_indexes.as_deref() {
            Some(text) => {
                let required = indexes::parse(text, completions);
                if required.is_empty() {
                    // A rule whose indexes do not parse never matches.
                    continue;
                }
                let contained = required.intersection(succeeded).count();
                contained == required.len() || count.is_some_and(|c| contained >= c)
            }
            None => count.is_some_and(|c| succeeded.len() >= c),
        };
        if hit {
            return Some(format!("Matched rules at index {index}"));
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn rules() {
        let policy: SuccessPolicy = serde_json::from_value(json!({"rules": [
            {"succeededIndexes": "0,2-3"},
            {"succeededIndexes": "4-9", "succeededCount": 2},
            {"succeededCount": 5}
        ]}))
        .unwrap();
        let set = |v: &[i32]| v.iter().copied().collect::<BTreeSet<i32>>();
        let cases = [
            ("nothing succeeded", set(&[]), None),
            ("all of rule 0", set(&[0, 2, 3]), Some("Matched rules at index 0")),
            ("part of rule 0", set(&[0, 2]), None),
            ("two of rule 1", set(&[5, 9]), Some("Matched rules at index 1")),
            ("five in all", set(&[0, 1, 4, 10, 11]), Some("Matched rules at index 2")),
        ];
        for (name, succeeded, want) in cases {
            assert_eq!(matches(&policy, 12, &succeeded).as_deref(), want, "{name}");
        }
    }
}
