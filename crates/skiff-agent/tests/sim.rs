//! Simulated nodes against an in-process API server: registration, leases, pod lifecycles,
//! deletion, and killed nodes.

use std::time::Duration;

use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::{Node, Pod};
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams, PostParams};
use kube::runtime::wait::{await_condition, conditions, Condition};
use kube::Client;
use serde_json::{json, Value};
use skiff_agent::sim::{SimNodes, SimOptions};

const TIMEOUT: Duration = Duration::from_secs(20);

struct Env {
    _dir: tempfile::TempDir,
    running: Option<skiff_apiserver::Running>,
    client: Client,
}

impl Env {
    async fn start() -> Env {
        let dir = tempfile::tempdir().unwrap();
        let running = skiff_apiserver::start(skiff_apiserver::Config::loopback(dir.path().to_path_buf()))
            .await
            .unwrap();
        let client = skiff_apiserver::local::client(running.server.clone());
        Env {
            _dir: dir,
            running: Some(running),
            client,
        }
    }

    async fn stop(mut self) {
        let running = self.running.take();
        // The in-process client holds the server; drop it so shutdown closes the store.
        drop(self);
        if let Some(r) = running {
            r.shutdown().await;
        }
    }
}

/// Runs a test body against a fresh API server, then shuts the server down.
async fn with_env<F: std::future::Future<Output = ()>>(body: impl FnOnce(Client) -> F) {
    let env = Env::start().await;
    body(env.client.clone()).await;
    env.stop().await;
}

fn opts(count: usize) -> SimOptions {
    SimOptions {
        count,
        startup_delay_max: Duration::from_millis(50),
        job_duration: Duration::from_millis(500),
        lease_interval: Duration::from_millis(500),
        ..Default::default()
    }
}

async fn wait<K>(api: &Api<K>, name: &str, what: &str, cond: impl Condition<K>) -> K
where
    K: kube::Resource + Clone + std::fmt::Debug + serde::de::DeserializeOwned + Send + 'static,
{
    match tokio::time::timeout(TIMEOUT, await_condition(api.clone(), name, cond)).await {
        Ok(Ok(Some(obj))) => obj,
        Ok(Ok(None)) => panic!("{name}: gone while waiting for {what}"),
        Ok(Err(e)) => panic!("{name}: watch failed waiting for {what}: {e}"),
        Err(_) => {
            let now = api.get_opt(name).await.ok().flatten();
            panic!("{name}: timed out waiting for {what}; now: {now:#?}")
        }
    }
}

fn pod(name: &str, node: &str, policy: &str, annotations: Value) -> Pod {
    serde_json::from_value(json!({
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "annotations": annotations},
        "spec": {
            "nodeName": node,
            "restartPolicy": policy,
            "containers": [{"name": "app", "image": "nginx", "volumeMounts": []}],
        },
    }))
    .unwrap()
}

fn phase_is(phase: &'static str) -> impl Condition<Pod> {
    move |p: Option<&Pod>| p.and_then(|p| p.status.as_ref()?.phase.as_deref()) == Some(phase)
}

