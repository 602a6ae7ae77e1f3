//! Which pods a Service selects and how each appears as an endpoint (upstream
//! `pkg/api/v1/endpoints` and `endpointslice/util`): its IP, node, hostname, readiness and
//! the service ports resolved against its containers.

use std::collections::BTreeMap;
use std::sync::Arc;

use k8s_openapi::api::core::v1::{Pod, Service, ServicePort};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use kube::ResourceExt;

/// A service port resolved for one pod.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) struct Port {
    pub(crate) name: Option<String>,
    pub(crate) port: i32,
    pub(crate) protocol: String,
    pub(crate) app_protocol: Option<String>,
}

/// One selected pod as an endpoint.
#[derive(Debug, Clone)]
pub(crate) struct Endpoint {
    pub(crate) pod: Arc<Pod>,
    pub(crate) ip: String,
    pub(crate) node: Option<String>,
    /// Set when the pod's `subdomain` names this service (StatefulSet pods).
    pub(crate) hostname: Option<String>,
    /// The pod is Ready.
    pub(crate) serving: bool,
    /// The pod is being deleted.
    pub(crate) terminating: bool,
    pub(crate) ports: Vec<Port>,
}

/// The service's selector when it has one; services without a selector have their endpoints
/// written by someone else.
pub(crate) fn selector(svc: &Service) -> Option<&BTreeMap<String, String>> {
    let spec = svc.spec.as_ref()?;
    if spec.type_.as_deref() == Some("ExternalName") {
        return None;
    }
    spec.selector.as_ref().filter(|s| !s.is_empty())
}

/// Whether the service's selector picks these labels.
pub(crate) fn selects(selector: &BTreeMap<String, String>, labels: &BTreeMap<String, String>) -> bool {
    selector.iter().all(|(k, v)| labels.get(k) == Some(v))
}

/// `clusterIP: None`.
pub(crate) fn headless(svc: &Service) -> bool {
    svc.spec.as_ref().and_then(|s| s.cluster_ip.as_deref()) == Some("None")
}

/// `spec.publishNotReadyAddresses`.
pub(crate) fn publish_not_ready(svc: &Service) -> bool {
    svc.spec
        .as_ref()
        .and_then(|s| s.publish_not_ready_addresses)
        .unwrap_or(false)
}

fn is_ready(pod: &Pod) -> bool {
    crate::pods::ready_since(pod).is_some()
}

/// upstream `ShouldPodBeInEndpoints`: the pod has an IP, is not being deleted (unless
/// terminating pods are wanted) and can still run.
fn should_be_in(pod: &Pod, include_terminating: bool) -> bool {
    let status = pod.status.as_ref();
    if status.and_then(|s| s.pod_ip.as_deref()).is_none_or(str::is_empty) {
        return false;
    }
    if !include_terminating && pod.metadata.deletion_timestamp.is_some() {
        return false;
    }
    let phase = status.and_then(|s| s.phase.as_deref()).unwrap_or("");
    match pod.spec.as_ref().and_then(|s| s.restart_policy.as_deref()) {
        Some("Never") => phase != "Failed" && phase != "Succeeded",
        Some("OnFailure") => phase != "Succeeded",
        _ => true,
    }
}

/// upstream `FindPort`: a numeric target port as it is, a named one looked up among the
/// containers' ports of the same protocol.
fn find_port(pod: &Pod, sp: &ServicePort) -> Option<i32> {
    let protocol = sp.protocol.as_deref().unwrap_or("TCP");
    match &sp.target_port {
        None => Some(sp.port),
        Some(IntOrString::Int(n)) if *n == 0 => Some(sp.port),
        Some(IntOrString::Int(n)) => Some(*n),
        Some(IntOrString::String(name)) => match name.parse::<i32>() {
            Ok(n) => Some(n),
            Err(_) => pod
                .spec
                .as_ref()?
                .containers
                .iter()
                .flat_map(|c| c.ports.iter().flatten())
                .find(|p| p.name.as_deref() == Some(name) && p.protocol.as_deref().unwrap_or("TCP") == protocol)
                .map(|p| p.container_port),
        },
    }
}

