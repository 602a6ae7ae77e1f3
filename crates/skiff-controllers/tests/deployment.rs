//! The Deployment controller on an in-process API server with simulated nodes, the scheduler
//! and the ReplicaSet controller: rolling updates within maxSurge/maxUnavailable (checked on a
//! watch of the pods), Recreate, rollback reusing the old ReplicaSet, revisionHistoryLimit,
//! pause, proportional scaling of a stalled rollout, and the progress deadline.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet};
use k8s_openapi::api::core::v1::Pod;
use kube::api::{ListParams, Patch, PatchParams, PostParams};
use kube::runtime::watcher;
use kube::{Api, Client, ResourceExt};
use serde_json::json;

const T: Duration = Duration::from_secs(60);
const REVISION: &str = "deployment.kubernetes.io/revision";

async fn wait_for<F, Fut>(what: &str, mut f: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + T;
    while !f().await {
        assert!(tokio::time::Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// An API server with the scheduler, three simulated nodes and both controllers.
struct Cluster {
    running: Option<skiff_apiserver::Running>,
    client: Client,
    tasks: Vec<tokio::task::JoinHandle<()>>,
    _dir: tempfile::TempDir,
}

impl Cluster {
    async fn start() -> Cluster {
        let dir = tempfile::tempdir().unwrap();
        let running = skiff_apiserver::start(skiff_apiserver::Config::loopback(dir.path()))
            .await
            .unwrap();
        let client = running.client();
        let c = client.clone();
        let mut tasks = vec![tokio::spawn(async move {
            let _ = skiff_scheduler::run(c, Default::default()).await;
        })];
        let c = client.clone();
        tasks.push(tokio::spawn(async move {
            let opts = skiff_agent::sim::SimOptions {
                count: 3,
                ..Default::default()
            };
            let _ = skiff_agent::sim::run(c, opts).await;
        }));
        let c = client.clone();
        tasks.push(tokio::spawn(async move {
            let _ = skiff_controllers::replicaset::run(skiff_controllers::informer::Informers::new(c)).await;
        }));
        let c = client.clone();
        tasks.push(tokio::spawn(async move {
            let _ = skiff_controllers::deployment::run(skiff_controllers::informer::Informers::new(c)).await;
        }));
        Cluster {
            running: Some(running),
            client,
            tasks,
            _dir: dir,
        }
    }

    fn deployments(&self) -> Api<Deployment> {
        Api::namespaced(self.client.clone(), "default")
    }

    fn rss(&self) -> Api<ReplicaSet> {
        Api::namespaced(self.client.clone(), "default")
    }

    fn pods(&self) -> Api<Pod> {
        Api::namespaced(self.client.clone(), "default")
    }

    async fn stop(mut self) {
        for t in &self.tasks {
            t.abort();
        }
        for t in std::mem::take(&mut self.tasks) {
            let _ = t.await;
        }
        if let Some(r) = self.running.take() {
            r.shutdown().await;
        }
    }

    /// The deployment's ReplicaSets (controlled by it), oldest first.
    async fn owned_rss(&self, name: &str) -> Vec<ReplicaSet> {
        let d = self.deployments().get(name).await.unwrap();
        let mut v: Vec<ReplicaSet> = self
            .rss()
            .list(&ListParams::default())
            .await
            .unwrap()
            .items
            .into_iter()
            .filter(|rs| {
                rs.owner_references()
                    .iter()
                    .any(|r| Some(&r.uid) == d.metadata.uid.as_ref())
            })
            .collect();
        v.sort_by_key(|rs| rs.metadata.creation_timestamp.clone().map(|t| t.0));
        v
    }

    /// The deployment's ReplicaSets by image.
    async fn by_image(&self, name: &str) -> BTreeMap<String, ReplicaSet> {
        self.owned_rss(name)
            .await
            .into_iter()
            .map(|rs| (image_of(&rs), rs))
            .collect()
    }

    async fn create(&self, d: serde_json::Value) -> Deployment {
        let d: Deployment = serde_json::from_value(d).unwrap();
        self.deployments().create(&PostParams::default(), &d).await.unwrap()
    }

    async fn patch(&self, name: &str, p: serde_json::Value) {
        self.deployments()
            .patch(name, &PatchParams::default(), &Patch::Merge(p))
            .await
            .unwrap();
    }

    async fn set_image(&self, name: &str, image: &str) {
        let p = json!({"spec": {"template": {"spec": {"containers": [{"name": "c", "image": image}]}}}});
        self.patch(name, p).await;
    }

    /// Waits until the rollout is complete as `kubectl rollout status` decides it.
    async fn wait_complete(&self, name: &str) {
        wait_for(&format!("{name} rolled out"), || async {
            let d = self.deployments().get(name).await.unwrap();
            let want = d.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1);
            let st = d.status.clone().unwrap_or_default();
            st.observed_generation >= d.metadata.generation
                && st.updated_replicas.unwrap_or(0) == want
                && st.replicas.unwrap_or(0) == want
                && st.available_replicas.unwrap_or(0) == want
        })
        .await;
    }
}

fn deployment(name: &str, replicas: i32, image: &str, strategy: serde_json::Value) -> serde_json::Value {
    json!({
        "metadata": {"name": name},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": name}},
            "strategy": strategy,
            "template": {
                "metadata": {"labels": {"app": name}},
                "spec": {"containers": [{"name": "c", "image": image}]}
            }
        }
    })
}

fn rolling(surge: serde_json::Value, unavailable: serde_json::Value) -> serde_json::Value {
    json!({"type": "RollingUpdate", "rollingUpdate": {"maxSurge": surge, "maxUnavailable": unavailable}})
}

fn revision(rs: &ReplicaSet) -> String {
    rs.annotations().get(REVISION).cloned().unwrap_or_default()
}

fn rs_replicas(rs: &ReplicaSet) -> i32 {
    rs.spec.as_ref().and_then(|s| s.replicas).unwrap_or(0)
}

fn image_of(rs: &ReplicaSet) -> String {
    rs.spec
        .as_ref()
        .unwrap()
        .template
        .as_ref()
        .unwrap()
        .spec
        .as_ref()
        .unwrap()
        .containers[0]
        .image
        .clone()
        .unwrap_or_default()
}

fn condition(d: &Deployment, ty: &str) -> Option<(String, String)> {
    let c = d.status.as_ref()?.conditions.as_ref()?.iter().find(|c| c.type_ == ty)?;
    Some((c.status.clone(), c.reason.clone().unwrap_or_default()))
}

/// What a watch of the pods with `app=NAME` has seen: live pods (not terminating) by name with
/// their readiness and pod-template-hash, and the extremes of the counts.
#[derive(Default)]
struct PodLog {
    live: HashMap<String, (bool, String)>,
    /// Every pod ever seen, by name, with its hash; removed on deletion.
    present: HashMap<String, String>,
    max_live: usize,
    min_ready_after_arm: Option<usize>,
    armed: bool,
    /// Times a pod of a new hash appeared while a pod of another hash still existed.
    overlaps: usize,
}

impl PodLog {
    fn ready(&self) -> usize {
        self.live.values().filter(|(r, _)| *r).count()
    }

    fn apply(&mut self, p: &Pod, deleted: bool) {
        let name = p.name_any();
        let hash = p.labels().get("pod-template-hash").cloned().unwrap_or_default();
        if deleted {
            self.live.remove(&name);
            self.present.remove(&name);
        } else {
            if !self.present.contains_key(&name) && self.present.values().any(|h| *h != hash) {
                self.overlaps += 1;
            }
            self.present.insert(name.clone(), hash.clone());
            if p.metadata.deletion_timestamp.is_some() {
                self.live.remove(&name);
            } else {
                let ready = p
                    .status
                    .as_ref()
                    .and_then(|s| s.conditions.as_ref())
                    .is_some_and(|cs| cs.iter().any(|c| c.type_ == "Ready" && c.status == "True"));
                self.live.insert(name, (ready, hash));
            }
        }
        self.max_live = self.max_live.max(self.live.len());
        if self.armed {
            let r = self.ready();
            self.min_ready_after_arm = Some(self.min_ready_after_arm.map_or(r, |m| m.min(r)));
        }
    }
}

/// Follows the objects labelled `app` in the background, handing each change (and whether it
/// was a deletion) to `apply` on a shared log.
fn follow<K, L>(client: &Client, app: &str, apply: fn(&mut L, &K, bool)) -> (Arc<Mutex<L>>, tokio::task::JoinHandle<()>)
where
    K: kube::Resource<DynamicType = (), Scope = k8s_openapi::NamespaceResourceScope>
        + Clone
        + serde::de::DeserializeOwned
        + std::fmt::Debug
        + Send
        + 'static,
    L: Default + Send + 'static,
{
    let log = Arc::new(Mutex::new(L::default()));
    let api: Api<K> = Api::namespaced(client.clone(), "default");
    let cfg = watcher::Config::default().labels(&format!("app={app}"));
    let l = log.clone();
    let task = tokio::spawn(async move {
        let mut s = watcher(api, cfg).boxed();
        while let Some(ev) = s.next().await {
            match ev {
                Ok(watcher::Event::Apply(o) | watcher::Event::InitApply(o)) => apply(&mut l.lock().unwrap(), &o, false),
                Ok(watcher::Event::Delete(o)) => apply(&mut l.lock().unwrap(), &o, true),
                _ => {}
            }
        }
    });
    (log, task)
}

/// What a watch of the ReplicaSets with `app=NAME` has seen once armed: the largest sum of
/// their `spec.replicas` and the smallest sum of their `status.availableReplicas` — the counts
/// upstream's maxSurge and maxUnavailable bound. (Pods themselves can briefly exceed them, on
/// upstream too: a scaled-down ReplicaSet deletes its pods after the new one has grown.)
#[derive(Default)]
struct RsLog {
    sets: HashMap<String, (i32, i32)>,
    armed: bool,
    max_spec: i32,
    min_available: Option<i32>,
}

impl RsLog {
    fn apply(&mut self, rs: &ReplicaSet, deleted: bool) {
        if deleted {
            self.sets.remove(&rs.name_any());
        } else {
            let available = rs.status.as_ref().and_then(|s| s.available_replicas).unwrap_or(0);
            self.sets.insert(rs.name_any(), (rs_replicas(rs), available));
        }
        if self.armed {
            let spec: i32 = self.sets.values().map(|v| v.0).sum();
            let available: i32 = self.sets.values().map(|v| v.1).sum();
            self.max_spec = self.max_spec.max(spec);
            self.min_available = Some(self.min_available.map_or(available, |m| m.min(available)));
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn rolling_update_stays_within_surge_and_unavailable_then_rolls_back_and_prunes_history() {
    let c = Cluster::start().await;
    let (log, watch) = follow(&c.client, "web", RsLog::apply);
    let mut d = deployment("web", 10, "nginx:1.7.9", rolling(json!("25%"), json!("25%")));
    d["spec"]["revisionHistoryLimit"] = json!(2);
    c.create(d).await;
    c.wait_complete("web").await;

    let rss = c.owned_rss("web").await;
    assert_eq!(rss.len(), 1);
    let first = &rss[0];
    let hash = first.labels()["pod-template-hash"].clone();
    assert_eq!(first.name_any(), format!("web-{hash}"));
    assert_eq!(revision(first), "1");
    let sel = &first.spec.as_ref().unwrap().selector.match_labels.clone().unwrap();
    assert_eq!(sel["pod-template-hash"], hash, "hash in the ReplicaSet selector");
    assert_eq!(first.annotations()["deployment.kubernetes.io/desired-replicas"], "10");
    assert_eq!(first.annotations()["deployment.kubernetes.io/max-replicas"], "13");
    let pods = c
        .pods()
        .list(&ListParams::default().labels("app=web"))
        .await
        .unwrap()
        .items;
    assert!(pods
        .iter()
        .all(|p| p.labels()["pod-template-hash"] == hash && p.name_any().starts_with(&format!("web-{hash}-"))));
    let dep = c.deployments().get("web").await.unwrap();
    assert_eq!(dep.annotations()[REVISION], "1");
    assert_eq!(
        condition(&dep, "Available"),
        Some(("True".into(), "MinimumReplicasAvailable".into()))
    );
    assert_eq!(
        condition(&dep, "Progressing"),
        Some(("True".into(), "NewReplicaSetAvailable".into()))
    );

    // The update: never more than 13 replicas wanted, never fewer than 8 available.
    log.lock().unwrap().armed = true;
    c.set_image("web", "nginx:1.9.1").await;
    c.wait_complete("web").await;
    {
        let l = log.lock().unwrap();
        assert!(l.max_spec <= 13, "at most replicas + maxSurge, saw {}", l.max_spec);
        assert!(l.max_spec > 10, "the update surged, saw at most {}", l.max_spec);
        let min = l.min_available.unwrap();
        assert!(min >= 8, "at least replicas - maxUnavailable available, saw {min}");
    }
    wait_for("old replica set scaled to 0", || async {
        let rss = c.by_image("web").await;
        rss.len() == 2 && rs_replicas(&rss["nginx:1.7.9"]) == 0 && rs_replicas(&rss["nginx:1.9.1"]) == 10
    })
    .await;
    let rss = c.by_image("web").await;
    assert_eq!(
        (
            revision(&rss["nginx:1.7.9"]).as_str(),
            revision(&rss["nginx:1.9.1"]).as_str()
        ),
        ("1", "2")
    );

    // Rollback (what `kubectl rollout undo` sends): the old ReplicaSet is reused, its revision
    // bumped with the old one kept in revision-history.
    c.set_image("web", "nginx:1.7.9").await;
    c.wait_complete("web").await;
    wait_for("rollback reuses the first replica set", || async {
        let rss = c.by_image("web").await;
        rss.len() == 2
            && rs_replicas(&rss["nginx:1.7.9"]) == 10
            && rs_replicas(&rss["nginx:1.9.1"]) == 0
            && revision(&rss["nginx:1.7.9"]) == "3"
    })
    .await;
    let rss = c.by_image("web").await;
    assert_eq!(rss["nginx:1.7.9"].name_any(), format!("web-{hash}"));
    assert_eq!(
        rss["nginx:1.7.9"].annotations()["deployment.kubernetes.io/revision-history"],
        "1"
    );
    assert_eq!(c.deployments().get("web").await.unwrap().annotations()[REVISION], "3");

    // Two more revisions with revisionHistoryLimit 2: the oldest scaled-down one goes.
    for image in ["nginx:1.9.2", "nginx:1.9.3"] {
        c.set_image("web", image).await;
        c.wait_complete("web").await;
    }
    wait_for("history pruned to 2 old replica sets", || async {
        let rss = c.owned_rss("web").await;
        rss.len() == 3
    })
    .await;
    let images: Vec<String> = c.owned_rss("web").await.iter().map(image_of).collect();
    assert!(!images.contains(&"nginx:1.9.1".to_string()), "{images:?}");

    // Events name the replica sets with the 1.33 wording.
    let events: Api<k8s_openapi::api::events::v1::Event> = Api::namespaced(c.client.clone(), "default");
    let evs = events.list(&ListParams::default()).await.unwrap().items;
    let want = format!("Scaled up replica set web-{hash} from 0 to 10");
    assert!(
        evs.iter().any(|e| e.reason.as_deref() == Some("ScalingReplicaSet")
            && e.note.as_deref() == Some(want.as_str())
            && e.reporting_controller.as_deref() == Some("deployment-controller")),
        "no {want:?} event"
    );
    assert!(evs.iter().any(|e| e
        .note
        .as_deref()
        .is_some_and(|n| n.starts_with("Scaled down replica set web-") && n.contains(" from 10 to "))));
    watch.abort();
    c.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn recreate_removes_old_pods_first_and_paused_deployments_wait() {
    let c = Cluster::start().await;
    let (log, watch) = follow(&c.client, "db", PodLog::apply);
    c.create(deployment("db", 3, "nginx:1.7.9", json!({"type": "Recreate"})))
        .await;
    c.wait_complete("db").await;
    c.set_image("db", "nginx:1.9.1").await;
    c.wait_complete("db").await;
    wait_for("one replica set with 3, the old at 0", || async {
        let rss = c.by_image("db").await;
        rss.len() == 2 && rs_replicas(&rss["nginx:1.9.1"]) == 3 && rs_replicas(&rss["nginx:1.7.9"]) == 0
    })
    .await;
    assert_eq!(
        log.lock().unwrap().overlaps,
        0,
        "a new pod appeared while an old one existed"
    );
    assert_eq!(log.lock().unwrap().max_live, 3);

    // Paused: a template change makes no new ReplicaSet until resumed.
    c.create(deployment("paused", 2, "nginx:1.7.9", rolling(json!(1), json!(0))))
        .await;
    c.wait_complete("paused").await;
    c.patch("paused", json!({"spec": {"paused": true}})).await;
    c.set_image("paused", "nginx:1.9.1").await;
    wait_for("paused condition observed", || async {
        let d = c.deployments().get("paused").await.unwrap();
        condition(&d, "Progressing") == Some(("Unknown".into(), "DeploymentPaused".into()))
    })
    .await;
    // Scaling still works while paused, on the current ReplicaSet.
    c.patch("paused", json!({"spec": {"replicas": 3}})).await;
    wait_for("paused deployment scaled", || async {
        let d = c.deployments().get("paused").await.unwrap();
        let st = d.status.clone().unwrap_or_default();
        st.observed_generation >= d.metadata.generation && st.available_replicas == Some(3)
    })
    .await;
    let rss = c.owned_rss("paused").await;
    assert_eq!(rss.len(), 1, "no new replica set while paused");
    assert_eq!(image_of(&rss[0]), "nginx:1.7.9");
    c.patch("paused", json!({"spec": {"paused": false}})).await;
    c.wait_complete("paused").await;
    wait_for("resumed rollout done", || async {
        let rss = c.by_image("paused").await;
        rss.len() == 2 && rss.get("nginx:1.9.1").is_some_and(|rs| rs_replicas(rs) == 3)
    })
    .await;
    watch.abort();
    c.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn bad_image_stalls_scales_proportionally_and_exceeds_the_deadline() {
    let c = Cluster::start().await;
    // The seed: 10 replicas at 25%/25%, then an image tag that does not exist.
    c.create(deployment(
        "mydeploy",
        10,
        "nginx:1.9.1",
        rolling(json!("25%"), json!("25%")),
    ))
    .await;
    c.wait_complete("mydeploy").await;
    let p = json!({"spec": {
        "progressDeadlineSeconds": 4,
        "template": {"spec": {"containers": [{"name": "c", "image": "nginx:1.9.21"}]}}
    }});
    c.patch("mydeploy", p).await;
    wait_for("rollout stalled at 8 old and 5 new", || async {
        let rss = c.by_image("mydeploy").await;
        rss.len() == 2
            && rss.get("nginx:1.9.1").is_some_and(|rs| rs_replicas(rs) == 8)
            && rss.get("nginx:1.9.21").is_some_and(|rs| rs_replicas(rs) == 5)
    })
    .await;
    wait_for("5 new pods failing to pull", || async {
        let pods = c
            .pods()
            .list(&ListParams::default().labels("app=mydeploy"))
            .await
            .unwrap()
            .items;
        let reasons: Vec<String> = pods
            .iter()
            .filter_map(|p| {
                let cs = p.status.as_ref()?.container_statuses.as_ref()?;
                cs[0].state.as_ref()?.waiting.as_ref()?.reason.clone()
            })
            .collect();
        reasons.len() == 5 && reasons.iter().all(|r| r == "ErrImagePull" || r == "ImagePullBackOff")
    })
    .await;
    let d = c.deployments().get("mydeploy").await.unwrap();
    let st = d.status.clone().unwrap();
    assert_eq!(
        (
            st.replicas,
            st.updated_replicas,
            st.available_replicas,
            st.unavailable_replicas
        ),
        (Some(13), Some(5), Some(8), Some(5))
    );
    assert_eq!(
        condition(&d, "Available"),
        Some(("True".into(), "MinimumReplicasAvailable".into()))
    );
    wait_for("progress deadline exceeded", || async {
        let d = c.deployments().get("mydeploy").await.unwrap();
        condition(&d, "Progressing") == Some(("False".into(), "ProgressDeadlineExceeded".into()))
    })
    .await;
    let d = c.deployments().get("mydeploy").await.unwrap();
    let msg = d
        .status
        .unwrap()
        .conditions
        .unwrap()
        .into_iter()
        .find(|c| c.type_ == "Progressing")
        .unwrap()
        .message;
    let new_name = c.by_image("mydeploy").await["nginx:1.9.21"].name_any();
    assert_eq!(msg, Some(format!("ReplicaSet {new_name:?} has timed out progressing.")));

    // Scaling mid-rollout spreads the new replicas over both ReplicaSets in proportion:
    // 13 → 25 (20 + 5 surge): the old 8 → 15, the new 5 → 10.
    c.patch("mydeploy", json!({"spec": {"replicas": 20}})).await;
    wait_for("proportional scaling", || async {
        let rss = c.owned_rss("mydeploy").await;
        let sizes: BTreeMap<String, i32> = rss.iter().map(|rs| (image_of(rs), rs_replicas(rs))).collect();
        sizes.get("nginx:1.9.1") == Some(&15) && sizes.get("nginx:1.9.21") == Some(&10)
    })
    .await;
    let rss = c.owned_rss("mydeploy").await;
    assert!(rss.iter().all(
        |rs| rs.annotations()["deployment.kubernetes.io/desired-replicas"] == "20"
            && rs.annotations()["deployment.kubernetes.io/max-replicas"] == "25"
    ));
    c.stop().await;
}
