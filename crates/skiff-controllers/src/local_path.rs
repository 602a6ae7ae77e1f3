//! Local-path provisioner, as k3s ships it (rancher.io/local-path): every Pending claim of a
//! class with this provisioner gets a PersistentVolume `pvc-<claim uid>` backed by the host
//! directory `<base_dir>/pvc-<uid>_<namespace>_<name>`, and is bound to it. When the claim
//! goes away its volume is Released and, with reclaim policy Delete, the directory and the
//! volume are removed.
//!
//! Binding is immediate for every class of this provisioner, `WaitForFirstConsumer` included:
//! all nodes of a skiff cluster share the host, so any node can use the directory.

use std::collections::BTreeMap;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::events::{Event, EventType, Recorder, Reporter};
use k8s_openapi::api::core::v1::{PersistentVolume, PersistentVolumeClaim};
use k8s_openapi::api::storage::v1::StorageClass;
use kube::api::{DeleteParams, Patch, PatchParams, PostParams};
use kube::runtime::reflector::Store;
use kube::{Api, Client, Resource, ResourceExt};
use serde_json::json;

use crate::informer::Informers;
use crate::Error;

/// The provisioner name classes use to select this controller.
pub const PROVISIONER: &str = "rancher.io/local-path";
/// Annotation naming the provisioner of a dynamically provisioned volume.
const PROVISIONED_BY: &str = "pv.kubernetes.io/provisioned-by";
/// How often the cached objects are reconciled.
const RESYNC: Duration = Duration::from_millis(250);

/// Settings of the controller.
#[derive(Debug, Clone)]
pub struct Options {
    /// Directory holding one subdirectory per provisioned volume.
    pub base_dir: PathBuf,
}

struct Controller {
    client: Client,
    opts: Options,
    classes: Store<StorageClass>,
    claims: Store<PersistentVolumeClaim>,
    volumes: Store<PersistentVolume>,
    /// Keeps the watches running.
    _informers: Informers,
    recorder: Recorder,
}

/// Runs the controller until the future is dropped.
pub async fn run(client: Client, opts: Options) -> Result<(), Error> {
    let informers = Informers::new(client.clone());
    let classes = informers.synced().await?;
    let claims = informers.synced().await?;
    let volumes = informers.synced().await?;
    let reporter = Reporter {
        controller: format!("{PROVISIONER}_skiff"),
        instance: None,
    };
    let recorder = Recorder::new(client.clone(), reporter);
    let c = Controller {
        client,
        opts,
        classes,
        claims,
        volumes,
        recorder,
        _informers: informers,
    };
    let mut ticker = tokio::time::interval(RESYNC);
    loop {
        ticker.tick().await;
        c.reconcile_all().await;
    }
}

/// The volume name of a claim.
fn volume_name(claim: &PersistentVolumeClaim) -> String {
    format!("pvc-{}", claim.uid().unwrap_or_default())
}

fn claim_class(claim: &PersistentVolumeClaim) -> Option<String> {
    claim
        .annotations()
        .get("volume.beta.kubernetes.io/storage-class")
        .cloned()
        .or_else(|| claim.spec.as_ref().and_then(|s| s.storage_class_name.clone()))
        .filter(|c| !c.is_empty())
}

fn claim_phase(claim: &PersistentVolumeClaim) -> &str {
    claim
        .status
        .as_ref()
        .and_then(|s| s.phase.as_deref())
        .unwrap_or("Pending")
}

fn pv_phase(pv: &PersistentVolume) -> &str {
    pv.status.as_ref().and_then(|s| s.phase.as_deref()).unwrap_or("")
}

