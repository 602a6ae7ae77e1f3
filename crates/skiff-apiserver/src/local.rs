//! An in-process client: kube-rs over the API server's router, for components running in the
//! same process (DESIGN principle 1: the same API and code path, without TLS and sockets).

use std::sync::Arc;

use http::HeaderValue;
use tower::ServiceBuilder;

use crate::state::ApiServer;

/// A kube-rs client whose requests go straight to this server's router as the admin user.
pub fn client(server: Arc<ApiServer>) -> kube::Client {
    let token = HeaderValue::from_str(&format!("Bearer {}", server.admin_token)).ok();
    let router = crate::server::router(server);
    let svc = ServiceBuilder::new()
        .map_request(move |mut req: http::Request<kube::client::Body>| {
            if let Some(t) = &token {
                req.headers_mut().insert(http::header::AUTHORIZATION, t.clone());
            }
            req.map(axum::body::Body::new)
        })
        .service(router);
    kube::Client::new(svc, "default")
}
