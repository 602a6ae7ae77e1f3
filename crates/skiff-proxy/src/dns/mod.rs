//! Cluster DNS: answers for the cluster domain (`cluster.local`) from Services and
//! EndpointSlices, as CoreDNS's kubernetes plugin serves them, and forwards every other name
//! to upstream resolvers.
//!
//! | name | answer |
//! |---|---|
//! | `svc.ns.svc.D` | A/AAAA of the cluster IPs; of the ready endpoints when headless; CNAME for ExternalName |
//! | `host.svc.ns.svc.D` | A/AAAA of a headless Service's endpoint (hostname, or dashed address) |
//! | `_port._proto.svc.ns.svc.D`, `svc.ns.svc.D` | SRV (0, 100, port, target) |
//! | `1-2-3-4.ns.pod.D` | A 1.2.3.4, for any namespace |
//! | `D` | SOA and NS; every other name in `D` is NXDOMAIN with the SOA |
//!
//! Served by hickory-server's `Server` with a `RequestHandler` of our own rather than a
//! `Catalog` of zone handlers: pod names are computed from the question, the zone changes per
//! Service in place, and questions before the first list must answer SERVFAIL, which a zone
//! handler in a catalog cannot do (the catalog turns its lookup errors other than NXDOMAIN into
//! NOERROR). Forwarding goes through a catalog holding hickory's forwarder (see `forward`).
//!
//! hickory-server logs every request at `info` (target `hickory_server`): a log filter of
//! `info` wants `hickory_server=warn` beside it.

mod forward;
mod handler;
mod informer;
mod publish;
mod zone;

use std::io;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use hickory_server::Server;
use parking_lot::RwLock;
use tokio::net::{TcpListener, UdpSocket};
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

pub use publish::publish;

/// How long a TCP connection may stay idle between questions.
const TCP_TIMEOUT: Duration = Duration::from_secs(10);
/// Responses queued per TCP connection.
const TCP_RESPONSE_BUFFER: usize = 32;

/// Where and for what the cluster DNS serves.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DnsOptions {
    /// Addresses to serve on, UDP and TCP each (e.g. 10.42.0.1:53, or 127.0.0.1:0 in tests).
    pub listen: Vec<SocketAddr>,
    /// The cluster domain, "cluster.local".
    pub domain: String,
    /// Upstream resolvers for every other name; empty = read nameservers from /etc/resolv.conf.
    pub upstream: Vec<SocketAddr>,
}

impl Default for DnsOptions {
    /// 127.0.0.1:53, `cluster.local`, the host's resolvers.
    fn default() -> Self {
        DnsOptions {
            listen: vec![SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 53)],
            domain: "cluster.local".to_string(),
            upstream: Vec::new(),
        }
    }
}

/// Why the cluster DNS could not start or stopped.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The cluster domain is not a DNS name.
    #[error("invalid cluster domain {0:?}")]
    Domain(String),
    /// No address to listen on was given.
    #[error("cluster DNS has no address to listen on")]
    NoListen,
    /// A UDP socket or TCP listener could not be bound.
    #[error("binding cluster DNS on {addr}: {source}")]
    Bind {
        /// The address asked for.
        addr: SocketAddr,
        /// The bind error.
        source: io::Error,
    },
    /// The forwarder to the upstream resolvers could not be built.
    #[error("cluster DNS forwarder: {0}")]
    Forwarder(String),
    /// A listener failed while serving.
    #[error("cluster DNS server: {0}")]
    Serve(String),
}

/// A running cluster DNS. Dropping it stops serving.
pub struct Dns {
    addrs: Vec<SocketAddr>,
    synced: watch::Receiver<bool>,
    shutdown: CancellationToken,
    task: JoinHandle<Result<(), Error>>,
}

impl Dns {
    /// The bound addresses, one per listen address, each serving UDP and TCP.
    pub fn addrs(&self) -> &[SocketAddr] {
        &self.addrs
    }

