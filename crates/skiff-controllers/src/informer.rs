//! Shared informers: a kube-runtime reflector per kind, feeding an in-memory store.

use std::fmt::Debug;

use futures::StreamExt;
use kube::runtime::reflector::{self, Store};
use kube::runtime::{watcher, WatchStreamExt};
use kube::{Api, Resource};
use serde::de::DeserializeOwned;

use crate::Error;

/// A running reflector; its watch stops when this is dropped.
pub struct Informer<K: 'static + Resource + Clone>
where
    K::DynamicType: Eq + std::hash::Hash + Clone,
{
    /// The objects seen so far.
    pub store: Store<K>,
    task: tokio::task::JoinHandle<()>,
}

impl<K: 'static + Resource + Clone> Drop for Informer<K>
where
    K::DynamicType: Eq + std::hash::Hash + Clone,
{
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Starts a reflector over `api` and waits until its store has the initial list.
pub async fn start<K>(api: Api<K>, config: watcher::Config) -> Result<Informer<K>, Error>
where
    K: Resource + Clone + DeserializeOwned + Debug + Send + Sync + 'static,
    K::DynamicType: Eq + std::hash::Hash + Clone + Default,
{
    start_trimmed(api, config, |_| {}).await
}

/// Like [`start`], with `trim` applied to every object before it is stored, so a controller
/// keeps only the fields it reads (thousands of pods stay cheap).
pub async fn start_trimmed<K>(
    api: Api<K>,
    config: watcher::Config,
    trim: impl FnMut(&mut K) + Send + 'static,
) -> Result<Informer<K>, Error>
where
    K: Resource + Clone + DeserializeOwned + Debug + Send + Sync + 'static,
    K::DynamicType: Eq + std::hash::Hash + Clone + Default,
{
    let (store, writer) = reflector::store();
    let stream = reflector::reflector(writer, watcher(api, config).default_backoff().modify(trim));
    let task = tokio::spawn(stream.for_each(|r| async move {
        if let Err(e) = r {
            tracing::debug!(error = %e, "informer watch error (retried)");
        }
    }));
    let informer = Informer { store, task };
    informer
        .store
        .wait_until_ready()
        .await
        .map_err(|e| Error::Sync(e.to_string()))?;
    Ok(informer)
}
