//! Pods of a Job: claiming them (adopt and release), and creating or deleting them to reach
//! the wanted number of active pods (upstream `getPodsForJob`, `manageJob`).

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use jiff::Timestamp;
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::{EnvVar, EnvVarSource, ObjectFieldSelector, Pod};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};
use kube::api::{DeleteParams, Patch, PatchParams, PostParams, Preconditions};
use kube::runtime::events::EventType;
use kube::{Api, ResourceExt};
use serde_json::json;

use super::per_index;
use super::pod_util::{
    completion_index, has_finalizer, is_ready, is_terminating, sort_for_removal, uid, COMPLETION_INDEX,
    TRACKING_FINALIZER,
};
use super::remove_finalizer;
use super::sync::{JobCtx, Params};
use super::{Controller, Key};
use crate::expectations::Expectation;
use crate::pods::{controller_ref, selector_matches};
use crate::Error;

/// upstream `MaxPodCreateDeletePerSync`.
const MAX_PER_SYNC: usize = 500;
/// upstream `maxGeneratedNameLength` minus the random suffix.
const MAX_GENERATE_NAME: usize = 58;

/// What `manage` left active.
pub(super) struct Managed {
    pub active: i32,
}

fn owner_ref(job: &Job) -> OwnerReference {
    OwnerReference {
        api_version: "batch/v1".into(),
        kind: "Job".into(),
        name: job.name_any(),
        uid: job.metadata.uid.clone().unwrap_or_default(),
        controller: Some(true),
        block_owner_deletion: Some(true),
    }
}

/// Deletes a pod by uid; a pod already gone counts as deleted.
pub(super) async fn delete_pod(api: &Api<Pod>, pod: &Pod) -> Result<(), kube::Error> {
    let dp = DeleteParams {
        preconditions: Some(Preconditions {
            uid: pod.metadata.uid.clone(),
            resource_version: None,
        }),
        ..Default::default()
    };
    match api.delete(&pod.name_any(), &dp).await {
        Ok(_) => Ok(()),
        Err(kube::Error::Api(s)) if s.code == 404 => Ok(()),
        Err(e) => Err(e),
    }
}

/// upstream `podGenerateNameWithIndex`: `NAME-INDEX-`, the name cut to fit.
fn generate_name_with_index(job: &str, index: i32) -> String {
    let suffix = format!("-{index}-");
    let keep = MAX_GENERATE_NAME.saturating_sub(suffix.len()).min(job.len());
    let mut cut = keep;
    while !job.is_char_boundary(cut) {
        cut -= 1;
    }
    format!("{}{suffix}", &job[..cut])
}

impl Controller {
    /// upstream `getPodsForJob`: the pods this Job controls, after adopting matching orphans
    /// and releasing owned pods that no longer match.
    pub(super) async fn claim(&self, job: &Job, p: &Params) -> Result<Vec<Arc<Pod>>, Error> {
        let ns = job.metadata.namespace.clone().unwrap_or_default();
        let juid = job.metadata.uid.clone().unwrap_or_default();
        let selector = p.spec.selector.clone().unwrap_or_default();
        let api: Api<Pod> = Api::namespaced(self.client.clone(), &ns);
        let mut out = Vec::new();
        for pod in self.pods_in(&ns) {
            let matches = selector_matches(&selector, pod.labels());
            match controller_ref(&pod) {
                Some(r) if r.uid == juid => {
                    if matches || job.metadata.deletion_timestamp.is_some() {
                        out.push(pod);
                    } else {
                        let rest: Vec<&OwnerReference> =
                            pod.owner_references().iter().filter(|r| r.uid != juid).collect();
                        let refs = if rest.is_empty() { json!(null) } else { json!(rest) };
                        let patch = json!({"metadata": {"uid": pod.uid(), "ownerReferences": refs}});
                        tracing::debug!(pod = %pod.name_any(), job = %job.name_any(), "releasing a pod");
                        ignore_gone(
                            api.patch(&pod.name_any(), &PatchParams::default(), &Patch::Merge(&patch))
                                .await,
                        )?;
                    }
                }
                Some(_) => {}
                None if matches
                    && job.metadata.deletion_timestamp.is_none()
                    && pod.metadata.deletion_timestamp.is_none() =>
                {
                    let mut refs = pod.owner_references().to_vec();
                    refs.push(owner_ref(job));
                    let mut fins = pod.finalizers().to_vec();
                    if !has_finalizer(&pod) {
                        fins.push(TRACKING_FINALIZER.into());
                    }
                    let patch = json!({"metadata": {"uid": pod.uid(), "ownerReferences": refs, "finalizers": fins}});
                    tracing::debug!(pod = %pod.name_any(), job = %job.name_any(), "adopting an orphan pod");
                    if let Some(adopted) = ignore_gone(
                        api.patch(&pod.name_any(), &PatchParams::default(), &Patch::Merge(&patch))
                            .await,
                    )? {
                        out.push(Arc::new(adopted));
                    }
                }
                None => {}
            }
        }
        Ok(out)
    }

