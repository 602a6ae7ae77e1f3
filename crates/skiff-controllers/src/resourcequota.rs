//! The ResourceQuota controller: keeps each quota's `status.hard` equal to its spec and
//! `status.used` equal to what its namespace holds (upstream `resourcequota-controller`), so
//! admission can charge new objects against it.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::pin::Pin;
use std::time::Duration;

use futures::{FutureExt, Stream, StreamExt};
use k8s_openapi::api::core::v1::{
    ConfigMap, PersistentVolumeClaim, Pod, ReplicationController, ResourceQuota, Secret, Service,
};
use kube::api::{ListParams, Patch, PatchParams};
use kube::core::{ApiResource, DynamicObject, PartialObjectMeta};
use kube::discovery::{verbs, Discovery, Scope};
use kube::runtime::reflector::{self, Store};
use kube::runtime::{watcher, WatchStreamExt};
use kube::{Api, Client, Resource, ResourceExt};
use serde_json::json;
use skiff_api::quota::{self, Usage};

use crate::Error;

/// upstream resyncs every 5 minutes; object counts of kinds without a watch here follow this.
const RESYNC: Duration = Duration::from_secs(30);
/// Changes arriving together are folded into one recomputation per namespace.
const BATCH: Duration = Duration::from_millis(100);

/// Runs the ResourceQuota controller until the future is dropped.
pub async fn run(client: Client) -> Result<(), Error> {
    let (quotas, writer) = reflector::store::<ResourceQuota>();
    type Boxed = Pin<Box<dyn Stream<Item = Trigger> + Send>>;
    let quota_events = reflector::reflector(
        writer,
        watcher(Api::<ResourceQuota>::all(client.clone()), watcher::Config::default()).default_backoff(),
    )
    .filter_map(|e| async move {
        match e.ok()? {
            watcher::Event::Apply(q) | watcher::Event::InitApply(q) => q.namespace().map(Trigger::Namespace),
            watcher::Event::InitDone => Some(Trigger::Synced),
            _ => None,
        }
    });
    // Changes to the kinds quotas usually count; other kinds are recounted on resync.
    let streams: Vec<Boxed> = vec![
        quota_events.boxed(),
        changes::<Pod>(&client),
        changes::<Service>(&client),
        changes::<PersistentVolumeClaim>(&client),
        changes::<ConfigMap>(&client),
        changes::<Secret>(&client),
        changes::<ReplicationController>(&client),
    ];
    let mut events = futures::stream::select_all(streams);
    let mut c = Controller {
        client,
        quotas,
        resources: HashMap::new(),
    };
    let mut dirty: HashSet<String> = HashSet::new();
    let mut synced = false;
    let mut tick = tokio::time::interval(RESYNC);
    loop {
        tokio::select! {
            ev = events.next() => {
                let Some(ev) = ev else { return Ok(()) };
                let mut take = |ev| match ev {
                    Trigger::Namespace(ns) => { dirty.insert(ns); }
                    Trigger::Synced => synced = true,
                };
                take(ev);
                tokio::time::sleep(BATCH).await;
                while let Some(Some(ev)) = events.next().now_or_never() {
                    take(ev);
                }
            }
            _ = tick.tick() => dirty.extend(c.quotas.state().iter().filter_map(|q| q.namespace())),
        }
        if !synced {
            continue;
        }
        for ns in std::mem::take(&mut dirty) {
            if let Err(e) = c.sync(&ns).await {
                tracing::debug!(namespace = %ns, error = %e, "quota sync failed (retried)");
                dirty.insert(ns);
            }
        }
    }
}

enum Trigger {
    Namespace(String),
    Synced,
}

/// The namespaces of changed objects of kind `K`, from a metadata-only watch.
fn changes<K>(client: &Client) -> Pin<Box<dyn Stream<Item = Trigger> + Send>>
where
    K: Resource<DynamicType = ()> + Clone + serde::de::DeserializeOwned + std::fmt::Debug + Send + Sync + 'static,
{
    watcher(
        Api::<PartialObjectMeta<K>>::all(client.clone()),
        watcher::Config::default(),
    )
    .default_backoff()
    .filter_map(|e| async move {
        match e.ok()? {
            watcher::Event::Apply(o) | watcher::Event::Delete(o) => o.namespace().map(Trigger::Namespace),
            _ => None,
        }
    })
    .boxed()
}

struct Controller {
    client: Client,
    quotas: Store<ResourceQuota>,
    /// `(group, plural)` → how to reach it, from discovery.
    resources: HashMap<(String, String), ApiResource>,
}