/// The pods of `pods` the service selects, as endpoints; `include_terminating` keeps pods
/// being deleted (EndpointSlices do, Endpoints only with publishNotReadyAddresses).
pub(crate) fn endpoints(svc: &Service, pods: &[Arc<Pod>], include_terminating: bool) -> Vec<Endpoint> {
    let Some(sel) = selector(svc) else {
        return Vec::new();
    };
    let ns = svc.namespace().unwrap_or_default();
    let name = svc.name_any();
    let service_ports: &[ServicePort] = svc.spec.as_ref().and_then(|s| s.ports.as_deref()).unwrap_or_default();
    let mut out: Vec<Endpoint> = pods
        .iter()
        .filter(|p| p.namespace().as_deref() == Some(ns.as_str()) && selects(sel, p.labels()))
        .filter(|p| should_be_in(p, include_terminating))
        .filter_map(|p| {
            let spec = p.spec.as_ref();
            let ports: Vec<Port> = service_ports
                .iter()
                .filter_map(|sp| {
                    let port = find_port(p, sp);
                    if port.is_none() {
                        tracing::debug!(pod = %p.name_any(), service = %name, port = ?sp.name, "pod lacks the service's target port");
                    }
                    Some(Port {
                        name: sp.name.clone().filter(|n| !n.is_empty()),
                        port: port?,
                        protocol: sp.protocol.clone().unwrap_or_else(|| "TCP".into()),
                        app_protocol: sp.app_protocol.clone(),
                    })
                })
                .collect();
            // A pod none of whose ports resolve serves nothing (headless services without
            // ports list every pod).
            if ports.is_empty() && !service_ports.is_empty() {
                return None;
            }
            let hostname = spec
                .and_then(|s| s.hostname.clone())
                .filter(|h| !h.is_empty() && spec.and_then(|s| s.subdomain.as_deref()) == Some(name.as_str()));
            Some(Endpoint {
                ip: p.status.as_ref()?.pod_ip.clone()?,
                node: spec.and_then(|s| s.node_name.clone()).filter(|n| !n.is_empty()),
                hostname,
                serving: is_ready(p),
                terminating: p.metadata.deletion_timestamp.is_some(),
                ports,
                pod: p.clone(),
            })
        })
        .collect();
    out.sort_by(|a, b| (&a.ip, a.pod.uid()).cmp(&(&b.ip, b.pod.uid())));
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn pod(name: &str, ip: &str, ready: bool, ports: serde_json::Value) -> Arc<Pod> {
        Arc::new(
            serde_json::from_value(json!({
                "metadata": {"name": name, "namespace": "default", "uid": name, "labels": {"app": "web"}},
                "spec": {"containers": [{"name": "c", "ports": ports}], "nodeName": "n1"},
                "status": {"podIP": ip, "phase": "Running",
                    "conditions": [{"type": "Ready", "status": if ready {"True"} else {"False"}}]}
            }))
            .unwrap(),
        )
    }

    fn svc(ports: serde_json::Value) -> Service {
        serde_json::from_value(json!({
            "metadata": {"name": "web", "namespace": "default"},
            "spec": {"selector": {"app": "web"}, "ports": ports}
        }))
        .unwrap()
    }

    #[test]
    fn named_ports_resolve_per_pod_and_pods_without_them_drop_out() {
        let pods = vec![
            pod("b", "10.42.0.3", true, json!([{"name": "http", "containerPort": 8080}])),
            pod(
                "a",
                "10.42.0.2",
                false,
                json!([{"name": "http", "containerPort": 9090}]),
            ),
            pod("c", "10.42.0.4", true, json!([{"name": "other", "containerPort": 80}])),
            pod("d", "", true, json!([{"name": "http", "containerPort": 80}])),
        ];
        let eps = endpoints(&svc(json!([{"port": 80, "targetPort": "http"}])), &pods, false);
        let got: Vec<(&str, i32, bool)> = eps
            .iter()
            .map(|e| (e.ip.as_str(), e.ports[0].port, e.serving))
            .collect();
        assert_eq!(got, vec![("10.42.0.2", 9090, false), ("10.42.0.3", 8080, true)]);
        let eps = endpoints(&svc(json!([{"port": 80}])), &pods, false);
        assert_eq!(eps.len(), 3, "a missing targetPort means the port itself");
        assert!(eps.iter().all(|e| e.ports[0].port == 80));
    }
}
