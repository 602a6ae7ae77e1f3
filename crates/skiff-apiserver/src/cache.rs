//! The watch cache: every object of every resource in memory, fed by one store watch, with a
//! bounded event history per resource so LIST and WATCH never read the store.
//!
//! Objects are kept serialized (about 2 KB for a running pod) and parsed when read: as a
//! `serde_json::Value` the same pod takes about 15 KB, since every small map is a B-tree node.
//! Objects changed recently (those still in the event history) also keep their parsed form, so
//! writes, which read the current object, seldom parse.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::{Arc, OnceLock};

use bytes::Bytes;
use futures::StreamExt;
use parking_lot::RwLock;
use serde_json::Value;
use skiff_api::registry::{ResourceDef, RESOURCES};
use skiff_store::{EventType, KeyValue, Store};
use tokio::sync::{broadcast, watch};

/// How many events each resource keeps for watch resumption (upstream keeps 100 per resource
/// by default; older resourceVersions get 410 and clients relist).
const HISTORY: usize = 1_024;
/// Buffer of the live fan-out channel; a watcher further behind than this is ended (it relists).
const FANOUT: usize = 16_384;

/// Kind of a watch event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventKind {
    /// Object created.
    Added,
    /// Object changed.
    Modified,
    /// Object removed; the object is its last state.
    Deleted,
}

impl EventKind {
    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            EventKind::Added => "ADDED",
            EventKind::Modified => "MODIFIED",
            EventKind::Deleted => "DELETED",
        }
    }
}

/// One change of one object, shared by every watcher.
#[derive(Debug)]
pub struct WatchEvent {
    /// What happened.
    pub kind: EventKind,
    /// The object after the change (its last state for deletions).
    pub object: Arc<Value>,
    /// The object before the change, if it existed.
    prev: Option<Entry>,
    /// Revision of the change.
    pub revision: i64,
    /// The object serialized, when the cache has it already.
    object_json: Option<Bytes>,
    /// The store key of the object.
    key: String,
    /// `{"type":..,"object":..}\n`, serialized once for all plain-JSON watchers.
    json: OnceLock<Bytes>,
}

impl WatchEvent {
    fn new(
        kind: EventKind,
        object: Arc<Value>,
        object_json: Option<Bytes>,
        prev: Option<Entry>,
        revision: i64,
        key: String,
    ) -> Self {
        WatchEvent {
            key,
            kind,
            object,
            prev,
            revision,
            object_json,
            json: OnceLock::new(),
        }
    }

    /// Whether the object existed before the change.
    pub fn has_prev(&self) -> bool {
        self.prev.is_some()
    }

    /// The object before the change, if it existed (parsed on demand: only watchers with
    /// selectors need it).
    pub fn prev(&self) -> Option<Arc<Value>> {
        self.prev.as_ref()?.value()
    }

    /// The event as one line of a JSON watch stream, serialized on first use.
    pub fn json_line(&self) -> Bytes {
        self.json
            .get_or_init(|| {
                if let Some(obj) = &self.object_json {
                    let mut v = Vec::with_capacity(obj.len() + 32);
                    v.extend_from_slice(b"{\"type\":\"");
                    v.extend_from_slice(self.kind.as_str().as_bytes());
                    v.extend_from_slice(b"\",\"object\":");
                    v.extend_from_slice(obj);
                    v.extend_from_slice(b"}\n");
                    return Bytes::from(v);
                }
                #[derive(serde::Serialize)]
                struct Line<'a> {
                    #[serde(rename = "type")]
                    kind: &'a str,
                    object: skiff_api::protobuf::Ordered<'a>,
                }
                let mut v = serde_json::to_vec(&Line {
                    kind: self.kind.as_str(),
                    object: skiff_api::protobuf::Ordered::object(&self.object),
                })
                .unwrap_or_default();
                v.push(b'\n');
                Bytes::from(v)
            })
            .clone()
    }
}

/// One cached object.
#[derive(Debug, Clone)]
struct Entry {
    /// The object serialized, resourceVersion included.
    json: Bytes,
    /// Its resourceVersion.
    revision: i64,
    /// The parsed object while its last change is in the event history.
    recent: Option<Arc<Value>>,
}

impl Entry {
    fn new(obj: &Arc<Value>, revision: i64, keep_parsed: bool) -> Entry {
        Entry {
            // In Go field order, as kube-apiserver writes objects: every LIST, GET and WATCH
            // copies these bytes.
            json: Bytes::from(skiff_api::protobuf::to_vec_ordered(obj)),
            revision,
            recent: keep_parsed.then(|| obj.clone()),
        }
    }