    /// upstream `manageJob`: deletes surplus (or, when suspended, all) active pods, or creates
    /// missing ones in slow-start batches once the failure back-off has passed.
    pub(super) async fn manage(
        &mut self,
        key: &Key,
        job: &Job,
        p: &Params,
        ctx: &mut JobCtx,
    ) -> Result<Managed, (Managed, Error)> {
        let mut active = ctx.active_pods.len() as i32;
        let api: Api<Pod> = Api::namespaced(self.client.clone(), &key.namespace);
        if p.suspended {
            tracing::debug!(job = %key.name, active, "deleting the active pods of a suspended job");
            let victims = ctx.active_pods.clone();
            return self.delete_pods(key, job, &api, &victims, ctx, active).await;
        }
        let want = match p.completions {
            None if ctx.succeeded > 0 => active,
            None => p.parallelism,
            Some(c) => (c - ctx.succeeded).min(p.parallelism).max(0),
        };
        let rm_at_least = usize::try_from(active - want).unwrap_or(0);
        let mut victims = self.pods_for_removal(p, &ctx.active_pods, rm_at_least);
        victims.truncate(MAX_PER_SYNC);
        if !victims.is_empty() {
            tracing::debug!(job = %key.name, deleting = victims.len(), want, "too many pods running");
            // Deletion and creation never happen in the same sync.
            return self.delete_pods(key, job, &api, &victims, ctx, active).await;
        }
        let waiting_terminating = if p.only_replace_failed { ctx.terminating } else { 0 };
        let diff = want - waiting_terminating - active;
        if diff <= 0 {
            return Ok(Managed { active });
        }
        // With backoffLimitPerIndex each index backs off on its own (below).
        let wait = if p.per_index.is_some() {
            std::time::Duration::ZERO
        } else {
            ctx.backoff.remaining(Timestamp::now())
        };
        if !wait.is_zero() {
            tracing::debug!(job = %key.name, ?wait, "backing off before creating pods");
            self.requeue(key, wait);
            return Ok(Managed { active });
        }
        let mut diff = usize::try_from(diff).unwrap_or(0).min(MAX_PER_SYNC);
        let mut indexes: Vec<i32> = Vec::new();
        if p.indexed {
            indexes = first_pending_indexes(ctx, p, diff, p.completions.unwrap_or(0));
            if p.per_index.is_some() {
                let now = Timestamp::now();
                let waits: Vec<std::time::Duration> = indexes
                    .iter()
                    .map(|ix| per_index::remaining(ctx.delayed.get(ix).map(|x| &**x), now))
                    .collect();
                let ready: Vec<i32> = indexes
                    .iter()
                    .zip(&waits)
                    .filter(|(_, w)| w.is_zero())
                    .map(|(i, _)| *i)
                    .collect();
                if ready.is_empty() {
                    if let Some(wait) = waits.into_iter().min() {
                        tracing::debug!(job = %key.name, ?wait, "backing off before retrying an index");
                        self.requeue(key, wait);
                    }
                    return Ok(Managed { active });
                }
                indexes = ready;
            }
            diff = indexes.len();
        }
        if diff == 0 {
            return Ok(Managed { active });
        }
        tracing::debug!(job = %key.name, want, creating = diff, "too few pods running");
        self.expectations.insert(key.clone(), Expectation::adds(diff));
        let template = pod_template(job, p);
        let pp = PostParams::default();
        active += diff as i32;
        let mut done = 0;
        let mut batch = 1;
        let mut failure: Option<kube::Error> = None;
        let mut terminating_ns = false;
        // upstream: slow start — batches of 1, 2, 4, … stop at the first failure.
        while done < diff && failure.is_none() && !terminating_ns {
            let n = batch.min(diff - done);
            let pods: Vec<Pod> = (done..done + n)
                .map(|i| {
                    let mut pod = template.clone();
                    if let Some(ix) = indexes.get(i) {
                        with_index(&mut pod, &key.name, *ix);
                        if p.per_index.is_some() {
                            let replaced = ctx.delayed.get(ix).map(|x| &**x);
                            let (failures, ignored) = per_index::replacement_counts(p, replaced);
                            let a = pod.metadata.annotations.get_or_insert_with(Default::default);
                            a.insert(per_index::FAILURE_COUNT.into(), failures.to_string());
                            if ignored > 0 {
                                a.insert(per_index::IGNORED_FAILURE_COUNT.into(), ignored.to_string());
                            }
                        }
                    }
                    pod
                })
                .collect();
            let results = futures::future::join_all(pods.iter().map(|pod| api.create(&pp, pod))).await;
            for r in results {
                match r {
                    Ok(pod) => {
                        let note = format!("Created pod: {}", pod.name_any());
                        self.event_about(job, EventType::Normal, "SuccessfulCreate", note, Some(&pod))
                            .await;
                    }
                    Err(e) if namespace_terminating(&e) => {
                        // upstream: every later creation fails too; the namespace is going.
                        self.lower_adds(key, 1);
                        active -= 1;
                        terminating_ns = true;
                    }
                    Err(e) => {
                        self.lower_adds(key, 1);
                        active -= 1;
                        let note = format!("Error creating: {e}");
                        self.event(job, EventType::Warning, "FailedCreate", note).await;
                        failure = Some(e);
                    }
                }
            }
            done += n;
            batch *= 2;
        }
        // Creations never attempted will not be observed.
        let skipped = diff - done;
        self.lower_adds(key, skipped as i64);
        active -= skipped as i32;
        match failure {
            Some(e) => Err((Managed { active }, e.into())),
            None => Ok(Managed { active }),
        }
    }

