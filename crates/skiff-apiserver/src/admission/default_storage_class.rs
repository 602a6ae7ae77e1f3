//! DefaultStorageClass: a claim that names no storage class gets the cluster's default one
//! (the class annotated `storageclass.kubernetes.io/is-default-class: "true"`; the newest wins
//! when several are, as upstream).

use serde_json::{json, Value};

/// The GA and beta annotations marking a default class.
const DEFAULT_ANNOTATIONS: &[&str] = &[
    "storageclass.kubernetes.io/is-default-class",
    "storageclass.beta.kubernetes.io/is-default-class",
];

/// Whether a StorageClass is marked as the default.
pub fn is_default(class: &Value) -> bool {
    let annotations = &class["metadata"]["annotations"];
    DEFAULT_ANNOTATIONS
        .iter()
        .any(|k| annotations[*k].as_str() == Some("true"))
}

/// The default class's name among `classes`: the newest default, ties broken by name.
pub fn default_class<'a>(classes: impl IntoIterator<Item = &'a Value>) -> Option<String> {
    classes
        .into_iter()
        .filter(|c| is_default(c))
        .max_by(|a, b| {
            let created = |c: &Value| c["metadata"]["creationTimestamp"].as_str().unwrap_or("").to_string();
            let name = |c: &Value| c["metadata"]["name"].as_str().unwrap_or("").to_string();
            // Newest first; among equals upstream picks the alphabetically first name.
            created(a).cmp(&created(b)).then_with(|| name(b).cmp(&name(a)))
        })
        .and_then(|c| c["metadata"]["name"].as_str().map(str::to_string))
}

/// Sets `spec.storageClassName` when the claim leaves it unset (an explicit `""` means "no
/// class" and is kept, as is the beta class annotation).
pub fn apply(pvc: &mut Value, default: Option<String>) {
    let Some(default) = default else { return };
    if pvc["metadata"]["annotations"]["volume.beta.kubernetes.io/storage-class"].is_string() {
        return;
    }
    let Some(spec) = pvc.get_mut("spec").and_then(Value::as_object_mut) else {
        return;
    };
    if spec.get("storageClassName").is_none_or(Value::is_null) {
        spec.insert("storageClassName".into(), json!(default));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn class(name: &str, created: &str, default: bool) -> Value {
        let mut c = json!({"metadata": {"name": name, "creationTimestamp": created}});
        if default {
            c["metadata"]["annotations"] = json!({"storageclass.kubernetes.io/is-default-class": "true"});
        }
        c
    }

    #[test]
    fn picks_the_newest_default() {
        let classes = [
            class("a", "2024-01-01T00:00:00Z", true),
            class("b", "2024-02-01T00:00:00Z", true),
            class("c", "2024-03-01T00:00:00Z", false),
        ];
        assert_eq!(default_class(&classes).as_deref(), Some("b"));
        assert_eq!(default_class(&classes[2..]), None);
    }

    #[test]
    fn fills_only_an_unset_class() {
        let mut p = json!({"spec": {"accessModes": ["ReadWriteOnce"]}});
        apply(&mut p, Some("local-path".into()));
        assert_eq!(p["spec"]["storageClassName"], "local-path");
        let mut p = json!({"spec": {"storageClassName": ""}});
        apply(&mut p, Some("local-path".into()));
        assert_eq!(p["spec"]["storageClassName"], "");
        let mut p = json!({"spec": {"storageClassName": "other"}});
        apply(&mut p, Some("local-path".into()));
        assert_eq!(p["spec"]["storageClassName"], "other");
    }
}
