//! core/v1 and other small kinds' defaults (pkg/apis/core/v1/defaults.go and the create
//! strategies whose effects kubectl output relies on).

use super::util::{child, each, existing, has, set};
use serde_json::{json, Map, Value};

/// Service: type, affinity, port protocol and targetPort, traffic policies, IP families.
pub(crate) fn service(obj: &mut Map<String, Value>) {
    let Some(spec) = child(obj, "spec") else { return };
    set(spec, "type", json!("ClusterIP"));
    set(spec, "sessionAffinity", json!("None"));
    let ty = spec.get("type").and_then(Value::as_str).unwrap_or("").to_string();
    for p in each(spec, "ports") {
        set(p, "protocol", json!("TCP"));
        let empty_target = match p.get("targetPort") {
            None | Some(Value::Null) => true,
            Some(Value::Number(n)) => n.as_i64() == Some(0),
            Some(Value::String(s)) => s.is_empty(),
            _ => false,
        };
        if empty_target {
            if let Some(port) = p.get("port").cloned() {
                p.insert("targetPort".into(), port);
            }
        }
    }
    if spec.get("sessionAffinity").and_then(Value::as_str) == Some("ClientIP") {
        if let Some(cfg) = child(spec, "sessionAffinityConfig").and_then(|c| child(c, "clientIP")) {
            set(cfg, "timeoutSeconds", json!(10800));
        }
    }
    if ty == "NodePort" || ty == "LoadBalancer" {
        set(spec, "externalTrafficPolicy", json!("Cluster"));
    }
    if ty == "LoadBalancer" {
        set(spec, "allocateLoadBalancerNodePorts", json!(true));
    }
    if ty != "ExternalName" {
        set(spec, "internalTrafficPolicy", json!("Cluster"));
        set(spec, "ipFamilyPolicy", json!("SingleStack"));
        set(spec, "ipFamilies", json!(["IPv4"]));
    }
    if let Some(status) = child(obj, "status") {
        set(status, "loadBalancer", json!({}));
    }
}

/// Secret: `type: Opaque`.
pub(crate) fn secret(obj: &mut Map<String, Value>) {
    if obj.get("type").is_none_or(|t| t.is_null() || t.as_str() == Some("")) {
        obj.insert("type".into(), json!("Opaque"));
    }
}

/// Namespace: phase Active, the `kubernetes.io/metadata.name` label, the kubernetes finalizer.
pub(crate) fn namespace(obj: &mut Map<String, Value>) {
    let name = obj
        .get("metadata")
        .and_then(|m| m.get("name"))
        .and_then(Value::as_str)
        .map(str::to_string);
    if let (Some(name), Some(labels)) = (name, child(obj, "metadata").and_then(|m| child(m, "labels"))) {
        if !name.is_empty() {
            labels.insert("kubernetes.io/metadata.name".into(), json!(name));
        }
    }
    if let Some(spec) = child(obj, "spec") {
        set(spec, "finalizers", json!(["kubernetes"]));
    }
    if let Some(status) = child(obj, "status") {
        set(status, "phase", json!("Active"));
    }
}

/// PersistentVolumeClaim.
pub(crate) fn pvc(obj: &mut Map<String, Value>) {
    if let Some(spec) = child(obj, "spec") {
        set(spec, "volumeMode", json!("Filesystem"));
    }
    if let Some(status) = child(obj, "status") {
        set(status, "phase", json!("Pending"));
    }
}

/// PersistentVolume.
pub(crate) fn pv(obj: &mut Map<String, Value>) {
    if let Some(spec) = child(obj, "spec") {
        set(spec, "persistentVolumeReclaimPolicy", json!("Retain"));
        set(spec, "volumeMode", json!("Filesystem"));
        if let Some(hp) = existing(spec, "hostPath") {
            set(hp, "type", json!(""));
        }
    }
    if let Some(status) = child(obj, "status") {
        set(status, "phase", json!("Pending"));
    }
}

/// Node: allocatable defaults to capacity.
pub(crate) fn node(obj: &mut Map<String, Value>) {
    let Some(status) = existing(obj, "status") else { return };
    if let Some(cap) = status.get("capacity").cloned().filter(Value::is_object) {
        set(status, "allocatable", cap);
    }
}

/// Endpoints and EndpointSlices: port protocol TCP.
pub(crate) fn endpoints(obj: &mut Map<String, Value>) {
    for subset in each(obj, "subsets") {
        for p in each(subset, "ports") {
            set(p, "protocol", json!("TCP"));
        }
    }
    for p in each(obj, "ports") {
        set(p, "protocol", json!("TCP"));
    }
}

/// HorizontalPodAutoscaler (autoscaling/v2): one replica minimum, 80% CPU by default.
pub(crate) fn hpa(obj: &mut Map<String, Value>) {
    let Some(spec) = child(obj, "spec") else { return };
    set(spec, "minReplicas", json!(1));
    if !has(spec, "metrics") || spec.get("metrics").and_then(Value::as_array).is_some_and(Vec::is_empty) {
        spec.insert(
            "metrics".into(),
            json!([{"type": "Resource", "resource": {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": 80}}}]),
        );
    }
}

/// StorageClass (storage/v1 defaults.go): reclaim policy Delete, binding mode Immediate.
pub(crate) fn storage_class(obj: &mut Map<String, Value>) {
    set(obj, "reclaimPolicy", json!("Delete"));
    set(obj, "volumeBindingMode", json!("Immediate"));
}

/// LimitRange: a Container item's default limit falls back to max, its default request to the
/// default limit, then to min (upstream `SetDefaults_LimitRangeItem`).
pub(crate) fn limit_range(obj: &mut Map<String, Value>) {
    let Some(spec) = child(obj, "spec") else { return };
    for item in each(spec, "limits") {
        if item.get("type").and_then(Value::as_str) != Some("Container") {
            continue;
        }
        let mut fill = |to: &str, from: &str| {
            let src = item.get(from).and_then(Value::as_object).cloned().unwrap_or_default();
            if src.is_empty() {
                return;
            }
            let dst = item.entry(to).or_insert_with(|| json!({}));
            if let Some(dst) = dst.as_object_mut() {
                for (k, v) in src {
                    dst.entry(k).or_insert(v);
                }
            }
        };
        fill("default", "max");
        fill("defaultRequest", "default");
        fill("defaultRequest", "min");
    }
}
