//! PUT and PATCH of an object and its `status`: a read-modify-write loop on the store with
//! compare-and-swap, preserving system metadata as kube-apiserver's strategies do.

use std::sync::Arc;

use axum::body::Body;
use axum::response::Response;
use http::StatusCode;
use serde_json::{json, Value};
use skiff_api::registry::ResourceDef;
use skiff_api::{defaults, patch, validation};

use super::{create, fields, read, storage, Request};
use crate::errors::{ApiError, ApiResult};
use crate::state::ApiServer;
use crate::{alloc, body, convert, meta, output};

/// How many times a write without a client resourceVersion is retried after losing a race.
const RETRIES: usize = 16;

/// Metadata fields only the server sets; an update keeps the stored values.
const SYSTEM_META: &[&str] = &[
    "uid",
    "creationTimestamp",
    "deletionTimestamp",
    "deletionGracePeriodSeconds",
    "generation",
    "managedFields",
];

/// Builds the new stored object from the current one and the client's version of it.
fn merge_system_fields(def: &ResourceDef, sub: Option<&str>, cur: &Value, new: Value) -> Value {
    let mut out = match sub {
        // Status writes change only status (upstream status strategies reset the rest).
        Some("status") => {
            let mut o = cur.clone();
            o["status"] = new.get("status").cloned().unwrap_or(Value::Null);
            for f in ["labels", "annotations", "ownerReferences", "finalizers"] {
                if let Some(v) = new["metadata"].get(f) {
                    meta::meta_mut(&mut o).insert(f.into(), v.clone());
                }
            }
            o
        }
        Some("finalize") => {
            let mut o = cur.clone();
            o["spec"]["finalizers"] = new["spec"]["finalizers"].clone();
            o
        }
        _ => {
            let mut o = new;
            if def.has_status() {
                match cur.get("status") {
                    Some(s) => o["status"] = s.clone(),
                    None => {
                        if let Some(m) = o.as_object_mut() {
                            m.remove("status");
                        }
                    }
                }
            }
            o
        }
    };
    let m = meta::meta_mut(&mut out);
    for f in SYSTEM_META {
        match cur["metadata"].get(*f) {
            Some(v) => m.insert((*f).into(), v.clone()),
            None => m.remove(*f),
        };
    }
    for f in ["name", "namespace"] {
        if let Some(v) = cur["metadata"].get(f) {
            m.insert(f.into(), v.clone());
        }
    }
    out
}

/// Bumps `metadata.generation` when the spec changed (compared after defaulting, so a client
/// re-sending what the server defaulted changes nothing).
fn bump_generation(def: &ResourceDef, sub: Option<&str>, cur: &Value, new: &mut Value) {
    if sub.is_none() && meta::tracks_generation(def) && meta::spec_part(new) != meta::spec_part(cur) {
        let g = cur["metadata"]["generation"].as_i64().unwrap_or(0) + 1;
        meta::meta_mut(new).insert("generation".into(), json!(g));
    }
}

/// The client's resourceVersion precondition, if it sent one.
fn requested_rv(def: &ResourceDef, obj: &Value) -> ApiResult<Option<i64>> {
    match meta::meta_str(obj, "resourceVersion").filter(|s| !s.is_empty()) {
        None => Ok(None),
        Some(s) => s.parse().map(Some).map_err(|_| {
            ApiError::invalid(
                def,
                meta::name(obj),
                &[validation::Cause {
                    reason: "FieldValueInvalid".into(),
                    message: format!("Invalid value: \"{s}\": must be a valid resourceVersion"),
                    field: "metadata.resourceVersion".into(),
                }],
            )
        }),
    }
}

/// Equal ignoring resourceVersion: such an update is a no-op and is not written.
fn same_object(a: &Value, b: &Value) -> bool {
    let strip = |v: &Value| {
        let mut v = v.clone();
        meta::meta_mut(&mut v).remove("resourceVersion");
        v
    };
    strip(a) == strip(b)
}

/// Outcome of a read-modify-write.
pub struct Written {
    /// The object as stored now (served view).
    pub obj: Arc<Value>,
    /// Warnings for the client.
    pub warnings: Vec<String>,
}