    /// The parsed object.
    fn value(&self) -> Option<Arc<Value>> {
        match &self.recent {
            Some(v) => Some(v.clone()),
            None => serde_json::from_slice(&self.json).ok().map(Arc::new),
        }
    }
}

struct ResourceCache {
    objects: BTreeMap<String, Entry>,
    history: VecDeque<Arc<WatchEvent>>,
    /// Every event with a revision above this is in `history`.
    history_from: i64,
    tx: broadcast::Sender<Arc<WatchEvent>>,
}

/// A started watch: the events since the requested revision, then the live receiver.
pub struct Subscription {
    /// Events to send first.
    pub backlog: Vec<Arc<WatchEvent>>,
    /// Live events.
    pub live: broadcast::Receiver<Arc<WatchEvent>>,
    /// A revision covering the backlog (for the initial-events-end bookmark).
    pub revision: i64,
}

/// The cache of all resources.
pub struct Cache {
    resources: HashMap<String, RwLock<ResourceCache>>,
    revision: watch::Sender<i64>,
    /// The task feeding the cache from the store watch.
    feeder: parking_lot::Mutex<Option<tokio::task::JoinHandle<()>>>,
    /// Objects this server is writing, by key with the bytes written, so applying the write's
    /// event need not parse those bytes again.
    hints: parking_lot::Mutex<HashMap<String, (Bytes, Value)>>,
}

/// Parses a stored value into an object carrying its resourceVersion.
pub fn decode_kv(kv: &KeyValue, revision: i64) -> Option<Value> {
    let mut v: Value = serde_json::from_slice(&kv.value).ok()?;
    if let Some(meta) = v.get_mut("metadata").and_then(Value::as_object_mut) {
        meta.insert("resourceVersion".into(), Value::String(revision.to_string()));
    }
    Some(v)
}

/// The revision a resource's current objects are a snapshot of: the cache's, or that of the
/// resource's last applied event when the cache revision has not been bumped past it yet.
fn snapshot_revision(rc: &ResourceCache, cache_revision: i64) -> i64 {
    rc.history
        .back()
        .map_or(cache_revision, |e| e.revision.max(cache_revision))
}

/// Objects under `prefix` from key `from` on (inclusive), in key order.
fn range<'a>(
    objects: &'a BTreeMap<String, Entry>,
    prefix: &'a str,
    from: Option<&'a str>,
) -> impl Iterator<Item = (&'a String, &'a Entry)> {
    let start = from.filter(|f| *f > prefix).unwrap_or(prefix);
    objects
        .range::<str, _>((std::ops::Bound::Included(start), std::ops::Bound::Unbounded))
        .take_while(move |(k, _)| k.starts_with(prefix))
}

/// The resource prefix (`/registry/<group>/<plural>/`) of a store key.
fn prefix_of(key: &str) -> Option<&str> {
    let mut slashes = key.match_indices('/').map(|(i, _)| i);
    let end = slashes.nth(3)?;
    Some(&key[..=end])
}

impl Cache {
    /// Loads every object from the store and keeps the cache current until the store closes.
    pub async fn start(store: Arc<dyn Store>) -> Result<Arc<Cache>, skiff_store::StoreError> {
        let resp = store.range("/registry/", None, 0).await?;
        let mut resources = HashMap::new();
        for def in RESOURCES {
            resources.entry(def.key_prefix()).or_insert_with(|| {
                RwLock::new(ResourceCache {
                    objects: BTreeMap::new(),
                    history: VecDeque::new(),
                    history_from: resp.revision,
                    tx: broadcast::channel(FANOUT).0,
                })
            });
        }
        for kv in &resp.kvs {
            let (Some(prefix), Some(obj)) = (prefix_of(&kv.key), decode_kv(kv, kv.mod_revision)) else {
                tracing::warn!(key = %kv.key, "skipping unreadable stored object");
                continue;
            };
            if let Some(rc) = resources.get(prefix) {
                let entry = Entry::new(&Arc::new(obj), kv.mod_revision, false);
                rc.write().objects.insert(kv.key.clone(), entry);
            }
        }
        let cache = Arc::new(Cache {
            resources,
            revision: watch::channel(resp.revision).0,
            feeder: Default::default(),
            hints: Default::default(),
        });
        // Fail start-up early if the store cannot be watched at all.
        let first = store.watch("/registry/", resp.revision + 1)?;
        let feeder = tokio::spawn(cache.clone().follow(store, first));
        *cache.feeder.lock() = Some(feeder);
        Ok(cache)
    }

