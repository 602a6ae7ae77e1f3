//! GET of one object and LIST, served from the watch cache.

use std::sync::Arc;

use axum::response::Response;
use base64::Engine;
use http::StatusCode;
use serde_json::{json, Value};
use skiff_api::registry::ResourceDef;
use skiff_api::selector::{FieldSelector, LabelSelector};

use super::Request;
use crate::convert;
use crate::errors::{ApiError, ApiResult};
use crate::output::{self, Format};
use crate::state::ApiServer;
use bytes::Bytes;

/// The object as `def` serves it (converted when the resource is a view of shared storage).
pub fn view(def: &ResourceDef, obj: &Arc<Value>) -> Arc<Value> {
    match convert::to_view(def, obj) {
        Some(v) => Arc::new(v),
        None => obj.clone(),
    }
}

/// Label and field selectors of a request, parsed and checked against the resource.
pub struct Selectors {
    labels: LabelSelector,
    fields: FieldSelector,
}

impl Selectors {
    /// Parses `labelSelector` and `fieldSelector`; bad ones are 400.
    pub fn parse(req: &Request) -> ApiResult<Selectors> {
        let def = req.target.def;
        let labels = LabelSelector::parse(req.query.label_selector.as_deref().unwrap_or(""))
            .map_err(|e| ApiError::bad_request(format!("unable to parse requirement: {e}")))?;
        let fields = FieldSelector::parse(req.query.field_selector.as_deref().unwrap_or(""))
            .map_err(|e| ApiError::bad_request(e.to_string()))?;
        fields
            .check_supported(def)
            .map_err(|e| ApiError::bad_request(e.to_string()))?;
        Ok(Selectors { labels, fields })
    }

    /// Whether neither selector restricts anything.
    pub fn is_empty(&self) -> bool {
        self.labels.is_empty() && self.fields.is_empty()
    }

    /// Whether an object (in the served view) matches both selectors.
    pub fn matches(&self, def: &ResourceDef, obj: &Value) -> bool {
        self.labels.matches(obj["metadata"]["labels"].as_object()) && self.fields.matches(def, obj)
    }
}

/// The continue token: where the previous page ended.
#[derive(Debug, serde::Serialize, serde::Deserialize)]
struct ContinueToken {
    rv: i64,
    start: String,
}

fn decode_continue(s: &str) -> ApiResult<ContinueToken> {
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(s)
        .map_err(|_| ApiError::bad_request("continue key is not valid: illegal base64 data"))?;
    serde_json::from_slice(&bytes).map_err(|_| {
        ApiError::bad_request(
            "continue key is not valid: incorrect encoded start resourceVersion (version meta.k8s.io/v1)",
        )
    })
}

fn encode_continue(t: &ContinueToken) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(serde_json::to_vec(t).unwrap_or_default())
}

/// `GET .../{name}` (and `.../{name}/status`).
pub fn get(server: &ApiServer, req: &Request, name: &str) -> ApiResult<Response> {
    let def = req.target.def;
    let key = def.key(req.target.namespace.as_deref(), name);
    let obj = server
        .cache
        .get(def, &key)
        .ok_or_else(|| ApiError::not_found(def, name))?;
    Ok(output::object_response(
        def,
        &view(def, &obj),
        req.format(),
        StatusCode::OK,
        &[],
    ))
}

/// `GET` of a collection.
pub fn list(server: &ApiServer, req: &Request) -> ApiResult<Response> {
    let def = req.target.def;
    let sel = Selectors::parse(req)?;
    let limit = req.query.limit()?;
    let prefix = def.namespace_prefix(req.target.namespace.as_deref());
    let token = match req.query.continue_.as_deref().filter(|c| !c.is_empty()) {
        Some(c) => Some(decode_continue(c)?),
        None => None,
    };
    if let Some(t) = &token {
        if !t.start.starts_with(&prefix) {
            return Err(ApiError::bad_request(
                "continue key is not valid: key does not match the request",
            ));
        }
    }
    let (items, rev) = server
        .cache
        .list_raw(def, &prefix, token.as_ref().map(|t| t.start.as_str()));
    // Objects are parsed only when something reads them: a selector, a conversion, a table.
    let shared_storage = def.storage_group.is_some();
    let parse = shared_storage || !sel.is_empty() || req.format() != Format::Json;
    let mut page: Vec<(Bytes, Option<Arc<Value>>)> = Vec::new();
    let mut last_key = None;
    let mut remaining = 0i64;
    for (key, json) in items {
        let obj = if parse {
            let Ok(obj) = serde_json::from_slice::<Value>(&json) else {
                continue;
            };
            let obj = view(def, &Arc::new(obj));
            if !sel.matches(def, &obj) {
                continue;
            }
            Some(obj)
        } else {
            None
        };
        if limit > 0 && page.len() == limit {
            remaining += 1;
        } else {
            page.push((json, obj));
            last_key = Some(key);
        }
    }
    let rv = token.as_ref().map_or(rev, |t| t.rv);
    let mut meta = json!({"resourceVersion": rv.to_string()});
    if remaining > 0 {
        let start = last_key.unwrap_or_default();
        meta["continue"] = json!(encode_continue(&ContinueToken { rv, start }));
        meta["remainingItemCount"] = json!(remaining);
    }
    match req.format() {
        Format::Table(include) => {
            let body = output::table(def, page.iter().filter_map(|(_, o)| o.as_deref()), include, meta, true);
            Ok(output::json_response(StatusCode::OK, &body, &[]))
        }
        Format::Metadata => {
            let items: Vec<Value> = page
                .iter()
                .filter_map(|(_, o)| o.as_deref())
                .map(output::partial)
                .collect();
            let body = json!({"kind": "PartialObjectMetadataList", "apiVersion": "meta.k8s.io/v1", "metadata": meta, "items": items});
            Ok(output::json_response(StatusCode::OK, &body, &[]))
        }
        Format::Json => {
            // Items are copied from the cache's serialized objects, not serialized again.
            let mut out = Vec::with_capacity(256 + page.len() * 2048);
            let head = json!({"kind": def.list_kind(), "apiVersion": def.api_version(), "metadata": meta});
            let head = serde_json::to_vec(&head).unwrap_or_default();
            out.extend_from_slice(&head[..head.len() - 1]);
            out.extend_from_slice(b",\"items\":[");
            for (i, (json, obj)) in page.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                match obj {
                    // A converted view is serialized; everything else is copied as cached.
                    Some(obj) if shared_storage => {
                        out.extend_from_slice(&serde_json::to_vec(&**obj).unwrap_or_default())
                    }
                    _ => out.extend_from_slice(json),
                }
            }
            out.extend_from_slice(b"]}");
            Ok(output::bytes_response(StatusCode::OK, out))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn continue_tokens_round_trip() {
        let t = encode_continue(&ContinueToken {
            rv: 7,
            start: "/registry/core/pods/a/b".into(),
        });
        let d = decode_continue(&t).unwrap();
        assert_eq!((d.rv, d.start.as_str()), (7, "/registry/core/pods/a/b"));
        assert_eq!(decode_continue("!!").unwrap_err().code, 400);
    }
}
