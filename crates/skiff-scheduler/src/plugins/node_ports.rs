//! upstream `NodePorts`: host ports a pod asks for must be free on the node.

use super::{Filter, PodInfo, Status};
use crate::cache::NodeInfo;

/// upstream `ErrReason`.
pub const ERR_REASON: &str = "node(s) didn't have free ports for the requested pod ports";

/// The host port filter.
pub struct NodePorts;

impl Filter for NodePorts {
    fn name(&self) -> &'static str {
        "NodePorts"
    }

    fn filter(&self, pod: &PodInfo, node: &NodeInfo) -> Result<(), Status> {
        let wanted = &pod.summary.host_ports;
        if wanted.iter().any(|w| node.used_ports.iter().any(|u| u.conflicts(w))) {
            return Err(Status::unschedulable(ERR_REASON));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::plugins::testing::{plain_node, pod, with_pod};

    fn ports(ports: serde_json::Value) -> serde_json::Value {
        json!({"containers": [{"name": "c", "ports": ports}]})
    }

    #[test]
    fn cases() {
        let busy = with_pod(plain_node(), ports(json!([{"containerPort": 80, "hostPort": 8080}])));
        let busy_ip = with_pod(
            plain_node(),
            ports(json!([{"containerPort": 80, "hostPort": 8080, "hostIP": "10.0.0.1"}])),
        );
        let cases = [
            ("no host ports", ports(json!([{"containerPort": 80}])), &busy, true),
            (
                "same port",
                ports(json!([{"containerPort": 1, "hostPort": 8080}])),
                &busy,
                false,
            ),
            (
                "other protocol",
                ports(json!([{"containerPort": 1, "hostPort": 8080, "protocol": "UDP"}])),
                &busy,
                true,
            ),
            (
                "other port",
                ports(json!([{"containerPort": 1, "hostPort": 8081}])),
                &busy,
                true,
            ),
            (
                "other address",
                ports(json!([{"containerPort": 1, "hostPort": 8080, "hostIP": "10.0.0.2"}])),
                &busy_ip,
                true,
            ),
            (
                "wildcard against an address",
                ports(json!([{"containerPort": 1, "hostPort": 8080}])),
                &busy_ip,
                false,
            ),
        ];
        for (name, spec, n, ok) in cases {
            let r = NodePorts.filter(&pod(spec), n);
            assert_eq!(r.is_ok(), ok, "{name}");
            if let Err(s) = r {
                assert_eq!(s.reasons, vec![ERR_REASON]);
            }
        }
    }
}
