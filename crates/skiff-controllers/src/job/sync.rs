//! One Job's reconciliation (upstream `syncJob` and `trackJobStatusAndRemoveFinalizers`).

use std::collections::{BTreeSet, HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use jiff::Timestamp;
use k8s_openapi::api::batch::v1::{Job, JobCondition, JobSpec, JobStatus, UncountedTerminatedPods};
use k8s_openapi::api::core::v1::{ObjectReference, Pod};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::api::PostParams;
use kube::runtime::events::{Event, EventType};
use kube::{Api, ResourceExt};

use super::backoff::Record;
use super::failure_policy;
use super::pod_util::{completion_index, has_finalizer, is_failed, is_ready, is_terminating, phase, restarts, uid};
use super::{indexes, per_index, remove_finalizer, success_policy, Controller, Key};
use crate::expectations::Expectation;
use crate::pods::is_active;
use crate::Error;

/// upstream `MaxUncountedPods`: finished pods recorded per status write.
const MAX_UNCOUNTED: usize = 500;
/// The `managedBy` value of this controller.
const MANAGED_BY: &str = "kubernetes.io/job-controller";

/// Whether the Job has its terminal condition (upstream `IsJobFinished`).
pub(super) fn is_finished(job: &Job) -> bool {
    finished_type(job).is_some()
}

fn finished_type(job: &Job) -> Option<&'static str> {
    let conds = job.status.as_ref()?.conditions.as_ref()?;
    conds.iter().find_map(|c| match (c.type_.as_str(), c.status.as_str()) {
        ("Complete", "True") => Some("Complete"),
        ("Failed", "True") => Some("Failed"),
        _ => None,
    })
}

fn condition(ty: &str, reason: &str, message: &str, now: Timestamp) -> JobCondition {
    JobCondition {
        type_: ty.into(),
        status: "True".into(),
        reason: Some(reason.into()).filter(|r: &String| !r.is_empty()),
        message: Some(message.into()).filter(|m: &String| !m.is_empty()),
        last_probe_time: Some(Time(now)),
        last_transition_time: Some(Time(now)),
    }
}

fn find<'a>(st: &'a JobStatus, ty: &str) -> Option<&'a JobCondition> {
    st.conditions.iter().flatten().find(|c| c.type_ == ty)
}

/// upstream `ensureJobConditionStatus`: sets a condition; a False one is only written over an
/// existing condition. Returns whether anything changed.
fn ensure_condition(st: &mut JobStatus, ty: &str, status: &str, reason: &str, message: &str, now: Timestamp) -> bool {
    let conds = st.conditions.get_or_insert_with(Vec::new);
    if let Some(c) = conds.iter_mut().find(|c| c.type_ == ty) {
        if c.status != status || c.reason.as_deref() != Some(reason) || c.message.as_deref() != Some(message) {
            *c = condition(ty, reason, message, now);
            c.status = status.into();
            return true;
        }
        return false;
    }
    if status != "False" {
        conds.push(condition(ty, reason, message, now));
        return true;
    }
    false
}

/// The Job's settings a sync keeps consulting.
pub(super) struct Params {
    pub indexed: bool,
    pub completions: Option<i32>,
    pub parallelism: i32,
    pub suspended: bool,
    pub only_replace_failed: bool,
    /// backoffLimitPerIndex, for Indexed Jobs.
    pub per_index: Option<i32>,
    pub spec: JobSpec,
}

impl Params {
    pub(super) fn of(job: &Job) -> Params {
        let spec = job.spec.clone().unwrap_or_default();
        Params {
            indexed: spec.completion_mode.as_deref() == Some("Indexed"),
            completions: spec.completions,
            parallelism: spec.parallelism.unwrap_or(1).max(0),
            suspended: spec.suspend == Some(true),
            only_replace_failed: spec.pod_replacement_policy.as_deref() == Some("Failed"),
            per_index: spec
                .backoff_limit_per_index
                .filter(|_| spec.completion_mode.as_deref() == Some("Indexed")),
            spec,
        }
    }

