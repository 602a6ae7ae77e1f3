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
    /// Metadata only: `PartialObjectMetadata` objects and `PartialObjectMetadataList` lists, as
    /// metadata informers (the garbage collector's) ask for.
    Metadata,
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
        let wants = |what: &str| {
            accept
                .split(',')
                .any(|part| part.contains(what) && part.contains("g=meta.k8s.io"))
        };
        if wants("as=PartialObjectMetadata") {
            return Format::Metadata;
        }
        if !wants("as=Table") {
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

/// A response with an already serialized JSON body.
pub fn bytes_response(code: StatusCode, body: impl Into<bytes::Bytes>) -> Response {
    let mut resp = (code, body.into()).into_response();
    resp.headers_mut()
        .insert(http::header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
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

/// The `object` of a Table row.
#[derive(serde::Serialize)]
#[serde(untagged)]
enum RowObject<'a> {
    /// PartialObjectMetadata borrowing the object's metadata.
    Metadata {
        kind: &'static str,
        #[serde(rename = "apiVersion")]
        api_version: &'static str,
        metadata: &'a Value,
    },
    /// The whole object.
    Object(&'a Value),
    /// `includeObject=None`.
    None(Option<()>),
}

/// One Table row.
#[derive(serde::Serialize)]
struct Row<'a> {
    cells: Vec<Value>,
    object: RowObject<'a>,
}

/// A `meta.k8s.io/v1` Table, borrowing the objects of its rows.
#[derive(serde::Serialize)]
pub struct Table<'a> {
    kind: &'static str,
    #[serde(rename = "apiVersion")]
    api_version: &'static str,
    metadata: Value,
    #[serde(rename = "columnDefinitions", skip_serializing_if = "Option::is_none")]
    columns: Option<Vec<Value>>,
    rows: Vec<Row<'a>>,
}

static EMPTY_META: Value = Value::Null;

/// The `PartialObjectMetadata` of an object.
pub fn partial(obj: &Value) -> Value {
    json!({
        "kind": "PartialObjectMetadata",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": obj.get("metadata").unwrap_or(&EMPTY_META),
    })
}

fn table_row<'a>(def: &ResourceDef, obj: &'a Value, include: IncludeObject, now: jiff::Timestamp) -> Row<'a> {
    let object = match include {
        IncludeObject::Metadata => RowObject::Metadata {
            kind: "PartialObjectMetadata",
            api_version: "meta.k8s.io/v1",
            metadata: obj.get("metadata").unwrap_or(&EMPTY_META),
        },
        IncludeObject::Object => RowObject::Object(obj),
        IncludeObject::None => RowObject::None(None),
    };
    Row {
        cells: table::cells(def, obj, now),
        object,
    }
}

/// A Table of objects; `with_columns = false` leaves out the column definitions (watch
/// events after the first).
pub fn table<'a>(
    def: &ResourceDef,
    objs: impl IntoIterator<Item = &'a Value>,
    include: IncludeObject,
    meta: Value,
    with_columns: bool,
) -> Table<'a> {
    let now = jiff::Timestamp::now();
    let rows = objs.into_iter().map(|o| table_row(def, o, include, now)).collect();
    Table {
        kind: "Table",
        api_version: "meta.k8s.io/v1",
        metadata: meta,
        columns: with_columns.then(|| table::columns(def)),
        rows,
    }
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
        Format::Json => json_response(code, &skiff_api::protobuf::Ordered::object(obj), warnings),
        Format::Metadata => json_response(code, &partial(obj), warnings),
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
