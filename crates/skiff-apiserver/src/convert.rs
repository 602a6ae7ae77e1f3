//! Conversion between a stored form and the view a resource serves, for resources that share
//! storage: events.k8s.io/v1 Events are stored as core/v1 Events (as upstream does).

use base64::Engine;
use serde_json::{Map, Value};
use skiff_api::registry::ResourceDef;

/// Field renames between core/v1 Event (left) and events.k8s.io/v1 Event (right).
const EVENT_FIELDS: &[(&str, &str)] = &[
    ("involvedObject", "regarding"),
    ("message", "note"),
    ("reportingComponent", "reportingController"),
    ("source", "deprecatedSource"),
    ("firstTimestamp", "deprecatedFirstTimestamp"),
    ("lastTimestamp", "deprecatedLastTimestamp"),
    ("count", "deprecatedCount"),
];

fn is_events_v1(def: &ResourceDef) -> bool {
    def.group == "events.k8s.io"
}

fn rename(obj: &Value, api_version: &str, to_view: bool) -> Value {
    let Some(m) = obj.as_object() else { return obj.clone() };
    let mut out = Map::new();
    for (k, v) in m {
        let renamed = EVENT_FIELDS
            .iter()
            .find(|(core, view)| if to_view { core == k } else { view == k })
            .map(|(core, view)| if to_view { *view } else { *core });
        out.insert(renamed.unwrap_or(k).to_string(), v.clone());
    }
    out.insert("apiVersion".into(), Value::String(api_version.into()));
    Value::Object(out)
}

/// Folds a core/v1 Secret's write-only `stringData` into `data` (base64; `stringData` wins on
/// a shared key), as upstream's v1 to internal conversion does, so it is never stored or served.
pub fn fold_string_data(def: &ResourceDef, obj: &mut Value) {
    if def.kind != "Secret" || !def.group.is_empty() {
        return;
    }
    let Some(m) = obj.as_object_mut() else { return };
    let Some(Value::Object(string_data)) = m.remove("stringData") else {
        return;
    };
    if string_data.is_empty() {
        return;
    }
    let data = m.entry("data").or_insert_with(|| Value::Object(Map::new()));
    if !data.is_object() {
        *data = Value::Object(Map::new());
    }
    if let Some(data) = data.as_object_mut() {
        for (k, v) in string_data {
            if let Some(text) = v.as_str() {
                let encoded = base64::engine::general_purpose::STANDARD.encode(text);
                data.insert(k, Value::String(encoded));
            }
        }
    }
}

/// The stored object as `def` serves it.
pub fn to_view(def: &ResourceDef, stored: &Value) -> Option<Value> {
    is_events_v1(def).then(|| rename(stored, "events.k8s.io/v1", true))
}

/// An object in `def`'s view converted to its stored form.
pub fn to_storage(def: &ResourceDef, view: Value) -> Value {
    if is_events_v1(def) {
        rename(&view, "v1", false)
    } else {
        view
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use skiff_api::registry;

    #[test]
    fn events_round_trip() {
        let def = registry::find("events.k8s.io", "v1", "events").unwrap();
        let view = json!({"apiVersion": "events.k8s.io/v1", "kind": "Event", "note": "hi", "regarding": {"name": "p"}, "reason": "X"});
        let stored = to_storage(def, view.clone());
        assert_eq!(stored["message"], "hi");
        assert_eq!(stored["involvedObject"]["name"], "p");
        assert_eq!(stored["apiVersion"], "v1");
        assert_eq!(to_view(def, &stored).unwrap(), view);
        assert!(to_view(registry::find("", "v1", "pods").unwrap(), &stored).is_none());
    }

    #[test]
    fn secret_string_data_folds_into_data() {
        let secrets = registry::find("", "v1", "secrets").unwrap();
        let mut s = json!({"data": {"a": "b2xk", "keep": "eA=="}, "stringData": {"a": "new", "b": "s3cret"}});
        fold_string_data(secrets, &mut s);
        assert_eq!(s, json!({"data": {"a": "bmV3", "keep": "eA==", "b": "czNjcmV0"}}));
        let mut no_data = json!({"stringData": {"k": "v"}});
        fold_string_data(secrets, &mut no_data);
        assert_eq!(no_data, json!({"data": {"k": "dg=="}}));
        let mut cm = json!({"stringData": {"k": "v"}});
        fold_string_data(registry::find("", "v1", "configmaps").unwrap(), &mut cm);
        assert_eq!(cm, json!({"stringData": {"k": "v"}}));
    }
}
