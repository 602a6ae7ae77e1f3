//! Pod spec and pod template checks (`ValidatePodSpec`, `ValidatePodTemplateSpec` in
//! pkg/apis/core/validation).

use super::cause::{duplicate, forbidden, invalid, nonnegative, not_found, not_supported, required, Bad, Cause};
use super::json::{arr, at, int_at, obj_at, present, s, str_at};
use super::names::{
    annotations, config_map_key, dns1123_label, dns1123_subdomain, env_var_name, labels, port_name, port_num,
};
use super::quantity;
use serde_json::Value;
use std::collections::HashSet;

use crate::defaults::VOLUME_SOURCES as VOLUME_TYPES;
const HANDLERS: &[&str] = &["exec", "httpGet", "tcpSocket", "grpc"];
const FILE_MODE_MSG: &str = "must be a number between 0 and 0777 (octal), both inclusive";

/// `ValidatePodTemplateSpec` at `path` (e.g. `spec.template`).
pub(crate) fn template(t: &Value, path: &str, out: &mut Vec<Cause>) {
    // Upstream reports template label errors on `<path>.labels`, not `<path>.metadata.labels`.
    labels(at(t, &["metadata", "labels"]), &format!("{path}.labels"), out);
    annotations(at(t, &["metadata", "annotations"]), &format!("{path}.annotations"), out);
    pod_spec(at(t, &["spec"]).unwrap_or(&Value::Null), &format!("{path}.spec"), out);
    if !arr(t, &["spec", "ephemeralContainers"]).is_empty() {
        out.push(forbidden(
            &format!("{path}.spec.ephemeralContainers"),
            "ephemeral containers not allowed in pod template",
        ));
    }
}

/// `ValidatePodSpec` at `path`.
pub(crate) fn pod_spec(spec: &Value, path: &str, out: &mut Vec<Cause>) {
    let volumes = volumes(spec, &format!("{path}.volumes"), out);
    let containers = arr(spec, &["containers"]);
    let mut names = HashSet::new();
    if containers.is_empty() {
        out.push(required(&format!("{path}.containers"), ""));
    }
    for (i, c) in containers.iter().enumerate() {
        let p = format!("{path}.containers[{i}]");
        container(c, &volumes, &p, out);
        let name = s(c, &["name"]);
        if !names.insert(name.to_string()) {
            out.push(duplicate(&format!("{p}.name"), name));
        }
        probe(c.get("livenessProbe"), &format!("{p}.livenessProbe"), true, out);
        probe(c.get("readinessProbe"), &format!("{p}.readinessProbe"), false, out);
        probe(c.get("startupProbe"), &format!("{p}.startupProbe"), true, out);
        if present(c, &["restartPolicy"]) {
            out.push(forbidden(
                &format!("{p}.restartPolicy"),
                "may not be set for non-init containers",
            ));
        }
    }
    for (i, c) in arr(spec, &["initContainers"]).iter().enumerate() {
        let p = format!("{path}.initContainers[{i}]");
        container(c, &volumes, &p, out);
        let name = s(c, &["name"]);
        if !names.insert(name.to_string()) {
            out.push(duplicate(&format!("{p}.name"), name));
        }
        match str_at(c, &["restartPolicy"]) {
            None | Some("Always") => {}
            Some(other) => out.push(not_supported(&format!("{p}.restartPolicy"), other, &["Always"])),
        }
    }
    enum_field(spec, "restartPolicy", path, &["Always", "OnFailure", "Never"], out);
    enum_field(
        spec,
        "dnsPolicy",
        path,
        &["ClusterFirstWithHostNet", "ClusterFirst", "Default", "None"],
        out,
    );
    labels(spec.get("nodeSelector"), &format!("{path}.nodeSelector"), out);
    for (key, check) in [
        ("serviceAccountName", dns1123_subdomain as fn(&str) -> Vec<String>),
        ("nodeName", dns1123_subdomain),
        ("hostname", dns1123_label),
        ("subdomain", dns1123_label),
        ("priorityClassName", dns1123_subdomain),
    ] {
        let v = s(spec, &[key]);
        if !v.is_empty() {
            for msg in check(v) {
                out.push(invalid(&format!("{path}.{key}"), v, &msg));
            }
        }
    }
    if let Some(v) = int_at(spec, &["activeDeadlineSeconds"]) {
        if !(1..=i64::from(i32::MAX)).contains(&v) {
            out.push(invalid(
                &format!("{path}.activeDeadlineSeconds"),
                v,
                "must be between 1 and 2147483647, inclusive",
            ));
        }
    }
    for (i, t) in arr(spec, &["tolerations"]).iter().enumerate() {
        toleration(t, &format!("{path}.tolerations[{i}]"), out);
    }
}

