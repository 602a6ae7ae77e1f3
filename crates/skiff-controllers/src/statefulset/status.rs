//! StatefulSet status as upstream computes it: counts over the set's pods, and the rolling
//! update completed once every pod is updated and ready.

use std::sync::Arc;

use k8s_openapi::api::apps::v1::{ControllerRevision, StatefulSet};
use k8s_openapi::api::core::v1::Pod;
use kube::api::{Patch, PatchParams};
use kube::{Api, ResourceExt};
use serde_json::json;

use super::{ignore_gone, revision_of, running_and_available, running_and_ready, terminating, Controller};
use crate::Error;

/// The status fields upstream computes (`computeReplicaStatus`).
#[derive(Default)]
pub(super) struct Counts {
    pub(super) replicas: i32,
    pub(super) ready: i32,
    pub(super) available: i32,
    pub(super) current: i32,
    pub(super) updated: i32,
}

pub(super) fn count(pods: &[Arc<Pod>], min_ready: i32, current: &str, update: &str, now: jiff::Timestamp) -> Counts {
    let mut c = Counts::default();
    for p in pods {
        c.replicas += 1;
        if running_and_ready(p) {
            c.ready += 1;
            if running_and_available(p, min_ready, now) {
                c.available += 1;
            }
        }
        if !terminating(p) {
            let rev = revision_of(p);
            c.current += i32::from(rev == current);
            c.updated += i32::from(rev == update);
        }
    }
    c
}

impl Controller {
    /// upstream `updateStatefulSetStatus`, with `completeRollingUpdate`: once every pod is
    /// updated and ready, the update revision becomes the current one.
    pub(super) async fn write_status(
        &self,
        set: &StatefulSet,
        c: &Counts,
        current: &ControllerRevision,
        update: &ControllerRevision,
        collisions: i32,
    ) -> Result<(), Error> {
        let spec = set.spec.as_ref();
        let rolling = spec
            .and_then(|s| s.update_strategy.as_ref())
            .and_then(|u| u.type_.as_deref())
            .is_none_or(|t| t == "RollingUpdate");
        let (mut current_replicas, mut current_revision) = (c.current, current.name_any());
        if rolling && c.updated == c.replicas && c.ready == c.replicas {
            current_replicas = c.updated;
            current_revision = update.name_any();
        }
        let want = json!({
            "observedGeneration": set.metadata.generation,
            "replicas": c.replicas,
            "readyReplicas": c.ready,
            "currentReplicas": current_replicas,
            "updatedReplicas": c.updated,
            "availableReplicas": c.available,
            "currentRevision": current_revision,
            "updateRevision": update.name_any(),
            "collisionCount": collisions,
        });
        let have = serde_json::to_value(set.status.clone().unwrap_or_default()).unwrap_or_default();
        let zero_default = |k: &str| match k {
            "currentRevision" | "updateRevision" => json!(null),
            "observedGeneration" => json!(null),
            _ => json!(0),
        };
        let same = want.as_object().is_some_and(|w| {
            w.iter()
                .all(|(k, v)| have.get(k).cloned().unwrap_or_else(|| zero_default(k)) == *v)
        });
        if same {
            return Ok(());
        }
        let api: Api<StatefulSet> = Api::namespaced(self.client.clone(), &set.namespace().unwrap_or_default());
        let res = api
            .patch_status(
                &set.name_any(),
                &PatchParams::default(),
                &Patch::Merge(&json!({"status": want})),
            )
            .await;
        ignore_gone(res).map(|_| ())
    }
}
