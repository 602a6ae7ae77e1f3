//! The Endpoints and EndpointSlice controllers (upstream `endpoint` and `endpointslice`): each
//! Service with a selector gets the addresses of the pods it selects, ready ones apart from the
//! rest, kept current as pods come, go and flip readiness.
//!
//! Both run the same loop ([`run_loop`]) over shared Service and Pod informers and differ only
//! in what they write ([`legacy`] for core/v1 Endpoints, [`slices`]).

mod addresses;
mod legacy;
mod slices;

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::{FutureExt, StreamExt};
use k8s_openapi::api::core::v1::{Pod, Service};
use kube::runtime::reflector::{ObjectRef, Store};
use kube::runtime::watcher;
use kube::ResourceExt;

use crate::informer::{Event, Informers, Kind};
use crate::Error;

pub use legacy::run as run_endpoints;
pub use slices::run as run_slices;

/// A Service's namespace and name.
type Key = (String, String);

/// How often every service is looked at again, and how soon a failed sync is retried.
const RESYNC: Duration = Duration::from_secs(30);
const RETRY: Duration = Duration::from_millis(500);
/// How soon a sync waiting for the cache to see its own writes is tried again.
const RETRY_SOON: Duration = Duration::from_millis(20);

/// What one controller writes for a service.
pub(crate) trait Writer {
    /// The kind it writes.
    type Owned: Kind;
    /// Whether a change to a written object (not only its deletion) is synced back. The
    /// Endpoints controller only puts deleted ones back, as upstream: Endpoints written by
    /// hand for a service without a selector (or before its service) are left alone.
    const SYNC_CHANGES: bool;
    /// The service a written object belongs to.
    fn service_of(o: &Self::Owned) -> Option<Key>;
    /// Makes the written objects of `key` match `svc` (absent: deleted) over `pods` (the pods
    /// of its namespace), reading what exists from `owned`; `false` when `owned` has not
    /// caught up with this controller's last writes yet (the sync is retried shortly).
    async fn sync(
        &mut self,
        key: &Key,
        svc: Option<&Service>,
        pods: &[Arc<Pod>],
        owned: &Store<Self::Owned>,
    ) -> Result<bool, Error>;
}

enum Msg<O: Kind> {
    Svc(Event<Service>),
    Pod(Event<Pod>),
    Owned(Event<O>),
}

/// The event loop both controllers share: which services need a sync, and when.
pub(crate) async fn run_loop<W: Writer>(informers: Informers, mut writer: W) -> Result<(), Error> {
    let (services, svc_events) = informers.watch(Msg::<W::Owned>::Svc);
    let (pods, pod_events) = informers.watch(Msg::<W::Owned>::Pod);
    let (owned, owned_events) = informers.watch(Msg::<W::Owned>::Owned);
    let mut events = futures::stream::select_all(vec![svc_events, pod_events, owned_events]);
    let mut state = Dirty::default();
    let mut ready = [false; 3];
    let mut tick = tokio::time::interval(RESYNC);
    let mut retry_at: Option<tokio::time::Instant> = None;
    loop {
        let retry = async {
            match retry_at {
                Some(t) => tokio::time::sleep_until(t).await,
                None => futures::future::pending().await,
            }
        };
        tokio::select! {
            msg = events.next() => {
                let Some(msg) = msg else { return Ok(()) };
                state.handle::<W>(msg, &services, &mut ready);
                while let Some(Some(msg)) = events.next().now_or_never() {
                    state.handle::<W>(msg, &services, &mut ready);
                }
            }
            _ = tick.tick() => state.dirty.extend(services.state().iter().map(|s| key_of(&**s))),
            _ = retry => retry_at = None,
        }
        if !ready.iter().all(|r| *r) {
            continue;
        }
        let keys: Vec<Key> = state.dirty.drain().collect();
        let mut by_ns: HashMap<String, Vec<Arc<Pod>>> = HashMap::new();
        for key in keys {
            let svc = services.get(&ObjectRef::new(&key.1).within(&key.0));
            let ns_pods = by_ns.entry(key.0.clone()).or_insert_with(|| {
                pods.state()
                    .into_iter()
                    .filter(|p| p.namespace().as_deref() == Some(key.0.as_str()))
                    .collect()
            });
            state.remember(&key, svc.as_deref(), ns_pods);
            let delay = match writer.sync(&key, svc.as_deref(), ns_pods, &owned).await {
                Ok(true) => continue,
                Ok(false) => RETRY_SOON,
                Err(e) => {
                    tracing::debug!(service = %format!("{}/{}", key.0, key.1), error = %e, "endpoints sync failed (retried)");
                    RETRY
                }
            };
            state.dirty.insert(key);
            let at = tokio::time::Instant::now() + delay;
            retry_at = Some(retry_at.map_or(at, |t| t.min(at)));
        }
    }
}

fn key_of(o: &impl ResourceExt) -> Key {
    (o.namespace().unwrap_or_default(), o.name_any())
}

