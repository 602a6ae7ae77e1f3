//! core/v1 kinds other than pods, plus the small kinds of other groups.

use super::cause::{forbidden, immutable, invalid, nonnegative, not_supported, required, too_long, Bad, Cause};
use super::json::{arr, at, int_at, obj_at, present, s};
use super::names::{config_map_key, dns1123_label, labels};
use super::pod::{port_num_or_name, port_range, protocol};
use serde_json::Value;
use std::collections::HashSet;

/// Upstream's limit on Secret and ConfigMap payloads.
const MAX_DATA_SIZE: usize = 1024 * 1024;
const SERVICE_TYPES: &[&str] = &["ClusterIP", "ExternalName", "LoadBalancer", "NodePort"];

/// Service.
pub(crate) fn service(obj: &Value, out: &mut Vec<Cause>) {
    let spec = at(obj, &["spec"]).unwrap_or(&Value::Null);
    let ty = s(spec, &["type"]);
    let headless = s(spec, &["clusterIP"]) == "None";
    if !SERVICE_TYPES.contains(&ty) {
        out.push(not_supported("spec.type", ty, SERVICE_TYPES));
    }
    if ty == "ExternalName" {
        let name = s(spec, &["externalName"]);
        if name.is_empty() {
            out.push(required("spec.externalName", ""));
        }
    }
    let ports = arr(spec, &["ports"]);
    if ports.is_empty() && !headless && ty != "ExternalName" {
        out.push(required("spec.ports", ""));
    }
    let mut names = HashSet::new();
    let mut keys = HashSet::new();
    for (i, p) in ports.iter().enumerate() {
        let path = format!("spec.ports[{i}]");
        let name = s(p, &["name"]);
        if ports.len() > 1 && name.is_empty() {
            out.push(required(&format!("{path}.name"), ""));
        } else if !name.is_empty() {
            for msg in dns1123_label(name) {
                out.push(invalid(&format!("{path}.name"), name, &msg));
            }
            if !names.insert(name) {
                out.push(super::cause::duplicate(&format!("{path}.name"), name));
            }
        }
        let port = int_at(p, &["port"]).unwrap_or(0);
        port_range(&format!("{path}.port"), port, out);
        protocol(p, &path, out);
        port_num_or_name(p.get("targetPort"), &format!("{path}.targetPort"), out);
        if let Some(np) = int_at(p, &["nodePort"]).filter(|n| *n != 0) {
            if ty == "ClusterIP" {
                out.push(forbidden(
                    &format!("{path}.nodePort"),
                    "may not be used when `type` is 'ClusterIP'",
                ));
            } else {
                port_range(&format!("{path}.nodePort"), np, out);
            }
        }
        if !keys.insert((port, s(p, &["protocol"]))) {
            out.push(super::cause::duplicate(
                &path,
                Bad::Raw(format!(
                    "core.ServicePort{{Name:{:?}, Protocol:{:?}, Port:{port}}}",
                    name,
                    s(p, &["protocol"])
                )),
            ));
        }
    }
    labels(spec.get("selector"), "spec.selector", out);
    match s(spec, &["sessionAffinity"]) {
        "None" | "ClientIP" => {}
        "" => out.push(required("spec.sessionAffinity", "")),
        other => out.push(not_supported("spec.sessionAffinity", other, &["ClientIP", "None"])),
    }
    if let Some(p) = at(spec, &["internalTrafficPolicy"]).and_then(Value::as_str) {
        if p != "Cluster" && p != "Local" {
            out.push(not_supported("spec.internalTrafficPolicy", p, &["Cluster", "Local"]));
        }
    }
    if let Some(p) = at(spec, &["ipFamilyPolicy"]).and_then(Value::as_str) {
        if !["SingleStack", "PreferDualStack", "RequireDualStack"].contains(&p) {
            out.push(not_supported(
                "spec.ipFamilyPolicy",
                p,
                &["PreferDualStack", "RequireDualStack", "SingleStack"],
            ));
        }
    }
    for (i, ip) in arr(spec, &["clusterIPs"]).iter().enumerate() {
        let ip = ip.as_str().unwrap_or("");
        if ip != "None" && !ip.is_empty() && ip.parse::<std::net::IpAddr>().is_err() {
            out.push(invalid(
                &format!("spec.clusterIPs[{i}]"),
                ip,
                "must be a valid IP address, (e.g. 10.9.8.7 or 2001:db8::ffff)",
            ));
        }
    }
}

