//! The userspace proxy of host networking: a TCP listener and a UDP socket on every
//! ClusterIP:port (the loopback service range 127.43.0.0/16 needs no address set up), on every
//! NodePort and LoadBalancer port of the node addresses, each forwarding to a usable backend
//! picked at random or by client address (`sessionAffinity: ClientIP`).
//!
//! kube-proxy dropped its userspace mode; host networking cannot use nftables DNAT (pods
//! share the host's loopback), so this is the one place skiff copies bytes itself. Listeners
//! stay bound across endpoint changes; only their backends are swapped.

use std::collections::{HashMap, HashSet};
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use rand::seq::IndexedRandom;
use tokio::net::{TcpListener, TcpStream, UdpSocket};

use crate::services::{Backend, Protocol, ServicePort};
use crate::sources::Sources;

/// How long connecting to one backend may take before the next is tried.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);
/// How long a UDP flow without traffic keeps its backend socket.
const UDP_IDLE: Duration = Duration::from_secs(30);

/// Where the host proxy listens besides the ClusterIPs.
#[derive(Debug, Clone)]
pub struct Options {
    /// The node addresses NodePorts and LoadBalancer ports are served on.
    pub node_ips: Vec<IpAddr>,
}

/// What one listener forwards to; swapped in place on every change.
struct Target {
    service: String,
    backends: Vec<Backend>,
    affinity: Option<Duration>,
    /// Client address → backend, and when it was last used.
    sticky: HashMap<IpAddr, (Backend, Instant)>,
}

impl Target {
    fn new(p: &ServicePort) -> Self {
        Target {
            service: p.service.clone(),
            backends: p.usable(None).into_iter().cloned().collect(),
            affinity: p.affinity_seconds.map(|s| Duration::from_secs(s.into())),
            sticky: HashMap::new(),
        }
    }

    /// The backends to try for `client`, the chosen one first.
    fn pick(&mut self, client: IpAddr) -> Vec<Backend> {
        let mut order: Vec<Backend> = self.backends.clone();
        if order.is_empty() {
            return order;
        }
        let first = match self.affinity {
            Some(ttl) => match self.sticky.get(&client) {
                Some((b, at)) if at.elapsed() < ttl && order.contains(b) => b.clone(),
                _ => order
                    .choose(&mut rand::rng())
                    .cloned()
                    .unwrap_or_else(|| order[0].clone()),
            },
            None => order
                .choose(&mut rand::rng())
                .cloned()
                .unwrap_or_else(|| order[0].clone()),
        };
        if self.affinity.is_some() {
            self.sticky.insert(client, (first.clone(), Instant::now()));
        }
        order.retain(|b| *b != first);
        order.insert(0, first);
        order
    }
}

