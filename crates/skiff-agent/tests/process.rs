//! The process runtime against an in-process API server: real processes, volumes, env,
//! restarts with back-off, probes, graceful deletion, status as kubelet reports it, and the
//! kubelet logs endpoint.

use std::time::Duration;

use http_body_util::BodyExt;
use k8s_openapi::api::core::v1::{ConfigMap, ContainerStatus, Node, Pod, Secret};
use k8s_openapi::api::events::v1::Event;
use kube::api::{Api, DeleteParams, ListParams, PostParams};
use kube::runtime::wait::{await_condition, Condition};
use kube::Client;
use serde_json::{json, Value};
use skiff_agent::process::{self, ProcessOptions};

const TIMEOUT: Duration = Duration::from_secs(25);
const NS: &str = "default";

struct Env {
    dir: tempfile::TempDir,
    running: Option<skiff_apiserver::Running>,
    client: Client,
    agent: tokio::task::JoinHandle<()>,
    node: String,
    mounts: String,
}

impl Env {
    /// An API server and one process node named `node`.
    async fn start(node: &str, tweak: impl FnOnce(&mut ProcessOptions)) -> Env {
        let dir = tempfile::tempdir().unwrap();
        let running = skiff_apiserver::start(skiff_apiserver::Config::loopback(dir.path().join("server")))
            .await
            .unwrap();
        let client = skiff_apiserver::local::client(running.server.clone());
        let mut opts = ProcessOptions::new(node, dir.path().join("agent"));
        opts.cluster_ca = Some(skiff_agent::kubelet_tls::ClusterCa {
            cert_pem: running.ca_pem.clone(),
            key_pem: Some(running.ca_key_pem.clone()),
        });
        opts.backoff_base = Duration::from_millis(500);
        opts.backoff_max = Duration::from_secs(4);
        opts.volume_resync = Duration::from_secs(1);
        tweak(&mut opts);
        let c = client.clone();
        let agent = tokio::spawn(async move {
            if let Err(e) = process::run(c, opts).await {
                panic!("process node stopped: {e}");
            }
        });
        let mounts = format!("/tmp/skiff-process-test-{}-{node}", std::process::id());
        Env {
            dir,
            running: Some(running),
            client,
            agent,
            node: node.to_string(),
            mounts,
        }
    }

    fn pods(&self) -> Api<Pod> {
        Api::namespaced(self.client.clone(), NS)
    }

