//! upstream `NodeUnschedulable`: a cordoned node takes only pods that tolerate the
//! `node.kubernetes.io/unschedulable:NoSchedule` taint.

use k8s_openapi::api::core::v1::Taint;

use super::{Filter, PodInfo, Status};
use crate::cache::NodeInfo;
use crate::plugins::taint_toleration::tolerates;

/// upstream `ErrReasonUnschedulable`.
pub const ERR_REASON: &str = "node(s) were unschedulable";

/// The cordon filter.
pub struct NodeUnschedulable;

impl Filter for NodeUnschedulable {
    fn name(&self) -> &'static str {
        "NodeUnschedulable"
    }

    fn filter(&self, pod: &PodInfo, node: &NodeInfo) -> Result<(), Status> {
        if !node.unschedulable() {
            return Ok(());
        }
        let taint = Taint {
            key: "node.kubernetes.io/unschedulable".into(),
            effect: "NoSchedule".into(),
            ..Default::default()
        };
        let tolerations = pod.spec().and_then(|s| s.tolerations.as_deref()).unwrap_or(&[]);
        if tolerations.iter().any(|t| tolerates(t, &taint)) {
            return Ok(());
        }
        Err(Status::unresolvable(ERR_REASON))
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::plugins::testing::{node, pod};

    #[test]
    fn cases() {
        let cordoned = node(json!({}), json!({"unschedulable": true}), json!({}));
        let open = node(json!({}), json!({}), json!({}));
        let tolerant = json!({"containers": [], "tolerations": [
            {"key": "node.kubernetes.io/unschedulable", "operator": "Exists", "effect": "NoSchedule"}]});
        let cases = [
            ("open node", json!({"containers": []}), &open, true),
            ("cordoned node", json!({"containers": []}), &cordoned, false),
            ("tolerated cordon", tolerant, &cordoned, true),
        ];
        for (name, spec, n, ok) in cases {
            let r = NodeUnschedulable.filter(&pod(spec), n);
            assert_eq!(r.is_ok(), ok, "{name}");
            if let Err(s) = r {
                assert_eq!(s.reasons, vec![ERR_REASON], "{name}");
            }
        }
    }
}
