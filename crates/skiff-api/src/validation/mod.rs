//! Validation of objects on create, update and status update, with upstream's field paths and
//! messages, and typed field checking (`check_fields`) for type errors and unknown fields.

mod cause;
mod core;
mod cron;
mod duplicates;
mod fields;
mod json;
mod meta;
mod names;
mod pod;
mod quantity;
mod selector;
mod update;
mod workloads;

pub(crate) use cause::go_quote;
pub use cause::Cause;
pub use duplicates::duplicate_fields;
pub use fields::{check_fields, TypeError};
pub use quantity::parse as parse_quantity;

use crate::registry::ResourceDef;
use names::NameRule;
use serde_json::Value;

fn name_rule(def: &ResourceDef) -> NameRule {
    match (def.group, def.kind) {
        ("", "Namespace") => NameRule::Label,
        ("", "Service") => NameRule::Label1035,
        ("apiregistration.k8s.io", "APIService") => NameRule::PathSegment,
        _ => NameRule::Subdomain,
    }
}

/// Kind-specific rules shared by create and update.
fn spec_rules(def: &ResourceDef, obj: &Value, out: &mut Vec<Cause>) {
    match (def.group, def.kind) {
        ("", "Pod") => {
            pod::pod_spec(json::at(obj, &["spec"]).unwrap_or(&Value::Null), "spec", out);
        }
        ("", "ReplicationController") => workloads::replica_set(obj, true, out),
        ("", "Service") => core::service(obj, out),
        ("", "Secret") => core::secret(obj, out),
        ("", "ConfigMap") => core::config_map(obj, out),
        ("", "PersistentVolumeClaim") => core::pvc(obj, out),
        ("", "PersistentVolume") => core::pv(obj, out),
        ("", "Event") => core::event(obj, out),
        ("", "Namespace") => core::namespace(obj, out),
        ("events.k8s.io", "Event") => core::event_v1(obj, out),
        ("apps", "Deployment") => workloads::deployment(obj, out),
        ("apps", "ReplicaSet") => workloads::replica_set(obj, false, out),
        ("apps", "StatefulSet") => workloads::stateful_set(obj, out),
        ("apps", "DaemonSet") => workloads::daemon_set(obj, out),
        ("apps", "ControllerRevision") => core::controller_revision(obj, out),
        ("batch", "Job") => workloads::job(obj, out),
        ("batch", "CronJob") => workloads::cron_job(obj, out),
        ("discovery.k8s.io", "EndpointSlice") => core::endpoint_slice(obj, out),
        ("autoscaling", "HorizontalPodAutoscaler") => core::hpa(obj, out),
        _ => {}
    }
}

/// Full validation of a new object (after defaulting).
pub fn validate_create(def: &ResourceDef, obj: &Value) -> Vec<Cause> {
    let mut out = Vec::new();
    meta::object_meta(obj, def.namespaced, name_rule(def), &mut out);
    spec_rules(def, obj, &mut out);
    if (def.group, def.kind) == ("", "Pod") && !json::arr(obj, &["spec", "ephemeralContainers"]).is_empty() {
        out.push(cause::forbidden("spec.ephemeralContainers", "cannot be set on create"));
    }
    dedup(out)
}

/// Validation of an update: the create rules on `new`, metadata immutability and the kind's
/// immutable fields compared with `old`.
pub fn validate_update(def: &ResourceDef, new: &Value, old: &Value) -> Vec<Cause> {
    let mut out = Vec::new();
    meta::object_meta_update(new, old, &mut out);
    spec_rules(def, new, &mut out);
    update::kind_rules(def.kind, def.group, new, old, &mut out);
    dedup(out)
}

/// Validation of a status subresource write: metadata rules only (the server keeps the spec).
pub fn validate_status_update(def: &ResourceDef, new: &Value, old: &Value) -> Vec<Cause> {
    let _ = def;
    let mut out = Vec::new();
    meta::object_meta_update(new, old, &mut out);
    dedup(out)
}

/// Upstream drops repeated identical errors when aggregating.
fn dedup(causes: Vec<Cause>) -> Vec<Cause> {
    let mut out: Vec<Cause> = Vec::with_capacity(causes.len());
    for c in causes {
        if !out.iter().any(|o| o.field == c.field && o.message == c.message) {
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
mod tests;