    /// Creates a pod bound to this node from the spec's JSON (without nodeName).
    async fn create(&self, name: &str, mut spec: Value) -> Pod {
        spec["nodeName"] = json!(self.node);
        let pod: Pod = serde_json::from_value(json!({
            "apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": name, "namespace": NS},
            "spec": spec,
        }))
        .unwrap();
        self.pods().create(&PostParams::default(), &pod).await.unwrap()
    }

    async fn wait(&self, name: &str, what: &str, cond: impl Fn(&Pod) -> bool + Send + 'static) -> Pod {
        let cond = move |p: Option<&Pod>| p.is_some_and(&cond);
        wait(&self.pods(), name, what, cond).await
    }

    /// The kubelet port the node announces.
    async fn kubelet_port(&self) -> u16 {
        let nodes: Api<Node> = Api::all(self.client.clone());
        let deadline = tokio::time::Instant::now() + TIMEOUT;
        loop {
            if let Some(n) = nodes.get_opt(&self.node).await.unwrap() {
                let port = n
                    .status
                    .unwrap()
                    .daemon_endpoints
                    .unwrap()
                    .kubelet_endpoint
                    .unwrap()
                    .port;
                return port as u16;
            }
            assert!(tokio::time::Instant::now() < deadline, "node never registered");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// GET on the kubelet API with the API server's client certificate, verifying the agent's
    /// CA-signed serving certificate: status and body.
    async fn kubelet_get(&self, path_and_query: &str) -> (u16, String) {
        use rustls_pki_types::pem::PemObject;
        use rustls_pki_types::{CertificateDer, PrivateKeyDer, ServerName};
        let port = self.kubelet_port().await;
        let pki = self.dir.path().join("server/pki");
        let read = |f: &str| std::fs::read(pki.join(f)).unwrap();
        let mut roots = rustls::RootCertStore::empty();
        roots
            .add(CertificateDer::from_pem_slice(&read("ca.crt")).unwrap())
            .unwrap();
        let certs: Vec<_> = CertificateDer::pem_slice_iter(&read("kubelet-client.crt"))
            .collect::<Result<_, _>>()
            .unwrap();
        let key = PrivateKeyDer::from_pem_slice(&read("kubelet-client.key")).unwrap();
        let cfg =
            rustls::ClientConfig::builder_with_provider(std::sync::Arc::new(rustls::crypto::ring::default_provider()))
                .with_safe_default_protocol_versions()
                .unwrap()
                .with_root_certificates(roots)
                .with_client_auth_cert(certs, key)
                .unwrap();
        let tcp = tokio::net::TcpStream::connect(("127.0.0.1", port)).await.unwrap();
        let tls = tokio_rustls::TlsConnector::from(std::sync::Arc::new(cfg))
            .connect(ServerName::try_from("127.0.0.1").unwrap(), tcp)
            .await
            .unwrap();
        let (mut sender, conn) = hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(tls))
            .await
            .unwrap();
        tokio::spawn(conn);
        let req = http::Request::get(path_and_query)
            .header(http::header::HOST, "127.0.0.1")
            .body(http_body_util::Empty::<bytes::Bytes>::new())
            .unwrap();
        let resp = tokio::time::timeout(TIMEOUT, sender.send_request(req))
            .await
            .unwrap()
            .unwrap();
        let status = resp.status().as_u16();
        let body = tokio::time::timeout(TIMEOUT, resp.into_body().collect())
            .await
            .expect("body did not end")
            .unwrap()
            .to_bytes();
        (status, String::from_utf8_lossy(&body).into_owned())
    }

    async fn logs(&self, pod: &str, container: &str, query: &str) -> (u16, String) {
        self.kubelet_get(&format!("/containerLogs/{NS}/{pod}/{container}?{query}"))
            .await
    }

    /// Waits until the container's current log contains `text`.
    async fn wait_log(&self, pod: &str, container: &str, text: &str) -> String {
        let deadline = tokio::time::Instant::now() + TIMEOUT;
        loop {
            let (code, body) = self.logs(pod, container, "").await;
            if code == 200 && body.contains(text) {
                return body;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "{pod}/{container}: log never contained {text:?}; last: {code} {body}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Waits for an event about `pod` with `reason` whose note contains `text`.
    async fn wait_event(&self, pod: &str, reason: &str, text: &str) -> Event {
        let events: Api<Event> = Api::namespaced(self.client.clone(), NS);
        let deadline = tokio::time::Instant::now() + TIMEOUT;
        loop {
            let list = events.list(&ListParams::default()).await.unwrap();
            let mut seen = Vec::new();
            for e in list.items {
                let about = e.regarding.as_ref().and_then(|r| r.name.clone()).unwrap_or_default();
                if about != pod {
                    continue;
                }
                let note = e.note.clone().unwrap_or_default();
                if e.reason.as_deref() == Some(reason) && note.contains(text) {
                    return e;
                }
                seen.push(format!("{:?}: {note}", e.reason));
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "{pod}: no {reason} event with {text:?}; seen: {seen:#?}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    async fn stop(mut self) {
        self.agent.abort();
        let _ = (&mut self.agent).await;
        let running = self.running.take();
        let _ = std::fs::remove_dir_all(&self.mounts);
        let Env { dir, client, .. } = self;
        drop(client);
        if let Some(r) = running {
            r.shutdown().await;
        }
        drop(dir);
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

fn statuses(p: &Pod) -> Vec<ContainerStatus> {
    p.status
        .as_ref()
        .and_then(|s| s.container_statuses.clone())
        .unwrap_or_default()
}

fn status_of(p: &Pod, name: &str) -> Option<ContainerStatus> {
    statuses(p).into_iter().find(|c| c.name == name)
}

fn phase(p: &Pod) -> String {
    p.status.as_ref().and_then(|s| s.phase.clone()).unwrap_or_default()
}

fn condition(p: &Pod, ty: &str) -> Option<String> {
    p.status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .and_then(|c| c.iter().find(|c| c.type_ == ty))
        .map(|c| c.status.clone())
}

fn running_ready(p: &Pod) -> bool {
    phase(p) == "Running" && statuses(p).iter().all(|c| c.ready)
}

fn sh(script: &str) -> Value {
    json!(["sh", "-c", script])
}

#[tokio::test]
async fn two_containers_share_an_empty_dir_and_see_the_pod_hostname() {
    let env = Env::start("proc-emptydir", |_| {}).await;
    let m = format!("{}/data", env.mounts);
    env.create(
        "shared",
        json!({
            "volumes": [{"name": "data", "emptyDir": {}}],
            "containers": [
                {"name": "writer", "image": "busybox", "command": sh("echo hello > $(DIR)/msg; sleep 3600"),
                 "env": [{"name": "DIR", "value": m}],
                 "volumeMounts": [{"name": "data", "mountPath": m}]},
                {"name": "reader", "image": "busybox",
                 "command": sh(&format!("while [ ! -f {m}/msg ]; do sleep 0.1; done; cat {m}/msg; hostname; grep shared /etc/hosts; sleep 3600")),
                 "volumeMounts": [{"name": "data", "mountPath": m}]},
            ],
        }),
    )
    .await;
    let p = env.wait("shared", "Running and ready", running_ready).await;
    let st = p.status.clone().unwrap();
    assert_eq!(st.pod_ip.as_deref(), Some("127.0.0.1"));
    assert_eq!(st.host_ip.as_deref(), Some("127.0.0.1"));
    assert!(st.start_time.is_some());
    assert_eq!(condition(&p, "Ready").as_deref(), Some("True"));
    assert_eq!(condition(&p, "PodReadyToStartContainers").as_deref(), Some("True"));
    let w = status_of(&p, "writer").unwrap();
    assert!(w.container_id.unwrap().starts_with("process://"));
    assert_eq!(w.started, Some(true));
    let log = env.wait_log("shared", "reader", "hello").await;
    if process_is_root() {
        // Own UTS and mount namespaces: hostname = pod name, the pod's /etc/hosts.
        env.wait_log("shared", "reader", "127.0.0.1\tshared").await;
        assert!(log.lines().nth(1).is_none_or(|l| l == "shared"), "{log}");
    }
    env.wait_event(
        "shared",
        "Pulled",
        "Container image \"busybox\" already present on machine",
    )
    .await;
    env.wait_event("shared", "Created", "Created container: writer").await;
    env.wait_event("shared", "Started", "Started container reader").await;
    env.stop().await;
}

fn process_is_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .unwrap_or_default()
        .lines()
        .find(|l| l.starts_with("Uid:"))
        .is_some_and(|l| l.split_whitespace().nth(2) == Some("0"))
}

#[tokio::test]
async fn init_containers_run_in_order_before_the_containers() {
    let env = Env::start("proc-init", |_| {}).await;
    let m = format!("{}/work", env.mounts);
    env.create(
        "init",
        json!({
            "volumes": [{"name": "work", "emptyDir": {}}],
            "initContainers": [
                {"name": "first", "image": "busybox", "command": sh(&format!("sleep 0.3; echo first >> {m}/order")),
                 "volumeMounts": [{"name": "work", "mountPath": m}]},
                {"name": "second", "image": "busybox", "command": sh(&format!("echo second >> {m}/order")),
                 "volumeMounts": [{"name": "work", "mountPath": m}]},
            ],
            "containers": [
                {"name": "main", "image": "busybox", "command": sh(&format!("cat {m}/order; sleep 3600")),
                 "volumeMounts": [{"name": "work", "mountPath": m}]},
            ],
        }),
    )
    .await;
    let p = env
        .wait("init", "Pending with init running", |p| {
            phase(p) == "Pending" && condition(p, "Initialized").as_deref() == Some("False")
        })
        .await;
    let init = p.status.unwrap().init_container_statuses.unwrap();
    assert_eq!(init.len(), 2);
    let p = env.wait("init", "Running", running_ready).await;
    for s in p.status.clone().unwrap().init_container_statuses.unwrap() {
        let t = s
            .state
            .unwrap()
            .terminated
            .unwrap_or_else(|| panic!("{} not terminated", s.name));
        assert_eq!((t.exit_code, t.reason.as_deref()), (0, Some("Completed")), "{}", s.name);
        assert!(s.ready);
    }
    assert_eq!(condition(&p, "Initialized").as_deref(), Some("True"));
    env.wait_log("init", "main", "first\nsecond\n").await;
    env.stop().await;
}

#[tokio::test]
async fn env_and_volumes_from_configmap_secret_and_downward_api() {
    let env = Env::start("proc-env", |_| {}).await;
    let cms: Api<ConfigMap> = Api::namespaced(env.client.clone(), NS);
    cms.create(
        &PostParams::default(),
        &serde_json::from_value(
            json!({"metadata": {"name": "cfg"}, "data": {"color": "blue", "size": "L", "1st": "x"}}),
        )
        .unwrap(),
    )
    .await
    .unwrap();
    let secrets: Api<Secret> = Api::namespaced(env.client.clone(), NS);
    secrets
        .create(
            &PostParams::default(),
            &serde_json::from_value(json!({"metadata": {"name": "creds"}, "stringData": {"password": "s3cret"}}))
                .unwrap(),
        )
        .await
        .unwrap();
    let m = env.mounts.clone();
    env.create(
        "envpod",
        json!({
            "serviceAccountName": "default",
            "volumes": [
                {"name": "cfg", "configMap": {"name": "cfg", "items": [{"key": "color", "path": "sub/colour"}]}},
                {"name": "sec", "secret": {"secretName": "creds", "defaultMode": 256}},
                {"name": "info", "downwardAPI": {"items": [
                    {"path": "labels", "fieldRef": {"fieldPath": "metadata.labels"}},
                    {"path": "name", "fieldRef": {"fieldPath": "metadata.name"}}]}},
            ],
            "containers": [{
                "name": "c", "image": "busybox",
                "resources": {"limits": {"memory": "64Mi", "cpu": "500m"}},
                "command": sh("echo COLOR=$COLOR; echo PASS=$PASS; echo NAME=$NAME NS=$NS NODE=$NODE IP=$IP; \
                               echo UID_SET=${UID_:+yes} LABEL=$LABEL MEM=$MEM CPU=$CPU; echo CFG_size=$CFG_size; \
                               echo EXPANDED=$EXPANDED; echo ARG=$0; echo size=$size; echo SA=$SA; sleep 3600"),
                "args": ["$(NAME)-arg"],
                "envFrom": [{"configMapRef": {"name": "cfg"}, "prefix": "CFG_"}, {"configMapRef": {"name": "cfg"}},
                            {"secretRef": {"name": "missing", "optional": true}}],
                "env": [
                    {"name": "COLOR", "valueFrom": {"configMapKeyRef": {"name": "cfg", "key": "color"}}},
                    {"name": "PASS", "valueFrom": {"secretKeyRef": {"name": "creds", "key": "password"}}},
                    {"name": "NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
                    {"name": "NS", "valueFrom": {"fieldRef": {"fieldPath": "metadata.namespace"}}},
                    {"name": "UID_", "valueFrom": {"fieldRef": {"fieldPath": "metadata.uid"}}},
                    {"name": "LABEL", "valueFrom": {"fieldRef": {"fieldPath": "metadata.labels['app']"}}},
                    {"name": "NODE", "valueFrom": {"fieldRef": {"fieldPath": "spec.nodeName"}}},
                    {"name": "SA", "valueFrom": {"fieldRef": {"fieldPath": "spec.serviceAccountName"}}},
                    {"name": "IP", "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}},
                    {"name": "MEM", "valueFrom": {"resourceFieldRef": {"resource": "limits.memory", "divisor": "1Mi"}}},
                    {"name": "CPU", "valueFrom": {"resourceFieldRef": {"resource": "limits.cpu", "divisor": "1m"}}},
                    {"name": "EXPANDED", "value": "$(COLOR)-$(MISSING)-$$(COLOR)"},
                ],
                "volumeMounts": [
                    {"name": "cfg", "mountPath": format!("{m}/cfg")},
                    {"name": "sec", "mountPath": format!("{m}/sec")},
                    {"name": "info", "mountPath": format!("{m}/info")},
                ],
            }],
        }),
    )
    .await;
    // Labels are added after creation so the downward API sees them at start.
    let p = env.wait("envpod", "Running", running_ready).await;
    let log = env.wait_log("envpod", "c", "SA=").await;
    let uid = p.metadata.uid.clone().unwrap();
    for want in [
        "COLOR=blue",
        "PASS=s3cret",
        "NAME=envpod NS=default NODE=proc-env IP=127.0.0.1",
        "UID_SET=yes",
        "MEM=64 CPU=500",
        "CFG_size=L",
        "EXPANDED=blue-$(MISSING)-$(COLOR)",
        "ARG=envpod-arg",
        "size=L",
        "SA=default",
    ] {
        assert!(log.contains(want), "missing {want:?} in:\n{log}");
    }
    env.wait_event("envpod", "InvalidEnvironmentVariableNames", "Keys [1st]")
        .await;
    // The volumes' files, as the container would see them at their mountPath.
    let vols = env.dir.path().join("agent/pods").join(&uid).join("volumes");
    assert_eq!(std::fs::read_to_string(vols.join("cfg/sub/colour")).unwrap(), "blue");
    assert!(!vols.join("cfg/size").exists());
    assert_eq!(std::fs::read_to_string(vols.join("sec/password")).unwrap(), "s3cret");
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(vols.join("sec/password"))
        .unwrap()
        .permissions()
        .mode()
        & 0o777;
    assert_eq!(mode, 0o400);
    assert_eq!(std::fs::read_to_string(vols.join("info/name")).unwrap(), "envpod");
    if process_is_root() {
        // cgroup limits: 500m → 50 ms per 100 ms period; 64 Mi memory.
        // The agent's cgroup directory is the node name plus a hash of its data directory.
        let node_dir = std::fs::read_dir("/sys/fs/cgroup/cpu/skiff")
            .unwrap()
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .find(|n| n.starts_with("proc-env-"))
            .expect("the agent's cgroup directory");
        let rel = format!("skiff/{node_dir}/pod{uid}/c-0");
        let quota = std::fs::read_to_string(format!("/sys/fs/cgroup/cpu/{rel}/cpu.cfs_quota_us")).unwrap();
        assert_eq!(quota.trim(), "50000");
        let mem = std::fs::read_to_string(format!("/sys/fs/cgroup/memory/{rel}/memory.limit_in_bytes")).unwrap();
        assert_eq!(mem.trim(), (64 * 1024 * 1024).to_string());
    }
    env.stop().await;
}

#[tokio::test]
async fn a_crashing_container_reaches_crash_loop_back_off() {
    let env = Env::start("proc-crash", |_| {}).await;
    let created = env
        .create(
            "crash",
            json!({"containers": [{"name": "c", "image": "busybox", "command": sh("echo crashing; exit 1")}]}),
        )
        .await;
    let uid = created.metadata.uid.unwrap();
    let p = env
        .wait("crash", "CrashLoopBackOff after 2 restarts", |p| {
            status_of(p, "c").is_some_and(|c| {
                c.restart_count >= 2
                    && c.state
                        .and_then(|s| s.waiting)
                        .is_some_and(|w| w.reason.as_deref() == Some("CrashLoopBackOff"))
            })
        })
        .await;
    assert_eq!(phase(&p), "Running");
    let c = status_of(&p, "c").unwrap();
    let w = c.state.unwrap().waiting.unwrap();
    let msg = w.message.unwrap();
    assert!(
        msg.starts_with("back-off ")
            && msg.ends_with(&format!("restarting failed container=c pod=crash_default({uid})")),
        "{msg}"
    );
    let last = c.last_state.unwrap().terminated.unwrap();
    assert_eq!((last.exit_code, last.reason.as_deref()), (1, Some("Error")));
    assert!(last.started_at.is_some() && last.finished_at.is_some());
    assert_eq!(condition(&p, "Ready").as_deref(), Some("False"));
    env.wait_event(
        "crash",
        "BackOff",
        &format!("Back-off restarting failed container c in pod crash_default({uid})"),
    )
    .await;
    // The count keeps growing.
    env.wait("crash", "4 restarts", |p| {
        status_of(p, "c").is_some_and(|c| c.restart_count >= 4)
    })
    .await;
    let (code, body) = env.logs("crash", "c", "previous=true").await;
    assert_eq!((code, body.as_str()), (200, "crashing\n"));
    env.stop().await;
}

#[tokio::test]
async fn a_failing_liveness_probe_restarts_the_container() {
    let env = Env::start("proc-live", |_| {}).await;
    env.create(
        "live",
        json!({"terminationGracePeriodSeconds": 1, "containers": [{
            "name": "c", "image": "busybox",
            "command": sh("touch healthy; sleep 1; rm healthy; sleep 3600"),
            "livenessProbe": {"exec": {"command": ["cat", "healthy"]}, "periodSeconds": 1, "failureThreshold": 1},
        }]}),
    )
    .await;
    let p = env
        .wait("live", "a restart", |p| {
            status_of(p, "c").is_some_and(|c| c.restart_count >= 1)
        })
        .await;
    let last = status_of(&p, "c").unwrap().last_state.unwrap().terminated.unwrap();
    assert_ne!(last.exit_code, 0);
    env.wait_event("live", "Unhealthy", "Liveness probe failed: cat").await;
    env.wait_event(
        "live",
        "Killing",
        "Container c failed liveness probe, will be restarted",
    )
    .await;
    env.stop().await;
}

#[tokio::test]
async fn a_readiness_probe_flips_ready() {
    let env = Env::start("proc-ready", |_| {}).await;
    env.create(
        "ready",
        json!({"containers": [{
            "name": "c", "image": "busybox",
            "command": sh("sleep 1; touch ready; sleep 2; rm ready; sleep 3600"),
            "readinessProbe": {"exec": {"command": ["test", "-f", "ready"]}, "periodSeconds": 1, "failureThreshold": 1},
        }]}),
    )
    .await;
    let p = env
        .wait("ready", "running, not ready", |p| {
            phase(p) == "Running" && status_of(p, "c").is_some_and(|c| !c.ready)
        })
        .await;
    assert_eq!(condition(&p, "ContainersReady").as_deref(), Some("False"));
    let p = env.wait("ready", "ready", running_ready).await;
    assert_eq!(condition(&p, "Ready").as_deref(), Some("True"));
    let p = env
        .wait("ready", "unready again", |p| {
            status_of(p, "c").is_some_and(|c| !c.ready)
        })
        .await;
    assert_eq!(condition(&p, "Ready").as_deref(), Some("False"));
    assert_eq!(status_of(&p, "c").unwrap().restart_count, 0);
    env.wait_event("ready", "Unhealthy", "Readiness probe failed").await;
    env.stop().await;
}

#[tokio::test]
async fn deletion_sends_sigterm_then_sigkill_after_the_grace_period() {
    let env = Env::start("proc-delete", |_| {}).await;
    let marker = env.dir.path().join("polite-got-term");
    env.create(
        "graceful",
        json!({"terminationGracePeriodSeconds": 2, "containers": [
            {"name": "polite", "image": "busybox",
             "command": sh(&format!("trap 'echo bye > {}; exit 0' TERM; while :; do sleep 0.1; done", marker.display()))},
            {"name": "stubborn", "image": "busybox", "command": sh("trap '' TERM; while :; do sleep 0.1; done")},
        ]}),
    )
    .await;
    let p = env.wait("graceful", "Running", running_ready).await;
    let uid = p.metadata.uid.unwrap();
    let t0 = std::time::Instant::now();
    env.pods().delete("graceful", &DeleteParams::default()).await.unwrap();
    let mut saw_terminating = false;
    loop {
        match env.pods().get_opt("graceful").await.unwrap() {
            Some(p) => saw_terminating |= p.metadata.deletion_timestamp.is_some(),
            None => break,
        }
        assert!(t0.elapsed() < TIMEOUT, "pod never deleted");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let took = t0.elapsed();
    assert!(saw_terminating);
    // The stubborn container ignores SIGTERM: the pod goes after the 2 s grace period (SIGKILL).
    assert!(
        took >= Duration::from_millis(1800) && took < Duration::from_secs(10),
        "{took:?}"
    );
    assert_eq!(std::fs::read_to_string(&marker).unwrap(), "bye\n");
    env.wait_event("graceful", "Killing", "Stopping container stubborn")
        .await;
    // Its directory (volumes, logs) is removed with it.
    let dir = env.dir.path().join("agent/pods").join(&uid);
    let deadline = tokio::time::Instant::now() + TIMEOUT;
    while dir.exists() {
        assert!(tokio::time::Instant::now() < deadline, "{} still exists", dir.display());
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    env.stop().await;
}

#[tokio::test]
async fn never_pods_complete_or_fail_with_their_exit_code() {
    let env = Env::start("proc-never", |_| {}).await;
    env.create(
        "done",
        json!({"restartPolicy": "Never", "containers": [{"name": "c", "image": "busybox", "command": sh("echo ok")}]}),
    )
    .await;
    env.create(
        "failed",
        json!({"restartPolicy": "Never", "containers": [{"name": "c", "image": "busybox", "command": sh("exit 3")}]}),
    )
    .await;
    let p = env.wait("done", "Succeeded", |p| phase(p) == "Succeeded").await;
    let t = status_of(&p, "c").unwrap().state.unwrap().terminated.unwrap();
    assert_eq!((t.exit_code, t.reason.as_deref()), (0, Some("Completed")));
    let ready = p
        .status
        .as_ref()
        .unwrap()
        .conditions
        .as_ref()
        .unwrap()
        .iter()
        .find(|c| c.type_ == "Ready")
        .cloned()
        .unwrap();
    assert_eq!(
        (ready.status.as_str(), ready.reason.as_deref()),
        ("False", Some("PodCompleted"))
    );
    let p = env.wait("failed", "Failed", |p| phase(p) == "Failed").await;
    let c = status_of(&p, "c").unwrap();
    let t = c.state.unwrap().terminated.unwrap();
    assert_eq!((t.exit_code, t.reason.as_deref()), (3, Some("Error")));
    assert_eq!(c.restart_count, 0);
    // A terminated container's log is still served; it has no previous instance.
    assert_eq!(env.logs("done", "c", "").await, (200, "ok\n".to_string()));
    let (code, body) = env.logs("done", "c", "previous=true").await;
    assert_eq!(code, 400);
    assert_eq!(body, "previous terminated container \"c\" in pod \"done\" not found");
    env.stop().await;
}

#[tokio::test]
async fn the_logs_endpoint_tails_limits_and_follows() {
    let env = Env::start("proc-logs", |_| {}).await;
    env.create(
        "talker",
        json!({"restartPolicy": "Never", "containers": [
            {"name": "c", "image": "busybox", "command": sh("for i in 1 2 3 4 5; do echo line $i; done; echo oops >&2; sleep 1; echo late; sleep 1; echo last")},
        ]}),
    )
    .await;
    env.wait_log("talker", "c", "oops").await;
    assert_eq!(env.logs("talker", "c", "tailLines=2").await.1, "line 5\noops\n");
    assert_eq!(env.logs("talker", "c", "limitBytes=9").await.1, "line 1\nli");
    let (_, stamped) = env.logs("talker", "c", "timestamps=true&tailLines=1").await;
    let (ts, text) = stamped.trim_end().split_once(' ').unwrap();
    assert!(ts.parse::<jiff::Timestamp>().is_ok(), "{stamped}");
    assert_eq!(text, "oops");
    let (_, since) = env.logs("talker", "c", "sinceTime=2099-01-01T00:00:00Z").await;
    assert_eq!(since, "");
    // follow streams until the container ends.
    let (code, all) = env.logs("talker", "c", "follow=true").await;
    assert_eq!(code, 200);
    assert!(all.ends_with("oops\nlate\nlast\n"), "{all}");
    let p = env.wait("talker", "Succeeded", |p| phase(p) == "Succeeded").await;
    assert_eq!(status_of(&p, "c").unwrap().restart_count, 0);
    let (code, body) = env.logs("talker", "nope", "").await;
    assert_eq!(code, 400, "{body}");
    env.stop().await;
}

#[tokio::test]
async fn a_container_without_command_is_refused() {
    let env = Env::start("proc-nocmd", |_| {}).await;
    env.create("nocmd", json!({"containers": [{"name": "web", "image": "nginx"}]}))
        .await;
    let p = env
        .wait("nocmd", "CreateContainerError", |p| {
            status_of(p, "web").is_some_and(|c| {
                c.state
                    .and_then(|s| s.waiting)
                    .is_some_and(|w| w.reason.as_deref() == Some("CreateContainerError"))
            })
        })
        .await;
    assert_eq!(phase(&p), "Pending");
    let w = status_of(&p, "web").unwrap().state.unwrap().waiting.unwrap();
    assert!(w.message.unwrap().contains("must set command"));
    let e = env.wait_event("nocmd", "Failed", "Error: no command specified").await;
    assert_eq!(e.type_.as_deref(), Some("Warning"));
    let (code, body) = env.logs("nocmd", "web", "").await;
    assert_eq!(code, 400);
    assert_eq!(
        body,
        "container \"web\" in pod \"nocmd\" is waiting to start: CreateContainerError"
    );
    env.stop().await;
}

#[tokio::test]
async fn memory_limits_oom_kill_when_root() {
    if !process_is_root() {
        return;
    }
    let env = Env::start("proc-oom", |_| {}).await;
    env.create(
        "hog",
        json!({"restartPolicy": "Never", "containers": [{
            "name": "c", "image": "busybox",
            "resources": {"limits": {"memory": "32Mi"}},
            "command": sh("x=$(head -c 200000000 /dev/zero | tr '\\0' a); echo survived"),
        }]}),
    )
    .await;
    let p = env.wait("hog", "Failed", |p| phase(p) == "Failed").await;
    let t = status_of(&p, "c").unwrap().state.unwrap().terminated.unwrap();
    assert_eq!((t.exit_code, t.reason.as_deref()), (137, Some("OOMKilled")));
    env.stop().await;
}

#[tokio::test]
async fn an_unprivileged_node_warns_about_what_it_cannot_apply() {
    let env = Env::start("proc-unpriv", |o| o.privileged = Some(false)).await;
    env.create(
        "plain",
        json!({
            "volumes": [{"name": "v", "emptyDir": {}}],
            "containers": [{"name": "c", "image": "busybox", "command": sh("pwd; sleep 3600"),
                            "volumeMounts": [{"name": "v", "mountPath": "/tmp/not-mounted"}]}],
        }),
    )
    .await;
    let p = env.wait("plain", "Running", running_ready).await;
    let e = env.wait_event("plain", "Degraded", "not running as root").await;
    assert_eq!(e.type_.as_deref(), Some("Warning"));
    assert!(e.note.unwrap().contains("/tmp/not-mounted"));
    // The working directory defaults to the pod's directory.
    let uid = p.metadata.uid.unwrap();
    env.wait_log("plain", "c", &format!("pods/{uid}")).await;
    env.stop().await;
}