    /// Applies store events for as long as the process runs. A lost store watch (this
    /// follower fell behind) resumes from the last applied revision, or, when the store's
    /// history no longer reaches back that far, from a fresh range diffed against the cache.
    async fn follow(self: Arc<Self>, store: Arc<dyn Store>, mut stream: skiff_store::WatchStream) {
        loop {
            while let Some(item) = stream.next().await {
                match item {
                    Ok(events) => self.apply(events, None),
                    Err(e) => {
                        tracing::warn!(error = %e, "store watch ended; resuming");
                        break;
                    }
                }
            }
            loop {
                match store.watch("/registry/", self.revision() + 1) {
                    Ok(s) => {
                        stream = s;
                        break;
                    }
                    Err(skiff_store::StoreError::Compacted { .. }) => {
                        if let Err(e) = self.resync(&*store).await {
                            tracing::error!(error = %e, "watch cache resync failed; retrying");
                            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                        }
                    }
                    Err(e) => {
                        tracing::error!(error = %e, "store watch failed; retrying");
                        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                    }
                }
            }
        }
    }

    /// Brings the cache to the store's current state by diffing a full range against it; the
    /// differences become events at the range's revision.
    async fn resync(&self, store: &dyn Store) -> Result<(), skiff_store::StoreError> {
        let resp = store.range("/registry/", None, 0).await?;
        let mut fresh: HashMap<&str, BTreeMap<&str, &KeyValue>> = HashMap::new();
        for kv in &resp.kvs {
            if let Some(p) = prefix_of(&kv.key) {
                fresh.entry(p).or_default().insert(&kv.key, kv);
            }
        }
        let mut events = Vec::new();
        for (prefix, rc) in &self.resources {
            let rc = rc.read();
            let now = fresh.get(prefix.as_str());
            for (key, entry) in &rc.objects {
                if now.is_none_or(|m| !m.contains_key(key.as_str())) {
                    let kv = KeyValue {
                        key: key.clone(),
                        value: entry.json.clone(),
                        create_revision: 0,
                        mod_revision: resp.revision,
                        version: 0,
                    };
                    events.push(skiff_store::Event {
                        kind: EventType::Delete,
                        kv,
                        prev: None,
                    });
                }
            }
            for (key, kv) in now.into_iter().flatten() {
                let cur_rv = rc.objects.get(*key).map(|e| e.revision);
                if cur_rv != Some(kv.mod_revision) {
                    events.push(skiff_store::Event {
                        kind: EventType::Put,
                        kv: (*kv).clone(),
                        prev: None,
                    });
                }
            }
        }
        tracing::warn!(
            revision = resp.revision,
            changes = events.len(),
            "watch cache resynced from a full range"
        );
        self.apply(events, Some(resp.revision));
        self.revision.send_modify(|r| *r = (*r).max(resp.revision));
        Ok(())
    }

    /// Stops following the store (on shutdown).
    pub fn stop(&self) {
        self.stop_feeder();
        // Writers waiting to read their own write would wait forever: release them.
        self.revision.send_replace(i64::MAX);
    }

    fn stop_feeder(&self) {
        if let Some(t) = self.feeder.lock().take() {
            t.abort();
        }
    }

    /// Applies store events; `at` stamps them all with one revision (a resync), otherwise each
    /// event's revision is its key's mod revision.
    fn apply(&self, events: Vec<skiff_store::Event>, at: Option<i64>) {
        let mut last = None;
        for ev in events {
            let rev = at.unwrap_or(ev.kv.mod_revision);
            last = Some(rev);
            let Some(rc) = prefix_of(&ev.kv.key).and_then(|p| self.resources.get(p)) else {
                continue;
            };
            let hinted = match ev.kind {
                EventType::Put => self.take_hint(&ev.kv),
                EventType::Delete => None,
            };
            let Some(obj) = hinted.or_else(|| decode_kv(&ev.kv, ev.kv.mod_revision)) else {
                tracing::warn!(key = %ev.kv.key, "unreadable object in store event");
                continue;
            };
            let obj = Arc::new(obj);
            // Serialized before taking the lock, which readers share.
            let entry = (ev.kind == EventType::Put).then(|| Entry::new(&obj, ev.kv.mod_revision, true));
            let object_json = entry.as_ref().map(|e| e.json.clone());
            let mut rc = rc.write();
            let prev = match entry {
                Some(entry) => rc.objects.insert(ev.kv.key.clone(), entry),
                None => rc.objects.remove(&ev.kv.key),
            };
            let kind = match (ev.kind, &prev) {
                (EventType::Delete, _) => EventKind::Deleted,
                (EventType::Put, None) => EventKind::Added,
                (EventType::Put, Some(_)) => EventKind::Modified,
            };
            let we = Arc::new(WatchEvent::new(kind, obj, object_json, prev, rev, ev.kv.key.clone()));
            if rc.history.len() >= HISTORY {
                if let Some(old) = rc.history.pop_front() {
                    rc.history_from = old.revision;
                    // Its object is no longer recent: keep only the serialized form.
                    let key = old.key.as_str();
                    if let Some(e) = rc.objects.get_mut(key) {
                        if e.recent.as_ref().is_some_and(|r| Arc::ptr_eq(r, &old.object)) {
                            e.recent = None;
                        }
                    }
                }
            }
            rc.history.push_back(we.clone());
            let _ = rc.tx.send(we);
        }
        if let Some(rev) = last {
            self.revision.send_modify(|r| *r = (*r).max(rev));
        }
    }