/// Applies `change` to the current object (in the served view) and stores the result with
/// compare-and-swap, retrying lost races unless the client pinned a resourceVersion.
pub async fn modify<F>(server: &ApiServer, req: &Request, name: &str, mut change: F) -> ApiResult<Written>
where
    F: FnMut(&Value) -> ApiResult<Value>,
{
    let def = req.target.def;
    let sub = req.target.sub.as_deref();
    let key = def.key(req.target.namespace.as_deref(), name);
    for _ in 0..RETRIES {
        let Some(cur) = storage::load(server, &key).await? else {
            return Err(ApiError::not_found(def, name));
        };
        let cur_view = convert::to_view(def, &cur.obj).unwrap_or_else(|| cur.obj.clone());
        // The client pins a resourceVersion only by sending one; the current one is not passed in.
        let mut unpinned = cur_view.clone();
        meta::meta_mut(&mut unpinned).remove("resourceVersion");
        let mut new = change(&unpinned)?;
        fields::check_kind(def, &mut new)?;
        let warnings = fields::check_unknown(req, &mut new)?;
        convert::fold_string_data(def, &mut new);
        // A uid in the body is a precondition (kubelet sends it so it never writes a newer pod
        // of the same name).
        if let (Some(want), Some(have)) = (meta::meta_str(&new, "uid"), meta::meta_str(&cur_view, "uid")) {
            if !want.is_empty() && want != have {
                let msg = format!("Precondition failed: UID in precondition: {want}, UID in object meta: {have}");
                return Err(ApiError::conflict_msg(def, name, &msg));
            }
        }
        let pinned = requested_rv(def, &new)?;
        if pinned.is_some_and(|rv| rv != cur.revision) {
            return Err(ApiError::conflict(def, name));
        }
        let mut merged = merge_system_fields(def, sub, &cur_view, new);
        defaults::apply(def, &mut merged);
        bump_generation(def, sub, &cur_view, &mut merged);
        let causes = if sub == Some("status") {
            validation::validate_status_update(def, &merged, &cur_view)
        } else {
            validation::validate_update(def, &merged, &cur_view)
        };
        if !causes.is_empty() {
            return Err(ApiError::invalid(def, name, &causes));
        }
        if def.kind == "Service" && def.group.is_empty() && sub.is_none() {
            let _guard = server.service_lock.lock().await;
            alloc::allocate(&server.cache, server.service_cidr, def, &mut merged, Some(&key))
                .map_err(|c| ApiError::invalid(def, name, &c))?;
        }
        if same_object(&merged, &cur_view) {
            return Ok(Written {
                obj: Arc::new(cur_view),
                warnings,
            });
        }
        if req.query.is_dry_run() {
            return Ok(Written {
                obj: Arc::new(merged),
                warnings,
            });
        }
        // This update removed the last finalizer of an object whose deletion has no grace
        // period left: the deletion completes (upstream `shouldDeleteDuringUpdate`).
        // A namespace also waits for its spec.finalizers (upstream `ShouldDeleteNamespaceDuringUpdate`).
        let held = |v: &Value| {
            meta::has_finalizers(v)
                || (def.kind == "Namespace"
                    && def.group.is_empty()
                    && v["spec"]["finalizers"].as_array().is_some_and(|a| !a.is_empty()))
        };
        let finalized = held(&cur_view)
            && !held(&merged)
            && cur_view["metadata"]["deletionTimestamp"].is_string()
            && merged["metadata"]["deletionGracePeriodSeconds"].as_i64() == Some(0);
        if finalized {
            if storage::remove(server, &key, cur.revision).await? {
                tracing::debug!(kind = def.kind, name, "finalizers cleared; object removed");
                return Ok(Written {
                    obj: Arc::new(merged),
                    warnings,
                });
            }
        } else if let Some(stored) = storage::put(server, &key, convert::to_storage(def, merged), cur.revision).await? {
            let obj = convert::to_view(def, &stored).map(Arc::new).unwrap_or(stored);
            return Ok(Written { obj, warnings });
        }
        if pinned.is_some() {
            return Err(ApiError::conflict(def, name));
        }
    }
    Err(ApiError::conflict(def, name))
}

fn respond(req: &Request, w: Written) -> Response {
    let def = req.target.def;
    output::object_response(def, &read::view(def, &w.obj), req.format(), StatusCode::OK, &w.warnings)
}