impl Controller {
    async fn reconcile_all(&self) {
        let classes: BTreeMap<String, _> = self
            .classes
            .state()
            .into_iter()
            .filter(|c| c.provisioner == PROVISIONER)
            .map(|c| (c.name_any(), c))
            .collect();
        for claim in self.claims.state() {
            if claim.metadata.deletion_timestamp.is_some() || claim_phase(&claim) != "Pending" {
                continue;
            }
            let Some(class) = claim_class(&claim).and_then(|c| classes.get(&c).cloned()) else {
                continue;
            };
            if let Err(e) = self.provision(&claim, &class).await {
                tracing::warn!(claim = %claim.name_any(), error = %e, "provisioning a local-path volume failed");
            }
        }
        for pv in self.volumes.state() {
            if pv.annotations().get(PROVISIONED_BY).map(String::as_str) != Some(PROVISIONER) {
                continue;
            }
            if let Err(e) = self.reclaim(&pv).await {
                tracing::warn!(volume = %pv.name_any(), error = %e, "reclaiming a local-path volume failed");
            }
        }
    }

    /// The host directory of a claim's volume.
    fn dir_of(&self, claim: &PersistentVolumeClaim) -> PathBuf {
        self.opts.base_dir.join(format!(
            "{}_{}_{}",
            volume_name(claim),
            claim.namespace().unwrap_or_default(),
            claim.name_any()
        ))
    }

    /// Creates (if needed) the volume of a Pending claim and binds the two.
    async fn provision(&self, claim: &PersistentVolumeClaim, class: &StorageClass) -> Result<(), Error> {
        let ns = claim.namespace().unwrap_or_default();
        let name = claim.name_any();
        let spec = claim.spec.clone().unwrap_or_default();
        let Some(size) = spec
            .resources
            .as_ref()
            .and_then(|r| r.requests.as_ref())
            .and_then(|r| r.get("storage"))
        else {
            return Ok(());
        };
        let pv_name = volume_name(claim);
        let pvs: Api<PersistentVolume> = Api::all(self.client.clone());
        let claims: Api<PersistentVolumeClaim> = Api::namespaced(self.client.clone(), &ns);
        let modes = spec
            .access_modes
            .clone()
            .unwrap_or_else(|| vec!["ReadWriteOnce".into()]);
        let pv = match pvs.get_opt(&pv_name).await? {
            Some(pv) => pv,
            None => {
                let dir = self.dir_of(claim);
                if let Err(e) = make_dir(&dir) {
                    let note = format!(
                        "failed to provision volume with StorageClass \"{}\": {e}",
                        class.name_any()
                    );
                    self.event(claim, EventType::Warning, "ProvisioningFailed", note).await;
                    return Ok(());
                }
                let pv: PersistentVolume = serde_json::from_value(json!({
                    "metadata": {"name": pv_name, "annotations": {PROVISIONED_BY: PROVISIONER}},
                    "spec": {
                        "capacity": {"storage": size},
                        "accessModes": modes,
                        "persistentVolumeReclaimPolicy": class.reclaim_policy.as_deref().unwrap_or("Delete"),
                        "storageClassName": class.name_any(),
                        "volumeMode": spec.volume_mode.as_deref().unwrap_or("Filesystem"),
                        "hostPath": {"path": dir.to_string_lossy(), "type": "DirectoryOrCreate"},
                        "claimRef": {
                            "apiVersion": "v1", "kind": "PersistentVolumeClaim", "namespace": ns, "name": name,
                            "uid": claim.uid(), "resourceVersion": claim.resource_version(),
                        },
                    },
                }))
                .map_err(|e| Error::Sync(e.to_string()))?;
                let pv = match pvs.create(&PostParams::default(), &pv).await {
                    Ok(pv) => pv,
                    Err(kube::Error::Api(e)) if e.code == 409 => pvs.get(&pv_name).await?,
                    Err(e) => return Err(e.into()),
                };
                self.event(
                    claim,
                    EventType::Normal,
                    "ProvisioningSucceeded",
                    format!("Successfully provisioned volume {pv_name}"),
                )
                .await;
                pv
            }
        };
        let pp = PatchParams::default();
        if pv_phase(&pv) != "Bound" {
            pvs.patch_status(&pv_name, &pp, &Patch::Merge(json!({"status": {"phase": "Bound"}})))
                .await?;
        }
        let capacity = pv.spec.as_ref().and_then(|s| s.capacity.clone()).unwrap_or_default();
        let modes = pv.spec.as_ref().and_then(|s| s.access_modes.clone()).unwrap_or(modes);
        if spec.volume_name.as_deref().unwrap_or("").is_empty() {
            let patch = json!({
                "metadata": {"annotations": {
                    "pv.kubernetes.io/bind-completed": "yes",
                    "pv.kubernetes.io/bound-by-controller": "yes",
                    "volume.beta.kubernetes.io/storage-provisioner": PROVISIONER,
                    "volume.kubernetes.io/storage-provisioner": PROVISIONER,
                }},
                "spec": {"volumeName": pv_name},
            });
            claims.patch(&name, &pp, &Patch::Merge(patch)).await?;
        }
        let status = json!({"status": {"phase": "Bound", "capacity": capacity, "accessModes": modes}});
        claims.patch_status(&name, &pp, &Patch::Merge(status)).await?;
        Ok(())
    }

