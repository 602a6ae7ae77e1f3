//! The EndpointSlice controller (upstream `endpointslice`): each selecting Service gets
//! EndpointSlices named `SERVICE-RAND`, owned by it, one group per distinct set of resolved
//! ports and at most 100 endpoints each, with ready/serving/terminating conditions; a Service
//! with no endpoints keeps one empty slice. Slices are reused before new ones are made.

use std::collections::BTreeMap;
use std::sync::Arc;

use k8s_openapi::api::core::v1::{Pod, Service};
use k8s_openapi::api::discovery::v1::{Endpoint, EndpointConditions, EndpointPort, EndpointSlice};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};
use kube::api::{DeleteParams, PostParams};
use kube::runtime::reflector::Store;
use kube::{Api, Client, ResourceExt};

use super::addresses::{self, Port};
use super::legacy::{labels_for, pod_ref};
use super::{Key, Writer, Written};
use crate::informer::Informers;
use crate::Error;

/// The label naming a slice's service.
pub const SERVICE_NAME_LABEL: &str = "kubernetes.io/service-name";
const MANAGED_BY_LABEL: &str = "endpointslice.kubernetes.io/managed-by";
const MANAGED_BY: &str = "endpointslice-controller.k8s.io";
/// upstream `--max-endpoints-per-slice` default.
const MAX_PER_SLICE: usize = 100;

/// Runs the EndpointSlice controller until its informers stop.
pub async fn run(informers: Informers) -> Result<(), Error> {
    let client = informers.client().clone();
    super::run_loop(
        informers,
        SliceWriter {
            client,
            written: Written::default(),
        },
    )
    .await
}

struct SliceWriter {
    client: Client,
    written: Written,
}

/// What one slice should hold.
#[derive(PartialEq)]
struct Want {
    address_type: String,
    ports: Option<Vec<EndpointPort>>,
    endpoints: Vec<Endpoint>,
}

/// Unnamed ports carry `name: ""`, as upstream writes them: kubectl's `describe svc`
/// dereferences the name of every slice port.
fn slice_port(p: &Port) -> EndpointPort {
    EndpointPort {
        name: Some(p.name.clone().unwrap_or_default()),
        port: Some(p.port),
        protocol: Some(p.protocol.clone()),
        app_protocol: p.app_protocol.clone(),
    }
}

/// upstream `podToEndpoint`: ready means serving and not terminating, or always with
/// publishNotReadyAddresses.
fn wanted(svc: &Service, pods: &[Arc<Pod>]) -> Vec<Want> {
    let publish = addresses::publish_not_ready(svc);
    let mut groups: BTreeMap<(String, Vec<Port>), Vec<Endpoint>> = BTreeMap::new();
    for e in addresses::endpoints(svc, pods, true) {
        let mut ports = e.ports.clone();
        ports.sort();
        let family = if e.ip.contains(':') { "IPv6" } else { "IPv4" };
        groups.entry((family.into(), ports)).or_default().push(Endpoint {
            addresses: vec![e.ip.clone()],
            conditions: Some(EndpointConditions {
                ready: Some(publish || (e.serving && !e.terminating)),
                serving: Some(e.serving),
                terminating: Some(e.terminating),
            }),
            hostname: e.hostname.clone(),
            node_name: e.node.clone(),
            target_ref: Some(pod_ref(&e.pod)),
            ..Default::default()
        });
    }
    let mut out = Vec::new();
    for ((family, ports), eps) in groups {
        for chunk in eps.chunks(MAX_PER_SLICE) {
            out.push(Want {
                address_type: family.clone(),
                ports: (!ports.is_empty()).then(|| ports.iter().map(slice_port).collect()),
                endpoints: chunk.to_vec(),
            });
        }
    }
    if out.is_empty() {
        // upstream keeps a placeholder so the service visibly has no endpoints.
        out.push(Want {
            address_type: "IPv4".into(),
            ports: None,
            endpoints: Vec::new(),
        });
    }
    out
}

fn holds(s: &EndpointSlice) -> Want {
    Want {
        address_type: s.address_type.clone(),
        ports: s.ports.clone(),
        endpoints: s.endpoints.clone(),
    }
}

fn owner(svc: &Service) -> OwnerReference {
    OwnerReference {
        api_version: "v1".into(),
        kind: "Service".into(),
        name: svc.name_any(),
        uid: svc.uid().unwrap_or_default(),
        controller: Some(true),
        block_owner_deletion: Some(true),
    }
}