/// `PUT .../{name}[/status]`.
pub async fn update(server: &ApiServer, req: &Request, name: &str, body: Body) -> ApiResult<Response> {
    let def = req.target.def;
    let bytes = body::read(body).await?;
    let obj = body::decode_object(&req.headers, &bytes)?;
    let duplicate_warnings = fields::check_duplicates(req, &obj, &bytes)?;
    // Upstream `checkName`: a body without a name does not match the URL either.
    check_name(&obj, name)?;
    let url_ns = req.target.namespace.as_deref();
    if let (Some(ns), Some(b)) = (url_ns, meta::meta_str(&obj, "namespace").filter(|n| !n.is_empty())) {
        if def.namespaced && b != ns {
            return Err(ApiError::bad_request(
                "the namespace of the provided object does not match the namespace sent on the request",
            ));
        }
    }
    let mut w = modify(server, req, name, |_| Ok(obj.clone())).await?;
    w.warnings.splice(0..0, duplicate_warnings);
    Ok(respond(req, w))
}

/// Refuses an object whose name is not the URL's (upstream `checkName`).
fn check_name(obj: &Value, name: &str) -> ApiResult<()> {
    let obj_name = meta::name(obj);
    if obj_name != name {
        return Err(ApiError::bad_request(format!(
            "the name of the object ({obj_name}) does not match the name on the URL ({name})"
        )));
    }
    Ok(())
}

/// A patched object must still be the one the URL names: same namespace (when it names one)
/// and same name, as upstream's patcher checks before the update.
fn check_patched(def: &ResourceDef, url_ns: Option<&str>, obj: &Value, name: &str) -> ApiResult<()> {
    let obj_ns = meta::meta_str(obj, "namespace").unwrap_or("");
    if let Some(ns) = url_ns.filter(|_| def.namespaced) {
        if !obj_ns.is_empty() && obj_ns != ns {
            return Err(ApiError::bad_request(
                "the namespace of the provided object does not match the namespace sent on the request",
            ));
        }
    }
    check_name(obj, name)
}

/// Server-side apply needs the body's group, version and kind to be the URL's, as upstream's
/// field manager checks (`invalid object type: <group>/<version>, Kind=<kind>`).
fn check_apply_kind(def: &ResourceDef, doc: &Value) -> ApiResult<()> {
    let api_version = doc.get("apiVersion").and_then(Value::as_str).unwrap_or("");
    let kind = doc.get("kind").and_then(Value::as_str).unwrap_or("");
    // Go's ParseGroupVersion; an unparsable apiVersion yields an empty group-version-kind.
    let (group, version, kind) = match api_version.matches('/').count() {
        _ if api_version.is_empty() || api_version == "/" => ("", "", kind),
        0 => ("", api_version, kind),
        1 => {
            let (g, v) = api_version.split_once('/').unwrap_or(("", ""));
            (g, v, kind)
        }
        _ => ("", "", ""),
    };
    if (group, version, kind) != (def.group, def.version, def.kind) {
        return Err(ApiError::bad_request(format!(
            "invalid object type: {group}/{version}, Kind={kind}"
        )));
    }
    Ok(())
}

fn patch_error(e: patch::PatchError) -> ApiError {
    match e {
        patch::PatchError::UnsupportedKind { .. } => ApiError::new(415, "UnsupportedMediaType", e.to_string()),
        patch::PatchError::JsonPatchFailed(_) | patch::PatchError::CopyTooLarge { .. } => {
            ApiError::new(422, "Invalid", e.to_string())
        }
        // Upstream's NewRequestEntityTooLargeError prefixes the message.
        patch::PatchError::TooManyOperations { .. } | patch::PatchError::ObjectTooLarge { .. } => {
            ApiError::new(413, "RequestEntityTooLarge", format!("Request entity too large: {e}"))
        }
        other => ApiError::bad_request(other.to_string()),
    }
}

