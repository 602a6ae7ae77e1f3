//! Response encoding: plain JSON objects and lists, or server-side Tables when asked for.

use axum::response::{IntoResponse, Response};
use http::{HeaderMap, HeaderValue, StatusCode};
use serde_json::{json, Value};
use skiff_api::registry::ResourceDef;
use skiff_api::table;

/// What the client asked the body to be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// The object or list itself.
    Json,
    /// A `meta.k8s.io/v1` Table.
    Table(IncludeObject),
}

/// `includeObject` of Table requests.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IncludeObject {
    /// PartialObjectMetadata (default).
    Metadata,
    /// The full object.
    Object,
    /// Nothing.
    None,
}

impl Format {
    /// Reads the Accept header and `includeObject` parameter.
    pub fn negotiate(headers: &HeaderMap, include: Option<&str>) -> Format {
        let accept = headers
            .get(http::header::ACCEPT)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        let table = accept
            .split(',')
            .any(|part| part.contains("as=Table") && part.contains("g=meta.k8s.io"));
        if !table {
            return Format::Json;
        }
        Format::Table(match include {
            Some("Object") => IncludeObject::Object,
            Some("None") => IncludeObject::None,
            _ => IncludeObject::Metadata,
        })
    }
}

/// A JSON response with a status code and optional Warning headers.
pub fn json_response(code: StatusCode, body: &impl serde::Serialize, warnings: &[String]) -> Response {
    let bytes = serde_json::to_vec(body).unwrap_or_default();
    let mut resp = (code, bytes).into_response();
    resp.headers_mut()
        .insert(http::header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    add_warnings(resp.headers_mut(), warnings);
    resp
}

/// Adds `Warning: 299 - "text"` headers, quoting as RFC 7234 requires (kubectl drops
/// unescaped ones).
pub fn add_warnings(headers: &mut HeaderMap, warnings: &[String]) {
    for w in warnings {
        let escaped = w.replace('\\', "\\\\").replace('"', "\\\"");
        if let Ok(v) = HeaderValue::from_str(&format!("299 - \"{escaped}\"")) {
            headers.append(http::header::WARNING, v);
        }
    }
}

/// One Table row for an object.
pub fn table_row(def: &ResourceDef, obj: &Value, include: IncludeObject, now: jiff::Timestamp) -> Value {
    let object = match include {
        IncludeObject::Metadata => json!({
            "kind": "PartialObjectMetadata",
            "apiVersion": "meta.k8s.io/v1",
            "metadata": obj.get("metadata").cloned().unwrap_or_else(|| json!({})),
        }),
        IncludeObject::Object => obj.clone(),
        IncludeObject::None => Value::Null,
    };
    json!({"cells": table::cells(def, obj, now), "object": object})
}

/// A Table of objects; `with_columns = false` leaves out the column definitions (watch
/// events after the first).
pub fn table<'a>(
    def: &ResourceDef,
    objs: impl IntoIterator<Item = &'a Value>,
    include: IncludeObject,
    meta: Value,
    with_columns: bool,
) -> Value {
    let now = jiff::Timestamp::now();
    let rows: Vec<Value> = objs.into_iter().map(|o| table_row(def, o, include, now)).collect();
    let mut t = json!({"kind": "Table", "apiVersion": "meta.k8s.io/v1", "metadata": meta, "rows": rows});
    if with_columns {
        t["columnDefinitions"] = Value::Array(table::columns(def));
    }
    t
}

/// Encodes one object as JSON or as a one-row Table.
pub fn object_response(
    def: &ResourceDef,
    obj: &Value,
    format: Format,
    code: StatusCode,
    warnings: &[String],
) -> Response {
    match format {
        Format::Json => json_response(code, obj, warnings),
        Format::Table(include) => {
            let rv = obj["metadata"]["resourceVersion"].clone();
            json_response(
                code,
                &table(def, [obj], include, json!({"resourceVersion": rv}), true),
                warnings,
            )
        }
    }
}
