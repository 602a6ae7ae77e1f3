//! The benchmark's client: HTTPS with HTTP/2 (ALPN h2), the cluster CA as the only trusted root
//! and the admin bearer token, as kubectl or client-go would talk to the server. One [`Conn`] is
//! one TCP connection.

use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::{bail, Context};
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::client::conn::http2::SendRequest;
use hyper::{header, Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioExecutor, TokioIo};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, ServerName};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;

/// `Accept` of a server-side Table, as kubectl asks for `get`.
pub const ACCEPT_TABLE: &str = "application/json;as=Table;v=v1;g=meta.k8s.io";

/// Where and how to connect.
#[derive(Clone)]
pub struct Target {
    addr: SocketAddr,
    base: Arc<str>,
    bearer: Arc<str>,
    tls: TlsConnector,
}

impl Target {
    /// A target at `addr` whose certificate chains to `ca_pem`, authenticating with `token`.
    pub fn new(addr: SocketAddr, ca_pem: &str, token: &str) -> anyhow::Result<Target> {
        let mut roots = rustls::RootCertStore::empty();
        for cert in CertificateDer::pem_slice_iter(ca_pem.as_bytes()) {
            roots.add(cert.context("reading the CA certificate")?)?;
        }
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut cfg = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()?
            .with_root_certificates(roots)
            .with_no_client_auth();
        cfg.alpn_protocols = vec![b"h2".to_vec()];
        Ok(Target {
            addr,
            base: format!("https://{addr}").into(),
            bearer: format!("Bearer {token}").into(),
            tls: TlsConnector::from(Arc::new(cfg)),
        })
    }

    /// Opens a new connection (TCP, TLS handshake, HTTP/2 preface).
    pub async fn connect(&self) -> anyhow::Result<Conn> {
        let tcp = TcpStream::connect(self.addr)
            .await
            .with_context(|| format!("connecting to {}", self.addr))?;
        tcp.set_nodelay(true)?;
        let tls = self
            .tls
            .connect(ServerName::from(self.addr.ip()), tcp)
            .await
            .context("TLS handshake")?;
        if tls.get_ref().1.alpn_protocol() != Some(b"h2") {
            bail!("the server did not negotiate HTTP/2");
        }
        // Window sizes as client-go's HTTP/2 transport uses, so large LISTs are not throttled
        // by flow control more than for a real client.
        let (send, conn) = hyper::client::conn::http2::Builder::new(TokioExecutor::new())
            .initial_stream_window_size(4 << 20)
            .initial_connection_window_size(1 << 30)
            .handshake(TokioIo::new(tls))
            .await
            .context("HTTP/2 handshake")?;
        tokio::spawn(async move {
            let _ = conn.await;
        });
        Ok(Conn {
            send,
            target: self.clone(),
        })
    }
}

/// One HTTP/2 connection.
pub struct Conn {
    send: SendRequest<Full<Bytes>>,
    target: Target,
}

impl Conn {
    /// Sends a request and answers the response with its body still streaming.
    pub async fn start(
        &mut self,
        method: Method,
        path: &str,
        accept: Option<&str>,
        body: Option<Bytes>,
    ) -> anyhow::Result<Response<Incoming>> {
        let mut req = Request::builder()
            .method(method)
            .uri(format!("{}{path}", self.target.base))
            .header(header::AUTHORIZATION, &*self.target.bearer)
            .header(header::ACCEPT, accept.unwrap_or("application/json"))
            .header(header::USER_AGENT, "skiff-bench");
        if body.is_some() {
            req = req.header(header::CONTENT_TYPE, "application/json");
        }
        let req = req.body(Full::new(body.unwrap_or_default()))?;
        self.send.ready().await.context("connection closed")?;
        Ok(self.send.send_request(req).await?)
    }

    /// Sends a request and reads the whole response body.
    pub async fn call(
        &mut self,
        method: Method,
        path: &str,
        accept: Option<&str>,
        body: Option<Bytes>,
    ) -> anyhow::Result<(StatusCode, Bytes)> {
        let resp = self.start(method, path, accept, body).await?;
        let status = resp.status();
        let body = resp.into_body().collect().await?.to_bytes();
        Ok((status, body))
    }

    /// Like [`Conn::call`], failing unless the status is `want`.
    pub async fn expect(
        &mut self,
        want: StatusCode,
        method: Method,
        path: &str,
        accept: Option<&str>,
        body: Option<Bytes>,
    ) -> anyhow::Result<Bytes> {
        let (status, body) = self.call(method.clone(), path, accept, body).await?;
        if status != want {
            bail!(
                "{method} {path}: {status}: {}",
                String::from_utf8_lossy(&body[..body.len().min(500)])
            );
        }
        Ok(body)
    }
}
