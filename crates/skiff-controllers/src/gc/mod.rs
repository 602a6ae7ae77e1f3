//! The garbage collector (upstream `pkg/controller/garbagecollector`): watches the metadata of
//! every deletable resource, keeps the owner → dependent graph, and
//! - deletes (in the background) dependents whose owners are all gone, removing references to
//!   dead owners from dependents that still have a live one;
//! - for an owner deleted in the foreground (`foregroundDeletion` finalizer), deletes its
//!   dependents and removes the finalizer once no blocking dependent is left;
//! - for an owner deleted with `orphan`, removes its reference from every dependent, then the
//!   finalizer.
//!
//! Discovery is run again periodically, so resources served later (CRDs) are watched too.

pub(crate) mod discovery;
mod graph;
mod queue;
mod slim;
mod table;
mod worker;

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use futures::future::BoxFuture;
use futures::stream::FuturesUnordered;
use futures::{FutureExt, StreamExt};
use kube::runtime::{watcher, WatchStreamExt};
use kube::{Api, Client};
use tokio::sync::mpsc;
use tokio::time::Instant;

use crate::Error;
use graph::{Graph, Meta, OwnerRef, Res, Uid, Work};
use queue::Queue;
use slim::Slim;
use table::Table;
use worker::{Ctx, DeleteJob, Outcome, Target, FOREGROUND, ORPHAN};

/// upstream: `--concurrent-gc-syncs`.
const WORKERS: usize = 20;
/// upstream: the collector re-runs discovery every 30 seconds.
const REDISCOVERY: Duration = Duration::from_secs(30);
/// How long workers wait for every monitor's first list before starting anyway (a resource
/// whose list keeps failing must not stop collection of all the others).
const SYNC_TIMEOUT: Duration = Duration::from_secs(30);
/// Events buffered between the watches and the graph.
const CHANNEL: usize = 4096;

/// A change one of the resource watches saw.
enum Msg {
    /// A (re)list starts.
    Init(Res),
    /// An object exists in this state; `listed` marks objects of a (re)list.
    Upsert(Meta, bool),
    /// An object was deleted.
    Delete(Meta),
    /// A (re)list ended.
    InitDone(Res),
}

/// Which queue a running look came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Kind {
    Delete,
    Orphan,
}

type Running = FuturesUnordered<BoxFuture<'static, (Kind, Uid, Res, String, Result<Outcome, Error>)>>;

