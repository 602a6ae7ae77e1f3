//! Object metadata helpers: system fields, generated names, timestamps.

use rand::Rng;
use serde_json::{Map, Value};
use skiff_api::registry::ResourceDef;

/// Kinds whose `metadata.generation` counts spec changes (upstream strategies that set it).
const GENERATION_KINDS: &[&str] = &[
    "Deployment",
    "ReplicaSet",
    "StatefulSet",
    "DaemonSet",
    "Job",
    "CronJob",
    "ReplicationController",
    "HorizontalPodAutoscaler",
    "Ingress",
];

/// Whether the kind tracks spec changes in `metadata.generation`.
pub fn tracks_generation(def: &ResourceDef) -> bool {
    GENERATION_KINDS.contains(&def.kind)
}

/// The current time as RFC 3339 with second precision, as upstream serializes `metav1.Time`.
pub fn now() -> String {
    let ts = jiff::Timestamp::now();
    jiff::Timestamp::from_second(ts.as_second())
        .map(|t| t.to_string())
        .unwrap_or_else(|_| ts.to_string())
}

/// A time `secs` seconds from now, formatted like [`now`].
pub fn now_plus(secs: i64) -> String {
    let s = jiff::Timestamp::now().as_second() + secs;
    jiff::Timestamp::from_second(s)
        .map(|t| t.to_string())
        .unwrap_or_else(|_| now())
}

/// A fresh UID.
pub fn uid() -> String {
    uuid::Uuid::new_v4().to_string()
}

/// Upstream's alphabet for generated suffixes (no vowels, no confusable digits).
const ALPHANUMS: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";

/// A random suffix of `n` characters from upstream's alphabet.
pub fn random_suffix(n: usize) -> String {
    let mut r = rand::rng();
    (0..n)
        .map(|_| ALPHANUMS[r.random_range(0..ALPHANUMS.len())] as char)
        .collect()
}

/// `metadata` as a mutable map, created if missing.
pub fn meta_mut(obj: &mut Value) -> &mut Map<String, Value> {
    if !obj.get("metadata").is_some_and(Value::is_object) {
        obj["metadata"] = Value::Object(Map::new());
    }
    match obj.get_mut("metadata") {
        Some(Value::Object(m)) => m,
        // Unreachable: ensured just above.
        _ => unreachable!("metadata is an object"),
    }
}

/// A string field of `metadata`.
pub fn meta_str<'a>(obj: &'a Value, field: &str) -> Option<&'a str> {
    obj.get("metadata")?.get(field)?.as_str()
}

/// `metadata.name`.
pub fn name(obj: &Value) -> &str {
    meta_str(obj, "name").unwrap_or("")
}

/// `metadata.resourceVersion` as a number, if set.
pub fn resource_version(obj: &Value) -> Option<i64> {
    meta_str(obj, "resourceVersion")
        .filter(|s| !s.is_empty())
        .and_then(|s| s.parse().ok())
}

/// The object without `metadata` and `status`, to detect spec changes.
pub fn spec_part(obj: &Value) -> Value {
    let mut v = obj.clone();
    if let Some(m) = v.as_object_mut() {
        m.remove("metadata");
        m.remove("status");
    }
    v
}

/// `metadata.finalizers` is non-empty.
pub fn has_finalizers(obj: &Value) -> bool {
    obj["metadata"]["finalizers"].as_array().is_some_and(|a| !a.is_empty())
}

/// Removes a value at a dotted path with `[i]` indexes (`spec.containers[0].imagee`).
pub fn remove_path(obj: &mut Value, path: &str) {
    let mut parts: Vec<(&str, Vec<usize>)> = Vec::new();
    for seg in path.split('.') {
        let (key, rest) = seg.split_once('[').map_or((seg, ""), |(k, r)| (k, r));
        let idx = rest
            .split('[')
            .filter_map(|p| p.trim_end_matches(']').parse().ok())
            .collect();
        parts.push((key, idx));
    }
    let Some((last, last_idx)) = parts.pop() else { return };
    let mut cur = obj;
    for (key, idx) in parts {
        let Some(next) = cur.get_mut(key) else { return };
        cur = next;
        for i in idx {
            let Some(next) = cur.get_mut(i) else { return };
            cur = next;
        }
    }
    if last_idx.is_empty() {
        if let Some(m) = cur.as_object_mut() {
            m.remove(last);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn remove_nested_unknown_field() {
        let mut v = json!({"spec": {"containers": [{"name": "a", "imagee": "x"}], "foo": 1}});
        remove_path(&mut v, "spec.containers[0].imagee");
        remove_path(&mut v, "spec.foo");
        remove_path(&mut v, "spec.nothing.here");
        assert_eq!(v, json!({"spec": {"containers": [{"name": "a"}]}}));
    }

    #[test]
    fn suffix_uses_upstream_alphabet() {
        let s = random_suffix(5);
        assert_eq!(s.len(), 5);
        assert!(s.bytes().all(|b| ALPHANUMS.contains(&b)));
    }
}
