//! Rows for Node, Namespace, PersistentVolume, PersistentVolumeClaim, StorageClass and
//! APIService.

use std::collections::BTreeSet;

use jiff::Timestamp;
use serde_json::{json, Value};

use super::duration::{parse_time, since};
use super::json::{arr, at, flag, opt_s, s};

fn age(obj: &Value, now: Timestamp) -> Value {
    json!(since(parse_time(opt_s(obj, "metadata.creationTimestamp")), now))
}

fn deleting(obj: &Value) -> bool {
    at(obj, "metadata.deletionTimestamp").is_some_and(|v| !v.is_null())
}

fn node_status(node: &Value) -> String {
    // Upstream keeps the last condition of each type.
    let ready = arr(node, "status.conditions")
        .iter()
        .rev()
        .find(|c| s(c, "type") == "Ready");
    let mut status = vec![match ready {
        Some(c) if s(c, "status") == "True" => "Ready",
        Some(_) => "NotReady",
        None => "Unknown",
    }];
    if flag(node, "spec.unschedulable") {
        status.push("SchedulingDisabled");
    }
    status.join(",")
}

/// Upstream `findNodeRoles`: `node-role.kubernetes.io/<role>` keys and `kubernetes.io/role` values.
fn node_roles(node: &Value) -> String {
    let mut roles = BTreeSet::new();
    if let Some(labels) = at(node, "metadata.labels").and_then(Value::as_object) {
        for (k, v) in labels {
            if let Some(role) = k.strip_prefix("node-role.kubernetes.io/") {
                if !role.is_empty() {
                    roles.insert(role.to_string());
                }
            } else if k == "kubernetes.io/role" {
                if let Some(v) = v.as_str().filter(|v| !v.is_empty()) {
                    roles.insert(v.to_string());
                }
            }
        }
    }
    if roles.is_empty() {
        "<none>".into()
    } else {
        roles.into_iter().collect::<Vec<_>>().join(",")
    }
}

fn node_address(node: &Value, ty: &str) -> String {
    arr(node, "status.addresses")
        .iter()
        .find(|a| s(a, "type") == ty)
        .map_or("<none>".into(), |a| s(a, "address").into())
}

fn or_unknown(v: &str) -> &str {
    if v.is_empty() {
        "<unknown>"
    } else {
        v
    }
}

pub(crate) fn node(node: &Value, now: Timestamp) -> Vec<Value> {
    vec![
        json!(s(node, "metadata.name")),
        json!(node_status(node)),
        json!(node_roles(node)),
        age(node, now),
        json!(s(node, "status.nodeInfo.kubeletVersion")),
        json!(node_address(node, "InternalIP")),
        json!(node_address(node, "ExternalIP")),
        json!(or_unknown(s(node, "status.nodeInfo.osImage"))),
        json!(or_unknown(s(node, "status.nodeInfo.kernelVersion"))),
        json!(or_unknown(s(node, "status.nodeInfo.containerRuntimeVersion"))),
    ]
}

pub(crate) fn namespace(ns: &Value, now: Timestamp) -> Vec<Value> {
    vec![
        json!(s(ns, "metadata.name")),
        json!(s(ns, "status.phase")),
        age(ns, now),
    ]
}

/// Upstream `GetAccessModesAsString`: fixed order, duplicates removed.
fn access_modes(modes: &[Value]) -> String {
    let has = |m: &str| modes.iter().any(|v| v.as_str() == Some(m));
    [
        ("ReadWriteOnce", "RWO"),
        ("ReadOnlyMany", "ROX"),
        ("ReadWriteMany", "RWX"),
        ("ReadWriteOncePod", "RWOP"),
    ]
    .iter()
    .filter(|(m, _)| has(m))
    .map(|(_, short)| *short)
    .collect::<Vec<_>>()
    .join(",")
}

/// The storage class: the beta annotation wins over `spec.storageClassName`.
fn storage_class(obj: &Value) -> String {
    at(obj, "metadata.annotations")
        .and_then(|a| a.get("volume.beta.kubernetes.io/storage-class"))
        .and_then(Value::as_str)
        .unwrap_or_else(|| s(obj, "spec.storageClassName"))
        .to_string()
}

