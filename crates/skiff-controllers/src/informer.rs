//! Shared informers, as kube-controller-manager's `SharedInformerFactory` gives its controllers:
//! one watch and one store per kind, whatever the number of controllers reading it.
//!
//! Each informer runs in its own task, so its watch is always drained (a controller busy with
//! a sync batch never makes the API server drop its watch for lagging), and it tells every
//! subscriber of each change only after its store holds that change: a controller that reacts to
//! an event always finds the object in the store. A relist is told as one batch after the store
//! was swapped (`Init`, `InitApply` for every object, `Delete` for objects gone meanwhile,
//! `InitDone`), the way client-go's `Replace` delivers it.
//!
//! kube-runtime's `reflector` stream yields relisted objects (`InitApply`) before its store takes
//! them in at `InitDone`; a controller reacting to them read a store without them, so ReplicaSet
//! expectations were met by pods the store did not have yet and pods were created twice.

use std::any::{Any, TypeId};
use std::collections::{HashMap, HashSet};
use std::fmt::Debug;
use std::sync::Arc;

use futures::{Stream, StreamExt};
use k8s_openapi::api::core::v1::Pod;
use kube::runtime::reflector::{self, ObjectRef, Store};
use kube::runtime::{watcher, WatchStreamExt};
use kube::{Api, Client, Resource};
use parking_lot::Mutex;
use serde::de::DeserializeOwned;
use tokio::sync::mpsc;

use crate::Error;

/// What a subscriber receives: watch events whose objects are shared with the store.
pub type Event<K> = watcher::Event<Arc<K>>;

/// Bounds of the kinds an informer can watch.
pub trait Kind: Resource<DynamicType = ()> + Clone + DeserializeOwned + Debug + Send + Sync + 'static {}
impl<K: Resource<DynamicType = ()> + Clone + DeserializeOwned + Debug + Send + Sync + 'static> Kind for K {}

/// Drops what no controller reads before an object is cached: managedFields (often the largest
/// part of an object; the server keeps its own on updates) and, for pods, what
/// [`crate::pods::trim_cached`] drops.
fn trim<K: Kind>(o: &mut K) {
    o.meta_mut().managed_fields = None;
    if let Some(pod) = (o as &mut dyn Any).downcast_mut::<Pod>() {
        crate::pods::trim_cached(pod);
    }
}

/// The informers of one set of controllers; clones share them. Watches stop when the last
/// clone is dropped.
#[derive(Clone)]
pub struct Informers(Arc<Factory>);

struct Factory {
    client: Client,
    started: Mutex<HashMap<TypeId, Box<dyn Any + Send + Sync>>>,
    tasks: Mutex<Vec<tokio::task::AbortHandle>>,
}

impl Drop for Factory {
    fn drop(&mut self) {
        for t in self.tasks.get_mut().drain(..) {
            t.abort();
        }
    }
}

impl Informers {
    /// A factory whose informers watch through `client`.
    pub fn new(client: Client) -> Self {
        Informers(Arc::new(Factory {
            client,
            started: Mutex::default(),
            tasks: Mutex::default(),
        }))
    }

    /// The client the informers use, for the controllers' own requests.
    pub fn client(&self) -> &Client {
        &self.0.client
    }

    /// The store of kind `K` once it holds a complete list.
    pub async fn synced<K: Kind>(&self) -> Result<Store<K>, Error> {
        let store = self.get::<K>().store();
        store.wait_until_ready().await.map_err(|e| Error::Sync(e.to_string()))?;
        Ok(store)
    }

    /// The store of kind `K` and its changes wrapped by `wrap`, for a controller's event loop.
    pub fn watch<K: Kind, M: 'static>(
        &self,
        wrap: fn(Event<K>) -> M,
    ) -> (Store<K>, futures::stream::BoxStream<'static, M>) {
        let shared = self.get::<K>();
        (shared.store(), shared.subscribe().map(wrap).boxed())
    }

    /// The informer of all objects of kind `K`, started on first use.
    pub fn get<K: Kind>(&self) -> Shared<K> {
        let mut started = self.0.started.lock();
        let entry = started.entry(TypeId::of::<K>()).or_insert_with(|| {
            let (shared, task) = Shared::<K>::start(Api::all(self.0.client.clone()));
            self.0.tasks.lock().push(task.abort_handle());
            Box::new(shared)
        });
        match entry.downcast_ref::<Shared<K>>() {
            Some(s) => s.clone(),
            // Entries are keyed by their own TypeId, so the downcast cannot fail.
            None => unreachable!("informer of another kind under {}", std::any::type_name::<K>()),
        }
    }
}