/// Runs the garbage collector until the future is dropped.
pub async fn run(client: Client) -> Result<(), Error> {
    let table = Arc::new(RwLock::new(Table::default()));
    let ctx = Arc::new(Ctx::new(client.clone(), table.clone()));
    let (tx, mut rx) = mpsc::channel::<Msg>(CHANNEL);
    let mut monitors = Monitors::default();
    // upstream: workers start once every monitor has synced, so decisions never rest on a
    // graph that has not seen everything yet.
    let mut unsynced: HashSet<Res> = loop {
        match rediscover(&client, &table, &tx, &mut monitors).await {
            Ok(added) => break added.into_iter().collect(),
            Err(e) => {
                tracing::debug!(error = %e, "discovery failed (retried)");
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        }
    };
    let mut graph = Graph::default();
    let mut relisting: HashMap<Res, HashSet<Uid>> = HashMap::new();
    let mut deletes = Queue::default();
    let mut orphans = Queue::default();
    let mut running: Running = FuturesUnordered::new();
    let mut tick = tokio::time::interval_at(Instant::now() + REDISCOVERY, REDISCOVERY);
    let sync_deadline = Instant::now() + SYNC_TIMEOUT;
    loop {
        let wake = deletes
            .next_delayed()
            .into_iter()
            .chain(orphans.next_delayed())
            .min()
            .unwrap_or_else(|| Instant::now() + Duration::from_secs(3600));
        let wake = if unsynced.is_empty() {
            wake
        } else {
            wake.min(sync_deadline)
        };
        tokio::select! {
            msg = rx.recv() => {
                let Some(msg) = msg else { return Ok(()) };
                let mut work = Work::default();
                apply(&mut graph, &mut relisting, &mut unsynced, msg, &mut work);
                // Take in everything already delivered before acting.
                for _ in 0..CHANNEL {
                    match rx.try_recv() {
                        Ok(msg) => apply(&mut graph, &mut relisting, &mut unsynced, msg, &mut work),
                        Err(_) => break,
                    }
                }
                enqueue(&ctx, &mut deletes, &mut orphans, work);
            }
            Some((kind, uid, res, name, result)) = running.next(), if !running.is_empty() => {
                let q = match kind { Kind::Delete => &mut deletes, Kind::Orphan => &mut orphans };
                match result {
                    Ok(Outcome::Done) => q.done(uid, true),
                    Ok(Outcome::Retry) => q.retry(uid),
                    Ok(Outcome::Enqueue(uids)) => {
                        q.done(uid, true);
                        for u in uids {
                            deletes.add(u);
                        }
                    }
                    Ok(Outcome::Absent) => {
                        q.done(uid, true);
                        let mut work = Work::default();
                        graph.remove_verified_absent(uid, res, &name, &mut work);
                        enqueue(&ctx, &mut deletes, &mut orphans, work);
                    }
                    Err(e) => {
                        tracing::debug!(error = %e, %name, "garbage collector look failed (retried)");
                        q.retry(uid);
                    }
                }
            }
            _ = tick.tick() => {
                match rediscover(&client, &table, &tx, &mut monitors).await {
                    Ok(added) if !added.is_empty() => {
                        if let Ok(t) = table.read() {
                            graph.resolve_unknown(|v, k| t.resolve(v, k));
                        }
                    }
                    Ok(_) => {}
                    Err(e) => tracing::debug!(error = %e, "rediscovery failed (retried)"),
                }
            }
            _ = tokio::time::sleep_until(wake) => {}
        }
        deletes.promote(Instant::now());
        orphans.promote(Instant::now());
        if !unsynced.is_empty() {
            if Instant::now() < sync_deadline {
                continue;
            }
            let names: Vec<String> = table
                .read()
                .map(|t| {
                    unsynced
                        .iter()
                        .filter_map(|r| t.get(*r))
                        .map(|s| s.group_resource())
                        .collect()
                })
                .unwrap_or_default();
            tracing::warn!(resources = ?names, "garbage collector: some monitors never synced; collecting anyway");
            unsynced.clear();
        }
        while running.len() < WORKERS {
            if let Some(uid) = orphans.pop() {
                match orphan_job(&graph, &table, uid) {
                    Some((owner, deps)) => {
                        let ctx = ctx.clone();
                        running.push(
                            async move {
                                let r = ctx.attempt_to_orphan(&owner, &deps).await;
                                (Kind::Orphan, uid, owner.res, owner.name, r)
                            }
                            .boxed(),
                        );
                    }
                    None => orphans.done(uid, true),
                }
                continue;
            }
            let Some(uid) = deletes.pop() else { break };
            match delete_job(&graph, &table, uid) {
                Some(job) => {
                    let ctx = ctx.clone();
                    running.push(
                        async move {
                            let r = ctx.attempt_to_delete(&job).await;
                            (Kind::Delete, uid, job.target.res, job.target.name, r)
                        }
                        .boxed(),
                    );
                }
                // Gone from the graph, or of a kind not known yet: look again later.
                None if graph.get(&uid).is_some() => deletes.retry(uid),
                None => deletes.done(uid, true),
            }
        }
    }
}

/// The watch task of each watched resource; they stop when the collector stops.
#[derive(Default)]
struct Monitors(HashMap<Res, tokio::task::JoinHandle<()>>);

impl Drop for Monitors {
    fn drop(&mut self) {
        for (_, h) in self.0.drain() {
            h.abort();
        }
    }
}

fn enqueue(ctx: &Ctx, deletes: &mut Queue, orphans: &mut Queue, work: Work) {
    ctx.note_absent(&work.absent);
    for u in work.delete {
        deletes.add(u);
    }
    for u in work.orphan {
        orphans.add(u);
    }
}

fn apply(
    graph: &mut Graph,
    relisting: &mut HashMap<Res, HashSet<Uid>>,
    unsynced: &mut HashSet<Res>,
    msg: Msg,
    work: &mut Work,
) {
    match msg {
        Msg::Init(res) => {
            relisting.insert(res, HashSet::new());
        }
        Msg::Upsert(m, listed) => {
            if listed {
                if let Some(seen) = relisting.get_mut(&m.res) {
                    seen.insert(m.uid);
                }
            }
            graph.upsert(m, work);
        }
        Msg::Delete(m) => graph.remove(m.uid, work),
        Msg::InitDone(res) => {
            // Objects a relist no longer shows were deleted while the watch was down.
            if let Some(seen) = relisting.remove(&res) {
                for uid in graph.observed_of(res) {
                    if !seen.contains(&uid) {
                        graph.remove(uid, work);
                    }
                }
            }
            if unsynced.remove(&res) && unsynced.is_empty() {
                tracing::debug!(
                    nodes = graph.node_count(),
                    "garbage collector: all resource monitors have synced"
                );
            }
        }
    }
}

fn target(graph: &Graph, table: &Table, uid: Uid) -> Option<Target> {
    let n = graph.get(&uid)?;
    let served = table.get(n.res)?;
    Some(Target {
        res: n.res,
        ar: served.ar.clone(),
        namespace: if served.namespaced {
            graph.namespace_of(n).map(str::to_string)
        } else {
            None
        },
        name: n.name.to_string(),
        uid_text: graph.uid_string(uid),
    })
}

fn delete_job(graph: &Graph, table: &RwLock<Table>, uid: Uid) -> Option<DeleteJob> {
    let t = table.read().ok()?;
    let n = graph.get(&uid)?;
    let target = target(graph, &t, uid)?;
    Some(DeleteJob {
        target,
        virtual_: !n.observed(),
        being_deleted: n.being_deleted(),
        deleting_dependents: n.deleting_dependents(),
        blocking: graph.blocking_dependents(&uid),
        has_dependents: !n.dependents.is_empty(),
        dependent_deleting_dependents: n
            .dependents
            .iter()
            .any(|d| graph.get(d).is_some_and(|dn| dn.deleting_dependents())),
    })
}

fn orphan_job(graph: &Graph, table: &RwLock<Table>, uid: Uid) -> Option<(Target, Vec<Target>)> {
    let t = table.read().ok()?;
    let owner = target(graph, &t, uid)?;
    let deps = graph
        .get(&uid)?
        .dependents
        .iter()
        .filter_map(|d| target(graph, &t, *d))
        .collect();
    Some((owner, deps))
}

/// Runs discovery, takes the answer into the table, starts watches on newly watchable
/// resources and stops those no longer served; returns the newly watched slots.
async fn rediscover(
    client: &Client,
    table: &RwLock<Table>,
    tx: &mpsc::Sender<Msg>,
    monitors: &mut Monitors,
) -> Result<Vec<Res>, Error> {
    let found = discovery::preferred(client).await?;
    let (added, removed) = {
        let mut t = table
            .write()
            .map_err(|_| Error::Sync("resource table poisoned".into()))?;
        t.merge(found)
    };
    for res in &removed {
        if let Some(h) = monitors.0.remove(res) {
            h.abort();
        }
    }
    let t = table
        .read()
        .map_err(|_| Error::Sync("resource table poisoned".into()))?;
    for res in &added {
        let Some(served) = t.get(*res) else { continue };
        tracing::debug!(resource = %served.group_resource(), "garbage collector watches");
        let api: Api<Slim> = Api::all_with(client.clone(), &served.ar);
        let task = monitor(*res, api, table_snapshot(&t), tx.clone());
        if let Some(old) = monitors.0.insert(*res, tokio::spawn(task)) {
            old.abort();
        }
    }
    Ok(added)
}

/// Resolves an owner reference's apiVersion and kind to a resource slot.
type Resolve = Arc<dyn Fn(&str, &str) -> Option<Res> + Send + Sync>;

/// Kind → slot resolution as of now, for one monitor's owner references (a kind served
/// later is resolved again by the graph after rediscovery).
fn table_snapshot(t: &Table) -> Resolve {
    let pairs: HashMap<(String, String), Res> = (0..Res::MAX)
        .map_while(|i| t.get(i).map(|s| ((s.ar.group.clone(), s.ar.kind.clone()), i)))
        .collect();
    Arc::new(move |api_version: &str, kind: &str| {
        pairs
            .get(&(table::group_of(api_version).to_string(), kind.to_string()))
            .copied()
    })
}

/// One resource's metadata watch, feeding the graph.
async fn monitor(res: Res, api: Api<Slim>, resolve: Resolve, tx: mpsc::Sender<Msg>) {
    let mut stream = watcher(api, watcher::Config::default()).default_backoff().boxed();
    while let Some(ev) = stream.next().await {
        let msg = match ev {
            Ok(watcher::Event::Init) => Msg::Init(res),
            Ok(watcher::Event::InitApply(o)) => Msg::Upsert(meta(res, &o, &*resolve), true),
            Ok(watcher::Event::Apply(o)) => Msg::Upsert(meta(res, &o, &*resolve), false),
            Ok(watcher::Event::Delete(o)) => Msg::Delete(meta(res, &o, &*resolve)),
            Ok(watcher::Event::InitDone) => Msg::InitDone(res),
            Err(e) => {
                tracing::debug!(error = %e, "garbage collector watch error (retried)");
                continue;
            }
        };
        if tx.send(msg).await.is_err() {
            return;
        }
    }
}

fn meta(res: Res, o: &Slim, resolve: &dyn Fn(&str, &str) -> Option<Res>) -> Meta {
    let m = &o.metadata;
    let uid_str = m.uid.as_deref().unwrap_or_default();
    let (uid, canonical) = Uid::parse(uid_str);
    let finalizers = m.finalizers.as_deref().unwrap_or_default();
    Meta {
        res,
        uid,
        uid_text: (!canonical).then(|| uid_str.to_string()),
        namespace: m.namespace.clone(),
        name: m.name.clone().unwrap_or_default(),
        owners: m
            .owner_references
            .iter()
            .flatten()
            .map(|r| OwnerRef {
                uid: Uid::parse(&r.uid).0,
                block: r.block_owner_deletion == Some(true),
                api_version: r.api_version.clone(),
                kind: r.kind.clone(),
                name: r.name.clone(),
                res: resolve(&r.api_version, &r.kind).unwrap_or(graph::UNKNOWN),
            })
            .collect(),
        deleting: m.deletion_timestamp.is_some(),
        foreground: finalizers.iter().any(|f| f == FOREGROUND),
        orphan: finalizers.iter().any(|f| f == ORPHAN),
    }
}
