//! How the API server reaches node agents' kubelet API: HTTPS (HTTP/1.1, so SPDY and WebSocket
//! upgrades pass) presenting the kubelet client certificate from the PKI.
//!
//! The agent's serving certificate is verified against the cluster CA when it claims to be
//! issued by it (nodes of `skiff up`). A certificate issued by anyone else is a self-signed
//! one of a node joined with `skiff agent` (which has no CA key) and is accepted unverified,
//! as kube-apiserver does without `--kubelet-certificate-authority`; the client certificate
//! still keeps strangers out of the agent, but such a node's identity is not proven.

use std::sync::Arc;

use bytes::Bytes;
use http_body_util::Empty;
use hyper::client::conn::http1::SendRequest;
use hyper_util::rt::TokioIo;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::WebPkiServerVerifier;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, SignatureScheme};
use rustls_pki_types::pem::PemObject;
use tokio_rustls::TlsConnector;

use crate::tls::{Pki, PkiError};

/// The name of a certificate's issuer or subject, comparable across encodings.
fn issuer_and_subject(der: &[u8]) -> Option<(String, String)> {
    let (_, cert) = x509_parser::parse_x509_certificate(der).ok()?;
    Some((cert.issuer().to_string(), cert.subject().to_string()))
}

/// Verifies CA-issued agent certificates fully and lets self-signed ones through.
#[derive(Debug)]
struct AgentVerifier {
    ca_subject: String,
    webpki: Arc<WebPkiServerVerifier>,
}

impl ServerCertVerifier for AgentVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let issuer = issuer_and_subject(end_entity.as_ref()).map(|(i, _)| i);
        if issuer.as_deref() == Some(self.ca_subject.as_str()) {
            return self
                .webpki
                .verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now);
        }
        // Not from the cluster CA: a remote agent's self-signed certificate. Upstream
        // kube-apiserver without --kubelet-certificate-authority skips verification too.
        tracing::debug!(
            ?server_name,
            "agent certificate is not from the cluster CA: not verified"
        );
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.webpki.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.webpki.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.webpki.supported_verify_schemes()
    }
}

/// Connections to node agents with the API server's kubelet client certificate.
pub struct KubeletClient {
    tls: TlsConnector,
}

impl KubeletClient {
    /// A client presenting `pki`'s kubelet client certificate and trusting its CA.
    pub fn new(pki: &Pki) -> Result<KubeletClient, PkiError> {
        let pem = |e: rustls_pki_types::pem::Error| PkiError::Pem(e.to_string());
        let ca_der = CertificateDer::from_pem_slice(pki.ca_pem.as_bytes()).map_err(pem)?;
        let ca_subject = issuer_and_subject(ca_der.as_ref())
            .map(|(_, s)| s)
            .ok_or_else(|| PkiError::Pem("the CA certificate cannot be parsed".into()))?;
        let mut roots = rustls::RootCertStore::empty();
        roots.add(ca_der)?;
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let webpki = WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider.clone())
            .build()
            .map_err(|e| PkiError::Pem(format!("the CA certificate: {e}")))?;
        let certs: Vec<CertificateDer<'static>> =
            CertificateDer::pem_slice_iter(pki.kubelet_client_cert_pem.as_bytes())
                .collect::<Result<_, _>>()
                .map_err(pem)?;
        let key = PrivateKeyDer::from_pem_slice(pki.kubelet_client_key_pem.as_bytes()).map_err(pem)?;
        let mut cfg = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()?
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(AgentVerifier { ca_subject, webpki }))
            .with_client_auth_cert(certs, key)?;
        cfg.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(KubeletClient {
            tls: TlsConnector::from(Arc::new(cfg)),
        })
    }

    /// An HTTP/1.1 connection (upgrades enabled) to the agent at `authority` (`host:port`).
    pub async fn connect(&self, authority: &str) -> Result<SendRequest<Empty<Bytes>>, String> {
        let host = authority
            .rsplit_once(':')
            .map_or(authority, |(h, _)| h)
            .trim_start_matches('[')
            .trim_end_matches(']');
        let name = ServerName::try_from(host.to_string()).map_err(|e| format!("{host}: {e}"))?;
        let tcp = tokio::net::TcpStream::connect(authority)
            .await
            .map_err(|e| format!("dial tcp {authority}: {e}"))?;
        let _ = tcp.set_nodelay(true);
        let tls = self.tls.connect(name, tcp).await.map_err(|e| format!("tls: {e}"))?;
        let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tls))
            .await
            .map_err(|e| e.to_string())?;
        tokio::spawn(async move {
            if let Err(e) = conn.with_upgrades().await {
                tracing::debug!(error = %e, "agent connection ended");
            }
        });
        Ok(sender)
    }
}
