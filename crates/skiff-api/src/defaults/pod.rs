//! Pod and pod template defaults (`SetDefaults_PodSpec`, `SetDefaults_Container`, probes,
//! volumes) from pkg/apis/core/v1/defaults.go.

use super::util::{child, each, existing, has, set, strip_null_timestamp};
use serde_json::{json, Map, Value};

/// The volume source fields of `core/v1.Volume`, in upstream's order.
pub(crate) const VOLUME_SOURCES: &[&str] = &[
    "hostPath",
    "emptyDir",
    "gcePersistentDisk",
    "awsElasticBlockStore",
    "gitRepo",
    "secret",
    "nfs",
    "iscsi",
    "glusterfs",
    "persistentVolumeClaim",
    "rbd",
    "flexVolume",
    "cinder",
    "cephfs",
    "flocker",
    "downwardAPI",
    "fc",
    "azureFile",
    "configMap",
    "vsphereVolume",
    "quobyte",
    "azureDisk",
    "photonPersistentDisk",
    "projected",
    "portworxVolume",
    "scaleIO",
    "storageos",
    "csi",
    "ephemeral",
    "image",
];

/// Defaults a pod template (`metadata` + `spec`) held at `t`.
pub(crate) fn template(t: &mut Map<String, Value>) {
    strip_null_timestamp(existing(t, "metadata"));
    if let Some(spec) = child(t, "spec") {
        pod_spec(spec);
    }
}

/// Defaults a Pod object: the spec, requests from limits, and the initial status.
pub(crate) fn pod(obj: &mut Map<String, Value>) {
    let Some(spec) = child(obj, "spec") else { return };
    pod_spec(spec);
    for list in ["containers", "initContainers"] {
        for c in each(spec, list) {
            requests_from_limits(c);
        }
    }
    let qos = qos_class(spec);
    if let Some(status) = child(obj, "status") {
        set(status, "phase", json!("Pending"));
        set(status, "qosClass", json!(qos));
    }
}

/// `SetDefaults_Pod`: a container with limits but no request for a resource requests its limit.
fn requests_from_limits(c: &mut Map<String, Value>) {
    let Some(res) = existing(c, "resources") else { return };
    let Some(limits) = res.get("limits").and_then(Value::as_object).cloned() else {
        return;
    };
    if limits.is_empty() {
        return;
    }
    if let Some(req) = child(res, "requests") {
        for (k, v) in limits {
            req.entry(k).or_insert(v);
        }
    }
}

/// The pod's QoS class from its containers' requests and limits.
fn qos_class(spec: &Map<String, Value>) -> &'static str {
    let containers: Vec<&Value> = ["containers", "initContainers"]
        .iter()
        .filter_map(|k| spec.get(*k).and_then(Value::as_array))
        .flatten()
        .collect();
    let get = |c: &Value, kind: &str, res: &str| {
        c.get("resources")
            .and_then(|r| r.get(kind))
            .and_then(|m| m.get(res))
            .cloned()
    };
    let mut any = false;
    let mut guaranteed = true;
    for c in &containers {
        for res in ["cpu", "memory"] {
            let (req, lim) = (get(c, "requests", res), get(c, "limits", res));
            any |= req.is_some() || lim.is_some();
            if lim.is_none() || req != lim {
                guaranteed = false;
            }
        }
    }
    match (any, guaranteed) {
        (false, _) => "BestEffort",
        (true, true) => "Guaranteed",
        _ => "Burstable",
    }
}

/// `SetDefaults_PodSpec` and everything nested in it.
pub(crate) fn pod_spec(spec: &mut Map<String, Value>) {
    set(spec, "dnsPolicy", json!("ClusterFirst"));
    set(spec, "restartPolicy", json!("Always"));
    set(spec, "terminationGracePeriodSeconds", json!(30));
    set(spec, "securityContext", json!({}));
    set(spec, "schedulerName", json!("default-scheduler"));
    set(spec, "enableServiceLinks", json!(true));
    let host_network = spec.get("hostNetwork").and_then(Value::as_bool) == Some(true);
    for list in ["containers", "initContainers", "ephemeralContainers"] {
        for c in each(spec, list) {
            container(c, host_network);
        }
    }
    for v in each(spec, "volumes") {
        volume(v);
    }
}

