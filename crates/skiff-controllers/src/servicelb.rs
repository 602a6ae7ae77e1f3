//! The built-in load balancer's status side, as k3s's ServiceLB: a `LoadBalancer` Service is
//! served by the proxy on every node's address at its port, so its
//! `status.loadBalancer.ingress` lists the Ready nodes' InternalIPs (once each). A port that
//! an older LoadBalancer Service already has leaves the later one pending (no ingress), with a
//! Warning event naming the holder (`skiff_api::load_balancer`, which the proxies follow too).

use std::collections::{BTreeSet, HashMap};
use std::time::Duration;

use futures::{FutureExt, StreamExt};
use k8s_openapi::api::core::v1::{Node, Service};
use kube::api::{Patch, PatchParams};
use kube::runtime::watcher;
use kube::{Api, Resource, ResourceExt};
use serde_json::json;

use skiff_api::load_balancer::{assign, Assignment};

use crate::events::{Event as KubeEvent, EventType, Recorder, Reporter};
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
    let recorder = Recorder::new(
        client.clone(),
        Reporter {
            controller: "service-lb-controller".into(),
            instance: None,
        },
    );
    // Service uid → the conflict last reported, so each is reported once.
    let mut reported: HashMap<String, String> = HashMap::new();
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
        let all = services.state();
        let assignments = assign(all.iter().map(|s| s.as_ref()));
        reported.retain(|uid, _| all.iter().any(|s| s.uid().as_deref() == Some(uid)));
        for svc in all.iter() {
            let ns = svc.namespace().unwrap_or_default();
            let target: Vec<String> = match assignments.get(&format!("{ns}/{}", svc.name_any())) {
                Some(Assignment::Admitted) => want.clone(),
                Some(Assignment::Blocked { holder, port, protocol }) => {
                    let note = format!(
                        "Error syncing load balancer: port {port}/{protocol} is already in use by the load balancer of Service {holder}"
                    );
                    let uid = svc.uid().unwrap_or_default();
                    if reported.get(&uid) != Some(&note) {
                        let ev = KubeEvent {
                            type_: EventType::Warning,
                            reason: "SyncLoadBalancerFailed".into(),
                            note: Some(note.clone()),
                            action: "EnsureLoadBalancer".into(),
                            secondary: None,
                        };
                        match recorder.publish(&ev, &svc.object_ref(&())).await {
                            Ok(()) => {
                                reported.insert(uid, note);
                            }
                            Err(e) => {
                                tracing::debug!(error = %e, "recording a load balancer event failed (retried)");
                                retry = true;
                            }
                        }
                    }
                    Vec::new()
                }
                None => Vec::new(),
            };
            let have = current(svc);
            if have == target {
                continue;
            }
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
