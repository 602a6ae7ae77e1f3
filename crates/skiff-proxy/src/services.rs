//! What every service port forwards to: the proxy's view of Services and EndpointSlices,
//! shared by the userspace and nftables proxies (kube-proxy's `ServicePortMap` and
//! `EndpointsMap`).

use std::collections::HashMap;
use std::net::IpAddr;

use k8s_openapi::api::core::v1::Service;
use k8s_openapi::api::discovery::v1::EndpointSlice;
use kube::ResourceExt;

/// The label naming an EndpointSlice's service.
const SERVICE_NAME_LABEL: &str = "kubernetes.io/service-name";
/// upstream default `sessionAffinityConfig.clientIP.timeoutSeconds` (3 hours).
const DEFAULT_AFFINITY_SECONDS: u32 = 10800;

/// A transport protocol a service port uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Protocol {
    /// TCP (the default).
    Tcp,
    /// UDP.
    Udp,
    /// SCTP.
    Sctp,
}

impl Protocol {
    fn parse(s: Option<&str>) -> Protocol {
        match s {
            Some("UDP") => Protocol::Udp,
            Some("SCTP") => Protocol::Sctp,
            _ => Protocol::Tcp,
        }
    }

    /// The name nftables uses.
    pub fn nft(self) -> &'static str {
        match self {
            Protocol::Tcp => "tcp",
            Protocol::Udp => "udp",
            Protocol::Sctp => "sctp",
        }
    }
}

/// One backend of a service port.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Backend {
    /// The pod's address.
    pub ip: IpAddr,
    /// The resolved target port.
    pub port: u16,
    /// The node the pod runs on.
    pub node: Option<String>,
    /// Ready (gets new connections).
    pub ready: bool,
    /// Serving though terminating (used only when no backend is ready, as kube-proxy does).
    pub serving: bool,
}

/// One port of one service, with everything a proxy needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServicePort {
    /// `namespace/name`.
    pub service: String,
    /// The port's name (may be empty).
    pub port_name: String,
    /// The protocol.
    pub protocol: Protocol,
    /// The ClusterIP (`None` for headless and ExternalName services).
    pub cluster_ip: Option<IpAddr>,
    /// The service port.
    pub port: u16,
    /// The NodePort (NodePort and LoadBalancer services).
    pub node_port: Option<u16>,
    /// The service is of type LoadBalancer (served on every node's address at `port`).
    pub load_balancer: bool,
    /// ClientIP affinity timeout, when `sessionAffinity: ClientIP`.
    pub affinity_seconds: Option<u32>,
    /// `externalTrafficPolicy: Local`: outside traffic only to endpoints on the receiving node.
    pub external_local: bool,
    /// `internalTrafficPolicy: Local`: in-cluster traffic only to endpoints on the sender's node.
    pub internal_local: bool,
    /// Backends, sorted.
    pub backends: Vec<Backend>,
}

impl ServicePort {
    /// The backends that take new connections: the ready ones, else those still serving while
    /// terminating (kube-proxy's fallback), restricted to `node` when given.
    pub fn usable(&self, node: Option<&str>) -> Vec<&Backend> {
        let on_node = |b: &&Backend| node.is_none_or(|n| b.node.as_deref() == Some(n));
        let ready: Vec<&Backend> = self.backends.iter().filter(on_node).filter(|b| b.ready).collect();
        if !ready.is_empty() {
            return ready;
        }
        self.backends.iter().filter(on_node).filter(|b| b.serving).collect()
    }
}