    fn lower_adds(&mut self, key: &Key, n: i64) {
        if let Some(e) = self.expectations.get_mut(key) {
            e.adds -= n;
        }
    }

    /// upstream `deleteJobPods`: removes the finalizer first (the pod is not a failure to
    /// count), then deletes.
    async fn delete_pods(
        &mut self,
        key: &Key,
        job: &Job,
        api: &Api<Pod>,
        victims: &[Arc<Pod>],
        ctx: &mut JobCtx,
        mut active: i32,
    ) -> Result<Managed, (Managed, Error)> {
        self.expectations.insert(
            key.clone(),
            Expectation::dels(victims.iter().map(|v| uid(v).to_string())),
        );
        let mut err = None;
        for pod in victims {
            let res = match remove_finalizer(api, &pod.name_any()).await {
                Ok(()) => delete_pod(api, pod).await,
                Err(e) => Err(e),
            };
            match res {
                Ok(()) => {
                    active -= 1;
                    ctx.terminating += 1;
                    if is_ready(pod) {
                        ctx.ready -= 1;
                    }
                    let note = format!("Deleted pod: {}", pod.name_any());
                    self.event_about(job, EventType::Normal, "SuccessfulDelete", note, Some(pod))
                        .await;
                }
                Err(e) => {
                    if let Some(x) = self.expectations.get_mut(key) {
                        x.dels.remove(uid(pod));
                    }
                    let note = format!("Error deleting: {e}");
                    self.event_about(job, EventType::Warning, "FailedDelete", note, Some(pod))
                        .await;
                    err = Some(e);
                }
            }
        }
        match err {
            Some(e) => Err((Managed { active }, e.into())),
            None => Ok(Managed { active }),
        }
    }

    /// upstream `activePodsForRemoval`: for Indexed Jobs, pods with a bad or repeated index
    /// first; then by the active-pods order.
    fn pods_for_removal(&self, p: &Params, pods: &[Arc<Pod>], at_least: usize) -> Vec<Arc<Pod>> {
        let mut rm = Vec::new();
        let mut left: Vec<Arc<Pod>> = Vec::new();
        if p.indexed {
            let completions = p.completions.unwrap_or(0);
            let mut by_index: BTreeMap<i32, Vec<Arc<Pod>>> = BTreeMap::new();
            for pod in pods {
                match completion_index(pod).filter(|i| *i < completions) {
                    Some(i) => by_index.entry(i).or_default().push(pod.clone()),
                    None => rm.push(pod.clone()),
                }
            }
            for (_, mut group) in by_index {
                // Keep the most advanced pod of an index.
                sort_for_removal(&mut group);
                let keep = group.pop();
                rm.extend(group);
                left.extend(keep);
            }
        } else {
            left = pods.to_vec();
        }
        if rm.len() < at_least {
            sort_for_removal(&mut left);
            let more = at_least - rm.len();
            rm.extend(left.into_iter().take(more));
        }
        rm
    }
}

/// Whether a creation failed because its namespace is being deleted.
pub(crate) fn namespace_terminating(e: &kube::Error) -> bool {
    matches!(e, kube::Error::Api(s) if s.code == 403 && s.message.contains("because it is being terminated"))
}

