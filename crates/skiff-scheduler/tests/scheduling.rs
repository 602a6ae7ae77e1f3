//! The scheduler against an in-process API server, through kube-rs, as users see it: where
//! pods land, and the upstream events and conditions when they cannot.

use std::future::Future;
use std::time::Duration;

use k8s_openapi::api::core::v1::{Event, Node, Pod};
use kube::api::{DeleteParams, ListParams, Patch, PatchParams, PostParams};
use kube::{Api, Client};
use serde_json::{json, Value};

struct Cluster {
    running: skiff_apiserver::Running,
    client: Client,
    scheduler: tokio::task::JoinHandle<Result<(), skiff_scheduler::Error>>,
    _dir: tempfile::TempDir,
}

impl Cluster {
    async fn start() -> Cluster {
        let dir = tempfile::tempdir().unwrap();
        let running = skiff_apiserver::start(skiff_apiserver::Config::loopback(dir.path().to_path_buf()))
            .await
            .unwrap();
        let client = skiff_apiserver::local::client(running.server.clone());
        let scheduler = tokio::spawn(skiff_scheduler::run(client.clone(), Default::default()));
        Cluster {
            running,
            client,
            scheduler,
            _dir: dir,
        }
    }

    async fn stop(self) {
        self.scheduler.abort();
        // The client holds the in-process router; the store closes once it is gone.
        drop(self.client);
        self.running.shutdown().await;
    }

    fn pods(&self) -> Api<Pod> {
        Api::namespaced(self.client.clone(), "default")
    }

    async fn node(&self, name: &str, cpu: &str, pods: &str, labels: Value, spec: Value) {
        let n: Node = serde_json::from_value(json!({
            "metadata": {"name": name, "labels": labels},
            "spec": spec,
            "status": {
                "capacity": {"cpu": cpu, "memory": "8Gi", "pods": pods},
                "allocatable": {"cpu": cpu, "memory": "8Gi", "pods": pods},
                "conditions": [{"type": "Ready", "status": "True", "reason": "KubeletReady"}],
            }
        }))
        .unwrap();
        Api::<Node>::all(self.client.clone())
            .create(&PostParams::default(), &n)
            .await
            .unwrap();
    }

    async fn pod(&self, name: &str, spec: Value) {
        self.pod_with_meta(json!({"name": name}), spec).await
    }

    async fn pod_with_meta(&self, meta: Value, spec: Value) {
        let mut spec = spec;
        if spec.get("containers").is_none() {
            spec["containers"] = json!([{"name": "c", "image": "pause"}]);
        }
        let p: Pod = serde_json::from_value(json!({"metadata": meta, "spec": spec})).unwrap();
        self.pods().create(&PostParams::default(), &p).await.unwrap();
    }

    async fn node_of(&self, pod: &str) -> Option<String> {
        let p = self.pods().get(pod).await.unwrap();
        p.spec.and_then(|s| s.node_name).filter(|n| !n.is_empty())
    }

    async fn wait_bound(&self, pod: &str) -> String {
        wait(&format!("{pod} bound"), || async { self.node_of(pod).await }).await
    }

    async fn events_for(&self, pod: &str, reason: &str) -> Vec<Event> {
        let evs = Api::<Event>::namespaced(self.client.clone(), "default")
            .list(&ListParams::default())
            .await
            .unwrap();
        evs.items
            .into_iter()
            .filter(|e| e.involved_object.name.as_deref() == Some(pod) && e.reason.as_deref() == Some(reason))
            .collect()
    }
}

