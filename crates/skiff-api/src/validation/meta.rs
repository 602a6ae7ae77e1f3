//! `ObjectMeta` checks on create and update (apimachinery `ValidateObjectMeta*`).

use super::cause::{forbidden, invalid, nonnegative, required, Cause};
use super::json::{arr, at, int_at, s};
use super::names::{annotations, check_name, labels, qualified_name, NameRule};
use serde_json::Value;

const STANDARD_FINALIZERS: &[&str] = &["kubernetes", "orphan", "foregroundDeletion"];

/// Validates `metadata` of a new object.
pub(crate) fn object_meta(obj: &Value, namespaced: bool, rule: NameRule, out: &mut Vec<Cause>) {
    let meta = at(obj, &["metadata"]).unwrap_or(&Value::Null);
    let generate = s(meta, &["generateName"]);
    if !generate.is_empty() {
        for msg in check_name(rule, generate, true) {
            out.push(invalid("metadata.generateName", generate, &msg));
        }
    }
    let name = s(meta, &["name"]);
    if name.is_empty() {
        out.push(required("metadata.name", "name or generateName is required"));
    } else {
        for msg in check_name(rule, name, false) {
            out.push(invalid("metadata.name", name, &msg));
        }
    }
    let ns = s(meta, &["namespace"]);
    if namespaced {
        if ns.is_empty() {
            out.push(required("metadata.namespace", ""));
        } else {
            for msg in check_name(NameRule::Label, ns, false) {
                out.push(invalid("metadata.namespace", ns, &msg));
            }
        }
    } else if !ns.is_empty() {
        out.push(forbidden("metadata.namespace", "not allowed on this type"));
    }
    if let Some(g) = int_at(meta, &["generation"]) {
        nonnegative("metadata.generation", g, out);
    }
    labels(meta.get("labels"), "metadata.labels", out);
    annotations(meta.get("annotations"), "metadata.annotations", out);
    owner_references(meta, out);
    finalizers(meta, out);
}

fn owner_references(meta: &Value, out: &mut Vec<Cause>) {
    let mut controllers = Vec::new();
    for (i, r) in arr(meta, &["ownerReferences"]).iter().enumerate() {
        let f = format!("metadata.ownerReferences[{i}]");
        let api_version = s(r, &["apiVersion"]);
        let version = api_version.rsplit('/').next().unwrap_or("");
        if version.is_empty() {
            out.push(invalid(
                &format!("{f}.apiVersion"),
                version,
                "version must not be empty",
            ));
        }
        if s(r, &["kind"]).is_empty() {
            out.push(invalid(&format!("{f}.kind"), "", "kind must not be empty"));
        }
        if s(r, &["name"]).is_empty() {
            out.push(invalid(&format!("{f}.name"), "", "name must not be empty"));
        }
        if s(r, &["uid"]).is_empty() {
            out.push(invalid(&format!("{f}.uid"), "", "uid must not be empty"));
        }
        if at(r, &["controller"]).and_then(Value::as_bool) == Some(true) {
            controllers.push(format!("{}/{}", s(r, &["kind"]), s(r, &["name"])));
        }
    }
    if controllers.len() > 1 {
        out.push(invalid(
            "metadata.ownerReferences",
            super::cause::Bad::Raw(format!("{:?}", controllers)),
            &format!(
                "Only one reference can have Controller set to true. Found \"true\" in references for {}",
                controllers.join(" and ")
            ),
        ));
    }
}

fn finalizers(meta: &Value, out: &mut Vec<Cause>) {
    for f in arr(meta, &["finalizers"]).iter().filter_map(Value::as_str) {
        let errs = qualified_name(f);
        if !errs.is_empty() {
            for msg in errs {
                out.push(invalid("metadata.finalizers", f, &msg));
            }
        } else if !f.contains('/') && !STANDARD_FINALIZERS.contains(&f) {
            out.push(invalid(
                "metadata.finalizers",
                f,
                "name is neither a standard finalizer name nor is it fully qualified",
            ));
        }
    }
}

/// Validates `metadata` of an update against the stored object.
pub(crate) fn object_meta_update(new: &Value, old: &Value, out: &mut Vec<Cause>) {
    let nm = at(new, &["metadata"]).unwrap_or(&Value::Null);
    let om = at(old, &["metadata"]).unwrap_or(&Value::Null);
    if let (Some(n), Some(o)) = (int_at(nm, &["generation"]), int_at(om, &["generation"])) {
        if n < o {
            out.push(invalid("metadata.generation", n, "must not be decremented"));
        }
    }
    for key in ["name", "namespace", "uid", "creationTimestamp"] {
        let (n, o) = (s(nm, &[key]), s(om, &[key]));
        // The server copies uid and creationTimestamp from the stored object when they are left out.
        let filled_by_server = matches!(key, "uid" | "creationTimestamp") && n.is_empty();
        if !filled_by_server && n != o {
            out.push(invalid(&format!("metadata.{key}"), n, "field is immutable"));
        }
    }
    if at(om, &["deletionTimestamp"]).is_some_and(|v| !v.is_null()) {
        let old_f: Vec<&str> = arr(om, &["finalizers"]).iter().filter_map(Value::as_str).collect();
        let added: Vec<&str> = arr(nm, &["finalizers"])
            .iter()
            .filter_map(Value::as_str)
            .filter(|f| !old_f.contains(f))
            .collect();
        if !added.is_empty() {
            out.push(forbidden(
                "metadata.finalizers",
                &format!(
                    "no new finalizers can be added if the object is being deleted, found new finalizers {:?}",
                    added
                ),
            ));
        }
    }
    labels(nm.get("labels"), "metadata.labels", out);
    annotations(nm.get("annotations"), "metadata.annotations", out);
    owner_references(nm, out);
    finalizers(nm, out);
}