/// Services to sync, and which services each pod was last seen in (a pod relabelled out of a
/// selector must still leave that service).
#[derive(Default)]
struct Dirty {
    dirty: HashSet<Key>,
    member_of: HashMap<Key, HashSet<String>>,
}

impl Dirty {
    fn handle<W: Writer>(&mut self, msg: Msg<W::Owned>, services: &Store<Service>, ready: &mut [bool; 3]) {
        use watcher::Event as E;
        match msg {
            Msg::Svc(e) => match e {
                E::InitDone => ready[0] = true,
                E::Apply(s) | E::InitApply(s) | E::Delete(s) => {
                    self.dirty.insert(key_of(&*s));
                }
                E::Init => {}
            },
            Msg::Pod(e) => match e {
                E::InitDone => ready[1] = true,
                E::Apply(p) | E::InitApply(p) => self.pod_changed(&p, services, false),
                E::Delete(p) => self.pod_changed(&p, services, true),
                E::Init => {}
            },
            Msg::Owned(e) => match e {
                E::InitDone => ready[2] = true,
                // At start, objects left by services deleted meanwhile (upstream
                // `checkLeftoverEndpoints`).
                E::InitApply(o) if !ready[2] => self.dirty.extend(W::service_of(&o)),
                E::Apply(o) | E::InitApply(o) if W::SYNC_CHANGES => self.dirty.extend(W::service_of(&o)),
                E::Delete(o) => self.dirty.extend(W::service_of(&o)),
                E::Apply(_) | E::InitApply(_) | E::Init => {}
            },
        }
    }

    fn pod_changed(&mut self, pod: &Pod, services: &Store<Service>, deleted: bool) {
        let ns = pod.namespace().unwrap_or_default();
        let pod_key = (ns.clone(), pod.name_any());
        let was = if deleted {
            self.member_of.remove(&pod_key)
        } else {
            self.member_of.get(&pod_key).cloned()
        };
        if let Some(was) = was {
            self.dirty.extend(was.into_iter().map(|s| (ns.clone(), s)));
        }
        for svc in services.state() {
            if svc.namespace().as_deref() == Some(ns.as_str())
                && addresses::selector(&svc).is_some_and(|sel| addresses::selects(sel, pod.labels()))
            {
                self.dirty.insert(key_of(&*svc));
            }
        }
    }

    /// Records which of `pods` the service now selects.
    fn remember(&mut self, key: &Key, svc: Option<&Service>, pods: &[Arc<Pod>]) {
        let sel = svc.and_then(addresses::selector);
        for p in pods {
            let pod_key = (key.0.clone(), p.name_any());
            let selected = sel.is_some_and(|s| addresses::selects(s, p.labels()));
            if selected {
                self.member_of.entry(pod_key).or_default().insert(key.1.clone());
            } else if let Some(set) = self.member_of.get_mut(&pod_key) {
                set.remove(&key.1);
                if set.is_empty() {
                    self.member_of.remove(&pod_key);
                }
            }
        }
    }
}

/// What this controller last wrote, so a sync never acts on a cache that has not seen its own
/// writes yet (upstream's `EndpointSliceTracker`): names with the resourceVersion written, or
/// `None` for deleted, and when.
#[derive(Default)]
pub(crate) struct Written(HashMap<Key, HashMap<String, (Option<u64>, Instant)>>);

/// How long a write is waited for; past it (someone else changed the object meanwhile) the
/// cache is trusted again.
const EXPECT_FOR: Duration = Duration::from_secs(10);

impl Written {
    /// Notes a write of `name` (for service `key`); `rv` is `None` for a deletion.
    pub(crate) fn note(&mut self, key: &Key, name: String, rv: Option<&str>) {
        let rv = rv.and_then(|r| r.parse().ok());
        self.0
            .entry(key.clone())
            .or_default()
            .insert(name, (rv, Instant::now()));
    }

    /// Whether `owned` holds every write noted for `key`; forgets the writes it holds.
    pub(crate) fn caught_up<O: Kind>(&mut self, key: &Key, owned: &Store<O>) -> bool {
        let Some(w) = self.0.get_mut(key) else {
            return true;
        };
        w.retain(|name, (rv, at)| {
            if at.elapsed() > EXPECT_FOR {
                return false;
            }
            let cur = owned.get(&ObjectRef::new(name).within(&key.0));
            let cur_rv = cur
                .as_ref()
                .and_then(|o| o.resource_version())
                .and_then(|r| r.parse::<u64>().ok());
            match (rv, cur_rv) {
                (None, None) => false,
                (Some(want), Some(have)) => have < *want,
                _ => true,
            }
        });
        let done = w.is_empty();
        if done {
            self.0.remove(key);
        } else {
            tracing::debug!(service = %format!("{}/{}", key.0, key.1), waiting = ?w.keys().collect::<Vec<_>>(), "cache behind this controller's writes");
        }
        done
    }
}
