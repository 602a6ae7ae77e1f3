//! upstream `attemptToDeleteItem` and `attemptToOrphanWorker`: what the collector does to one
//! object, deciding from live reads (never from the graph alone) so a lagging cache never
//! deletes anything that still has an owner.

use std::collections::HashSet;
use std::sync::{Arc, Mutex, RwLock};

use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;
use kube::api::{
    ApiResource, DeleteParams, DynamicObject, PartialObjectMeta, Patch, PatchParams, Preconditions, PropagationPolicy,
};
use kube::core::ObjectMeta;
use kube::{Api, Client};
use serde_json::json;

use super::graph::{Res, Uid};
use super::table::Table;
use crate::Error;

/// Finalizer of an owner deleted in the foreground.
pub const FOREGROUND: &str = "foregroundDeletion";
/// Finalizer of an owner deleted with its dependents orphaned.
pub const ORPHAN: &str = "orphan";
/// How many owner uids found absent are remembered (upstream `absentOwnerCache`).
const ABSENT_CACHE: usize = 10_000;

/// Where one object is.
#[derive(Debug, Clone)]
pub struct Target {
    /// Its resource slot.
    pub res: Res,
    /// Its resource.
    pub ar: ApiResource,
    /// Its namespace, for namespaced resources.
    pub namespace: Option<String>,
    /// Its name.
    pub name: String,
    /// Its uid as the API writes it.
    pub uid_text: String,
}

impl Target {
    fn api(&self, client: &Client) -> Api<DynamicObject> {
        match &self.namespace {
            Some(ns) => Api::namespaced_with(client.clone(), ns, &self.ar),
            None => Api::all_with(client.clone(), &self.ar),
        }
    }
}

/// A look at one object, with what the graph knew when it was queued.
#[derive(Debug)]
pub struct DeleteJob {
    /// The object.
    pub target: Target,
    /// Known only from references so far.
    pub virtual_: bool,
    /// Its deletionTimestamp is set.
    pub being_deleted: bool,
    /// It waits for its blocking dependents (foreground deletion).
    pub deleting_dependents: bool,
    /// Dependents blocking its deletion, each with whether it deletes its own dependents.
    pub blocking: Vec<(Uid, bool)>,
    /// Whether anything names it as an owner.
    pub has_dependents: bool,
    /// Whether one of its dependents is itself deleting its dependents.
    pub dependent_deleting_dependents: bool,
}

/// What to do after a look at an object.
#[derive(Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Nothing more.
    Done,
    /// Look again later (with back-off).
    Retry,
    /// The object does not exist (upstream virtual delete event).
    Absent,
    /// Look at these objects.
    Enqueue(Vec<Uid>),
}

/// What the workers share.
pub struct Ctx {
    /// The API client.
    pub client: Client,
    /// Served resources.
    pub table: Arc<RwLock<Table>>,
    absent: Mutex<HashSet<Uid>>,
}

/// How an owner reference stands (upstream `classifyReferences`).
enum Owner {
    Solid,
    Dangling,
    WaitingForDependents,
}

impl Ctx {
    /// A context over `client` and the shared table.
    pub fn new(client: Client, table: Arc<RwLock<Table>>) -> Ctx {
        Ctx {
            client,
            table,
            absent: Mutex::new(HashSet::new()),
        }
    }

    /// Remembers owners found absent (by the graph or a lookup).
    pub fn note_absent(&self, uids: &[Uid]) {
        if let Ok(mut a) = self.absent.lock() {
            if a.len() + uids.len() > ABSENT_CACHE {
                a.clear();
            }
            a.extend(uids.iter().copied());
        }
    }

    fn known_absent(&self, uid: Uid) -> bool {
        self.absent.lock().map(|a| a.contains(&uid)).unwrap_or(false)
    }

    async fn latest(&self, t: &Target) -> Result<Option<PartialObjectMeta<DynamicObject>>, kube::Error> {
        let got = t.api(&self.client).get_metadata_opt(&t.name).await?;
        Ok(got.filter(|o| o.metadata.uid.as_deref() == Some(t.uid_text.as_str())))
    }

