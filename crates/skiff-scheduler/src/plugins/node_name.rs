//! upstream `NodeName`: a pod that names a node fits only that node.

use super::{Filter, PodInfo, Status};
use crate::cache::NodeInfo;

/// upstream `ErrReason`.
pub const ERR_REASON: &str = "node(s) didn't match the requested node name";

/// The `spec.nodeName` filter.
pub struct NodeName;

impl Filter for NodeName {
    fn name(&self) -> &'static str {
        "NodeName"
    }

    fn filter(&self, pod: &PodInfo, node: &NodeInfo) -> Result<(), Status> {
        match pod.spec().and_then(|s| s.node_name.as_deref()) {
            Some(n) if !n.is_empty() && n != node.name => Err(Status::unresolvable(ERR_REASON)),
            _ => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::plugins::testing::{plain_node, pod};

    #[test]
    fn cases() {
        let n = plain_node(); // named "n"
        let cases = [
            ("no name", json!({"containers": []}), true),
            ("this node", json!({"containers": [], "nodeName": "n"}), true),
            ("other node", json!({"containers": [], "nodeName": "m"}), false),
        ];
        for (name, spec, ok) in cases {
            assert_eq!(NodeName.filter(&pod(spec), &n).is_ok(), ok, "{name}");
        }
    }
}
