//! upstream `rolling.go`: the new ReplicaSet grows up to replicas + maxSurge pods in all, old
//! ones shrink while at least replicas − maxUnavailable pods stay available.

use std::time::Duration;

use k8s_openapi::api::apps::v1::ReplicaSet;

use super::progress;
use super::sync::{active, Ctx};
use super::util::*;
use crate::Error;

impl Ctx<'_> {
    /// upstream: `rolloutRolling` — one step per sync: scale up if possible, else scale down.
    pub(super) async fn rollout_rolling(&mut self, list: Vec<ReplicaSet>) -> Result<Option<Duration>, Error> {
        let (new, mut old) = self.all_rs_synced(list, true).await?;
        let Some(mut new) = new else {
            return Ok(None);
        };
        if self.reconcile_new(&mut new, &old).await? {
            return self.sync_rollout_status(&old, Some(&new)).await;
        }
        if self.reconcile_old(&mut old, &new).await? {
            return self.sync_rollout_status(&old, Some(&new)).await;
        }
        if progress::complete(&self.d, &self.status()) {
            self.cleanup(&old).await?;
        }
        self.sync_rollout_status(&old, Some(&new)).await
    }

    /// upstream: `reconcileNewReplicaSet`.
    async fn reconcile_new(&self, new: &mut ReplicaSet, old: &[ReplicaSet]) -> Result<bool, Error> {
        let want = replicas(&self.d);
        if rs_replicas(new) == want {
            return Ok(false);
        }
        if rs_replicas(new) > want {
            return self.scale_and_record(new, want).await;
        }
        let count = {
            let all: Vec<&ReplicaSet> = old.iter().chain(std::iter::once(&*new)).collect();
            self.new_rs_new_replicas(&all, new)
        };
        self.scale_and_record(new, count).await
    }

    /// upstream: `reconcileOldReplicaSets` — never below replicas − maxUnavailable available,
    /// counting the new ReplicaSet's unavailable pods against the budget; unhealthy old
    /// replicas go first so they cannot block the rollout.
    async fn reconcile_old(&self, old: &mut [ReplicaSet], new: &ReplicaSet) -> Result<bool, Error> {
        let old_count = spec_sum(old.iter());
        if old_count == 0 {
            return Ok(false);
        }
        let all_count = old_count + rs_replicas(new);
        let min_available = replicas(&self.d) - max_unavailable(&self.d);
        let new_unavailable = rs_replicas(new) - rs_available(new);
        let max_scaled_down = all_count - min_available - new_unavailable;
        tracing::debug!(deployment = %self.name, all_count, min_available, new_unavailable, max_scaled_down, "reconciling old replica sets");
        if max_scaled_down <= 0 {
            return Ok(false);
        }
        old.sort_by(by_creation);
        let cleaned = self.cleanup_unhealthy(old, max_scaled_down).await?;
        let scaled = self.scale_down_old(old, new).await?;
        Ok(cleaned + scaled > 0)
    }

    /// upstream: `cleanupUnhealthyReplicas` — old ReplicaSets lose their unavailable replicas
    /// first (the ReplicaSet controller deletes not-ready pods first).
    async fn cleanup_unhealthy(&self, old: &mut [ReplicaSet], max_cleanup: i32) -> Result<i32, Error> {
        let mut total = 0;
        for rs in old.iter_mut().filter(|rs| active(rs)) {
            if total >= max_cleanup {
                break;
            }
            let unhealthy = rs_replicas(rs) - rs_available(rs);
            if unhealthy <= 0 {
                continue;
            }
            let down = (max_cleanup - total).min(unhealthy);
            let to = rs_replicas(rs) - down;
            self.scale_and_record(rs, to).await?;
            total += down;
        }
        Ok(total)
    }

    /// upstream: `scaleDownOldReplicaSetsForRollingUpdate` — oldest first, as far as the
    /// available pods above the minimum allow.
    ///
    /// Unlike upstream, a ReplicaSet counts at most `spec.replicas` available pods: right after
    /// a scale-down its status still counts the pods about to go, and trusting it would let a
    /// second step take the same pods off again (seen as 7 of 10 available with
    /// maxUnavailable 2).
    async fn scale_down_old(&self, old: &mut [ReplicaSet], new: &ReplicaSet) -> Result<i32, Error> {
        let min_available = replicas(&self.d) - max_unavailable(&self.d);
        let counted = |rs: &ReplicaSet| rs_available(rs).min(rs_replicas(rs));
        let available: i32 = old.iter().map(counted).sum::<i32>() + counted(new);
        if available <= min_available {
            return Ok(0);
        }
        let budget = available - min_available;
        let mut total = 0;
        for rs in old.iter_mut() {
            if total >= budget {
                break;
            }
            if rs_replicas(rs) == 0 {
                continue;
            }
            let down = rs_replicas(rs).min(budget - total);
            let to = rs_replicas(rs) - down;
            self.scale_and_record(rs, to).await?;
            total += down;
        }
        Ok(total)
    }
}