    /// upstream `attemptToDeleteItem`.
    pub async fn attempt_to_delete(&self, job: &DeleteJob) -> Result<Outcome, Error> {
        let t = &job.target;
        if job.being_deleted && !job.deleting_dependents && !job.virtual_ {
            tracing::debug!(name = %t.name, "being deleted; nothing to do");
            return Ok(Outcome::Done);
        }
        let Some(latest) = self.latest(t).await? else {
            tracing::debug!(kind = %t.ar.kind, name = %t.name, "not found; a virtual delete event");
            return Ok(Outcome::Absent);
        };
        if job.virtual_ {
            // It exists but its watch has not shown it yet: wait for the informer.
            return Ok(Outcome::Retry);
        }
        if job.deleting_dependents {
            return self.process_deleting_dependents(job).await;
        }
        let refs = latest.metadata.owner_references.clone().unwrap_or_default();
        if refs.is_empty() {
            return Ok(Outcome::Done);
        }
        let mut solid = Vec::new();
        let mut dangling = Vec::new();
        let mut waiting = Vec::new();
        for r in &refs {
            match self.classify(r, t).await? {
                Some(Owner::Solid) => solid.push(r),
                Some(Owner::Dangling) => dangling.push(r),
                Some(Owner::WaitingForDependents) => waiting.push(r),
                // A cluster-scoped object naming a namespaced owner never resolves.
                None => return Ok(Outcome::Done),
            }
        }
        if !solid.is_empty() {
            if dangling.is_empty() && waiting.is_empty() {
                tracing::debug!(kind = %t.ar.kind, name = %t.name, "has at least one existing owner; kept");
                return Ok(Outcome::Done);
            }
            // upstream: references to absent owners, and to owners waiting for their
            // dependents, are removed so neither blocks anything.
            let gone: HashSet<&str> = dangling.iter().chain(&waiting).map(|r| r.uid.as_str()).collect();
            let keep: Vec<&OwnerReference> = refs.iter().filter(|r| !gone.contains(r.uid.as_str())).collect();
            let patch = json!({"metadata": {
                "resourceVersion": latest.metadata.resource_version,
                "ownerReferences": keep,
            }});
            tracing::debug!(kind = %t.ar.kind, name = %t.name, removed = gone.len(), "removing references to dead owners");
            return self.patch_meta(t, &Patch::Merge(patch)).await;
        }
        if !waiting.is_empty() && job.has_dependents {
            if job.dependent_deleting_dependents {
                // upstream: a possible cycle; make this object's references non-blocking
                // before deleting it in the foreground.
                let unblocked: Vec<OwnerReference> = refs
                    .iter()
                    .cloned()
                    .map(|mut r| {
                        if r.block_owner_deletion == Some(true) {
                            r.block_owner_deletion = Some(false);
                        }
                        r
                    })
                    .collect();
                let patch = json!({"metadata": {"uid": t.uid_text, "ownerReferences": unblocked}});
                if let Outcome::Retry = self.patch_meta(t, &Patch::Merge(patch)).await? {
                    return Ok(Outcome::Retry);
                }
            }
            tracing::debug!(kind = %t.ar.kind, name = %t.name, "an owner is deleted in the foreground and this has dependents: foreground delete");
            return self.delete(t, &latest.metadata, PropagationPolicy::Foreground).await;
        }
        let finalizers = latest.metadata.finalizers.clone().unwrap_or_default();
        let policy = if finalizers.iter().any(|f| f == ORPHAN) {
            PropagationPolicy::Orphan
        } else if finalizers.iter().any(|f| f == FOREGROUND) {
            PropagationPolicy::Foreground
        } else {
            PropagationPolicy::Background
        };
        tracing::debug!(kind = %t.ar.kind, name = %t.name, ?policy, "no owner left: deleting");
        self.delete(t, &latest.metadata, policy).await
    }

    /// upstream `processDeletingDependentsItem`.
    async fn process_deleting_dependents(&self, job: &DeleteJob) -> Result<Outcome, Error> {
        if job.blocking.is_empty() {
            tracing::debug!(name = %job.target.name, "no blocking dependent left: removing {FOREGROUND}");
            return self.remove_finalizer(&job.target, FOREGROUND).await;
        }
        let next: Vec<Uid> = job.blocking.iter().filter(|(_, d)| !d).map(|(u, _)| *u).collect();
        Ok(Outcome::Enqueue(next))
    }

    /// upstream `isDangling` plus the foreground check of `classifyReferences`; `None` for a
    /// reference that can never resolve.
    async fn classify(&self, r: &OwnerReference, item: &Target) -> Result<Option<Owner>, Error> {
        let (owner_uid, _) = Uid::parse(&r.uid);
        if self.known_absent(owner_uid) {
            return Ok(Some(Owner::Dangling));
        }
        let served = {
            let table = self
                .table
                .read()
                .map_err(|_| Error::Sync("resource table poisoned".into()))?;
            table
                .resolve(&r.api_version, &r.kind)
                .and_then(|s| table.get(s).cloned())
        };
        let Some(served) = served else {
            return Err(Error::Sync(format!(
                "unable to get REST mapping for {}/{}",
                r.api_version, r.kind
            )));
        };
        let namespace = match (served.namespaced, &item.namespace) {
            (true, None) => return Ok(None),
            (true, Some(ns)) => Some(ns.clone()),
            (false, _) => None,
        };
        let api: Api<DynamicObject> = match &namespace {
            Some(ns) => Api::namespaced_with(self.client.clone(), ns, &served.ar),
            None => Api::all_with(self.client.clone(), &served.ar),
        };
        let owner = api.get_metadata_opt(&r.name).await?;
        let Some(owner) = owner.filter(|o| o.metadata.uid.as_deref() == Some(r.uid.as_str())) else {
            self.note_absent(&[owner_uid]);
            return Ok(Some(Owner::Dangling));
        };
        let m = &owner.metadata;
        let foreground = m.finalizers.iter().flatten().any(|f| f == FOREGROUND);
        Ok(Some(if m.deletion_timestamp.is_some() && foreground {
            Owner::WaitingForDependents
        } else {
            Owner::Solid
        }))
    }

