//! The Job controller (and TTL-after-finished) on simulated nodes, against an in-process API
//! server with the scheduler. Every Job runs at once; each check waits on its own condition.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::Pod;
use kube::api::{ListParams, Patch, PatchParams, PostParams};
use kube::runtime::{watcher, WatchStreamExt};
use kube::{Api, ResourceExt};
use serde_json::json;

async fn wait_for<F, Fut>(what: &str, secs: u64, mut f: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + Duration::from_secs(secs);
    while !f().await {
        assert!(tokio::time::Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn job(name: &str, spec: serde_json::Value, annotations: serde_json::Value) -> Job {
    let mut spec = spec;
    spec["template"] = json!({
        "metadata": {"annotations": annotations},
        "spec": {"restartPolicy": "Never", "containers": [{"name": "c", "image": "busybox"}]}
    });
    serde_json::from_value(json!({"metadata": {"name": name}, "spec": spec})).unwrap()
}

fn cond<'a>(j: &'a Job, ty: &str) -> Option<&'a k8s_openapi::api::batch::v1::JobCondition> {
    j.status
        .as_ref()?
        .conditions
        .as_ref()?
        .iter()
        .find(|c| c.type_ == ty && c.status == "True")
}

async fn pods_of(pods: &Api<Pod>, job: &str) -> Vec<Pod> {
    pods.list(&ListParams::default().labels(&format!("batch.kubernetes.io/job-name={job}")))
        .await
        .unwrap()
        .items
}

fn phase(p: &Pod) -> &str {
    p.status.as_ref().and_then(|s| s.phase.as_deref()).unwrap_or("")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn jobs_complete_fail_suspend_and_expire() {
    let dir = tempfile::tempdir().unwrap();
    let running = skiff_apiserver::start(skiff_apiserver::Config::loopback(dir.path()))
        .await
        .unwrap();
    let client = running.client();
    let sched = tokio::spawn(skiff_scheduler::run(client.clone(), Default::default()));
    let sim = tokio::spawn(skiff_agent::sim::run(
        client.clone(),
        skiff_agent::sim::SimOptions {
            count: 3,
            job_duration: Duration::from_secs(1),
            ..Default::default()
        },
    ));
    let ctl = tokio::spawn(skiff_controllers::job::run(
        skiff_controllers::informer::Informers::new(client.clone()),
    ));
    let jobs: Api<Job> = Api::namespaced(client.clone(), "default");
    let pods: Api<Pod> = Api::namespaced(client.clone(), "default");

    // Track the most pods of "five" active at once, from a watch.
    let active: Arc<Mutex<(HashSet<String>, usize)>> = Arc::default();
    let watch = {
        let active = active.clone();
        let stream = watcher(
            pods.clone(),
            watcher::Config::default().labels("batch.kubernetes.io/job-name=five"),
        )
        .default_backoff()
        .applied_objects();
        tokio::spawn(async move {
            let mut stream = std::pin::pin!(stream);
            while let Some(Ok(p)) = stream.next().await {
                let mut a = active.lock().unwrap();
                let running = !matches!(phase(&p), "Succeeded" | "Failed") && p.metadata.deletion_timestamp.is_none();
                if running {
                    a.0.insert(p.name_any());
                } else {
                    a.0.remove(&p.name_any());
                }
                a.1 = a.1.max(a.0.len());
            }
        })
    };

    let pp = PostParams::default();
    let no = json!({});
    let specs = [
        job("five", json!({"completions": 5, "parallelism": 2}), no.clone()),
        job(
            "idx",
            json!({"completions": 3, "parallelism": 3, "completionMode": "Indexed"}),
            no.clone(),
        ),
        job(
            "fail",
            json!({"backoffLimit": 1}),
            json!({"skiff.dev/sim-exit-code": "1"}),
        ),
        job(
            "deadline",
            json!({"activeDeadlineSeconds": 2}),
            json!({"skiff.dev/sim-duration": "60s"}),
        ),
        job(
            "sus",
            json!({"suspend": true, "completions": 2, "parallelism": 2}),
            no.clone(),
        ),
        job(
            "widen",
            json!({"completions": 6, "parallelism": 1}),
            json!({"skiff.dev/sim-duration": "60s"}),
        ),
        job(
            "policy",
            json!({"backoffLimit": 6, "podFailurePolicy": {"rules": [
                {"action": "FailJob", "onExitCodes": {"containerName": "c", "operator": "In", "values": [42]}}]}}),
            json!({"skiff.dev/sim-exit-code": "42"}),
        ),
        job("ttl", json!({"ttlSecondsAfterFinished": 0}), no.clone()),
        job(
            "perindex",
            json!({"completions": 3, "parallelism": 3, "completionMode": "Indexed", "backoffLimitPerIndex": 1}),
            json!({"skiff.dev/sim-exit-code": "1"}),
        ),
        job(
            "early",
            json!({"completions": 5, "parallelism": 2, "completionMode": "Indexed",
                "successPolicy": {"rules": [{"succeededCount": 1}]}}),
            no.clone(),
        ),
        {
            // OnFailure: the kubelet restarts the container; restarts count against the limit.
            let mut j = job(
                "onfail",
                json!({"backoffLimit": 2}),
                json!({"skiff.dev/sim-exit-code": "1"}),
            );
            j.spec.as_mut().unwrap().template.spec.as_mut().unwrap().restart_policy = Some("OnFailure".into());
            j
        },
    ];
    for j in &specs {
        jobs.create(&pp, j).await.unwrap();
    }

    // completions 5, parallelism 2: Complete, never more than 2 active.
    wait_for("five completes", 60, || async {
        jobs.get("five").await.is_ok_and(|j| cond(&j, "Complete").is_some())
    })
    .await;
    let five = jobs.get("five").await.unwrap();
    let st = five.status.clone().unwrap();
    assert_eq!(st.succeeded, Some(5));
    assert_eq!(st.active, None);
    assert!(st.completion_time.is_some() && st.start_time.is_some());
    assert!(cond(&five, "SuccessCriteriaMet").is_some(), "{st:?}");
    assert_eq!(
        cond(&five, "Complete").unwrap().reason.as_deref(),
        Some("CompletionsReached")
    );
    assert!(active.lock().unwrap().1 <= 2, "more than 2 pods active at once");
    assert_eq!(active.lock().unwrap().1, 2, "parallelism 2 was used");
    let five_pods = pods_of(&pods, "five").await;
    assert_eq!(five_pods.len(), 5, "finished pods are kept");
    for p in &five_pods {
        assert_eq!(phase(p), "Succeeded");
        assert!(p.name_any().starts_with("five-"));
        assert!(p.finalizers().is_empty(), "tracking finalizer removed once counted");
        assert_eq!(p.owner_references()[0].kind, "Job");
    }
    // The count survives pod deletion.
    pods.delete(&five_pods[0].name_any(), &Default::default())
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(jobs.get("five").await.unwrap().status.unwrap().succeeded, Some(5));

    // Indexed: one pod per index, hostname NAME-INDEX, completedIndexes.
    wait_for("idx completes", 60, || async {
        jobs.get("idx").await.is_ok_and(|j| cond(&j, "Complete").is_some())
    })
    .await;
    let st = jobs.get("idx").await.unwrap().status.unwrap();
    assert_eq!(st.completed_indexes.as_deref(), Some("0-2"));
    let mut seen: Vec<String> = pods_of(&pods, "idx")
        .await
        .iter()
        .map(|p| {
            let ix = p.annotations()["batch.kubernetes.io/job-completion-index"].clone();
            assert_eq!(p.labels()["batch.kubernetes.io/job-completion-index"], ix);
            assert!(p.name_any().starts_with(&format!("idx-{ix}-")), "{}", p.name_any());
            assert_eq!(
                p.spec.as_ref().unwrap().hostname.as_deref(),
                Some(format!("idx-{ix}").as_str())
            );
            let env = p.spec.as_ref().unwrap().containers[0].env.clone().unwrap_or_default();
            assert!(env.iter().any(|e| e.name == "JOB_COMPLETION_INDEX"));
            ix
        })
        .collect();
    seen.sort();
    assert_eq!(seen, ["0", "1", "2"]);

    // backoffLimit 1: two failed pods (with a back-off between), then Failed.
    wait_for("fail fails", 60, || async {
        jobs.get("fail").await.is_ok_and(|j| cond(&j, "Failed").is_some())
    })
    .await;
    let failed = jobs.get("fail").await.unwrap();
    let c = cond(&failed, "Failed").unwrap();
    assert_eq!(c.reason.as_deref(), Some("BackoffLimitExceeded"));
    assert_eq!(
        c.message.as_deref(),
        Some("Job has reached the specified backoff limit")
    );
    assert!(cond(&failed, "FailureTarget").is_some());
    assert_eq!(failed.status.as_ref().unwrap().failed, Some(2));
    let fail_pods = pods_of(&pods, "fail").await;
    assert_eq!(fail_pods.len(), 2);
    let mut finished: Vec<jiff::Timestamp> = fail_pods
        .iter()
        .map(|p| p.metadata.creation_timestamp.clone().unwrap().0)
        .collect();
    finished.sort();
    assert!(
        finished[1].duration_since(finished[0]) >= jiff::SignedDuration::from_secs(10),
        "the second pod waits out the 10 s back-off"
    );

    // activeDeadlineSeconds: DeadlineExceeded and the running pod deleted.
    wait_for("deadline fails", 30, || async {
        jobs.get("deadline").await.is_ok_and(|j| cond(&j, "Failed").is_some())
    })
    .await;
    let d = jobs.get("deadline").await.unwrap();
    assert_eq!(cond(&d, "Failed").unwrap().reason.as_deref(), Some("DeadlineExceeded"));
    wait_for("deadline pods gone", 30, || async {
        pods_of(&pods, "deadline").await.iter().all(|p| phase(p) == "Failed")
    })
    .await;

    // Suspended: no pods and the Suspended condition; resumed: runs to completion.
    wait_for("sus suspended", 30, || async {
        jobs.get("sus").await.is_ok_and(|j| cond(&j, "Suspended").is_some())
    })
    .await;
    assert!(pods_of(&pods, "sus").await.is_empty());
    assert!(jobs.get("sus").await.unwrap().status.unwrap().start_time.is_none());
    jobs.patch(
        "sus",
        &PatchParams::default(),
        &Patch::Merge(json!({"spec": {"suspend": false}})),
    )
    .await
    .unwrap();
    wait_for("sus completes", 60, || async {
        jobs.get("sus").await.is_ok_and(|j| cond(&j, "Complete").is_some())
    })
    .await;
    let sus = jobs.get("sus").await.unwrap();
    let sc = sus.status.unwrap().conditions.unwrap();
    let s = sc.iter().find(|c| c.type_ == "Suspended").unwrap();
    assert_eq!((s.status.as_str(), s.reason.as_deref()), ("False", Some("JobResumed")));

    // Raising parallelism of a running Job takes effect at once.
    wait_for("widen has 1 running", 30, || async {
        pods_of(&pods, "widen")
            .await
            .iter()
            .filter(|p| phase(p) == "Running")
            .count()
            == 1
    })
    .await;
    jobs.patch(
        "widen",
        &PatchParams::default(),
        &Patch::Merge(json!({"spec": {"parallelism": 3}})),
    )
    .await
    .unwrap();
    wait_for("widen has 3 running", 30, || async {
        pods_of(&pods, "widen")
            .await
            .iter()
            .filter(|p| phase(p) == "Running")
            .count()
            == 3
            && jobs.get("widen").await.unwrap().status.unwrap().active == Some(3)
    })
    .await;
    // Lowering it deletes the surplus.
    jobs.patch(
        "widen",
        &PatchParams::default(),
        &Patch::Merge(json!({"spec": {"parallelism": 1}})),
    )
    .await
    .unwrap();
    wait_for("widen back to 1", 30, || async {
        jobs.get("widen").await.unwrap().status.unwrap().active == Some(1)
    })
    .await;
    assert_eq!(
        jobs.get("widen").await.unwrap().status.unwrap().failed,
        None,
        "scale-down is no failure"
    );

    // podFailurePolicy FailJob on exit code 42.
    wait_for("policy fails", 30, || async {
        jobs.get("policy").await.is_ok_and(|j| cond(&j, "Failed").is_some())
    })
    .await;
    let pj = jobs.get("policy").await.unwrap();
    let c = cond(&pj, "Failed").unwrap();
    assert_eq!(c.reason.as_deref(), Some("PodFailurePolicy"));
    assert!(
        c.message
            .as_deref()
            .unwrap()
            .starts_with("Container c for pod default/policy-")
            && c.message
                .as_deref()
                .unwrap()
                .ends_with("failed with exit code 42 matching FailJob rule at index 0"),
        "{c:?}"
    );

    // successPolicy: one succeeded index is enough; the other indexes never run.
    wait_for("early completes", 60, || async {
        jobs.get("early").await.is_ok_and(|j| cond(&j, "Complete").is_some())
    })
    .await;
    let e = jobs.get("early").await.unwrap();
    let c = cond(&e, "Complete").unwrap();
    assert_eq!(c.reason.as_deref(), Some("SuccessPolicy"));
    assert_eq!(c.message.as_deref(), Some("Matched rules at index 0"));
    assert!(cond(&e, "SuccessCriteriaMet").is_some());
    assert!(pods_of(&pods, "early").await.len() <= 2, "indexes 2-4 never ran");

    // backoffLimitPerIndex 1: every index runs twice, then the Job fails with its indexes.
    wait_for("perindex fails", 60, || async {
        jobs.get("perindex").await.is_ok_and(|j| cond(&j, "Failed").is_some())
    })
    .await;
    let pi = jobs.get("perindex").await.unwrap();
    let c = cond(&pi, "Failed").unwrap();
    assert_eq!(
        (c.reason.as_deref(), c.message.as_deref()),
        (Some("FailedIndexes"), Some("Job has failed indexes"))
    );
    let st = pi.status.clone().unwrap();
    assert_eq!((st.failed_indexes.as_deref(), st.failed), (Some("0-2"), Some(6)));
    let counts: Vec<String> = pods_of(&pods, "perindex")
        .await
        .iter()
        .map(|p| p.annotations()["batch.kubernetes.io/job-index-failure-count"].clone())
        .collect();
    assert_eq!(
        counts.iter().filter(|c| *c == "1").count(),
        3,
        "each retry carries the count: {counts:?}"
    );

    // OnFailure restarts: two restarts reach backoffLimit 2 with a single pod.
    wait_for("onfail fails", 60, || async {
        jobs.get("onfail").await.is_ok_and(|j| cond(&j, "Failed").is_some())
    })
    .await;
    let of = jobs.get("onfail").await.unwrap();
    assert_eq!(
        cond(&of, "Failed").unwrap().reason.as_deref(),
        Some("BackoffLimitExceeded")
    );
    // Its one pod, restarted in place, was deleted and counted when the Job failed.
    assert_eq!(of.status.as_ref().unwrap().failed, Some(1));

    // ttlSecondsAfterFinished 0: deleted once finished.
    wait_for("ttl job deleted", 30, || async {
        jobs.get_opt("ttl").await.unwrap().is_none()
    })
    .await;

    // Events as upstream writes them.
    let events: Api<k8s_openapi::api::events::v1::Event> = Api::namespaced(client.clone(), "default");
    let evs = events.list(&ListParams::default()).await.unwrap().items;
    let by: HashMap<(String, String), String> = evs
        .iter()
        .filter(|e| e.reporting_controller.as_deref() == Some("job-controller"))
        .map(|e| {
            (
                (
                    e.regarding.as_ref().and_then(|r| r.name.clone()).unwrap_or_default(),
                    e.reason.clone().unwrap_or_default(),
                ),
                e.note.clone().unwrap_or_default(),
            )
        })
        .collect();
    assert!(by[&("five".into(), "SuccessfulCreate".into())].starts_with("Created pod: five-"));
    assert_eq!(by[&("five".into(), "Completed".into())], "Job completed");
    assert_eq!(
        by[&("fail".into(), "BackoffLimitExceeded".into())],
        "Job has reached the specified backoff limit"
    );
    assert_eq!(
        by[&("deadline".into(), "DeadlineExceeded".into())],
        "Job was active longer than specified deadline"
    );
    assert_eq!(by[&("sus".into(), "Suspended".into())], "Job suspended");
    assert_eq!(by[&("sus".into(), "Resumed".into())], "Job resumed");

    watch.abort();
    ctl.abort();
    sim.abort();
    sched.abort();
    let _ = (watch.await, ctl.await, sim.await, sched.await);
    drop((pods, jobs, events, client));
    running.shutdown().await;
}