/// `PATCH .../{name}[/status]` with a JSON, merge, strategic merge or apply patch.
pub async fn patch(server: &ApiServer, req: &Request, name: &str, body: Body) -> ApiResult<Response> {
    let def = req.target.def;
    let bytes = body::read(body).await?;
    let ct = body::content_type(&req.headers);
    let doc = match ct.as_str() {
        "application/json-patch+json" | "application/merge-patch+json" | "application/strategic-merge-patch+json" => {
            body::parse_json(&bytes)?
        }
        "application/apply-patch+yaml" => body::parse_yaml(&bytes)?,
        other => return Err(ApiError::unsupported_media_type(other)),
    };
    if ct == "application/apply-patch+yaml" {
        if req.query.field_manager.as_deref().unwrap_or("").is_empty() {
            return Err(ApiError::bad_request(
                "PATCH requests using apply must have a field manager",
            ));
        }
        check_apply_kind(def, &doc)?;
        let key = def.key(req.target.namespace.as_deref(), name);
        if req.target.sub.is_none() && !server.cache.contains(def, &key) {
            return apply_create(server, req, name, doc).await;
        }
    }
    let (group, kind) = (def.group, def.kind);
    let url_ns = req.target.namespace.as_deref();
    let w = modify(server, req, name, |cur| {
        let patched = match ct.as_str() {
            "application/json-patch+json" => patch::json_patch(cur, &doc),
            "application/merge-patch+json" => patch::merge_patch(cur, &doc),
            "application/strategic-merge-patch+json" => patch::strategic_merge_patch(cur, &doc, group, kind),
            _ => patch::server_side_apply(Some(cur), &doc, group, kind),
        }
        .map_err(patch_error)?;
        check_patched(def, url_ns, &patched, name)?;
        Ok(patched)
    })
    .await?;
    Ok(respond(req, w))
}

/// Server-side apply of an object that does not exist yet creates it.
async fn apply_create(server: &ApiServer, req: &Request, name: &str, doc: Value) -> ApiResult<Response> {
    let def = req.target.def;
    let mut obj = patch::server_side_apply(None, &doc, def.group, def.kind).map_err(patch_error)?;
    let body_name = meta::name(&obj);
    if body_name != name {
        return Err(ApiError::bad_request(format!(
            "the name of the object ({body_name}) does not match the name on the URL ({name})"
        )));
    }
    let warnings = create::prepare(server, req, &mut obj)?;
    create::persist(server, req, obj, &warnings).await
}

/// `POST pods/{name}/binding`: assigns the pod to a node once and marks it scheduled.
/// Pod update validation forbids changing `spec.nodeName`, so binding writes directly.
pub async fn binding(server: &ApiServer, req: &Request, name: &str, body: Body) -> ApiResult<Response> {
    let def = req.target.def;
    let bytes = body::read(body).await?;
    let b = body::decode_object(&req.headers, &bytes)?;
    let node = b["target"]["name"].as_str().unwrap_or("").to_string();
    if node.is_empty() {
        let cause = validation::Cause {
            reason: "FieldValueRequired".into(),
            message: "Required value".into(),
            field: "target.name".into(),
        };
        return Err(ApiError::invalid(def, name, &[cause]));
    }
    let key = def.key(req.target.namespace.as_deref(), name);
    for _ in 0..RETRIES {
        let Some(cur) = storage::load(server, &key).await? else {
            return Err(ApiError::not_found(def, name));
        };
        let mut p = cur.obj;
        if let Some(n) = p["spec"]["nodeName"].as_str().filter(|n| !n.is_empty()) {
            return Err(ApiError::conflict_msg(
                def,
                name,
                &format!("pod {name} is already assigned to node \"{n}\""),
            ));
        }
        if p["metadata"]["deletionTimestamp"].is_string() {
            return Err(ApiError::conflict_msg(
                def,
                name,
                "pod is being deleted, cannot be assigned to a host",
            ));
        }
        p["spec"]["nodeName"] = json!(node);
        let mut conds: Vec<Value> = p["status"]["conditions"].as_array().cloned().unwrap_or_default();
        conds.retain(|c| c["type"] != "PodScheduled");
        conds.push(
            json!({"type": "PodScheduled", "status": "True", "lastProbeTime": null, "lastTransitionTime": meta::now()}),
        );
        p["status"]["conditions"] = Value::Array(conds);
        if storage::put(server, &key, p, cur.revision).await?.is_some() {
            let status =
                json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success", "code": 201});
            return Ok(output::json_response(StatusCode::CREATED, &status, &[]));
        }
    }
    Err(ApiError::conflict(def, name))
}