    /// Whether a pod's completion index is one this Job counts.
    pub fn valid_index(&self, pod: &Pod) -> bool {
        !self.indexed || completion_index(pod).is_some_and(|i| i < self.completions.unwrap_or(0))
    }

    fn counts_failure(&self, pod: &Pod) -> bool {
        self.spec
            .pod_failure_policy
            .as_ref()
            .is_none_or(|p| failure_policy::evaluate(p, pod).count)
    }
}

/// What one sync computed, as upstream's `syncJobCtx`.
pub(super) struct JobCtx {
    pub pods: Vec<Arc<Pod>>,
    pub active_pods: Vec<Arc<Pod>>,
    pub succeeded: i32,
    pub ready: i32,
    pub terminating: i32,
    pub expected_rm: HashSet<String>,
    pub succeeded_indexes: BTreeSet<i32>,
    pub prev_succeeded_indexes: BTreeSet<i32>,
    pub backoff: Record,
    pub finished: Option<JobCondition>,
    /// Failed indexes, with backoffLimitPerIndex.
    pub failed_indexes: Option<BTreeSet<i32>>,
    /// Per index, the failed pod whose removal waits for its replacement.
    pub delayed: HashMap<i32, Arc<Pod>>,
}

impl Controller {
    pub(super) async fn event(&self, job: &Job, type_: EventType, reason: &str, note: String) {
        self.event_about(job, type_, reason, note, None).await;
    }

    /// An event that concerns one pod too: naming it keeps events about different pods
    /// apart (the recorder would otherwise fold them into one series, unlike upstream).
    pub(super) async fn event_about(
        &self,
        job: &Job,
        type_: EventType,
        reason: &str,
        note: String,
        related: Option<&Pod>,
    ) {
        let reference = ObjectReference {
            api_version: Some("batch/v1".into()),
            kind: Some("Job".into()),
            name: job.metadata.name.clone(),
            namespace: job.metadata.namespace.clone(),
            uid: job.metadata.uid.clone(),
            resource_version: job.metadata.resource_version.clone(),
            field_path: None,
        };
        let ev = Event {
            type_,
            reason: reason.into(),
            note: Some(note),
            action: reason.into(),
            secondary: related.map(pod_ref),
        };
        if let Err(e) = self.recorder.publish(&ev, &reference).await {
            tracing::debug!(error = %e, "publishing a job event failed");
        }
    }

    /// Writes the status (optimistically, on the resourceVersion we read) and remembers the
    /// result until the cache has it.
    async fn write_status(&mut self, key: &Key, job: &mut Job) -> Result<(), Error> {
        let mut out = job.clone();
        if let Some(st) = out.status.as_mut() {
            normalize(st);
        }
        let api: Api<Job> = Api::namespaced(self.client.clone(), &key.namespace);
        let new = api.replace_status(&key.name, &PostParams::default(), &out).await?;
        *job = new.clone();
        if job.status.is_none() {
            job.status = Some(JobStatus::default());
        }
        self.written.insert(key.clone(), new);
        Ok(())
    }

