//! ServiceAccount: a pod that names no service account runs as `default` (the deprecated
//! `serviceAccount` field mirrors the name, as the v1 API shows it).
//!
//! Unlike upstream, a pod is not refused while its namespace's `default` ServiceAccount does not
//! exist yet, and no token volume is mounted: skiff has no TokenRequest API or RBAC yet.

use serde_json::{json, Value};

/// Fills `serviceAccountName` and `serviceAccount`.
pub fn apply(pod: &mut Value) {
    let Some(spec) = pod.get_mut("spec").and_then(Value::as_object_mut) else {
        return;
    };
    let named = |v: Option<&Value>| v.and_then(Value::as_str).filter(|s| !s.is_empty()).map(String::from);
    let name = named(spec.get("serviceAccountName"))
        .or_else(|| named(spec.get("serviceAccount")))
        .unwrap_or_else(|| "default".into());
    spec.insert("serviceAccountName".into(), json!(name));
    spec.insert("serviceAccount".into(), json!(name));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pods_run_as_default_unless_named() {
        let cases = [
            (json!({"spec": {}}), "default"),
            (json!({"spec": {"serviceAccountName": "builder"}}), "builder"),
            (json!({"spec": {"serviceAccount": "legacy"}}), "legacy"),
            (json!({"spec": {"serviceAccountName": ""}}), "default"),
        ];
        for (mut pod, want) in cases {
            apply(&mut pod);
            assert_eq!(pod["spec"]["serviceAccountName"], want);
            assert_eq!(pod["spec"]["serviceAccount"], want);
        }
    }
}