fn ready(p: Option<&Pod>) -> bool {
    p.and_then(|p| p.status.as_ref()?.conditions.as_ref())
        .is_some_and(|cs| cs.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
}

fn renewed_after(t: jiff::Timestamp) -> impl Condition<Lease> {
    move |l: Option<&Lease>| {
        l.and_then(|l| l.spec.as_ref()?.renew_time.as_ref())
            .is_some_and(|r| r.0 > t)
    }
}

fn renew_time(l: &Lease) -> jiff::Timestamp {
    l.spec.as_ref().unwrap().renew_time.as_ref().unwrap().0
}

/// The server-side table row of a pod, as `kubectl get pod` prints it: column name → cell.
async fn table_row(client: &Client, name: &str) -> std::collections::BTreeMap<String, String> {
    let req = http::Request::get(format!("/api/v1/namespaces/default/pods/{name}"))
        .header("Accept", "application/json;as=Table;v=v1;g=meta.k8s.io")
        .body(Vec::new())
        .unwrap();
    let table: Value = client.request(req).await.unwrap();
    let cols = table["columnDefinitions"].as_array().unwrap();
    let cells = table["rows"][0]["cells"].as_array().unwrap();
    cols.iter()
        .zip(cells)
        .map(|(c, v)| {
            let s = match v {
                Value::String(s) => s.clone(),
                other => other.to_string(),
            };
            (c["name"].as_str().unwrap().to_string(), s)
        })
        .collect()
}

#[tokio::test]
async fn sim_node_registers_ready_and_renews_its_lease() {
    with_env(|client| async move {
        let sim = SimNodes::start(client.clone(), opts(3)).await.unwrap();
        assert_eq!(sim.names(), ["skiff-sim-1", "skiff-sim-2", "skiff-sim-3"]);
        let nodes: Api<Node> = Api::all(client.clone());
        let node = nodes.get("skiff-sim-2").await.unwrap();
        let labels = node.metadata.labels.clone().unwrap();
        assert_eq!(labels["kubernetes.io/hostname"], "skiff-sim-2");
        assert_eq!(labels["kubernetes.io/os"], "linux");
        assert_eq!(labels["kubernetes.io/arch"], "amd64");
        assert_eq!(labels["beta.kubernetes.io/os"], "linux");
        assert_eq!(labels["skiff.dev/sim"], "true");
        assert_eq!(node.spec.as_ref().unwrap().pod_cidr.as_deref(), Some("10.64.2.0/24"));
        let st = node.status.clone().unwrap();
        let ready = st
            .conditions
            .as_ref()
            .unwrap()
            .iter()
            .find(|c| c.type_ == "Ready")
            .unwrap();
        assert_eq!(ready.status, "True");
        assert_eq!(ready.reason.as_deref(), Some("KubeletReady"));
        assert_eq!(ready.message.as_deref(), Some("kubelet is posting ready status"));
        for (ty, reason) in [
            ("MemoryPressure", "KubeletHasSufficientMemory"),
            ("DiskPressure", "KubeletHasNoDiskPressure"),
            ("PIDPressure", "KubeletHasSufficientPID"),
        ] {
            let c = st.conditions.as_ref().unwrap().iter().find(|c| c.type_ == ty).unwrap();
            assert_eq!(
                (c.status.as_str(), c.reason.as_deref()),
                ("False", Some(reason)),
                "{ty}"
            );
        }
        let cap = st.capacity.as_ref().unwrap();
        assert_eq!(cap["cpu"].0, "4");
        assert_eq!(cap["memory"].0, "16Gi");
        assert_eq!(cap["pods"].0, "110");
        assert_eq!(st.allocatable.as_ref().unwrap()["pods"].0, "110");
        let info = st.node_info.as_ref().unwrap();
        assert_eq!(info.kubelet_version, "v1.33.0-skiff");
        assert_eq!(info.container_runtime_version, "sim://1.0");
        let addrs: Vec<_> = st
            .addresses
            .as_ref()
            .unwrap()
            .iter()
            .map(|a| (a.type_.as_str(), a.address.as_str()))
            .collect();
        assert_eq!(addrs, [("InternalIP", "172.20.0.2"), ("Hostname", "skiff-sim-2")]);
        assert_eq!(st.daemon_endpoints.unwrap().kubelet_endpoint.unwrap().port, 10250);

        let leases: Api<Lease> = Api::namespaced(client.clone(), "kube-node-lease");
        let lease = wait(&leases, "skiff-sim-2", "the lease", conditions::is_created()).await;
        let spec = lease.spec.clone().unwrap();
        assert_eq!(spec.holder_identity.as_deref(), Some("skiff-sim-2"));
        // Renewed every quarter of its duration (the 500 ms renew interval above gives 2 s).
        assert_eq!(spec.lease_duration_seconds, Some(2));
        let owner = &lease.metadata.owner_references.as_ref().unwrap()[0];
        assert_eq!((owner.kind.as_str(), owner.name.as_str()), ("Node", "skiff-sim-2"));
        assert_eq!(Some(&owner.uid), node.metadata.uid.as_ref());
        let renewed = wait(&leases, "skiff-sim-2", "a renewal", renewed_after(renew_time(&lease))).await;
        wait(&leases, "skiff-sim-2", "a renewal", renewed_after(renew_time(&renewed))).await;
        // Heartbeats go to the lease only: the node itself is not rewritten (no status loop).
        let again = nodes.get("skiff-sim-2").await.unwrap();
        assert_eq!(again.metadata.resource_version, node.metadata.resource_version);
        drop(sim);
    })
    .await;
}

#[tokio::test]
async fn host_node_registers_heartbeats_and_reregisters() {
    with_env(|client| async move {
        let cfg = skiff_agent::node::NodeConfig::from_host("host-1", "process://1.0");
        let agent = tokio::spawn(skiff_agent::node::run(client.clone(), cfg.clone()));
        let nodes: Api<Node> = Api::all(client.clone());
        let leases: Api<Lease> = Api::namespaced(client.clone(), "kube-node-lease");
        let node = wait(&nodes, "host-1", "registration", conditions::is_created()).await;
        let st = node.status.clone().unwrap();
        let info = st.node_info.unwrap();
        assert_eq!(info.container_runtime_version, "process://1.0");
        assert!(!info.kernel_version.is_empty());
        assert_eq!(
            node.metadata.labels.as_ref().unwrap()["kubernetes.io/hostname"],
            "host-1"
        );
        assert!(st.capacity.unwrap().contains_key("memory"));
        let lease = wait(&leases, "host-1", "the lease", conditions::is_created()).await;
        assert_eq!(lease.spec.unwrap().holder_identity.as_deref(), Some("host-1"));
        agent.abort();
        // A restarted agent finds its node and keeps it (same uid), labels restored.
        let patch = json!({"metadata": {"labels": {"kubernetes.io/os": null}}});
        nodes
            .patch("host-1", &PatchParams::default(), &Patch::Merge(&patch))
            .await
            .unwrap();
        let again = skiff_agent::node::register(&client, &cfg).await.unwrap();
        assert_eq!(again.metadata.uid, node.metadata.uid);
        assert_eq!(again.metadata.labels.as_ref().unwrap()["kubernetes.io/os"], "linux");
    })
    .await;
}

#[tokio::test]
async fn pod_field_selector_on_any_node_is_served() {
    // The sim's shared pod watcher relies on `spec.nodeName!=` (pods bound to any node).
    with_env(|client| async move {
        let pods: Api<Pod> = Api::default_namespaced(client.clone());
        let mut unbound = pod("unbound", "", "Always", json!({}));
        unbound.spec.as_mut().unwrap().node_name = None;
        pods.create(&PostParams::default(), &unbound).await.unwrap();
        pods.create(&PostParams::default(), &pod("bound", "elsewhere", "Always", json!({})))
            .await
            .unwrap();
        let list = pods
            .list(&ListParams::default().fields("spec.nodeName!="))
            .await
            .unwrap();
        let names: Vec<_> = list.items.iter().map(|p| p.metadata.name.clone().unwrap()).collect();
        assert_eq!(names, ["bound"]);
    })
    .await;
}

#[tokio::test]
async fn bound_pod_runs_and_is_ready_with_kubelet_status() {
    with_env(|client| async move {
        let sim = SimNodes::start(client.clone(), opts(2)).await.unwrap();
        let pods: Api<Pod> = Api::default_namespaced(client.clone());
        let mut p = pod("web", "skiff-sim-1", "Always", json!({}));
        p.spec.as_mut().unwrap().init_containers = Some(vec![serde_json::from_value(
            json!({"name": "setup", "image": "busybox:1.36"}),
        )
        .unwrap()]);
        pods.create(&PostParams::default(), &p).await.unwrap();
        let p = wait(&pods, "web", "Running and Ready", |p: Option<&Pod>| {
            phase_is("Running").matches_object(p) && ready(p)
        })
        .await;
        let st = p.status.clone().unwrap();
        assert_eq!(st.host_ip.as_deref(), Some("172.20.0.1"));
        assert_eq!(st.host_ips.as_ref().unwrap()[0].ip, "172.20.0.1");
        let ip = st.pod_ip.clone().unwrap();
        assert!(ip.starts_with("10.64.1."), "{ip}");
        assert_eq!(st.pod_ips.as_ref().unwrap()[0].ip, ip);
        assert!(st.start_time.is_some());
        let types: Vec<_> = st
            .conditions
            .as_ref()
            .unwrap()
            .iter()
            .map(|c| c.type_.as_str())
            .collect();
        for ty in [
            "PodReadyToStartContainers",
            "Initialized",
            "Ready",
            "ContainersReady",
            "PodScheduled",
        ] {
            let c = st.conditions.as_ref().unwrap().iter().find(|c| c.type_ == ty);
            let c = c.unwrap_or_else(|| panic!("{ty} missing from {types:?}"));
            assert_eq!(c.status, "True", "{ty}");
            assert!(c.last_transition_time.is_some(), "{ty}");
        }
        let cs = &st.container_statuses.as_ref().unwrap()[0];
        assert_eq!(cs.name, "app");
        assert!(cs.ready);
        assert_eq!(cs.started, Some(true));
        assert_eq!(cs.restart_count, 0);
        assert_eq!(cs.image, "docker.io/library/nginx:latest");
        assert!(
            cs.image_id.starts_with("docker.io/library/nginx@sha256:"),
            "{}",
            cs.image_id
        );
        assert!(cs.container_id.as_deref().unwrap().starts_with("sim://"));
        assert!(cs
            .state
            .as_ref()
            .unwrap()
            .running
            .as_ref()
            .unwrap()
            .started_at
            .is_some());
        let init = &st.init_container_statuses.as_ref().unwrap()[0];
        let term = init.state.as_ref().unwrap().terminated.as_ref().unwrap();
        assert_eq!((term.exit_code, term.reason.as_deref()), (0, Some("Completed")));
        assert_eq!(init.image, "docker.io/library/busybox:1.36");

        // The status is written once, not over and over.
        let leases: Api<Lease> = Api::namespaced(client.clone(), "kube-node-lease");
        let l = leases.get("skiff-sim-1").await.unwrap();
        let l = wait(&leases, "skiff-sim-1", "a renewal", renewed_after(renew_time(&l))).await;
        wait(&leases, "skiff-sim-1", "a renewal", renewed_after(renew_time(&l))).await;
        let again = pods.get("web").await.unwrap();
        assert_eq!(again.metadata.resource_version, p.metadata.resource_version);
        let row = table_row(&client, "web").await;
        assert_eq!(row["Ready"], "1/1");
        assert_eq!(row["Status"], "Running");
        assert_eq!(row["Restarts"], "0");
        assert_eq!(row["IP"], ip);
        assert_eq!(row["Node"], "skiff-sim-1");
        drop(sim);
    })
    .await;
}

#[tokio::test]
async fn never_pod_completes_and_exit_code_one_fails() {
    with_env(|client| async move {
        let sim = SimNodes::start(client.clone(), opts(2)).await.unwrap();
        let pods: Api<Pod> = Api::default_namespaced(client.clone());
        pods.create(&PostParams::default(), &pod("ok", "skiff-sim-1", "Never", json!({})))
            .await
            .unwrap();
        let failing = json!({"skiff.dev/sim-exit-code": "1", "skiff.dev/sim-duration": "300ms"});
        pods.create(&PostParams::default(), &pod("bad", "skiff-sim-2", "Never", failing))
            .await
            .unwrap();

        let ok = wait(&pods, "ok", "Succeeded", phase_is("Succeeded")).await;
        let st = ok.status.unwrap();
        let cs = &st.container_statuses.unwrap()[0];
        let t = cs.state.as_ref().unwrap().terminated.as_ref().unwrap();
        assert_eq!((t.exit_code, t.reason.as_deref()), (0, Some("Completed")));
        assert!(!cs.ready);
        let conds = st.conditions.unwrap();
        let r = conds.iter().find(|c| c.type_ == "Ready").unwrap();
        assert_eq!(
            (r.status.as_str(), r.reason.as_deref()),
            ("False", Some("PodCompleted"))
        );
        let row = table_row(&client, "ok").await;
        assert_eq!((row["Ready"].as_str(), row["Status"].as_str()), ("0/1", "Completed"));

        let bad = wait(&pods, "bad", "Failed", phase_is("Failed")).await;
        let cs = &bad.status.unwrap().container_statuses.unwrap()[0];
        let t = cs.state.as_ref().unwrap().terminated.as_ref().unwrap();
        assert_eq!((t.exit_code, t.reason.as_deref()), (1, Some("Error")));
        let row = table_row(&client, "bad").await;
        assert_eq!(row["Status"], "Error");
        drop(sim);
    })
    .await;
}

#[tokio::test]
async fn crashing_container_restarts_with_last_state() {
    with_env(|client| async move {
        let sim = SimNodes::start(client.clone(), opts(1)).await.unwrap();
        let pods: Api<Pod> = Api::default_namespaced(client.clone());
        let crash = json!({"skiff.dev/sim-exit-code": "2", "skiff.dev/sim-duration": "200ms"});
        pods.create(&PostParams::default(), &pod("crash", "skiff-sim-1", "Always", crash))
            .await
            .unwrap();
        let p = wait(&pods, "crash", "a restart", |p: Option<&Pod>| {
            p.and_then(|p| p.status.as_ref()?.container_statuses.as_ref())
                .is_some_and(|cs| cs[0].restart_count >= 1)
        })
        .await;
        let cs = &p.status.unwrap().container_statuses.unwrap()[0];
        let last = cs.last_state.as_ref().unwrap().terminated.as_ref().unwrap();
        assert_eq!((last.exit_code, last.reason.as_deref()), (2, Some("Error")));
        // After the first (immediate) restart it exits again and backs off.
        wait(&pods, "crash", "CrashLoopBackOff", |p: Option<&Pod>| {
            p.and_then(|p| p.status.as_ref()?.container_statuses.as_ref())
                .and_then(|cs| cs[0].state.as_ref()?.waiting.as_ref()?.reason.clone())
                .is_some_and(|r| r == "CrashLoopBackOff")
        })
        .await;
        let row = table_row(&client, "crash").await;
        assert_eq!(row["Status"], "CrashLoopBackOff");
        drop(sim);
    })
    .await;
}

#[tokio::test]
async fn restarted_sim_adopts_its_running_pods() {
    with_env(|client| async move {
        let pods: Api<Pod> = Api::default_namespaced(client.clone());
        let sim = SimNodes::start(client.clone(), opts(1)).await.unwrap();
        pods.create(&PostParams::default(), &pod("keep", "skiff-sim-1", "Always", json!({})))
            .await
            .unwrap();
        let p = wait(&pods, "keep", "Running", phase_is("Running")).await;
        drop(sim);
        let sim = SimNodes::start(client.clone(), opts(1)).await.unwrap();
        // The new engine has listed the pod once a later pod on the same node runs.
        pods.create(
            &PostParams::default(),
            &pod("later", "skiff-sim-1", "Always", json!({})),
        )
        .await
        .unwrap();
        let later = wait(&pods, "later", "Running", phase_is("Running")).await;
        let keep = pods.get("keep").await.unwrap();
        assert_eq!(keep.metadata.resource_version, p.metadata.resource_version, "rewritten");
        assert_ne!(
            later.status.unwrap().pod_ip,
            keep.status.unwrap().pod_ip,
            "address reused"
        );
        drop(sim);
    })
    .await;
}

#[tokio::test]
async fn deleting_a_running_pod_removes_it() {
    with_env(|client| async move {
        let sim = SimNodes::start(client.clone(), opts(1)).await.unwrap();
        let pods: Api<Pod> = Api::default_namespaced(client.clone());
        pods.create(&PostParams::default(), &pod("gone", "skiff-sim-1", "Always", json!({})))
            .await
            .unwrap();
        let p = wait(&pods, "gone", "Running", phase_is("Running")).await;
        let uid = p.metadata.uid.clone().unwrap();
        // Default grace period: the API server marks it and waits for the agent.
        pods.delete("gone", &DeleteParams::default()).await.unwrap();
        let gone = tokio::time::timeout(
            TIMEOUT,
            await_condition(pods.clone(), "gone", conditions::is_deleted(&uid)),
        )
        .await;
        assert!(matches!(gone, Ok(Ok(None))), "{gone:?}");
        drop(sim);
    })
    .await;
}

#[tokio::test]
async fn killed_node_stops_renewing_its_lease_and_running_pods() {
    with_env(|client| async move {
        let o = opts(2);
        let interval = o.lease_interval;
        let sim = SimNodes::start(client.clone(), o).await.unwrap();
        let leases: Api<Lease> = Api::namespaced(client.clone(), "kube-node-lease");
        let pods: Api<Pod> = Api::default_namespaced(client.clone());
        let lease = wait(&leases, "skiff-sim-2", "the lease", conditions::is_created()).await;
        wait(&leases, "skiff-sim-2", "a renewal", renewed_after(renew_time(&lease))).await;

        assert!(sim.kill("skiff-sim-2"));
        // A renewal may be in flight while killing; the one after it must not come.
        tokio::time::sleep(interval).await;
        let before = renew_time(&leases.get("skiff-sim-2").await.unwrap());
        pods.create(
            &PostParams::default(),
            &pod("orphan", "skiff-sim-2", "Always", json!({})),
        )
        .await
        .unwrap();
        tokio::time::sleep(interval * 3).await;
        assert_eq!(renew_time(&leases.get("skiff-sim-2").await.unwrap()), before);
        let orphan = pods.get("orphan").await.unwrap();
        assert_eq!(orphan.status.and_then(|s| s.phase).as_deref(), Some("Pending"));
        // The other node carries on.
        let other = renew_time(&leases.get("skiff-sim-1").await.unwrap());
        wait(&leases, "skiff-sim-1", "a renewal", renewed_after(other)).await;

        assert!(sim.revive("skiff-sim-2"));
        wait(&leases, "skiff-sim-2", "a renewal after revival", renewed_after(before)).await;
        wait(&pods, "orphan", "Running", phase_is("Running")).await;
        drop(sim);
    })
    .await;
}

#[tokio::test]
async fn node_annotated_dead_stops_renewing_until_the_annotation_goes() {
    with_env(|client| async move {
        let o = opts(1);
        let interval = o.lease_interval;
        let sim = SimNodes::start(client.clone(), o).await.unwrap();
        let nodes: Api<Node> = Api::all(client.clone());
        let leases: Api<Lease> = Api::namespaced(client.clone(), "kube-node-lease");
        wait(&leases, "skiff-sim-1", "the lease", conditions::is_created()).await;
        let patch = json!({"metadata": {"annotations": {"skiff.dev/sim-dead": "true"}}});
        nodes
            .patch("skiff-sim-1", &PatchParams::default(), &Patch::Merge(&patch))
            .await
            .unwrap();
        let deadline = tokio::time::Instant::now() + TIMEOUT;
        while sim.is_alive("skiff-sim-1") != Some(false) {
            assert!(
                tokio::time::Instant::now() < deadline,
                "the sim never saw the annotation"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        tokio::time::sleep(interval).await;
        let before = renew_time(&leases.get("skiff-sim-1").await.unwrap());
        tokio::time::sleep(interval * 3).await;
        assert_eq!(renew_time(&leases.get("skiff-sim-1").await.unwrap()), before);

        let patch = json!({"metadata": {"annotations": {"skiff.dev/sim-dead": null}}});
        nodes
            .patch("skiff-sim-1", &PatchParams::default(), &Patch::Merge(&patch))
            .await
            .unwrap();
        wait(&leases, "skiff-sim-1", "a renewal after revival", renewed_after(before)).await;
        drop(sim);
    })
    .await;
}

#[tokio::test]
async fn node_marked_not_ready_by_others_is_reported_ready_again() {
    with_env(|client| async move {
        let sim = SimNodes::start(client.clone(), opts(1)).await.unwrap();
        let nodes: Api<Node> = Api::all(client.clone());
        // As the node lifecycle controller does when a lease expires.
        let patch = json!({"status": {"conditions": [{"type": "Ready", "status": "Unknown",
        "reason": "NodeStatusUnknown", "message": "Kubelet stopped posting node status."}]}});
        nodes
            .patch_status("skiff-sim-1", &PatchParams::default(), &Patch::Strategic(&patch))
            .await
            .unwrap();
        wait(&nodes, "skiff-sim-1", "Ready again", |n: Option<&Node>| {
            n.and_then(|n| n.status.as_ref()?.conditions.as_ref())
                .is_some_and(|cs| cs.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
        })
        .await;
        drop(sim);
    })
    .await;
}
