//! The namespace controller against an in-process API server: a deleted namespace is emptied
//! through the API (pods first), reports what holds it in its conditions, and goes once empty.

use std::time::Duration;

use k8s_openapi::api::core::v1::{ConfigMap, Namespace, Pod, Secret};
use kube::api::{DeleteParams, Patch, PatchParams, PostParams};
use kube::{Api, Client};
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

async fn create<K>(api: &Api<K>, v: serde_json::Value) -> K
where
    K: kube::Resource + Clone + serde::de::DeserializeOwned + serde::Serialize + std::fmt::Debug,
{
    let obj: K = serde_json::from_value(v).unwrap();
    api.create(&PostParams::default(), &obj).await.unwrap()
}

async fn make_namespace(client: &Client, name: &str) {
    create(
        &Api::<Namespace>::all(client.clone()),
        json!({"metadata": {"name": name}}),
    )
    .await;
}

fn condition(ns: &Namespace, type_: &str) -> Option<(String, String, String)> {
    let c = ns
        .status
        .as_ref()?
        .conditions
        .as_ref()?
        .iter()
        .find(|c| c.type_ == type_)?;
    Some((
        c.status.clone(),
        c.reason.clone().unwrap_or_default(),
        c.message.clone().unwrap_or_default(),
    ))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deleted_namespace_is_emptied_then_removed() {
    let dir = tempfile::tempdir().unwrap();
    let running = skiff_apiserver::start(skiff_apiserver::Config::loopback(dir.path()))
        .await
        .unwrap();
    let client = running.client();
    let namespaces: Api<Namespace> = Api::all(client.clone());
    make_namespace(&client, "doomed").await;
    make_namespace(&client, "bystander").await;
    let cms: Api<ConfigMap> = Api::namespaced(client.clone(), "doomed");
    let secrets: Api<Secret> = Api::namespaced(client.clone(), "doomed");
    let pods: Api<Pod> = Api::namespaced(client.clone(), "doomed");
    create(&cms, json!({"metadata": {"name": "a"}})).await;
    create(&secrets, json!({"metadata": {"name": "s"}})).await;
    create(
        &pods,
        json!({"metadata": {"name": "p"}, "spec": {"containers": [{"name": "c", "image": "busybox"}]}}),
    )
    .await;
    let other: Api<ConfigMap> = Api::namespaced(client.clone(), "bystander");
    create(&other, json!({"metadata": {"name": "a"}})).await;

    // Without the controller, a deleted namespace only turns Terminating and keeps its content.
    namespaces.delete("doomed", &DeleteParams::default()).await.unwrap();
    let ns = namespaces.get("doomed").await.unwrap();
    assert_eq!(ns.status.as_ref().unwrap().phase.as_deref(), Some("Terminating"));
    assert_eq!(
        ns.spec.as_ref().unwrap().finalizers.as_deref(),
        Some(&["kubernetes".to_string()][..])
    );
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(
        cms.get_opt("a").await.unwrap().is_some(),
        "the API server itself deletes nothing"
    );

    let ctl = tokio::spawn(skiff_controllers::namespace::run(client.clone()));
    wait_for("the namespace to go", || async {
        namespaces.get_opt("doomed").await.unwrap().is_none()
    })
    .await;
    assert!(cms.get_opt("a").await.unwrap().is_none());
    assert!(secrets.get_opt("s").await.unwrap().is_none());
    assert!(pods.get_opt("p").await.unwrap().is_none());
    assert!(
        other.get_opt("a").await.unwrap().is_some(),
        "other namespaces keep their content"
    );

    // The name can be used again, and the new namespace is empty.
    make_namespace(&client, "doomed").await;
    assert!(cms.get_opt("a").await.unwrap().is_none());
    ctl.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn finalizers_hold_the_namespace_and_pods_go_first() {
    let dir = tempfile::tempdir().unwrap();
    let running = skiff_apiserver::start(skiff_apiserver::Config::loopback(dir.path()))
        .await
        .unwrap();
    let client = running.client();
    let namespaces: Api<Namespace> = Api::all(client.clone());
    make_namespace(&client, "slow").await;
    let cms: Api<ConfigMap> = Api::namespaced(client.clone(), "slow");
    let pods: Api<Pod> = Api::namespaced(client.clone(), "slow");
    create(
        &pods,
        json!({"metadata": {"name": "held", "finalizers": ["example.com/hold"]},
               "spec": {"containers": [{"name": "c", "image": "busybox"}]}}),
    )
    .await;
    create(&cms, json!({"metadata": {"name": "plain"}})).await;
    create(
        &cms,
        json!({"metadata": {"name": "kept", "finalizers": ["example.com/hold"]}}),
    )
    .await;
    let ctl = tokio::spawn(skiff_controllers::namespace::run(client.clone()));

    namespaces.delete("slow", &DeleteParams::default()).await.unwrap();
    wait_for("the pod to be marked for deletion", || async {
        pods.get("held").await.unwrap().metadata.deletion_timestamp.is_some()
    })
    .await;
    wait_for("conditions naming the held pod", || async {
        let ns = namespaces.get("slow").await.unwrap();
        condition(&ns, "NamespaceContentRemaining").is_some_and(|c| c.0 == "True")
    })
    .await;
    let ns = namespaces.get("slow").await.unwrap();
    assert_eq!(
        condition(&ns, "NamespaceContentRemaining").unwrap(),
        (
            "True".into(),
            "SomeResourcesRemain".into(),
            "Some resources are remaining: pods. has 1 resource instances".into()
        )
    );
    assert_eq!(
        condition(&ns, "NamespaceFinalizersRemaining").unwrap(),
        (
            "True".into(),
            "SomeFinalizersRemain".into(),
            "Some content in the namespace has finalizers remaining: example.com/hold in 1 resource instances".into()
        )
    );
    assert_eq!(
        condition(&ns, "NamespaceDeletionDiscoveryFailure").unwrap(),
        (
            "False".into(),
            "ResourcesDiscovered".into(),
            "All resources successfully discovered".into()
        )
    );
    // upstream (OrderedNamespaceDeletion): nothing else is touched while pods remain.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let plain = cms.get("plain").await.unwrap();
    assert!(plain.metadata.deletion_timestamp.is_none(), "config waits for the pods");

    // Releasing the pod lets the rest be deleted; the finalized configmap then holds it.
    let release = json!({"metadata": {"finalizers": null}});
    pods.patch("held", &PatchParams::default(), &Patch::Merge(&release))
        .await
        .unwrap();
    wait_for("the plain configmap to go", || async {
        cms.get_opt("plain").await.unwrap().is_none()
    })
    .await;
    wait_for("conditions naming the held configmap", || async {
        let ns = namespaces.get("slow").await.unwrap();
        condition(&ns, "NamespaceContentRemaining")
            .is_some_and(|c| c.2 == "Some resources are remaining: configmaps. has 1 resource instances")
    })
    .await;
    assert!(namespaces.get_opt("slow").await.unwrap().is_some());
    cms.patch("kept", &PatchParams::default(), &Patch::Merge(&release))
        .await
        .unwrap();
    wait_for("the namespace to go", || async {
        namespaces.get_opt("slow").await.unwrap().is_none()
    })
    .await;
    ctl.abort();
}
