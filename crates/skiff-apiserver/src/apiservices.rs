//! The local APIServices: one per group version skiff serves, as kube-aggregator registers them
//! at start (`v1.` for core, `v1.apps`, ...), always Available. They are served read-only.

use serde_json::{json, Value};
use skiff_api::registry;

use crate::meta;

/// Label kube-aggregator's autoregister controller puts on the APIServices it syncs at start.
const AUTOMANAGED: &str = "kube-aggregator.kubernetes.io/automanaged";

/// Group and version priority, from kube-apiserver's table (`cmd/kube-apiserver/app/aggregator.go`
/// and `DefaultGenericAPIServicePriorities`); a group missing there gets upstream's advice for a
/// new group (below the lowest, version 9).
pub fn priority(group: &str, version: &str) -> (i32, i32) {
    match (group, version) {
        ("", "v1") => (18000, 1),
        ("apiregistration.k8s.io", "v1") => (18000, 15),
        ("apps", "v1") => (17800, 15),
        ("events.k8s.io", "v1") => (17750, 15),
        ("autoscaling", "v1") => (17500, 15),
        ("autoscaling", "v2") => (17500, 30),
        ("batch", "v1") => (17400, 15),
        ("certificates.k8s.io", "v1") => (17300, 15),
        ("networking.k8s.io", "v1") => (17200, 15),
        ("policy", "v1") => (17100, 15),
        ("rbac.authorization.k8s.io", "v1") => (17000, 15),
        ("storage.k8s.io", "v1") => (16800, 15),
        ("coordination.k8s.io", "v1") => (16500, 15),
        ("discovery.k8s.io", "v1") => (16200, 15),
        _ => (15000, 9),
    }
}

/// The APIService object of one locally served group version.
pub fn local(group: &str, version: &str) -> Value {
    let (group_priority, version_priority) = priority(group, version);
    let mut spec = json!({
        "version": version,
        "groupPriorityMinimum": group_priority,
        "versionPriority": version_priority,
    });
    // `group` is omitempty upstream: the core APIService has none.
    if !group.is_empty() {
        spec["group"] = json!(group);
    }
    json!({
        "apiVersion": "apiregistration.k8s.io/v1",
        "kind": "APIService",
        "metadata": {"name": format!("{version}.{group}"), "labels": {AUTOMANAGED: "onstart"}},
        "spec": spec,
        "status": {"conditions": [{
            "type": "Available",
            "status": "True",
            "lastTransitionTime": meta::now(),
            "reason": "Local",
            "message": "Local APIServices are always available",
        }]},
    })
}

/// Every local APIService, in discovery order.
pub fn all() -> Vec<Value> {
    registry::group_versions()
        .into_iter()
        .map(|(g, v)| local(g, v))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_priorities_follow_kube_aggregator() {
        let all = all();
        let core = &all[0];
        assert_eq!(core["metadata"]["name"], "v1.");
        assert!(core["spec"].get("group").is_none(), "{core}");
        assert_eq!(core["spec"]["groupPriorityMinimum"], 18000);
        let apps = all.iter().find(|a| a["metadata"]["name"] == "v1.apps").unwrap();
        assert_eq!(apps["spec"]["group"], "apps");
        assert_eq!(
            (
                apps["spec"]["groupPriorityMinimum"].as_i64(),
                apps["spec"]["versionPriority"].as_i64()
            ),
            (Some(17800), Some(15))
        );
        assert!(all.iter().any(|a| a["metadata"]["name"] == "v1.apiregistration.k8s.io"));
        assert!(all.iter().any(|a| a["metadata"]["name"] == "v2.autoscaling"));
        let cond = &apps["status"]["conditions"][0];
        assert_eq!(
            (cond["type"].as_str(), cond["status"].as_str(), cond["reason"].as_str()),
            (Some("Available"), Some("True"), Some("Local"))
        );
    }
}
