//! The CronJob controller (upstream `cronjob_controllerv2`): creates a Job named
//! `NAME-<scheduled minutes since epoch>` at each scheduled time, in the CronJob's time zone,
//! honouring startingDeadlineSeconds, concurrencyPolicy and suspend; keeps `status.active`,
//! `lastScheduleTime` and `lastSuccessfulTime`; and deletes finished Jobs beyond the history
//! limits.

pub mod schedule;
mod sync;
mod times;

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use futures::{FutureExt, StreamExt};
use k8s_openapi::api::batch::v1::{CronJob, Job};
use kube::runtime::events::{Recorder, Reporter};
use kube::runtime::reflector::{ObjectRef, Store};
use kube::runtime::watcher;

use crate::informer::{self, Informers};
use kube::{Client, ResourceExt};
use tokio::time::Instant;

use crate::pods::controller_of;
use crate::Error;

/// How often due requeues are looked at.
const TICK: Duration = Duration::from_millis(100);
/// Retry delay after a failed sync.
const RETRY: Duration = Duration::from_secs(1);

/// A CronJob by namespace and name.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct Key {
    namespace: String,
    name: String,
}

// Events pass through once and are never stored, so their size does not matter.
#[allow(clippy::large_enum_variant)]
enum Msg {
    CronJob(informer::Event<CronJob>),
    Job(informer::Event<Job>),
}

/// What a sync needs: the caches, the client and the event recorder.
struct Ctx {
    client: Client,
    cronjobs: Store<CronJob>,
    jobs: Store<Job>,
    recorder: Recorder,
}

/// Runs the CronJob controller until the future is dropped.
pub async fn run(informers: Informers) -> Result<(), Error> {
    let client = informers.client().clone();
    let (cronjobs, cronjob_events) = informers.watch(Msg::CronJob);
    let (jobs, job_events) = informers.watch(Msg::Job);
    let streams = vec![cronjob_events, job_events];
    let mut events = futures::stream::select_all(streams);
    let recorder = Recorder::new(
        client.clone(),
        Reporter {
            controller: "cronjob-controller".into(),
            instance: None,
        },
    );
    let ctx = Ctx {
        client,
        cronjobs,
        jobs,
        recorder,
    };
    let mut dirty: HashSet<Key> = HashSet::new();
    let mut due: HashMap<Key, Instant> = HashMap::new();
    let mut ready = [false; 2];
    let mut tick = tokio::time::interval(TICK);
    loop {
        tokio::select! {
            msg = events.next() => {
                let Some(msg) = msg else { return Ok(()) };
                handle(&ctx, msg, &mut ready, &mut dirty);
                while let Some(Some(msg)) = events.next().now_or_never() {
                    handle(&ctx, msg, &mut ready, &mut dirty);
                }
            }
            _ = tick.tick() => {
                let now = Instant::now();
                due.retain(|k, at| {
                    if *at <= now {
                        dirty.insert(k.clone());
                        false
                    } else {
                        true
                    }
                });
            }
        }
        if !ready.iter().all(|r| *r) {
            continue;
        }
        for key in dirty.drain().collect::<Vec<_>>() {
            let requeue = match sync::sync(&ctx, &key).await {
                Ok(after) => after,
                Err(e) => {
                    tracing::debug!(error = %e, cronjob = %key.name, "cronjob sync failed (retried)");
                    Some(RETRY)
                }
            };
            if let Some(after) = requeue {
                let at = Instant::now() + after;
                // Keep the earliest wake-up when several are asked for.
                let slot = due.entry(key).or_insert(at);
                *slot = (*slot).min(at);
            }
        }
    }
}

fn handle(ctx: &Ctx, msg: Msg, ready: &mut [bool; 2], dirty: &mut HashSet<Key>) {
    match msg {
        Msg::CronJob(watcher::Event::InitDone) => {
            ready[0] = true;
            mark_all(ctx, dirty);
        }
        Msg::Job(watcher::Event::InitDone) => {
            ready[1] = true;
            mark_all(ctx, dirty);
        }
        Msg::CronJob(watcher::Event::Apply(cj) | watcher::Event::InitApply(cj)) => {
            dirty.extend(key_of(&cj));
        }
        Msg::Job(watcher::Event::Apply(j) | watcher::Event::InitApply(j) | watcher::Event::Delete(j)) => {
            // upstream: a Job wakes the CronJob its controller reference names.
            if let Some(r) = controller_of(&j.metadata).filter(|r| r.kind == "CronJob") {
                let key = Key {
                    namespace: j.namespace().unwrap_or_default(),
                    name: r.name.clone(),
                };
                if ctx
                    .cronjobs
                    .get(&ObjectRef::new(&key.name).within(&key.namespace))
                    .is_some()
                {
                    dirty.insert(key);
                }
            }
        }
        Msg::CronJob(_) | Msg::Job(_) => {}
    }
}

fn key_of(cj: &CronJob) -> Option<Key> {
    Some(Key {
        namespace: cj.namespace()?,
        name: cj.name_any(),
    })
}

fn mark_all(ctx: &Ctx, dirty: &mut HashSet<Key>) {
    dirty.extend(ctx.cronjobs.state().iter().filter_map(|cj| key_of(cj)));
}