struct Listener {
    target: Arc<Mutex<Target>>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Listener {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Runs the host proxy until the watches stop.
pub async fn run(client: kube::Client, opts: Options) -> Result<(), crate::Error> {
    let mut sources = Sources::start(&client);
    sources.ready().await;
    let mut listeners: HashMap<(SocketAddr, Protocol), Listener> = HashMap::new();
    let mut failed: HashSet<(SocketAddr, Protocol)> = HashSet::new();
    loop {
        apply(&sources.ports(), &opts, &mut listeners, &mut failed).await;
        if !sources.changed().await {
            return Ok(());
        }
    }
}

/// Every address a service port is served on in host networking.
fn addresses(p: &ServicePort, opts: &Options) -> Vec<SocketAddr> {
    let mut out: Vec<SocketAddr> = p.cluster_ip.map(|ip| SocketAddr::new(ip, p.port)).into_iter().collect();
    for ip in &opts.node_ips {
        if let Some(np) = p.node_port {
            out.push(SocketAddr::new(*ip, np));
        }
        if p.load_balancer {
            out.push(SocketAddr::new(*ip, p.port));
        }
    }
    out
}

async fn apply(
    ports: &[ServicePort],
    opts: &Options,
    listeners: &mut HashMap<(SocketAddr, Protocol), Listener>,
    failed: &mut HashSet<(SocketAddr, Protocol)>,
) {
    let mut wanted: HashSet<(SocketAddr, Protocol)> = HashSet::new();
    for p in ports {
        if p.protocol == Protocol::Sctp {
            continue;
        }
        for addr in addresses(p, opts) {
            let key = (addr, p.protocol);
            if !wanted.insert(key) {
                continue;
            }
            if let Some(l) = listeners.get(&key) {
                // New backends; clients stay with theirs while those remain.
                let mut t = l.target.lock();
                let mut sticky = std::mem::take(&mut t.sticky);
                *t = Target::new(p);
                sticky.retain(|_, (b, _)| t.backends.contains(b));
                t.sticky = sticky;
                continue;
            }
            let target = Arc::new(Mutex::new(Target::new(p)));
            let task = match p.protocol {
                Protocol::Udp => UdpSocket::bind(addr)
                    .await
                    .map(|s| tokio::spawn(serve_udp(s, target.clone()))),
                _ => TcpListener::bind(addr)
                    .await
                    .map(|l| tokio::spawn(serve_tcp(l, target.clone()))),
            };
            match task {
                Ok(task) => {
                    failed.remove(&key);
                    tracing::debug!(%addr, service = %p.service, backends = p.backends.len(), "proxy listening");
                    listeners.insert(key, Listener { target, task });
                }
                Err(e) => {
                    // Told once; retried on every change.
                    if failed.insert(key) {
                        tracing::warn!(%addr, service = %p.service, error = %e, "cannot listen for a service port");
                    }
                }
            }
        }
    }
    listeners.retain(|k, _| wanted.contains(k));
    failed.retain(|k| wanted.contains(k));
}

async fn serve_tcp(listener: TcpListener, target: Arc<Mutex<Target>>) {
    loop {
        let (conn, peer) = match listener.accept().await {
            Ok(c) => c,
            Err(e) => {
                // Out of descriptors and the like: wait instead of spinning.
                tracing::debug!(error = %e, "accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let (order, service) = {
            let mut t = target.lock();
            (t.pick(peer.ip()), t.service.clone())
        };
        tokio::spawn(async move {
            for b in order {
                let addr = SocketAddr::new(b.ip, b.port);
                match tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect(addr)).await {
                    Ok(Ok(mut up)) => {
                        let mut conn = conn;
                        let _ = tokio::io::copy_bidirectional(&mut conn, &mut up).await;
                        return;
                    }
                    Ok(Err(e)) => tracing::debug!(%service, backend = %addr, error = %e, "backend refused"),
                    Err(_) => tracing::debug!(%service, backend = %addr, "backend timed out"),
                }
            }
            // No backend: reset the connection, as kube-proxy's REJECT does.
            let _ = conn.set_zero_linger();
        });
    }
}

async fn serve_udp(socket: UdpSocket, target: Arc<Mutex<Target>>) {
    let socket = Arc::new(socket);
    let flows: Arc<Mutex<HashMap<SocketAddr, Arc<UdpSocket>>>> = Arc::default();
    let mut buf = vec![0u8; 65536];
    loop {
        let (n, client) = match socket.recv_from(&mut buf).await {
            Ok(r) => r,
            Err(e) => {
                tracing::debug!(error = %e, "receive failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let existing = flows.lock().get(&client).cloned();
        let up = match existing {
            Some(up) => up,
            None => {
                let Some(b) = target.lock().pick(client.ip()).into_iter().next() else {
                    continue;
                };
                let backend = SocketAddr::new(b.ip, b.port);
                let local: SocketAddr = if backend.ip().is_loopback() {
                    "127.0.0.1:0".parse().expect("literal address")
                } else {
                    "0.0.0.0:0".parse().expect("literal address")
                };
                let Ok(up) = UdpSocket::bind(local).await else { continue };
                if up.connect(backend).await.is_err() {
                    continue;
                }
                let up = Arc::new(up);
                flows.lock().insert(client, up.clone());
                tokio::spawn(relay_back(up.clone(), socket.clone(), client, flows.clone()));
                up
            }
        };
        let _ = up.send(&buf[..n]).await;
    }
}

/// Copies a backend's answers to the client until the flow is idle.
async fn relay_back(
    up: Arc<UdpSocket>,
    socket: Arc<UdpSocket>,
    client: SocketAddr,
    flows: Arc<Mutex<HashMap<SocketAddr, Arc<UdpSocket>>>>,
) {
    let mut buf = vec![0u8; 65536];
    while let Ok(Ok(n)) = tokio::time::timeout(UDP_IDLE, up.recv(&mut buf)).await {
        let _ = socket.send_to(&buf[..n], client).await;
    }
    flows.lock().remove(&client);
}
