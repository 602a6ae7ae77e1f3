//! The Endpoints controller (upstream `endpoint`; core/v1 Endpoints, which EndpointSlices replace): one `Endpoints` object per selecting
//! Service, named after it, with ready pods under `addresses` and the others under
//! `notReadyAddresses`, grouped into subsets by their resolved ports.

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;

use k8s_openapi::api::core::v1::{
    EndpointAddress, EndpointPort, EndpointSubset, Endpoints, ObjectReference, Pod, Service,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::api::{DeleteParams, PostParams};
use kube::runtime::reflector::{ObjectRef, Store};
use kube::{Api, Client, ResourceExt};

use super::addresses::{self, Endpoint, Port};
use super::{Key, Writer, Written};
use crate::informer::Informers;
use crate::Error;

/// The label upstream puts on the endpoints of headless services.
pub(crate) const HEADLESS_LABEL: &str = "service.kubernetes.io/headless";

/// Runs the Endpoints controller until its informers stop.
pub async fn run(informers: Informers) -> Result<(), Error> {
    let client = informers.client().clone();
    super::run_loop(
        informers,
        EndpointsWriter {
            client,
            written: Written::default(),
            ours: HashSet::new(),
            started: jiff::Timestamp::now(),
        },
    )
    .await
}

struct EndpointsWriter {
    client: Client,
    written: Written,
    /// Endpoints this controller wrote since it started.
    ours: HashSet<Key>,
    /// When it started: older Endpoints without a service are left over from services
    /// deleted while it was not running.
    started: jiff::Timestamp,
}

fn address(e: &Endpoint) -> EndpointAddress {
    EndpointAddress {
        ip: e.ip.clone(),
        hostname: e.hostname.clone(),
        node_name: e.node.clone(),
        target_ref: Some(pod_ref(&e.pod)),
    }
}

/// The reference from an endpoint to its pod.
pub(crate) fn pod_ref(p: &Pod) -> ObjectReference {
    ObjectReference {
        kind: Some("Pod".into()),
        namespace: p.namespace(),
        name: Some(p.name_any()),
        uid: p.uid(),
        ..Default::default()
    }
}

fn endpoint_port(p: &Port) -> EndpointPort {
    EndpointPort {
        name: p.name.clone(),
        port: p.port,
        protocol: Some(p.protocol.clone()),
        app_protocol: p.app_protocol.clone(),
    }
}

/// upstream `RepackSubsets`: one subset per distinct set of ports, addresses sorted by IP.
fn subsets(svc: &Service, eps: &[Endpoint]) -> Option<Vec<EndpointSubset>> {
    let publish = addresses::publish_not_ready(svc);
    let mut by_ports: BTreeMap<Vec<Port>, (Vec<EndpointAddress>, Vec<EndpointAddress>)> = BTreeMap::new();
    for e in eps {
        let mut ports = e.ports.clone();
        ports.sort();
        let entry = by_ports.entry(ports).or_default();
        if publish || e.serving {
            entry.0.push(address(e));
        } else {
            entry.1.push(address(e));
        }
    }
    let out: Vec<EndpointSubset> = by_ports
        .into_iter()
        .map(|(ports, (ready, not_ready))| EndpointSubset {
            addresses: (!ready.is_empty()).then_some(ready),
            not_ready_addresses: (!not_ready.is_empty()).then_some(not_ready),
            ports: (!ports.is_empty()).then(|| ports.iter().map(endpoint_port).collect()),
        })
        .collect();
    (!out.is_empty()).then_some(out)
}

/// The service's labels, plus upstream's headless marker.
pub(crate) fn labels_for(svc: &Service) -> BTreeMap<String, String> {
    let mut labels = svc.labels().clone();
    if addresses::headless(svc) {
        labels.insert(HEADLESS_LABEL.into(), String::new());
    } else {
        labels.remove(HEADLESS_LABEL);
    }
    labels
}

impl Writer for EndpointsWriter {
    type Owned = Endpoints;
    const SYNC_CHANGES: bool = false;

    fn service_of(o: &Endpoints) -> Option<Key> {
        Some((o.namespace()?, o.name_any()))
    }

    async fn sync(
        &mut self,
        key: &Key,
        svc: Option<&Service>,
        pods: &[Arc<Pod>],
        owned: &Store<Endpoints>,
    ) -> Result<bool, Error> {
        if !self.written.caught_up(key, owned) {
            return Ok(false);
        }
        let api: Api<Endpoints> = Api::namespaced(self.client.clone(), &key.0);
        let current = owned.get(&ObjectRef::new(&key.1).within(&key.0));
        let Some(svc) = svc else {
            // Only what this controller wrote, or what a deleted service left before it
            // started: Endpoints written by hand (even before their service) stay.
            let leftover = current
                .as_ref()
                .and_then(|c| c.metadata.creation_timestamp.as_ref())
                // Timestamps have whole seconds: the second it started in is not "before".
                .is_some_and(|t| t.0 + jiff::SignedDuration::from_secs(1) <= self.started);
            if current.is_some() && (self.ours.remove(key) || leftover) {
                tracing::debug!(service = %format!("{}/{}", key.0, key.1), "service gone: deleting its endpoints");
                match api.delete(&key.1, &DeleteParams::default()).await {
                    Ok(_) => self.written.note(key, key.1.clone(), None),
                    Err(kube::Error::Api(e)) if e.code == 404 => {}
                    Err(e) => return Err(e.into()),
                }
            }
            return Ok(true);
        };
        if addresses::selector(svc).is_none() {
            return Ok(true);
        }
        let publish = addresses::publish_not_ready(svc);
        let eps = addresses::endpoints(svc, pods, publish);
        let subsets = subsets(svc, &eps);
        let labels = labels_for(svc);
        if let Some(cur) = &current {
            if cur.subsets == subsets && cur.labels() == &labels {
                return Ok(true);
            }
        }
        let mut want = Endpoints {
            metadata: ObjectMeta {
                name: Some(key.1.clone()),
                namespace: Some(key.0.clone()),
                labels: Some(labels),
                ..Default::default()
            },
            subsets,
        };
        let ready = eps.iter().filter(|e| publish || e.serving).count();
        tracing::debug!(service = %format!("{}/{}", key.0, key.1), ready, not_ready = eps.len() - ready, "writing endpoints");
        let written = match current {
            Some(cur) => {
                want.metadata.resource_version = cur.resource_version();
                want.metadata.annotations = cur.metadata.annotations.clone();
                api.replace(&key.1, &PostParams::default(), &want).await
            }
            None => api.create(&PostParams::default(), &want).await,
        };
        match written {
            Ok(ep) => {
                self.written.note(key, key.1.clone(), ep.resource_version().as_deref());
                self.ours.insert(key.clone());
            }
            // The namespace is going away: nothing to keep current.
            Err(kube::Error::Api(e)) if e.code == 403 && e.message.contains("terminat") => {}
            Err(e) => return Err(e.into()),
        }
        Ok(true)
    }
}
