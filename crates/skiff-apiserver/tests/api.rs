//! API semantics through a real client (kube-rs) against an in-process server: watch resume
//! and expiry, selector transitions, pagination, conflicts, restart durability.

use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{Api, ListParams, PostParams, WatchEvent, WatchParams};
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::Client;
use serde_json::json;

async fn start(dir: &std::path::Path) -> (skiff_apiserver::Running, Client) {
    let cfg = skiff_apiserver::Config::loopback(dir.to_path_buf());
    let running = skiff_apiserver::start(cfg).await.unwrap();
    let kc = Kubeconfig::read_from(&running.kubeconfig).unwrap();
    let config = kube::Config::from_custom_kubeconfig(kc, &KubeConfigOptions::default())
        .await
        .unwrap();
    (running, Client::try_from(config).unwrap())
}

fn cm(name: &str, labels: serde_json::Value) -> ConfigMap {
    serde_json::from_value(json!({"metadata": {"name": name, "labels": labels}, "data": {"k": "v"}})).unwrap()
}

async fn next_event(
    s: &mut (impl futures::Stream<Item = kube::Result<WatchEvent<ConfigMap>>> + Unpin),
) -> WatchEvent<ConfigMap> {
    tokio::time::timeout(Duration::from_secs(10), s.next())
        .await
        .expect("watch event in time")
        .unwrap()
        .unwrap()
}

