//! TLS and authentication of the kubelet API: a serving certificate (signed by the cluster CA
//! when its key is at hand, self-signed otherwise, as the kubelet does without
//! `--tls-cert-file`), client certificates verified against the cluster CA (the kubelet's
//! `--client-ca-file`), and HTTP/1.1 with upgrades for the streaming endpoints.
//!
//! Every request is authenticated: without a verified client certificate the answer is
//! `401 Unauthorized`, as the kubelet's with anonymous authentication off. Until authorization
//! (SubjectAccessReview on `nodes/proxy`, …) comes with RBAC, only the API server's
//! kubelet-client identity ([`KUBELET_CLIENT_CN`]) is allowed; other users get upstream's 403.

use std::convert::Infallible;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::response::Response;
use axum::Router;
use http::StatusCode;
use hyper_util::rt::TokioIo;
use rcgen::{CertificateParams, DnType, ExtendedKeyUsagePurpose, Issuer, KeyPair, SanType};
use rustls::server::WebPkiClientVerifier;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;
use tower::ServiceExt;

/// Common name of the API server's client certificate for kubelets (kube-apiserver's
/// `--kubelet-client-certificate`).
pub const KUBELET_CLIENT_CN: &str = "kube-apiserver-kubelet-client";
/// Organization (group) of that certificate.
pub const KUBELET_CLIENT_GROUP: &str = "system:masters";

/// How long a client may take to complete the TLS handshake.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// The cluster CA as a node agent knows it.
#[derive(Clone)]
pub struct ClusterCa {
    /// The CA certificate (PEM): verifies client certificates.
    pub cert_pem: String,
    /// The CA key (PEM), for nodes inside the server's process: signs the serving certificate.
    /// Without it the serving certificate is self-signed.
    pub key_pem: Option<String>,
}

impl std::fmt::Debug for ClusterCa {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClusterCa")
            .field("key_pem", &self.key_pem.as_ref().map(|_| "<redacted>"))
            .finish_non_exhaustive()
    }
}

/// Why TLS for the kubelet API could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// Certificate generation failed.
    #[error("kubelet serving certificate: {0}")]
    Cert(#[from] rcgen::Error),
    /// rustls refused the material.
    #[error("kubelet TLS: {0}")]
    Tls(#[from] rustls::Error),
    /// A PEM block is malformed, or the CA is unusable.
    #[error("kubelet TLS: {0}")]
    Pem(String),
}

/// A serving certificate and key (PEM) for a node named `node` at `node_ip`: signed by the CA
/// when its key is known (`system:node:<name>`, as a kubelet's approved serving CSR), else
/// self-signed (`<host>@<unix time>`, as the kubelet's default).
pub fn serving_cert(ca: Option<&ClusterCa>, node: &str, node_ip: &str) -> Result<(String, String), TlsError> {
    let mut names = vec![
        node.to_string(),
        node_ip.to_string(),
        "localhost".into(),
        "127.0.0.1".into(),
    ];
    names.sort();
    names.dedup();
    let mut params = CertificateParams::new(Vec::<String>::new())?;
    params.subject_alt_names = names
        .iter()
        .filter_map(|n| match n.parse::<IpAddr>() {
            Ok(ip) => Some(SanType::IpAddress(ip)),
            Err(_) => n.clone().try_into().ok().map(SanType::DnsName),
        })
        .collect();
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    params.not_after = rcgen::date_time_ymd(2126, 1, 1);
    let key = KeyPair::generate()?;
    let cert = match ca.and_then(|ca| ca.key_pem.as_ref().map(|k| (ca, k))) {
        Some((ca, ca_key)) => {
            params
                .distinguished_name
                .push(DnType::CommonName, format!("system:node:{node}"));
            params.distinguished_name.push(DnType::OrganizationName, "system:nodes");
            let ca_key = KeyPair::from_pem(ca_key)?;
            let issuer = Issuer::from_ca_cert_pem(&ca.cert_pem, &ca_key)?;
            params.signed_by(&key, &issuer)?
        }
        None => {
            let now = jiff::Timestamp::now().as_second();
            params
                .distinguished_name
                .push(DnType::CommonName, format!("{node}@{now}"));
            params.self_signed(&key)?
        }
    };
    Ok((cert.pem(), key.serialize_pem()))
}

/// The rustls configuration of the kubelet API: the serving certificate, optional client
/// certificates that must chain to the cluster CA (a connection without one is accepted so
/// that it can be answered 401 in HTTP), and HTTP/1.1 only (SPDY and WebSocket upgrades).
/// Without a CA no client certificate is asked for, so every request is answered 401.
pub fn server_config(
    ca: Option<&ClusterCa>,
    cert_pem: &str,
    key_pem: &str,
) -> Result<Arc<rustls::ServerConfig>, TlsError> {
    let pem = |e: rustls_pki_types::pem::Error| TlsError::Pem(e.to_string());
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let verifier = match ca {
        Some(ca) => {
            let mut roots = rustls::RootCertStore::empty();
            for c in CertificateDer::pem_slice_iter(ca.cert_pem.as_bytes()) {
                roots.add(c.map_err(pem)?)?;
            }
            WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider.clone())
                .allow_unauthenticated()
                .build()
                .map_err(|e| TlsError::Pem(format!("cluster CA: {e}")))?
        }
        None => WebPkiClientVerifier::no_client_auth(),
    };
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(cert_pem.as_bytes())
        .collect::<Result<_, _>>()
        .map_err(pem)?;
    let key = PrivateKeyDer::from_pem_slice(key_pem.as_bytes()).map_err(pem)?;
    let mut cfg = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_client_cert_verifier(verifier)
        .with_single_cert(certs, key)?;
    cfg.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(cfg))
}

