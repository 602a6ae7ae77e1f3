//! DefaultTolerationSeconds: pods tolerate `not-ready` and `unreachable` nodes for 300 s (or
//! as configured) unless they say otherwise, so a dead node's pods are evicted after that.

use serde_json::{json, Value};

/// The taints the plugin adds tolerations for.
const TAINTS: &[&str] = &["node.kubernetes.io/not-ready", "node.kubernetes.io/unreachable"];

/// Adds the default tolerations a pod lacks.
pub fn apply(pod: &mut Value, seconds: i64) {
    let Some(spec) = pod.get_mut("spec").and_then(Value::as_object_mut) else {
        return;
    };
    let list = spec.entry("tolerations").or_insert_with(|| json!([]));
    let Some(tols) = list.as_array_mut() else { return };
    for key in TAINTS {
        // A toleration with an empty key and Exists tolerates everything; one for this key
        // with effect NoExecute or any effect already decides.
        let covered = tols.iter().any(|t| {
            let k = t["key"].as_str().unwrap_or("");
            let effect = t["effect"].as_str().unwrap_or("");
            let key_matches = k == *key || (k.is_empty() && t["operator"] == "Exists");
            key_matches && (effect.is_empty() || effect == "NoExecute")
        });
        if !covered {
            tols.push(json!({"key": key, "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": seconds}));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn adds_missing_tolerations_only() {
        let mut p = json!({"spec": {"containers": []}});
        apply(&mut p, 300);
        let t = p["spec"]["tolerations"].as_array().unwrap();
        assert_eq!(t.len(), 2);
        assert_eq!(t[0]["tolerationSeconds"], 300);
        let mut p = json!({"spec": {"tolerations": [{"key": "node.kubernetes.io/unreachable", "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 6}]}});
        apply(&mut p, 300);
        let t = p["spec"]["tolerations"].as_array().unwrap();
        assert_eq!(t.len(), 2);
        assert_eq!(t[0]["tolerationSeconds"], 6);
        let mut p = json!({"spec": {"tolerations": [{"operator": "Exists"}]}});
        apply(&mut p, 300);
        assert_eq!(p["spec"]["tolerations"].as_array().unwrap().len(), 1);
    }
}