impl Controller {
    /// Recomputes usage for every quota in `ns` and writes the statuses that changed.
    async fn sync(&mut self, ns: &str) -> Result<(), Error> {
        let quotas: Vec<_> = self
            .quotas
            .state()
            .into_iter()
            .filter(|q| q.namespace().as_deref() == Some(ns) && q.metadata.deletion_timestamp.is_none())
            .collect();
        if quotas.is_empty() {
            return Ok(());
        }
        // Which kinds the quotas' resource names concern.
        let names: HashSet<String> = quotas
            .iter()
            .filter_map(|q| q.spec.as_ref()?.hard.as_ref())
            .flat_map(|h| h.keys().cloned())
            .collect();
        let kinds = self.kinds_for(&names).await?;
        let now = jiff::Timestamp::now();
        let mut objects: Vec<(String, String, serde_json::Value)> = Vec::new();
        for (group, plural) in kinds {
            let Some(ar) = self.resources.get(&(group.clone(), plural.clone())) else {
                continue;
            };
            let api: Api<DynamicObject> = Api::namespaced_with(self.client.clone(), ns, ar);
            for o in api.list(&ListParams::default()).await?.items {
                objects.push((
                    group.clone(),
                    plural.clone(),
                    serde_json::to_value(o).unwrap_or_default(),
                ));
            }
        }
        for q in quotas {
            let hard = q.spec.as_ref().and_then(|s| s.hard.clone()).unwrap_or_default();
            let hard_json = serde_json::to_value(&hard).unwrap_or_default();
            let qjson = serde_json::to_value(&*q).unwrap_or_default();
            let mut used: Usage = hard.keys().map(|k| (k.clone(), Default::default())).collect();
            for (group, plural, obj) in &objects {
                if !quota::scopes_match(&qjson, plural, obj) {
                    continue;
                }
                let u: Usage = quota::usage(group, plural, obj, now)
                    .into_iter()
                    .filter(|(k, _)| hard.contains_key(k))
                    .collect();
                quota::add(&mut used, &u);
            }
            let used_json = quota::to_list(&used);
            let status = q.status.as_ref();
            let same = status
                .and_then(|s| s.hard.as_ref())
                .map(serde_json::to_value)
                .and_then(Result::ok)
                == Some(hard_json.clone())
                && status.and_then(|s| s.used.as_ref()).map(|u| same_amounts(u, &used)) == Some(true);
            if same {
                continue;
            }
            tracing::debug!(namespace = ns, quota = %q.name_any(), used = %quota::pretty(&used), "quota usage changed");
            let api: Api<ResourceQuota> = Api::namespaced(self.client.clone(), ns);
            let patch = json!({"status": {"hard": hard_json, "used": used_json}});
            match api
                .patch_status(&q.name_any(), &PatchParams::default(), &Patch::Merge(&patch))
                .await
            {
                Err(kube::Error::Api(e)) if e.code == 404 => {}
                r => {
                    r?;
                }
            }
        }
        Ok(())
    }

    /// The `(group, plural)` of every kind the resource names count, discovering kinds named
    /// by `count/<plural>.<group>` on first sight.
    async fn kinds_for(&mut self, names: &HashSet<String>) -> Result<Vec<(String, String)>, Error> {
        let mut kinds: Vec<(String, String)> = Vec::new();
        let core = |p: &str| ("".to_string(), p.to_string());
        for n in names {
            let kind = match n.as_str() {
                "pods" | "cpu" | "memory" | "ephemeral-storage" => core("pods"),
                "services" | "services.nodeports" | "services.loadbalancers" => core("services"),
                "persistentvolumeclaims" | "requests.storage" => core("persistentvolumeclaims"),
                "configmaps" | "secrets" | "replicationcontrollers" | "resourcequotas" => core(n),
                n if n.contains(".storageclass.storage.k8s.io/") => core("persistentvolumeclaims"),
                n if n.starts_with("requests.") || n.starts_with("limits.") || n.starts_with("hugepages-") => {
                    core("pods")
                }
                n => match n.strip_prefix("count/") {
                    Some(rest) => match rest.split_once('.') {
                        Some((plural, group)) => (group.to_string(), plural.to_string()),
                        None => core(rest),
                    },
                    None => continue,
                },
            };
            if !kinds.contains(&kind) {
                kinds.push(kind);
            }
        }
        if kinds.iter().any(|k| !self.resources.contains_key(k)) {
            self.discover().await?;
        }
        Ok(kinds)
    }

    async fn discover(&mut self) -> Result<(), Error> {
        let discovery = Discovery::new(self.client.clone()).run().await?;
        for group in discovery.groups() {
            for (ar, caps) in group.recommended_resources() {
                if caps.scope == Scope::Namespaced && caps.supports_operation(verbs::LIST) {
                    self.resources.insert((ar.group.clone(), ar.plural.clone()), ar);
                }
            }
        }
        Ok(())
    }
}

/// Whether a stored `used` list holds the same amounts (quantities may be spelled differently).
fn same_amounts(
    stored: &BTreeMap<String, k8s_openapi::apimachinery::pkg::api::resource::Quantity>,
    used: &Usage,
) -> bool {
    stored.len() == used.len()
        && used.iter().all(|(k, v)| {
            stored
                .get(k)
                .is_some_and(|q| quota::Amount::parse(&q.0).milli == v.milli)
        })
}
