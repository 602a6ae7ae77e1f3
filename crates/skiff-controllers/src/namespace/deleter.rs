//! upstream `namespacedResourcesDeleter`: empties one terminating namespace through the API
//! (pods first, then every other namespaced kind), reports progress in its conditions, and
//! removes the `kubernetes` finalizer through `namespaces/NAME/finalize` once nothing is left.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::StreamExt;
use k8s_openapi::api::core::v1::Namespace;
use kube::api::{DeleteParams, DynamicObject, ListParams, Patch, PatchParams, PostParams};
use kube::{Api, Client};
use serde_json::json;
use tokio::sync::Mutex;

use super::conditions::Findings;
use crate::gc::discovery::{self, Served};
use crate::Error;

/// The spec finalizer this controller owns.
pub const FINALIZER: &str = "kubernetes";
/// upstream: `finalizerEstimateSeconds`, how long content held by finalizers is expected to take.
const FINALIZER_ESTIMATE: i64 = 15;
/// How long one discovery answer is reused.
const DISCOVERY_TTL: Duration = Duration::from_secs(5);
/// Resources emptied at the same time within one namespace.
const PARALLEL: usize = 8;

/// What one pass over a namespace achieved.
#[derive(Debug, PartialEq, Eq)]
pub enum Outcome {
    /// The namespace is gone, not terminating, or finalized by us.
    Done,
    /// Content is still going away; look again in about this many seconds.
    Remaining(i64),
}

/// What is left of one resource after deleting it.
#[derive(Debug, Default)]
struct Left {
    count: usize,
    finalizers: BTreeMap<String, usize>,
    estimate: i64,
}

/// Deletes the content of terminating namespaces.
pub struct Deleter {
    client: Client,
    discovered: Mutex<Option<(Instant, Arc<Vec<Served>>)>>,
}

impl Deleter {
    /// A deleter talking to the API server through `client`.
    pub fn new(client: Client) -> Deleter {
        Deleter {
            client,
            discovered: Mutex::new(None),
        }
    }

    async fn resources(&self) -> Result<Arc<Vec<Served>>, kube::Error> {
        let mut cache = self.discovered.lock().await;
        if let Some((at, list)) = cache.as_ref() {
            if at.elapsed() < DISCOVERY_TTL {
                return Ok(list.clone());
            }
        }
        let list = Arc::new(discovery::preferred(&self.client).await?);
        *cache = Some((Instant::now(), list.clone()));
        Ok(list)
    }

    /// upstream: `Delete(namespace)` — one pass of the deletion of `name`.
    pub async fn sync(&self, name: &str) -> Result<Outcome, Error> {
        let api: Api<Namespace> = Api::all(self.client.clone());
        let Some(ns) = api.get_opt(name).await? else {
            return Ok(Outcome::Done);
        };
        if ns.metadata.deletion_timestamp.is_none() {
            return Ok(Outcome::Done);
        }
        let phase = ns.status.as_ref().and_then(|s| s.phase.as_deref());
        if phase != Some("Terminating") {
            let patch = json!({"status": {"phase": "Terminating"}});
            api.patch_status(name, &PatchParams::default(), &Patch::Merge(&patch))
                .await?;
        }
        let finalizers = ns.spec.as_ref().and_then(|s| s.finalizers.clone()).unwrap_or_default();
        if !finalizers.iter().any(|f| f == FINALIZER) {
            return Ok(Outcome::Done);
        }
        let estimate = self.delete_all_content(&ns).await?;
        if estimate > 0 {
            tracing::debug!(namespace = name, estimate, "namespace content remains");
            return Ok(Outcome::Remaining(estimate));
        }
        self.finalize(&api, ns).await?;
        Ok(Outcome::Done)
    }

    /// upstream: `deleteAllContent` — deletes pods first and, once none is left, everything
    /// else; returns the seconds the remaining content is expected to take.
    async fn delete_all_content(&self, ns: &Namespace) -> Result<i64, Error> {
        let name = ns.metadata.name.as_deref().unwrap_or_default();
        let mut findings = Findings::default();
        let resources = match self.resources().await {
            Ok(r) => r,
            Err(e) => {
                findings.discovery_failed(e.to_string());
                self.write_conditions(ns, findings).await?;
                return Err(e.into());
            }
        };
        let deletable: Vec<Served> = resources
            .iter()
            .filter(|r| r.namespaced && r.supports(&["delete"]))
            .cloned()
            .collect();
        let is_pods = |r: &Served| r.ar.group.is_empty() && r.ar.plural == "pods";
        // upstream (OrderedNamespaceDeletion): pods go before the rest, so nothing they use
        // (secrets, config, policies) disappears under running pods.
        let (pods, rest): (Vec<Served>, Vec<Served>) = deletable.into_iter().partition(is_pods);
        let mut estimate = 0;
        let mut left_by_resource = BTreeMap::new();
        let mut left_by_finalizer = BTreeMap::new();
        for round in [pods, rest] {
            let results: Vec<(String, Result<Left, String>)> = futures::stream::iter(round)
                .map(|r| self.delete_resource(r, name))
                .buffer_unordered(PARALLEL)
                .collect()
                .await;
            for (gr, res) in results {
                match res {
                    Ok(left) => {
                        estimate = estimate.max(left.estimate);
                        if left.count > 0 {
                            left_by_resource.insert(gr, left.count);
                            for (f, n) in left.finalizers {
                                *left_by_finalizer.entry(f).or_insert(0) += n;
                            }
                        }
                    }
                    Err(msg) => findings.delete_failed(msg),
                }
            }
            if !left_by_resource.is_empty() || findings.has_delete_errors() {
                break;
            }
        }
        findings.remaining(&left_by_resource, &left_by_finalizer);
        let failed = findings.has_delete_errors();
        self.write_conditions(ns, findings).await?;
        if failed {
            return Err(Error::Sync(format!("content of namespace {name} could not be deleted")));
        }
        Ok(estimate)
    }

