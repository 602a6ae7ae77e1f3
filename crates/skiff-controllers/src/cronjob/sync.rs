//! One CronJob's reconciliation (upstream `syncCronJob` and `cleanupFinishedJobs`).

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use jiff::tz::TimeZone;
use jiff::Timestamp;
use k8s_openapi::api::batch::v1::{CronJob, CronJobStatus, Job};
use k8s_openapi::api::core::v1::ObjectReference;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference, Time};
use kube::api::{DeleteParams, PostParams, PropagationPolicy};
use kube::runtime::events::{Event, EventType};
use kube::runtime::reflector::ObjectRef;
use kube::{Api, ResourceExt};

use super::schedule::{self, Schedule};
use super::times::{self, Inputs};
use super::{Ctx, Key};
use crate::pods::controller_of;
use crate::Error;

/// Annotation with the time a Job was scheduled for, in the CronJob's time zone.
const SCHEDULED_TIMESTAMP: &str = "batch.kubernetes.io/cronjob-scheduled-timestamp";

/// Whether a Job finished, and how (upstream `getFinishedStatus`).
fn finished(job: &Job) -> Option<&'static str> {
    let conds = job.status.as_ref()?.conditions.as_ref()?;
    conds.iter().find_map(|c| match (c.type_.as_str(), c.status.as_str()) {
        ("Complete", "True") => Some("Complete"),
        ("Failed", "True") => Some("Failed"),
        _ => None,
    })
}

fn uid(meta: &ObjectMeta) -> &str {
    meta.uid.as_deref().unwrap_or_default()
}

fn job_ref(job: &Job) -> ObjectReference {
    ObjectReference {
        api_version: Some("batch/v1".into()),
        kind: Some("Job".into()),
        name: job.metadata.name.clone(),
        namespace: job.metadata.namespace.clone(),
        uid: job.metadata.uid.clone(),
        resource_version: job.metadata.resource_version.clone(),
        field_path: None,
    }
}

fn cronjob_ref(cj: &CronJob) -> ObjectReference {
    ObjectReference {
        api_version: Some("batch/v1".into()),
        kind: Some("CronJob".into()),
        name: cj.metadata.name.clone(),
        namespace: cj.metadata.namespace.clone(),
        uid: cj.metadata.uid.clone(),
        resource_version: cj.metadata.resource_version.clone(),
        field_path: None,
    }
}

async fn event(ctx: &Ctx, cj: &CronJob, type_: EventType, reason: &str, note: String) {
    event_about(ctx, cj, type_, reason, note, None).await;
}

/// An event that concerns one Job too: naming it keeps events about different Jobs apart
/// (the recorder would otherwise fold them into one series, unlike upstream).
async fn event_about(
    ctx: &Ctx,
    cj: &CronJob,
    type_: EventType,
    reason: &str,
    note: String,
    related: Option<ObjectReference>,
) {
    let ev = Event {
        type_,
        reason: reason.into(),
        note: Some(note),
        action: reason.into(),
        // Without a version, so repeats of one event about one Job fold into a series.
        secondary: related.map(|r| ObjectReference {
            resource_version: None,
            ..r
        }),
    };
    if let Err(e) = ctx.recorder.publish(&ev, &cronjob_ref(cj)).await {
        tracing::debug!(error = %e, "publishing a cronjob event failed");
    }
}

/// RFC 3339 as Go's `time.RFC3339` prints it (`Z` for a zero offset).
fn rfc3339_in(t: Timestamp, tz: &TimeZone) -> String {
    let z = t.to_zoned(tz.clone());
    if z.offset().seconds() == 0 {
        z.strftime("%Y-%m-%dT%H:%M:%SZ").to_string()
    } else {
        z.strftime("%Y-%m-%dT%H:%M:%S%:z").to_string()
    }
}

/// upstream `getJobName`: the scheduled time in minutes since the epoch.
fn job_name(cj_name: &str, scheduled: Timestamp) -> String {
    format!("{cj_name}-{}", scheduled.as_second().div_euclid(60))
}

/// upstream `getJobFromTemplate2`.
fn job_from_template(cj: &CronJob, scheduled: Timestamp, tz: &TimeZone) -> Job {
    let jt = cj.spec.as_ref().map(|s| s.job_template.clone()).unwrap_or_default();
    let tm = jt.metadata.unwrap_or_default();
    let mut annotations: BTreeMap<String, String> = tm.annotations.unwrap_or_default();
    annotations.insert(SCHEDULED_TIMESTAMP.into(), rfc3339_in(scheduled, tz));
    Job {
        metadata: ObjectMeta {
            name: Some(job_name(&cj.name_any(), scheduled)),
            namespace: cj.metadata.namespace.clone(),
            labels: tm.labels,
            annotations: Some(annotations),
            owner_references: Some(vec![OwnerReference {
                api_version: "batch/v1".into(),
                kind: "CronJob".into(),
                name: cj.name_any(),
                uid: uid(&cj.metadata).into(),
                controller: Some(true),
                block_owner_deletion: Some(true),
            }]),
            ..Default::default()
        },
        spec: jt.spec,
        status: None,
    }
}

