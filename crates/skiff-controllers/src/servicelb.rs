//! The built-in load balancer's status side, as k3s's ServiceLB: a `LoadBalancer` Service is
//! served by the proxy on every node's address at its port, so its
//! `status.loadBalancer.ingress` lists the Ready nodes' InternalIPs (once each).

use std::collections::BTreeSet;
use std::time::Duration;

use futures::{FutureExt, StreamExt};
use k8s_openapi::api::core::v1::{Node, Service};
use kube::api::{Patch, PatchParams};
use kube::runtime::watcher;
use kube::{Api, ResourceExt};
use serde_json::json;

use crate::informer::{Event, Informers};
use crate::Error;

/// How soon a failed status write is retried.
const RETRY: Duration = Duration::from_secs(1);

enum Msg {
    Svc(Event<Service>),
    Node(Event<Node>),
}

/// The ingress addresses: InternalIPs of Ready, schedulable-or-not nodes, sorted.
fn ingress(nodes: &[std::sync::Arc<Node>]) -> Vec<String> {
    let ready = |n: &Node| {
        n.status
            .as_ref()
            .and_then(|s| s.conditions.as_ref())
            .is_some_and(|cs| cs.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
    };
    let ips: BTreeSet<String> = nodes
        .iter()
        .filter(|n| ready(n))
        .flat_map(|n| n.status.as_ref().and_then(|s| s.addresses.clone()).unwrap_or_default())
        .filter(|a| a.type_ == "InternalIP")
        .map(|a| a.address)
        .collect();
    ips.into_iter().collect()
}

fn current(svc: &Service) -> Vec<String> {
    svc.status
        .as_ref()
        .and_then(|s| s.load_balancer.as_ref())
        .and_then(|lb| lb.ingress.as_ref())
        .map(|i| i.iter().filter_map(|i| i.ip.clone()).collect())
        .unwrap_or_default()
}

/// Runs the controller until its informers stop.
pub async fn run(informers: Informers) -> Result<(), Error> {
    let client = informers.client().clone();
    let (services, svc_events) = informers.watch(Msg::Svc);
    let (nodes, node_events) = informers.watch(Msg::Node);
    let mut events = futures::stream::select_all(vec![svc_events, node_events]);
    let mut ready = [false; 2];
    let mut retry = false;
    let note = |m: Msg, ready: &mut [bool; 2]| match m {
        Msg::Svc(watcher::Event::InitDone) => ready[0] = true,
        Msg::Node(watcher::Event::InitDone) => ready[1] = true,
        _ => {}
    };
    loop {
        // `None`: the retry timer fired; `Some(None)`: the informers stopped.
        let next = if retry {
            tokio::time::timeout(RETRY, events.next()).await.ok()
        } else {
            Some(events.next().await)
        };
        match next {
            Some(None) => return Ok(()),
            Some(Some(m)) => note(m, &mut ready),
            None => {}
        }
        while let Some(Some(m)) = events.next().now_or_never() {
            note(m, &mut ready);
        }
        if !ready.iter().all(|r| *r) {
            continue;
        }
        let want = ingress(&nodes.state());
        retry = false;
        for svc in services.state() {
            let is_lb = svc.spec.as_ref().and_then(|s| s.type_.as_deref()) == Some("LoadBalancer");
            let have = current(&svc);
            let target: Vec<String> = if is_lb { want.clone() } else { Vec::new() };
            if have == target {
                continue;
            }
            let ns = svc.namespace().unwrap_or_default();
            tracing::debug!(service = %format!("{ns}/{}", svc.name_any()), ?target, "setting load balancer ingress");
            let ingress: Vec<serde_json::Value> = target.iter().map(|ip| json!({"ip": ip, "ipMode": "VIP"})).collect();
            let patch = json!({"status": {"loadBalancer": if ingress.is_empty() { json!({}) } else { json!({"ingress": ingress}) }}});
            let api: Api<Service> = Api::namespaced(client.clone(), &ns);
            if let Err(e) = api
                .patch_status(&svc.name_any(), &PatchParams::default(), &Patch::Merge(patch))
                .await
            {
                tracing::debug!(error = %e, "load balancer status write failed (retried)");
                retry = true;
            }
        }
    }
}
