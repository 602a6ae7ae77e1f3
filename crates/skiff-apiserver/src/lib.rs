//! The skiff API server: a Kubernetes API (discovery, OpenAPI, REST, watch) over a durable
//! store, with a watch cache so LIST and WATCH never read disk.

pub mod admission;
pub mod alloc;
pub mod apiservices;
pub mod body;
pub mod bootstrap;
pub mod cache;
pub mod conn;
pub mod convert;
pub mod datadir;
pub mod discovery;
pub mod errors;
pub mod impersonate;
pub mod inflight;
pub mod kubelet_client;
pub mod limits;
pub mod local;
pub mod meta;
pub mod output;
pub mod request;
pub mod rest;
pub mod server;
pub mod state;
pub mod tls;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use skiff_store::{RedbOptions, RedbStore, Store};
use tokio::net::TcpListener;

pub use state::ApiServer;

/// How to start the API server.
#[derive(Debug, Clone)]
pub struct Config {
    /// Directory of the store, certificates and kubeconfig.
    pub data_dir: PathBuf,
    /// Address to listen on.
    pub listen: SocketAddr,
    /// Extra names or addresses for the serving certificate.
    pub extra_hosts: Vec<String>,
    /// Where Service ClusterIPs come from.
    pub service_cidr: alloc::ServiceCidr,
    /// Timeouts and caps of the HTTPS server.
    pub limits: limits::ServingLimits,
}

impl Config {
    /// A server on `data_dir` listening on a free loopback port (tests, benchmarks, embedding).
    pub fn loopback(data_dir: impl Into<PathBuf>) -> Config {
        Config {
            data_dir: data_dir.into(),
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            extra_hosts: Vec::new(),
            service_cidr: alloc::ServiceCidr::default(),
            limits: limits::ServingLimits::default(),
        }
    }
}

/// Why the API server could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// A file or socket operation failed.
    #[error("{what}: {source}")]
    Io {
        /// What was being done.
        what: String,
        /// The underlying error.
        source: std::io::Error,
    },
    /// The listen address could not be bound.
    #[error("cannot listen on {addr}: {}", io_reason(source))]
    Listen {
        /// The address.
        addr: SocketAddr,
        /// The cause.
        source: std::io::Error,
    },
    /// Certificates or credentials could not be created or read.
    #[error(transparent)]
    Pki(#[from] tls::PkiError),
    /// The store could not be opened.
    #[error("opening the store: {0}")]
    Store(#[from] skiff_store::StoreError),
    /// Creating the initial objects failed.
    #[error("creating system objects: {0}")]
    Bootstrap(String),
}

/// An I/O error as one short phrase (`address already in use`, not `Address already in use
/// (os error 98)`).
fn io_reason(e: &std::io::Error) -> String {
    use std::io::ErrorKind;
    match e.kind() {
        ErrorKind::AddrInUse => "address already in use".into(),
        ErrorKind::AddrNotAvailable => "address not available on this host".into(),
        ErrorKind::PermissionDenied => "permission denied".into(),
        _ => e.to_string(),
    }
}

/// A running API server.
pub struct Running {
    /// The address it listens on.
    pub addr: SocketAddr,
    /// `https://…` URL clients use.
    pub url: String,
    /// Path of the admin kubeconfig.
    pub kubeconfig: PathBuf,
    /// Shared state (store, cache, credentials).
    pub server: Arc<ApiServer>,
    /// The cluster CA certificate (PEM), published to namespaces as `kube-root-ca.crt`.
    pub ca_pem: String,
    /// The cluster CA key (PEM): node agents in this process sign their serving certificates
    /// with it.
    pub ca_key_pem: String,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Running {
    /// A kube-rs client reaching this server in-process, as the admin user.
    pub fn client(&self) -> kube::Client {
        local::client(self.server.clone())
    }

    /// Stops serving, commits what the store has queued and closes it, so the data directory
    /// can be opened again. References to the server that remain (clients of components not
    /// yet dropped) see a closed store rather than delaying this.
    pub async fn shutdown(self) {
        for t in &self.tasks {
            t.abort();
        }
        self.server.cache.stop();
        self.server.store.close().await;
    }
}

/// Opens the store, loads the watch cache, creates credentials and system objects, and
/// starts serving; returns once the listener is bound and the server is ready.
pub async fn start(cfg: Config) -> Result<Running, StartError> {
    let io = |what: String| move |source| StartError::Io { what, source };
    datadir::secure(&cfg.data_dir).map_err(io(format!("securing {}", cfg.data_dir.display())))?;
    let pki = tls::Pki::load_or_create(&cfg.data_dir, &cfg.extra_hosts)?;
    // The watch cache keeps the event history clients resume from; the store's own history
    // only has to cover a lagging cache feeder, so it stays small.
    let opts = RedbOptions {
        history: 20_000,
        history_bytes: 32 << 20,
        ..Default::default()
    };
    let store: Arc<dyn Store> = RedbStore::open_with(cfg.data_dir.join("store.redb"), opts)?;
    let cache = cache::Cache::start(store.clone()).await?;
    let mut server = ApiServer::new(store, cache, pki.admin_token.clone());
    server.service_cidr = cfg.service_cidr;
    server.kubelet = Some(kubelet_client::KubeletClient::new(&pki)?);
    let server = Arc::new(server);
    let listener = TcpListener::bind(cfg.listen)
        .await
        .map_err(|source| StartError::Listen {
            addr: cfg.listen,
            source,
        })?;
    let addr = listener.local_addr().map_err(io("reading the listen address".into()))?;
    let host = if addr.ip().is_unspecified() {
        "127.0.0.1".to_string()
    } else {
        addr.ip().to_string()
    };
    let url = format!("https://{host}:{}", addr.port());
    let kubeconfig = pki.write_kubeconfig(&cfg.data_dir, &url)?;
    bootstrap::run(&server, addr)
        .await
        .map_err(|e| StartError::Bootstrap(e.message))?;
    let tasks = vec![tokio::spawn(server::serve(
        listener,
        pki.server_config()?,
        server::router(server.clone()),
        cfg.limits.clone(),
    ))];
    tracing::info!(%url, kubeconfig = %kubeconfig.display(), "API server ready");
    Ok(Running {
        addr,
        url,
        kubeconfig,
        server,
        ca_pem: pki.ca_pem.clone(),
        ca_key_pem: pki.ca_key_pem.clone(),
        tasks,
    })
}
