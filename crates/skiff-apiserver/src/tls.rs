//! The cluster's PKI: a CA made on first start, a server certificate signed by it, the admin
//! token, and the kubeconfig that ties them together.

use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use base64::Engine;
use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair, KeyUsagePurpose,
    SanType,
};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

/// Errors while creating or loading the PKI.
#[derive(Debug, thiserror::Error)]
pub enum PkiError {
    /// A file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// Certificate generation failed.
    #[error("certificate: {0}")]
    Cert(#[from] rcgen::Error),
    /// rustls refused the material.
    #[error("tls: {0}")]
    Tls(#[from] rustls::Error),
    /// A PEM file is malformed.
    #[error("pem: {0}")]
    Pem(String),
}

/// Certificates and credentials of one data directory.
pub struct Pki {
    /// CA certificate (PEM), written into the kubeconfig.
    pub ca_pem: String,
    /// CA private key (PEM): nodes in this process get serving certificates signed by it.
    pub ca_key_pem: String,
    /// Server certificate (PEM).
    pub server_cert_pem: String,
    /// Server private key (PEM).
    pub server_key_pem: String,
    /// The admin bearer token.
    pub admin_token: String,
    /// Client certificate (PEM) the API server presents to node agents (kube-apiserver's
    /// `--kubelet-client-certificate`: CN `kube-apiserver-kubelet-client`, O `system:masters`).
    pub kubelet_client_cert_pem: String,
    /// Its private key (PEM).
    pub kubelet_client_key_pem: String,
}

/// Common name of the API server's client certificate for node agents.
pub const KUBELET_CLIENT_CN: &str = "kube-apiserver-kubelet-client";
/// Organization of that certificate.
pub const KUBELET_CLIENT_GROUP: &str = "system:masters";

/// The kubelet client certificate and key signed by `issuer`.
fn kubelet_client_cert(issuer: &Issuer<'_, impl rcgen::SigningKey>) -> Result<(String, String), PkiError> {
    let mut params = CertificateParams::new(Vec::<String>::new())?;
    params.distinguished_name.push(DnType::CommonName, KUBELET_CLIENT_CN);
    params
        .distinguished_name
        .push(DnType::OrganizationName, KUBELET_CLIENT_GROUP);
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
    params.not_after = rcgen::date_time_ymd(2126, 1, 1);
    let key = KeyPair::generate()?;
    let cert = params.signed_by(&key, issuer)?;
    Ok((cert.pem(), key.serialize_pem()))
}

fn read(path: &Path) -> Result<Option<String>, PkiError> {
    match std::fs::read_to_string(path) {
        Ok(s) => Ok(Some(s)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(source) => Err(PkiError::Io {
            path: path.to_owned(),
            source,
        }),
    }
}

fn write_private(path: &Path, contents: &str) -> Result<(), PkiError> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let io = |source| PkiError::Io {
        path: path.to_owned(),
        source,
    };
    // Write then rename so a crash never leaves a half-written credential.
    let tmp = path.with_extension("tmp");
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .truncate(true)
        .write(true)
        .mode(0o600)
        .open(&tmp)
        .map_err(io)?;
    f.write_all(contents.as_bytes()).map_err(io)?;
    f.sync_all().map_err(io)?;
    std::fs::rename(&tmp, path).map_err(io)
}

fn random_token() -> String {
    use rand::Rng;
    let bytes: [u8; 24] = rand::rng().random();
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

impl Pki {
    /// Loads the CA and token from `dir/pki`, creating them on first start, and issues a
    /// fresh server certificate for `extra_hosts` plus localhost, 127.0.0.1 and the host name.
    pub fn load_or_create(dir: &Path, extra_hosts: &[String]) -> Result<Pki, PkiError> {
        use std::os::unix::fs::DirBuilderExt;
        let pki = dir.join("pki");
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&pki)
            .map_err(|source| PkiError::Io {
                path: pki.clone(),
                source,
            })?;
        let ca_key_path = pki.join("ca.key");
        let ca_crt_path = pki.join("ca.crt");
        let mut new_ca = false;
        let (ca_key, ca_pem) = match (read(&ca_key_path)?, read(&ca_crt_path)?) {
            (Some(k), Some(c)) => (KeyPair::from_pem(&k)?, c),
            _ => {
                let key = KeyPair::generate()?;
                let mut params = CertificateParams::new(Vec::<String>::new())?;
                params.distinguished_name.push(DnType::CommonName, "skiff-ca");
                params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
                params.key_usages = vec![
                    KeyUsagePurpose::KeyCertSign,
                    KeyUsagePurpose::CrlSign,
                    KeyUsagePurpose::DigitalSignature,
                ];
                params.not_after = rcgen::date_time_ymd(2126, 1, 1);
                let cert = params.self_signed(&key)?;
                write_private(&ca_key_path, &key.serialize_pem())?;
                write_private(&ca_crt_path, &cert.pem())?;
                new_ca = true;
                (key, cert.pem())
            }
        };
        let token_path = pki.join("admin.token");
        let admin_token = match read(&token_path)? {
            Some(t) if !t.trim().is_empty() => t.trim().to_string(),
            _ => {
                let t = random_token();
                write_private(&token_path, &t)?;
                t
            }
        };

        let ca_key_pem = ca_key.serialize_pem();
        let issuer = Issuer::from_ca_cert_pem(&ca_pem, &ca_key)?;
        let (client_crt_path, client_key_path) = (pki.join("kubelet-client.crt"), pki.join("kubelet-client.key"));
        let (kubelet_client_cert_pem, kubelet_client_key_pem) =
            match (new_ca, read(&client_crt_path)?, read(&client_key_path)?) {
                (false, Some(c), Some(k)) => (c, k),
                _ => {
                    let (c, k) = kubelet_client_cert(&issuer)?;
                    write_private(&client_key_path, &k)?;
                    write_private(&client_crt_path, &c)?;
                    (c, k)
                }
            };
        let mut names = vec![
            "localhost".to_string(),
            "127.0.0.1".to_string(),
            "kubernetes".to_string(),
            "kubernetes.default".to_string(),
            "kubernetes.default.svc".to_string(),
            "kubernetes.default.svc.cluster.local".to_string(),
        ];
        if let Ok(h) = gethostname::gethostname().into_string() {
            names.push(h);
        }
        names.extend(extra_hosts.iter().cloned());
        names.sort();
        names.dedup();
        let mut params = CertificateParams::new(Vec::<String>::new())?;
        params.distinguished_name.push(DnType::CommonName, "kube-apiserver");
        params.subject_alt_names = names
            .iter()
            .filter_map(|n| match n.parse::<IpAddr>() {
                Ok(ip) => Some(SanType::IpAddress(ip)),
                Err(_) => n.clone().try_into().ok().map(SanType::DnsName),
            })
            .collect();
        params.not_after = rcgen::date_time_ymd(2126, 1, 1);
        let key = KeyPair::generate()?;
        let cert = params.signed_by(&key, &issuer)?;
        Ok(Pki {
            ca_pem,
            ca_key_pem,
            kubelet_client_cert_pem,
            kubelet_client_key_pem,
            server_cert_pem: cert.pem(),
            server_key_pem: key.serialize_pem(),
            admin_token,
        })
    }

    /// A rustls server configuration offering HTTP/2 and HTTP/1.1.
    pub fn server_config(&self) -> Result<Arc<rustls::ServerConfig>, PkiError> {
        let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(self.server_cert_pem.as_bytes())
            .chain(CertificateDer::pem_slice_iter(self.ca_pem.as_bytes()))
            .collect::<Result<_, _>>()
            .map_err(|e| PkiError::Pem(e.to_string()))?;
        let key =
            PrivateKeyDer::from_pem_slice(self.server_key_pem.as_bytes()).map_err(|e| PkiError::Pem(e.to_string()))?;
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut cfg = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()?
            .with_no_client_auth()
            .with_single_cert(certs, key)?;
        cfg.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
        Ok(Arc::new(cfg))
    }

    /// The kubeconfig for the admin user of a server at `server_url`.
    pub fn kubeconfig(&self, server_url: &str) -> String {
        let ca = base64::engine::general_purpose::STANDARD.encode(self.ca_pem.as_bytes());
        format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: skiff\n  cluster:\n    server: {server_url}\n    certificate-authority-data: {ca}\ncontexts:\n- name: skiff\n  context:\n    cluster: skiff\n    user: admin\n    namespace: default\ncurrent-context: skiff\nusers:\n- name: admin\n  user:\n    token: {}\npreferences: {{}}\n",
            self.admin_token
        )
    }

    /// Writes the kubeconfig to `dir/kubeconfig` (mode 0600) and returns its path.
    pub fn write_kubeconfig(&self, dir: &Path, server_url: &str) -> Result<PathBuf, PkiError> {
        let path = dir.join("kubeconfig");
        write_private(&path, &self.kubeconfig(server_url))?;
        Ok(path)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pki_is_created_once_and_reused() {
        let dir = tempfile::tempdir().unwrap();
        let a = Pki::load_or_create(dir.path(), &[]).unwrap();
        let b = Pki::load_or_create(dir.path(), &["10.0.0.1".into()]).unwrap();
        assert_eq!(a.ca_pem, b.ca_pem);
        assert_eq!(a.admin_token, b.admin_token);
        assert!(a.server_config().is_ok());
        let kc = a.kubeconfig("https://127.0.0.1:6443");
        assert!(kc.contains(&a.admin_token));
    }
}