fn container(c: &mut Map<String, Value>, host_network: bool) {
    let image = c.get("image").and_then(Value::as_str).unwrap_or("");
    let policy = if pulls_always(image) { "Always" } else { "IfNotPresent" };
    set(c, "imagePullPolicy", json!(policy));
    set(c, "terminationMessagePath", json!("/dev/termination-log"));
    set(c, "terminationMessagePolicy", json!("File"));
    set(c, "resources", json!({}));
    for p in each(c, "ports") {
        set(p, "protocol", json!("TCP"));
        if host_network {
            if let Some(cp) = p.get("containerPort").cloned() {
                if p.get("hostPort").is_none_or(|h| h.is_null() || h.as_i64() == Some(0)) {
                    p.insert("hostPort".into(), cp);
                }
            }
        }
    }
    for e in each(c, "env") {
        if let Some(fr) = existing(e, "valueFrom").and_then(|vf| existing(vf, "fieldRef")) {
            set(fr, "apiVersion", json!("v1"));
        }
    }
    for probe_key in ["livenessProbe", "readinessProbe", "startupProbe"] {
        if let Some(p) = existing(c, probe_key) {
            probe(p);
        }
    }
    if let Some(lc) = existing(c, "lifecycle") {
        for hook in ["postStart", "preStop"] {
            if let Some(h) = existing(lc, hook).and_then(|h| existing(h, "httpGet")) {
                http_get(h);
            }
        }
    }
}

/// `:latest` or no tag (and no digest) pulls Always.
fn pulls_always(image: &str) -> bool {
    if image.contains('@') {
        return false;
    }
    // The tag follows the last ':' after the last '/' (a ':' before it is a registry port).
    let last = image.rsplit('/').next().unwrap_or(image);
    match last.rsplit_once(':') {
        Some((_, tag)) => tag == "latest",
        None => true,
    }
}

fn probe(p: &mut Map<String, Value>) {
    set(p, "timeoutSeconds", json!(1));
    set(p, "periodSeconds", json!(10));
    set(p, "successThreshold", json!(1));
    set(p, "failureThreshold", json!(3));
    if let Some(h) = existing(p, "httpGet") {
        http_get(h);
    }
    if let Some(g) = existing(p, "grpc") {
        set(g, "service", json!(""));
    }
}

fn http_get(h: &mut Map<String, Value>) {
    set(h, "path", json!("/"));
    set(h, "scheme", json!("HTTP"));
}

fn volume(v: &mut Map<String, Value>) {
    if !VOLUME_SOURCES.iter().any(|k| has(v, k)) {
        v.insert("emptyDir".into(), json!({}));
    }
    for src in ["configMap", "secret", "downwardAPI", "projected"] {
        if let Some(s) = existing(v, src) {
            set(s, "defaultMode", json!(420));
        }
    }
    if let Some(dapi) = existing(v, "downwardAPI") {
        for item in each(dapi, "items") {
            if let Some(fr) = existing(item, "fieldRef") {
                set(fr, "apiVersion", json!("v1"));
            }
        }
    }
    if let Some(hp) = existing(v, "hostPath") {
        set(hp, "type", json!(""));
    }
    if let Some(iscsi) = existing(v, "iscsi") {
        set(iscsi, "iscsiInterface", json!("default"));
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn pull_policy_follows_the_tag() {
        let cases = [
            ("nginx", true),
            ("nginx:latest", true),
            ("nginx:1.27", false),
            ("localhost:5000/app", true),
            ("localhost:5000/app:v1", false),
            ("nginx@sha256:abc", false),
        ];
        for (image, always) in cases {
            assert_eq!(super::pulls_always(image), always, "{image}");
        }
    }
}
