//! Helpers for setting defaults on `serde_json::Value` objects.

use serde_json::{Map, Value};

/// Sets `key` when it is absent or null.
pub(crate) fn set(m: &mut Map<String, Value>, key: &str, v: Value) {
    if m.get(key).is_none_or(Value::is_null) {
        m.insert(key.to_string(), v);
    }
}

/// The object at `key`, created (replacing null or a non-object) when missing.
pub(crate) fn child<'a>(m: &'a mut Map<String, Value>, key: &str) -> Option<&'a mut Map<String, Value>> {
    if m.get(key).is_none_or(Value::is_null) {
        m.insert(key.to_string(), Value::Object(Map::new()));
    }
    m.get_mut(key).and_then(Value::as_object_mut)
}

/// The object at `key` only if it already exists.
pub(crate) fn existing<'a>(m: &'a mut Map<String, Value>, key: &str) -> Option<&'a mut Map<String, Value>> {
    m.get_mut(key).and_then(Value::as_object_mut)
}

/// Each object element of the array at `key`.
pub(crate) fn each<'a>(m: &'a mut Map<String, Value>, key: &str) -> impl Iterator<Item = &'a mut Map<String, Value>> {
    m.get_mut(key)
        .and_then(Value::as_array_mut)
        .into_iter()
        .flatten()
        .filter_map(Value::as_object_mut)
}

/// Whether the field is present and not null.
pub(crate) fn has(m: &Map<String, Value>, key: &str) -> bool {
    m.get(key).is_some_and(|v| !v.is_null())
}

/// Drops `creationTimestamp: null`, which Go clients send in embedded metadata.
pub(crate) fn strip_null_timestamp(meta: Option<&mut Map<String, Value>>) {
    if let Some(meta) = meta {
        if meta.get("creationTimestamp").is_some_and(Value::is_null) {
            meta.remove("creationTimestamp");
        }
    }
}