    /// upstream `deleteObject`: preconditions on uid and resourceVersion; on a conflict the
    /// deletion goes ahead only if the owner references did not change meanwhile.
    async fn delete(&self, t: &Target, seen: &ObjectMeta, policy: PropagationPolicy) -> Result<Outcome, Error> {
        let api = t.api(&self.client);
        let mut rv = seen.resource_version.clone();
        for _ in 0..2 {
            let dp = DeleteParams {
                propagation_policy: Some(policy.clone()),
                preconditions: Some(Preconditions {
                    uid: Some(t.uid_text.clone()),
                    resource_version: rv.clone(),
                }),
                ..Default::default()
            };
            match api.delete(&t.name, &dp).await {
                Ok(_) => return Ok(Outcome::Done),
                Err(kube::Error::Api(e)) if e.code == 404 => return Ok(Outcome::Done),
                Err(kube::Error::Api(e)) if e.code == 409 => {
                    let Some(live) = self.latest(t).await? else {
                        return Ok(Outcome::Done);
                    };
                    if live.metadata.owner_references != seen.owner_references {
                        return Ok(Outcome::Retry);
                    }
                    rv = live.metadata.resource_version.clone();
                }
                Err(e) => return Err(e.into()),
            }
        }
        Ok(Outcome::Retry)
    }

    async fn patch_meta(&self, t: &Target, patch: &Patch<serde_json::Value>) -> Result<Outcome, Error> {
        match t.api(&self.client).patch(&t.name, &PatchParams::default(), patch).await {
            Ok(_) => Ok(Outcome::Done),
            Err(kube::Error::Api(e)) if e.code == 404 => Ok(Outcome::Done),
            Err(kube::Error::Api(e)) if e.code == 409 => Ok(Outcome::Retry),
            Err(e) => Err(e.into()),
        }
    }

    /// upstream `removeFinalizer`: a read and a resourceVersion-guarded patch, retried on
    /// conflicts.
    async fn remove_finalizer(&self, t: &Target, finalizer: &str) -> Result<Outcome, Error> {
        for _ in 0..5 {
            let Some(latest) = self.latest(t).await? else {
                return Ok(Outcome::Done);
            };
            let finalizers = latest.metadata.finalizers.clone().unwrap_or_default();
            if !finalizers.iter().any(|f| f == finalizer) {
                return Ok(Outcome::Done);
            }
            let rest: Vec<&String> = finalizers.iter().filter(|f| *f != finalizer).collect();
            let rest = if rest.is_empty() { json!(null) } else { json!(rest) };
            let patch = json!({"metadata": {"resourceVersion": latest.metadata.resource_version, "finalizers": rest}});
            match self.patch_meta(t, &Patch::Merge(patch)).await? {
                Outcome::Retry => continue,
                other => return Ok(other),
            }
        }
        Ok(Outcome::Retry)
    }

    /// upstream `attemptToOrphanWorker`: removes the owner's reference from every dependent,
    /// then its `orphan` finalizer.
    pub async fn attempt_to_orphan(&self, owner: &Target, dependents: &[Target]) -> Result<Outcome, Error> {
        for d in dependents {
            if self.remove_reference(d, &owner.uid_text).await? == Outcome::Retry {
                return Ok(Outcome::Retry);
            }
        }
        self.remove_finalizer(owner, ORPHAN).await
    }

    /// Removes the reference to `owner_uid` from `d` (upstream patches it away; an emptied list
    /// is left out, as the API server's encoding omits it).
    async fn remove_reference(&self, d: &Target, owner_uid: &str) -> Result<Outcome, Error> {
        for _ in 0..5 {
            let Some(latest) = self.latest(d).await? else {
                return Ok(Outcome::Done);
            };
            let refs = latest.metadata.owner_references.unwrap_or_default();
            if !refs.iter().any(|r| r.uid == owner_uid) {
                return Ok(Outcome::Done);
            }
            let rest: Vec<&OwnerReference> = refs.iter().filter(|r| r.uid != owner_uid).collect();
            let rest = if rest.is_empty() { json!(null) } else { json!(rest) };
            let patch = json!({"metadata": {
                "uid": d.uid_text,
                "resourceVersion": latest.metadata.resource_version,
                "ownerReferences": rest,
            }});
            match self.patch_meta(d, &Patch::Merge(patch)).await? {
                Outcome::Retry => continue,
                other => {
                    tracing::debug!(dependent = %d.name, "orphaned");
                    return Ok(other);
                }
            }
        }
        Ok(Outcome::Retry)
    }
}
