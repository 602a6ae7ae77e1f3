//! The Services and EndpointSlices a proxy reads, as kube-runtime reflector stores, with a
//! signal on every change.

use k8s_openapi::api::core::v1::{Node, Service};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use kube::runtime::reflector::{self, Store};
use kube::runtime::{watcher, WatchStreamExt};
use kube::{Api, Client, Resource};
use serde::de::DeserializeOwned;
use tokio::sync::watch;

use crate::services::{self, ServicePort};

/// A node as the proxy needs it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct NodeAddr {
    /// The node's name.
    pub name: String,
    /// Its InternalIP.
    pub ip: std::net::IpAddr,
    /// Its pod CIDR, if it has one.
    pub pod_cidr: Option<String>,
}

/// What the proxy watches.
pub struct Sources {
    services: Store<Service>,
    slices: Store<EndpointSlice>,
    nodes: Store<Node>,
    changed: watch::Receiver<u64>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Drop for Sources {
    fn drop(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
    }
}

fn reflect<K>(client: &Client, tx: watch::Sender<u64>) -> (Store<K>, tokio::task::JoinHandle<()>)
where
    K: Resource<DynamicType = ()> + Clone + DeserializeOwned + std::fmt::Debug + Send + Sync + 'static,
{
    use futures::StreamExt;
    let (store, writer) = reflector::store::<K>();
    let stream = reflector::reflector(
        writer,
        watcher(Api::<K>::all(client.clone()), watcher::Config::default()),
    )
    .default_backoff();
    let task = tokio::spawn(async move {
        let mut stream = std::pin::pin!(stream);
        while let Some(ev) = stream.next().await {
            match ev {
                // The store changed (a relist is told once, when it is complete).
                Ok(watcher::Event::Apply(_) | watcher::Event::Delete(_) | watcher::Event::InitDone) => {
                    tx.send_modify(|n| *n += 1);
                }
                Ok(_) => {}
                Err(e) => tracing::debug!(kind = %K::kind(&()), error = %e, "proxy watch failed (retried)"),
            }
        }
    });
    (store, task)
}

impl Sources {
    /// Starts watching through `client`.
    pub fn start(client: &Client) -> Sources {
        let (tx, changed) = watch::channel(0);
        let (services, a) = reflect::<Service>(client, tx.clone());
        let (slices, b) = reflect::<EndpointSlice>(client, tx.clone());
        let (nodes, c) = reflect::<Node>(client, tx);
        Sources {
            services,
            slices,
            nodes,
            changed,
            tasks: vec![a, b, c],
        }
    }

    /// Waits until both stores hold a complete list.
    pub async fn ready(&self) {
        let _ = self.services.wait_until_ready().await;
        let _ = self.slices.wait_until_ready().await;
        let _ = self.nodes.wait_until_ready().await;
    }

    /// Every node's name, InternalIP and pod CIDR.
    pub fn nodes(&self) -> Vec<NodeAddr> {
        self.nodes
            .state()
            .iter()
            .filter_map(|n| {
                let ip = n
                    .status
                    .as_ref()?
                    .addresses
                    .as_ref()?
                    .iter()
                    .find(|a| a.type_ == "InternalIP")?
                    .address
                    .parse()
                    .ok()?;
                Some(NodeAddr {
                    name: n.metadata.name.clone()?,
                    ip,
                    pod_cidr: n.spec.as_ref().and_then(|s| s.pod_cidr.clone()),
                })
            })
            .collect()
    }

    /// Waits for the next change; `false` once the watches stopped.
    pub async fn changed(&mut self) -> bool {
        self.changed.changed().await.is_ok()
    }

    /// Every proxied service port as the stores hold them now.
    pub fn ports(&self) -> Vec<ServicePort> {
        services::build(&self.services.state(), &self.slices.state())
    }
}
