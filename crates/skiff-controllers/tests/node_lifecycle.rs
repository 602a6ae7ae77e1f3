//! The node lifecycle controller against an in-process API server.

use std::time::Duration;

use k8s_openapi::api::core::v1::{Node, Pod};
use kube::api::{Patch, PatchParams, PostParams};
use kube::Api;
use serde_json::json;
use skiff_controllers::node_lifecycle::{self, taints};

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

fn ready_node(name: &str) -> Node {
    let now = jiff::Timestamp::now().to_string();
    serde_json::from_value(json!({
        "metadata": {"name": name},
        "status": {"conditions": [{"type": "Ready", "status": "True", "reason": "KubeletReady", "message": "kubelet is posting ready status",
            "lastHeartbeatTime": now, "lastTransitionTime": now}]}
    }))
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn silent_node_becomes_unknown_tainted_and_evicted() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = skiff_apiserver::Config::loopback(dir.path());
    let running = skiff_apiserver::start(cfg).await.unwrap();
    let client = skiff_apiserver::local::client(running.server.clone());
    let nodes: Api<Node> = Api::all(client.clone());
    let pods: Api<Pod> = Api::namespaced(client.clone(), "default");
    let pp = PostParams::default();
    let n = nodes.create(&pp, &ready_node("n1")).await.unwrap();
    nodes
        .patch_status(
            "n1",
            &PatchParams::default(),
            &Patch::Merge(json!({"status": n.status})),
        )
        .await
        .unwrap();
    let pod = |name: &str, secs: i64| -> Pod {
        serde_json::from_value(json!({
            "metadata": {"name": name},
            "spec": {"nodeName": "n1", "containers": [{"name": "c", "image": "i"}],
                "tolerations": [{"key": "node.kubernetes.io/unreachable", "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": secs}]}
        }))
        .unwrap()
    };
    pods.create(&pp, &pod("short", 1)).await.unwrap();
    pods.create(&pp, &pod("long", 3600)).await.unwrap();

    let opts = node_lifecycle::Options {
        monitor_period: Duration::from_millis(100),
        grace_period: Duration::from_secs(1),
    };
    let ctl = tokio::spawn(node_lifecycle::run(
        skiff_controllers::informer::Informers::new(client.clone()),
        opts,
    ));

    wait_for("node Unknown", || async {
        taints::ready_status(&nodes.get("n1").await.unwrap()) == "Unknown"
    })
    .await;
    let n = nodes.get("n1").await.unwrap();
    let ready = n
        .status
        .unwrap()
        .conditions
        .unwrap()
        .into_iter()
        .find(|c| c.type_ == "Ready")
        .unwrap();
    assert_eq!(ready.reason.as_deref(), Some("NodeStatusUnknown"));
    assert_eq!(ready.message.as_deref(), Some("Kubelet stopped posting node status."));
    wait_for("unreachable taints", || async {
        let t = nodes.get("n1").await.unwrap().spec.unwrap().taints.unwrap_or_default();
        t.iter()
            .any(|t| t.key == taints::UNREACHABLE && t.effect == "NoExecute" && t.time_added.is_some())
            && t.iter()
                .any(|t| t.key == taints::UNREACHABLE && t.effect == "NoSchedule")
    })
    .await;
    // The pod tolerating 1 s is evicted (Terminating: its node still exists); the other stays.
    wait_for("short pod evicted", || async {
        pods.get("short").await.unwrap().metadata.deletion_timestamp.is_some()
    })
    .await;
    assert!(pods.get("long").await.unwrap().metadata.deletion_timestamp.is_none());
    let long = pods.get("long").await.unwrap();
    let ready = long
        .status
        .unwrap()
        .conditions
        .unwrap_or_default()
        .into_iter()
        .find(|c| c.type_ == "Ready");
    assert_eq!(ready.map(|c| c.status), Some("False".into()));

    // Deleting the node lets the pod GC finish the terminating pod.
    nodes.delete("n1", &Default::default()).await.unwrap();
    wait_for("terminating pod removed", || async {
        pods.get_opt("short").await.unwrap().is_none()
    })
    .await;

    // Cordoning adds the unschedulable taint, uncordoning removes it.
    nodes.create(&pp, &ready_node("n2")).await.unwrap();
    nodes
        .patch(
            "n2",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"unschedulable": true}})),
        )
        .await
        .unwrap();
    wait_for("unschedulable taint", || async {
        let t = nodes.get("n2").await.unwrap().spec.unwrap().taints.unwrap_or_default();
        t.iter().any(|t| t.key == taints::UNSCHEDULABLE)
    })
    .await;
    ctl.abort();
    drop((nodes, pods, client));
    running.shutdown().await;
}
