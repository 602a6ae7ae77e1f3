//! Immutability rules checked on update, per kind.

use super::cause::{forbidden, immutable, invalid, Bad, Cause};
use super::json::at;
use super::{core, pod};
use serde_json::Value;

const STS_MUTABLE: &[&str] = &[
    "replicas",
    "ordinals",
    "template",
    "updateStrategy",
    "revisionHistoryLimit",
    "persistentVolumeClaimRetentionPolicy",
    "minReadySeconds",
];

/// Kind-specific update rules; `new` and `old` are whole objects.
pub(crate) fn kind_rules(kind: &str, group: &str, new: &Value, old: &Value, out: &mut Vec<Cause>) {
    let sel = |out: &mut Vec<Cause>| {
        let (n, o) = (at(new, &["spec", "selector"]), at(old, &["spec", "selector"]));
        if n.filter(|v| !v.is_null()) != o.filter(|v| !v.is_null()) {
            let shown = n.map_or(Bad::Raw("nil".into()), pod::selector_value);
            out.push(invalid("spec.selector", shown, "field is immutable"));
        }
    };
    match (group, kind) {
        ("", "Pod") => pod::pod_spec_update(new, old, out),
        ("apps", "Deployment" | "ReplicaSet" | "DaemonSet") => sel(out),
        ("apps", "StatefulSet") => {
            let strip = |v: &Value| {
                let mut spec = at(v, &["spec"]).cloned().unwrap_or(Value::Null);
                if let Some(m) = spec.as_object_mut() {
                    for k in STS_MUTABLE {
                        m.remove(*k);
                    }
                }
                spec
            };
            if strip(new) != strip(old) {
                out.push(forbidden("spec", "updates to statefulset spec for fields other than 'replicas', 'ordinals', 'template', 'updateStrategy', 'revisionHistoryLimit', 'persistentVolumeClaimRetentionPolicy' and 'minReadySeconds' are forbidden"));
            }
        }
        ("batch", "Job") => {
            sel(out);
            let (n, o) = (at(new, &["spec", "template"]), at(old, &["spec", "template"]));
            if n != o {
                let shown = Bad::Raw(format!("core.PodTemplateSpec{}", n.cloned().unwrap_or(Value::Null)));
                out.push(invalid("spec.template", shown, "field is immutable"));
            }
            out.extend(immutable(
                "spec.completionMode",
                at(new, &["spec", "completionMode"]),
                at(old, &["spec", "completionMode"]),
            ));
        }
        ("", "Service") => core::service_update(new, old, out),
        ("", "PersistentVolumeClaim") => core::pvc_update(new, old, out),
        ("", "Secret") => core::secret_update(new, old, out),
        ("", "ConfigMap") => core::immutable_data(new, old, &["data", "binaryData"], out),
        ("apps", "ControllerRevision") => out.extend(immutable("data", new.get("data"), old.get("data"))),
        _ => {}
    }
}