/// Polls until `f` yields a value, failing after 15 s.
async fn wait<T, F, Fut>(what: &str, mut f: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    loop {
        if let Some(v) = f().await {
            return v;
        }
        assert!(tokio::time::Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn cpu(c: &str) -> Value {
    json!([{"name": "c", "image": "pause", "resources": {"requests": {"cpu": c}}}])
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pod_lands_on_the_node_matching_its_node_selector() {
    let c = Cluster::start().await;
    c.node("n1", "4", "110", json!({"disk": "hdd"}), json!({})).await;
    c.node("n2", "4", "110", json!({"disk": "ssd"}), json!({})).await;
    c.node("n3", "4", "110", json!({}), json!({})).await;
    c.pod("fast", json!({"nodeSelector": {"disk": "ssd"}})).await;
    c.pod(
        "affine",
        json!({"affinity": {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {
            "nodeSelectorTerms": [{"matchExpressions": [{"key": "disk", "operator": "In", "values": ["hdd"]}]}]}}}}),
    )
    .await;
    assert_eq!(c.wait_bound("fast").await, "n2");
    assert_eq!(c.wait_bound("affine").await, "n1");
    let ev = wait("Scheduled event", || async {
        c.events_for("fast", "Scheduled").await.into_iter().next()
    })
    .await;
    assert_eq!(ev.message.as_deref(), Some("Successfully assigned default/fast to n2"));
    assert_eq!(ev.type_.as_deref(), Some("Normal"));
    let p = c.pods().get("fast").await.unwrap();
    let cond = p.status.unwrap().conditions.unwrap();
    assert!(cond.iter().any(|c| c.type_ == "PodScheduled" && c.status == "True"));
    c.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn taints_cordons_and_readiness_keep_pods_away() {
    let c = Cluster::start().await;
    c.node(
        "gpu",
        "4",
        "110",
        json!({}),
        json!({"taints": [{"key": "dedicated", "value": "gpu", "effect": "NoSchedule"}]}),
    )
    .await;
    c.node(
        "notready",
        "4",
        "110",
        json!({}),
        json!({"taints": [{"key": "node.kubernetes.io/not-ready", "effect": "NoSchedule"}]}),
    )
    .await;
    c.node("cordoned", "4", "110", json!({}), json!({"unschedulable": true}))
        .await;
    c.pod("plain", json!({})).await;
    let msg = wait("FailedScheduling", || async {
        c.events_for("plain", "FailedScheduling").await.into_iter().next()
    })
    .await
    .message
    .unwrap();
    assert_eq!(
        msg,
        "0/3 nodes are available: 1 node(s) had untolerated taint {dedicated: gpu}, \
         1 node(s) had untolerated taint {node.kubernetes.io/not-ready: }, 1 node(s) were unschedulable. \
         preemption: 0/3 nodes are available: 3 Preemption is not helpful for scheduling.."
    );
    c.pod(
        "tolerant",
        json!({"tolerations": [{"key": "dedicated", "operator": "Equal", "value": "gpu", "effect": "NoSchedule"}]}),
    )
    .await;
    assert_eq!(c.wait_bound("tolerant").await, "gpu");
    // A ready node appears: the pending pod is retried and lands there.
    c.node("ready", "4", "110", json!({}), json!({})).await;
    assert_eq!(c.wait_bound("plain").await, "ready");
    c.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn insufficient_cpu_is_reported_and_retried_when_a_node_fits() {
    let c = Cluster::start().await;
    c.node("small-1", "1", "110", json!({}), json!({})).await;
    c.node("small-2", "1", "110", json!({}), json!({})).await;
    c.node("other", "8", "110", json!({"pool": "other"}), json!({})).await;
    c.pod(
        "big",
        json!({"containers": cpu("2"), "affinity": {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {
            "nodeSelectorTerms": [{"matchExpressions": [{"key": "pool", "operator": "DoesNotExist"}]}]}}}}),
    )
    .await;
    let want = "0/3 nodes are available: 1 node(s) didn't match Pod's node affinity/selector, 2 Insufficient cpu. \
                preemption: 0/3 nodes are available: 3 Preemption is not helpful for scheduling..";
    let ev = wait("FailedScheduling", || async {
        c.events_for("big", "FailedScheduling").await.into_iter().next()
    })
    .await;
    assert_eq!(ev.message.as_deref(), Some(want));
    assert_eq!(ev.type_.as_deref(), Some("Warning"));
    assert_eq!(
        ev.reporting_component
            .as_deref()
            .or(ev.source.as_ref().and_then(|s| s.component.as_deref())),
        Some("default-scheduler")
    );
    let cond = wait("PodScheduled=False", || async {
        let p = c.pods().get("big").await.unwrap();
        p.status.and_then(|s| s.conditions).and_then(|cs| {
            cs.into_iter()
                .find(|c| c.type_ == "PodScheduled" && c.status == "False")
        })
    })
    .await;
    assert_eq!(cond.reason.as_deref(), Some("Unschedulable"));
    assert_eq!(cond.message.as_deref(), Some(want));
    let p = c.pods().get("big").await.unwrap();
    assert_eq!(p.status.unwrap().phase.as_deref(), Some("Pending"));

    // Room on a node but taken by another pod: preemption might help, yet finds no victims.
    c.pod(
        "filler",
        json!({"containers": cpu("600m"), "nodeSelector": {"pool": "other"}}),
    )
    .await;
    c.wait_bound("filler").await;

    c.node("large", "4", "110", json!({}), json!({})).await;
    assert_eq!(c.wait_bound("big").await, "large");
    c.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_victims_message_when_resources_are_taken() {
    let c = Cluster::start().await;
    c.node("only", "1", "110", json!({}), json!({})).await;
    c.pod("first", json!({"containers": cpu("700m")})).await;
    c.wait_bound("first").await;
    c.pod("second", json!({"containers": cpu("700m")})).await;
    let ev = wait("FailedScheduling", || async {
        c.events_for("second", "FailedScheduling").await.into_iter().next()
    })
    .await;
    assert_eq!(
        ev.message.as_deref(),
        Some(
            "0/1 nodes are available: 1 Insufficient cpu. \
             preemption: 0/1 nodes are available: 1 No preemption victims found for incoming pod.."
        )
    );
    // A node change retries the pod; the same failure extends the event's series.
    Api::<Node>::all(c.client.clone())
        .patch(
            "only",
            &PatchParams::default(),
            &Patch::Merge(json!({"metadata": {"labels": {"touched": "yes"}}})),
        )
        .await
        .unwrap();
    wait("the event counted twice", || async {
        let evs = c.events_for("second", "FailedScheduling").await;
        // As upstream's events.k8s.io recorder: a series, which `kubectl describe` shows as "x2".
        let count = evs.first().and_then(|e| e.series.as_ref()).and_then(|s| s.count);
        (evs.len() == 1 && count == Some(2)).then_some(())
    })
    .await;
    // Deleting the first pod frees the room: the second is retried and bound. (No kubelet
    // here to finish a graceful deletion, so delete at once.)
    c.pods()
        .delete("first", &DeleteParams::default().grace_period(0))
        .await
        .unwrap();
    assert_eq!(c.wait_bound("second").await, "only");
    c.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pods_of_one_owner_spread_across_nodes() {
    let c = Cluster::start().await;
    for n in ["a", "b", "c"] {
        c.node(n, "4", "110", json!({}), json!({})).await;
    }
    for i in 0..9 {
        c.pod_with_meta(
            json!({"name": format!("web-{i}"), "ownerReferences": [{"apiVersion": "apps/v1", "kind": "ReplicaSet",
                "name": "web", "uid": "0b6a2b5e-0000-4000-8000-000000000001", "controller": true}]}),
            json!({}),
        )
        .await;
    }
    let mut per_node = std::collections::HashMap::<String, usize>::new();
    for i in 0..9 {
        *per_node.entry(c.wait_bound(&format!("web-{i}")).await).or_default() += 1;
    }
    assert_eq!(per_node.len(), 3, "{per_node:?}");
    assert!(per_node.values().all(|&n| n == 3), "{per_node:?}");
    c.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn parallel_bindings_never_overcommit_a_node() {
    let c = Cluster::start().await;
    c.node("a", "4", "3", json!({}), json!({})).await;
    c.node("b", "4", "3", json!({}), json!({})).await;
    for i in 0..10 {
        c.pod(&format!("p{i}"), json!({})).await;
    }
    // Six fit (3 pod slots each); the other four report "Too many pods".
    let pending = wait("four FailedScheduling", || async {
        let mut n = 0;
        for i in 0..10 {
            if !c.events_for(&format!("p{i}"), "FailedScheduling").await.is_empty() {
                n += 1;
            }
        }
        (n == 4).then_some(n)
    })
    .await;
    assert_eq!(pending, 4);
    let mut bound = 0;
    for i in 0..10 {
        if c.node_of(&format!("p{i}")).await.is_some() {
            bound += 1;
        }
    }
    assert_eq!(bound, 6);
    let p = c
        .pods()
        .list(&ListParams::default().fields("spec.nodeName="))
        .await
        .unwrap();
    let msg = p.items[0].status.as_ref().unwrap().conditions.as_ref().unwrap()[0]
        .message
        .clone();
    assert_eq!(
        msg.as_deref(),
        Some(
            "0/2 nodes are available: 2 Too many pods. \
             preemption: 0/2 nodes are available: 2 No preemption victims found for incoming pod.."
        )
    );
    c.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pods_for_other_schedulers_are_left_alone() {
    let c = Cluster::start().await;
    c.node("a", "4", "110", json!({}), json!({})).await;
    c.pod("mine", json!({})).await;
    c.pod("theirs", json!({"schedulerName": "other-scheduler"})).await;
    c.wait_bound("mine").await;
    // The pod created after "theirs" is bound, so "theirs" was seen and skipped.
    c.pod("mine-2", json!({})).await;
    c.wait_bound("mine-2").await;
    assert_eq!(c.node_of("theirs").await, None);
    assert!(c.events_for("theirs", "FailedScheduling").await.is_empty());
    c.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bench_smoke() {
    let out = skiff_scheduler::bench::run(skiff_scheduler::bench::BenchOpts {
        nodes: 50,
        initial_pods: 20,
        measured_pods: 200,
        timeout: Duration::from_secs(20),
        ..Default::default()
    })
    .await
    .unwrap();
    assert!(out.contains("pods/s"), "{out}");
    println!("{out}");
}
