//! The StatefulSet controller on simulated nodes: ordered creation (each pod only after its
//! predecessor is Ready), claims per pod kept on scale-down, reverse-order scale-down, rolling
//! update (reverse order, partition), OnDelete, Parallel, failed-pod restart, history, events.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::api::apps::v1::{ControllerRevision, StatefulSet};
use k8s_openapi::api::core::v1::{PersistentVolumeClaim, Pod};
use kube::api::{ListParams, Patch, PatchParams, PostParams};
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

/// What a pod watch saw, in watch order: creations, readiness, deletions.
#[derive(Default)]
struct Journal {
    lines: Vec<String>,
    known: HashMap<String, (String, bool, bool)>,
}

impl Journal {
    fn saw(&mut self, p: &Pod, gone: bool) {
        let name = p.name_any();
        let uid = p.uid().unwrap_or_default();
        let entry = self
            .known
            .entry(name.clone())
            .or_insert_with(|| (String::new(), false, false));
        if entry.0 != uid && !gone {
            *entry = (uid, false, false);
            self.lines.push(format!("create {name}"));
        }
        if !gone && ready(p) && !entry.1 {
            entry.1 = true;
            self.lines.push(format!("ready {name}"));
        }
        if (gone || p.metadata.deletion_timestamp.is_some()) && !entry.2 {
            entry.2 = true;
            self.lines.push(format!("delete {name}"));
        }
    }

    fn pos(&self, line: &str) -> usize {
        self.lines
            .iter()
            .position(|l| l == line)
            .unwrap_or_else(|| panic!("{line:?} not in {:?}", self.lines))
    }
}

fn journal(client: Client) -> (Arc<Mutex<Journal>>, tokio::task::JoinHandle<()>) {
    let j = Arc::new(Mutex::new(Journal::default()));
    let j2 = j.clone();
    let pods: Api<Pod> = Api::namespaced(client, "default");
    let task = tokio::spawn(async move {
        let mut s = watcher(pods, watcher::Config::default()).boxed();
        while let Some(ev) = s.next().await {
            match ev {
                Ok(watcher::Event::Apply(p) | watcher::Event::InitApply(p)) => j2.lock().unwrap().saw(&p, false),
                Ok(watcher::Event::Delete(p)) => j2.lock().unwrap().saw(&p, true),
                _ => {}
            }
        }
    });
    (j, task)
}