/// One kind's store and the subscribers to its changes.
pub struct Shared<K: Kind> {
    store: Store<K>,
    subs: Arc<Mutex<Subscribers<K>>>,
}

impl<K: Kind> Clone for Shared<K> {
    fn clone(&self) -> Self {
        Shared {
            store: self.store.clone(),
            subs: self.subs.clone(),
        }
    }
}

struct Subscribers<K> {
    /// The store holds a complete list.
    synced: bool,
    senders: Vec<mpsc::UnboundedSender<Event<K>>>,
}

impl<K> Subscribers<K> {
    fn send(&mut self, ev: Event<K>) {
        self.senders.retain(|s| s.send(ev.clone()).is_ok());
    }
}

impl<K: Kind> Shared<K> {
    fn start(api: Api<K>) -> (Self, tokio::task::JoinHandle<()>) {
        let events = watcher(api, watcher::Config::default())
            .default_backoff()
            .modify(trim::<K>);
        Self::start_with(events)
    }

    fn start_with(
        events: impl Stream<Item = Result<watcher::Event<K>, watcher::Error>> + Send + 'static,
    ) -> (Self, tokio::task::JoinHandle<()>) {
        let (store, writer) = reflector::store::<K>();
        let subs = Arc::new(Mutex::new(Subscribers {
            synced: false,
            senders: Vec::new(),
        }));
        let shared = Shared { store, subs };
        let task = tokio::spawn(shared.clone().feed(events, writer));
        (shared, task)
    }

    /// The objects seen so far.
    pub fn store(&self) -> Store<K> {
        self.store.clone()
    }