/// An enumerated string field that defaulting always fills: empty is Required.
fn enum_field(obj: &Value, key: &str, path: &str, valid: &[&str], out: &mut Vec<Cause>) {
    let v = s(obj, &[key]);
    let f = format!("{path}.{key}");
    if v.is_empty() {
        out.push(required(&f, ""));
    } else if !valid.contains(&v) {
        out.push(not_supported(&f, v, valid));
    }
}

fn toleration(t: &Value, path: &str, out: &mut Vec<Cause>) {
    let key = s(t, &["key"]);
    if !key.is_empty() {
        for msg in super::names::qualified_name(key) {
            out.push(invalid(&format!("{path}.key"), key, &msg));
        }
    }
    match s(t, &["operator"]) {
        "" | "Equal" => {}
        "Exists" => {
            if !s(t, &["value"]).is_empty() {
                out.push(invalid(
                    &format!("{path}.operator"),
                    s(t, &["value"]),
                    "value must be empty when `operator` is 'Exists'",
                ));
            }
        }
        other => out.push(not_supported(&format!("{path}.operator"), other, &["Equal", "Exists"])),
    }
    match s(t, &["effect"]) {
        "" | "NoSchedule" | "PreferNoSchedule" | "NoExecute" => {}
        other => out.push(not_supported(
            &format!("{path}.effect"),
            other,
            &["NoExecute", "NoSchedule", "PreferNoSchedule"],
        )),
    }
}

/// `ValidateVolumes`; returns the declared volume names.
fn volumes(spec: &Value, path: &str, out: &mut Vec<Cause>) -> HashSet<String> {
    let mut names = HashSet::new();
    for (i, v) in arr(spec, &["volumes"]).iter().enumerate() {
        let p = format!("{path}[{i}]");
        volume_source(v, &p, out);
        let name = s(v, &["name"]);
        if name.is_empty() {
            out.push(required(&format!("{p}.name"), ""));
        } else {
            for msg in dns1123_label(name) {
                out.push(invalid(&format!("{p}.name"), name, &msg));
            }
        }
        if !names.insert(name.to_string()) {
            out.push(duplicate(&format!("{p}.name"), name));
        }
    }
    names
}

fn volume_source(v: &Value, p: &str, out: &mut Vec<Cause>) {
    let set: Vec<&str> = VOLUME_TYPES.iter().copied().filter(|t| present(v, &[t])).collect();
    match set.as_slice() {
        [] => out.push(required(p, "must specify a volume type")),
        [_] => {}
        [_, rest @ ..] => {
            for t in rest {
                out.push(forbidden(
                    &format!("{p}.{t}"),
                    "may not specify more than 1 volume type",
                ));
            }
        }
    }
    let need = |src: &str, key: &str, out: &mut Vec<Cause>| {
        if present(v, &[src]) && s(v, &[src, key]).is_empty() {
            out.push(required(&format!("{p}.{src}.{key}"), ""));
        }
    };
    need("configMap", "name", out);
    need("secret", "secretName", out);
    need("hostPath", "path", out);
    need("persistentVolumeClaim", "claimName", out);
    for src in ["configMap", "secret", "downwardAPI", "projected"] {
        if let Some(m) = int_at(v, &[src, "defaultMode"]) {
            if !(0..=0o777).contains(&m) {
                out.push(invalid(&format!("{p}.{src}.defaultMode"), m, FILE_MODE_MSG));
            }
        }
    }
}

/// Checks common to containers and init containers.
fn container(c: &Value, volumes: &HashSet<String>, p: &str, out: &mut Vec<Cause>) {
    let name = s(c, &["name"]);
    if name.is_empty() {
        out.push(required(&format!("{p}.name"), ""));
    } else {
        for msg in dns1123_label(name) {
            out.push(invalid(&format!("{p}.name"), name, &msg));
        }
    }
    if s(c, &["image"]).is_empty() {
        out.push(required(&format!("{p}.image"), ""));
    }
    enum_field(
        c,
        "terminationMessagePolicy",
        p,
        &["File", "FallbackToLogsOnError"],
        out,
    );
    ports(c, &format!("{p}.ports"), out);
    env(c, &format!("{p}.env"), out);
    mounts(c, volumes, &format!("{p}.volumeMounts"), out);
    enum_field(c, "imagePullPolicy", p, &["Always", "IfNotPresent", "Never"], out);
    resources(c, &format!("{p}.resources"), out);
}

