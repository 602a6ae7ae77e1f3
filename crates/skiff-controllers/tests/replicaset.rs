//! The ReplicaSet / ReplicationController controller on simulated nodes.

use std::time::Duration;

use k8s_openapi::api::apps::v1::ReplicaSet;
use k8s_openapi::api::core::v1::{Pod, ReplicationController};
use kube::api::{ListParams, Patch, PatchParams, PostParams};
use kube::{Api, ResourceExt};
use serde_json::json;

async fn wait_for<F, Fut>(what: &str, mut f: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while !f().await {
        assert!(tokio::time::Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Running, non-terminating pods controlled by the owner with `uid`.
async fn running_owned(pods: &Api<Pod>, uid: &str) -> Vec<Pod> {
    pods.list(&ListParams::default())
        .await
        .unwrap()
        .items
        .into_iter()
        .filter(|p| p.metadata.deletion_timestamp.is_none())
        .filter(|p| {
            p.owner_references()
                .iter()
                .any(|r| r.uid == uid && r.controller == Some(true))
        })
        .filter(|p| p.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Running"))
        .collect()
}

async fn owned_count(pods: &Api<Pod>, uid: &str) -> usize {
    pods.list(&ListParams::default())
        .await
        .unwrap()
        .items
        .iter()
        .filter(|p| p.metadata.deletion_timestamp.is_none())
        .filter(|p| p.owner_references().iter().any(|r| r.uid == uid))
        .count()
}

fn template(app: &str) -> serde_json::Value {
    json!({"metadata": {"labels": {"app": app}}, "spec": {"containers": [{"name": "c", "image": "nginx"}]}})
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn replicaset_scales_replaces_releases_and_rc_too() {
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
            ..Default::default()
        },
    ));
    let ctl = tokio::spawn(skiff_controllers::replicaset::run(
        skiff_controllers::informer::Informers::new(client.clone()),
    ));

    let pods: Api<Pod> = Api::namespaced(client.clone(), "default");
    let rss: Api<ReplicaSet> = Api::namespaced(client.clone(), "default");
    let rcs: Api<ReplicationController> = Api::namespaced(client.clone(), "default");
    let pp = PostParams::default();
    let rs: ReplicaSet = serde_json::from_value(json!({
        "metadata": {"name": "web"},
        "spec": {"replicas": 3, "selector": {"matchLabels": {"app": "web"}}, "template": template("web")}
    }))
    .unwrap();
    let rs = rss.create(&pp, &rs).await.unwrap();
    let uid = rs.uid().unwrap();

    wait_for("3 running pods and readyReplicas 3", || async {
        let st = rss.get("web").await.unwrap().status.unwrap_or_default();
        running_owned(&pods, &uid).await.len() == 3 && st.ready_replicas == Some(3) && st.replicas == 3
    })
    .await;
    let st = rss.get("web").await.unwrap().status.unwrap();
    assert_eq!(st.fully_labeled_replicas, Some(3));
    assert_eq!(st.available_replicas, Some(3));
    assert_eq!(
        st.observed_generation,
        rss.get("web").await.unwrap().metadata.generation
    );
    let p = &running_owned(&pods, &uid).await[0];
    assert!(p.name_any().starts_with("web-"));
    let r = &p.owner_references()[0];
    assert_eq!(
        (r.kind.as_str(), r.controller, r.block_owner_deletion),
        ("ReplicaSet", Some(true), Some(true))
    );

    // Scale to 4.
    let scale = |n: i32| json!({"spec": {"replicas": n}});
    rss.patch("web", &PatchParams::default(), &Patch::Merge(scale(4)))
        .await
        .unwrap();
    wait_for("4 running pods", || async {
        running_owned(&pods, &uid).await.len() == 4
            && rss.get("web").await.unwrap().status.unwrap_or_default().ready_replicas == Some(4)
    })
    .await;
    assert_eq!(owned_count(&pods, &uid).await, 4, "no extra pods from a burst");

    // A deleted pod is replaced.
    let victim = running_owned(&pods, &uid).await[0].name_any();
    pods.delete(&victim, &Default::default()).await.unwrap();
    wait_for("replacement of a deleted pod", || async {
        let now = running_owned(&pods, &uid).await;
        now.len() == 4 && now.iter().all(|p| p.name_any() != victim)
    })
    .await;

    // A pod relabelled out of the selector is released and replaced.
    let moved = running_owned(&pods, &uid).await[0].name_any();
    pods.patch(
        &moved,
        &PatchParams::default(),
        &Patch::Merge(json!({"metadata": {"labels": {"app": "debug"}}})),
    )
    .await
    .unwrap();
    wait_for("relabelled pod released", || async {
        pods.get(&moved).await.unwrap().owner_references().is_empty()
    })
    .await;
    wait_for("replacement of the released pod", || async {
        let now = running_owned(&pods, &uid).await;
        now.len() == 4 && now.iter().all(|p| p.name_any() != moved)
    })
    .await;
    // Relabelling it back makes it an orphan to adopt; the surplus is then deleted.
    pods.patch(
        &moved,
        &PatchParams::default(),
        &Patch::Merge(json!({"metadata": {"labels": {"app": "web"}}})),
    )
    .await
    .unwrap();
    wait_for("orphan adopted", || async {
        pods.get_opt(&moved)
            .await
            .unwrap()
            .is_none_or(|p| p.owner_references().iter().any(|r| r.uid == uid))
    })
    .await;
    wait_for("back to 4 after adoption", || async {
        owned_count(&pods, &uid).await == 4
    })
    .await;

    // Scale to 1.
    rss.patch("web", &PatchParams::default(), &Patch::Merge(scale(1)))
        .await
        .unwrap();
    wait_for("surplus deleted", || async {
        owned_count(&pods, &uid).await == 1 && rss.get("web").await.unwrap().status.unwrap_or_default().replicas == 1
    })
    .await;

    // An RC works the same.
    let rc: ReplicationController = serde_json::from_value(json!({
        "metadata": {"name": "legacy"},
        "spec": {"replicas": 2, "selector": {"app": "legacy"}, "template": template("legacy")}
    }))
    .unwrap();
    let rc = rcs.create(&pp, &rc).await.unwrap();
    let rc_uid = rc.uid().unwrap();
    wait_for("rc pods running", || async {
        running_owned(&pods, &rc_uid).await.len() == 2
            && rcs
                .get("legacy")
                .await
                .unwrap()
                .status
                .unwrap_or_default()
                .ready_replicas
                == Some(2)
    })
    .await;
    let p = &running_owned(&pods, &rc_uid).await[0];
    assert!(p.name_any().starts_with("legacy-"));
    assert_eq!(p.owner_references()[0].kind, "ReplicationController");
    rcs.patch("legacy", &PatchParams::default(), &Patch::Merge(scale(3)))
        .await
        .unwrap();
    wait_for("rc scaled to 3", || async {
        running_owned(&pods, &rc_uid).await.len() == 3
    })
    .await;
    let victim = running_owned(&pods, &rc_uid).await[0].name_any();
    pods.delete(&victim, &Default::default()).await.unwrap();
    wait_for("rc replaces a deleted pod", || async {
        let now = running_owned(&pods, &rc_uid).await;
        now.len() == 3 && now.iter().all(|p| p.name_any() != victim)
    })
    .await;
    rcs.patch("legacy", &PatchParams::default(), &Patch::Merge(scale(1)))
        .await
        .unwrap();
    wait_for("rc scaled to 1", || async {
        owned_count(&pods, &rc_uid).await == 1
            && rcs.get("legacy").await.unwrap().status.unwrap_or_default().replicas == 1
    })
    .await;

    // Events name the pods created, from the right reporting controller.
    let events: Api<k8s_openapi::api::events::v1::Event> = Api::namespaced(client.clone(), "default");
    let evs = events.list(&ListParams::default()).await.unwrap().items;
    let has = |reason: &str, controller: &str| {
        evs.iter()
            .any(|e| e.reason.as_deref() == Some(reason) && e.reporting_controller.as_deref() == Some(controller))
    };
    assert!(has("SuccessfulCreate", "replicaset-controller"));
    assert!(has("SuccessfulDelete", "replicaset-controller"));
    assert!(has("SuccessfulCreate", "replication-controller"));
    assert!(evs
        .iter()
        .any(|e| e.note.as_deref().is_some_and(|n| n.starts_with("Created pod: web-"))));

    ctl.abort();
    sim.abort();
    sched.abort();
    let _ = (ctl.await, sim.await, sched.await);
    drop((pods, rss, rcs, events, client));
    running.shutdown().await;
}
