//! DELETE of one object and of a collection: preconditions, grace periods, finalizers
//! (`foregroundDeletion`/`orphan` record the propagation policy for the garbage collector).

use axum::body::Body;
use axum::response::Response;
use http::StatusCode;
use serde::Deserialize;
use serde_json::{json, Value};
use skiff_api::registry::ResourceDef;

use super::read::{self, Selectors};
use super::{storage, Request};
use crate::errors::{ApiError, ApiResult};
use crate::state::ApiServer;
use crate::{body, convert, meta, output};

/// Namespaces the NamespaceLifecycle admission plugin refuses to delete.
const IMMORTAL_NAMESPACES: &[&str] = &["default", "kube-system", "kube-public"];

/// How many times a delete is retried after losing a race with another writer.
const RETRIES: usize = 16;

/// The DeleteOptions of a request (body and query parameters).
#[derive(Debug, Default, Clone)]
pub(crate) struct Options {
    grace: Option<i64>,
    uid: Option<String>,
    resource_version: Option<String>,
    propagation: Option<String>,
    dry_run: bool,
}

async fn options(req: &Request, body: Body) -> ApiResult<Options> {
    let bytes = body::read(body).await?;
    let doc = if bytes.iter().all(u8::is_ascii_whitespace) {
        Value::Null
    } else {
        body::decode_object(&req.headers, &bytes)?
    };
    parse_options(req, &doc)
}

/// `metav1.Preconditions`, typed.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Preconditions {
    uid: Option<String>,
    resource_version: Option<String>,
}

/// `metav1.DeleteOptions` as a body carries it, typed so that a value of the wrong type is
/// refused (400) instead of ignored; unknown fields are ignored as upstream's decoder does.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct DeleteOptionsBody {
    grace_period_seconds: Option<i64>,
    preconditions: Option<Preconditions>,
    orphan_dependents: Option<bool>,
    propagation_policy: Option<String>,
    dry_run: Option<Vec<String>>,
}

fn parse_options(req: &Request, doc: &Value) -> ApiResult<Options> {
    let q = &req.query;
    let body: DeleteOptionsBody = match doc {
        Value::Null => DeleteOptionsBody::default(),
        v => serde_json::from_value(v.clone())
            .map_err(|e| ApiError::bad_request(format!("error decoding DeleteOptions: {e}")))?,
    };
    let dry_run_body = body.dry_run.unwrap_or_default();
    super::check_dry_run(&dry_run_body, "DeleteOptions")?;
    let grace = match body.grace_period_seconds {
        Some(g) => Some(g),
        None => match q.grace_period_seconds.as_deref() {
            Some(s) => Some(
                s.parse()
                    .map_err(|_| ApiError::bad_request(format!("invalid gracePeriodSeconds: {s}")))?,
            ),
            None => None,
        },
    };
    let orphan = body
        .orphan_dependents
        .map(|o| if o { "Orphan" } else { "Background" }.to_string());
    let propagation = body
        .propagation_policy
        .or_else(|| q.propagation_policy.clone())
        .or(orphan);
    if let Some(p) = &propagation {
        if !["Orphan", "Background", "Foreground"].contains(&p.as_str()) {
            return Err(ApiError::bad_request(format!(
                "DeleteOptions.meta.k8s.io \"\" is invalid: propagationPolicy: Unsupported value: \"{p}\": supported values: \"Foreground\", \"Background\", \"Orphan\""
            )));
        }
    }
    let pre = body.preconditions.unwrap_or_default();
    Ok(Options {
        grace,
        uid: pre.uid,
        resource_version: pre.resource_version,
        propagation,
        dry_run: q.is_dry_run() || !dry_run_body.is_empty(),
    })
}

/// The grace period a deletion gets: pods on a node wait for their agent; the rest go at once.
fn grace_period(server: &ApiServer, def: &ResourceDef, obj: &Value, opts: &Options) -> i64 {
    if def.kind != "Pod" || !def.group.is_empty() {
        return 0;
    }
    let node = obj["spec"]["nodeName"].as_str().unwrap_or("");
    let phase = obj["status"]["phase"].as_str().unwrap_or("");
    let nodes = skiff_api::registry::find("", "v1", "nodes");
    let node_exists = nodes.is_some_and(|d| server.cache.contains(d, &d.key(None, node)));
    // Upstream deletes unscheduled and finished pods at once; a pod on a node that does not
    // exist has no agent to confirm, so it goes at once too (the pod GC's job upstream).
    if node.is_empty() || !node_exists || phase == "Succeeded" || phase == "Failed" {
        return 0;
    }
    opts.grace
        .unwrap_or_else(|| obj["spec"]["terminationGracePeriodSeconds"].as_i64().unwrap_or(30))
        .max(0)
}

fn success_status(def: &ResourceDef, obj: &Value) -> Value {
    let mut details = json!({"name": meta::name(obj), "kind": def.plural, "uid": obj["metadata"]["uid"]});
    if !def.group.is_empty() {
        details["group"] = json!(def.group);
    }
    json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success", "details": details})
}

/// The answer to a completed delete: the object itself for kinds whose upstream storage sets
/// `ReturnDeletedObject` (clients decode it as that kind), a Success Status otherwise.
fn deleted_answer(def: &ResourceDef, stored: Value) -> Value {
    let view = convert::to_view(def, &stored).unwrap_or(stored);
    if def.return_deleted_object {
        view
    } else {
        success_status(def, &view)
    }
}