    /// Releases a volume whose claim is gone and deletes it (and its directory) when its
    /// reclaim policy is Delete.
    async fn reclaim(&self, pv: &PersistentVolume) -> Result<(), Error> {
        let spec = pv.spec.clone().unwrap_or_default();
        let Some(claim_ref) = spec.claim_ref.as_ref() else {
            return Ok(());
        };
        let (Some(ns), Some(name)) = (claim_ref.namespace.as_deref(), claim_ref.name.as_deref()) else {
            return Ok(());
        };
        let pvs: Api<PersistentVolume> = Api::all(self.client.clone());
        let pv_name = pv.name_any();
        if pv_phase(pv) != "Released" {
            let cached = self
                .claims
                .state()
                .into_iter()
                .any(|c| c.namespace().as_deref() == Some(ns) && c.name_any() == name && c.uid() == claim_ref.uid);
            if cached {
                return Ok(());
            }
            // The cache may lag: ask the server before releasing.
            let claims: Api<PersistentVolumeClaim> = Api::namespaced(self.client.clone(), ns);
            if let Some(c) = claims.get_opt(name).await? {
                if c.uid() == claim_ref.uid {
                    return Ok(());
                }
            }
            pvs.patch_status(
                &pv_name,
                &PatchParams::default(),
                &Patch::Merge(json!({"status": {"phase": "Released"}})),
            )
            .await?;
        }
        if spec.persistent_volume_reclaim_policy.as_deref() != Some("Delete") {
            return Ok(());
        }
        if let Some(path) = spec.host_path.as_ref().map(|h| PathBuf::from(&h.path)) {
            // Only directories this controller made are removed.
            if path.starts_with(&self.opts.base_dir) && path != self.opts.base_dir {
                match std::fs::remove_dir_all(&path) {
                    Ok(()) => {}
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                    Err(e) => {
                        tracing::warn!(volume = %pv_name, path = %path.display(), error = %e, "removing a volume directory failed");
                        return Ok(());
                    }
                }
            }
        }
        match pvs.delete(&pv_name, &DeleteParams::default()).await {
            Ok(_) => Ok(()),
            Err(kube::Error::Api(e)) if e.code == 404 => Ok(()),
            Err(e) => Err(e.into()),
        }
    }

    async fn event(&self, claim: &PersistentVolumeClaim, type_: EventType, reason: &str, note: String) {
        let ev = Event {
            type_,
            reason: reason.into(),
            note: Some(note),
            action: "Provisioning".into(),
            secondary: None,
        };
        let _ = self.recorder.publish(&ev, &claim.object_ref(&())).await;
    }
}

/// Creates a volume directory open to every user (mode 0777, as local-path's helper does).
fn make_dir(dir: &Path) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o777))
}
