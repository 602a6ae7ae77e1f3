//! The Endpoints and EndpointSlice controllers on an in-process API server, with pods whose
//! addresses and readiness the test sets itself: ready and not-ready addresses, named target
//! ports resolved per pod, readiness flips, relabelled and deleted pods, terminating pods,
//! publishNotReadyAddresses, headless services with pod hostnames, and a deleted service.

use std::time::Duration;

use k8s_openapi::api::core::v1::{Endpoints, Pod, Service};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use kube::api::{DeleteParams, ListParams, Patch, PatchParams, PostParams};
use kube::{Api, Client, ResourceExt};
use serde_json::{json, Value};

const T: Duration = Duration::from_secs(30);

async fn wait_for<F, Fut>(what: &str, mut f: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + T;
    while !f().await {
        assert!(tokio::time::Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

struct Cluster {
    client: Client,
    _running: skiff_apiserver::Running,
    _dir: tempfile::TempDir,
}

impl Cluster {
    async fn start() -> Cluster {
        let dir = tempfile::tempdir().unwrap();
        let running = skiff_apiserver::start(skiff_apiserver::Config::loopback(dir.path()))
            .await
            .unwrap();
        let client = running.client();
        let informers = skiff_controllers::informer::Informers::new(client.clone());
        let i = informers.clone();
        tokio::spawn(async move { skiff_controllers::endpoints::run_endpoints(i).await });
        tokio::spawn(async move { skiff_controllers::endpoints::run_slices(informers).await });
        let c = client.clone();
        tokio::spawn(async move { skiff_controllers::gc::run(c).await });
        Cluster {
            client,
            _running: running,
            _dir: dir,
        }
    }

    fn pods(&self) -> Api<Pod> {
        Api::namespaced(self.client.clone(), "default")
    }

    /// A pod with `labels` and container ports, given `ip` and readiness by status patch.
    async fn pod(&self, name: &str, labels: Value, ports: Value, ip: &str, ready: bool, extra: Value) {
        let mut p = json!({
            "metadata": {"name": name, "labels": labels},
            "spec": {"containers": [{"name": "c", "image": "busybox", "ports": ports}], "nodeName": "node-1"},
        });
        merge(&mut p["spec"], extra);
        let p: Pod = serde_json::from_value(p).unwrap();
        self.pods().create(&PostParams::default(), &p).await.unwrap();
        self.set_status(name, ip, ready).await;
    }

    async fn set_status(&self, name: &str, ip: &str, ready: bool) {
        let status = if ready { "True" } else { "False" };
        let patch = json!({"status": {"phase": "Running", "podIP": ip, "podIPs": [{"ip": ip}],
            "conditions": [{"type": "Ready", "status": status}]}});
        self.pods()
            .patch_status(name, &PatchParams::default(), &Patch::Merge(patch))
            .await
            .unwrap();
    }

    async fn service(&self, spec: Value) -> Service {
        let s: Service = serde_json::from_value(spec).unwrap();
        Api::namespaced(self.client.clone(), "default")
            .create(&PostParams::default(), &s)
            .await
            .unwrap()
    }

    /// (ready IPs, not-ready IPs, ports) of the service's Endpoints, all sorted.
    async fn endpoints(&self, name: &str) -> Option<(Vec<String>, Vec<String>, Vec<i32>)> {
        let ep = Api::<Endpoints>::namespaced(self.client.clone(), "default")
            .get_opt(name)
            .await
            .unwrap()?;
        let mut out = (Vec::new(), Vec::new(), Vec::new());
        for s in ep.subsets.unwrap_or_default() {
            out.0.extend(s.addresses.unwrap_or_default().into_iter().map(|a| a.ip));
            out.1
                .extend(s.not_ready_addresses.unwrap_or_default().into_iter().map(|a| a.ip));
            out.2.extend(s.ports.unwrap_or_default().into_iter().map(|p| p.port));
        }
        out.0.sort();
        out.1.sort();
        out.2.sort();
        out.2.dedup();
        Some(out)
    }

    async fn slices(&self, svc: &str) -> Vec<EndpointSlice> {
        Api::<EndpointSlice>::namespaced(self.client.clone(), "default")
            .list(&ListParams::default().labels(&format!("kubernetes.io/service-name={svc}")))
            .await
            .unwrap()
            .items
    }

    /// (ip, ready, serving, terminating) of every endpoint in the service's slices, by IP.
    async fn slice_endpoints(&self, svc: &str) -> Vec<(String, bool, bool, bool)> {
        let mut v: Vec<_> = self
            .slices(svc)
            .await
            .into_iter()
            .flat_map(|s| s.endpoints)
            .map(|e| {
                let c = e.conditions.unwrap_or_default();
                (
                    e.addresses[0].clone(),
                    c.ready == Some(true),
                    c.serving == Some(true),
                    c.terminating == Some(true),
                )
            })
            .collect();
        v.sort();
        v
    }
}

fn merge(into: &mut Value, from: Value) {
    if let (Some(a), Value::Object(b)) = (into.as_object_mut(), from) {
        a.extend(b);
    }
}

fn ips(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| s.to_string()).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn endpoints_follow_pods_readiness_labels_and_ports() {
    let c = Cluster::start().await;
    let web = json!({"app": "web"});
    c.pod(
        "a",
        web.clone(),
        json!([{"name": "http", "containerPort": 8080}]),
        "10.42.0.2",
        true,
        json!({}),
    )
    .await;
    c.pod(
        "b",
        web.clone(),
        json!([{"name": "http", "containerPort": 9090}]),
        "10.42.0.3",
        false,
        json!({}),
    )
    .await;
    // Selected, but without the named port: not an endpoint.
    c.pod(
        "c",
        web.clone(),
        json!([{"name": "admin", "containerPort": 80}]),
        "10.42.0.4",
        true,
        json!({}),
    )
    .await;
    c.pod(
        "other",
        json!({"app": "db"}),
        json!([{"name": "http", "containerPort": 80}]),
        "10.42.0.5",
        true,
        json!({}),
    )
    .await;
    let svc = c
        .service(json!({"metadata": {"name": "web", "labels": {"tier": "front"}},
            "spec": {"selector": {"app": "web"}, "ports": [{"name": "web", "port": 80, "targetPort": "http"}]}}))
        .await;

    wait_for("a ready, b not ready", || async {
        c.endpoints("web").await == Some((ips(&["10.42.0.2"]), ips(&["10.42.0.3"]), vec![8080, 9090]))
    })
    .await;
    let ep = Api::<Endpoints>::namespaced(c.client.clone(), "default")
        .get("web")
        .await
        .unwrap();
    assert_eq!(ep.labels().get("tier").map(String::as_str), Some("front"));
    let first = &ep.subsets.as_ref().unwrap()[0];
    let addr = first
        .addresses
        .iter()
        .chain(&first.not_ready_addresses)
        .flatten()
        .next()
        .unwrap();
    let target = addr.target_ref.as_ref().unwrap();
    assert_eq!(
        (target.kind.as_deref(), addr.node_name.as_deref()),
        (Some("Pod"), Some("node-1"))
    );
    assert_eq!(first.ports.as_ref().unwrap()[0].name.as_deref(), Some("web"));

    wait_for("slice conditions", || async {
        c.slice_endpoints("web").await
            == vec![
                ("10.42.0.2".into(), true, true, false),
                ("10.42.0.3".into(), false, false, false),
            ]
    })
    .await;
    let slices = c.slices("web").await;
    assert_eq!(slices.len(), 2, "one slice per distinct port set");
    for s in &slices {
        assert!(s.name_any().starts_with("web-"), "{}", s.name_any());
        assert_eq!(s.address_type, "IPv4");
        assert_eq!(
            s.labels()
                .get("endpointslice.kubernetes.io/managed-by")
                .map(String::as_str),
            Some("endpointslice-controller.k8s.io")
        );
        let owner = &s.owner_references()[0];
        assert_eq!(
            (owner.kind.as_str(), owner.uid.as_str()),
            ("Service", svc.uid().unwrap().as_str())
        );
    }

    // Readiness flips both ways.
    c.set_status("b", "10.42.0.3", true).await;
    c.set_status("a", "10.42.0.2", false).await;
    wait_for("b ready, a not", || async {
        c.endpoints("web").await == Some((ips(&["10.42.0.3"]), ips(&["10.42.0.2"]), vec![8080, 9090]))
    })
    .await;

    // Relabelled out of the selector: gone from both.
    c.pods()
        .patch(
            "a",
            &PatchParams::default(),
            &Patch::Merge(json!({"metadata": {"labels": {"app": "x"}}})),
        )
        .await
        .unwrap();
    wait_for("a released", || async {
        c.endpoints("web").await == Some((ips(&["10.42.0.3"]), vec![], vec![9090]))
            && c.slice_endpoints("web").await == vec![("10.42.0.3".into(), true, true, false)]
    })
    .await;
    wait_for("the emptied slice removed", || async {
        c.slices("web").await.len() == 1
    })
    .await;

    // A terminating pod: out of Endpoints, still serving but not ready in its slice.
    c.pods()
        .patch(
            "b",
            &PatchParams::default(),
            &Patch::Merge(json!({"metadata": {"finalizers": ["test/hold"]}})),
        )
        .await
        .unwrap();
    c.pods().delete("b", &DeleteParams::default()).await.unwrap();
    wait_for("b terminating", || async {
        c.endpoints("web").await == Some((vec![], vec![], vec![]))
            && c.slice_endpoints("web").await == vec![("10.42.0.3".into(), false, true, true)]
    })
    .await;
    c.pods()
        .patch(
            "b",
            &PatchParams::default(),
            &Patch::Merge(json!({"metadata": {"finalizers": null}})),
        )
        .await
        .unwrap();
    wait_for("no endpoints left, one placeholder slice", || async {
        let s = c.slices("web").await;
        s.len() == 1 && s[0].endpoints.is_empty() && s[0].ports.is_none()
    })
    .await;

    // The service goes: its Endpoints and (through the garbage collector) its slices go too.
    Api::<Service>::namespaced(c.client.clone(), "default")
        .delete("web", &DeleteParams::default())
        .await
        .unwrap();
    wait_for("endpoints and slices deleted", || async {
        c.endpoints("web").await.is_none() && c.slices("web").await.is_empty()
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn headless_and_publish_not_ready_services() {
    let c = Cluster::start().await;
    let labels = json!({"app": "db"});
    let identity = |n: &str| json!({"hostname": n, "subdomain": "db"});
    c.pod("db-0", labels.clone(), json!([]), "10.42.1.2", true, identity("db-0"))
        .await;
    c.pod("db-1", labels.clone(), json!([]), "10.42.1.3", false, identity("db-1"))
        .await;
    c.service(json!({"metadata": {"name": "db"}, "spec": {"clusterIP": "None", "selector": {"app": "db"}}}))
        .await;
    c.service(json!({"metadata": {"name": "db-all"},
        "spec": {"clusterIP": "None", "publishNotReadyAddresses": true, "selector": {"app": "db"},
                 "ports": [{"port": 5432}]}}))
        .await;
    // A service without a selector is left to whoever writes its endpoints.
    c.service(json!({"metadata": {"name": "manual"}, "spec": {"ports": [{"port": 80}]}}))
        .await;
    // ... and so are Endpoints written by hand without a service.
    let by_hand = |name: &str| -> Endpoints {
        serde_json::from_value(json!({"metadata": {"name": name},
            "subsets": [{"addresses": [{"ip": "10.0.0.1"}], "ports": [{"port": 80}]}]}))
        .unwrap()
    };
    let eps: Api<Endpoints> = Api::namespaced(c.client.clone(), "default");
    for name in ["manual", "orphan"] {
        eps.create(&PostParams::default(), &by_hand(name)).await.unwrap();
    }

    wait_for("headless endpoints without ports", || async {
        c.endpoints("db").await == Some((ips(&["10.42.1.2"]), ips(&["10.42.1.3"]), vec![]))
    })
    .await;
    let ep = Api::<Endpoints>::namespaced(c.client.clone(), "default")
        .get("db")
        .await
        .unwrap();
    assert_eq!(
        ep.labels().get("service.kubernetes.io/headless").map(String::as_str),
        Some("")
    );
    let hostnames: Vec<Option<String>> = ep.subsets.unwrap()[0]
        .addresses
        .iter()
        .chain(&None)
        .flatten()
        .map(|a| a.hostname.clone())
        .collect();
    assert_eq!(
        hostnames,
        vec![Some("db-0".to_string())],
        "hostname only where subdomain names the service"
    );

    wait_for("unready pods published", || async {
        c.endpoints("db-all").await == Some((ips(&["10.42.1.2", "10.42.1.3"]), vec![], vec![5432]))
            && c.slice_endpoints("db-all").await
                == vec![
                    ("10.42.1.2".into(), true, true, false),
                    ("10.42.1.3".into(), true, false, false),
                ]
    })
    .await;
    let all = Api::<Endpoints>::namespaced(c.client.clone(), "default")
        .get("db-all")
        .await
        .unwrap();
    assert!(
        all.subsets.unwrap()[0]
            .addresses
            .iter()
            .flatten()
            .all(|a| a.hostname.is_none()),
        "subdomain names another service"
    );
    // An unnamed port is named "" in slices, as upstream writes it (kubectl reads the name).
    let slice = &c.slices("db-all").await[0];
    assert_eq!(slice.ports.as_ref().unwrap()[0].name.as_deref(), Some(""));
    for name in ["manual", "orphan"] {
        let kept = c.endpoints(name).await;
        assert_eq!(kept, Some((ips(&["10.0.0.1"]), vec![], vec![80])), "{name}");
    }
    assert!(c.slices("manual").await.is_empty());
}