fn sts(name: &str, replicas: i32, extra: serde_json::Value) -> StatefulSet {
    let mut v = json!({
        "metadata": {"name": name, "annotations": {"kubernetes.io/change-cause": "first"}},
        "spec": {
            "replicas": replicas,
            "serviceName": "nginx",
            "selector": {"matchLabels": {"app": name}},
            "template": {"metadata": {"labels": {"app": name}},
                "spec": {"containers": [{"name": "c", "image": "nginx:1.24"}]}},
            "volumeClaimTemplates": [{"metadata": {"name": "www"},
                "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}}}]
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

/// Live (not terminating) pods of a set by name, with their revision label.
async fn pods_of(pods: &Api<Pod>, app: &str) -> BTreeMap<String, Pod> {
    pods.list(&ListParams::default().labels(&format!("app={app}")))
        .await
        .unwrap()
        .items
        .into_iter()
        .filter(|p| p.metadata.deletion_timestamp.is_none())
        .map(|p| (p.name_any(), p))
        .collect()
}

fn rev(p: &Pod) -> String {
    p.labels().get("controller-revision-hash").cloned().unwrap_or_default()
}

async fn status(sets: &Api<StatefulSet>, name: &str) -> k8s_openapi::api::apps::v1::StatefulSetStatus {
    sets.get(name).await.unwrap().status.unwrap_or_default()
}

async fn settled(sets: &Api<StatefulSet>, name: &str, n: i32) -> bool {
    let s = sets.get(name).await.unwrap();
    let st = s.status.clone().unwrap_or_default();
    st.observed_generation == s.metadata.generation
        && st.replicas == n
        && st.ready_replicas == Some(n)
        && st.updated_replicas == Some(n)
        && st.current_revision.is_some()
        && st.current_revision == st.update_revision
}

async fn set_image(sets: &Api<StatefulSet>, name: &str, image: &str) {
    let patch = json!({"spec": {"template": {"spec": {"containers": [{"name": "c", "image": image}]}}}});
    sets.patch(name, &PatchParams::default(), &Patch::Strategic(patch))
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn statefulset_orders_scales_updates_and_keeps_claims() {
    let dir = tempfile::tempdir().unwrap();
    let running = skiff_apiserver::start(skiff_apiserver::Config::loopback(dir.path()))
        .await
        .unwrap();
    let client = running.client();
    let sched = tokio::spawn(skiff_scheduler::run(client.clone(), Default::default()));
    let sim = tokio::spawn(skiff_agent::sim::run(
        client.clone(),
        skiff_agent::sim::SimOptions {
            count: 2,
            ..Default::default()
        },
    ));
    let ctl = tokio::spawn(skiff_controllers::statefulset::run(
        skiff_controllers::informer::Informers::new(client.clone()),
    ));
    let (journal, watch) = journal(client.clone());

    let pods: Api<Pod> = Api::namespaced(client.clone(), "default");
    let sets: Api<StatefulSet> = Api::namespaced(client.clone(), "default");
    let pvcs: Api<PersistentVolumeClaim> = Api::namespaced(client.clone(), "default");
    let revs: Api<ControllerRevision> = Api::namespaced(client.clone(), "default");
    let pp = PostParams::default();

    // Ordered creation: each pod only after the one before it is Ready.
    sets.create(&pp, &sts("web", 3, json!({}))).await.unwrap();
    wait_for("web settled at 3", || settled(&sets, "web", 3)).await;
    {
        let j = journal.lock().unwrap();
        assert!(j.pos("ready web-0") < j.pos("create web-1"), "{:?}", j.lines);
        assert!(j.pos("ready web-1") < j.pos("create web-2"), "{:?}", j.lines);
    }
    let now = pods_of(&pods, "web").await;
    assert_eq!(now.keys().collect::<Vec<_>>(), ["web-0", "web-1", "web-2"]);
    let p0 = &now["web-0"];
    let spec = p0.spec.as_ref().unwrap();
    assert_eq!(spec.hostname.as_deref(), Some("web-0"));
    assert_eq!(spec.subdomain.as_deref(), Some("nginx"));
    let l = p0.labels();
    assert_eq!(l["statefulset.kubernetes.io/pod-name"], "web-0");
    assert_eq!(l["apps.kubernetes.io/pod-index"], "0");
    let r = &p0.owner_references()[0];
    assert_eq!((r.kind.as_str(), r.controller), ("StatefulSet", Some(true)));
    let vol = spec.volumes.as_ref().unwrap().iter().find(|v| v.name == "www").unwrap();
    assert_eq!(vol.persistent_volume_claim.as_ref().unwrap().claim_name, "www-web-0");
    let claims: Vec<String> = pvcs
        .list(&Default::default())
        .await
        .unwrap()
        .items
        .iter()
        .map(|c| c.name_any())
        .collect();
    assert_eq!(claims, ["www-web-0", "www-web-1", "www-web-2"]);
    let c0 = pvcs.get("www-web-0").await.unwrap();
    assert_eq!(c0.labels()["app"], "web");
    assert!(c0.owner_references().is_empty(), "Retain policy: no owners");

    // One revision, recording the template as kubectl reads it, named after the set.
    let st = status(&sets, "web").await;
    let r1 = st.update_revision.clone().unwrap();
    let rv = revs.get(&r1).await.unwrap();
    assert!(r1.starts_with("web-"));
    assert_eq!(rv.revision, 1);
    assert_eq!(rv.annotations()["kubernetes.io/change-cause"], "first");
    assert_eq!(rv.labels()["app"], "web");
    let data = &rv.data.as_ref().unwrap().0;
    assert_eq!(data["spec"]["template"]["$patch"], "replace");
    assert_eq!(data["spec"]["template"]["spec"]["containers"][0]["image"], "nginx:1.24");
    assert_eq!(rev(p0), r1);
    assert_eq!(st.current_replicas, Some(3));
    assert_eq!(st.available_replicas, Some(3));
    assert_eq!(st.collision_count, Some(0));

    // Scale down: highest ordinal first, one at a time; claims stay.
    sets.patch(
        "web",
        &PatchParams::default(),
        &Patch::Merge(json!({"spec": {"replicas": 1}})),
    )
    .await
    .unwrap();
    wait_for("web at 1", || async {
        pods_of(&pods, "web").await.len() == 1 && status(&sets, "web").await.replicas == 1
    })
    .await;
    {
        let j = journal.lock().unwrap();
        assert!(j.pos("delete web-2") < j.pos("delete web-1"), "{:?}", j.lines);
    }
    assert_eq!(pvcs.list(&Default::default()).await.unwrap().items.len(), 3);
    sets.patch(
        "web",
        &PatchParams::default(),
        &Patch::Merge(json!({"spec": {"replicas": 3}})),
    )
    .await
    .unwrap();
    wait_for("web back at 3", || settled(&sets, "web", 3)).await;
    assert_eq!(
        pvcs.list(&Default::default()).await.unwrap().items.len(),
        3,
        "claims reused"
    );

    // Rolling update: reverse ordinal order, one at a time, to a second revision.
    journal.lock().unwrap().lines.clear();
    set_image(&sets, "web", "nginx:1.25").await;
    wait_for("web updated", || async {
        settled(&sets, "web", 3).await && status(&sets, "web").await.update_revision.as_deref() != Some(&r1)
    })
    .await;
    let r2 = status(&sets, "web").await.update_revision.unwrap();
    {
        let j = journal.lock().unwrap();
        assert!(j.pos("delete web-2") < j.pos("delete web-1"), "{:?}", j.lines);
        assert!(j.pos("ready web-2") < j.pos("delete web-1"), "{:?}", j.lines);
        assert!(j.pos("delete web-1") < j.pos("delete web-0"), "{:?}", j.lines);
    }
    for p in pods_of(&pods, "web").await.values() {
        assert_eq!(rev(p), r2);
        assert_eq!(
            p.spec.as_ref().unwrap().containers[0].image.as_deref(),
            Some("nginx:1.25")
        );
    }
    assert_eq!(revs.get(&r2).await.unwrap().revision, 2);

    // Back to the first template: the first revision is reused and renumbered 3.
    set_image(&sets, "web", "nginx:1.24").await;
    wait_for("web rolled back", || async {
        settled(&sets, "web", 3).await && status(&sets, "web").await.update_revision.as_deref() == Some(&r1)
    })
    .await;
    assert_eq!(revs.get(&r1).await.unwrap().revision, 3);

    // Partition: only ordinals >= 2 move to the new revision.
    sets.patch(
        "web",
        &PatchParams::default(),
        &Patch::Merge(
            json!({"spec": {"updateStrategy": {"type": "RollingUpdate", "rollingUpdate": {"partition": 2}}}}),
        ),
    )
    .await
    .unwrap();
    set_image(&sets, "web", "nginx:1.26").await;
    wait_for("partitioned update", || async {
        let st = status(&sets, "web").await;
        st.updated_replicas == Some(1) && st.ready_replicas == Some(3) && st.current_replicas == Some(2)
    })
    .await;
    let now = pods_of(&pods, "web").await;
    let r3 = status(&sets, "web").await.update_revision.unwrap();
    assert_eq!(rev(&now["web-2"]), r3);
    assert_eq!(rev(&now["web-1"]), r1);
    assert_eq!(rev(&now["web-0"]), r1);
    assert_eq!(
        status(&sets, "web").await.current_revision.as_deref(),
        Some(r1.as_str())
    );

    // OnDelete: nothing moves until a pod is deleted; the replacement is at the new revision.
    sets.patch(
        "web",
        &PatchParams::default(),
        &Patch::Merge(json!({"spec": {"updateStrategy": {"type": "OnDelete", "rollingUpdate": null}}})),
    )
    .await
    .unwrap();
    let old0 = pods_of(&pods, "web").await["web-0"].uid().unwrap();
    pods.delete("web-0", &Default::default()).await.unwrap();
    wait_for("web-0 recreated at the update revision", || async {
        pods_of(&pods, "web")
            .await
            .get("web-0")
            .is_some_and(|p| p.uid().unwrap() != old0 && rev(p) == r3 && ready(p))
    })
    .await;
    assert_eq!(
        rev(&pods_of(&pods, "web").await["web-1"]),
        r1,
        "OnDelete leaves web-1 alone"
    );

    // A pod that ends Failed is deleted and created again. Its node is made dead for the
    // while, so the simulated node does not report the pod Running again.
    let victim = pods_of(&pods, "web").await["web-1"].clone();
    let old1 = victim.uid().unwrap();
    let node = victim.spec.as_ref().unwrap().node_name.clone().unwrap();
    let nodes: Api<k8s_openapi::api::core::v1::Node> = Api::all(client.clone());
    let dead = |v: &str| json!({"metadata": {"annotations": {"skiff.dev/sim-dead": v}}});
    nodes
        .patch(&node, &PatchParams::default(), &Patch::Merge(dead("true")))
        .await
        .unwrap();
    pods.patch_status(
        "web-1",
        &PatchParams::default(),
        &Patch::Merge(json!({"status": {"phase": "Failed"}})),
    )
    .await
    .unwrap();
    wait_for("failed web-1 deleted", || async {
        pods.get_opt("web-1")
            .await
            .unwrap()
            .is_none_or(|p| p.uid().unwrap() != old1 || p.metadata.deletion_timestamp.is_some())
    })
    .await;
    nodes
        .patch(&node, &PatchParams::default(), &Patch::Merge(dead("false")))
        .await
        .unwrap();
    wait_for("failed web-1 replaced", || async {
        pods_of(&pods, "web")
            .await
            .get("web-1")
            .is_some_and(|p| p.uid().unwrap() != old1 && ready(p))
    })
    .await;

    // History: with a limit of 0, only the live revision is kept.
    sets.patch(
        "web",
        &PatchParams::default(),
        &Patch::Merge(json!({"spec": {"revisionHistoryLimit": 0,
            "updateStrategy": {"type": "RollingUpdate", "rollingUpdate": {"partition": 0}}}})),
    )
    .await
    .unwrap();
    wait_for("history truncated to the live revision", || async {
        settled(&sets, "web", 3).await
            && revs
                .list(&Default::default())
                .await
                .unwrap()
                .items
                .iter()
                .filter(|r| r.name_any().starts_with("web-"))
                .count()
                == 1
    })
    .await;

    // Parallel creates every pod at once even when none becomes Ready; OrderedReady waits.
    let stuck = json!({"spec": {"template": {"spec": {"nodeSelector": {"nowhere": "true"}}}}});
    let mut par = stuck.clone();
    merge(&mut par, json!({"spec": {"podManagementPolicy": "Parallel"}}));
    sets.create(&pp, &sts("ordered", 3, stuck)).await.unwrap();
    sets.create(&pp, &sts("par", 3, par)).await.unwrap();
    wait_for("parallel pods all created", || async {
        pods_of(&pods, "par").await.len() == 3
    })
    .await;
    wait_for("ordered set reports its one pod", || async {
        status(&sets, "ordered").await.replicas == 1
    })
    .await;
    assert_eq!(
        pods_of(&pods, "ordered").await.len(),
        1,
        "OrderedReady waits for ordered-0"
    );

    // whenScaled: Delete gives a scaled-down pod's claim to the pod, for the GC.
    sets.create(
        &pp,
        &sts(
            "gc",
            2,
            json!({"spec": {"persistentVolumeClaimRetentionPolicy": {"whenDeleted": "Delete", "whenScaled": "Delete"}}}),
        ),
    )
    .await
    .unwrap();
    wait_for("gc settled", || settled(&sets, "gc", 2)).await;
    let owners = |c: &PersistentVolumeClaim| c.owner_references().iter().map(|r| r.kind.clone()).collect::<Vec<_>>();
    assert_eq!(owners(&pvcs.get("www-gc-1").await.unwrap()), ["StatefulSet"]);
    sets.patch(
        "gc",
        &PatchParams::default(),
        &Patch::Merge(json!({"spec": {"replicas": 1}})),
    )
    .await
    .unwrap();
    wait_for("claim of gc-1 owned by its pod", || async {
        owners(&pvcs.get("www-gc-1").await.unwrap()) == ["Pod"]
    })
    .await;

    // A pod that lost its identity label gets it back.
    pods.patch(
        "web-2",
        &PatchParams::default(),
        &Patch::Merge(json!({"metadata": {"labels": {"statefulset.kubernetes.io/pod-name": null}}})),
    )
    .await
    .unwrap();
    wait_for("identity label restored", || async {
        pods.get("web-2")
            .await
            .unwrap()
            .labels()
            .get("statefulset.kubernetes.io/pod-name")
            == Some(&"web-2".to_string())
    })
    .await;

    // spec.ordinals.start numbers the pods from there.
    sets.create(&pp, &sts("offset", 2, json!({"spec": {"ordinals": {"start": 5}}})))
        .await
        .unwrap();
    wait_for("offset settled", || settled(&sets, "offset", 2)).await;
    assert_eq!(
        pods_of(&pods, "offset").await.keys().collect::<Vec<_>>(),
        ["offset-5", "offset-6"]
    );
    assert!(pvcs.get_opt("www-offset-5").await.unwrap().is_some());

    // Events read as upstream writes them.
    let events: Api<k8s_openapi::api::events::v1::Event> = Api::namespaced(client.clone(), "default");
    let evs = events.list(&ListParams::default()).await.unwrap().items;
    let has = |reason: &str, note: &str| {
        evs.iter().any(|e| {
            e.reason.as_deref() == Some(reason)
                && e.note.as_deref() == Some(note)
                && e.reporting_controller.as_deref() == Some("statefulset-controller")
        })
    };
    assert!(has(
        "SuccessfulCreate",
        "create Pod web-0 in StatefulSet web successful"
    ));
    assert!(has(
        "SuccessfulCreate",
        "create Claim www-web-0 Pod web-0 in StatefulSet web success"
    ));
    assert!(has(
        "SuccessfulDelete",
        "delete Pod web-2 in StatefulSet web successful"
    ));

    watch.abort();
    ctl.abort();
    sim.abort();
    sched.abort();
    let _ = (watch.await, ctl.await, sim.await, sched.await);
    drop((pods, sets, pvcs, revs, events, client));
    running.shutdown().await;
}
