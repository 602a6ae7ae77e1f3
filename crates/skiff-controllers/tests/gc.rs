//! The garbage collector against an in-process API server: background, foreground and orphan
//! propagation over hand-made owner chains and over a ReplicaSet's pods on simulated nodes.

use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::api::apps::v1::ReplicaSet;
use k8s_openapi::api::core::v1::{ConfigMap, Pod};
use kube::api::{DeleteParams, ListParams, Patch, PatchParams, PostParams};
use kube::{Api, Client, ResourceExt};
use serde_json::json;

async fn wait_for<F, Fut>(what: &str, mut f: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while !f().await {
        assert!(tokio::time::Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// An owner reference to a ConfigMap.
fn owner(cm: &ConfigMap, block: bool) -> serde_json::Value {
    json!({"apiVersion": "v1", "kind": "ConfigMap", "name": cm.name_any(), "uid": cm.uid().unwrap(),
           "blockOwnerDeletion": block})
}

async fn cm(api: &Api<ConfigMap>, name: &str, owners: Vec<serde_json::Value>) -> ConfigMap {
    let mut meta = json!({"name": name});
    if !owners.is_empty() {
        meta["ownerReferences"] = json!(owners);
    }
    let obj: ConfigMap = serde_json::from_value(json!({"metadata": meta})).unwrap();
    api.create(&PostParams::default(), &obj).await.unwrap()
}

async fn gone(api: &Api<ConfigMap>, name: &str) -> bool {
    api.get_opt(name).await.unwrap().is_none()
}

async fn hold(api: &Api<ConfigMap>, name: &str, on: bool) {
    let f = if on { json!(["example.com/hold"]) } else { json!(null) };
    api.patch(
        name,
        &PatchParams::default(),
        &Patch::Merge(json!({"metadata": {"finalizers": f}})),
    )
    .await
    .unwrap();
}

async fn start(dir: &std::path::Path) -> (skiff_apiserver::Running, Client) {
    let running = skiff_apiserver::start(skiff_apiserver::Config::loopback(dir))
        .await
        .unwrap();
    let client = running.client();
    (running, client)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn background_deletion_follows_owner_chains() {
    let dir = tempfile::tempdir().unwrap();
    let (_running, client) = start(dir.path()).await;
    let cms: Api<ConfigMap> = Api::namespaced(client.clone(), "default");
    let root = cm(&cms, "root", vec![]).await;
    let other = cm(&cms, "other", vec![]).await;
    let child = cm(&cms, "child", vec![owner(&root, false)]).await;
    cm(&cms, "grandchild", vec![owner(&child, false)]).await;
    cm(&cms, "shared", vec![owner(&root, false), owner(&other, false)]).await;
    // Owners that never existed: an unknown uid, and a live name with another uid.
    let ghost = json!({"apiVersion": "v1", "kind": "ConfigMap", "name": "ghost",
                       "uid": "00000000-0000-4000-8000-000000000001"});
    cm(&cms, "haunted", vec![ghost]).await;
    let impostor = json!({"apiVersion": "v1", "kind": "ConfigMap", "name": "other",
                          "uid": "00000000-0000-4000-8000-000000000002"});
    cm(&cms, "misled", vec![impostor]).await;
    cm(&cms, "kept", vec![owner(&other, true)]).await;

    let gc = tokio::spawn(skiff_controllers::gc::run(client.clone()));
    wait_for("dependents of absent owners to go", || async {
        gone(&cms, "haunted").await && gone(&cms, "misled").await
    })
    .await;
    assert!(!gone(&cms, "child").await, "a live owner keeps its dependents");

    cms.delete("root", &DeleteParams::default()).await.unwrap();
    wait_for("the chain under root to go", || async {
        gone(&cms, "child").await && gone(&cms, "grandchild").await
    })
    .await;
    // A dependent with another live owner stays, without the reference to the dead one.
    wait_for("the dead owner's reference to be removed", || async {
        cms.get("shared").await.unwrap().owner_references().len() == 1
    })
    .await;
    let shared = cms.get("shared").await.unwrap();
    assert_eq!(shared.owner_references()[0].uid, other.uid().unwrap());
    assert!(!gone(&cms, "kept").await);
    assert!(!gone(&cms, "other").await);
    gc.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn foreground_waits_for_blocking_dependents_and_orphan_keeps_them() {
    let dir = tempfile::tempdir().unwrap();
    let (_running, client) = start(dir.path()).await;
    let cms: Api<ConfigMap> = Api::namespaced(client.clone(), "default");
    let gc = tokio::spawn(skiff_controllers::gc::run(client.clone()));

    // Foreground: owner → child (blocking) → grandchild (blocking, held by a finalizer), and a
    // non-blocking dependent that does not hold the owner.
    let top = cm(&cms, "top", vec![]).await;
    let mid = cm(&cms, "mid", vec![owner(&top, true)]).await;
    cm(&cms, "leaf", vec![owner(&mid, true)]).await;
    cm(&cms, "loose", vec![owner(&top, false)]).await;
    hold(&cms, "leaf", true).await;
    cms.delete("top", &DeleteParams::foreground()).await.unwrap();
    wait_for("the held leaf to be marked for deletion", || async {
        cms.get("leaf").await.unwrap().metadata.deletion_timestamp.is_some()
    })
    .await;
    wait_for("the loose dependent to go", || async { gone(&cms, "loose").await }).await;
    for name in ["top", "mid"] {
        let o = cms.get(name).await.unwrap();
        assert!(o.metadata.deletion_timestamp.is_some(), "{name} is being deleted");
        assert_eq!(
            o.metadata.finalizers.as_deref(),
            Some(&["foregroundDeletion".to_string()][..]),
            "{name} waits for its blocking dependents"
        );
    }
    hold(&cms, "leaf", false).await;
    wait_for("the whole chain to go, owner last", || async {
        gone(&cms, "leaf").await && gone(&cms, "mid").await && gone(&cms, "top").await
    })
    .await;

    // Orphan: the owner goes, its dependents stay without the reference.
    let parent = cm(&cms, "parent", vec![]).await;
    let elder = cm(&cms, "elder", vec![]).await;
    cm(&cms, "kid", vec![owner(&parent, true)]).await;
    cm(&cms, "twin", vec![owner(&parent, true), owner(&elder, false)]).await;
    cms.delete("parent", &DeleteParams::orphan()).await.unwrap();
    wait_for("the orphaned owner to go", || async { gone(&cms, "parent").await }).await;
    let kid = cms.get("kid").await.unwrap();
    assert_eq!(kid.metadata.owner_references, None, "an emptied list is left out");
    let twin = cms.get("twin").await.unwrap();
    assert_eq!(twin.owner_references().len(), 1);
    assert_eq!(twin.owner_references()[0].uid, elder.uid().unwrap());
    gc.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_dependents_go_with_their_owner() {
    let dir = tempfile::tempdir().unwrap();
    let (_running, client) = start(dir.path()).await;
    let cms: Api<ConfigMap> = Api::namespaced(client.clone(), "default");
    let gc = tokio::spawn(skiff_controllers::gc::run(client.clone()));
    let root = cm(&cms, "many", vec![]).await;
    let made = futures::stream::iter(0..1000)
        .map(|i| {
            let cms = cms.clone();
            let o = owner(&root, false);
            async move { cm(&cms, &format!("dep-{i}"), vec![o]).await }
        })
        .buffer_unordered(16)
        .count()
        .await;
    assert_eq!(made, 1000);
    let count = || async { cms.list(&ListParams::default()).await.unwrap().items.len() };
    let before = count().await;
    let t = std::time::Instant::now();
    cms.delete("many", &DeleteParams::default()).await.unwrap();
    wait_for("1000 dependents to go", || async { count().await == before - 1001 }).await;
    eprintln!("1000 dependents collected in {:?}", t.elapsed());
    gc.abort();
}

/// Pods owned by `uid`, not being deleted.
async fn owned(pods: &Api<Pod>, uid: &str) -> Vec<Pod> {
    pods.list(&ListParams::default())
        .await
        .unwrap()
        .items
        .into_iter()
        .filter(|p| p.metadata.deletion_timestamp.is_none())
        .filter(|p| p.owner_references().iter().any(|r| r.uid == uid))
        .collect()
}

async fn replicaset(rss: &Api<ReplicaSet>, name: &str, replicas: i32) -> ReplicaSet {
    let rs: ReplicaSet = serde_json::from_value(json!({
        "metadata": {"name": name},
        "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": name}},
                 "template": {"metadata": {"labels": {"app": name}},
                              "spec": {"containers": [{"name": "c", "image": "nginx"}]}}}
    }))
    .unwrap();
    rss.create(&PostParams::default(), &rs).await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn replicaset_pods_follow_the_propagation_policy() {
    let dir = tempfile::tempdir().unwrap();
    let (running, client) = start(dir.path()).await;
    let sched = tokio::spawn(skiff_scheduler::run(client.clone(), Default::default()));
    let sim = tokio::spawn(skiff_agent::sim::run(
        client.clone(),
        skiff_agent::sim::SimOptions {
            count: 2,
            ..Default::default()
        },
    ));
    let rsc = tokio::spawn(skiff_controllers::replicaset::run(
        skiff_controllers::informer::Informers::new(client.clone()),
    ));
    let gc = tokio::spawn(skiff_controllers::gc::run(client.clone()));
    let pods: Api<Pod> = Api::namespaced(client.clone(), "default");
    let rss: Api<ReplicaSet> = Api::namespaced(client.clone(), "default");
    let all_pods = |prefix: &'static str| {
        let pods = pods.clone();
        async move {
            pods.list(&ListParams::default())
                .await
                .unwrap()
                .items
                .into_iter()
                .filter(|p| p.name_any().starts_with(prefix))
                .count()
        }
    };

    // Background (the default): the pods go after the ReplicaSet.
    let web = replicaset(&rss, "web", 3).await;
    let web_uid = web.uid().unwrap();
    wait_for("3 pods", || async { owned(&pods, &web_uid).await.len() == 3 }).await;
    rss.delete("web", &DeleteParams::default()).await.unwrap();
    wait_for("the pods of a deleted ReplicaSet to go", || async {
        all_pods("web-").await == 0
    })
    .await;

    // Foreground: the ReplicaSet stays until its pods are gone.
    let fg = replicaset(&rss, "fg", 2).await;
    let fg_uid = fg.uid().unwrap();
    wait_for("2 pods", || async { owned(&pods, &fg_uid).await.len() == 2 }).await;
    let held = owned(&pods, &fg_uid).await[0].name_any();
    pods.patch(
        &held,
        &PatchParams::default(),
        &Patch::Merge(json!({"metadata": {"finalizers": ["example.com/hold"]}})),
    )
    .await
    .unwrap();
    rss.delete("fg", &DeleteParams::foreground()).await.unwrap();
    wait_for("the pods to be deleted", || async {
        owned(&pods, &fg_uid).await.is_empty() && all_pods("fg-").await == 1
    })
    .await;
    let rs = rss.get("fg").await.unwrap();
    assert!(rs.metadata.deletion_timestamp.is_some());
    assert_eq!(
        rs.metadata.finalizers.as_deref(),
        Some(&["foregroundDeletion".to_string()][..])
    );
    pods.patch(
        &held,
        &PatchParams::default(),
        &Patch::Merge(json!({"metadata": {"finalizers": null}})),
    )
    .await
    .unwrap();
    wait_for("the ReplicaSet to go after its last pod", || async {
        rss.get_opt("fg").await.unwrap().is_none()
    })
    .await;
    assert_eq!(all_pods("fg-").await, 0);

    // Orphan: the pods stay, lose their reference, and a new ReplicaSet adopts them.
    let keep = replicaset(&rss, "keep", 2).await;
    let keep_uid = keep.uid().unwrap();
    wait_for("2 pods", || async { owned(&pods, &keep_uid).await.len() == 2 }).await;
    let mut names: Vec<String> = owned(&pods, &keep_uid).await.iter().map(|p| p.name_any()).collect();
    names.sort();
    rss.delete("keep", &DeleteParams::orphan()).await.unwrap();
    wait_for("the orphaned ReplicaSet to go", || async {
        rss.get_opt("keep").await.unwrap().is_none()
    })
    .await;
    for n in &names {
        let p = pods.get(n).await.unwrap();
        assert_eq!(p.metadata.owner_references, None, "{n} has no owner");
        assert!(p.metadata.deletion_timestamp.is_none());
    }
    let again = replicaset(&rss, "keep", 2).await;
    let again_uid = again.uid().unwrap();
    wait_for("the new ReplicaSet to adopt the orphans", || async {
        let mut now: Vec<String> = owned(&pods, &again_uid).await.iter().map(|p| p.name_any()).collect();
        now.sort();
        now == names
    })
    .await;

    for t in [gc, rsc] {
        t.abort();
    }
    sim.abort();
    sched.abort();
    drop(running);
}
