//! The namespace controller (upstream `pkg/controller/namespace`): a namespace with a
//! deletionTimestamp has its content deleted through the API, its deletion conditions kept
//! current, and its `kubernetes` finalizer removed once it is empty, after which the API server
//! removes it.

mod conditions;
mod deleter;

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use futures::future::BoxFuture;
use futures::stream::FuturesUnordered;
use futures::{FutureExt, StreamExt};
use k8s_openapi::api::core::v1::Namespace;
use kube::runtime::{watcher, WatchStreamExt};
use kube::{Api, Client, ResourceExt};
use tokio::time::Instant;

use crate::Error;
use deleter::{Deleter, Outcome};

/// upstream: `--concurrent-namespace-syncs`.
const CONCURRENT_SYNCS: usize = 10;
/// First delay before looking again at a namespace whose content is still going away; it
/// doubles per pass up to upstream's estimate-based delay.
const FIRST_RETRY: Duration = Duration::from_millis(100);
/// Longest delay between passes after errors.
const MAX_RETRY: Duration = Duration::from_secs(30);

/// Namespaces waiting for a pass, with when each is due and how many passes it has had.
#[derive(Default)]
struct Queue {
    due: HashMap<String, Instant>,
    attempts: HashMap<String, u32>,
}

impl Queue {
    fn at(&mut self, name: &str, when: Instant) {
        let slot = self.due.entry(name.to_string()).or_insert(when);
        *slot = (*slot).min(when);
    }

    fn next(&self) -> Option<Instant> {
        self.due.values().min().copied()
    }

    /// Delay before the next pass: fast at first, never later than `cap`.
    fn backoff(&mut self, name: &str, cap: Duration) -> Duration {
        let n = self.attempts.entry(name.to_string()).or_insert(0);
        let d = FIRST_RETRY.saturating_mul(1 << (*n).min(16));
        *n += 1;
        d.min(cap)
    }
}

/// Runs the namespace controller until the future is dropped.
pub async fn run(client: Client) -> Result<(), Error> {
    let deleter = Arc::new(Deleter::new(client.clone()));
    let mut events = watcher(Api::<Namespace>::all(client), watcher::Config::default())
        .default_backoff()
        .boxed();
    let mut queue = Queue::default();
    let mut running: FuturesUnordered<BoxFuture<'static, (String, Result<Outcome, Error>)>> = FuturesUnordered::new();
    let mut busy: HashSet<String> = HashSet::new();
    let mut again: HashSet<String> = HashSet::new();
    loop {
        let wake = queue
            .next()
            .unwrap_or_else(|| Instant::now() + Duration::from_secs(3600));
        tokio::select! {
            ev = events.next() => match ev {
                None => return Ok(()),
                Some(Ok(watcher::Event::Apply(ns) | watcher::Event::InitApply(ns))) => {
                    if ns.metadata.deletion_timestamp.is_some() {
                        let name = ns.name_any();
                        if busy.contains(&name) {
                            again.insert(name);
                        } else {
                            queue.at(&name, Instant::now());
                        }
                    }
                }
                Some(Ok(watcher::Event::Delete(ns))) => {
                    let name = ns.name_any();
                    queue.due.remove(&name);
                    queue.attempts.remove(&name);
                }
                Some(Ok(_)) => {}
                Some(Err(e)) => tracing::debug!(error = %e, "namespace watch error (retried)"),
            },
            Some((name, res)) = running.next(), if !running.is_empty() => {
                busy.remove(&name);
                match res {
                    Ok(Outcome::Done) => {
                        queue.attempts.remove(&name);
                    }
                    Ok(Outcome::Remaining(estimate)) => {
                        // upstream requeues after estimate/2 + 1 seconds; earlier passes are
                        // cheap here and make `kubectl delete ns` return sooner.
                        let cap = Duration::from_secs(u64::try_from(estimate / 2 + 1).unwrap_or(1));
                        let d = queue.backoff(&name, cap);
                        queue.at(&name, Instant::now() + d);
                    }
                    Err(e) => {
                        tracing::debug!(namespace = %name, error = %e, "namespace deletion pass failed (retried)");
                        let d = queue.backoff(&name, MAX_RETRY);
                        queue.at(&name, Instant::now() + d);
                    }
                }
                if again.remove(&name) {
                    queue.at(&name, Instant::now());
                }
            }
            _ = tokio::time::sleep_until(wake) => {}
        }
        let now = Instant::now();
        let ready: Vec<String> = queue
            .due
            .iter()
            .filter(|(n, t)| **t <= now && !busy.contains(*n))
            .map(|(n, _)| n.clone())
            .take(CONCURRENT_SYNCS.saturating_sub(running.len()))
            .collect();
        for name in ready {
            queue.due.remove(&name);
            busy.insert(name.clone());
            let d = deleter.clone();
            running.push(async move { (name.clone(), d.sync(&name).await) }.boxed());
        }
    }
}