    /// upstream `syncJob`.
    pub(super) async fn sync(&mut self, key: &Key) -> Result<(), Error> {
        let Some(mut job) = self.job(key) else {
            self.expectations.remove(key);
            self.rm_finalizers.remove(key);
            self.backoff.remove(key);
            self.written.remove(key);
            return Ok(());
        };
        if is_finished(&job) {
            self.backoff.remove(key);
            self.written.remove(key);
            return Ok(());
        }
        let p = Params::of(&job);
        if p.spec.managed_by.as_deref().is_some_and(|m| m != MANAGED_BY) {
            tracing::debug!(job = %key.name, "skipping a job managed by another controller");
            return Ok(());
        }
        if let Some(mode) = p
            .spec
            .completion_mode
            .as_deref()
            .filter(|m| *m != "Indexed" && *m != "NonIndexed")
        {
            tracing::debug!(job = %key.name, mode, "unknown completion mode");
            let note = "Skipped Job sync because completion mode is unknown".to_string();
            self.event(&job, EventType::Warning, "UnknownCompletionMode", note)
                .await;
            return Ok(());
        }
        let now = Timestamp::now();
        let mut status = job.status.clone().unwrap_or_default();
        let uncounted = status.uncounted_terminated_pods.clone().unwrap_or_default();
        status.uncounted_terminated_pods = Some(uncounted.clone());
        let unc_s: HashSet<String> = uncounted.succeeded.clone().unwrap_or_default().into_iter().collect();
        let unc_f: HashSet<String> = uncounted.failed.clone().unwrap_or_default().into_iter().collect();
        // Check expectations before reading pods, so a pod arriving in between only delays.
        let satisfied = self.expectations.get(key).is_none_or(Expectation::satisfied);
        let pods = self.claim(&job, &p).await?;
        let expected_rm = self.rm_finalizers.get(key).cloned().unwrap_or_default();
        let active_pods: Vec<Arc<Pod>> = pods.iter().filter(|p| is_active(p)).cloned().collect();
        let countable = |pod: &Pod, uncounted: &HashSet<String>| {
            has_finalizer(pod) && !uncounted.contains(uid(pod)) && !expected_rm.contains(uid(pod)) && p.valid_index(pod)
        };
        let new_succeeded: Vec<&Pod> = pods
            .iter()
            .map(|x| &**x)
            .filter(|x| countable(x, &unc_s) && phase(x) == "Succeeded")
            .collect();
        let new_failed: Vec<&Pod> = pods
            .iter()
            .map(|x| &**x)
            .filter(|x| countable(x, &unc_f) && is_failed(x, p.only_replace_failed))
            .collect();
        let mut succeeded = status.succeeded.unwrap_or(0) + new_succeeded.len() as i32 + unc_s.len() as i32;
        let failed = status.failed.unwrap_or(0)
            + new_failed.iter().filter(|x| p.counts_failure(x)).count() as i32
            + unc_f.len() as i32;
        if status.start_time.is_none() && !p.suspended {
            status.start_time = Some(Time(now));
        }
        let backoff = self
            .backoff
            .get(key)
            .cloned()
            .unwrap_or_default()
            .with(&new_succeeded, &new_failed);
        let backoff_limit = p.spec.backoff_limit.unwrap_or(6);
        let mut finished = find(&status, "SuccessCriteriaMet")
            .filter(|c| c.status == "True")
            .cloned();
        if finished.is_none() {
            if let Some(ft) = find(&status, "FailureTarget").filter(|c| c.status == "True") {
                let mut c = ft.clone();
                c.type_ = "Failed".into();
                c.last_probe_time = Some(Time(now));
                c.last_transition_time = Some(Time(now));
                finished = Some(c);
            } else if let Some(msg) = fail_job_message(&p, &pods) {
                finished = Some(condition("FailureTarget", "PodFailurePolicy", &msg, now));
            }
        }
        if finished.is_none() {
            let start = status.start_time.as_ref().map(|t| t.0);
            let deadline = p.spec.active_deadline_seconds.filter(|_| !p.suspended);
            if failed > backoff_limit || past_backoff_limit_on_failure(&p, &pods, backoff_limit) {
                tracing::debug!(job = %key.name, failed, backoff_limit, "backoff limit exceeded");
                let msg = "Job has reached the specified backoff limit";
                finished = Some(condition("FailureTarget", "BackoffLimitExceeded", msg, now));
            } else if let (Some(secs), Some(start)) = (deadline, start) {
                let end = start + jiff::SignedDuration::from_secs(secs);
                if now >= end {
                    tracing::debug!(job = %key.name, "active deadline exceeded");
                    let msg = "Job was active longer than specified deadline";
                    finished = Some(condition("FailureTarget", "DeadlineExceeded", msg, now));
                } else {
                    let left = Duration::try_from(end.duration_since(now)).unwrap_or(Duration::ZERO);
                    self.requeue(key, left);
                }
            }
        }
        let (mut prev_ix, mut succeeded_ix) = (BTreeSet::new(), BTreeSet::new());
        let mut failed_indexes: Option<BTreeSet<i32>> = None;
        if p.indexed {
            let completions = p.completions.unwrap_or(0);
            prev_ix = indexes::parse(status.completed_indexes.as_deref().unwrap_or(""), completions);
            succeeded_ix = prev_ix.clone();
            succeeded_ix.extend(
                pods.iter()
                    .filter(|x| phase(x) == "Succeeded" && has_finalizer(x))
                    .filter_map(|x| completion_index(x))
                    .filter(|i| *i < completions),
            );
            succeeded = succeeded_ix.len() as i32;
            if let Some(limit) = p.per_index {
                let prev = status.failed_indexes.as_deref().unwrap_or("");
                let failed_ix = per_index::failed_indexes(&p, limit, prev, &pods);
                if finished.is_none() {
                    let max = p.spec.max_failed_indexes.and_then(|m| usize::try_from(m).ok());
                    if max.is_some_and(|m| failed_ix.len() > m) {
                        let msg = "Job has exceeded the specified maximal number of failed indexes";
                        finished = Some(condition("FailureTarget", "MaxFailedIndexesExceeded", msg, now));
                    } else if !failed_ix.is_empty() && (failed_ix.len() + succeeded_ix.len()) as i32 >= completions {
                        finished = Some(condition(
                            "FailureTarget",
                            "FailedIndexes",
                            "Job has failed indexes",
                            now,
                        ));
                    }
                }
                failed_indexes = Some(failed_ix);
            }
            if finished.is_none() {
                let policy = p.spec.success_policy.as_ref();
                if let Some(msg) = policy.and_then(|sp| success_policy::matches(sp, completions, &succeeded_ix)) {
                    tracing::debug!(job = %key.name, %msg, "success policy met");
                    finished = Some(condition("SuccessCriteriaMet", "SuccessPolicy", &msg, now));
                }
            }
        }
        let delayed = match &failed_indexes {
            Some(f) => per_index::delayed_deletion(&p, &pods, &active_pods, &expected_rm, &succeeded_ix, f),
            None => HashMap::new(),
        };
        let mut ctx = JobCtx {
            failed_indexes,
            delayed,
            ready: active_pods.iter().filter(|x| is_ready(x)).count() as i32,
            terminating: pods.iter().filter(|x| is_terminating(x)).count() as i32,
            pods,
            active_pods,
            succeeded,
            expected_rm,
            succeeded_indexes: succeeded_ix,
            prev_succeeded_indexes: prev_ix,
            backoff,
            finished,
        };
        let mut active = ctx.active_pods.len() as i32;
        let mut suspend_changed = false;
        let mut manage_err = None;
        job.status = Some(status);
        if ctx.finished.is_some() {
            // The Job failed or met its success criteria: its active pods go (keeping their
            // finalizers until they are counted).
            let (deleted_ready, deleted, err) = self.delete_active(&job, &ctx.active_pods).await;
            if deleted != active || !satisfied {
                ctx.finished = None;
            }
            active -= deleted;
            ctx.terminating += deleted;
            ctx.ready -= deleted_ready;
            manage_err = err;
        } else {
            let mut manage_called = false;
            if satisfied && job.metadata.deletion_timestamp.is_none() {
                match self.manage(key, &job, &p, &mut ctx).await {
                    Ok(a) => active = a.active,
                    Err((a, e)) => {
                        active = a.active;
                        manage_err = Some(e);
                    }
                }
                manage_called = true;
            }
            let complete = match p.completions {
                None => ctx.succeeded > 0 && active == 0,
                Some(c) => ctx.succeeded >= c && active == 0,
            };
            let st = job.status.get_or_insert_with(Default::default);
            if complete {
                let msg = "Reached expected number of succeeded pods";
                ctx.finished = Some(condition("SuccessCriteriaMet", "CompletionsReached", msg, now));
            } else if manage_called {
                if p.suspended {
                    if ensure_condition(st, "Suspended", "True", "JobSuspended", "Job suspended", now) {
                        suspend_changed = true;
                        self.event(&job, EventType::Normal, "Suspended", "Job suspended".into())
                            .await;
                    }
                } else if ensure_condition(st, "Suspended", "False", "JobResumed", "Job resumed", now) {
                    suspend_changed = true;
                    // upstream: activeDeadlineSeconds counts from the resume.
                    let st = job.status.get_or_insert_with(Default::default);
                    st.start_time = Some(Time(now));
                    self.event(&job, EventType::Normal, "Resumed", "Job resumed".into())
                        .await;
                }
            }
        }
        let stored = self.job(key).and_then(|j| j.status);
        let st = job.status.get_or_insert_with(Default::default);
        let needs_update = suspend_changed
            || active != st.active.unwrap_or(0)
            || Some(ctx.ready) != st.ready
            || Some(ctx.terminating) != st.terminating
            || Some(&*st) != stored.as_ref();
        st.active = Some(active);
        st.ready = Some(ctx.ready);
        st.terminating = Some(ctx.terminating);
        self.track_status(key, &mut job, &p, &mut ctx, needs_update).await?;
        match manage_err {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }

    /// upstream `trackJobStatusAndRemoveFinalizers`: records finished pods as uncounted, removes
    /// their finalizers, moves them into the counters, and adds the terminal condition.
    async fn track_status(
        &mut self,
        key: &Key,
        job: &mut Job,
        p: &Params,
        ctx: &mut JobCtx,
        mut needs_flush: bool,
    ) -> Result<(), Error> {
        let now = Timestamp::now();
        let mut pods = ctx.pods.clone();
        if p.indexed {
            pods.sort_by_key(|x| completion_index(x).unwrap_or(i32::MAX));
        }
        let mut with_finalizer: HashSet<String> = pods
            .iter()
            .filter(|x| has_finalizer(x) && !ctx.expected_rm.contains(uid(x)))
            .map(|x| uid(x).to_string())
            .collect();
        let st = job.status.get_or_insert_with(Default::default);
        if clean_uncounted(st, &with_finalizer) {
            needs_flush = true;
        }
        let unc = st.uncounted_terminated_pods.clone().unwrap_or_default();
        let mut unc_s: Vec<String> = unc.succeeded.unwrap_or_default();
        let mut unc_f: Vec<String> = unc.failed.unwrap_or_default();
        let was_s: HashSet<String> = unc_s.iter().cloned().collect();
        let was_f: HashSet<String> = unc_f.iter().cloned().collect();
        let finishing_failed = ctx.finished.as_ref().is_some_and(|c| c.type_ != "SuccessCriteriaMet");
        let mut to_remove: Vec<Arc<Pod>> = Vec::new();
        let mut new_ix: Vec<i32> = Vec::new();
        let mut reached_max = false;
        for pod in &pods {
            if !has_finalizer(pod) || ctx.expected_rm.contains(uid(pod)) {
                continue;
            }
            let failed = is_failed(pod, p.only_replace_failed);
            // upstream `canRemoveFinalizer`; with backoffLimitPerIndex the last failed pod of
            // an index waits until its replacement carries the failure count on.
            let delayed = completion_index(pod)
                .and_then(|ix| ctx.delayed.get(&ix))
                .is_some_and(|d| uid(d) == uid(pod));
            let can_remove = job.metadata.deletion_timestamp.is_some()
                || ctx.finished.is_some()
                || phase(pod) == "Succeeded"
                || (failed && !delayed);
            if !can_remove {
                continue;
            }
            to_remove.push(pod.clone());
            let u = uid(pod).to_string();
            if phase(pod) == "Succeeded" && !was_f.contains(&u) {
                if p.indexed {
                    if let Some(ix) = completion_index(pod) {
                        if ix < p.completions.unwrap_or(0) && !ctx.prev_succeeded_indexes.contains(&ix) {
                            new_ix.push(ix);
                            needs_flush = true;
                        }
                    }
                } else if !was_s.contains(&u) {
                    unc_s.push(u);
                    needs_flush = true;
                }
            } else if (failed || finishing_failed) && !was_f.contains(&u) && p.valid_index(pod) {
                let counted = p
                    .spec
                    .pod_failure_policy
                    .as_ref()
                    .is_none_or(|fp| failure_policy::evaluate(fp, pod).count);
                if counted {
                    unc_f.push(u);
                    needs_flush = true;
                }
            }
            if new_ix.len() + unc_s.len() + unc_f.len() >= MAX_UNCOUNTED {
                // Bounded status size; the status write brings the Job back for the rest.
                reached_max = true;
                break;
            }
        }
        let st = job.status.get_or_insert_with(Default::default);
        st.uncounted_terminated_pods = Some(UncountedTerminatedPods {
            succeeded: Some(unc_s),
            failed: Some(unc_f),
        });
        if p.indexed {
            ctx.succeeded_indexes.extend(new_ix);
            let text = indexes::format(&ctx.succeeded_indexes);
            if st.completed_indexes.as_deref().unwrap_or("") != text {
                needs_flush = true;
            }
            st.succeeded = Some(ctx.succeeded_indexes.len() as i32);
            st.completed_indexes = Some(text);
            let failed_text = ctx.failed_indexes.as_ref().map(indexes::format);
            if st.failed_indexes != failed_text {
                st.failed_indexes = failed_text;
                needs_flush = true;
            }
        }
        if let Some(c) = ctx.finished.clone() {
            if c.type_ == "FailureTarget" {
                // The interim condition is written before any pod loses its finalizer.
                st.conditions.get_or_insert_with(Vec::new).push(c.clone());
                needs_flush = true;
                ctx.finished = Some(condition(
                    "Failed",
                    c.reason.as_deref().unwrap_or(""),
                    c.message.as_deref().unwrap_or(""),
                    now,
                ));
            } else if c.type_ == "SuccessCriteriaMet" {
                if find(st, "SuccessCriteriaMet").is_none() {
                    st.conditions.get_or_insert_with(Vec::new).push(c.clone());
                    needs_flush = true;
                }
                ctx.finished = Some(condition(
                    "Complete",
                    c.reason.as_deref().unwrap_or(""),
                    c.message.as_deref().unwrap_or(""),
                    now,
                ));
            }
        }
        // upstream `flushUncountedAndRemoveFinalizers`.
        if needs_flush {
            self.write_status(key, job).await?;
            self.backoff.insert(key.clone(), ctx.backoff.clone());
            needs_flush = false;
        }
        let mut rm_err = None;
        if !to_remove.is_empty() {
            let expected = self.rm_finalizers.entry(key.clone()).or_default();
            expected.extend(to_remove.iter().map(|x| uid(x).to_string()));
            let api: Api<Pod> = Api::namespaced(self.client.clone(), &key.namespace);
            let results = futures::future::join_all(
                to_remove
                    .iter()
                    .map(|x| remove_finalizer(&api, x.metadata.name.as_deref().unwrap_or_default())),
            )
            .await;
            for (x, r) in to_remove.iter().zip(results) {
                match r {
                    Ok(()) => {
                        with_finalizer.remove(uid(x));
                    }
                    Err(e) => {
                        if let Some(s) = self.rm_finalizers.get_mut(key) {
                            s.remove(uid(x));
                        }
                        rm_err = Some(e);
                    }
                }
            }
        }
        let st = job.status.get_or_insert_with(Default::default);
        if clean_uncounted(st, &with_finalizer) {
            needs_flush = true;
        }
        if rm_err.is_some() && needs_flush {
            self.write_status(key, job).await?;
            needs_flush = false;
        }
        if let Some(e) = rm_err {
            return Err(e.into());
        }
        let finished = !reached_max && self.enact_finished(job, ctx);
        if finished || needs_flush {
            self.write_status(key, job).await?;
        }
        if finished {
            self.record_finished(job, p, ctx).await;
        }
        Ok(())
    }

    /// upstream `enactJobFinished`: the terminal condition, once no pod is uncounted or
    /// still terminating.
    fn enact_finished(&self, job: &mut Job, ctx: &JobCtx) -> bool {
        let Some(c) = ctx.finished.as_ref() else { return false };
        let st = job.status.get_or_insert_with(Default::default);
        let unc = st.uncounted_terminated_pods.as_ref();
        let pending = unc.map(|u| u.succeeded.as_ref().map_or(0, Vec::len) + u.failed.as_ref().map_or(0, Vec::len));
        if pending.unwrap_or(0) > 0 || ctx.terminating > 0 {
            return false;
        }
        let now = Timestamp::now();
        ensure_condition(
            st,
            &c.type_,
            "True",
            c.reason.as_deref().unwrap_or(""),
            c.message.as_deref().unwrap_or(""),
            now,
        );
        if c.type_ == "Complete" {
            st.completion_time = Some(Time(now));
        }
        true
    }

    async fn record_finished(&self, job: &Job, p: &Params, ctx: &JobCtx) {
        let Some(c) = ctx.finished.as_ref() else { return };
        if c.type_ == "Complete" {
            let succeeded = job.status.as_ref().and_then(|s| s.succeeded).unwrap_or(0);
            if p.completions.is_some_and(|n| succeeded > n) {
                let note = "Too many succeeded pods running after completion count reached".to_string();
                self.event(job, EventType::Warning, "TooManySucceededPods", note).await;
            }
            self.event(job, EventType::Normal, "Completed", "Job completed".into())
                .await;
        } else {
            let reason = c.reason.clone().unwrap_or_default();
            self.event(job, EventType::Warning, &reason, c.message.clone().unwrap_or_default())
                .await;
        }
    }

    /// upstream `deleteActivePods`: deletes pods keeping their finalizers; returns the ready and
    /// total pods deleted and the last error.
    async fn delete_active(&self, job: &Job, pods: &[Arc<Pod>]) -> (i32, i32, Option<Error>) {
        let api: Api<Pod> = Api::namespaced(
            self.client.clone(),
            job.metadata.namespace.as_deref().unwrap_or_default(),
        );
        let mut deleted = 0;
        let mut deleted_ready = 0;
        let mut err = None;
        for pod in pods {
            match super::manage::delete_pod(&api, pod).await {
                Ok(()) => {
                    deleted += 1;
                    if is_ready(pod) {
                        deleted_ready += 1;
                    }
                    let note = format!("Deleted pod: {}", pod.name_any());
                    self.event_about(job, EventType::Normal, "SuccessfulDelete", note, Some(pod))
                        .await;
                }
                Err(e) => err = Some(e.into()),
            }
        }
        (deleted_ready, deleted, err)
    }
}

/// A reference to a pod, for events.
pub(super) fn pod_ref(p: &Pod) -> ObjectReference {
    ObjectReference {
        api_version: Some("v1".into()),
        kind: Some("Pod".into()),
        name: p.metadata.name.clone(),
        namespace: p.metadata.namespace.clone(),
        uid: p.metadata.uid.clone(),
        resource_version: None,
        field_path: None,
    }
}

/// upstream `cleanUncountedPodsWithoutFinalizers`: uncounted pods whose finalizer is gone
/// move into the counters. Returns whether the status changed.
fn clean_uncounted(st: &mut JobStatus, with_finalizer: &HashSet<String>) -> bool {
    let unc = st.uncounted_terminated_pods.get_or_insert_with(Default::default);
    let mut changed = false;
    let mut moved = [0i32; 2];
    for (i, list) in [&mut unc.succeeded, &mut unc.failed].into_iter().enumerate() {
        let Some(v) = list.as_mut() else { continue };
        let before = v.len();
        v.retain(|u| with_finalizer.contains(u));
        if v.len() != before {
            changed = true;
            moved[i] = (before - v.len()) as i32;
        }
    }
    if moved[0] > 0 {
        st.succeeded = Some(st.succeeded.unwrap_or(0) + moved[0]);
    }
    if moved[1] > 0 {
        st.failed = Some(st.failed.unwrap_or(0) + moved[1]);
    }
    changed
}

/// Upstream omits zero counters and empty lists.
fn normalize(st: &mut JobStatus) {
    for n in [&mut st.active, &mut st.succeeded, &mut st.failed] {
        if *n == Some(0) {
            *n = None;
        }
    }
    if let Some(u) = st.uncounted_terminated_pods.as_mut() {
        for l in [&mut u.succeeded, &mut u.failed] {
            if l.as_ref().is_some_and(Vec::is_empty) {
                *l = None;
            }
        }
    }
    if st.completed_indexes.as_deref() == Some("") {
        st.completed_indexes = None;
    }
    if st.conditions.as_ref().is_some_and(Vec::is_empty) {
        st.conditions = None;
    }
}

/// upstream `getFailJobMessage`: the first failed pod a FailJob rule matches.
fn fail_job_message(p: &Params, pods: &[Arc<Pod>]) -> Option<String> {
    let policy = p.spec.pod_failure_policy.as_ref()?;
    pods.iter()
        .filter(|x| is_failed(x, p.only_replace_failed))
        .find_map(|x| failure_policy::evaluate(policy, x).fail_job)
}

/// upstream `pastBackoffLimitOnFailure`: with restartPolicy OnFailure, container restarts of
/// running pods count against backoffLimit.
fn past_backoff_limit_on_failure(p: &Params, pods: &[Arc<Pod>], limit: i32) -> bool {
    let policy = p.spec.template.spec.as_ref().and_then(|s| s.restart_policy.as_deref());
    if policy != Some("OnFailure") {
        return false;
    }
    let total: i32 = pods
        .iter()
        .filter(|x| matches!(phase(x), "Running" | "Pending"))
        .map(|x| restarts(x))
        .sum();
    if limit == 0 {
        total > 0
    } else {
        total >= limit
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uncounted_move_into_counters() {
        let mut st = JobStatus {
            succeeded: Some(1),
            uncounted_terminated_pods: Some(UncountedTerminatedPods {
                succeeded: Some(vec!["a".into(), "b".into()]),
                failed: Some(vec!["c".into()]),
            }),
            ..Default::default()
        };
        let still: HashSet<String> = ["b".to_string()].into_iter().collect();
        assert!(clean_uncounted(&mut st, &still));
        assert_eq!((st.succeeded, st.failed), (Some(2), Some(1)));
        let unc = st.uncounted_terminated_pods.unwrap();
        assert_eq!(unc.succeeded.unwrap(), ["b"]);
        assert!(unc.failed.unwrap().is_empty());
    }

    #[test]
    fn conditions_false_only_over_existing() {
        let now = Timestamp::now();
        let mut st = JobStatus::default();
        assert!(!ensure_condition(
            &mut st,
            "Suspended",
            "False",
            "JobResumed",
            "Job resumed",
            now
        ));
        assert!(ensure_condition(
            &mut st,
            "Suspended",
            "True",
            "JobSuspended",
            "Job suspended",
            now
        ));
        assert!(!ensure_condition(
            &mut st,
            "Suspended",
            "True",
            "JobSuspended",
            "Job suspended",
            now
        ));
        assert!(ensure_condition(
            &mut st,
            "Suspended",
            "False",
            "JobResumed",
            "Job resumed",
            now
        ));
        assert_eq!(st.conditions.unwrap()[0].status, "False");
    }
}