    /// Waits until the zone holds the first complete list of Services and EndpointSlices;
    /// until then names in the cluster domain answer SERVFAIL.
    pub async fn synced(&self) {
        let mut rx = self.synced.clone();
        // An error means the watch task ended, and it will never sync.
        let _ = rx.wait_for(|s| *s).await;
    }

    /// Serves until a listener fails; dropping the future stops serving.
    pub async fn wait(mut self) -> Result<(), Error> {
        match (&mut self.task).await {
            Ok(r) => r,
            Err(e) => Err(Error::Serve(e.to_string())),
        }
    }

    /// Stops serving and waits until the sockets are closed.
    pub async fn stop(mut self) {
        self.shutdown.cancel();
        let _ = (&mut self.task).await;
    }
}

impl Drop for Dns {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Binds the sockets, then serves until the returned [`Dns`] is dropped or stopped; it holds
/// the bound addresses.
pub async fn start(client: kube::Client, opts: DnsOptions) -> Result<Dns, Error> {
    let origin = zone::origin(&opts.domain).ok_or_else(|| Error::Domain(opts.domain.clone()))?;
    if opts.listen.is_empty() {
        return Err(Error::NoListen);
    }
    let mut sockets = Vec::new();
    for &addr in &opts.listen {
        sockets.push(bind(addr).await?);
    }
    let addrs: Vec<SocketAddr> = sockets.iter().map(|(addr, _, _)| *addr).collect();
    let upstream = if opts.upstream.is_empty() {
        forward::system_upstreams()
    } else {
        opts.upstream.clone()
    };
    let upstream = forward::without_self(upstream, &addrs);
    if upstream.is_empty() {
        warn!(domain = %origin, "cluster DNS has no upstream resolver: other names answer SERVFAIL");
    }
    let forward = forward::catalog(&upstream)?;
    // The name server's own addresses, for `ns.dns.<domain>`; a wildcard address has none.
    let ns_addrs = addrs
        .iter()
        .map(SocketAddr::ip)
        .filter(|ip| !ip.is_unspecified())
        .collect();
    let zone = Arc::new(RwLock::new(zone::Zone::new(origin.clone(), ns_addrs)));
    let (synced_tx, synced) = watch::channel(false);
    let mut server = Server::new(handler::Handler {
        zone: zone.clone(),
        synced: synced.clone(),
        forward,
    });
    for (_, udp, tcp) in sockets {
        server.register_socket(udp);
        server.register_listener(tcp, TCP_TIMEOUT, TCP_RESPONSE_BUFFER);
    }
    let shutdown = server.shutdown_token().clone();
    let task = tokio::spawn(async move {
        tokio::select! {
            r = server.block_until_done() => r.map_err(|e| Error::Serve(e.to_string())),
            () = informer::run(client, zone, synced_tx) => {
                Err(Error::Serve("the watch of Services and EndpointSlices ended".to_string()))
            }
        }
    });
    info!(addrs = ?addrs, upstream = ?upstream, domain = %origin, "cluster DNS listening");
    Ok(Dns {
        addrs,
        synced,
        shutdown,
        task,
    })
}

/// A UDP socket and a TCP listener on one address. For port 0 the listener takes the port the
/// socket got, so one address serves both; tried again when that port is taken for TCP.
async fn bind(addr: SocketAddr) -> Result<(SocketAddr, UdpSocket, TcpListener), Error> {
    let err = |source| Error::Bind { addr, source };
    let tries = if addr.port() == 0 { 10 } else { 1 };
    let mut last = io::Error::other("not bound");
    for _ in 0..tries {
        let udp = UdpSocket::bind(addr).await.map_err(err)?;
        let local = udp.local_addr().map_err(err)?;
        match TcpListener::bind(local).await {
            Ok(tcp) => return Ok((local, udp, tcp)),
            Err(e) => last = e,
        }
    }
    Err(err(last))
}
