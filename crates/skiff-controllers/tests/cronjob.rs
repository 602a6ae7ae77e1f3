//! The CronJob controller against an in-process API server, with the Job controller and
//! simulated nodes running the Jobs it creates.

use std::time::Duration;

use k8s_openapi::api::batch::v1::{CronJob, Job};
use kube::api::{ListParams, PostParams};
use kube::{Api, Client, ResourceExt};
use serde_json::json;

async fn wait_for<F, Fut>(what: &str, secs: u64, mut f: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + Duration::from_secs(secs);
    while !f().await {
        assert!(tokio::time::Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

fn cronjob(name: &str, schedule: &str, extra: serde_json::Value) -> CronJob {
    let mut spec = json!({
        "schedule": schedule,
        "jobTemplate": {"metadata": {"labels": {"cron": name}}, "spec": {"template": {"spec": {
            "restartPolicy": "OnFailure", "containers": [{"name": "c", "image": "busybox"}]}}}}
    });
    for (k, v) in extra.as_object().unwrap() {
        spec[k] = v.clone();
    }
    serde_json::from_value(json!({"metadata": {"name": name}, "spec": spec})).unwrap()
}

/// A Job owned by the CronJob, as if it had run and finished with `outcome`.
async fn finished_job(jobs: &Api<Job>, cj: &CronJob, name: &str, outcome: Option<&str>, started: &str) {
    let job: Job = serde_json::from_value(json!({
        "metadata": {"name": name, "ownerReferences": [{"apiVersion": "batch/v1", "kind": "CronJob",
            "name": cj.name_any(), "uid": cj.uid().unwrap(), "controller": true}]},
        // Suspended, so the Job controller leaves it alone.
        "spec": {"suspend": true, "template": {"spec": {"restartPolicy": "Never",
            "containers": [{"name": "c", "image": "busybox"}]}}}
    }))
    .unwrap();
    jobs.create(&PostParams::default(), &job).await.unwrap();
    let mut status = json!({"startTime": started});
    if let Some(t) = outcome {
        status["conditions"] = json!([{"type": t, "status": "True", "lastTransitionTime": started}]);
        if t == "Complete" {
            status["completionTime"] = json!(started);
        }
    }
    // The Job controller writes the status too (Suspended): retry on a conflict.
    loop {
        let mut job = jobs.get(name).await.unwrap();
        job.status = Some(serde_json::from_value(status.clone()).unwrap());
        match jobs.replace_status(name, &PostParams::default(), &job).await {
            Ok(_) => break,
            Err(kube::Error::Api(s)) if s.code == 409 => continue,
            Err(e) => panic!("{e}"),
        }
    }
}

async fn event_notes(client: &Client, name: &str, reason: &str) -> Vec<String> {
    let events: Api<k8s_openapi::api::events::v1::Event> = Api::namespaced(client.clone(), "default");
    events
        .list(&ListParams::default())
        .await
        .unwrap()
        .items
        .into_iter()
        .filter(|e| e.reporting_controller.as_deref() == Some("cronjob-controller"))
        .filter(|e| e.reason.as_deref() == Some(reason))
        .filter(|e| e.regarding.as_ref().and_then(|r| r.name.as_deref()) == Some(name))
        .filter_map(|e| e.note)
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn cronjobs_schedule_track_and_clean_up() {
    let dir = tempfile::tempdir().unwrap();
    let running = skiff_apiserver::start(skiff_apiserver::Config::loopback(dir.path()))
        .await
        .unwrap();
    let client = running.client();
    let sched = tokio::spawn(skiff_scheduler::run(client.clone(), Default::default()));
    let sim = tokio::spawn(skiff_agent::sim::run(
        client.clone(),
        skiff_agent::sim::SimOptions {
            count: 2,
            job_duration: Duration::from_secs(1),
            ..Default::default()
        },
    ));
    let job_ctl = tokio::spawn(skiff_controllers::job::run(
        skiff_controllers::informer::Informers::new(client.clone()),
    ));
    let ctl = tokio::spawn(skiff_controllers::cronjob::run(
        skiff_controllers::informer::Informers::new(client.clone()),
    ));
    let cjs: Api<CronJob> = Api::namespaced(client.clone(), "default");
    let jobs: Api<Job> = Api::namespaced(client.clone(), "default");
    let pp = PostParams::default();

    // Every minute: a Job named NAME-<minutes since epoch> within 70 s, tracked in status.
    let tick = cjs
        .create(&pp, &cronjob("tick", "*/1 * * * *", json!({})))
        .await
        .unwrap();
    let suspended = cjs
        .create(&pp, &cronjob("asleep", "*/1 * * * *", json!({"suspend": true})))
        .await
        .unwrap();
    // History: 5 complete and 2 failed Jobs of a CronJob that never fires during the test.
    let hist = cjs.create(&pp, &cronjob("hist", "0 0 1 1 *", json!({}))).await.unwrap();
    for (i, outcome) in [
        "Complete", "Complete", "Failed", "Complete", "Failed", "Complete", "Complete",
    ]
    .iter()
    .enumerate()
    {
        let started = format!("2024-05-01T10:0{i}:00Z");
        finished_job(&jobs, &hist, &format!("hist-{i}"), Some(outcome), &started).await;
    }
    finished_job(&jobs, &hist, "hist-stray", None, "2024-05-01T11:00:00Z").await;

    wait_for("history limits applied", 30, || async {
        let names: Vec<String> = jobs
            .list(&ListParams::default())
            .await
            .unwrap()
            .items
            .iter()
            .map(|j| j.name_any())
            .filter(|n| n.starts_with("hist-"))
            .collect();
        let mut names = names;
        names.sort();
        names == ["hist-3", "hist-4", "hist-5", "hist-6", "hist-stray"]
    })
    .await;
    // The event follows the deletion.
    wait_for("a deletion event per job", 10, || async {
        let deleted = event_notes(&client, "hist", "SuccessfulDelete").await;
        ["hist-0", "hist-1", "hist-2"]
            .iter()
            .all(|n| deleted.contains(&format!("Deleted job {n}")))
    })
    .await;
    wait_for("lastSuccessfulTime", 30, || async {
        let st = cjs.get("hist").await.unwrap().status.unwrap_or_default();
        st.last_successful_time.map(|t| t.0.to_string()) == Some("2024-05-01T10:06:00Z".into())
    })
    .await;
    // Events are published after the sync that notices the stray Job.
    wait_for("the UnexpectedJob event", 10, || async {
        let unexpected = event_notes(&client, "hist", "UnexpectedJob").await;
        unexpected.contains(&"Saw a job that the controller did not create or forgot: hist-stray".to_string())
    })
    .await;

    // An active reference to a Job that does not exist is dropped.
    let mut h = cjs.get("hist").await.unwrap();
    h.status.get_or_insert_with(Default::default).active = Some(vec![serde_json::from_value(json!({
        "apiVersion": "batch/v1", "kind": "Job", "name": "hist-ghost", "namespace": "default", "uid": "ghost-uid"
    }))
    .unwrap()]);
    cjs.replace_status("hist", &pp, &h).await.unwrap();
    wait_for("MissingJob", 30, || async {
        event_notes(&client, "hist", "MissingJob").await == ["Active job went missing: hist-ghost"]
            && cjs.get("hist").await.unwrap().status.unwrap().active.is_none()
    })
    .await;

    // A CronJob whose last schedule is hours ago warns, and runs the most recent time only.
    let late = cjs
        .create(&pp, &cronjob("late", "*/1 * * * *", json!({})))
        .await
        .unwrap();
    let long_ago = jiff::Timestamp::now() - jiff::SignedDuration::from_hours(3);
    // The controller may write the status meanwhile: retry on a conflict.
    let mut l = late;
    loop {
        l.status = Some(serde_json::from_value(json!({"lastScheduleTime": long_ago.to_string()})).unwrap());
        match cjs.replace_status("late", &pp, &l).await {
            Ok(_) => break,
            Err(kube::Error::Api(s)) if s.code == 409 => l = cjs.get("late").await.unwrap(),
            Err(e) => panic!("{e}"),
        }
    }
    wait_for("TooManyMissedTimes", 30, || async {
        event_notes(&client, "late", "TooManyMissedTimes")
            .await
            .iter()
            .any(|n| n.starts_with("too many missed start times: 18") && n.ends_with("check clock skew"))
    })
    .await;
    let late_jobs: Vec<Job> = jobs
        .list(&ListParams::default().labels("cron=late"))
        .await
        .unwrap()
        .items;
    assert_eq!(late_jobs.len(), 1, "one Job for the most recent missed time");
    let minutes = jiff::Timestamp::now().as_second() / 60;
    let name = late_jobs[0].name_any();
    let n: i64 = name.strip_prefix("late-").unwrap().parse().unwrap();
    assert!(minutes - n <= 1, "{name} is the latest minute");

    // Forbid and Replace: a long first Job is due at once (the last schedule is a minute
    // ago); at the next minute Forbid skips and Replace swaps the Job.
    let long = json!({"jobTemplate": {"metadata": {"labels": {"cron": "x"}}, "spec": {"template": {
        "metadata": {"annotations": {"skiff.dev/sim-duration": "600s"}},
        "spec": {"restartPolicy": "Never", "containers": [{"name": "c", "image": "busybox"}]}}}}});
    let mut firsts = Vec::new();
    for (name, policy) in [("forbid", "Forbid"), ("replace", "Replace")] {
        let mut extra = long.clone();
        extra["concurrencyPolicy"] = json!(policy);
        extra["jobTemplate"]["metadata"]["labels"]["cron"] = json!(name);
        let mut cj = cjs.create(&pp, &cronjob(name, "*/1 * * * *", extra)).await.unwrap();
        let minute_ago = jiff::Timestamp::now() - jiff::SignedDuration::from_secs(61);
        loop {
            cj.status = Some(serde_json::from_value(json!({"lastScheduleTime": minute_ago.to_string()})).unwrap());
            match cjs.replace_status(name, &pp, &cj).await {
                Ok(_) => break,
                Err(kube::Error::Api(s)) if s.code == 409 => cj = cjs.get(name).await.unwrap(),
                Err(e) => panic!("{e}"),
            }
        }
        let label = format!("cron={name}");
        wait_for("the first long job", 30, || async {
            jobs.list(&ListParams::default().labels(&label))
                .await
                .unwrap()
                .items
                .len()
                == 1
        })
        .await;
        firsts.push(jobs.list(&ListParams::default().labels(&label)).await.unwrap().items[0].name_any());
    }

    // The every-minute CronJob.
    wait_for("tick creates its job", 75, || async {
        !jobs
            .list(&ListParams::default().labels("cron=tick"))
            .await
            .unwrap()
            .items
            .is_empty()
    })
    .await;
    let j = jobs
        .list(&ListParams::default().labels("cron=tick"))
        .await
        .unwrap()
        .items
        .remove(0);
    let scheduled_min: i64 = j.name_any().strip_prefix("tick-").unwrap().parse().unwrap();
    let ann = &j.annotations()["batch.kubernetes.io/cronjob-scheduled-timestamp"];
    let scheduled: jiff::Timestamp = ann.parse().unwrap();
    assert_eq!(scheduled.as_second(), scheduled_min * 60, "{ann}");
    assert!(ann.ends_with('Z'), "{ann}");
    let r = &j.owner_references()[0];
    assert_eq!(
        (r.kind.as_str(), r.uid.as_str(), r.controller),
        ("CronJob", tick.uid().unwrap().as_str(), Some(true))
    );
    // The Job is created first, then the CronJob's status is written (as upstream).
    wait_for("lastScheduleTime of the job's schedule", 10, || async {
        let st = cjs.get("tick").await.unwrap().status.unwrap_or_default();
        st.last_schedule_time.map(|t| t.0) == Some(scheduled)
    })
    .await;
    wait_for("the SuccessfulCreate event", 10, || async {
        event_notes(&client, "tick", "SuccessfulCreate")
            .await
            .contains(&format!("Created job {}", j.name_any()))
    })
    .await;
    // The Job runs and completes; the CronJob notices.
    wait_for("tick notices the completed job", 60, || async {
        let st = cjs.get("tick").await.unwrap().status.unwrap_or_default();
        st.active.is_none() && st.last_successful_time.is_some()
    })
    .await;
    let want = [format!("Saw completed job: {}, status: Complete", j.name_any())];
    wait_for("the SawCompletedJob event", 10, || async {
        event_notes(&client, "tick", "SawCompletedJob").await == want
    })
    .await;
    // A minute boundary has passed: the suspended CronJob made nothing.
    assert!(jobs
        .list(&ListParams::default().labels("cron=asleep"))
        .await
        .unwrap()
        .items
        .is_empty());
    assert!(cjs
        .get("asleep")
        .await
        .unwrap()
        .status
        .unwrap_or_default()
        .last_schedule_time
        .is_none());
    drop(suspended);
    // By now the next minute came for forbid and replace too.
    wait_for("forbid skips a run", 75, || async {
        !event_notes(&client, "forbid", "JobAlreadyActive").await.is_empty()
    })
    .await;
    let forbid_jobs = jobs
        .list(&ListParams::default().labels("cron=forbid"))
        .await
        .unwrap()
        .items;
    assert_eq!(
        forbid_jobs.iter().map(|j| j.name_any()).collect::<Vec<_>>(),
        [firsts[0].clone()]
    );
    wait_for("replace swaps its job", 75, || async {
        let names: Vec<String> = jobs
            .list(&ListParams::default().labels("cron=replace"))
            .await
            .unwrap()
            .items
            .iter()
            .filter(|j| j.metadata.deletion_timestamp.is_none())
            .map(|j| j.name_any())
            .collect();
        names.len() == 1 && names[0] != firsts[1]
    })
    .await;
    wait_for("the SuccessfulDelete event", 10, || async {
        event_notes(&client, "replace", "SuccessfulDelete")
            .await
            .contains(&format!("Deleted job {}", firsts[1]))
    })
    .await;
    let st = cjs.get("replace").await.unwrap().status.unwrap();
    assert_eq!(st.active.map(|a| a.len()), Some(1));

    ctl.abort();
    job_ctl.abort();
    sim.abort();
    sched.abort();
    let _ = (ctl.await, job_ctl.await, sim.await, sched.await);
    drop((cjs, jobs, client));
    running.shutdown().await;
}