fn ports(c: &Value, path: &str, out: &mut Vec<Cause>) {
    let mut names = HashSet::new();
    for (i, port) in arr(c, &["ports"]).iter().enumerate() {
        let p = format!("{path}[{i}]");
        let name = s(port, &["name"]);
        if !name.is_empty() {
            let errs = port_name(name);
            if !errs.is_empty() {
                for msg in errs {
                    out.push(invalid(&format!("{p}.name"), name, &msg));
                }
            } else if !names.insert(name) {
                out.push(duplicate(&format!("{p}.name"), name));
            }
        }
        match int_at(port, &["containerPort"]).unwrap_or(0) {
            0 => out.push(required(&format!("{p}.containerPort"), "")),
            n => port_range(&format!("{p}.containerPort"), n, out),
        }
        match int_at(port, &["hostPort"]).unwrap_or(0) {
            0 => {}
            n => port_range(&format!("{p}.hostPort"), n, out),
        }
        protocol(port, &p, out);
    }
}

/// A port number in 1..=65535.
pub(crate) fn port_range(field: &str, n: i64, out: &mut Vec<Cause>) {
    for msg in port_num(n) {
        out.push(invalid(field, n, &msg));
    }
}

/// A port's `protocol` (TCP, UDP or SCTP; defaulting fills it).
pub(crate) fn protocol(port: &Value, p: &str, out: &mut Vec<Cause>) {
    let proto = s(port, &["protocol"]);
    if proto.is_empty() {
        out.push(required(&format!("{p}.protocol"), ""));
    } else if !["SCTP", "TCP", "UDP"].contains(&proto) {
        out.push(not_supported(&format!("{p}.protocol"), proto, &["SCTP", "TCP", "UDP"]));
    }
}

/// `ValidatePortNumOrName` for an IntOrString port.
pub(crate) fn port_num_or_name(v: Option<&Value>, field: &str, out: &mut Vec<Cause>) {
    match v {
        Some(Value::Number(n)) => port_range(field, n.as_i64().unwrap_or(0), out),
        Some(Value::String(name)) => {
            for msg in port_name(name) {
                out.push(invalid(field, name.as_str(), &msg));
            }
        }
        _ => {}
    }
}

fn env(c: &Value, path: &str, out: &mut Vec<Cause>) {
    for (i, e) in arr(c, &["env"]).iter().enumerate() {
        let p = format!("{path}[{i}]");
        let name = s(e, &["name"]);
        if name.is_empty() {
            out.push(required(&format!("{p}.name"), ""));
        }
        for msg in env_var_name(name) {
            out.push(invalid(&format!("{p}.name"), name, &msg));
        }
        if let Some(from) = obj_at(e, &["valueFrom"]) {
            let vp = format!("{p}.valueFrom");
            let sources = [
                "fieldRef",
                "resourceFieldRef",
                "configMapKeyRef",
                "secretKeyRef",
                "fileKeyRef",
            ];
            let n = sources
                .iter()
                .filter(|k| from.get(**k).is_some_and(|v| !v.is_null()))
                .count();
            if n == 0 {
                out.push(invalid(
                    &vp,
                    "",
                    "must specify one of: `fieldRef`, `resourceFieldRef`, `configMapKeyRef` or `secretKeyRef`",
                ));
            } else if !s(e, &["value"]).is_empty() {
                out.push(invalid(&vp, "", "may not be specified when `value` is not empty"));
            } else if n > 1 {
                out.push(invalid(&vp, "", "may not have more than one field specified at a time"));
            }
            let from = Value::Object(from.clone());
            for r in ["configMapKeyRef", "secretKeyRef"] {
                if let Some(sel) = from.get(r).filter(|v| !v.is_null()) {
                    key_selector(sel, &format!("{vp}.{r}"), out);
                }
            }
            if let Some(fr) = from.get("fieldRef").filter(|v| !v.is_null()) {
                if s(fr, &["fieldPath"]).is_empty() {
                    out.push(required(&format!("{vp}.fieldRef.fieldPath"), ""));
                }
            }
        }
    }
}