/// Service update: an allocated clusterIP stays (an empty one is filled in by the server).
pub(crate) fn service_update(new: &Value, old: &Value, out: &mut Vec<Cause>) {
    let (n, o) = (s(new, &["spec", "clusterIP"]), s(old, &["spec", "clusterIP"]));
    if s(new, &["spec", "type"]) != "ExternalName"
        && s(old, &["spec", "type"]) != "ExternalName"
        && !o.is_empty()
        && !n.is_empty()
        && n != o
    {
        out.push(invalid("spec.clusterIPs[0]", n, "may not change once set"));
    }
}

fn data_keys(obj: &Value, key: &str, out: &mut Vec<Cause>) -> usize {
    let mut size = 0;
    if let Some(m) = obj_at(obj, &[key]) {
        for (k, v) in m {
            for msg in config_map_key(k) {
                out.push(invalid(&format!("{key}[{k}]"), k.as_str(), &msg));
            }
            size += v.as_str().map_or(0, str::len);
        }
    }
    size
}

/// Secret.
pub(crate) fn secret(obj: &Value, out: &mut Vec<Cause>) {
    // `data` holds base64: the decoded size is about three quarters of it.
    let size = data_keys(obj, "data", out) * 3 / 4 + data_keys(obj, "stringData", out);
    if size > MAX_DATA_SIZE {
        out.push(too_long("data", MAX_DATA_SIZE));
    }
    let has = |k: &str| present(obj, &["data", k]) || present(obj, &["stringData", k]);
    match s(obj, &["type"]) {
        "kubernetes.io/service-account-token"
            if s(obj, &["metadata", "annotations", "kubernetes.io/service-account.name"]).is_empty() =>
        {
            out.push(required("metadata.annotations[kubernetes.io/service-account.name]", ""));
        }
        "kubernetes.io/dockercfg" if !has(".dockercfg") => out.push(required("data[.dockercfg]", "")),
        "kubernetes.io/dockerconfigjson" if !has(".dockerconfigjson") => {
            out.push(required("data[.dockerconfigjson]", ""))
        }
        "kubernetes.io/ssh-auth" if !has("ssh-privatekey") => out.push(required("data[ssh-privatekey]", "")),
        "kubernetes.io/tls" => {
            for k in ["tls.crt", "tls.key"] {
                if !has(k) {
                    out.push(required(&format!("data[{k}]"), ""));
                }
            }
        }
        _ => {}
    }
}

/// ConfigMap.
pub(crate) fn config_map(obj: &Value, out: &mut Vec<Cause>) {
    let size = data_keys(obj, "data", out) + data_keys(obj, "binaryData", out) * 3 / 4;
    if let (Some(d), Some(b)) = (obj_at(obj, &["data"]), obj_at(obj, &["binaryData"])) {
        for k in b.keys().filter(|k| d.contains_key(*k)) {
            out.push(invalid(
                &format!("binaryData[{k}]"),
                k.as_str(),
                "duplicate of key present in data",
            ));
        }
    }
    if size > MAX_DATA_SIZE {
        out.push(too_long("[]", MAX_DATA_SIZE));
    }
}

/// Secret and ConfigMap updates when the old object is `immutable`.
pub(crate) fn immutable_data(new: &Value, old: &Value, keys: &[&str], out: &mut Vec<Cause>) {
    if at(old, &["immutable"]).and_then(Value::as_bool) != Some(true) {
        return;
    }
    if at(new, &["immutable"]).and_then(Value::as_bool) != Some(true) {
        out.push(forbidden("immutable", "field is immutable when `immutable` is set"));
    }
    for k in keys {
        if at(new, &[k]) != at(old, &[k]) {
            out.push(forbidden(k, "field is immutable when `immutable` is set"));
        }
    }
}

