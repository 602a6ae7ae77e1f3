//! POST of a new object: naming, system metadata, defaulting, validation, then a
//! create-if-absent transaction.

use std::sync::Arc;

use axum::body::Body;
use axum::response::Response;
use http::StatusCode;
use serde_json::{json, Value};
use skiff_api::registry::ResourceDef;
use skiff_api::{defaults, validation};

use super::{fields, read, storage, Request};
use crate::errors::{ApiError, ApiResult};
use crate::state::ApiServer;
use crate::{admission, alloc, body, convert, meta, output};

/// Refuses writes into a namespace that is missing or terminating, as the NamespaceLifecycle
/// admission plugin does.
pub fn check_namespace(server: &ApiServer, def: &ResourceDef, ns: Option<&str>, name: &str) -> ApiResult<()> {
    let Some(ns) = ns.filter(|_| def.namespaced) else {
        return Ok(());
    };
    let Some(nsobj) = server.namespace(ns) else {
        return Err(ApiError::not_found(crate::state::namespaces(), ns));
    };
    if nsobj["status"]["phase"] == "Terminating" || nsobj["metadata"]["deletionTimestamp"].is_string() {
        return Err(ApiError::forbidden_object(
            def,
            name,
            &format!("unable to create new content in namespace {ns} because it is being terminated"),
        ));
    }
    Ok(())
}

/// Sets the namespace from the URL, refusing a body that names another one.
pub fn set_namespace(def: &ResourceDef, url_ns: Option<&str>, obj: &mut Value) -> ApiResult<()> {
    let m = meta::meta_mut(obj);
    if !def.namespaced {
        m.remove("namespace");
        return Ok(());
    }
    let Some(ns) = url_ns else {
        return Err(ApiError::bad_request(
            "the namespace of the object must be set in the request URL",
        ));
    };
    match m.get("namespace").and_then(Value::as_str) {
        Some(n) if !n.is_empty() && n != ns => Err(ApiError::bad_request(
            "the namespace of the provided object does not match the namespace sent on the request",
        )),
        _ => {
            m.insert("namespace".into(), json!(ns));
            Ok(())
        }
    }
}

/// Fills system metadata of a new object (name from generateName, uid, timestamps,
/// generation) and drops what clients may not set.
fn init_metadata(def: &ResourceDef, obj: &mut Value) {
    let m = meta::meta_mut(obj);
    let has_name = m.get("name").and_then(Value::as_str).is_some_and(|n| !n.is_empty());
    if !has_name {
        if let Some(g) = m.get("generateName").and_then(Value::as_str).filter(|g| !g.is_empty()) {
            let name = format!("{g}{}", meta::random_suffix(5));
            m.insert("name".into(), json!(name));
        }
    }
    for f in [
        "resourceVersion",
        "deletionTimestamp",
        "deletionGracePeriodSeconds",
        "selfLink",
        "managedFields",
    ] {
        m.remove(f);
    }
    m.insert("uid".into(), json!(meta::uid()));
    m.insert("creationTimestamp".into(), json!(meta::now()));
    if meta::tracks_generation(def) {
        m.insert("generation".into(), json!(1));
    } else {
        m.remove("generation");
    }
}

/// Prepares a new object for storage: metadata, defaults and validation (in the served view).
pub fn prepare(server: &ApiServer, req: &Request, obj: &mut Value) -> ApiResult<Vec<String>> {
    let def = req.target.def;
    fields::check_kind(def, obj)?;
    let warnings = fields::check_unknown(req, obj)?;
    convert::fold_string_data(def, obj);
    set_namespace(def, req.target.namespace.as_deref(), obj)?;
    init_metadata(def, obj);
    defaults::apply(def, obj);
    admission::mutate_create(server, def, obj);
    let name = meta::name(obj).to_string();
    let causes = validation::validate_create(def, obj);
    if !causes.is_empty() {
        return Err(ApiError::invalid(def, &name, &causes));
    }
    check_namespace(server, def, req.target.namespace.as_deref(), &name)?;
    admission::validate_create(server, def, obj)?;
    Ok(warnings)
}

/// Stores a prepared object if its key is free.
pub async fn store_new(server: &ApiServer, def: &ResourceDef, obj: Value) -> ApiResult<Arc<Value>> {
    let name = meta::name(&obj).to_string();
    let key = def.key(meta::meta_str(&obj, "namespace"), &name);
    let stored = convert::to_storage(def, obj);
    match storage::put(server, &key, stored, 0).await? {
        Some(v) => Ok(v),
        None => Err(ApiError::already_exists(def, &name)),
    }
}

/// `POST` to a collection.
pub async fn create(server: &ApiServer, req: &Request, body: Body) -> ApiResult<Response> {
    let bytes = body::read(body).await?;
    let mut obj = body::decode_object(&req.headers, &bytes)?;
    let mut warnings = fields::check_duplicates(req, &obj, &bytes)?;
    warnings.extend(prepare(server, req, &mut obj)?);
    tracing::debug!(kind = req.target.def.kind, name = meta::name(&obj), "create");
    persist(server, req, obj, &warnings).await
}

/// Stores a prepared object (not on a dry run), allocating a Service's addresses first, and
/// answers 201 with it.
pub async fn persist(server: &ApiServer, req: &Request, mut obj: Value, warnings: &[String]) -> ApiResult<Response> {
    let def = req.target.def;
    // One service create at a time, so two cannot take the same address.
    let _guard = match def.kind == "Service" && def.group.is_empty() {
        true => {
            let guard = server.service_lock.lock().await;
            alloc::allocate(&server.cache, server.service_cidr, def, &mut obj, None)
                .map_err(|c| ApiError::invalid(def, meta::name(&obj), &c))?;
            Some(guard)
        }
        false => None,
    };
    admission::charge_quota(server, def, &obj, req.query.is_dry_run()).await?;
    let created = if req.query.is_dry_run() {
        // A dry run answers as the real create would, including AlreadyExists.
        let name = meta::name(&obj);
        if storage::load(server, &def.key(meta::meta_str(&obj, "namespace"), name))
            .await?
            .is_some()
        {
            return Err(ApiError::already_exists(def, name));
        }
        Arc::new(obj)
    } else {
        store_new(server, def, obj).await?
    };
    Ok(output::object_response(
        def,
        &read::view(def, &created),
        req.format(),
        StatusCode::CREATED,
        warnings,
    ))
}