    /// upstream: `deleteAllContentForGroupVersionResource` — a collection delete (or one by
    /// one), then a list of what is left. Errors come back as upstream's messages.
    async fn delete_resource(&self, r: Served, ns: &str) -> (String, Result<Left, String>) {
        let res = self.delete_resource_inner(&r, ns).await;
        (r.group_resource(), res)
    }

    async fn delete_resource_inner(&self, r: &Served, ns: &str) -> Result<Left, String> {
        let api: Api<DynamicObject> = Api::namespaced_with(self.client.clone(), ns, &r.ar);
        let gvr = format!("{}/{}, Resource={}", r.ar.group, r.ar.version, r.ar.plural);
        let dp = DeleteParams::background();
        let lp = ListParams::default();
        let mut collection_done = false;
        if r.supports(&["deletecollection"]) {
            match api.delete_collection(&dp, &lp).await {
                Ok(_) => collection_done = true,
                // upstream: treated as "not supported after all", then deleted one by one.
                Err(kube::Error::Api(e)) if e.code == 404 || e.code == 405 => {}
                Err(e) => return Err(e.to_string()),
            }
        }
        if !r.supports(&["list"]) {
            return Ok(Left::default());
        }
        if !collection_done {
            let items = api.list_metadata(&lp).await.map_err(|e| e.to_string())?;
            for item in items.items {
                let Some(n) = item.metadata.name.as_deref() else {
                    continue;
                };
                match api.delete(n, &dp).await {
                    Ok(_) => {}
                    Err(kube::Error::Api(e)) if e.code == 404 => {}
                    Err(e) => return Err(e.to_string()),
                }
            }
        }
        let items = api.list_metadata(&lp).await.map_err(|e| e.to_string())?.items;
        if items.is_empty() {
            return Ok(Left::default());
        }
        let mut left = Left {
            count: items.len(),
            ..Default::default()
        };
        for item in &items {
            for f in item.metadata.finalizers.iter().flatten() {
                *left.finalizers.entry(f.clone()).or_insert(0) += 1;
            }
            // A pod on a node waits for its agent to stop it: its grace period is the estimate
            // (upstream takes the pods' terminationGracePeriodSeconds).
            let grace = item.metadata.deletion_grace_period_seconds.unwrap_or(0);
            left.estimate = left.estimate.max(grace);
        }
        if left.estimate > 0 {
            return Ok(left);
        }
        if !left.finalizers.is_empty() {
            left.estimate = FINALIZER_ESTIMATE;
            return Ok(left);
        }
        Err(format!(
            "unexpected items still remain in namespace: {ns} for gvr: {gvr}"
        ))
    }

    async fn write_conditions(&self, ns: &Namespace, findings: Findings) -> Result<(), Error> {
        let current = ns
            .status
            .as_ref()
            .and_then(|s| s.conditions.clone())
            .unwrap_or_default();
        let Some(conditions) = findings.apply(&current, jiff::Timestamp::now()) else {
            return Ok(());
        };
        let api: Api<Namespace> = Api::all(self.client.clone());
        let name = ns.metadata.name.as_deref().unwrap_or_default();
        let patch = json!({"status": {"conditions": conditions}});
        match api
            .patch_status(name, &PatchParams::default(), &Patch::Merge(&patch))
            .await
        {
            Ok(_) => Ok(()),
            Err(kube::Error::Api(e)) if e.code == 404 => Ok(()),
            Err(e) => Err(e.into()),
        }
    }

    /// upstream: `finalizeNamespace` — removes our token from spec.finalizers through the
    /// finalize subresource, retrying lost races on a fresh read; the API server then deletes
    /// the namespace when no finalizer is left.
    async fn finalize(&self, api: &Api<Namespace>, mut ns: Namespace) -> Result<(), Error> {
        let name = ns.metadata.name.clone().unwrap_or_default();
        let uid = ns.metadata.uid.clone();
        for _ in 0..5 {
            let mut body = ns.clone();
            if let Some(spec) = body.spec.as_mut() {
                let mut rest: Vec<String> = spec
                    .finalizers
                    .take()
                    .unwrap_or_default()
                    .into_iter()
                    .filter(|f| f != FINALIZER)
                    .collect();
                rest.sort();
                rest.dedup();
                spec.finalizers = Some(rest);
            }
            match api
                .replace_subresource("finalize", &name, &PostParams::default(), &body)
                .await
            {
                Ok(_) => {
                    tracing::debug!(namespace = %name, "namespace finalized");
                    return Ok(());
                }
                Err(kube::Error::Api(e)) if e.code == 404 => return Ok(()),
                Err(kube::Error::Api(e)) if e.code == 409 => {
                    let Some(latest) = api.get_opt(&name).await? else {
                        return Ok(());
                    };
                    if latest.metadata.uid != uid {
                        return Err(Error::Sync("namespace uid has changed across retries".into()));
                    }
                    ns = latest;
                }
                Err(e) => return Err(e.into()),
            }
        }
        Err(Error::Sync(format!(
            "namespace {name} could not be finalized: conflicts"
        )))
    }
}