    /// Announces that `bytes` (the serialization of `obj`, without resourceVersion) are about
    /// to be written at `key`.
    pub fn hint(&self, key: &str, bytes: Bytes, obj: Value) {
        self.hints.lock().insert(key.to_string(), (bytes, obj));
    }

    /// Withdraws a hint whose write did not happen.
    pub fn unhint(&self, key: &str, bytes: &Bytes) {
        let mut h = self.hints.lock();
        if h.get(key).is_some_and(|(b, _)| b == bytes) {
            h.remove(key);
        }
    }

    fn take_hint(&self, kv: &KeyValue) -> Option<Value> {
        let mut h = self.hints.lock();
        if h.get(&kv.key).is_none_or(|(b, _)| *b != kv.value) {
            return None;
        }
        let (_, mut obj) = h.remove(&kv.key)?;
        if let Some(meta) = obj.get_mut("metadata").and_then(Value::as_object_mut) {
            meta.insert("resourceVersion".into(), Value::String(kv.mod_revision.to_string()));
        }
        Some(obj)
    }

    /// The revision the cache has caught up to.
    pub fn revision(&self) -> i64 {
        *self.revision.borrow()
    }

    /// Waits until the cache has applied `revision` (read-your-writes after a store write).
    pub async fn wait_for(&self, revision: i64) {
        let mut rx = self.revision.subscribe();
        let _ = rx.wait_for(|r| *r >= revision).await;
    }

    fn rc(&self, def: &ResourceDef) -> &RwLock<ResourceCache> {
        // Every registered resource has a cache (built from RESOURCES in start).
        &self.resources[&def.key_prefix()]
    }

    /// One object by store key.
    pub fn get(&self, def: &ResourceDef, key: &str) -> Option<Arc<Value>> {
        // Parsed after the lock is released, so writers do not wait on it.
        let entry = self.rc(def).read().objects.get(key)?.clone();
        entry.value()
    }

    /// One object by store key, serialized as cached (nothing is parsed).
    pub fn get_raw(&self, def: &ResourceDef, key: &str) -> Option<Bytes> {
        Some(self.rc(def).read().objects.get(key)?.json.clone())
    }

    /// Whether an object exists at a store key (nothing is parsed).
    pub fn contains(&self, def: &ResourceDef, key: &str) -> bool {
        self.rc(def).read().objects.contains_key(key)
    }

    /// One object by store key alone.
    pub fn get_key(&self, key: &str) -> Option<Arc<Value>> {
        let entry = self.resources.get(prefix_of(key)?)?.read().objects.get(key)?.clone();
        entry.value()
    }

    /// Objects whose key starts with `prefix`, after `start_after`, in key order, with the
    /// cache revision they were read at.
    pub fn list(&self, def: &ResourceDef, prefix: &str, start_after: Option<&str>) -> (Vec<(String, Arc<Value>)>, i64) {
        let (raw, rev) = self.list_raw(def, prefix, start_after);
        let items = raw
            .into_iter()
            .filter_map(|(k, json)| Some((k, Arc::new(serde_json::from_slice(&json).ok()?))))
            .collect();
        (items, rev)
    }

