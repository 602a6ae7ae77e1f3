//! The TTL-after-finished controller (upstream `pkg/controller/ttlafterfinished`): deletes a
//! finished Job `ttlSecondsAfterFinished` after its Complete or Failed condition, with
//! background propagation so its pods go too.

use std::time::Duration;

use jiff::{SignedDuration, Timestamp};
use k8s_openapi::api::batch::v1::Job;
use kube::api::{DeleteParams, Preconditions, PropagationPolicy};
use kube::runtime::reflector::Store;
use kube::{Api, Client, ResourceExt};

/// How often finished Jobs are looked at.
const PERIOD: Duration = Duration::from_millis(500);

/// When the Job finished: its terminal condition's transition time.
fn finished_at(job: &Job) -> Option<Timestamp> {
    let conds = job.status.as_ref()?.conditions.as_ref()?;
    conds
        .iter()
        .find(|c| (c.type_ == "Complete" || c.type_ == "Failed") && c.status == "True")?
        .last_transition_time
        .as_ref()
        .map(|t| t.0)
}

/// upstream `timeLeft`: when the Job expires, if it is finished and has a TTL.
fn expires_at(job: &Job) -> Option<Timestamp> {
    let ttl = job.spec.as_ref()?.ttl_seconds_after_finished?;
    Some(finished_at(job)? + SignedDuration::from_secs(ttl.into()))
}

/// Runs until the future is dropped, reading Jobs from the Job controller's cache.
pub(super) async fn run(client: Client, jobs: Store<Job>) {
    if jobs.wait_until_ready().await.is_err() {
        return;
    }
    let mut tick = tokio::time::interval(PERIOD);
    loop {
        tick.tick().await;
        let now = Timestamp::now();
        for job in jobs.state() {
            if job.metadata.deletion_timestamp.is_some() || expires_at(&job).is_none_or(|t| t > now) {
                continue;
            }
            if let Err(e) = expire(&client, &job, now).await {
                tracing::debug!(error = %e, job = %job.name_any(), "ttl deletion failed (retried)");
            }
        }
    }
}

/// Deletes an expired Job after checking a fresh copy (its TTL may have been changed).
async fn expire(client: &Client, job: &Job, now: Timestamp) -> Result<(), kube::Error> {
    let api: Api<Job> = Api::namespaced(client.clone(), job.metadata.namespace.as_deref().unwrap_or_default());
    let Some(fresh) = api.get_opt(&job.name_any()).await? else {
        return Ok(());
    };
    if fresh.metadata.deletion_timestamp.is_some() || expires_at(&fresh).is_none_or(|t| t > now) {
        return Ok(());
    }
    tracing::debug!(job = %job.name_any(), "deleting a job whose ttlSecondsAfterFinished passed");
    let dp = DeleteParams {
        propagation_policy: Some(PropagationPolicy::Background),
        preconditions: Some(Preconditions {
            uid: fresh.metadata.uid.clone(),
            resource_version: fresh.metadata.resource_version.clone(),
        }),
        ..Default::default()
    };
    match api.delete(&job.name_any(), &dp).await {
        Ok(_) => Ok(()),
        Err(kube::Error::Api(s)) if s.code == 404 || s.code == 409 => Ok(()),
        Err(e) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn expiry() {
        let job = |ttl: Option<i32>, cond: Option<&str>| -> Job {
            serde_json::from_value(json!({"metadata": {"name": "j"},
                "spec": {"ttlSecondsAfterFinished": ttl, "template": {}},
                "status": {"conditions": cond.map(|c| vec![json!({"type": c, "status": "True", "lastTransitionTime": "2024-01-01T00:00:00Z"})])}}))
            .unwrap()
        };
        let cases = [
            (
                "complete with ttl",
                job(Some(10), Some("Complete")),
                Some("2024-01-01T00:00:10Z"),
            ),
            (
                "failed with ttl 0",
                job(Some(0), Some("Failed")),
                Some("2024-01-01T00:00:00Z"),
            ),
            ("running", job(Some(10), Some("SuccessCriteriaMet")), None),
            ("no ttl", job(None, Some("Complete")), None),
        ];
        for (name, j, want) in cases {
            assert_eq!(expires_at(&j), want.map(|w| w.parse().unwrap()), "{name}");
        }
    }
}
