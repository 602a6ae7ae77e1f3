//! Node IPAM (kube-controller-manager's `nodeipam` controller, range allocator): every node
//! without a pod range gets the next free /24 of the cluster CIDR in `spec.podCIDR` and
//! `spec.podCIDRs`, so pod addresses are unique across the cluster. The allocation lives in
//! the Node objects (a restarted controller rebuilds it from them); a deleted node's range is
//! free again. Ranges a node brings itself (set at registration) are respected.

use std::collections::HashMap;
use std::net::Ipv4Addr;

use futures::StreamExt;
use k8s_openapi::api::core::v1::Node;
use kube::api::{Patch, PatchParams};
use kube::runtime::watcher;
use kube::{Api, Resource, ResourceExt};
use serde_json::json;

use crate::events::{Event, EventType, Recorder, Reporter};
use crate::informer::Informers;
use crate::Error;

/// An IPv4 range: base address and prefix length.
pub type Cidr = (Ipv4Addr, u8);

/// Settings of the allocator.
#[derive(Debug, Clone)]
pub struct Options {
    /// The cluster's pod network (`--cluster-cidr`).
    pub cluster_cidr: Cidr,
    /// Prefix length of each node's range (`--node-cidr-mask-size`, 24).
    pub node_mask: u8,
    /// Ranges never handed out (the cluster's own addresses, ranges reserved for nodes that
    /// bring their own).
    pub reserved: Vec<Cidr>,
}

/// Parses `a.b.c.d/n`.
pub fn parse_cidr(s: &str) -> Option<Cidr> {
    let (ip, len) = s.split_once('/')?;
    let len: u8 = len.parse().ok()?;
    (len <= 32).then_some(())?;
    Some((ip.parse().ok()?, len))
}

fn mask(len: u8) -> u32 {
    if len == 0 {
        0
    } else {
        u32::MAX << (32 - u32::from(len))
    }
}

/// Whether two ranges share an address.
pub fn overlaps(a: Cidr, b: Cidr) -> bool {
    let m = mask(a.1.min(b.1));
    u32::from(a.0) & m == u32::from(b.0) & m
}

/// The ranges in use: nodes' podCIDRs and the reserved ones.
fn in_use<'a>(nodes: impl Iterator<Item = &'a Node>) -> Vec<Cidr> {
    nodes
        .filter_map(|n| n.spec.as_ref())
        .flat_map(|s| s.pod_cidrs.iter().flatten().chain(s.pod_cidr.iter()))
        .filter_map(|c| parse_cidr(c))
        .collect()
}

/// The first node range of `opts.cluster_cidr` that overlaps none of `used`.
pub fn next_free(opts: &Options, used: &[Cidr]) -> Option<Cidr> {
    let (base, len) = opts.cluster_cidr;
    if opts.node_mask < len || opts.node_mask > 32 {
        return None;
    }
    let count = 1u64 << (opts.node_mask - len);
    let step = 1u64 << (32 - opts.node_mask);
    let start = u64::from(u32::from(base) & mask(len));
    (0..count)
        .map(|i| (Ipv4Addr::from((start + i * step) as u32), opts.node_mask))
        .find(|c| !used.iter().chain(&opts.reserved).any(|u| overlaps(*c, *u)))
}

/// Runs the allocator until the future is dropped.
pub async fn run(informers: Informers, opts: Options) -> Result<(), Error> {
    let client = informers.client().clone();
    let (store, mut events) = informers.watch::<Node, _>(|e| e);
    let recorder = Recorder::new(
        client.clone(),
        Reporter {
            controller: "cidrAllocator".into(),
            instance: None,
        },
    );
    let api: Api<Node> = Api::all(client);
    // Ranges handed out whose node the store may not show with them yet.
    let mut given: HashMap<String, Cidr> = HashMap::new();
    let mut synced = false;
    let mut exhausted_told: std::collections::HashSet<String> = Default::default();
    while let Some(ev) = events.next().await {
        match &ev {
            watcher::Event::InitDone => synced = true,
            watcher::Event::Delete(n) => {
                // The deleted node's range is free again.
                given.remove(&n.name_any());
                exhausted_told.remove(&n.name_any());
            }
            _ => {}
        }
        if !synced {
            continue;
        }
        let nodes = store.state();
        given.retain(|name, _| nodes.iter().any(|n| n.name_any() == *name));
        for node in &nodes {
            let has = node
                .spec
                .as_ref()
                .is_some_and(|s| s.pod_cidr.as_deref().is_some_and(|c| !c.is_empty()));
            if has {
                given.remove(&node.name_any());
                continue;
            }
            let name = node.name_any();
            let mut used = in_use(nodes.iter().map(|n| n.as_ref()));
            used.extend(given.iter().filter(|(n, _)| **n != name).map(|(_, c)| *c));
            let Some(cidr) = given.get(&name).copied().or_else(|| next_free(&opts, &used)) else {
                if exhausted_told.insert(name.clone()) {
                    tracing::warn!(node = %name, "no pod range left in the cluster CIDR");
                    let ev = Event {
                        type_: EventType::Normal,
                        reason: "CIDRNotAvailable".into(),
                        note: Some(format!("Node {name} status is now: CIDRNotAvailable")),
                        action: "CIDRNotAvailable".into(),
                        secondary: None,
                    };
                    let _ = recorder.publish(&ev, &node.object_ref(&())).await;
                }
                continue;
            };
            let text = format!("{}/{}", cidr.0, cidr.1);
            let patch = json!({
                "metadata": {"resourceVersion": node.resource_version()},
                "spec": {"podCIDR": text, "podCIDRs": [text]},
            });
            match api.patch(&name, &PatchParams::default(), &Patch::Merge(&patch)).await {
                Ok(_) => {
                    tracing::debug!(node = %name, cidr = %text, "allocated the node's pod range");
                    given.insert(name, cidr);
                }
                // A newer version of the node comes as an event; it is handled then.
                Err(e) => tracing::debug!(node = %name, error = %e, "assigning a pod range failed"),
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn c(s: &str) -> Cidr {
        parse_cidr(s).unwrap()
    }

    #[test]
    fn allocates_first_free_node_range_around_used_and_reserved() {
        let opts = Options {
            cluster_cidr: c("10.42.0.0/16"),
            node_mask: 24,
            reserved: vec![c("10.42.0.0/24"), c("10.42.1.0/24")],
        };
        assert_eq!(next_free(&opts, &[]), Some(c("10.42.2.0/24")));
        assert_eq!(
            next_free(&opts, &[c("10.42.2.0/24"), c("10.42.3.0/24")]),
            Some(c("10.42.4.0/24"))
        );
        // A larger range in use blocks every node range inside it.
        assert_eq!(next_free(&opts, &[c("10.42.0.0/20")]), Some(c("10.42.16.0/24")));
        let tiny = Options {
            cluster_cidr: c("10.42.0.0/23"),
            node_mask: 24,
            reserved: vec![],
        };
        assert_eq!(next_free(&tiny, &[c("10.42.0.0/24"), c("10.42.1.0/24")]), None);
    }

    #[test]
    fn cidrs_parse_and_overlap() {
        assert!(overlaps(c("10.42.1.0/24"), c("10.42.0.0/16")));
        assert!(!overlaps(c("10.42.1.0/24"), c("10.42.2.0/24")));
        assert_eq!(parse_cidr("10.1.2.0/33"), None);
        assert_eq!(parse_cidr("nope"), None);
    }
}
