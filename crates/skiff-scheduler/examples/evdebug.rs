use k8s_openapi::api::events::v1::Event;
use futures::StreamExt;
use kube::api::PostParams;
use kube::Api;
use std::time::{Duration, Instant};

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let dir = tempfile::tempdir().unwrap();
    let running = skiff_apiserver::start(skiff_apiserver::Config {
        data_dir: dir.path().to_path_buf(),
        listen: "127.0.0.1:0".parse().unwrap(),
        extra_hosts: vec![],
    })
    .await
    .unwrap();
    let client = skiff_apiserver::local::client(running.server.clone());
    let api: Api<Event> = Api::namespaced(client.clone(), "default");
    let n: usize = std::env::args().nth(1).map(|s| s.parse().unwrap()).unwrap_or(500);
    let t = Instant::now();
    let res: Vec<_> = futures::stream::iter(0..n)
        .map(|i| {
            let api = api.clone();
            async move {
                let ev: Event = serde_json::from_value(serde_json::json!({
                    "metadata": {"name": format!("p{i}.abc"), "namespace": "default"},
                    "eventTime": "2025-01-01T00:00:00.000000Z",
                    "reportingController": "default-scheduler",
                    "reportingInstance": "default-scheduler-x",
                    "action": "Binding", "reason": "Scheduled", "type": "Normal", "note": "hi",
                    "regarding": {"kind": "Pod", "name": format!("p{i}"), "namespace": "default", "apiVersion": "v1"}
                })).unwrap();
                tokio::time::timeout(Duration::from_secs(5), api.create(&PostParams::default(), &ev)).await
            }
        })
        .buffer_unordered(32)
        .collect()
        .await;
    let timeouts = res.iter().filter(|r| r.is_err()).count();
    let errs: Vec<String> = res.iter().filter_map(|r| r.as_ref().ok().and_then(|r| r.as_ref().err()).map(|e| e.to_string())).take(3).collect();
    println!("{n} events in {:?}: {timeouts} timeouts, errors {errs:?}", t.elapsed());
    println!("strong {}", std::sync::Arc::strong_count(&running.server));
    drop(api);
    drop(client); tokio::time::sleep(Duration::from_millis(300)).await; println!("after drop strong {}", std::sync::Arc::strong_count(&running.server));
    let t = Instant::now(); running.shutdown().await; println!("shutdown {:?}", t.elapsed());
}
