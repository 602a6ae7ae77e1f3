//! Per-namespace defaults: the ServiceAccount controller keeps a `default` ServiceAccount in
//! every active namespace, and the root CA publisher keeps the `kube-root-ca.crt` ConfigMap
//! holding the cluster CA (upstream `serviceaccounts-controller` and `root-ca-cert-publisher`).

use std::collections::{BTreeMap, HashSet};
use std::pin::Pin;
use std::time::Duration;

use futures::{FutureExt, Stream, StreamExt};
use k8s_openapi::api::core::v1::{ConfigMap, Namespace, ServiceAccount};
use kube::api::{Patch, PatchParams, PostParams};
use kube::core::PartialObjectMeta;
use kube::runtime::reflector::{self, ObjectRef, Store};
use kube::runtime::{watcher, WatchStreamExt};
use kube::{Api, Client, ResourceExt};
use serde_json::json;

use crate::Error;

/// The ServiceAccount every namespace gets.
const DEFAULT_SA: &str = "default";
/// The ConfigMap carrying the CA bundle.
const ROOT_CA: &str = "kube-root-ca.crt";
/// upstream's description annotation on the CA ConfigMap.
const DESCRIPTION: &str = "Contains a CA bundle that can be used to verify the kube-apiserver when using internal \
     endpoints such as the internal service IP or kubernetes.default.svc. No other usage is guaranteed across \
     distributions of Kubernetes clusters.";
/// How often every namespace is looked at again.
const RESYNC: Duration = Duration::from_secs(30);

/// Runs the ServiceAccount controller until the future is dropped.
pub async fn run(client: Client) -> Result<(), Error> {
    run_with(client, None).await
}

/// Runs the ServiceAccount controller and, with `ca_pem`, the root CA publisher.
pub async fn run_with(client: Client, ca_pem: Option<String>) -> Result<(), Error> {
    let (namespaces, ns_writer) = reflector::store::<Namespace>();
    type Boxed = Pin<Box<dyn Stream<Item = Option<String>> + Send>>;
    let ns_events = reflector::reflector(
        ns_writer,
        watcher(Api::<Namespace>::all(client.clone()), watcher::Config::default()).default_backoff(),
    )
    .filter_map(|e| async move {
        match e.ok()? {
            watcher::Event::Apply(n) | watcher::Event::InitApply(n) => Some(Some(n.name_any())),
            watcher::Event::InitDone => Some(None),
            _ => None,
        }
    });
    // A deleted or edited default object is put back.
    let sa_events = watcher(
        Api::<PartialObjectMeta<ServiceAccount>>::all(client.clone()),
        watcher::Config::default().fields(&format!("metadata.name={DEFAULT_SA}")),
    )
    .default_backoff()
    .filter_map(|e| async move {
        match e.ok()? {
            watcher::Event::Delete(o) => Some(o.namespace()),
            _ => None,
        }
    });
    let mut streams: Vec<Boxed> = vec![ns_events.boxed(), sa_events.boxed()];
    if ca_pem.is_some() {
        let cm_events = watcher(
            Api::<PartialObjectMeta<ConfigMap>>::all(client.clone()),
            watcher::Config::default().fields(&format!("metadata.name={ROOT_CA}")),
        )
        .default_backoff()
        .filter_map(|e| async move {
            match e.ok()? {
                watcher::Event::Delete(o) | watcher::Event::Apply(o) => Some(o.namespace()),
                _ => None,
            }
        });
        streams.push(cm_events.boxed());
    }
    let mut events = futures::stream::select_all(streams);
    let c = Controller {
        client,
        namespaces,
        ca_pem,
    };
    let mut dirty: HashSet<String> = HashSet::new();
    let mut synced = false;
    let mut tick = tokio::time::interval(RESYNC);
    loop {
        tokio::select! {
            ev = events.next() => {
                let Some(ev) = ev else { return Ok(()) };
                let mut take = |ev: Option<String>| match ev {
                    Some(ns) => { dirty.insert(ns); }
                    None => synced = true,
                };
                take(ev);
                while let Some(Some(ev)) = events.next().now_or_never() {
                    take(ev);
                }
            }
            _ = tick.tick() => dirty.extend(c.namespaces.state().iter().map(|n| n.name_any())),
        }
        if !synced {
            continue;
        }
        for ns in std::mem::take(&mut dirty) {
            if let Err(e) = c.sync(&ns).await {
                tracing::debug!(namespace = %ns, error = %e, "service account sync failed (retried)");
                dirty.insert(ns);
            }
        }
    }
}

struct Controller {
    client: Client,
    namespaces: Store<Namespace>,
    ca_pem: Option<String>,
}

impl Controller {
    async fn sync(&self, ns: &str) -> Result<(), Error> {
        let Some(namespace) = self.namespaces.get(&ObjectRef::new(ns)) else {
            return Ok(());
        };
        // upstream: nothing is added to a namespace that is going away.
        let active = namespace.metadata.deletion_timestamp.is_none()
            && namespace.status.as_ref().and_then(|s| s.phase.as_deref()) != Some("Terminating");
        if !active {
            return Ok(());
        }
        let sas: Api<ServiceAccount> = Api::namespaced(self.client.clone(), ns);
        if sas.get_metadata_opt(DEFAULT_SA).await?.is_none() {
            let sa = ServiceAccount {
                metadata: kube::api::ObjectMeta {
                    name: Some(DEFAULT_SA.into()),
                    ..Default::default()
                },
                ..Default::default()
            };
            tracing::debug!(namespace = ns, "creating the default service account");
            ignore_benign(sas.create(&PostParams::default(), &sa).await.map(|_| ()))?;
        }
        if let Some(pem) = &self.ca_pem {
            self.publish_ca(ns, pem).await?;
        }
        Ok(())
    }

    async fn publish_ca(&self, ns: &str, pem: &str) -> Result<(), Error> {
        let cms: Api<ConfigMap> = Api::namespaced(self.client.clone(), ns);
        let data = BTreeMap::from([("ca.crt".to_string(), pem.to_string())]);
        match cms.get_opt(ROOT_CA).await? {
            None => {
                let cm = ConfigMap {
                    metadata: kube::api::ObjectMeta {
                        name: Some(ROOT_CA.into()),
                        annotations: Some(BTreeMap::from([(
                            "kubernetes.io/description".to_string(),
                            DESCRIPTION.to_string(),
                        )])),
                        ..Default::default()
                    },
                    data: Some(data),
                    ..Default::default()
                };
                tracing::debug!(namespace = ns, "publishing the root CA");
                ignore_benign(cms.create(&PostParams::default(), &cm).await.map(|_| ()))
            }
            Some(cm) if cm.data.as_ref() != Some(&data) => {
                tracing::debug!(namespace = ns, "restoring the root CA");
                let patch = json!({"data": data});
                ignore_benign(
                    cms.patch(ROOT_CA, &PatchParams::default(), &Patch::Merge(&patch))
                        .await
                        .map(|_| ()),
                )
            }
            Some(_) => Ok(()),
        }
    }
}

/// Conflicts with a concurrent creation and namespaces that began terminating are not errors.
fn ignore_benign(r: Result<(), kube::Error>) -> Result<(), Error> {
    match r {
        Err(kube::Error::Api(e)) if e.code == 409 || e.code == 404 => Ok(()),
        Err(kube::Error::Api(e)) if e.code == 403 && e.message.contains("being terminated") => Ok(()),
        r => r.map_err(Error::from),
    }
}
