//! Keeps the zone in step with the API: reflectors over all Services and EndpointSlices, and
//! the records of a Service recomputed whenever it or one of its slices changes. A (re)list
//! of either kind rebuilds the whole zone, since objects deleted while the watch was down are
//! told by no event.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::sync::Arc;

use futures::{FutureExt, StreamExt};
use k8s_openapi::api::core::v1::Service;
use k8s_openapi::api::discovery::v1::EndpointSlice;
use kube::runtime::reflector::{self, ObjectRef, Store};
use kube::runtime::{watcher, WatchStreamExt};
use kube::{Api, Client, Resource, ResourceExt};
use parking_lot::RwLock;
use tokio::sync::watch;
use tracing::{debug, info, warn};

use super::zone::{self, ServiceKey, Zone, SERVICE_NAME_LABEL};

/// An event of either stream, boxed: a Service is several times the size of a slice.
enum Change {
    Service(Box<Result<watcher::Event<Service>, watcher::Error>>),
    Slice(Box<Result<watcher::Event<EndpointSlice>, watcher::Error>>),
}

/// Drops what the zone never reads before an object is cached: managedFields and annotations
/// (often the largest part of an object, e.g. kubectl's last-applied configuration).
fn trim<K: Resource>(o: &mut K) {
    let meta = o.meta_mut();
    meta.managed_fields = None;
    meta.annotations = None;
}

/// Watches until the streams end (they retry with backoff, so in practice until dropped),
/// updating `zone` and telling `synced` once both kinds were listed.
pub(super) async fn run(client: Client, zone: Arc<RwLock<Zone>>, synced: watch::Sender<bool>) {
    let (services, svc_writer) = reflector::store::<Service>();
    let (slices, slice_writer) = reflector::store::<EndpointSlice>();
    let svc_events = reflector::reflector(
        svc_writer,
        watcher(Api::<Service>::all(client.clone()), watcher::Config::default())
            .default_backoff()
            .modify(trim::<Service>),
    )
    .map(|e| Change::Service(Box::new(e)));
    let slice_events = reflector::reflector(
        slice_writer,
        watcher(Api::<EndpointSlice>::all(client), watcher::Config::default())
            .default_backoff()
            .modify(trim::<EndpointSlice>),
    )
    .map(|e| Change::Slice(Box::new(e)));
    let mut events = std::pin::pin!(futures::stream::select(svc_events, slice_events));
    let origin = zone.read().origin().clone();
    let mut state = State {
        origin,
        services,
        slices,
        index: SliceIndex::default(),
        services_listed: false,
        slices_listed: false,
    };
    while let Some(change) = events.next().await {
        let mut batch = Batch::default();
        state.take(change, &mut batch);
        // Changes that have already arrived are folded into one update.
        while let Some(Some(change)) = events.next().now_or_never() {
            state.take(change, &mut batch);
        }
        state.apply(batch, &zone, &synced);
    }
}

/// What a run of events asks for.
#[derive(Default)]
struct Batch {
    /// Rebuild every Service (after a list).
    all: bool,
    /// Recompute these Services.
    services: HashSet<ServiceKey>,
}

struct State {
    origin: hickory_server::proto::rr::Name,
    services: Store<Service>,
    slices: Store<EndpointSlice>,
    index: SliceIndex,
    services_listed: bool,
    slices_listed: bool,
}

fn key_of<K: Resource>(o: &K) -> Option<ServiceKey> {
    Some((o.meta().namespace.clone()?, o.meta().name.clone()?))
}

impl State {
    fn take(&mut self, change: Change, batch: &mut Batch) {
        match change {
            Change::Service(ev) => match *ev {
                Ok(ev) => self.service(ev, batch),
                Err(e) => warn!(error = %e, "cluster DNS: watching Services failed (retrying)"),
            },
            Change::Slice(ev) => match *ev {
                Ok(ev) => self.slice(ev, batch),
                Err(e) => warn!(error = %e, "cluster DNS: watching EndpointSlices failed (retrying)"),
            },
        }
    }

    fn service(&mut self, ev: watcher::Event<Service>, batch: &mut Batch) {
        match ev {
            watcher::Event::Apply(s) | watcher::Event::Delete(s) => batch.services.extend(key_of(&s)),
            watcher::Event::InitDone => {
                self.services_listed = true;
                batch.all = true;
            }
            watcher::Event::Init | watcher::Event::InitApply(_) => {}
        }
    }

    fn slice(&mut self, ev: watcher::Event<EndpointSlice>, batch: &mut Batch) {
        match ev {
            watcher::Event::Apply(s) => batch.services.extend(self.index.set(&s)),
            watcher::Event::Delete(s) => batch.services.extend(self.index.remove(&s)),
            watcher::Event::InitDone => {
                self.index.rebuild(&self.slices.state());
                self.slices_listed = true;
                batch.all = true;
            }
            watcher::Event::Init | watcher::Event::InitApply(_) => {}
        }
    }

    /// The records of one Service from the stores, `None` once it is gone.
    fn records(&self, (ns, name): &ServiceKey) -> Option<zone::ServiceRecords> {
        let svc = self.services.get(&ObjectRef::new(name).within(ns))?;
        let slices: Vec<Arc<EndpointSlice>> = self
            .index
            .slices_of(ns, name)
            .filter_map(|s| self.slices.get(&ObjectRef::new(s).within(ns)))
            .collect();
        zone::service_records(&self.origin, &svc, &slices)
    }

