//! Which fields each kind can select on, and how a field's value is read from an object.
//! Two upstream layers: the field-label conversion funcs (`pkg/apis/*/v*/conversion.go`, which
//! accept, rename or reject a label) and the registry strategies' `ToSelectableFields`.

use serde_json::Value;

use crate::registry::ResourceDef;

use super::validation::go_quote;

/// Per-kind rules for field labels.
struct KindRules {
    /// Labels accepted unchanged (beyond those implied by `meta`).
    accepted: &'static [&'static str],
    /// Labels accepted and renamed to the canonical label.
    aliases: &'static [(&'static str, &'static str)],
    /// Whether `metadata.namespace` is accepted (`metadata.name` always is).
    namespace: bool,
    /// The rejection message for other labels.
    reject: fn(&str) -> String,
}

fn reject_default(label: &str) -> String {
    format!("field label not supported: {label}")
}

fn reject_meta_only(label: &str) -> String {
    format!(
        "{} is not a known field selector: only \"metadata.name\", \"metadata.namespace\"",
        go_quote(label)
    )
}

fn reject_job(label: &str) -> String {
    format!("field label {} not supported for batchv1.Job", go_quote(label))
}

/// Kinds with no conversion func fall back to upstream `DefaultMetaV1FieldSelectorConversion`.
const META_ONLY: KindRules = KindRules {
    accepted: &[],
    aliases: &[],
    namespace: true,
    reject: reject_meta_only,
};

fn rules(def: &ResourceDef) -> KindRules {
    match (def.group, def.plural) {
        ("", "pods") => KindRules {
            accepted: &[
                "spec.nodeName",
                "spec.restartPolicy",
                "spec.schedulerName",
                "spec.serviceAccountName",
                "spec.hostNetwork",
                "status.phase",
                "status.podIP",
                "status.podIPs",
                "status.nominatedNodeName",
            ],
            aliases: &[("spec.host", "spec.nodeName")],
            namespace: true,
            reject: reject_default,
        },
        ("", "nodes") => KindRules {
            accepted: &["spec.unschedulable"],
            aliases: &[],
            namespace: false,
            reject: reject_default,
        },
        ("", "replicationcontrollers") => KindRules {
            accepted: &["status.replicas"],
            aliases: &[],
            namespace: true,
            reject: reject_default,
        },
        ("", "events") => KindRules {
            accepted: &[
                "involvedObject.kind",
                "involvedObject.namespace",
                "involvedObject.name",
                "involvedObject.uid",
                "involvedObject.apiVersion",
                "involvedObject.resourceVersion",
                "involvedObject.fieldPath",
                "reason",
                "reportingComponent",
                "source",
                "type",
            ],
            aliases: &[],
            namespace: true,
            reject: reject_default,
        },
        ("events.k8s.io", "events") => KindRules {
            accepted: &["reason", "source", "type"],
            aliases: &[
                ("regarding.kind", "involvedObject.kind"),
                ("regarding.namespace", "involvedObject.namespace"),
                ("regarding.name", "involvedObject.name"),
                ("regarding.uid", "involvedObject.uid"),
                ("regarding.apiVersion", "involvedObject.apiVersion"),
                ("regarding.resourceVersion", "involvedObject.resourceVersion"),
                ("regarding.fieldPath", "involvedObject.fieldPath"),
                ("reportingController", "reportingComponent"),
            ],
            namespace: true,
            reject: reject_default,
        },
        ("", "namespaces") => KindRules {
            accepted: &["status.phase"],
            aliases: &[],
            namespace: false,
            reject: reject_default,
        },
        ("", "secrets") => KindRules {
            accepted: &["type"],
            aliases: &[],
            namespace: true,
            reject: reject_default,
        },
        ("", "services") => KindRules {
            accepted: &["spec.clusterIP", "spec.type"],
            aliases: &[],
            namespace: true,
            reject: reject_default,
        },
        ("batch", "jobs") => KindRules {
            accepted: &["status.successful"],
            aliases: &[],
            namespace: true,
            reject: reject_job,
        },
        _ => META_ONLY,
    }
}

