//! The `scale` subresource: an `autoscaling/v1` Scale view of `spec.replicas`.

use axum::body::Body;
use axum::response::Response;
use http::StatusCode;
use serde_json::{json, Value};
use skiff_api::patch;
use skiff_api::registry::ResourceDef;
use skiff_api::selector::LabelSelector;

use super::{update, Request};
use crate::errors::{ApiError, ApiResult};
use crate::request::Target;
use crate::state::ApiServer;
use crate::{body, meta, output};

/// The label selector of a scalable object as a string (`app=web`).
fn selector_string(obj: &Value) -> String {
    let sel = &obj["spec"]["selector"];
    // ReplicationControllers have a plain map selector.
    let as_label_selector = if sel.get("matchLabels").is_some() || sel.get("matchExpressions").is_some() {
        sel.clone()
    } else {
        json!({"matchLabels": sel})
    };
    LabelSelector::from_json(&as_label_selector)
        .map(|s| s.to_string())
        .unwrap_or_default()
}

/// The Scale of an object.
fn scale_of(obj: &Value) -> Value {
    let m = &obj["metadata"];
    json!({
        "kind": "Scale",
        "apiVersion": "autoscaling/v1",
        "metadata": {
            "name": m["name"],
            "namespace": m["namespace"],
            "uid": m["uid"],
            "resourceVersion": m["resourceVersion"],
            "creationTimestamp": m["creationTimestamp"],
        },
        "spec": {"replicas": obj["spec"]["replicas"].as_i64().unwrap_or(0)},
        "status": {"replicas": obj["status"]["replicas"].as_i64().unwrap_or(0), "selector": selector_string(obj)},
    })
}

fn main_target(req: &Request) -> Target {
    Target {
        sub: None,
        ..req.target.clone()
    }
}

/// `GET .../{name}/scale`.
pub fn get(server: &ApiServer, req: &Request, name: &str) -> ApiResult<Response> {
    let def: &ResourceDef = req.target.def;
    let key = def.key(req.target.namespace.as_deref(), name);
    let obj = server
        .cache
        .get(def, &key)
        .ok_or_else(|| ApiError::not_found(def, name))?;
    Ok(output::json_response(StatusCode::OK, &scale_of(&obj), &[]))
}

/// `PUT` or `PATCH .../{name}/scale`: changes `spec.replicas` of the object.
pub async fn update(server: &ApiServer, req: &Request, name: &str, body: Body, is_patch: bool) -> ApiResult<Response> {
    let bytes = body::read(body).await?;
    let ct = body::content_type(&req.headers);
    let doc = if is_patch {
        body::parse_json(&bytes)?
    } else {
        body::decode_object(&req.headers, &bytes)?
    };
    let main = Request {
        target: main_target(req),
        query: Default::default(),
        headers: req.headers.clone(),
        raw_query: String::new(),
    };
    let written = update::modify(server, &main, name, |cur| {
        let scale = scale_of(cur);
        let new_scale = if !is_patch {
            doc.clone()
        } else if ct == "application/json-patch+json" {
            patch::json_patch(&scale, &doc).map_err(|e| ApiError::new(422, "Invalid", e.to_string()))?
        } else {
            // A Scale has no lists, so a strategic merge patch is a merge patch.
            patch::merge_patch(&scale, &doc).map_err(|e| ApiError::bad_request(e.to_string()))?
        };
        let replicas = new_scale["spec"]["replicas"].as_i64().unwrap_or(0);
        if replicas < 0 {
            let cause = skiff_api::validation::Cause {
                reason: "FieldValueInvalid".into(),
                message: format!("Invalid value: {replicas}: must be greater than or equal to 0"),
                field: "spec.replicas".into(),
            };
            return Err(ApiError::invalid(req.target.def, name, &[cause]));
        }
        let mut obj = cur.clone();
        obj["spec"]["replicas"] = json!(replicas);
        let pinned = meta::meta_str(&new_scale, "resourceVersion").filter(|s| !s.is_empty());
        let m = meta::meta_mut(&mut obj);
        match pinned {
            Some(rv) => m.insert("resourceVersion".into(), json!(rv)),
            None => m.remove("resourceVersion"),
        };
        Ok(obj)
    })
    .await?;
    Ok(output::json_response(
        StatusCode::OK,
        &scale_of(&written.obj),
        &written.warnings,
    ))
}