    /// Changes from now on, after the current objects (as `Init`, `InitApply`…, `InitDone`)
    /// if the store already holds a complete list.
    pub fn subscribe(&self) -> impl Stream<Item = Event<K>> + Send + 'static {
        let (tx, rx) = mpsc::unbounded_channel();
        let mut subs = self.subs.lock();
        if subs.synced {
            let _ = tx.send(watcher::Event::Init);
            for o in self.store.state() {
                let _ = tx.send(watcher::Event::InitApply(o));
            }
            let _ = tx.send(watcher::Event::InitDone);
        }
        subs.senders.push(tx);
        tokio_stream::wrappers::UnboundedReceiverStream::new(rx)
    }

    async fn feed(
        self,
        events: impl Stream<Item = Result<watcher::Event<K>, watcher::Error>>,
        mut writer: reflector::store::Writer<K>,
    ) {
        let mut stream = std::pin::pin!(events);
        let mut before_relist: Vec<Arc<K>> = Vec::new();
        while let Some(ev) = stream.next().await {
            let ev = match ev {
                Ok(ev) => ev,
                Err(e) => {
                    tracing::debug!(kind = %K::kind(&()), error = %e, "informer watch failed (retried)");
                    continue;
                }
            };
            if matches!(ev, watcher::Event::InitDone) {
                before_relist = self.store.state();
            }
            writer.apply_watcher_event(&ev);
            match ev {
                watcher::Event::Apply(o) => {
                    // The store's own Arc, so subscribers share its copy.
                    if let Some(o) = self.store.get(&ObjectRef::from_obj(&o)) {
                        self.subs.lock().send(watcher::Event::Apply(o));
                    }
                }
                watcher::Event::Delete(o) => self.subs.lock().send(watcher::Event::Delete(Arc::new(o))),
                watcher::Event::Init | watcher::Event::InitApply(_) => {}
                watcher::Event::InitDone => {
                    let now = self.store.state();
                    let present: HashSet<ObjectRef<K>> = now.iter().map(|o| ObjectRef::from_obj(&**o)).collect();
                    let gone = std::mem::take(&mut before_relist)
                        .into_iter()
                        .filter(|o| !present.contains(&ObjectRef::from_obj(&**o)));
                    let mut subs = self.subs.lock();
                    subs.send(watcher::Event::Init);
                    for o in now {
                        subs.send(watcher::Event::InitApply(o));
                    }
                    for o in gone {
                        subs.send(watcher::Event::Delete(o));
                    }
                    subs.send(watcher::Event::InitDone);
                    subs.synced = true;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use kube::api::ObjectMeta;

    fn pod(name: &str) -> Pod {
        Pod {
            metadata: ObjectMeta {
                name: Some(name.into()),
                namespace: Some("default".into()),
                ..Default::default()
            },
            ..Default::default()
        }
    }

    fn names(evs: &[Event<Pod>]) -> Vec<String> {
        evs.iter()
            .map(|e| match e {
                watcher::Event::Init => "init".to_string(),
                watcher::Event::InitApply(p) => format!("initapply {}", p.name_any()),
                watcher::Event::InitDone => "initdone".to_string(),
                watcher::Event::Apply(p) => format!("apply {}", p.name_any()),
                watcher::Event::Delete(p) => format!("delete {}", p.name_any()),
            })
            .collect()
    }

    /// Takes what the subscriber has been sent, checking that every object it is told about
    /// is already in the store.
    async fn take(sub: &mut (impl Stream<Item = Event<Pod>> + Unpin), store: &Store<Pod>, n: usize) -> Vec<Event<Pod>> {
        let mut out = Vec::new();
        while out.len() < n {
            let ev = tokio::time::timeout(std::time::Duration::from_secs(5), sub.next())
                .await
                .expect("an event within 5 s")
                .expect("the subscription is open");
            if let watcher::Event::Apply(p) | watcher::Event::InitApply(p) = &ev {
                assert!(
                    store.get(&ObjectRef::from_obj(&**p)).is_some(),
                    "{} told before stored",
                    p.name_any()
                );
            }
            out.push(ev);
        }
        out
    }

    use kube::ResourceExt;

    #[tokio::test]
    async fn relists_are_told_after_the_store_has_them_with_the_deletions_missed() {
        let (tx, rx) = futures::channel::mpsc::unbounded();
        let (shared, _task) = Shared::<Pod>::start_with(rx);
        let store = shared.store();
        let send = |e: watcher::Event<Pod>| tx.unbounded_send(Ok(e)).expect("feed open");
        let mut early = std::pin::pin!(shared.subscribe());

        send(watcher::Event::Init);
        send(watcher::Event::InitApply(pod("a")));
        send(watcher::Event::InitApply(pod("b")));
        send(watcher::Event::InitDone);
        let got = names(&take(&mut early, &store, 4).await);
        assert_eq!(got[0], "init");
        assert_eq!(got[3], "initdone");
        send(watcher::Event::Apply(pod("c")));
        assert_eq!(names(&take(&mut early, &store, 1).await), ["apply c"]);

        // A subscriber joining later starts from the store's contents.
        let mut late = std::pin::pin!(shared.subscribe());
        let mut got = names(&take(&mut late, &store, 5).await);
        got[1..4].sort();
        assert_eq!(got, ["init", "initapply a", "initapply b", "initapply c", "initdone"]);

        // A relist (after a watch expired) where b went and d came meanwhile: nothing is told
        // until the store swapped, then everything at once, b's deletion included.
        send(watcher::Event::Init);
        send(watcher::Event::InitApply(pod("a")));
        send(watcher::Event::InitApply(pod("c")));
        send(watcher::Event::InitApply(pod("d")));
        send(watcher::Event::InitDone);
        for sub in [&mut early, &mut late] {
            let mut got = names(&take(sub, &store, 6).await);
            got[1..4].sort();
            assert_eq!(
                got,
                [
                    "init",
                    "initapply a",
                    "initapply c",
                    "initapply d",
                    "delete b",
                    "initdone"
                ]
            );
        }
        assert!(store.get(&ObjectRef::new("b").within("default")).is_none());
    }
}