/// Every service port with a ClusterIP, with its backends from the service's EndpointSlices.
pub fn build(services: &[impl AsRef<Service>], slices: &[impl AsRef<EndpointSlice>]) -> Vec<ServicePort> {
    // Backends per (namespace, service, port name, protocol).
    let mut backends: HashMap<(String, String, String, Protocol), Vec<Backend>> = HashMap::new();
    for slice in slices.iter().map(AsRef::as_ref) {
        let (Some(ns), Some(svc)) = (slice.namespace(), slice.labels().get(SERVICE_NAME_LABEL)) else {
            continue;
        };
        for p in slice.ports.iter().flatten() {
            let Some(port) = p.port.and_then(|p| u16::try_from(p).ok()) else {
                continue;
            };
            let key = (
                ns.clone(),
                svc.clone(),
                p.name.clone().unwrap_or_default(),
                Protocol::parse(p.protocol.as_deref()),
            );
            let list = backends.entry(key).or_default();
            for e in &slice.endpoints {
                let c = e.conditions.clone().unwrap_or_default();
                // upstream: an unset condition means true.
                let ready = c.ready.unwrap_or(true);
                let serving = c.serving.unwrap_or(ready);
                for a in &e.addresses {
                    if let Ok(ip) = a.parse() {
                        list.push(Backend {
                            ip,
                            port,
                            node: e.node_name.clone(),
                            ready,
                            serving,
                        });
                    }
                }
            }
        }
    }
    // A LoadBalancer port another Service holds stays pending (not served), as the status
    // controller shows it.
    let lbs = skiff_api::load_balancer::assign(services.iter().map(AsRef::as_ref));
    let mut out = Vec::new();
    for svc in services.iter().map(AsRef::as_ref) {
        let Some(spec) = &svc.spec else { continue };
        let Some(cluster_ip) = spec
            .cluster_ip
            .as_deref()
            .filter(|ip| *ip != "None")
            .and_then(|ip| ip.parse().ok())
        else {
            continue;
        };
        let ty = spec.type_.as_deref().unwrap_or("ClusterIP");
        if ty == "ExternalName" {
            continue;
        }
        let ns = svc.namespace().unwrap_or_default();
        let name = svc.name_any();
        let admitted = lbs.get(&format!("{ns}/{name}")) == Some(&skiff_api::load_balancer::Assignment::Admitted);
        let affinity_seconds = (spec.session_affinity.as_deref() == Some("ClientIP")).then(|| {
            spec.session_affinity_config
                .as_ref()
                .and_then(|c| c.client_ip.as_ref())
                .and_then(|c| c.timeout_seconds)
                .and_then(|t| u32::try_from(t).ok())
                .unwrap_or(DEFAULT_AFFINITY_SECONDS)
        });
        for p in spec.ports.iter().flatten() {
            let Ok(port) = u16::try_from(p.port) else { continue };
            let protocol = Protocol::parse(p.protocol.as_deref());
            let port_name = p.name.clone().unwrap_or_default();
            let mut bs = backends
                .get(&(ns.clone(), name.clone(), port_name.clone(), protocol))
                .cloned()
                .unwrap_or_default();
            bs.sort();
            bs.dedup();
            out.push(ServicePort {
                service: format!("{ns}/{name}"),
                port_name,
                protocol,
                cluster_ip: Some(cluster_ip),
                port,
                node_port: p.node_port.and_then(|n| u16::try_from(n).ok()).filter(|n| *n != 0),
                load_balancer: ty == "LoadBalancer" && admitted,
                affinity_seconds,
                external_local: spec.external_traffic_policy.as_deref() == Some("Local"),
                internal_local: spec.internal_traffic_policy.as_deref() == Some("Local"),
                backends: bs,
            });
        }
    }
    out.sort_by(|a, b| (&a.service, &a.port_name, a.protocol).cmp(&(&b.service, &b.port_name, b.protocol)));
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn ports_get_their_backends_and_policies() {
        let svc: Service = serde_json::from_value(json!({
            "metadata": {"name": "web", "namespace": "default"},
            "spec": {"type": "NodePort", "clusterIP": "10.43.0.5", "sessionAffinity": "ClientIP",
                "externalTrafficPolicy": "Local",
                "ports": [{"name": "http", "port": 80, "nodePort": 30080}, {"name": "dns", "port": 53, "protocol": "UDP"}]}
        }))
        .unwrap();
        let headless: Service = serde_json::from_value(json!({
            "metadata": {"name": "h", "namespace": "default"}, "spec": {"clusterIP": "None", "ports": [{"port": 1}]}
        }))
        .unwrap();
        let slice: EndpointSlice = serde_json::from_value(json!({
            "metadata": {"name": "web-abc", "namespace": "default", "labels": {"kubernetes.io/service-name": "web"}},
            "addressType": "IPv4",
            "ports": [{"name": "http", "port": 8080, "protocol": "TCP"}],
            "endpoints": [
                {"addresses": ["10.42.1.2"], "nodeName": "n1", "conditions": {"ready": true, "serving": true}},
                {"addresses": ["10.42.2.2"], "nodeName": "n2", "conditions": {"ready": false, "serving": true, "terminating": true}},
            ]
        }))
        .unwrap();
        let ports = build(
            &[std::sync::Arc::new(svc), std::sync::Arc::new(headless)],
            &[std::sync::Arc::new(slice)],
        );
        assert_eq!(ports.len(), 2, "headless services are not proxied");
        let dns = &ports[0];
        assert_eq!(
            (dns.port_name.as_str(), dns.protocol, dns.backends.len()),
            ("dns", Protocol::Udp, 0)
        );
        let http = &ports[1];
        assert_eq!(http.node_port, Some(30080));
        assert_eq!(http.affinity_seconds, Some(10800));
        assert!(http.external_local && !http.internal_local);
        let usable: Vec<String> = http
            .usable(None)
            .iter()
            .map(|b| format!("{}:{}", b.ip, b.port))
            .collect();
        assert_eq!(usable, vec!["10.42.1.2:8080"]);
        let fallback: Vec<String> = http.usable(Some("n2")).iter().map(|b| b.ip.to_string()).collect();
        assert_eq!(
            fallback,
            vec!["10.42.2.2"],
            "terminating but serving when nothing is ready"
        );
    }

    /// A LoadBalancer port an older Service holds is not served for the later one (it stays
    /// pending, as the status controller shows); its ClusterIP and NodePort still are.
    #[test]
    fn a_load_balancer_port_goes_to_the_oldest_service() {
        let lb = |name: &str, created: &str, ip: &str, np: i32| -> std::sync::Arc<Service> {
            std::sync::Arc::new(
                serde_json::from_value(json!({
                    "metadata": {"name": name, "namespace": "default", "creationTimestamp": created},
                    "spec": {"type": "LoadBalancer", "clusterIP": ip, "ports": [{"port": 80, "nodePort": np}]}
                }))
                .unwrap(),
            )
        };
        let services = [
            lb("a-new", "2024-01-02T00:00:00Z", "10.43.0.5", 30001),
            lb("b-old", "2024-01-01T00:00:00Z", "10.43.0.6", 30002),
        ];
        let ports = build(&services, &[] as &[std::sync::Arc<EndpointSlice>]);
        let by = |name: &str| ports.iter().find(|p| p.service == format!("default/{name}")).unwrap();
        assert!(by("b-old").load_balancer);
        assert!(!by("a-new").load_balancer);
        assert_eq!(by("a-new").node_port, Some(30001));
    }
}