fn in_active(status: &CronJobStatus, uid: &str) -> bool {
    status.active.iter().flatten().any(|r| r.uid.as_deref() == Some(uid))
}

fn remove_active(status: &mut CronJobStatus, uid: &str) {
    if let Some(a) = status.active.as_mut() {
        a.retain(|r| r.uid.as_deref() != Some(uid));
    }
}

/// Reconciles one CronJob; returns when to look at it again.
pub(super) async fn sync(ctx: &Ctx, key: &Key) -> Result<Option<Duration>, Error> {
    let Some(cj) = ctx.cronjobs.get(&ObjectRef::new(&key.name).within(&key.namespace)) else {
        return Ok(None);
    };
    let mut cj: CronJob = (*cj).clone();
    // upstream `getJobsToBeReconciled`: Jobs whose controller reference names this CronJob.
    let jobs: Vec<Arc<Job>> = ctx
        .jobs
        .state()
        .into_iter()
        .filter(|j| j.metadata.namespace.as_deref() == Some(key.namespace.as_str()))
        .filter(|j| controller_of(&j.metadata).is_some_and(|r| r.kind == "CronJob" && r.name == key.name))
        .collect();
    let mut update = false;
    let result = sync_cronjob(ctx, &mut cj, &jobs, &mut update).await;
    if result.is_ok() && cleanup_finished(ctx, &mut cj, &jobs).await {
        update = true;
    }
    if update {
        write_status(ctx, &cj).await?;
    }
    result
}

async fn write_status(ctx: &Ctx, cj: &CronJob) -> Result<(), Error> {
    let api: Api<CronJob> = Api::namespaced(ctx.client.clone(), cj.metadata.namespace.as_deref().unwrap_or_default());
    let mut cj = cj.clone();
    if let Some(st) = cj.status.as_mut() {
        if st.active.as_ref().is_some_and(Vec::is_empty) {
            st.active = None;
        }
    }
    match api.replace_status(&cj.name_any(), &PostParams::default(), &cj).await {
        Ok(_) => Ok(()),
        Err(kube::Error::Api(e)) if e.code == 404 => Ok(()),
        Err(e) => Err(e.into()),
    }
}