fn key_selector(sel: &Value, p: &str, out: &mut Vec<Cause>) {
    let name = s(sel, &["name"]);
    if name.is_empty() {
        out.push(required(&format!("{p}.name"), ""));
    } else {
        for msg in dns1123_subdomain(name) {
            out.push(invalid(&format!("{p}.name"), name, &msg));
        }
    }
    let key = s(sel, &["key"]);
    if key.is_empty() {
        out.push(required(&format!("{p}.key"), ""));
    } else {
        for msg in config_map_key(key) {
            out.push(invalid(&format!("{p}.key"), key, &msg));
        }
    }
}

fn mounts(c: &Value, volumes: &HashSet<String>, path: &str, out: &mut Vec<Cause>) {
    let mut points = HashSet::new();
    for (i, m) in arr(c, &["volumeMounts"]).iter().enumerate() {
        let p = format!("{path}[{i}]");
        let name = s(m, &["name"]);
        if name.is_empty() {
            out.push(required(&format!("{p}.name"), ""));
        }
        if !volumes.contains(name) {
            out.push(not_found(&format!("{p}.name"), name));
        }
        let mp = s(m, &["mountPath"]);
        if mp.is_empty() {
            out.push(required(&format!("{p}.mountPath"), ""));
        }
        if !points.insert(mp) {
            out.push(invalid(&format!("{p}.mountPath"), mp, "must be unique"));
        }
        let sub = s(m, &["subPath"]);
        if sub.starts_with('/') {
            out.push(invalid(&format!("{path}.subPath"), sub, "must be a relative path"));
        } else if sub.split('/').any(|x| x == "..") {
            out.push(invalid(&format!("{path}.subPath"), sub, "must not contain '..'"));
        }
    }
}

fn resources(c: &Value, path: &str, out: &mut Vec<Cause>) {
    let limits = obj_at(c, &["resources", "limits"]);
    for kind in ["limits", "requests"] {
        let Some(m) = obj_at(c, &["resources", kind]) else {
            continue;
        };
        for (name, q) in m {
            let f = format!("{path}.{kind}[{name}]");
            let Some(text) = q
                .as_str()
                .map(str::to_string)
                .or_else(|| q.as_f64().map(|n| n.to_string()))
            else {
                continue;
            };
            let Some(val) = quantity::parse(&text) else { continue };
            if val < 0.0 {
                out.push(invalid(&f, text.as_str(), "must be greater than or equal to 0"));
            }
            if kind == "requests" {
                let lim = limits.and_then(|l| l.get(name)).and_then(|l| {
                    l.as_str()
                        .map(str::to_string)
                        .or_else(|| l.as_f64().map(|n| n.to_string()))
                });
                if let Some(lim) = lim {
                    if quantity::parse(&lim).is_some_and(|l| val > l) {
                        out.push(invalid(
                            &f,
                            text.as_str(),
                            &format!("must be less than or equal to {name} limit of {lim}"),
                        ));
                    }
                }
            }
        }
    }
}

fn probe(p: Option<&Value>, path: &str, success_must_be_one: bool, out: &mut Vec<Cause>) {
    let Some(pr) = p.filter(|v| v.is_object()) else { return };
    let set: Vec<&str> = HANDLERS.iter().copied().filter(|h| present(pr, &[h])).collect();
    match set.as_slice() {
        [] => out.push(required(path, "must specify a handler type")),
        [_] => {}
        [_, rest @ ..] => {
            for h in rest {
                out.push(forbidden(
                    &format!("{path}.{h}"),
                    "may not specify more than 1 handler type",
                ));
            }
        }
    }
    if present(pr, &["exec"]) && arr(pr, &["exec", "command"]).is_empty() {
        out.push(required(&format!("{path}.exec.command"), ""));
    }
    if let Some(h) = pr.get("httpGet").filter(|v| v.is_object()) {
        if s(h, &["path"]).is_empty() {
            out.push(required(&format!("{path}.httpGet.path"), ""));
        }
        port_num_or_name(h.get("port"), &format!("{path}.httpGet.port"), out);
        let scheme = s(h, &["scheme"]);
        if !["HTTP", "HTTPS"].contains(&scheme) {
            out.push(not_supported(
                &format!("{path}.httpGet.scheme"),
                scheme,
                &["HTTP", "HTTPS"],
            ));
        }
    }
    if let Some(t) = pr.get("tcpSocket").filter(|v| v.is_object()) {
        port_num_or_name(t.get("port"), &format!("{path}.tcpSocket.port"), out);
    }
    for k in [
        "initialDelaySeconds",
        "timeoutSeconds",
        "periodSeconds",
        "successThreshold",
        "failureThreshold",
    ] {
        if let Some(v) = int_at(pr, &[k]) {
            nonnegative(&format!("{path}.{k}"), v, out);
        }
    }
    if let Some(g) = int_at(pr, &["terminationGracePeriodSeconds"]) {
        if g <= 0 {
            out.push(invalid(
                &format!("{path}.terminationGracePeriodSeconds"),
                g,
                "must be greater than 0",
            ));
        }
    }
    if success_must_be_one {
        if let Some(v) = int_at(pr, &["successThreshold"]).filter(|v| *v != 1) {
            out.push(invalid(&format!("{path}.successThreshold"), v, "must be 1"));
        }
    }
}