    /// Like [`Cache::list`], with the objects serialized as stored (nothing is parsed); `from`
    /// is the first key to include (a continue token's start), not the last one seen.
    pub fn list_raw(&self, def: &ResourceDef, prefix: &str, from: Option<&str>) -> (Vec<(String, Bytes)>, i64) {
        let rc = self.rc(def).read();
        let rev = snapshot_revision(&rc, self.revision());
        let items = range(&rc.objects, prefix, from)
            .map(|(k, e)| (k.clone(), e.json.clone()))
            .collect();
        (items, rev)
    }

    /// Like [`Cache::list_raw`], as of revision `at`: the current objects with every later
    /// change undone from the event history. `Err(oldest)` when the history no longer reaches
    /// back to `at`. A revision the cache has not reached yet reads the current state (callers
    /// wait for it first).
    pub fn list_raw_at(
        &self,
        def: &ResourceDef,
        prefix: &str,
        from: Option<&str>,
        at: i64,
    ) -> Result<(Vec<(String, Bytes)>, i64), i64> {
        let rc = self.rc(def).read();
        let rev = snapshot_revision(&rc, self.revision());
        if at >= rev {
            let items = range(&rc.objects, prefix, from)
                .map(|(k, e)| (k.clone(), e.json.clone()))
                .collect();
            return Ok((items, rev));
        }
        if at < rc.history_from {
            return Err(rc.history_from);
        }
        // Walking the history newest first, the last `prev` seen for a key is its state at `at`
        // (None: it did not exist then).
        let mut undo: BTreeMap<&str, Option<&Bytes>> = BTreeMap::new();
        for ev in rc.history.iter().rev().take_while(|e| e.revision > at) {
            if ev.key.starts_with(prefix) && from.is_none_or(|f| ev.key.as_str() >= f) {
                undo.insert(&ev.key, ev.prev.as_ref().map(|p| &p.json));
            }
        }
        let mut items = Vec::new();
        let mut undo = undo.into_iter().peekable();
        for (k, e) in range(&rc.objects, prefix, from) {
            while let Some((uk, old)) = undo.next_if(|(uk, _)| *uk < k.as_str()) {
                if let Some(old) = old {
                    items.push((uk.to_string(), old.clone()));
                }
            }
            match undo.next_if(|(uk, _)| *uk == k.as_str()) {
                Some((_, Some(old))) => items.push((k.clone(), old.clone())),
                Some((_, None)) => {}
                None => items.push((k.clone(), e.json.clone())),
            }
        }
        for (uk, old) in undo {
            if let Some(old) = old {
                items.push((uk.to_string(), old.clone()));
            }
        }
        Ok((items, at))
    }

    /// Number of objects of a resource under a prefix (cheap existence checks).
    pub fn count(&self, def: &ResourceDef, prefix: &str) -> usize {
        let rc = self.rc(def).read();
        rc.objects
            .range::<str, _>((std::ops::Bound::Included(prefix), std::ops::Bound::Unbounded))
            .take_while(|(k, _)| k.starts_with(prefix))
            .count()
    }

    /// Starts a watch of a resource: `from = None` gives synthetic ADDED events for every
    /// current object; `Some(rv)` gives the events after `rv`, or `Err(oldest)` when the
    /// history no longer reaches back that far.
    pub fn subscribe(&self, def: &ResourceDef, from: Option<i64>) -> Result<Subscription, i64> {
        let rc = self.rc(def).read();
        let live = rc.tx.subscribe();
        let mut revision = self.revision();
        let backlog: Vec<Arc<WatchEvent>> = match from {
            None => {
                // Copied under the lock, parsed after it, so writers do not wait on the parsing.
                let current: Vec<(String, Entry)> = rc.objects.iter().map(|(k, e)| (k.clone(), e.clone())).collect();
                drop(rc);
                current
                    .into_iter()
                    .filter_map(|(k, e)| {
                        let ev = WatchEvent::new(EventKind::Added, e.value()?, Some(e.json), None, e.revision, k);
                        Some(Arc::new(ev))
                    })
                    .collect()
            }
            Some(rv) if rv < rc.history_from => return Err(rc.history_from),
            Some(rv) => rc.history.iter().filter(|e| e.revision > rv).cloned().collect(),
        };
        revision = backlog.iter().map(|e| e.revision).fold(revision, i64::max);
        Ok(Subscription {
            backlog,
            live,
            revision,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use skiff_api::registry;
    use skiff_store::{Compare, Op, RedbStore, Txn};

    fn put(key: &str, name: &str) -> Op {
        let v =
            serde_json::json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name, "namespace": "a"}});
        Op::Put {
            key: key.into(),
            value: serde_json::to_vec(&v).unwrap().into(),
        }
    }