/// An authenticated user of the kubelet API.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct User {
    /// The user name (a client certificate's common name).
    pub name: String,
    /// Its groups (the certificate's organizations).
    pub groups: Vec<String>,
}

/// The user of a client certificate that rustls already verified against the cluster CA.
fn cert_user(der: &CertificateDer<'_>) -> Option<User> {
    let (_, cert) = x509_parser::parse_x509_certificate(der.as_ref()).ok()?;
    let subject = cert.subject();
    let name = subject.iter_common_name().next()?.as_str().ok()?.to_string();
    let groups = subject
        .iter_organization()
        .filter_map(|o| o.as_str().ok().map(str::to_string))
        .collect();
    Some(User { name, groups })
}

/// Who sent a request on a connection whose verified client certificate gave `peer`.
fn authenticate(peer: Option<&User>, _headers: &http::HeaderMap) -> Option<User> {
    if let Some(u) = peer {
        return Some(u.clone());
    }
    // Seam for `Authorization: Bearer …`: checked with a TokenReview, as the kubelet's
    // `--authentication-token-webhook`; that comes with the RBAC issue. Until then a request
    // without the API server's client certificate is unauthenticated.
    None
}

/// The verb of kubelet's authorizer attributes for an HTTP method.
fn verb(method: &http::Method) -> &'static str {
    match *method {
        http::Method::POST => "create",
        http::Method::PUT => "update",
        http::Method::PATCH => "patch",
        http::Method::DELETE => "delete",
        _ => "get",
    }
}

fn text(status: StatusCode, msg: String) -> Response {
    let mut r = Response::new(Body::from(msg));
    *r.status_mut() = status;
    r.headers_mut().insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    r
}

/// upstream kubelet's authentication and authorization filter: 401 `Unauthorized` without
/// credentials; 403 `Forbidden (user=…, verb=…, resource=nodes, subresource=proxy)` for a
/// user other than the API server (every path here is `proxy` in kubelet's attributes).
fn access<B>(peer: Option<&User>, req: &http::Request<B>) -> Result<User, (StatusCode, String)> {
    let Some(user) = authenticate(peer, req.headers()) else {
        tracing::debug!(path = %req.uri().path(), "kubelet API: unauthenticated request refused");
        return Err((StatusCode::UNAUTHORIZED, "Unauthorized".into()));
    };
    if user.name != KUBELET_CLIENT_CN {
        tracing::debug!(user = %user.name, "kubelet API: user not allowed");
        return Err((
            StatusCode::FORBIDDEN,
            format!(
                "Forbidden (user={}, verb={}, resource=nodes, subresource=proxy)",
                user.name,
                verb(req.method())
            ),
        ));
    }
    Ok(user)
}

