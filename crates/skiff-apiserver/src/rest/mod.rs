//! REST handlers of resource paths: get, list, watch, create, update, patch, delete,
//! deletecollection and the subresources.

pub(crate) mod create;
pub(crate) mod delete;
mod fields;
mod list_options;
mod node_proxy;

pub use node_proxy::connect;
mod read;
mod scale;
pub mod storage;
pub(crate) mod update;
mod watch;

use axum::body::Body;
use axum::response::{IntoResponse, Response};
use http::{HeaderMap, Method};

use crate::errors::{ApiError, ApiResult};
use crate::output::Format;
use crate::request::{Query, Target};
use storage::Server;

/// Everything a handler needs about one request.
pub struct Request {
    /// The addressed resource.
    pub target: Target,
    /// Query parameters.
    pub query: Query,
    /// Request headers.
    pub headers: HeaderMap,
    /// The query string as sent (forwarded as is to node agents).
    pub raw_query: String,
}

impl Request {
    /// The response format the client asked for.
    pub fn format(&self) -> Format {
        Format::negotiate(&self.headers, self.query.include_object.as_deref())
    }
}

/// Routes a resource request by method and path shape.
pub async fn dispatch(server: Server, method: Method, req: Request, body: Body) -> Response {
    let result = route(server, method, req, body).await;
    result.unwrap_or_else(IntoResponse::into_response)
}

/// Refuses `dryRun` values other than `All`, as upstream's `ValidateDryRun` (422 naming the
/// options kind of the verb).
pub(crate) fn check_dry_run(values: &[String], options_kind: &str) -> ApiResult<()> {
    if values.iter().all(|v| v == "All") {
        return Ok(());
    }
    // Go's %#v of the []string.
    let list: Vec<String> = values.iter().map(|v| format!("{v:?}")).collect();
    let message = format!(
        "Unsupported value: []string{{{}}}: supported values: \"All\"",
        list.join(", ")
    );
    Err(ApiError {
        details: Some(serde_json::json!({
            "group": "meta.k8s.io",
            "kind": options_kind,
            "causes": [{"reason": "FieldValueNotSupported", "message": message, "field": "dryRun"}],
        })),
        ..ApiError::new(
            422,
            "Invalid",
            format!("{options_kind}.meta.k8s.io \"\" is invalid: dryRun: {message}"),
        )
    })
}

/// The `dryRun` query values of a request (the parameter may repeat).
fn dry_run_values(raw_query: &str) -> Vec<String> {
    serde_urlencoded::from_str::<Vec<(String, String)>>(raw_query)
        .unwrap_or_default()
        .into_iter()
        .filter(|(k, _)| k == "dryRun")
        .map(|(_, v)| v)
        .collect()
}

async fn route(server: Server, method: Method, req: Request, body: Body) -> ApiResult<Response> {
    let options_kind = match method {
        Method::POST => Some("CreateOptions"),
        Method::PUT => Some("UpdateOptions"),
        Method::PATCH => Some("PatchOptions"),
        Method::DELETE => Some("DeleteOptions"),
        _ => None,
    };
    if let Some(kind) = options_kind {
        check_dry_run(&dry_run_values(&req.raw_query), kind)?;
    }
    let name = req.target.name.clone();
    let sub = req.target.sub.clone();
    if let Some(s) = sub.as_deref() {
        let known = req.target.def.subresource(s).is_some() || (req.target.def.kind == "Namespace" && s == "finalize");
        if !known {
            return Err(ApiError::no_route());
        }
    }
    // A verb the resource does not serve (the read-only APIServices, deletecollection of
    // namespaces) is 405, as upstream answers where its storage installs no route.
    if sub.is_none() {
        let verb = match (&method, name.is_some()) {
            (&Method::POST, false) => Some("create"),
            (&Method::PUT, true) => Some("update"),
            (&Method::PATCH, true) => Some("patch"),
            (&Method::DELETE, true) => Some("delete"),
            (&Method::DELETE, false) => Some("deletecollection"),
            _ => None,
        };
        if verb.is_some_and(|v| !req.target.def.verbs.contains(&v)) {
            return Err(ApiError::method_not_allowed());
        }
    }
    // Lists, watches and deletecollection decode ListOptions, which refuses a bad timeoutSeconds.
    if name.is_none() && matches!(method, Method::GET | Method::DELETE) {
        req.query.timeout_seconds()?;
    }
    match (method, name.as_deref(), sub.as_deref()) {
        (Method::GET, None, _) if req.query.is_watch() => watch::watch(server, req).await,
        (Method::GET, None, _) => read::list(&server, &req).await,
        (Method::GET, Some(n), Some("scale")) => scale::get(&server, &req, n),
        (Method::GET, Some(n), Some("log")) => node_proxy::log(&server, &req, n).await,
        (Method::GET, Some(n), _) => read::get(&server, &req, n),
        (Method::POST, None, None) => create::create(&server, &req, body).await,
        (Method::POST, Some(n), Some("binding")) => update::binding(&server, &req, n, body).await,
        (Method::POST, Some(n), Some("eviction")) => delete::evict(&server, &req, n, body).await,
        (Method::PUT, Some(n), Some("scale")) => scale::update(&server, &req, n, body, false).await,
        (Method::PATCH, Some(n), Some("scale")) => scale::update(&server, &req, n, body, true).await,
        (Method::PUT, Some(n), _) => update::update(&server, &req, n, body).await,
        (Method::PATCH, Some(n), _) => update::patch(&server, &req, n, body).await,
        (Method::DELETE, Some(n), None) => delete::delete(&server, &req, n, body).await,
        (Method::DELETE, None, None) => delete::delete_collection(&server, &req, body).await,
        _ => Err(ApiError::method_not_allowed()),
    }
}