async fn sync_cronjob(
    ctx: &Ctx,
    cj: &mut CronJob,
    jobs: &[Arc<Job>],
    update: &mut bool,
) -> Result<Option<Duration>, Error> {
    let now = Timestamp::now();
    let ns = cj.namespace().unwrap_or_default();
    let jobs_api: Api<Job> = Api::namespaced(ctx.client.clone(), &ns);
    let mut children: HashSet<String> = HashSet::new();
    for j in jobs {
        let juid = uid(&j.metadata).to_string();
        children.insert(juid.clone());
        let status = cj.status.get_or_insert_with(Default::default);
        let found = in_active(status, &juid);
        let done = finished(j);
        if !found && done.is_none() {
            // Our own status write may not be in the cache yet: ask the API server.
            let fresh = Api::<CronJob>::namespaced(ctx.client.clone(), &ns)
                .get(&cj.name_any())
                .await?;
            if fresh.status.as_ref().is_some_and(|s| in_active(s, &juid)) {
                *cj = fresh;
                continue;
            }
            let note = format!(
                "Saw a job that the controller did not create or forgot: {}",
                j.name_any()
            );
            event_about(ctx, cj, EventType::Warning, "UnexpectedJob", note, Some(job_ref(j))).await;
        } else if let (true, Some(how)) = (found, done) {
            remove_active(status, &juid);
            *update = true;
            let note = format!("Saw completed job: {}, status: {how}", j.name_any());
            event_about(ctx, cj, EventType::Normal, "SawCompletedJob", note, Some(job_ref(j))).await;
        } else if done == Some("Complete") {
            let completed = j.status.as_ref().and_then(|s| s.completion_time.clone());
            if let Some(t) = completed {
                if status.last_successful_time.as_ref().is_none_or(|l| t.0 > l.0) {
                    status.last_successful_time = Some(t);
                    *update = true;
                }
            }
        }
    }
    // An active Job that no longer exists is dropped from the list.
    let active: Vec<ObjectReference> = cj.status.as_ref().and_then(|s| s.active.clone()).unwrap_or_default();
    for r in active {
        if r.uid.as_deref().is_some_and(|u| children.contains(u)) {
            continue;
        }
        let name = r.name.clone().unwrap_or_default();
        if jobs_api.get_opt(&name).await?.is_none() {
            let note = format!("Active job went missing: {name}");
            event_about(ctx, cj, EventType::Normal, "MissingJob", note, Some(r.clone())).await;
            if let Some(st) = cj.status.as_mut() {
                remove_active(st, r.uid.as_deref().unwrap_or_default());
            }
            *update = true;
        }
    }
    if cj.metadata.deletion_timestamp.is_some() {
        return Ok(None);
    }
    let spec = cj.spec.clone().unwrap_or_default();
    let tz = match spec.time_zone.as_deref() {
        None => TimeZone::UTC,
        Some(name) => match TimeZone::get(name) {
            Ok(tz) => tz,
            Err(e) => {
                tracing::debug!(cronjob = %cj.name_any(), zone = name, "not starting job: unknown time zone");
                let note = format!("invalid timeZone: {name:?}: {e}");
                event(ctx, cj, EventType::Warning, "UnknownTimeZone", note).await;
                return Ok(None);
            }
        },
    };
    if spec.suspend == Some(true) {
        tracing::debug!(cronjob = %cj.name_any(), "not starting job: suspended");
        return Ok(None);
    }
    let sched: Schedule = match schedule::parse(&spec.schedule) {
        Ok(s) => s,
        Err(e) => {
            let note = format!("unparseable schedule: {:?} : {e}", spec.schedule);
            event(ctx, cj, EventType::Warning, "UnparseableSchedule", note).await;
            return Ok(None);
        }
    };
    let inputs = Inputs {
        schedule: &sched,
        tz: &tz,
        created: cj.metadata.creation_timestamp.as_ref().map(|t| t.0).unwrap_or(now),
        last_schedule: cj
            .status
            .as_ref()
            .and_then(|s| s.last_schedule_time.as_ref())
            .map(|t| t.0),
        starting_deadline_seconds: spec.starting_deadline_seconds,
    };
    let next = |cj_inputs: &Inputs| times::until_next(cj_inputs, now);
    let recent = match times::most_recent(&inputs, now, true) {
        Ok(r) => r,
        Err(e) => {
            let note = format!("invalid schedule: {} : {e}", spec.schedule);
            event(ctx, cj, EventType::Warning, "InvalidSchedule", note).await;
            return Ok(None);
        }
    };
    let Some(scheduled) = recent.most_recent.filter(|t| *t <= now) else {
        tracing::debug!(cronjob = %cj.name_any(), "no unmet start times");
        return Ok(next(&inputs));
    };
    if recent.missed > 100 {
        let note = format!(
            "too many missed start times: {}. Set or decrease .spec.startingDeadlineSeconds or check clock skew",
            recent.missed
        );
        event(ctx, cj, EventType::Warning, "TooManyMissedTimes", note).await;
    }
    if let Some(sds) = spec.starting_deadline_seconds {
        if scheduled + jiff::SignedDuration::from_secs(sds) < now {
            let at = scheduled
                .to_zoned(TimeZone::UTC)
                .strftime("%a, %d %b %Y %H:%M:%S %z")
                .to_string();
            event(
                ctx,
                cj,
                EventType::Warning,
                "MissSchedule",
                format!("Missed scheduled time to start a job: {at}"),
            )
            .await;
            return Ok(next(&inputs));
        }
    }
    let name = job_name(&cj.name_any(), scheduled);
    let status = cj.status.get_or_insert_with(Default::default);
    let already = status
        .active
        .iter()
        .flatten()
        .any(|r| r.name.as_deref() == Some(name.as_str()))
        || status.last_schedule_time.as_ref().is_some_and(|t| t.0 == scheduled);
    if already {
        tracing::debug!(cronjob = %cj.name_any(), %scheduled, "scheduled time already processed");
        return Ok(next(&inputs));
    }
    let policy = spec.concurrency_policy.as_deref().unwrap_or("Allow");
    if policy == "Forbid" && status.active.as_ref().is_some_and(|a| !a.is_empty()) {
        let note = "Not starting job because prior execution is running and concurrency policy is Forbid".to_string();
        event(ctx, cj, EventType::Normal, "JobAlreadyActive", note).await;
        return Ok(next(&inputs));
    }
    if policy == "Replace" {
        let active = status.active.clone().unwrap_or_default();
        for r in active {
            let jname = r.name.clone().unwrap_or_default();
            let job = match jobs_api.get(&jname).await {
                Ok(j) => j,
                Err(e) => {
                    event(ctx, cj, EventType::Warning, "FailedGet", format!("Get job: {e}")).await;
                    return Err(e.into());
                }
            };
            delete_job(ctx, cj, &job).await?;
            *update = true;
        }
    }
    let req = job_from_template(cj, scheduled, &tz);
    let created = match jobs_api.create(&PostParams::default(), &req).await {
        Ok(j) => {
            let note = format!("Created job {}", j.name_any());
            event_about(ctx, cj, EventType::Normal, "SuccessfulCreate", note, Some(job_ref(&j))).await;
            j
        }
        Err(kube::Error::Api(e)) if e.code == 409 && e.reason == "AlreadyExists" => {
            // Created before but the status write was lost: add it to the list again.
            let j = jobs_api.get(&name).await?;
            let ours = controller_of(&j.metadata).is_some_and(|r| r.uid == uid(&cj.metadata));
            if !ours || cj.status.as_ref().is_some_and(|s| in_active(s, uid(&j.metadata))) {
                return Ok(None);
            }
            j
        }
        Err(e) if crate::job::namespace_terminating(&e) => {
            tracing::debug!(cronjob = %cj.name_any(), "not creating a job: the namespace is being deleted");
            return Ok(None);
        }
        Err(e) => {
            event(
                ctx,
                cj,
                EventType::Warning,
                "FailedCreate",
                format!("Error creating job: {e}"),
            )
            .await;
            return Err(e.into());
        }
    };
    let status = cj.status.get_or_insert_with(Default::default);
    status.active.get_or_insert_with(Vec::new).push(job_ref(&created));
    status.last_schedule_time = Some(Time(scheduled));
    *update = true;
    let inputs = Inputs {
        last_schedule: Some(scheduled),
        ..inputs
    };
    Ok(next(&inputs))
}