/// Serves `app` on `listener` over TLS with HTTP/1.1 upgrades, authenticating every request
/// first (the [`User`] is put in the request's extensions); runs until accepting fails
/// persistently or the future is dropped.
pub async fn serve(listener: TcpListener, tls: Arc<rustls::ServerConfig>, app: Router) -> std::io::Result<()> {
    let acceptor = TlsAcceptor::from(tls);
    // Connections live in this set so that dropping the server ends them.
    let mut connections = tokio::task::JoinSet::new();
    loop {
        while connections.try_join_next().is_some() {}
        let (tcp, peer_addr) = match listener.accept().await {
            Ok(c) => c,
            Err(e) => {
                // Out of file descriptors and the like: back off instead of spinning.
                tracing::warn!(error = %e, "kubelet API: accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let (acceptor, app) = (acceptor.clone(), app.clone());
        connections.spawn(async move {
            let stream = match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(tcp)).await {
                Ok(Ok(s)) => s,
                Ok(Err(e)) => {
                    tracing::debug!(peer = %peer_addr, error = %e, "kubelet API: TLS handshake failed");
                    return;
                }
                Err(_) => {
                    tracing::debug!(peer = %peer_addr, "kubelet API: TLS handshake timed out");
                    return;
                }
            };
            let peer = stream
                .get_ref()
                .1
                .peer_certificates()
                .and_then(|c| c.first())
                .and_then(cert_user);
            let svc = hyper::service::service_fn(move |mut req: http::Request<hyper::body::Incoming>| {
                let (app, peer) = (app.clone(), peer.clone());
                async move {
                    match access(peer.as_ref(), &req) {
                        Err((status, msg)) => Ok::<_, Infallible>(text(status, msg)),
                        Ok(user) => {
                            req.extensions_mut().insert(user);
                            app.oneshot(req.map(Body::new)).await
                        }
                    }
                }
            });
            let conn = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(stream), svc)
                .with_upgrades();
            if let Err(e) = conn.await {
                tracing::debug!(peer = %peer_addr, error = %e, "kubelet API: connection ended with error");
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ca() -> (String, String) {
        let key = KeyPair::generate().unwrap();
        let mut p = CertificateParams::new(Vec::<String>::new()).unwrap();
        p.distinguished_name.push(DnType::CommonName, "test-ca");
        p.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        (p.self_signed(&key).unwrap().pem(), key.serialize_pem())
    }

    #[test]
    fn serving_certs_are_signed_or_self_signed() {
        let (cert_pem, key_pem) = ca();
        let signed = ClusterCa {
            cert_pem: cert_pem.clone(),
            key_pem: Some(key_pem),
        };
        let (c, k) = serving_cert(Some(&signed), "n1", "10.0.0.5").unwrap();
        assert!(server_config(Some(&signed), &c, &k).is_ok());
        let der = CertificateDer::from_pem_slice(c.as_bytes()).unwrap();
        let (_, x) = x509_parser::parse_x509_certificate(der.as_ref()).unwrap();
        assert_eq!(
            x.issuer().iter_common_name().next().unwrap().as_str().unwrap(),
            "test-ca"
        );
        let remote = ClusterCa {
            cert_pem,
            key_pem: None,
        };
        let (c, k) = serving_cert(Some(&remote), "n1", "10.0.0.5").unwrap();
        assert!(server_config(None, &c, &k).is_ok());
        let der = CertificateDer::from_pem_slice(c.as_bytes()).unwrap();
        let (_, x) = x509_parser::parse_x509_certificate(der.as_ref()).unwrap();
        assert_eq!(x.issuer(), x.subject());
    }

    #[test]
    fn only_the_api_server_is_allowed() {
        let req = http::Request::post("/exec/ns/p/c").body(()).unwrap();
        let r = access(None, &req).unwrap_err();
        assert_eq!(r, (StatusCode::UNAUTHORIZED, "Unauthorized".to_string()));
        let bob = User {
            name: "bob".into(),
            groups: vec![],
        };
        let r = access(Some(&bob), &req).unwrap_err();
        assert_eq!(
            r.1,
            "Forbidden (user=bob, verb=create, resource=nodes, subresource=proxy)"
        );
        let api = User {
            name: KUBELET_CLIENT_CN.into(),
            groups: vec![KUBELET_CLIENT_GROUP.into()],
        };
        assert_eq!(access(Some(&api), &req).unwrap(), api);
    }
}
