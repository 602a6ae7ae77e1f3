//! Scheduling cycles alone (no API): 5,000 nodes, 1,000 placed pods, 10,000 pods assumed one by one.

use std::sync::Arc;
use std::time::Instant;

use k8s_openapi::api::core::v1::{Node, Pod};
use skiff_scheduler::cache::{Cache, PodSummary};
use skiff_scheduler::framework::Framework;
use skiff_scheduler::plugins::PodInfo;

fn main() {
    let mut cache = Cache::default();
    for i in 0..5000 {
        let n: Node = serde_json::from_value(serde_json::json!({
            "metadata": {"name": format!("node-{i}"), "labels": {"kubernetes.io/hostname": format!("node-{i}")}},
            "status": {"allocatable": {"cpu": "4", "memory": "32Gi", "pods": "110"}}
        }))
        .unwrap();
        cache.upsert_node(Arc::new(n));
    }
    let pod = |name: String| -> Arc<Pod> {
        Arc::new(
            serde_json::from_value(serde_json::json!({
                "metadata": {"name": name, "namespace": "default"},
                "spec": {"containers": [{"name": "pause", "image": "pause", "ports": [{"containerPort": 80}],
                    "resources": {"requests": {"cpu": "100m", "memory": "500Mi"}}}]}
            }))
            .unwrap(),
        )
    };
    for i in 0..1000 {
        let p = pod(format!("placed-{i}"));
        cache.add_pod(
            &format!("default/placed-{i}"),
            &format!("node-{}", i % 5000),
            Arc::new(PodSummary::of(&p)),
            false,
        );
    }
    let pods: Vec<Arc<Pod>> = (0..10000).map(|i| pod(format!("pod-{i}"))).collect();
    let mut fw = Framework::new(None);
    let t = Instant::now();
    for p in pods {
        let info = PodInfo::new(p);
        let r = fw.schedule(&info, &cache).unwrap();
        cache.add_pod(&info.key, &r.node, info.summary.clone(), true);
    }
    let e = t.elapsed();
    println!(
        "10000 cycles in {e:?}: {:.1} µs/pod, {:.0} pods/s",
        e.as_secs_f64() * 1e2,
        1e4 / e.as_secs_f64()
    );
}
