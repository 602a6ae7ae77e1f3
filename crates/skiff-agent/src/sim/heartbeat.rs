//! Registration, lease renewals and node status of all simulated nodes, in batches: the
//! nodes are split into slots renewed one after another across the lease interval, so the
//! load on the API server is even.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::core::v1::Node;
use kube::{Api, Client};
use tokio::sync::mpsc;
use tokio::time::{Instant, MissedTickBehavior};

use super::{Error, Shared};
use crate::node;

/// Most slots the nodes are spread over (1,000 nodes, 10 s interval → 10 nodes each 100 ms).
const MAX_SLOTS: usize = 100;
/// Concurrent requests while registering.
const REGISTER_CONCURRENCY: usize = 32;

/// Registers every node (creating or updating it) and records its uid.
pub(super) async fn register_all(client: &Client, shared: &Arc<Shared>) -> Result<(), Error> {
    futures::stream::iter(0..shared.nodes.len())
        .map(|i| register_one(client, shared, i))
        .buffer_unordered(REGISTER_CONCURRENCY)
        .try_collect::<()>()
        .await
}

async fn register_one(client: &Client, shared: &Shared, i: usize) -> Result<(), Error> {
    let n = &shared.nodes[i];
    let stored = node::register(client, &n.cfg).await.map_err(|source| Error::Register {
        node: n.cfg.name.clone(),
        source,
    })?;
    let stored = if shared.opts.pod_cidr_base.is_none() {
        wait_for_pod_cidr(client, &n.cfg.name, stored).await?
    } else {
        stored
    };
    if let Some(base) = pod_cidr_base(&stored) {
        *n.pod_base.lock().unwrap_or_else(|e| e.into_inner()) = base;
    }
    *n.uid.lock().unwrap() = stored.metadata.uid.clone();
    if let Some(t) = node::ready_since(&stored) {
        *n.since.lock().unwrap() = t;
    }
    // The first lease at once, as kubelet does; renewals are spread over the interval after.
    if let Err(e) = node::renew_lease(
        client,
        &n.cfg.name,
        stored.metadata.uid.as_deref(),
        n.cfg.lease_duration_seconds,
    )
    .await
    {
        tracing::warn!(node = %n.cfg.name, error = %e, "creating the node lease failed");
    }
    Ok(())
}

/// How long a node waits for the cluster's node IPAM to give it a pod range.
const POD_CIDR_TIMEOUT: Duration = Duration::from_secs(60);

/// The node as stored once it has a pod range (`spec.podCIDR`).
async fn wait_for_pod_cidr(client: &Client, name: &str, mut node: Node) -> Result<Node, Error> {
    let api: Api<Node> = Api::all(client.clone());
    let deadline = Instant::now() + POD_CIDR_TIMEOUT;
    while pod_cidr_base(&node).is_none() {
        if Instant::now() > deadline {
            return Err(Error::NoPodCidr { node: name.into() });
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
        node = api.get(name).await.map_err(|source| Error::Register {
            node: name.into(),
            source,
        })?;
    }
    Ok(node)
}

/// The first address of the node's pod range.
fn pod_cidr_base(node: &Node) -> Option<std::net::Ipv4Addr> {
    let cidr = node.spec.as_ref()?.pod_cidr.as_deref()?;
    cidr.split('/').next()?.parse().ok()
}

/// Renews leases and re-posts node status (every report interval, or at once for the
/// node indexes received on `status_rx`) until aborted.
pub(super) async fn run(client: Client, shared: Arc<Shared>, mut status_rx: mpsc::UnboundedReceiver<usize>) {
    let count = shared.nodes.len();
    if count == 0 {
        return std::future::pending().await;
    }
    let slots = count.min(MAX_SLOTS);
    let tick = (shared.opts.lease_interval / slots as u32).max(Duration::from_millis(1));
    let mut interval = tokio::time::interval(tick);
    interval.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let mut last_status = vec![Instant::now(); count];
    let mut slot = 0;
    loop {
        tokio::select! {
            _ = interval.tick() => {
                let now = Instant::now();
                let batch: Vec<usize> = (slot..count).step_by(slots).filter(|&i| shared.nodes[i].alive()).collect();
                slot = (slot + 1) % slots;
                let leases = batch.iter().map(|&i| renew(&client, &shared, i));
                let due: Vec<usize> = batch
                    .iter()
                    .copied()
                    .filter(|&i| now.duration_since(last_status[i]) >= shared.opts.status_report_interval)
                    .collect();
                let statuses = due.iter().map(|&i| post_status(&client, &shared, i, false));
                futures::future::join(futures::future::join_all(leases), futures::future::join_all(statuses)).await;
                for i in due {
                    last_status[i] = now;
                }
            }
            Some(first) = status_rx.recv() => {
                let mut wanted = BTreeSet::from([first]);
                while let Ok(i) = status_rx.try_recv() {
                    wanted.insert(i);
                }
                let now = Instant::now();
                futures::stream::iter(wanted.iter().copied().filter(|&i| shared.nodes[i].alive()))
                    .map(|i| post_status(&client, &shared, i, true))
                    .buffer_unordered(16)
                    .collect::<Vec<()>>()
                    .await;
                for i in wanted {
                    last_status[i] = now;
                }
            }
        }
    }
}

async fn renew(client: &Client, shared: &Shared, i: usize) {
    let n = &shared.nodes[i];
    let uid = n.uid.lock().unwrap().clone();
    if let Err(e) = node::renew_lease(client, &n.cfg.name, uid.as_deref(), n.cfg.lease_duration_seconds).await {
        tracing::warn!(node = %n.cfg.name, error = %e, "renewing the node lease failed");
    }
}

/// Posts the node's status; `transition` restarts the conditions' transition time (the node
/// was seen NotReady or came back from the dead). A deleted node registers again.
async fn post_status(client: &Client, shared: &Shared, i: usize, transition: bool) {
    let n = &shared.nodes[i];
    let now = node::now();
    let since = {
        let mut s = n.since.lock().unwrap();
        if transition {
            *s = now;
        }
        *s
    };
    match node::post_status(client, &n.cfg, now, since).await {
        Ok(stored) => *n.uid.lock().unwrap() = stored.metadata.uid.clone(),
        Err(kube::Error::Api(e)) if e.code == 404 => {
            if let Err(e) = register_one(client, shared, i).await {
                tracing::warn!(error = %e, "re-registering a deleted simulated node failed");
            }
        }
        Err(e) => tracing::warn!(node = %n.cfg.name, error = %e, "posting node status failed"),
    }
}
