//! Namespace lifecycle inside the API server: a terminating namespace has its contents
//! deleted, then its `kubernetes` finalizer removed and the namespace itself deleted.

use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;
use skiff_api::registry::RESOURCES;

use crate::errors::ApiResult;
use crate::rest::delete::{delete_one, Options};
use crate::rest::storage;
use crate::state::{namespaces, ApiServer};

/// How often terminating namespaces are looked at.
const PERIOD: Duration = Duration::from_millis(250);

/// Runs forever, finishing the deletion of terminating namespaces.
pub async fn run(server: Arc<ApiServer>) {
    let def = namespaces();
    loop {
        let (items, _) = server.cache.list(def, &def.key_prefix(), None);
        for (_, ns) in items {
            if !ns["metadata"]["deletionTimestamp"].is_string() {
                continue;
            }
            let name = ns["metadata"]["name"].as_str().unwrap_or_default().to_string();
            if let Err(e) = finalize(&server, &name).await {
                tracing::warn!(namespace = %name, error = %e.message, "namespace cleanup failed; will retry");
            }
        }
        tokio::time::sleep(PERIOD).await;
    }
}

/// Deletes what is left in the namespace; once empty, removes the namespace.
async fn finalize(server: &ApiServer, ns: &str) -> ApiResult<()> {
    let mut remaining = 0usize;
    // Views of shared storage (events.k8s.io) are deleted through their storage resource.
    for def in RESOURCES.iter().filter(|d| d.namespaced && d.storage_group.is_none()) {
        let (items, _) = server.cache.list(def, &def.namespace_prefix(Some(ns)), None);
        for (_, obj) in items {
            remaining += 1;
            if obj["metadata"]["deletionTimestamp"].is_string() {
                continue;
            }
            let name = obj["metadata"]["name"].as_str().unwrap_or_default();
            match delete_one(server, def, Some(ns), name, &Options::default()).await {
                Ok(_) => tracing::debug!(namespace = ns, kind = def.kind, name, "deleted namespace content"),
                Err(e) if e.code == 404 => {}
                Err(e) => return Err(e),
            }
        }
    }
    if remaining > 0 {
        return Ok(());
    }
    let def = namespaces();
    let key = def.key(None, ns);
    let Some(cur) = storage::load(server, &key).await? else {
        return Ok(());
    };
    let mut obj = cur.obj;
    if let Some(f) = obj["spec"]["finalizers"].as_array_mut() {
        f.retain(|x| x != "kubernetes");
    }
    let spec_done = obj["spec"]["finalizers"].as_array().is_none_or(Vec::is_empty);
    let meta_done = !crate::meta::has_finalizers(&obj);
    if spec_done && meta_done {
        if storage::remove(server, &key, cur.revision).await? {
            tracing::debug!(namespace = ns, "namespace deleted");
        }
    } else if obj["spec"]["finalizers"] != Value::Null {
        storage::put(server, &key, obj, cur.revision).await?;
    }
    Ok(())
}