/// Secret type never changes.
pub(crate) fn secret_update(new: &Value, old: &Value, out: &mut Vec<Cause>) {
    out.extend(immutable("type", new.get("type"), old.get("type")));
    immutable_data(new, old, &["data"], out);
}

/// PersistentVolumeClaim.
pub(crate) fn pvc(obj: &Value, out: &mut Vec<Cause>) {
    let spec = at(obj, &["spec"]).unwrap_or(&Value::Null);
    access_modes(spec, "spec", out);
    if !present(spec, &["resources", "requests", "storage"]) && !present(spec, &["dataSourceRef"]) {
        out.push(required("spec.resources[storage]", ""));
    }
    volume_mode(spec, "spec", out);
}

fn access_modes(spec: &Value, path: &str, out: &mut Vec<Cause>) {
    let modes = arr(spec, &["accessModes"]);
    if modes.is_empty() {
        out.push(required(
            &format!("{path}.accessModes"),
            "at least 1 access mode is required",
        ));
    }
    const MODES: &[&str] = &["ReadOnlyMany", "ReadWriteMany", "ReadWriteOnce", "ReadWriteOncePod"];
    for m in modes.iter().filter_map(Value::as_str) {
        if !MODES.contains(&m) {
            out.push(not_supported(&format!("{path}.accessModes"), m, MODES));
        }
    }
}

fn volume_mode(spec: &Value, path: &str, out: &mut Vec<Cause>) {
    if let Some(m) = at(spec, &["volumeMode"]).and_then(Value::as_str) {
        if m != "Block" && m != "Filesystem" {
            out.push(not_supported(
                &format!("{path}.volumeMode"),
                m,
                &["Block", "Filesystem"],
            ));
        }
    }
}

/// PVC spec is immutable except requests, volumeAttributesClassName and the first binding.
pub(crate) fn pvc_update(new: &Value, old: &Value, out: &mut Vec<Cause>) {
    let (Some(n), Some(o)) = (new.get("spec"), old.get("spec")) else {
        return;
    };
    let mut munged = n.clone();
    if let Some(m) = munged.as_object_mut() {
        let mut copy = |k: &str| match o.get(k) {
            Some(v) => m.insert(k.to_string(), v.clone()),
            None => m.remove(k),
        };
        copy("volumeAttributesClassName");
        if s(o, &["volumeName"]).is_empty() {
            copy("volumeName");
        }
        if s(o, &["storageClassName"]).is_empty() {
            copy("storageClassName");
        }
        if let Some(r) = m.get_mut("resources").and_then(Value::as_object_mut) {
            match at(o, &["resources", "requests"]) {
                Some(v) => r.insert("requests".into(), v.clone()),
                None => r.remove("requests"),
            };
        }
    }
    if munged != *o {
        out.push(forbidden(
            "spec",
            "spec is immutable after creation except resources.requests and volumeAttributesClassName for bound claims",
        ));
    }
}

/// PersistentVolume.
pub(crate) fn pv(obj: &Value, out: &mut Vec<Cause>) {
    let spec = at(obj, &["spec"]).unwrap_or(&Value::Null);
    access_modes(spec, "spec", out);
    if !present(spec, &["capacity"]) {
        out.push(required("spec.capacity", ""));
    }
    const SOURCES: &[&str] = &[
        "hostPath",
        "local",
        "nfs",
        "csi",
        "iscsi",
        "fc",
        "rbd",
        "cephfs",
        "cinder",
        "glusterfs",
        "flexVolume",
        "azureFile",
        "azureDisk",
        "vsphereVolume",
        "quobyte",
        "photonPersistentDisk",
        "portworxVolume",
        "scaleIO",
        "storageos",
        "gcePersistentDisk",
        "awsElasticBlockStore",
        "flocker",
    ];
    if !SOURCES.iter().any(|k| present(spec, &[k])) {
        out.push(required("spec", "must specify a volume type"));
    }
    if let Some(p) = at(spec, &["persistentVolumeReclaimPolicy"]).and_then(Value::as_str) {
        if !["Delete", "Recycle", "Retain"].contains(&p) {
            out.push(not_supported(
                "spec.persistentVolumeReclaimPolicy",
                p,
                &["Delete", "Recycle", "Retain"],
            ));
        }
    }
    volume_mode(spec, "spec", out);
}