impl Writer for SliceWriter {
    type Owned = EndpointSlice;
    const SYNC_CHANGES: bool = true;

    fn service_of(o: &EndpointSlice) -> Option<Key> {
        (o.labels().get(MANAGED_BY_LABEL).map(String::as_str) == Some(MANAGED_BY))
            .then(|| Some((o.namespace()?, o.labels().get(SERVICE_NAME_LABEL)?.clone())))
            .flatten()
    }

    async fn sync(
        &mut self,
        key: &Key,
        svc: Option<&Service>,
        pods: &[Arc<Pod>],
        owned: &Store<EndpointSlice>,
    ) -> Result<bool, Error> {
        if !self.written.caught_up(key, owned) {
            return Ok(false);
        }
        // A deleted service's slices go with it through the garbage collector, as upstream.
        let Some(svc) = svc.filter(|s| addresses::selector(s).is_some()) else {
            return Ok(true);
        };
        let api: Api<EndpointSlice> = Api::namespaced(self.client.clone(), &key.0);
        let mut labels = labels_for(svc);
        labels.insert(SERVICE_NAME_LABEL.into(), key.1.clone());
        labels.insert(MANAGED_BY_LABEL.into(), MANAGED_BY.into());
        let uid = svc.uid();
        let mut existing: Vec<Arc<EndpointSlice>> = Vec::new();
        let mut stale: Vec<Arc<EndpointSlice>> = Vec::new();
        for s in owned.state() {
            if s.namespace().as_deref() != Some(key.0.as_str()) || Self::service_of(&s).as_ref() != Some(key) {
                continue;
            }
            // Slices of an earlier service of the same name go.
            let ours = s
                .owner_references()
                .iter()
                .any(|r| r.controller == Some(true) && Some(&r.uid) == uid.as_ref());
            if ours {
                existing.push(s);
            } else {
                stale.push(s);
            }
        }
        existing.sort_by_key(|s| s.name_any());
        let mut want = wanted(svc, pods);
        // Slices already right stay as they are.
        let mut free: Vec<Arc<EndpointSlice>> = Vec::new();
        for s in existing {
            match want.iter().position(|w| *w == holds(&s) && s.labels() == &labels) {
                Some(i) => {
                    want.remove(i);
                }
                None => free.push(s),
            }
        }
        let (mut created, mut updated, mut deleted) = (0, 0, 0);
        for w in want {
            // Prefer reusing a slice with the same ports, then any.
            let reuse = free
                .iter()
                .position(|s| s.ports == w.ports)
                .or((!free.is_empty()).then_some(0))
                .map(|i| free.remove(i));
            let mut slice = EndpointSlice {
                metadata: ObjectMeta {
                    namespace: Some(key.0.clone()),
                    labels: Some(labels.clone()),
                    owner_references: Some(vec![owner(svc)]),
                    ..Default::default()
                },
                address_type: w.address_type,
                endpoints: w.endpoints,
                ports: w.ports,
            };
            let written = match reuse {
                Some(old) => {
                    slice.metadata.name = Some(old.name_any());
                    slice.metadata.resource_version = old.resource_version();
                    slice.metadata.annotations = old.metadata.annotations.clone();
                    updated += 1;
                    api.replace(&old.name_any(), &PostParams::default(), &slice).await
                }
                None => {
                    slice.metadata.generate_name = Some(format!("{}-", key.1));
                    created += 1;
                    api.create(&PostParams::default(), &slice).await
                }
            };
            match written {
                Ok(s) => self.written.note(key, s.name_any(), s.resource_version().as_deref()),
                Err(kube::Error::Api(e)) if e.code == 403 && e.message.contains("terminat") => return Ok(true),
                Err(e) => return Err(e.into()),
            }
        }
        for s in free.into_iter().chain(stale) {
            deleted += 1;
            match api.delete(&s.name_any(), &DeleteParams::default()).await {
                Ok(_) => self.written.note(key, s.name_any(), None),
                Err(kube::Error::Api(e)) if e.code == 404 => {}
                Err(e) => return Err(e.into()),
            }
        }
        if created + updated + deleted > 0 {
            tracing::debug!(service = %format!("{}/{}", key.0, key.1), created, updated, deleted, "reconciled endpoint slices");
        }
        Ok(true)
    }
}
