//! Conversion between a stored form and the view a resource serves, for resources that share
//! storage: events.k8s.io/v1 Events are stored as core/v1 Events (as upstream does).

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
}