/// core/v1 Event: the involved object's namespace must be the event's.
pub(crate) fn event(obj: &Value, out: &mut Vec<Cause>) {
    let ns = s(obj, &["metadata", "namespace"]);
    let io = s(obj, &["involvedObject", "namespace"]);
    let ok = if io.is_empty() {
        ns.is_empty() || ns == "default"
    } else {
        io == ns
    };
    if present(obj, &["involvedObject"]) && !ok {
        out.push(invalid(
            "involvedObject.namespace",
            io,
            "does not match event.namespace",
        ));
    }
    if let Some(c) = int_at(obj, &["count"]) {
        nonnegative("count", c, out);
    }
}

/// events.k8s.io/v1 Event.
pub(crate) fn event_v1(obj: &Value, out: &mut Vec<Cause>) {
    if s(obj, &["eventTime"]).is_empty() && !present(obj, &["deprecatedFirstTimestamp"]) {
        out.push(required("eventTime", ""));
    }
    if let Some(t) = at(obj, &["type"]).and_then(Value::as_str) {
        if t != "Normal" && t != "Warning" {
            out.push(not_supported("type", t, &["Normal", "Warning"]));
        }
    }
}

/// EndpointSlice.
pub(crate) fn endpoint_slice(obj: &Value, out: &mut Vec<Cause>) {
    match s(obj, &["addressType"]) {
        "IPv4" | "IPv6" | "FQDN" => {}
        "" => out.push(required("addressType", "")),
        other => out.push(not_supported("addressType", other, &["FQDN", "IPv4", "IPv6"])),
    }
    for (i, e) in arr(obj, &["endpoints"]).iter().enumerate() {
        if arr(e, &["addresses"]).is_empty() {
            out.push(required(
                &format!("endpoints[{i}].addresses"),
                "must contain at least 1 address",
            ));
        }
    }
}

/// HorizontalPodAutoscaler (autoscaling/v2).
pub(crate) fn hpa(obj: &Value, out: &mut Vec<Cause>) {
    let spec = at(obj, &["spec"]).unwrap_or(&Value::Null);
    for k in ["kind", "name"] {
        if s(spec, &["scaleTargetRef", k]).is_empty() {
            out.push(required(&format!("spec.scaleTargetRef.{k}"), ""));
        }
    }
    let max = int_at(spec, &["maxReplicas"]).unwrap_or(0);
    if max < 1 {
        out.push(invalid("spec.maxReplicas", max, "must be greater than 0"));
    }
    if let Some(min) = int_at(spec, &["minReplicas"]) {
        if min > max {
            out.push(invalid(
                "spec.minReplicas",
                min,
                "must be less than or equal to maxReplicas",
            ));
        }
    }
}

/// ControllerRevision.
pub(crate) fn controller_revision(obj: &Value, out: &mut Vec<Cause>) {
    if !present(obj, &["data"]) {
        out.push(required("data", "data is mandatory"));
    }
    if let Some(r) = int_at(obj, &["revision"]) {
        nonnegative("revision", r, out);
    }
}

/// Namespace: `spec.finalizers` must be qualified names.
pub(crate) fn namespace(obj: &Value, out: &mut Vec<Cause>) {
    for (i, f) in arr(obj, &["spec", "finalizers"]).iter().enumerate() {
        let f = f.as_str().unwrap_or("");
        for msg in super::names::qualified_name(f) {
            out.push(invalid(&format!("spec.finalizers[{i}]"), f, &msg));
        }
    }
}
