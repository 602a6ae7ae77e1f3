//! upstream `recreate.go`: every old pod is gone before the new ReplicaSet is created and
//! scaled up.

use std::time::Duration;

use k8s_openapi::api::apps::v1::ReplicaSet;
use kube::ResourceExt;

use super::progress;
use super::sync::{active, Ctx};
use super::util::*;
use crate::pods::{controller_of, selector_matches};
use crate::Error;

impl Ctx<'_> {
    /// upstream: `rolloutRecreate`.
    pub(super) async fn rollout_recreate(&mut self, list: Vec<ReplicaSet>) -> Result<Option<Duration>, Error> {
        // The new ReplicaSet is not created yet, so nothing scales up before the old are down.
        let (new, mut old) = self.all_rs_synced(list, false).await?;
        let mut scaled_down = false;
        for rs in old.iter_mut().filter(|rs| active(rs)) {
            scaled_down |= self.scale_and_record(rs, 0).await?;
        }
        if scaled_down || self.old_pods_running(new.as_ref(), &old) {
            return self.sync_rollout_status(&old, new.as_ref()).await;
        }
        let (new, old) = match new {
            Some(n) => (Some(n), old),
            None => self.all_rs_synced(old, true).await?,
        };
        let Some(mut new) = new else {
            return Ok(None);
        };
        self.scale_and_record(&mut new, replicas(&self.d)).await?;
        if progress::complete(&self.d, &self.status()) {
            self.cleanup(&old).await?;
        }
        self.sync_rollout_status(&old, Some(&new)).await
    }

    /// upstream: `oldPodsRunning` — old ReplicaSets still report pods, or the cache still has a
    /// non-terminal pod of one of them.
    fn old_pods_running(&self, new: Option<&ReplicaSet>, old: &[ReplicaSet]) -> bool {
        if old.iter().map(rs_actual).sum::<i32>() > 0 {
            return true;
        }
        let new_uid = new.and_then(|rs| rs.uid());
        let old_uids: Vec<String> = old.iter().filter_map(|rs| rs.uid()).collect();
        let sel = self.d.spec.as_ref().map(|s| s.selector.clone()).unwrap_or_default();
        self.c.pods.state().iter().any(|p| {
            if p.namespace().as_deref() != Some(&self.ns) || !selector_matches(&sel, p.labels()) {
                return false;
            }
            let Some(owner) = controller_of(&p.metadata) else {
                return false;
            };
            if Some(&owner.uid) == new_uid.as_ref() || !old_uids.contains(&owner.uid) {
                return false;
            }
            let phase = p.status.as_ref().and_then(|s| s.phase.as_deref());
            !matches!(phase, Some("Succeeded" | "Failed"))
        })
    }
}