    async fn txn(store: &Arc<RedbStore>, ops: Vec<Op>) -> i64 {
        let t = Txn {
            compare: Vec::<Compare>::new(),
            success: ops,
            failure: vec![],
        };
        store.txn(t).await.unwrap().revision
    }

    #[tokio::test]
    async fn resync_turns_missed_changes_into_events() {
        let dir = tempfile::tempdir().unwrap();
        let store = RedbStore::open(dir.path().join("s.redb")).unwrap();
        let def = registry::find("", "v1", "configmaps").unwrap();
        let (ka, kb) = (def.key(Some("a"), "x"), def.key(Some("a"), "y"));
        let rev = txn(&store, vec![put(&ka, "x")]).await;
        let cache = Cache::start(store.clone()).await.unwrap();
        cache.wait_for(rev).await;
        // Changes the cache does not see, as if its store watch had been lost.
        cache.stop_feeder();
        let mut sub = cache.subscribe(def, Some(rev)).unwrap();
        let rev2 = txn(&store, vec![Op::Delete { key: ka.clone() }, put(&kb, "y")]).await;
        cache.resync(&*store).await.unwrap();
        assert!(cache.get(def, &ka).is_none());
        assert_eq!(
            cache.get(def, &kb).unwrap()["metadata"]["resourceVersion"],
            rev2.to_string()
        );
        let mut kinds = vec![sub.live.recv().await.unwrap().kind, sub.live.recv().await.unwrap().kind];
        kinds.sort_by_key(|k| k.as_str());
        assert_eq!(kinds, vec![EventKind::Added, EventKind::Deleted]);
        assert_eq!(cache.revision(), rev2);
    }

    #[tokio::test]
    async fn lists_at_an_old_revision_undo_later_changes() {
        let dir = tempfile::tempdir().unwrap();
        let store = RedbStore::open(dir.path().join("s.redb")).unwrap();
        let def = registry::find("", "v1", "configmaps").unwrap();
        let key = |n: &str| def.key(Some("a"), n);
        let start = txn(&store, vec![put(&key("x"), "x")]).await;
        let cache = Cache::start(store.clone()).await.unwrap();
        let r1 = txn(&store, vec![put(&key("y"), "y")]).await;
        let r2 = txn(&store, vec![put(&key("x"), "x"), Op::Delete { key: key("y") }]).await;
        let r3 = txn(&store, vec![put(&key("w"), "w"), put(&key("z"), "z")]).await;
        cache.wait_for(r3).await;
        let prefix = def.namespace_prefix(Some("a"));
        let at = |rev: i64, from: Option<&str>| -> Result<Vec<(String, i64)>, i64> {
            let (items, got) = cache.list_raw_at(def, &prefix, from, rev)?;
            assert_eq!(got, rev.max(start));
            Ok(items
                .into_iter()
                .map(|(k, json)| {
                    let v: Value = serde_json::from_slice(&json).unwrap();
                    let rv = v["metadata"]["resourceVersion"].as_str().unwrap().parse().unwrap();
                    (k.rsplit('/').next().unwrap().to_string(), rv)
                })
                .collect())
        };
        let s = |v: &[(&str, i64)]| v.iter().map(|(k, r)| (k.to_string(), *r)).collect::<Vec<_>>();
        assert_eq!(at(r1, None).unwrap(), s(&[("x", start), ("y", r1)]));
        assert_eq!(at(r2, None).unwrap(), s(&[("x", r2)]));
        assert_eq!(at(r3, None).unwrap(), s(&[("w", r3), ("x", r2), ("z", r3)]));
        assert_eq!(at(start, None).unwrap(), s(&[("x", start)]));
        let from = key("x");
        assert_eq!(at(r1, Some(&from)).unwrap(), s(&[("x", start), ("y", r1)]));
        let after_x = format!("{}\u{0}", key("x"));
        assert_eq!(at(r1, Some(&after_x)).unwrap(), s(&[("y", r1)]));
        // Before the cache started, nothing is known.
        assert_eq!(at(start - 1, None), Err(start));
        // The current snapshot carries the revision of its last change.
        assert_eq!(cache.list_raw(def, &prefix, None).1, r3);
    }

    #[test]
    fn prefix_is_group_and_resource() {
        assert_eq!(prefix_of("/registry/core/pods/default/a"), Some("/registry/core/pods/"));
        assert_eq!(prefix_of("/registry/core/nodes/n1"), Some("/registry/core/nodes/"));
        assert_eq!(prefix_of("/registry/x"), None);
    }
}
