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

async fn route(server: Server, method: Method, req: Request, body: Body) -> ApiResult<Response> {
    let name = req.target.name.clone();
    let sub = req.target.sub.clone();
    if let Some(s) = sub.as_deref() {
        let known = req.target.def.subresource(s).is_some() || (req.target.def.kind == "Namespace" && s == "finalize");
        if !known {
            return Err(ApiError::no_route());
        }
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