fn name_of(e: &WatchEvent<ConfigMap>) -> (&'static str, String) {
    match e {
        WatchEvent::Added(o) => ("ADDED", o.metadata.name.clone().unwrap()),
        WatchEvent::Modified(o) => ("MODIFIED", o.metadata.name.clone().unwrap()),
        WatchEvent::Deleted(o) => ("DELETED", o.metadata.name.clone().unwrap()),
        WatchEvent::Bookmark(_) => ("BOOKMARK", String::new()),
        WatchEvent::Error(e) => ("ERROR", e.to_string()),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watch_pagination_conflicts_and_restart() {
    let dir = tempfile::tempdir().unwrap();
    let (srv, client) = start(dir.path()).await;
    let api: Api<ConfigMap> = Api::namespaced(client.clone(), "default");
    let pp = PostParams::default();

    // Watch from a resourceVersion gets exactly the later events, in order.
    let first = api.create(&pp, &cm("a", json!({"app": "x"}))).await.unwrap();
    let rv = first.metadata.resource_version.clone().unwrap();
    api.create(&pp, &cm("b", json!({"app": "x"}))).await.unwrap();
    let mut w = api.watch(&WatchParams::default(), &rv).await.unwrap().boxed();
    assert_eq!(name_of(&next_event(&mut w).await), ("ADDED", "b".into()));

    // A selector watcher sees an object leave its selector as DELETED and return as ADDED.
    let lp = WatchParams::default().labels("app=x");
    let mut sel = api.watch(&lp, "0").await.unwrap().boxed();
    let mut initial = vec![
        name_of(&next_event(&mut sel).await),
        name_of(&next_event(&mut sel).await),
    ];
    initial.sort();
    assert_eq!(initial, vec![("ADDED", "a".into()), ("ADDED", "b".into())]);
    let patch = kube::api::Patch::Merge(json!({"metadata": {"labels": {"app": "y"}}}));
    api.patch("a", &Default::default(), &patch).await.unwrap();
    assert_eq!(name_of(&next_event(&mut sel).await), ("DELETED", "a".into()));
    let patch = kube::api::Patch::Merge(json!({"metadata": {"labels": {"app": "x"}}}));
    api.patch("a", &Default::default(), &patch).await.unwrap();
    assert_eq!(name_of(&next_event(&mut sel).await), ("ADDED", "a".into()));
    assert_eq!(name_of(&next_event(&mut w).await), ("MODIFIED", "a".into()));

    // Pagination: limit/continue walks every object once.
    for i in 0..7 {
        api.create(&pp, &cm(&format!("page-{i}"), json!({"page": "yes"})))
            .await
            .unwrap();
    }
    let mut seen = Vec::new();
    let mut lp = ListParams::default().labels("page=yes").limit(3);
    loop {
        let page = api.list(&lp).await.unwrap();
        assert!(page.items.len() <= 3);
        seen.extend(page.items.iter().map(|c| c.metadata.name.clone().unwrap()));
        match page.metadata.continue_ {
            Some(c) if !c.is_empty() => lp = lp.continue_token(&c),
            _ => break,
        }
    }
    assert_eq!(seen, (0..7).map(|i| format!("page-{i}")).collect::<Vec<_>>());

    // A stale resourceVersion is a Conflict with upstream's message.
    let mut stale = api.get("b").await.unwrap();
    api.patch(
        "b",
        &Default::default(),
        &kube::api::Patch::Merge(json!({"data": {"k": "2"}})),
    )
    .await
    .unwrap();
    stale.data = Some([("k".to_string(), "3".to_string())].into());
    let err = api.replace("b", &pp, &stale).await.unwrap_err();
    let kube::Error::Api(s) = err else {
        panic!("expected an API error")
    };
    assert_eq!((s.code, s.reason.as_str()), (409, "Conflict"));
    assert_eq!(s.message, "Operation cannot be fulfilled on configmaps \"b\": the object has been modified; please apply your changes to the latest version and try again");
    let old_rv = api.get("b").await.unwrap().metadata.resource_version.unwrap();
    drop((w, sel));
    drop(client);
    srv.shutdown().await;

    // A second server on the same directory sees every object; watching from before the
    // restart is 410 Expired (the event history is in memory).
    let (_srv2, client2) = start(dir.path()).await;
    let api2: Api<ConfigMap> = Api::namespaced(client2, "default");
    let names: Vec<String> = api2
        .list(&ListParams::default())
        .await
        .unwrap()
        .items
        .into_iter()
        .map(|c| c.metadata.name.unwrap())
        .collect();
    assert!(
        names.contains(&"a".to_string()) && names.contains(&"page-6".to_string()),
        "{names:?}"
    );
    api2.create(&pp, &cm("after-restart", json!({}))).await.unwrap();
    let mut w = api2
        .watch(&WatchParams::default(), &first.metadata.resource_version.unwrap())
        .await
        .unwrap()
        .boxed();
    match next_event(&mut w).await {
        WatchEvent::Error(e) => assert_eq!((e.code, e.reason.as_str()), (410, "Expired")),
        other => panic!("expected 410, got {:?}", name_of(&other)),
    }
    // Watching from the current revision still works after the restart.
    let mut w = api2.watch(&WatchParams::default(), &old_rv).await.unwrap().boxed();
    assert_eq!(name_of(&next_event(&mut w).await), ("ADDED", "after-restart".into()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn in_process_client_speaks_the_same_api() {
    let dir = tempfile::tempdir().unwrap();
    let (srv, _) = start(dir.path()).await;
    let client = skiff_apiserver::local::client(srv.server.clone());
    let api: Api<ConfigMap> = Api::namespaced(client, "default");
    let mut w = api.watch(&WatchParams::default(), "0").await.unwrap().boxed();
    api.create(&PostParams::default(), &cm("local", json!({})))
        .await
        .unwrap();
    assert_eq!(name_of(&next_event(&mut w).await), ("ADDED", "local".into()));
    // Server-side apply creating a Service allocates its address like a create does.
    let svcs: Api<k8s_openapi::api::core::v1::Service> = Api::namespaced(api.clone().into_client(), "default");
    let applied =
        json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "ssa"}, "spec": {"ports": [{"port": 80}]}});
    let svc = svcs
        .patch(
            "ssa",
            &kube::api::PatchParams::apply("test"),
            &kube::api::Patch::Apply(applied),
        )
        .await
        .unwrap();
    let ip = svc.spec.unwrap().cluster_ip.unwrap_or_default();
    assert!(ip.starts_with("10.43."), "{ip}");
    // A uid in a patch is a precondition.
    let patch = kube::api::Patch::Merge(json!({"metadata": {"uid": "wrong"}, "data": {"k": "x"}}));
    let err = api.patch("local", &Default::default(), &patch).await.unwrap_err();
    let kube::Error::Api(s) = err else {
        panic!("expected an API error")
    };
    assert_eq!(s.code, 409);
    assert!(
        s.message.contains("Precondition failed: UID in precondition: wrong"),
        "{}",
        s.message
    );
    let err = api.get("missing").await.unwrap_err();
    let kube::Error::Api(s) = err else {
        panic!("expected an API error")
    };
    assert_eq!(s.code, 404);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_writes_during_graceful_deletion_keep_the_pod() {
    use k8s_openapi::api::core::v1::{Node, Pod};
    let dir = tempfile::tempdir().unwrap();
    let (srv, client) = start(dir.path()).await;
    let node: Node = serde_json::from_value(json!({"metadata": {"name": "n1"}})).unwrap();
    Api::<Node>::all(client.clone())
        .create(&PostParams::default(), &node)
        .await
        .unwrap();
    let pods: Api<Pod> = Api::namespaced(client.clone(), "default");
    let pod: Pod = serde_json::from_value(
        json!({"metadata": {"name": "p"}, "spec": {"nodeName": "n1", "containers": [{"name": "c", "image": "i"}]}}),
    )
    .unwrap();
    pods.create(&PostParams::default(), &pod).await.unwrap();
    pods.delete("p", &Default::default()).await.unwrap();
    let p = pods.get("p").await.unwrap();
    assert!(p.metadata.deletion_timestamp.is_some());
    assert_eq!(p.metadata.deletion_grace_period_seconds, Some(30));
    let status = kube::api::Patch::Merge(json!({"status": {"phase": "Running"}}));
    pods.patch_status("p", &Default::default(), &status).await.unwrap();
    assert!(
        pods.get_opt("p").await.unwrap().is_some(),
        "a status write must not finish the deletion"
    );
    // The agent's final delete with grace 0 removes it.
    pods.delete("p", &kube::api::DeleteParams::default().grace_period(0))
        .await
        .unwrap();
    assert!(pods.get_opt("p").await.unwrap().is_none());
    drop((pods, client));
    srv.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metadata_only_get_list_and_watch() {
    let dir = tempfile::tempdir().unwrap();
    let (running, client) = start(dir.path()).await;
    let cms: Api<ConfigMap> = Api::namespaced(client.clone(), "default");
    cms.create(&PostParams::default(), &cm("m1", json!({"a": "b"})))
        .await
        .unwrap();
    let ask = |path: &str, accept: &str| {
        http::Request::get(path)
            .header(http::header::ACCEPT, accept)
            .body(Vec::new())
            .unwrap()
    };
    let list: serde_json::Value = client
        .request(ask(
            "/api/v1/namespaces/default/configmaps",
            "application/json;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1,application/json",
        ))
        .await
        .unwrap();
    assert_eq!(list["kind"], "PartialObjectMetadataList");
    assert_eq!(list["apiVersion"], "meta.k8s.io/v1");
    let item = &list["items"][0];
    assert_eq!(item["kind"], "PartialObjectMetadata");
    assert_eq!(item["metadata"]["labels"]["a"], "b");
    assert!(item.get("data").is_none(), "{item}");
    let one: serde_json::Value = client
        .request(ask(
            "/api/v1/namespaces/default/configmaps/m1",
            "application/json;as=PartialObjectMetadata;g=meta.k8s.io;v=v1",
        ))
        .await
        .unwrap();
    assert_eq!(one["kind"], "PartialObjectMetadata");
    assert!(one.get("data").is_none(), "{one}");

    // kube-rs's metadata watch sees the same shape.
    let rv = list["metadata"]["resourceVersion"].as_str().unwrap().to_string();
    let meta_api: Api<kube::core::PartialObjectMeta<ConfigMap>> = Api::namespaced(client.clone(), "default");
    let mut stream = meta_api
        .watch_metadata(&WatchParams::default(), &rv)
        .await
        .unwrap()
        .boxed();
    cms.create(&PostParams::default(), &cm("m2", json!({}))).await.unwrap();
    let ev = tokio::time::timeout(Duration::from_secs(10), stream.next())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    match ev {
        WatchEvent::Added(o) => {
            assert_eq!(o.metadata.name.as_deref(), Some("m2"));
            assert_eq!(o.types.map(|t| t.kind).as_deref(), Some("PartialObjectMetadata"));
        }
        other => panic!("unexpected {other:?}"),
    }
    running.shutdown().await;
}
