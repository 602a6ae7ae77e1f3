//! Which LoadBalancer Services the built-in load balancer serves, as k3s's ServiceLB: each
//! takes its ports on every node's address, so a port two Services ask for goes to the oldest
//! (creationTimestamp, then namespace/name) and the later one stays pending. The status
//! controller and the service proxies decide with this one function, so they always agree.

use std::collections::{BTreeMap, HashMap};

use k8s_openapi::api::core::v1::Service;

/// What the load balancer does with one LoadBalancer Service.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Assignment {
    /// Served on the nodes' addresses at its ports.
    Admitted,
    /// Pending: `holder` (`namespace/name`) already has `port`/`protocol`.
    Blocked {
        /// The Service that has the port.
        holder: String,
        /// The port.
        port: i32,
        /// Its protocol (`TCP`, `UDP`, `SCTP`).
        protocol: String,
    },
}

/// `namespace/name` of every LoadBalancer Service with its assignment.
pub fn assign<'a>(services: impl IntoIterator<Item = &'a Service>) -> BTreeMap<String, Assignment> {
    let mut lbs: Vec<(Option<jiff::Timestamp>, String, &Service)> = services
        .into_iter()
        .filter(|s| s.spec.as_ref().and_then(|s| s.type_.as_deref()) == Some("LoadBalancer"))
        .map(|s| {
            let key = format!(
                "{}/{}",
                s.metadata.namespace.as_deref().unwrap_or_default(),
                s.metadata.name.as_deref().unwrap_or_default()
            );
            (s.metadata.creation_timestamp.as_ref().map(|t| t.0), key, s)
        })
        .collect();
    // Oldest first; an unset timestamp (not yet stored) counts as newest.
    lbs.sort_by(|a, b| (a.0.is_none(), a.0, &a.1).cmp(&(b.0.is_none(), b.0, &b.1)));
    let mut held: HashMap<(i32, String), String> = HashMap::new();
    let mut out = BTreeMap::new();
    for (_, key, svc) in lbs {
        let ports: Vec<(i32, String)> = svc
            .spec
            .as_ref()
            .and_then(|s| s.ports.as_ref())
            .into_iter()
            .flatten()
            .map(|p| (p.port, p.protocol.clone().unwrap_or_else(|| "TCP".into())))
            .collect();
        let blocked = ports.iter().find_map(|p| held.get(p).map(|h| (h.clone(), p.clone())));
        let assignment = match blocked {
            Some((holder, (port, protocol))) => Assignment::Blocked { holder, port, protocol },
            None => {
                for p in ports {
                    held.insert(p, key.clone());
                }
                Assignment::Admitted
            }
        };
        out.insert(key, assignment);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lb(name: &str, created: &str, ports: &[i32]) -> Service {
        let ports: Vec<serde_json::Value> = ports.iter().map(|p| serde_json::json!({"port": p})).collect();
        serde_json::from_value(serde_json::json!({
            "metadata": {"name": name, "namespace": "default", "creationTimestamp": created},
            "spec": {"type": "LoadBalancer", "ports": ports}
        }))
        .unwrap()
    }

    #[test]
    fn the_oldest_service_keeps_a_port_and_later_ones_wait() {
        let a = lb("a", "2024-01-02T00:00:00Z", &[80]);
        let b = lb("b", "2024-01-01T00:00:00Z", &[80, 443]);
        let c = lb("c", "2024-01-03T00:00:00Z", &[443]);
        let d = lb("d", "2024-01-03T00:00:00Z", &[8080]);
        let got = assign([&a, &b, &c, &d]);
        assert_eq!(got["default/b"], Assignment::Admitted);
        assert_eq!(
            got["default/a"],
            Assignment::Blocked {
                holder: "default/b".into(),
                port: 80,
                protocol: "TCP".into()
            }
        );
        assert!(matches!(&got["default/c"], Assignment::Blocked { holder, port: 443, .. } if holder == "default/b"));
        assert_eq!(got["default/d"], Assignment::Admitted);
        // A tie on the timestamp goes by name.
        let e = lb("e", "2024-01-03T00:00:00Z", &[8080]);
        assert!(matches!(&assign([&e, &d])["default/e"], Assignment::Blocked { holder, .. } if holder == "default/d"));
    }
}
