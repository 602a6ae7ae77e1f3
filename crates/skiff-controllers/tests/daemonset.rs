//! The DaemonSet controller on simulated nodes: a pod per node, pinned by node affinity; node
//! labels and new or deleted nodes; RollingUpdate without and with surge; OnDelete; failed
//! pods replaced; history, status and events.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::api::apps::v1::{ControllerRevision, DaemonSet};
use k8s_openapi::api::core::v1::{Node, Pod};
use kube::api::{DeleteParams, ListParams, Patch, PatchParams, PostParams};
use kube::runtime::watcher;
use kube::{Api, Client, ResourceExt};
use serde_json::json;

async fn wait_for<F, Fut>(what: &str, mut f: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    while !f().await {
        assert!(tokio::time::Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn ready(p: &Pod) -> bool {
    p.status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .is_some_and(|c| c.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
}

fn hash(p: &Pod) -> String {
    p.labels().get("controller-revision-hash").cloned().unwrap_or_default()
}

/// Pod events of one DaemonSet in watch order: ("create"|"ready"|"delete", pod, hash).
type Journal = Arc<Mutex<Vec<(String, String, String)>>>;

fn journal(client: Client, app: &str) -> (Journal, tokio::task::JoinHandle<()>) {
    let j: Journal = Arc::default();
    let j2 = j.clone();
    let pods: Api<Pod> = Api::namespaced(client, "default");
    let cfg = watcher::Config::default().labels(&format!("app={app}"));
    let task = tokio::spawn(async move {
        let mut state: BTreeMap<String, (bool, bool)> = BTreeMap::new();
        let mut s = watcher(pods, cfg).boxed();
        while let Some(ev) = s.next().await {
            let (p, gone) = match ev {
                Ok(watcher::Event::Apply(p) | watcher::Event::InitApply(p)) => (p, false),
                Ok(watcher::Event::Delete(p)) => (p, true),
                _ => continue,
            };
            let name = p.name_any();
            let mut j = j2.lock().unwrap();
            let st = state.entry(name.clone()).or_insert_with(|| {
                j.push(("create".into(), name.clone(), hash(&p)));
                (false, false)
            });
            if ready(&p) && !st.0 && !gone {
                st.0 = true;
                j.push(("ready".into(), name.clone(), hash(&p)));
            }
            if (gone || p.metadata.deletion_timestamp.is_some()) && !st.1 {
                st.1 = true;
                j.push(("delete".into(), name.clone(), hash(&p)));
            }
        }
    });
    (j, task)
}

fn ds(name: &str, extra: serde_json::Value) -> DaemonSet {
    let mut v = json!({
        "metadata": {"name": name, "annotations": {"kubernetes.io/change-cause": "v1"}},
        "spec": {
            "selector": {"matchLabels": {"app": name}},
            "template": {"metadata": {"labels": {"app": name}},
                "spec": {"containers": [{"name": "c", "image": "fluentd:1"}]}}
        }
    });
    merge(&mut v, extra);
    serde_json::from_value(v).unwrap()
}

fn merge(a: &mut serde_json::Value, b: serde_json::Value) {
    match (a, b) {
        (serde_json::Value::Object(a), serde_json::Value::Object(b)) => {
            for (k, v) in b {
                merge(a.entry(k).or_insert(serde_json::Value::Null), v);
            }
        }
        (a, b) => *a = b,
    }
}

/// Live pods of a DaemonSet by the node they run on.
async fn by_node(pods: &Api<Pod>, app: &str) -> BTreeMap<String, Vec<Pod>> {
    let mut m: BTreeMap<String, Vec<Pod>> = BTreeMap::new();
    for p in pods
        .list(&ListParams::default().labels(&format!("app={app}")))
        .await
        .unwrap()
        .items
    {
        if p.metadata.deletion_timestamp.is_none() {
            let n = p.spec.as_ref().and_then(|s| s.node_name.clone()).unwrap_or_default();
            m.entry(n).or_default().push(p);
        }
    }
    m
}

async fn status(sets: &Api<DaemonSet>, name: &str) -> k8s_openapi::api::apps::v1::DaemonSetStatus {
    sets.get(name).await.unwrap().status.unwrap_or_default()
}

/// Every wanted node runs one ready, up-to-date pod and status says so.
async fn settled(sets: &Api<DaemonSet>, pods: &Api<Pod>, name: &str, n: i32) -> bool {
    let d = sets.get(name).await.unwrap();
    let st = d.status.clone().unwrap_or_default();
    let placed = by_node(pods, name).await;
    st.observed_generation == d.metadata.generation
        && st.desired_number_scheduled == n
        && st.current_number_scheduled == n
        && st.number_ready == n
        && st.updated_number_scheduled == Some(n)
        && st.number_available == Some(n)
        && st.number_misscheduled == 0
        && placed.len() == n as usize
        && placed.values().all(|ps| ps.len() == 1 && ready(&ps[0]))
}

async fn set_image(sets: &Api<DaemonSet>, name: &str, image: &str) {
    let patch = json!({"spec": {"template": {"spec": {"containers": [{"name": "c", "image": image}]}}}});
    sets.patch(name, &PatchParams::default(), &Patch::Strategic(patch))
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn daemonset_follows_nodes_and_rolls_updates() {
    let dir = tempfile::tempdir().unwrap();
    let running = skiff_apiserver::start(skiff_apiserver::Config::loopback(dir.path()))
        .await
        .unwrap();
    let client = running.client();
    let sched = tokio::spawn(skiff_scheduler::run(client.clone(), Default::default()));
    let sim = tokio::spawn(skiff_agent::sim::run(
        client.clone(),
        skiff_agent::sim::SimOptions {
            count: 3,
            ..Default::default()
        },
    ));
    let ctl = tokio::spawn(skiff_controllers::daemonset::run(
        skiff_controllers::informer::Informers::new(client.clone()),
    ));

    let pods: Api<Pod> = Api::namespaced(client.clone(), "default");
    let sets: Api<DaemonSet> = Api::namespaced(client.clone(), "default");
    let nodes: Api<Node> = Api::all(client.clone());
    let revs: Api<ControllerRevision> = Api::namespaced(client.clone(), "default");
    let pp = PostParams::default();
    wait_for("three nodes", || async {
        nodes.list(&Default::default()).await.unwrap().items.len() == 3
    })
    .await;

    // One pod on every node, bound through node affinity by the scheduler.
    sets.create(&pp, &ds("fluentd", json!({}))).await.unwrap();
    wait_for("fluentd on 3 nodes", || settled(&sets, &pods, "fluentd", 3)).await;
    let placed = by_node(&pods, "fluentd").await;
    assert_eq!(
        placed.keys().collect::<Vec<_>>(),
        ["skiff-sim-1", "skiff-sim-2", "skiff-sim-3"]
    );
    let p = &placed["skiff-sim-1"][0];
    assert!(p.name_any().starts_with("fluentd-"));
    let spec = p.spec.as_ref().unwrap();
    let terms = &spec
        .affinity
        .as_ref()
        .unwrap()
        .node_affinity
        .as_ref()
        .unwrap()
        .required_during_scheduling_ignored_during_execution
        .as_ref()
        .unwrap()
        .node_selector_terms;
    let field = &terms[0].match_fields.as_ref().unwrap()[0];
    assert_eq!(
        (field.key.as_str(), field.operator.as_str(), field.values.clone()),
        ("metadata.name", "In", Some(vec!["skiff-sim-1".to_string()]))
    );
    let tols: Vec<String> = spec
        .tolerations
        .iter()
        .flatten()
        .map(|t| {
            format!(
                "{}:{}",
                t.key.clone().unwrap_or_default(),
                t.effect.clone().unwrap_or_default()
            )
        })
        .collect();
    for want in [
        "node.kubernetes.io/not-ready:NoExecute",
        "node.kubernetes.io/unreachable:NoExecute",
        "node.kubernetes.io/disk-pressure:NoSchedule",
        "node.kubernetes.io/memory-pressure:NoSchedule",
        "node.kubernetes.io/pid-pressure:NoSchedule",
        "node.kubernetes.io/unschedulable:NoSchedule",
    ] {
        assert!(tols.contains(&want.to_string()), "{want} in {tols:?}");
    }
    let r = &p.owner_references()[0];
    assert_eq!((r.kind.as_str(), r.controller), ("DaemonSet", Some(true)));
    let rev_list = revs.list(&Default::default()).await.unwrap().items;
    assert_eq!(rev_list.len(), 1);
    let r1 = &rev_list[0];
    assert_eq!(r1.revision, 1);
    assert_eq!(r1.name_any(), format!("fluentd-{}", hash(p)));
    assert_eq!(r1.labels()["controller-revision-hash"], hash(p));
    assert_eq!(r1.annotations()["kubernetes.io/change-cause"], "v1");
    assert_eq!(r1.data.as_ref().unwrap().0["spec"]["template"]["$patch"], "replace");

    // Nodes picked by a label: none at first, then the labelled one, then none again.
    sets.create(
        &pp,
        &ds(
            "ssd",
            json!({"spec": {"template": {"spec": {"nodeSelector": {"disk": "ssd"}}}}}),
        ),
    )
    .await
    .unwrap();
    wait_for("ssd observed with no nodes", || async {
        let d = sets.get("ssd").await.unwrap();
        d.status.as_ref().and_then(|s| s.observed_generation) == d.metadata.generation
    })
    .await;
    assert!(by_node(&pods, "ssd").await.is_empty());
    let label = |v: serde_json::Value| json!({"metadata": {"labels": {"disk": v}}});
    nodes
        .patch(
            "skiff-sim-2",
            &PatchParams::default(),
            &Patch::Merge(label(json!("ssd"))),
        )
        .await
        .unwrap();
    wait_for("ssd on the labelled node", || settled(&sets, &pods, "ssd", 1)).await;
    assert_eq!(by_node(&pods, "ssd").await.keys().collect::<Vec<_>>(), ["skiff-sim-2"]);
    nodes
        .patch(
            "skiff-sim-2",
            &PatchParams::default(),
            &Patch::Merge(label(json!(null))),
        )
        .await
        .unwrap();
    wait_for("ssd pod gone with the label", || async {
        by_node(&pods, "ssd").await.is_empty() && status(&sets, "ssd").await.desired_number_scheduled == 0
    })
    .await;

    // A node added later gets its pod; a node deleted loses it.
    let late = tokio::spawn(skiff_agent::sim::run(
        client.clone(),
        skiff_agent::sim::SimOptions {
            count: 1,
            name_prefix: "late-".into(),
            ..Default::default()
        },
    ));
    wait_for("fluentd on the new node", || settled(&sets, &pods, "fluentd", 4)).await;
    assert!(by_node(&pods, "fluentd").await.contains_key("late-1"));
    // Killed first, so the simulated node does not register again.
    let dead = json!({"metadata": {"annotations": {"skiff.dev/sim-dead": "true"}}});
    nodes
        .patch("late-1", &PatchParams::default(), &Patch::Merge(dead))
        .await
        .unwrap();
    nodes.delete("late-1", &DeleteParams::default()).await.unwrap();
    wait_for("fluentd pod of the deleted node deleted", || async {
        !by_node(&pods, "fluentd").await.contains_key("late-1") && settled(&sets, &pods, "fluentd", 3).await
    })
    .await;

    // RollingUpdate, maxUnavailable 1: an old pod goes only when no other node is short.
    let (j, watch) = journal(client.clone(), "fluentd");
    let h1 = hash(&by_node(&pods, "fluentd").await["skiff-sim-1"][0]);
    set_image(&sets, "fluentd", "fluentd:2").await;
    wait_for("fluentd updated", || async {
        settled(&sets, &pods, "fluentd", 3).await
            && by_node(&pods, "fluentd").await.values().all(|ps| hash(&ps[0]) != h1)
    })
    .await;
    {
        let j = j.lock().unwrap();
        let mut short = 0i32;
        for (what, _, h) in j.iter() {
            match what.as_str() {
                "delete" if *h == h1 => short += 1,
                "ready" if *h != h1 => short -= 1,
                _ => {}
            }
            assert!(short <= 1, "more than one node short of a pod: {j:?}");
        }
        assert_eq!(
            j.iter().filter(|(w, _, h)| w == "delete" && *h == h1).count(),
            3,
            "{j:?}"
        );
    }
    let h2 = hash(&by_node(&pods, "fluentd").await["skiff-sim-1"][0]);
    let r2 = revs.get(&format!("fluentd-{h2}")).await.unwrap();
    assert_eq!(r2.revision, 2);

    // maxSurge 1, maxUnavailable 0: the new pod starts beside the old one, which goes after.
    sets.patch(
        "fluentd",
        &PatchParams::default(),
        &Patch::Merge(json!({"spec": {"updateStrategy": {"rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0}}}})),
    )
    .await
    .unwrap();
    j.lock().unwrap().clear();
    set_image(&sets, "fluentd", "fluentd:3").await;
    wait_for("fluentd surged to the third image", || async {
        settled(&sets, &pods, "fluentd", 3).await
            && by_node(&pods, "fluentd").await.values().all(|ps| hash(&ps[0]) != h2)
    })
    .await;
    {
        let j = j.lock().unwrap();
        let mut available = 3i32;
        for (what, _, h) in j.iter() {
            match what.as_str() {
                "delete" if *h == h2 => available -= 1,
                "ready" if *h != h2 => available += 1,
                _ => {}
            }
            assert!(
                available >= 3,
                "an old pod went before its replacement was ready: {j:?}"
            );
        }
    }
    watch.abort();
    let _ = watch.await;

    // Rolling back to the first template reuses revision 1, renumbered 4.
    set_image(&sets, "fluentd", "fluentd:1").await;
    wait_for("fluentd back at the first revision", || async {
        settled(&sets, &pods, "fluentd", 3).await
            && by_node(&pods, "fluentd").await.values().all(|ps| hash(&ps[0]) == h1)
    })
    .await;
    assert_eq!(revs.get(&r1.name_any()).await.unwrap().revision, 4);

    // OnDelete: nothing moves until a pod is deleted.
    sets.patch(
        "fluentd",
        &PatchParams::default(),
        &Patch::Merge(json!({"spec": {"updateStrategy": {"type": "OnDelete", "rollingUpdate": null}}})),
    )
    .await
    .unwrap();
    set_image(&sets, "fluentd", "fluentd:4").await;
    wait_for("OnDelete status: 0 updated", || async {
        let d = sets.get("fluentd").await.unwrap();
        let st = d.status.unwrap_or_default();
        st.observed_generation == d.metadata.generation && st.updated_number_scheduled == Some(0)
    })
    .await;
    let victim = by_node(&pods, "fluentd").await["skiff-sim-3"][0].name_any();
    pods.delete(&victim, &Default::default()).await.unwrap();
    wait_for("replacement at the new revision", || async {
        let st = status(&sets, "fluentd").await;
        let placed = by_node(&pods, "fluentd").await;
        st.updated_number_scheduled == Some(1)
            && placed
                .get("skiff-sim-3")
                .is_some_and(|ps| ps.len() == 1 && ps[0].name_any() != victim && hash(&ps[0]) != h1)
    })
    .await;
    assert_eq!(hash(&by_node(&pods, "fluentd").await["skiff-sim-1"][0]), h1);

    // A failed daemon pod is killed (with a warning) and replaced. Its node is made dead for
    // the while, so the simulated node does not report the pod Running again.
    let sick = by_node(&pods, "fluentd").await["skiff-sim-2"][0].name_any();
    let dead = |v: &str| json!({"metadata": {"annotations": {"skiff.dev/sim-dead": v}}});
    nodes
        .patch("skiff-sim-2", &PatchParams::default(), &Patch::Merge(dead("true")))
        .await
        .unwrap();
    pods.patch_status(
        &sick,
        &PatchParams::default(),
        &Patch::Merge(json!({"status": {"phase": "Failed"}})),
    )
    .await
    .unwrap();
    wait_for("failed pod deleted", || async {
        // A terminal pod goes at once (no grace period), as upstream.
        pods.get_opt(&sick)
            .await
            .unwrap()
            .is_none_or(|p| p.metadata.deletion_timestamp.is_some())
    })
    .await;
    nodes
        .patch("skiff-sim-2", &PatchParams::default(), &Patch::Merge(dead("false")))
        .await
        .unwrap();
    wait_for("failed pod replaced", || async {
        by_node(&pods, "fluentd")
            .await
            .get("skiff-sim-2")
            .is_some_and(|ps| ps.len() == 1 && ps[0].name_any() != sick && ready(&ps[0]))
    })
    .await;

    // History: a limit of 0 keeps only revisions some pod still runs.
    sets.patch(
        "fluentd",
        &PatchParams::default(),
        &Patch::Merge(json!({"spec": {"revisionHistoryLimit": 0}})),
    )
    .await
    .unwrap();
    wait_for("old revisions cleaned up", || async {
        let names: Vec<String> = revs
            .list(&Default::default())
            .await
            .unwrap()
            .items
            .iter()
            .map(|r| r.name_any())
            .filter(|n| n.starts_with("fluentd-"))
            .collect();
        let hashes: std::collections::HashSet<String> = by_node(&pods, "fluentd")
            .await
            .values()
            .map(|ps| format!("fluentd-{}", hash(&ps[0])))
            .collect();
        names.len() == 2 && names.iter().all(|n| hashes.contains(n))
    })
    .await;

    // Events as upstream words them, from the daemonset controller.
    let events: Api<k8s_openapi::api::events::v1::Event> = Api::namespaced(client.clone(), "default");
    let evs = events.list(&ListParams::default()).await.unwrap().items;
    let from_ds = |reason: &str, prefix: &str| {
        evs.iter().any(|e| {
            e.reason.as_deref() == Some(reason)
                && e.note.as_deref().is_some_and(|n| n.starts_with(prefix))
                && e.reporting_controller.as_deref() == Some("daemonset-controller")
        })
    };
    assert!(from_ds("SuccessfulCreate", "Created pod: fluentd-"));
    assert!(from_ds("SuccessfulDelete", "Deleted pod: fluentd-"));
    assert!(from_ds(
        "FailedDaemonPod",
        &format!("Found failed daemon pod default/{sick} on node skiff-sim-2, will try to kill it")
    ));
    let created = evs
        .iter()
        .filter(|e| e.reason.as_deref() == Some("SuccessfulCreate"))
        .count();
    assert!(created >= 10, "one event per created pod, not one series: {created}");

    ctl.abort();
    sim.abort();
    late.abort();
    sched.abort();
    let _ = (ctl.await, sim.await, late.await, sched.await);
    drop((pods, sets, nodes, revs, events, client));
    running.shutdown().await;
}