/// The canonical label for `label` on this kind, or upstream's rejection message.
pub(crate) fn canonical(def: &ResourceDef, label: &str) -> Result<&'static str, String> {
    let r = rules(def);
    if label == "metadata.name" {
        return Ok("metadata.name");
    }
    if label == "metadata.namespace" && r.namespace {
        return Ok("metadata.namespace");
    }
    if let Some(a) = r.accepted.iter().find(|a| **a == label) {
        return Ok(a);
    }
    if let Some((_, to)) = r.aliases.iter().find(|(from, _)| *from == label) {
        return Ok(to);
    }
    Err((r.reject)(label))
}

fn at<'a>(obj: &'a Value, path: &str) -> Option<&'a Value> {
    path.split('.').try_fold(obj, |v, k| v.get(k))
}

fn text(obj: &Value, path: &str) -> String {
    match at(obj, path) {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Bool(b)) => b.to_string(),
        Some(Value::Number(n)) => n.to_string(),
        _ => String::new(),
    }
}

fn int_or_zero(obj: &Value, path: &str) -> String {
    at(obj, path).and_then(Value::as_i64).unwrap_or(0).to_string()
}

fn bool_or_false(obj: &Value, path: &str) -> String {
    at(obj, path).and_then(Value::as_bool).unwrap_or(false).to_string()
}

/// Whether an Event object is in the events.k8s.io/v1 shape (`regarding`, `note`).
fn is_new_event(obj: &Value) -> bool {
    obj.get("apiVersion")
        .and_then(Value::as_str)
        .is_some_and(|v| v.starts_with("events.k8s.io/"))
        || obj.get("regarding").is_some()
        || obj.get("note").is_some()
}

fn event_value(obj: &Value, label: &str) -> String {
    let new = is_new_event(obj);
    if let Some(rest) = label.strip_prefix("involvedObject.") {
        let base = if new { "regarding" } else { "involvedObject" };
        return text(obj, &format!("{base}.{rest}"));
    }
    let reporting = if new {
        "reportingController"
    } else {
        "reportingComponent"
    };
    match label {
        "reportingComponent" => text(obj, reporting),
        "source" => {
            let component = text(
                obj,
                if new {
                    "deprecatedSource.component"
                } else {
                    "source.component"
                },
            );
            if component.is_empty() {
                text(obj, reporting)
            } else {
                component
            }
        }
        other => text(obj, other),
    }
}

fn pod_ip(obj: &Value) -> String {
    let first = at(obj, "status.podIPs")
        .and_then(Value::as_array)
        .and_then(|a| a.first());
    match first {
        Some(ip) => text(ip, "ip"),
        None => text(obj, "status.podIP"),
    }
}

/// The value of a canonical field label in the object, as upstream's `ToSelectableFields` sets it
/// (absent fields read as empty, unset booleans as `false`, unset counts as `0`).
pub(crate) fn value(def: &ResourceDef, obj: &Value, label: &str) -> String {
    match (def.group, def.plural, label) {
        (_, _, "metadata.name" | "metadata.namespace") => text(obj, label),
        ("", "pods", "spec.hostNetwork") => bool_or_false(obj, label),
        ("", "pods", "status.podIP") => pod_ip(obj),
        // Accepted by the conversion func but never set in the field set.
        ("", "pods", "status.podIPs") => String::new(),
        ("", "nodes", "spec.unschedulable") => bool_or_false(obj, label),
        ("", "replicationcontrollers", "status.replicas") => int_or_zero(obj, label),
        ("batch", "jobs", "status.successful") => int_or_zero(obj, "status.succeeded"),
        ("" | "events.k8s.io", "events", _) => event_value(obj, label),
        _ => text(obj, label),
    }
}