/// A quantity as printed; a missing one is zero.
fn quantity(v: Option<&Value>) -> String {
    match v {
        Some(Value::String(q)) => q.clone(),
        Some(Value::Number(n)) => n.to_string(),
        _ => "0".into(),
    }
}

fn unset(obj: &Value, path: &str) -> String {
    opt_s(obj, path).unwrap_or("<unset>").to_string()
}

pub(crate) fn persistent_volume(pv: &Value, now: Timestamp) -> Vec<Value> {
    let claim = match at(pv, "spec.claimRef") {
        Some(c) if c.is_object() => format!("{}/{}", s(c, "namespace"), s(c, "name")),
        _ => String::new(),
    };
    let phase = if deleting(pv) {
        "Terminating"
    } else {
        s(pv, "status.phase")
    };
    vec![
        json!(s(pv, "metadata.name")),
        json!(quantity(at(pv, "spec.capacity.storage"))),
        json!(access_modes(arr(pv, "spec.accessModes"))),
        json!(s(pv, "spec.persistentVolumeReclaimPolicy")),
        json!(phase),
        json!(claim),
        json!(storage_class(pv)),
        json!(unset(pv, "spec.volumeAttributesClassName")),
        json!(s(pv, "status.reason")),
        age(pv, now),
        json!(unset(pv, "spec.volumeMode")),
    ]
}

pub(crate) fn persistent_volume_claim(pvc: &Value, now: Timestamp) -> Vec<Value> {
    let phase = if deleting(pvc) {
        "Terminating"
    } else {
        s(pvc, "status.phase")
    };
    let bound = !s(pvc, "spec.volumeName").is_empty();
    let (capacity, modes) = if bound {
        (
            quantity(at(pvc, "status.capacity.storage")),
            access_modes(arr(pvc, "status.accessModes")),
        )
    } else {
        (String::new(), String::new())
    };
    vec![
        json!(s(pvc, "metadata.name")),
        json!(phase),
        json!(s(pvc, "spec.volumeName")),
        json!(capacity),
        json!(modes),
        json!(storage_class(pvc)),
        json!(unset(pvc, "spec.volumeAttributesClassName")),
        age(pvc, now),
        json!(unset(pvc, "spec.volumeMode")),
    ]
}

/// Upstream `storageutil.IsDefaultAnnotation`: the GA or beta default-class annotation is `"true"`.
fn is_default_class(obj: &Value) -> bool {
    let Some(a) = at(obj, "metadata.annotations") else {
        return false;
    };
    [
        "storageclass.kubernetes.io/is-default-class",
        "storageclass.beta.kubernetes.io/is-default-class",
    ]
    .iter()
    .any(|k| a.get(*k).and_then(Value::as_str) == Some("true"))
}

pub(crate) fn storage_class_row(sc: &Value, now: Timestamp) -> Vec<Value> {
    let mut name = s(sc, "metadata.name").to_string();
    if is_default_class(sc) {
        name.push_str(" (default)");
    }
    vec![
        json!(name),
        json!(s(sc, "provisioner")),
        json!(opt_s(sc, "reclaimPolicy").unwrap_or("Delete")),
        json!(opt_s(sc, "volumeBindingMode").unwrap_or("Immediate")),
        json!(flag(sc, "allowVolumeExpansion")),
        age(sc, now),
    ]
}

/// APIService row: `Local` for a service-less (built-in) APIService, else `namespace/name`;
/// AVAILABLE is the Available condition's status, with its reason when not True.
pub(crate) fn api_service(a: &Value, now: Timestamp) -> Vec<Value> {
    let service = match at(a, "spec.service").filter(|v| v.is_object()) {
        Some(svc) => format!("{}/{}", s(svc, "namespace"), s(svc, "name")),
        None => "Local".to_string(),
    };
    let available = arr(a, "status.conditions")
        .iter()
        .find(|c| s(c, "type") == "Available")
        .map_or_else(
            || "Unknown".to_string(),
            |c| match (s(c, "status"), s(c, "reason")) {
                ("True", _) => "True".to_string(),
                (status, "") => status.to_string(),
                (status, reason) => format!("{status} ({reason})"),
            },
        );
    vec![
        json!(s(a, "metadata.name")),
        json!(service),
        json!(available),
        age(a, now),
    ]
}
