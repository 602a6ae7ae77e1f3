//! `metav1.LabelSelector` checks and a tiny matcher for "selector matches template labels".

use super::cause::{forbidden, invalid, required, Cause};
use super::json::{arr, s};
use super::names::{label_value, labels, qualified_name};
use serde_json::Value;

/// `ValidateLabelSelector`.
pub(crate) fn validate(sel: &Value, path: &str, out: &mut Vec<Cause>) {
    for (i, e) in arr(sel, &["matchExpressions"]).iter().enumerate() {
        let p = format!("{path}.matchExpressions[{i}]");
        let values = arr(e, &["values"]);
        match s(e, &["operator"]) {
            "In" | "NotIn" => {
                if values.is_empty() {
                    out.push(required(
                        &format!("{p}.values"),
                        "must be specified when `operator` is 'In' or 'NotIn'",
                    ));
                }
            }
            "Exists" | "DoesNotExist" => {
                if !values.is_empty() {
                    out.push(forbidden(
                        &format!("{p}.values"),
                        "may not be specified when `operator` is 'Exists' or 'DoesNotExist'",
                    ));
                }
            }
            op => out.push(invalid(&format!("{p}.operator"), op, "not a valid selector operator")),
        }
        let key = s(e, &["key"]);
        for msg in qualified_name(key) {
            out.push(invalid(&format!("{p}.key"), key, &msg));
        }
        for (j, v) in values.iter().enumerate() {
            if let Some(v) = v.as_str() {
                for msg in label_value(v) {
                    out.push(invalid(&format!("{p}.values[{j}]"), v, &msg));
                }
            }
        }
    }
    labels(sel.get("matchLabels"), &format!("{path}.matchLabels"), out);
}

/// Whether the selector has no requirements at all.
pub(crate) fn is_empty(sel: &Value) -> bool {
    sel.get("matchLabels")
        .and_then(Value::as_object)
        .is_none_or(|m| m.is_empty())
        && arr(sel, &["matchExpressions"]).is_empty()
}

/// Whether a selector (`matchLabels` and `matchExpressions`) selects the given labels;
/// `None` when the selector cannot be converted (unknown operator).
pub(crate) fn matches(sel: &Value, labels: Option<&Value>) -> Option<bool> {
    let get = |k: &str| labels.and_then(|l| l.get(k)).and_then(Value::as_str);
    if let Some(m) = sel.get("matchLabels").and_then(Value::as_object) {
        for (k, v) in m {
            if get(k) != v.as_str() {
                return Some(false);
            }
        }
    }
    for e in arr(sel, &["matchExpressions"]) {
        let key = s(e, &["key"]);
        let values: Vec<&str> = arr(e, &["values"]).iter().filter_map(Value::as_str).collect();
        let ok = match s(e, &["operator"]) {
            "In" => get(key).is_some_and(|v| values.contains(&v)),
            "NotIn" => get(key).is_none_or(|v| !values.contains(&v)),
            "Exists" => get(key).is_some(),
            "DoesNotExist" => get(key).is_none(),
            _ => return None,
        };
        if !ok {
            return Some(false);
        }
    }
    Some(true)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    #[test]
    fn matcher_follows_selector_semantics() {
        let labels = json!({"app": "web", "tier": "fe"});
        let cases = [
            ("match labels", json!({"matchLabels": {"app": "web"}}), Some(true)),
            ("mismatch", json!({"matchLabels": {"app": "db"}}), Some(false)),
            (
                "in",
                json!({"matchExpressions": [{"key": "tier", "operator": "In", "values": ["fe", "be"]}]}),
                Some(true),
            ),
            (
                "notin",
                json!({"matchExpressions": [{"key": "tier", "operator": "NotIn", "values": ["fe"]}]}),
                Some(false),
            ),
            (
                "exists",
                json!({"matchExpressions": [{"key": "app", "operator": "Exists"}]}),
                Some(true),
            ),
            (
                "does not exist",
                json!({"matchExpressions": [{"key": "x", "operator": "DoesNotExist"}]}),
                Some(true),
            ),
            (
                "bad op",
                json!({"matchExpressions": [{"key": "x", "operator": "Near"}]}),
                None,
            ),
        ];
        for (name, sel, want) in cases {
            assert_eq!(super::matches(&sel, Some(&labels)), want, "{name}");
        }
    }
}
