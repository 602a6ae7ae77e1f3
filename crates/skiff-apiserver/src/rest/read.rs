//! GET of one object and LIST, served from the watch cache.

use std::sync::Arc;

use axum::response::Response;
use http::StatusCode;
use serde_json::{json, Value};
use skiff_api::registry::ResourceDef;
use skiff_api::selector::{FieldSelector, LabelSelector};

use super::list_options::{self, ReadAt};
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

/// `GET .../{name}` (and `.../{name}/status`).
pub fn get(server: &ApiServer, req: &Request, name: &str) -> ApiResult<Response> {
    let def = req.target.def;
    let key = def.key(req.target.namespace.as_deref(), name);
    if req.format() == Format::Json && def.storage_group.is_none() {
        // The cached bytes are the object as served (in Go field order): no parse, no serialize.
        let json = server
            .cache
            .get_raw(def, &key)
            .ok_or_else(|| ApiError::not_found(def, name))?;
        return Ok(output::bytes_response(StatusCode::OK, json));
    }
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

/// How long a LIST at a revision the cache has not reached waits for it (upstream's 3 s).
const FRESHNESS_WAIT: std::time::Duration = std::time::Duration::from_secs(3);

/// `GET` of a collection. Paged and Exact lists read one snapshot: a continue token carries the
/// revision of its first page, and later pages are served as of it from the cache's history.
pub async fn list(server: &ApiServer, req: &Request) -> ApiResult<Response> {
    let def = req.target.def;
    let sel = Selectors::parse(req)?;
    let limit = req.query.limit()?;
    let read = list_options::list_read(req, limit)?;
    let prefix = def.namespace_prefix(req.target.namespace.as_deref());
    let from = read.start.as_ref().map(|s| format!("{prefix}{s}"));
    let from = from.as_deref();
    if let ReadAt::AtLeast(rv) | ReadAt::Exact(rv) = read.at {
        if rv > server.cache.revision()
            && tokio::time::timeout(FRESHNESS_WAIT, server.cache.wait_for(rv))
                .await
                .is_err()
        {
            return Err(list_options::too_large(rv, server.cache.revision()));
        }
    }
    let (items, rev) = match read.at {
        ReadAt::Latest | ReadAt::AtLeast(_) => server.cache.list_raw(def, &prefix, from),
        ReadAt::Exact(at) => match server.cache.list_raw_at(def, &prefix, from, at) {
            Ok(r) => r,
            Err(oldest) if read.continued => {
                tracing::debug!(at, oldest, "continue token older than the history kept");
                let start = read.start.as_deref().unwrap_or_default();
                let body = list_options::expired_continue(start);
                return Ok(output::bytes_response(
                    StatusCode::GONE,
                    skiff_api::protobuf::to_vec_ordered(&body),
                ));
            }
            Err(oldest) => {
                tracing::debug!(at, oldest, "exact list older than the history kept");
                return Err(list_options::expired_list());
            }
        },
    };
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
    let mut meta = ListMeta {
        resource_version: rev.to_string(),
        continue_: None,
        remaining_item_count: None,
    };
    if remaining > 0 {
        let last = last_key.as_deref().unwrap_or_default();
        let last = last.strip_prefix(prefix.as_str()).unwrap_or(last);
        meta.continue_ = Some(list_options::encode_continue(last, rev));
        meta.remaining_item_count = Some(remaining);
    }
    let meta_value = || serde_json::to_value(&meta).unwrap_or_default();
    match req.format() {
        Format::Table(include) => {
            let body = output::table(
                def,
                page.iter().filter_map(|(_, o)| o.as_deref()),
                include,
                meta_value(),
                true,
            );
            Ok(output::json_response(StatusCode::OK, &body, &[]))
        }
        Format::Metadata => {
            let items: Vec<Value> = page
                .iter()
                .filter_map(|(_, o)| o.as_deref())
                .map(output::partial)
                .collect();
            let body = json!({"kind": "PartialObjectMetadataList", "apiVersion": "meta.k8s.io/v1", "metadata": meta_value(), "items": items});
            Ok(output::json_response(StatusCode::OK, &body, &[]))
        }
        Format::Json => {
            // Items are copied from the cache's serialized objects, not serialized again.
            let mut out = Vec::with_capacity(256 + page.len() * 2048);
            // kind, apiVersion, metadata, items: the Go order of a List.
            let head = serde_json::to_vec(&ListHead {
                kind: &def.list_kind(),
                api_version: &def.api_version(),
                metadata: &meta,
            })
            .unwrap_or_default();
            out.extend_from_slice(&head[..head.len() - 1]);
            out.extend_from_slice(b",\"items\":[");
            for (i, (json, obj)) in page.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                match obj {
                    // A converted view is serialized; everything else is copied as cached.
                    Some(obj) if shared_storage => out.extend_from_slice(&skiff_api::protobuf::to_vec_ordered(obj)),
                    _ => out.extend_from_slice(json),
                }
            }
            out.extend_from_slice(b"]}");
            Ok(output::bytes_response(StatusCode::OK, out))
        }
    }
}

/// A list's metadata, fields in Go order (ListMeta).
#[derive(serde::Serialize)]
#[serde(rename_all = "camelCase")]
struct ListMeta {
    resource_version: String,
    #[serde(rename = "continue", skip_serializing_if = "Option::is_none")]
    continue_: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    remaining_item_count: Option<i64>,
}

/// The head of a JSON list body, fields in Go order.
#[derive(serde::Serialize)]
#[serde(rename_all = "camelCase")]
struct ListHead<'a> {
    kind: &'a str,
    api_version: &'a str,
    metadata: &'a ListMeta,
}
