//! Small readers over `serde_json::Value` objects and shared cell formatting.

use serde_json::Value;

use crate::selector::LabelSelector;

/// The value at a dotted path.
pub(crate) fn at<'a>(v: &'a Value, path: &str) -> Option<&'a Value> {
    path.split('.').try_fold(v, |v, k| v.get(k))
}

/// The string at a path, or `""`.
pub(crate) fn s<'a>(v: &'a Value, path: &str) -> &'a str {
    at(v, path).and_then(Value::as_str).unwrap_or("")
}

/// The string at a path when present and non-empty.
pub(crate) fn opt_s<'a>(v: &'a Value, path: &str) -> Option<&'a str> {
    at(v, path).and_then(Value::as_str).filter(|s| !s.is_empty())
}

/// The integer at a path, or 0.
pub(crate) fn int(v: &Value, path: &str) -> i64 {
    at(v, path).and_then(Value::as_i64).unwrap_or(0)
}

/// The boolean at a path, or false.
pub(crate) fn flag(v: &Value, path: &str) -> bool {
    at(v, path).and_then(Value::as_bool).unwrap_or(false)
}

/// The array at a path, or an empty slice.
pub(crate) fn arr<'a>(v: &'a Value, path: &str) -> &'a [Value] {
    at(v, path).and_then(Value::as_array).map(Vec::as_slice).unwrap_or(&[])
}

/// The number of keys of the object at a path.
pub(crate) fn len_obj(v: &Value, path: &str) -> i64 {
    at(v, path).and_then(Value::as_object).map_or(0, |m| m.len() as i64)
}

/// Upstream `labels.FormatLabels`: sorted `k=v` pairs, `<none>` when empty.
pub(crate) fn format_labels(v: Option<&Value>) -> String {
    let Some(m) = v.and_then(Value::as_object).filter(|m| !m.is_empty()) else {
        return "<none>".into();
    };
    let mut pairs: Vec<String> = m
        .iter()
        .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or("")))
        .collect();
    pairs.sort();
    pairs.join(",")
}

/// Upstream `metav1.FormatLabelSelector`: the selector string, `<none>` when empty,
/// `<error>` when invalid.
pub(crate) fn format_label_selector(v: Option<&Value>) -> String {
    match LabelSelector::from_json(v.unwrap_or(&Value::Null)) {
        Ok(sel) => {
            let s = sel.to_string();
            if s.is_empty() {
                "<none>".into()
            } else {
                s
            }
        }
        Err(_) => "<error>".into(),
    }
}

/// Upstream `layoutContainerCells`: comma-joined container names and images.
pub(crate) fn containers(pod_spec: Option<&Value>) -> (String, String) {
    let list = pod_spec.map(|p| arr(p, "containers")).unwrap_or(&[]);
    let names: Vec<&str> = list.iter().map(|c| s(c, "name")).collect();
    let images: Vec<&str> = list.iter().map(|c| s(c, "image")).collect();
    (names.join(","), images.join(","))
}