/// `ValidatePodUpdate`'s spec rule: only images, activeDeadlineSeconds, added tolerations and
/// (from negative to 1) terminationGracePeriodSeconds may change.
pub(crate) fn pod_spec_update(new: &Value, old: &Value, out: &mut Vec<Cause>) {
    let (Some(n), Some(o)) = (new.get("spec"), old.get("spec")) else {
        return;
    };
    let mut munged = n.clone();
    for list in ["containers", "initContainers"] {
        let old_list = arr(o, &[list]);
        if let Some(items) = munged.get_mut(list).and_then(Value::as_array_mut) {
            for (i, c) in items.iter_mut().enumerate() {
                if let (Some(obj), Some(img)) = (c.as_object_mut(), old_list.get(i).and_then(|oc| oc.get("image"))) {
                    obj.insert("image".into(), img.clone());
                }
            }
        }
    }
    if let Some(m) = munged.as_object_mut() {
        for key in ["activeDeadlineSeconds", "tolerations"] {
            match o.get(key) {
                Some(v) => m.insert(key.into(), v.clone()),
                None => m.remove(key),
            };
        }
        if int_at(o, &["terminationGracePeriodSeconds"]).is_some_and(|g| g < 0)
            && int_at(n, &["terminationGracePeriodSeconds"]) == Some(1)
        {
            if let Some(v) = o.get("terminationGracePeriodSeconds") {
                m.insert("terminationGracePeriodSeconds".into(), v.clone());
            }
        }
    }
    let old_tol = arr(o, &["tolerations"]);
    if !old_tol.iter().all(|t| arr(n, &["tolerations"]).contains(t)) {
        out.push(forbidden(
            "spec.tolerations",
            "existing toleration can not be modified except its tolerationSeconds",
        ));
    }
    if munged != *o {
        out.push(forbidden(
            "spec",
            &format!("{POD_UPDATE_MSG}\n{}", spec_diff(o, &munged)),
        ));
    }
}

const POD_UPDATE_MSG: &str = "pod updates may not change fields other than `spec.containers[*].image`,`spec.initContainers[*].image`,`spec.activeDeadlineSeconds`,`spec.tolerations` (only additions to existing tolerations),`spec.terminationGracePeriodSeconds` (allow it to be set to 1 if it was previously negative)";

/// A short listing of the top-level spec fields that differ (upstream prints a cmp.Diff).
fn spec_diff(old: &Value, new: &Value) -> String {
    let mut keys: Vec<&String> = old
        .as_object()
        .into_iter()
        .chain(new.as_object())
        .flat_map(|m| m.keys())
        .collect();
    keys.sort();
    keys.dedup();
    let mut lines = vec!["  core.PodSpec{".to_string()];
    for k in keys {
        let (a, b) = (old.get(k.as_str()), new.get(k.as_str()));
        if a != b {
            if let Some(a) = a {
                lines.push(format!("- \t{k}: {a},"));
            }
            if let Some(b) = b {
                lines.push(format!("+ \t{k}: {b},"));
            }
        }
    }
    lines.push("  }".to_string());
    lines.join("\n")
}

/// Renders a label selector the way `%#v` would be too noisy; upstream prints the struct.
pub(crate) fn selector_value(sel: &Value) -> Bad {
    Bad::Raw(format!("v1.LabelSelector{}", sel))
}
