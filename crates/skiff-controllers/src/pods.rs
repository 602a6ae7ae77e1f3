//! What controllers read of pods: selectors, controller references, activity, readiness.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{Affinity, Container, ContainerStatus, Pod, PodSpec, PodStatus};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta, OwnerReference};

/// Drops what no controller reads of a cached pod (container specs but names and ports,
/// most of the spec, container details but state, readiness and restarts), so the shared cache
/// of a large cluster's pods stays small. Controllers only patch pods, never write back a cached
/// one, so nothing dropped here can be lost on the server.
pub fn trim_cached(pod: &mut Pod) {
    if let Some(spec) = pod.spec.take() {
        let names_and_ports = |cs: Vec<Container>| -> Vec<Container> {
            cs.into_iter()
                .map(|c| Container {
                    name: c.name,
                    ports: c.ports,
                    ..Default::default()
                })
                .collect()
        };
        pod.spec = Some(PodSpec {
            containers: names_and_ports(spec.containers),
            init_containers: spec.init_containers.map(names_and_ports),
            node_name: spec.node_name,
            affinity: spec.affinity.map(|a| Affinity {
                node_affinity: a.node_affinity,
                ..Default::default()
            }),
            tolerations: spec.tolerations,
            volumes: spec.volumes,
            hostname: spec.hostname,
            subdomain: spec.subdomain,
            restart_policy: spec.restart_policy,
            ..Default::default()
        });
    }
    if let Some(st) = pod.status.as_mut() {
        let slim = |cs: Option<Vec<ContainerStatus>>| {
            cs.map(|cs| {
                cs.into_iter()
                    .map(|c| ContainerStatus {
                        name: c.name,
                        ready: c.ready,
                        restart_count: c.restart_count,
                        started: c.started,
                        state: c.state,
                        last_state: c.last_state,
                        ..Default::default()
                    })
                    .collect()
            })
        };
        *st = PodStatus {
            phase: st.phase.take(),
            conditions: st.conditions.take(),
            host_ip: st.host_ip.take(),
            pod_ip: st.pod_ip.take(),
            pod_ips: st.pod_ips.take(),
            start_time: st.start_time.take(),
            reason: st.reason.take(),
            container_statuses: slim(st.container_statuses.take()),
            init_container_statuses: slim(st.init_container_statuses.take()),
            ..Default::default()
        };
    }
}

/// Whether `labels` satisfy `selector` (matchLabels and matchExpressions). An empty selector
/// matches nothing, as upstream's controllers treat it.
pub fn selector_matches(selector: &LabelSelector, labels: &BTreeMap<String, String>) -> bool {
    let ml = selector.match_labels.as_ref().filter(|m| !m.is_empty());
    let me = selector.match_expressions.as_ref().filter(|m| !m.is_empty());
    if ml.is_none() && me.is_none() {
        return false;
    }
    let labels_ok = ml.is_none_or(|ml| ml.iter().all(|(k, v)| labels.get(k) == Some(v)));
    let exprs_ok = me.is_none_or(|me| {
        me.iter().all(|e| {
            let values = e.values.as_deref().unwrap_or_default();
            let got = labels.get(&e.key);
            match e.operator.as_str() {
                "In" => got.is_some_and(|v| values.contains(v)),
                "NotIn" => got.is_none_or(|v| !values.contains(v)),
                "Exists" => got.is_some(),
                "DoesNotExist" => got.is_none(),
                _ => false,
            }
        })
    });
    labels_ok && exprs_ok
}

/// The pod's owner reference marked `controller`, if any.
pub fn controller_ref(pod: &Pod) -> Option<&OwnerReference> {
    controller_of(&pod.metadata)
}

/// The owner reference marked `controller` in any object's metadata, if any.
pub fn controller_of(meta: &ObjectMeta) -> Option<&OwnerReference> {
    meta.owner_references
        .as_ref()?
        .iter()
        .find(|r| r.controller == Some(true))
}

/// upstream: `IsPodActive` — not finished and not terminating.
pub fn is_active(pod: &Pod) -> bool {
    let phase = pod.status.as_ref().and_then(|s| s.phase.as_deref()).unwrap_or("");
    phase != "Succeeded" && phase != "Failed" && pod.metadata.deletion_timestamp.is_none()
}

/// The Ready condition's transition time when the pod is ready.
pub fn ready_since(pod: &Pod) -> Option<Option<jiff::Timestamp>> {
    let c = pod
        .status
        .as_ref()?
        .conditions
        .as_ref()?
        .iter()
        .find(|c| c.type_ == "Ready")?;
    (c.status == "True").then(|| c.last_transition_time.as_ref().map(|t| t.0))
}

/// upstream: `IsPodAvailable` — ready for at least `min_ready_seconds`.
pub fn is_available(pod: &Pod, min_ready_seconds: i32, now: jiff::Timestamp) -> bool {
    match ready_since(pod) {
        None => false,
        Some(_) if min_ready_seconds <= 0 => true,
        Some(None) => false,
        Some(Some(t)) => t + jiff::SignedDuration::from_secs(min_ready_seconds.into()) <= now,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelectorRequirement;

    fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    #[test]
    fn selector_matching() {
        let expr = |key: &str, op: &str, values: &[&str]| LabelSelector {
            match_labels: None,
            match_expressions: Some(vec![LabelSelectorRequirement {
                key: key.into(),
                operator: op.into(),
                values: Some(values.iter().map(|v| v.to_string()).collect()),
            }]),
        };
        let ml = LabelSelector {
            match_labels: Some(labels(&[("app", "web")])),
            match_expressions: None,
        };
        let cases = [
            (
                "matchLabels hit",
                ml.clone(),
                labels(&[("app", "web"), ("x", "y")]),
                true,
            ),
            ("matchLabels miss", ml.clone(), labels(&[("app", "db")]), false),
            (
                "empty matches nothing",
                LabelSelector::default(),
                labels(&[("a", "b")]),
                false,
            ),
            ("In", expr("tier", "In", &["a", "b"]), labels(&[("tier", "b")]), true),
            ("In missing", expr("tier", "In", &["a"]), labels(&[]), false),
            ("NotIn missing", expr("tier", "NotIn", &["a"]), labels(&[]), true),
            (
                "NotIn hit",
                expr("tier", "NotIn", &["a"]),
                labels(&[("tier", "a")]),
                false,
            ),
            ("Exists", expr("tier", "Exists", &[]), labels(&[("tier", "")]), true),
            (
                "DoesNotExist",
                expr("tier", "DoesNotExist", &[]),
                labels(&[("tier", "")]),
                false,
            ),
        ];
        for (name, sel, l, want) in cases {
            assert_eq!(selector_matches(&sel, &l), want, "{name}");
        }
    }
}