    fn apply(&self, batch: Batch, zone: &RwLock<Zone>, synced: &watch::Sender<bool>) {
        // Until both kinds are listed the zone stays empty and questions answer SERVFAIL:
        // a partial zone would answer NXDOMAIN for names that exist.
        if !(self.services_listed && self.slices_listed) {
            return;
        }
        let first = !*synced.borrow();
        if batch.all || first {
            // Built outside the lock; queries see the old zone until the swap.
            let all: HashMap<ServiceKey, zone::ServiceRecords> = self
                .services
                .state()
                .iter()
                .filter_map(|s| key_of(s.as_ref()))
                .filter_map(|k| Some((k.clone(), self.records(&k)?)))
                .collect();
            let mut z = zone.write();
            z.replace(all);
            debug!(
                services = z.services(),
                records = z.records(),
                "cluster DNS zone rebuilt"
            );
        } else {
            for key in batch.services {
                let records = self.records(&key);
                let count = records.as_ref().map_or(0, zone::ServiceRecords::len);
                if zone.write().set(key.clone(), records) {
                    debug!(namespace = %key.0, service = %key.1, records = count, "cluster DNS records changed");
                }
            }
        }
        if first {
            let z = zone.read();
            info!(
                services = z.services(),
                records = z.records(),
                "cluster DNS has its first list of Services and EndpointSlices"
            );
            synced.send_replace(true);
        }
    }
}

/// Which Service each EndpointSlice belongs to (by its `kubernetes.io/service-name` label),
/// and the slices of each Service, so a change recomputes only the Services it touches.
#[derive(Default)]
struct SliceIndex {
    owner: HashMap<(String, String), String>,
    by_service: HashMap<ServiceKey, BTreeSet<String>>,
}

impl SliceIndex {
    /// Records `slice`'s owner; returns the Services to recompute: the new owner and, when
    /// the label changed, the old one.
    fn set(&mut self, slice: &EndpointSlice) -> Vec<ServiceKey> {
        let mut touched: Vec<ServiceKey> = self.remove(slice).into_iter().collect();
        let (Some((ns, name)), Some(svc)) = (key_of(slice), slice.labels().get(SERVICE_NAME_LABEL)) else {
            return touched;
        };
        let key = (ns.clone(), svc.clone());
        self.by_service.entry(key.clone()).or_default().insert(name.clone());
        self.owner.insert((ns, name), svc.clone());
        if !touched.contains(&key) {
            touched.push(key);
        }
        touched
    }

    /// Forgets `slice`; returns the Service it belonged to.
    fn remove(&mut self, slice: &EndpointSlice) -> Option<ServiceKey> {
        let (ns, name) = key_of(slice)?;
        let svc = self.owner.remove(&(ns.clone(), name.clone()))?;
        let key = (ns, svc);
        if let Some(set) = self.by_service.get_mut(&key) {
            set.remove(&name);
            if set.is_empty() {
                self.by_service.remove(&key);
            }
        }
        Some(key)
    }

    fn rebuild(&mut self, all: &[Arc<EndpointSlice>]) {
        *self = SliceIndex::default();
        for s in all {
            self.set(s);
        }
    }

    fn slices_of<'a>(&'a self, ns: &str, svc: &str) -> impl Iterator<Item = &'a String> + 'a {
        self.by_service
            .get(&(ns.to_string(), svc.to_string()))
            .into_iter()
            .flatten()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn slice(name: &str, svc: Option<&str>) -> EndpointSlice {
        let labels = svc.map(|s| json!({SERVICE_NAME_LABEL: s})).unwrap_or(json!({}));
        serde_json::from_value(json!({
            "metadata": {"name": name, "namespace": "ns", "labels": labels},
            "addressType": "IPv4",
            "endpoints": []
        }))
        .expect("valid EndpointSlice")
    }

    fn key(svc: &str) -> ServiceKey {
        ("ns".to_string(), svc.to_string())
    }

    fn slices_of(index: &SliceIndex, svc: &str) -> Vec<String> {
        index.slices_of("ns", svc).cloned().collect()
    }

    #[test]
    fn slice_index_follows_labels() {
        let mut index = SliceIndex::default();
        assert_eq!(index.set(&slice("a-1", Some("a"))), [key("a")]);
        assert_eq!(index.set(&slice("a-2", Some("a"))), [key("a")]);
        assert_eq!(slices_of(&index, "a"), ["a-1", "a-2"]);
        // Relabelled: both the old and the new Service are recomputed.
        assert_eq!(index.set(&slice("a-2", Some("b"))), [key("a"), key("b")]);
        assert_eq!(slices_of(&index, "a"), ["a-1"]);
        assert_eq!(slices_of(&index, "b"), ["a-2"]);
        // Unlabelled: belongs to nothing any more.
        assert_eq!(index.set(&slice("a-2", None)), [key("b")]);
        assert!(slices_of(&index, "b").is_empty());
        assert_eq!(index.remove(&slice("a-1", Some("a"))), Some(key("a")));
        assert_eq!(index.remove(&slice("a-1", Some("a"))), None);
        assert!(index.by_service.is_empty() && index.owner.is_empty());
        index.rebuild(&[Arc::new(slice("c-1", Some("c")))]);
        assert_eq!(slices_of(&index, "c"), ["c-1"]);
    }
}