fn ignore_gone<T>(r: Result<T, kube::Error>) -> Result<Option<T>, Error> {
    match r {
        Ok(v) => Ok(Some(v)),
        Err(kube::Error::Api(s)) if matches!(s.code, 404 | 409 | 422) => Ok(None),
        Err(e) => Err(e.into()),
    }
}

/// upstream `firstPendingIndexes`: the lowest indexes neither succeeded, failed for good, nor
/// running (nor terminating, when only failed pods are replaced).
fn first_pending_indexes(ctx: &JobCtx, p: &Params, count: usize, completions: i32) -> Vec<i32> {
    let mut busy: BTreeSet<i32> = ctx.active_pods.iter().filter_map(|x| completion_index(x)).collect();
    if p.only_replace_failed {
        busy.extend(
            ctx.pods
                .iter()
                .filter(|x| is_terminating(x))
                .filter_map(|x| completion_index(x)),
        );
    }
    let failed = ctx.failed_indexes.as_ref();
    (0..completions)
        .filter(|i| !ctx.succeeded_indexes.contains(i) && !busy.contains(i) && failed.is_none_or(|f| !f.contains(i)))
        .take(count)
        .collect()
}

/// The pod every creation starts from: the template with the controller reference, the
/// tracking finalizer and, for Indexed Jobs, the JOB_COMPLETION_INDEX variable.
fn pod_template(job: &Job, p: &Params) -> Pod {
    let t = &p.spec.template;
    let tm = t.metadata.clone().unwrap_or_default();
    let mut finalizers = tm.finalizers.unwrap_or_default();
    if !finalizers.iter().any(|f| f == TRACKING_FINALIZER) {
        finalizers.push(TRACKING_FINALIZER.into());
    }
    let mut spec = t.spec.clone().unwrap_or_default();
    if p.indexed {
        let var = EnvVar {
            name: "JOB_COMPLETION_INDEX".into(),
            value: None,
            value_from: Some(EnvVarSource {
                field_ref: Some(ObjectFieldSelector {
                    api_version: None,
                    // upstream (PodIndexLabel): the label, which the pod carries too.
                    field_path: format!("metadata.labels['{COMPLETION_INDEX}']"),
                }),
                ..Default::default()
            }),
        };
        let containers = spec
            .containers
            .iter_mut()
            .chain(spec.init_containers.iter_mut().flatten());
        for c in containers {
            let env = c.env.get_or_insert_with(Vec::new);
            if !env.iter().any(|e| e.name == var.name) {
                env.push(var.clone());
            }
        }
    }
    Pod {
        metadata: ObjectMeta {
            generate_name: Some(format!("{}-", job.name_any())),
            namespace: job.metadata.namespace.clone(),
            labels: tm.labels,
            annotations: tm.annotations,
            finalizers: Some(finalizers),
            owner_references: Some(vec![owner_ref(job)]),
            ..Default::default()
        },
        spec: Some(spec),
        status: None,
    }
}

/// Marks a pod with its completion index: annotation, label, hostname and name.
fn with_index(pod: &mut Pod, job: &str, ix: i32) {
    let m = &mut pod.metadata;
    m.annotations
        .get_or_insert_with(Default::default)
        .insert(COMPLETION_INDEX.into(), ix.to_string());
    m.labels
        .get_or_insert_with(Default::default)
        .insert(COMPLETION_INDEX.into(), ix.to_string());
    m.generate_name = Some(generate_name_with_index(job, ix));
    if let Some(s) = pod.spec.as_mut() {
        s.hostname = Some(format!("{job}-{ix}"));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn terminating_namespace_refusals() {
        let err = |code: u16, message: &str| {
            kube::Error::Api(Box::new(kube::core::Status {
                code,
                message: message.into(),
                ..Default::default()
            }))
        };
        let gone =
            "pods \"x\" is forbidden: unable to create new content in namespace a because it is being terminated";
        assert!(namespace_terminating(&err(403, gone)));
        assert!(!namespace_terminating(&err(403, "exceeded quota: q")));
        assert!(!namespace_terminating(&err(500, gone)));
    }

    #[test]
    fn generate_names() {
        let long = "x".repeat(70);
        let cases = [
            ("pi", 3, "pi-3-".to_string()),
            (long.as_str(), 12, format!("{}-12-", "x".repeat(54))),
        ];
        for (job, ix, want) in cases {
            assert_eq!(generate_name_with_index(job, ix), want, "{job}");
        }
    }
}