/// Deletes (or starts deleting) one object; returns the response body.
pub(crate) async fn delete_one(
    server: &ApiServer,
    def: &ResourceDef,
    ns: Option<&str>,
    name: &str,
    opts: &Options,
) -> ApiResult<Value> {
    let key = def.key(ns, name);
    for _ in 0..RETRIES {
        let Some(cur) = storage::load(server, &key).await? else {
            return Err(ApiError::not_found(def, name));
        };
        let obj = cur.obj;
        if let Some(uid) = &opts.uid {
            let have = obj["metadata"]["uid"].as_str().unwrap_or("");
            if uid != have {
                return Err(ApiError::conflict_msg(
                    def,
                    name,
                    &format!("Precondition failed: UID in precondition: {uid}, UID in object meta: {have}"),
                ));
            }
        }
        if let Some(rv) = &opts.resource_version {
            if *rv != cur.revision.to_string() {
                return Err(ApiError::conflict_msg(def, name, &format!("Precondition failed: ResourceVersion in precondition: {rv}, ResourceVersion in object meta: {}", cur.revision)));
            }
        }
        if def.kind == "Namespace" && def.group.is_empty() && IMMORTAL_NAMESPACES.contains(&name) {
            return Err(ApiError::forbidden_object(
                def,
                name,
                "this namespace may not be deleted",
            ));
        }
        let mut next = obj.clone();
        let deleting = obj["metadata"]["deletionTimestamp"].is_string();
        let grace = grace_period(server, def, &obj, opts);
        let policy_finalizer = match opts.propagation.as_deref() {
            Some("Foreground") => Some("foregroundDeletion"),
            Some("Orphan") => Some("orphan"),
            _ => None,
        };
        if let Some(f) = policy_finalizer {
            let list = meta::meta_mut(&mut next)
                .entry("finalizers")
                .or_insert_with(|| json!([]));
            if let Some(a) = list.as_array_mut() {
                if !a.iter().any(|x| x == f) {
                    a.push(json!(f));
                }
            }
        }
        let is_namespace = def.kind == "Namespace" && def.group.is_empty();
        let immediate = !is_namespace && grace == 0 && !meta::has_finalizers(&next);
        if opts.dry_run {
            return Ok(if immediate { deleted_answer(def, obj) } else { obj });
        }
        if immediate {
            if storage::remove(server, &key, cur.revision).await? {
                tracing::debug!(kind = def.kind, name, "deleted");
                return Ok(deleted_answer(def, obj));
            }
            continue;
        }
        if deleting && policy_finalizer.is_none() {
            // Already being deleted: a shorter grace period may still cut the wait.
            let cur_grace = obj["metadata"]["deletionGracePeriodSeconds"].as_i64().unwrap_or(0);
            if grace >= cur_grace {
                return Ok(obj);
            }
        }
        let m = meta::meta_mut(&mut next);
        if !deleting || grace < m.get("deletionGracePeriodSeconds").and_then(Value::as_i64).unwrap_or(0) {
            m.insert("deletionTimestamp".into(), json!(meta::now_plus(grace)));
            m.insert("deletionGracePeriodSeconds".into(), json!(grace));
        }
        if is_namespace {
            next["status"]["phase"] = json!("Terminating");
        }
        if let Some(stored) = storage::put(server, &key, next, cur.revision).await? {
            tracing::debug!(kind = def.kind, name, grace, "deletion started");
            return Ok(convert::to_view(def, &stored).unwrap_or_else(|| (*stored).clone()));
        }
    }
    Err(ApiError::conflict(def, name))
}

/// `DELETE .../{name}`.
pub async fn delete(server: &ApiServer, req: &Request, name: &str, body: Body) -> ApiResult<Response> {
    let opts = options(req, body).await?;
    let def = req.target.def;
    let out = delete_one(server, def, req.target.namespace.as_deref(), name, &opts).await?;
    Ok(output::json_response(StatusCode::OK, &out, &[]))
}

/// `POST pods/{name}/eviction`: deletes the pod with the eviction's DeleteOptions (there are
/// no PodDisruptionBudgets to consult).
pub async fn evict(server: &ApiServer, req: &Request, name: &str, body: Body) -> ApiResult<Response> {
    let bytes = body::read(body).await?;
    let eviction = body::decode_object(&req.headers, &bytes)?;
    let opts = parse_options(req, &eviction["deleteOptions"])?;
    let def = req.target.def;
    delete_one(server, def, req.target.namespace.as_deref(), name, &opts).await?;
    let status = json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success", "code": 201});
    Ok(output::json_response(StatusCode::CREATED, &status, &[]))
}

/// `DELETE` of a collection (with selectors).
pub async fn delete_collection(server: &ApiServer, req: &Request, body: Body) -> ApiResult<Response> {
    let opts = options(req, body).await?;
    let def = req.target.def;
    let sel = Selectors::parse(req)?;
    let prefix = def.namespace_prefix(req.target.namespace.as_deref());
    let (items, _) = server.cache.list(def, &prefix, None);
    let mut deleted = Vec::new();
    for (_, obj) in items {
        let obj = read::view(def, &obj);
        if !sel.matches(def, &obj) {
            continue;
        }
        match delete_one(server, def, meta::meta_str(&obj, "namespace"), meta::name(&obj), &opts).await {
            Ok(_) => deleted.push((*obj).clone()),
            Err(e) if e.code == 404 => {}
            Err(e) => return Err(e),
        }
    }
    let list = json!({"kind": def.list_kind(), "apiVersion": def.api_version(), "metadata": {}, "items": deleted});
    Ok(output::json_response(StatusCode::OK, &list, &[]))
}
