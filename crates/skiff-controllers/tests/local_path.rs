//! The local-path provisioner against an in-process API server.

use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;
use std::time::Duration;

use k8s_openapi::api::core::v1::{Event, PersistentVolume, PersistentVolumeClaim};
use k8s_openapi::api::storage::v1::StorageClass;
use kube::api::{ListParams, PostParams};
use kube::{Api, ResourceExt};
use serde_json::json;
use skiff_controllers::local_path;

async fn wait_for<F, Fut>(what: &str, mut f: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while !f().await {
        assert!(tokio::time::Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn claim_is_provisioned_bound_and_reclaimed() {
    let dir = tempfile::tempdir().unwrap();
    let running = skiff_apiserver::start(skiff_apiserver::Config::loopback(dir.path().join("server")))
        .await
        .unwrap();
    let client = running.client();
    let base_dir = dir.path().join("storage");

    // The server starts with the default class.
    let classes: Api<StorageClass> = Api::all(client.clone());
    let sc = classes.get("local-path").await.unwrap();
    assert_eq!(sc.provisioner, local_path::PROVISIONER);
    assert_eq!(sc.reclaim_policy.as_deref(), Some("Delete"));

    let ctl = tokio::spawn(local_path::run(
        client.clone(),
        local_path::Options {
            base_dir: base_dir.clone(),
        },
    ));

    // A claim without a class gets the default one and is provisioned.
    let claims: Api<PersistentVolumeClaim> = Api::namespaced(client.clone(), "default");
    let pvs: Api<PersistentVolume> = Api::all(client.clone());
    let claim: PersistentVolumeClaim = serde_json::from_value(json!({
        "metadata": {"name": "data"},
        "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}},
    }))
    .unwrap();
    let claim = claims.create(&PostParams::default(), &claim).await.unwrap();
    assert_eq!(
        claim.spec.as_ref().unwrap().storage_class_name.as_deref(),
        Some("local-path")
    );
    let uid = claim.uid().unwrap();
    let pv_name = format!("pvc-{uid}");
    wait_for("claim Bound", || async {
        let c = claims.get("data").await.unwrap();
        c.status.and_then(|s| s.phase).as_deref() == Some("Bound")
    })
    .await;
    let c = claims.get("data").await.unwrap();
    assert_eq!(c.spec.as_ref().unwrap().volume_name.as_deref(), Some(pv_name.as_str()));
    assert_eq!(
        c.annotations()
            .get("pv.kubernetes.io/bind-completed")
            .map(String::as_str),
        Some("yes")
    );
    let status = c.status.unwrap();
    assert_eq!(status.capacity.unwrap()["storage"].0, "1Gi");
    assert_eq!(status.access_modes.unwrap(), vec!["ReadWriteOnce".to_string()]);

    wait_for("volume Bound", || async {
        let pv = pvs.get(&pv_name).await.unwrap();
        pv.status.and_then(|s| s.phase).as_deref() == Some("Bound")
    })
    .await;
    let pv = pvs.get(&pv_name).await.unwrap();
    assert_eq!(
        pv.annotations()
            .get("pv.kubernetes.io/provisioned-by")
            .map(String::as_str),
        Some(local_path::PROVISIONER)
    );
    let spec = pv.spec.unwrap();
    assert_eq!(spec.capacity.unwrap()["storage"].0, "1Gi");
    assert_eq!(spec.persistent_volume_reclaim_policy.as_deref(), Some("Delete"));
    assert_eq!(spec.storage_class_name.as_deref(), Some("local-path"));
    let claim_ref = spec.claim_ref.unwrap();
    assert_eq!(claim_ref.name.as_deref(), Some("data"));
    assert_eq!(claim_ref.uid.as_deref(), Some(uid.as_str()));
    let path = PathBuf::from(spec.host_path.unwrap().path);
    assert_eq!(path, base_dir.join(format!("{pv_name}_default_data")));
    assert!(path.is_dir());
    assert_eq!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o777);

    let events: Api<Event> = Api::namespaced(client.clone(), "default");
    wait_for("ProvisioningSucceeded event", || async {
        events
            .list(&ListParams::default())
            .await
            .unwrap()
            .items
            .iter()
            .any(|e| {
                e.reason.as_deref() == Some("ProvisioningSucceeded")
                    && e.message.as_deref() == Some(format!("Successfully provisioned volume {pv_name}").as_str())
            })
    })
    .await;

    // Deleting the claim releases the volume; reclaim policy Delete removes it and its directory.
    std::fs::write(path.join("file"), "x").unwrap();
    claims.delete("data", &Default::default()).await.unwrap();
    wait_for("volume deleted", || async {
        pvs.get_opt(&pv_name).await.unwrap().is_none()
    })
    .await;
    assert!(!path.exists());

    ctl.abort();
    drop((claims, pvs, classes, events, client));
    running.shutdown().await;
}