/// Deletes a Job (its pods go with it, in the background) and drops it from the active list.
async fn delete_job(ctx: &Ctx, cj: &mut CronJob, job: &Job) -> Result<(), Error> {
    let api: Api<Job> = Api::namespaced(
        ctx.client.clone(),
        job.metadata.namespace.as_deref().unwrap_or_default(),
    );
    let dp = DeleteParams {
        propagation_policy: Some(PropagationPolicy::Background),
        ..Default::default()
    };
    let res = match api.delete(&job.name_any(), &dp).await {
        Err(kube::Error::Api(s)) if s.code == 404 => Ok(()),
        r => r.map(|_| ()),
    };
    match res {
        Ok(()) => {
            if let Some(st) = cj.status.as_mut() {
                remove_active(st, uid(&job.metadata));
            }
            let note = format!("Deleted job {}", job.name_any());
            event_about(ctx, cj, EventType::Normal, "SuccessfulDelete", note, Some(job_ref(job))).await;
            Ok(())
        }
        Err(e) => {
            let note = format!("Deleted job: {e}");
            event_about(ctx, cj, EventType::Warning, "FailedDelete", note, Some(job_ref(job))).await;
            Err(e.into())
        }
    }
}

/// upstream `cleanupFinishedJobs`: keeps the newest finished Jobs within the history limits.
async fn cleanup_finished(ctx: &Ctx, cj: &mut CronJob, jobs: &[Arc<Job>]) -> bool {
    let spec = cj.spec.clone().unwrap_or_default();
    let mut updated = false;
    for (how, limit) in [
        ("Complete", spec.successful_jobs_history_limit),
        ("Failed", spec.failed_jobs_history_limit),
    ] {
        let Some(limit) = limit else { continue };
        let mut done: Vec<&Arc<Job>> = jobs.iter().filter(|j| finished(j) == Some(how)).collect();
        let excess = done.len().saturating_sub(usize::try_from(limit).unwrap_or(0));
        if excess == 0 {
            continue;
        }
        // upstream `byJobStartTime`: oldest start first, jobs never started last, then name.
        done.sort_by(|a, b| {
            let st = |j: &Job| j.status.as_ref().and_then(|s| s.start_time.as_ref()).map(|t| t.0);
            match (st(a), st(b)) {
                (Some(x), Some(y)) if x != y => x.cmp(&y),
                (Some(_), None) => std::cmp::Ordering::Less,
                (None, Some(_)) => std::cmp::Ordering::Greater,
                _ => a.name_any().cmp(&b.name_any()),
            }
        });
        for j in done.into_iter().take(excess) {
            tracing::debug!(job = %j.name_any(), cronjob = %cj.name_any(), "removing job beyond history limit");
            if delete_job(ctx, cj, j).await.is_ok() {
                updated = true;
            }
        }
    }
    updated
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn job_names_and_scheduled_annotation() {
        let t: Timestamp = "2024-05-01T10:01:00Z".parse().unwrap();
        assert_eq!(job_name("hello", t), "hello-28575961");
        assert_eq!(rfc3339_in(t, &TimeZone::UTC), "2024-05-01T10:01:00Z");
        let berlin = TimeZone::get("Europe/Berlin").unwrap();
        assert_eq!(rfc3339_in(t, &berlin), "2024-05-01T12:01:00+02:00");
    }
}
