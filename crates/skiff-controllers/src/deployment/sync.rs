//! One sync of one deployment (upstream `syncDeployment`): claim ReplicaSets, find or create
//! the new one with its revision, scale on a scaling event or while paused, clean up old
//! revisions, and write status.

use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::apps::v1::{Deployment, DeploymentStatus, ReplicaSet, ReplicaSetSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta, OwnerReference};
use kube::api::{DeleteParams, Patch, PatchParams, PostParams};
use kube::{Api, ResourceExt};
use serde_json::json;

use super::progress::{self, has_deadline};
use super::util::*;
use super::{Controller, Key};
use crate::events::{error_text, EventType};
use crate::pods::{controller_of, selector_matches};
use crate::Error;

/// One deployment being synced: the latest version of it this sync knows (updated after each
/// write, so later writes carry the right resourceVersion).
pub(super) struct Ctx<'a> {
    pub(super) c: &'a Controller,
    pub(super) d: Deployment,
    pub(super) ns: String,
    pub(super) name: String,
}

impl Controller {
    /// upstream: `syncDeployment`; returns when the deployment wants another look.
    pub(super) async fn sync(&self, key: &Key) -> Result<Option<Duration>, Error> {
        let Some(d) = self.deployment(key) else {
            return Ok(None);
        };
        let mut x = Ctx {
            c: self,
            d,
            ns: key.namespace.clone(),
            name: key.name.clone(),
        };
        x.sync().await
    }
}

/// Whether a ReplicaSet has replicas in its spec (upstream `FilterActiveReplicaSets`).
pub(super) fn active(rs: &ReplicaSet) -> bool {
    rs_replicas(rs) > 0
}

fn is_conflict(e: &kube::Error, code: u16) -> bool {
    matches!(e, kube::Error::Api(a) if a.code == code)
}

impl Ctx<'_> {
    fn rs_api(&self) -> Api<ReplicaSet> {
        Api::namespaced(self.c.client.clone(), &self.ns)
    }

    fn uid(&self) -> String {
        self.d.metadata.uid.clone().unwrap_or_default()
    }

    fn selector(&self) -> LabelSelector {
        self.d.spec.as_ref().map(|s| s.selector.clone()).unwrap_or_default()
    }

    fn deleting(&self) -> bool {
        self.d.metadata.deletion_timestamp.is_some()
    }

    fn paused(&self) -> bool {
        self.d.spec.as_ref().and_then(|s| s.paused).unwrap_or(false)
    }

    fn min_ready_seconds(&self) -> i32 {
        self.d.spec.as_ref().and_then(|s| s.min_ready_seconds).unwrap_or(0)
    }

    pub(super) fn status(&self) -> DeploymentStatus {
        self.d.status.clone().unwrap_or_default()
    }

    pub(super) async fn event(&self, type_: EventType, reason: &str, note: String) {
        self.c.event(&self.d, type_, reason, note).await;
    }

    /// Writes the deployment's status (and annotations, as upstream's UpdateStatus does) with
    /// its resourceVersion, so a stale view fails with a conflict instead of winning.
    pub(super) async fn write_status(&mut self, st: DeploymentStatus) -> Result<(), Error> {
        self.d.status = Some(st);
        let api: Api<Deployment> = Api::namespaced(self.c.client.clone(), &self.ns);
        self.d = api.replace_status(&self.name, &PostParams::default(), &self.d).await?;
        Ok(())
    }

    async fn sync(&mut self) -> Result<Option<Duration>, Error> {
        let sel = self.selector();
        let empty = sel.match_labels.as_ref().is_none_or(|m| m.is_empty())
            && sel.match_expressions.as_ref().is_none_or(|m| m.is_empty());
        if empty {
            self.event(
                EventType::Warning,
                "SelectingAll",
                "This deployment is selecting all pods. A non-empty selector is required.".into(),
            )
            .await;
            let mut st = self.status();
            if st.observed_generation < self.d.metadata.generation {
                st.observed_generation = self.d.metadata.generation;
                self.write_status(st).await?;
            }
            return Ok(None);
        }
        let list = self.claim_replica_sets().await?;
        if self.deleting() {
            let (new, old) = self.all_rs_synced(list, false).await?;
            self.sync_status(&old, new.as_ref()).await?;
            return Ok(None);
        }
        self.check_paused_conditions().await?;
        if self.paused() {
            return self.sync_scale(list).await;
        }
        let (new, old) = self.all_rs_synced(list, false).await?;
        let want = replicas(&self.d);
        let scaling = new
            .iter()
            .chain(old.iter())
            .filter(|rs| active(rs))
            .any(|rs| int_annotation(rs, DESIRED_REPLICAS).is_some_and(|v| v != want));
        let list: Vec<ReplicaSet> = old.into_iter().chain(new).collect();
        if scaling {
            tracing::debug!(deployment = %self.name, replicas = want, "scaling event");
            return self.sync_scale(list).await;
        }
        if is_rolling(&self.d) {
            self.rollout_rolling(list).await
        } else {
            self.rollout_recreate(list).await
        }
    }

    /// upstream: `getReplicaSetsForDeployment` with `ClaimReplicaSets` — ours that still match,
    /// orphans that match adopted, ours that no longer match released.
    async fn claim_replica_sets(&mut self) -> Result<Vec<ReplicaSet>, Error> {
        let sel = self.selector();
        let uid = self.uid();
        let candidates: Vec<Arc<ReplicaSet>> = self
            .c
            .rss
            .state()
            .into_iter()
            .filter(|rs| rs.namespace().as_deref() == Some(&self.ns))
            .collect();
        let mut owned = Vec::new();
        let mut checked_fresh = false;
        for rs in candidates {
            let matches = selector_matches(&sel, rs.labels());
            match controller_of(&rs.metadata) {
                Some(r) if r.uid == uid => {
                    if matches {
                        owned.push((*rs).clone());
                    } else if !self.deleting() {
                        self.set_owner(&rs, None).await?;
                    }
                }
                Some(_) => {}
                None => {
                    if !matches || self.deleting() || rs.metadata.deletion_timestamp.is_some() {
                        continue;
                    }
                    // upstream: `RecheckDeletionTimestamp` — adopt only if a fresh read shows
                    // the deployment is still this one and not being deleted.
                    if !checked_fresh {
                        let api: Api<Deployment> = Api::namespaced(self.c.client.clone(), &self.ns);
                        let fresh = api.get(&self.name).await?;
                        if fresh.metadata.uid != self.d.metadata.uid || fresh.metadata.deletion_timestamp.is_some() {
                            continue;
                        }
                        checked_fresh = true;
                    }
                    if let Some(adopted) = self.set_owner(&rs, Some(self.owner_ref())).await? {
                        owned.push(adopted);
                    }
                }
            }
        }
        Ok(owned)
    }

    fn owner_ref(&self) -> OwnerReference {
        OwnerReference {
            api_version: "apps/v1".into(),
            kind: "Deployment".into(),
            name: self.name.clone(),
            uid: self.uid(),
            controller: Some(true),
            block_owner_deletion: Some(true),
        }
    }

    /// Adopts (`Some`) or releases (`None`) a ReplicaSet by patching its owner references
    /// with its uid as a precondition.
    async fn set_owner(&self, rs: &ReplicaSet, owner: Option<OwnerReference>) -> Result<Option<ReplicaSet>, Error> {
        let uid = self.uid();
        let mut refs: Vec<OwnerReference> = rs.owner_references().iter().filter(|r| r.uid != uid).cloned().collect();
        refs.extend(owner);
        let refs = if refs.is_empty() { json!(null) } else { json!(refs) };
        let patch = json!({"metadata": {"uid": rs.uid(), "ownerReferences": refs}});
        tracing::debug!(deployment = %self.name, replicaset = %rs.name_any(), adopt = !refs.is_null(), "claiming replica set");
        match self
            .rs_api()
            .patch(&rs.name_any(), &PatchParams::default(), &Patch::Merge(&patch))
            .await
        {
            Ok(rs) => Ok(Some(rs)),
            // Gone or changed under us: the next event brings the truth.
            Err(e) if is_conflict(&e, 404) || is_conflict(&e, 409) || is_conflict(&e, 422) => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    /// upstream: `checkPausedConditions` — Progressing Unknown while paused, so a resumed
    /// deployment does not time out for the time it was paused.
    async fn check_paused_conditions(&mut self) -> Result<(), Error> {
        if !has_deadline(&self.d) {
            return Ok(());
        }
        let mut st = self.status();
        let reason = progress::get(&st, progress::PROGRESSING).and_then(|c| c.reason.clone());
        if reason.as_deref() == Some(progress::TIMED_OUT) {
            return Ok(());
        }
        let paused_cond = reason.as_deref() == Some(progress::PAUSED);
        let (reason, msg) = match (self.paused(), paused_cond) {
            (true, false) => (progress::PAUSED, "Deployment is paused"),
            (false, true) => (progress::RESUMED, "Deployment is resumed"),
            _ => return Ok(()),
        };
        progress::set(
            &mut st,
            progress::condition(progress::PROGRESSING, "Unknown", reason, msg.into()),
        );
        self.write_status(st).await
    }

    /// upstream: `getAllReplicaSetsAndSyncRevision` — (new, old) ReplicaSets, the new one's
    /// annotations and the deployment's revision brought up to date; created if `create`.
    pub(super) async fn all_rs_synced(
        &mut self,
        mut list: Vec<ReplicaSet>,
        create: bool,
    ) -> Result<(Option<ReplicaSet>, Vec<ReplicaSet>), Error> {
        list.sort_by(by_creation);
        let tmpl = template(&self.d);
        let idx = list.iter().position(|rs| {
            rs.spec
                .as_ref()
                .and_then(|s| s.template.as_ref())
                .is_some_and(|t| equal_ignore_hash(t, &tmpl))
        });
        let existing = idx.map(|i| list.remove(i));
        let old = list;
        let new_revision = max_revision(&old) + 1;
        if let Some(rs) = existing {
            let mut copy = rs.clone();
            let annotations_changed = set_new_rs_annotations(&self.d, &mut copy, new_revision, true);
            let spec = copy.spec.get_or_insert_with(Default::default);
            let mrs_changed = spec.min_ready_seconds.unwrap_or(0) != self.min_ready_seconds();
            if annotations_changed || mrs_changed {
                spec.min_ready_seconds = Some(self.min_ready_seconds()).filter(|v| *v != 0);
                tracing::debug!(deployment = %self.name, replicaset = %rs.name_any(), revision = new_revision, "updating new replica set annotations");
                let updated = self
                    .rs_api()
                    .replace(&rs.name_any(), &PostParams::default(), &copy)
                    .await?;
                return Ok((Some(updated), old));
            }
            let rev = copy
                .metadata
                .annotations
                .as_ref()
                .and_then(|a| a.get(REVISION))
                .cloned()
                .unwrap_or_default();
            let mut needs_update = self.set_revision(&rev);
            let mut st = self.status();
            if has_deadline(&self.d) && progress::get(&st, progress::PROGRESSING).is_none() {
                let msg = format!("Found new replica set {:?}", rs.name_any());
                progress::set(
                    &mut st,
                    progress::condition(progress::PROGRESSING, "True", progress::FOUND_NEW_RS, msg),
                );
                needs_update = true;
            }
            if needs_update {
                self.write_status(st).await?;
            }
            return Ok((Some(rs), old));
        }
        if !create {
            return Ok((None, old));
        }
        let created = self.create_new_rs(&old, new_revision).await?;
        Ok((Some(created), old))
    }

    /// Sets the deployment's revision annotation; returns whether it changed.
    fn set_revision(&mut self, rev: &str) -> bool {
        let anns = self.d.metadata.annotations.get_or_insert_with(Default::default);
        if anns.get(REVISION).map(String::as_str) == Some(rev) {
            return false;
        }
        anns.insert(REVISION.into(), rev.into());
        true
    }

    /// upstream: the creating half of `getNewReplicaSet` — `NAME-HASH` with the hash label in
    /// its selector, template and labels, sized by the strategy; a name taken by a different
    /// template is a hash collision, resolved by bumping `status.collisionCount`.
    async fn create_new_rs(&mut self, old: &[ReplicaSet], new_revision: i64) -> Result<ReplicaSet, Error> {
        let mut st = self.status();
        let mut tmpl = template(&self.d);
        let hash = template_hash(&tmpl, st.collision_count);
        tmpl.metadata
            .get_or_insert_with(Default::default)
            .labels
            .get_or_insert_with(Default::default)
            .insert(HASH_LABEL.into(), hash.clone());
        let mut selector = self.selector();
        selector
            .match_labels
            .get_or_insert_with(Default::default)
            .insert(HASH_LABEL.into(), hash.clone());
        let rs_name = format!("{}-{hash}", self.name);
        let mut rs = ReplicaSet {
            metadata: ObjectMeta {
                name: Some(rs_name.clone()),
                namespace: Some(self.ns.clone()),
                owner_references: Some(vec![self.owner_ref()]),
                labels: tmpl.metadata.as_ref().and_then(|m| m.labels.clone()),
                ..Default::default()
            },
            spec: Some(ReplicaSetSpec {
                replicas: Some(0),
                min_ready_seconds: Some(self.min_ready_seconds()).filter(|v| *v != 0),
                selector,
                template: Some(tmpl),
            }),
            status: None,
        };
        let count = {
            let all: Vec<&ReplicaSet> = old.iter().chain(std::iter::once(&rs)).collect();
            self.new_rs_new_replicas(&all, &rs)
        };
        if let Some(spec) = rs.spec.as_mut() {
            spec.replicas = Some(count);
        }
        set_new_rs_annotations(&self.d, &mut rs, new_revision, false);
        let api = self.rs_api();
        let (created, already) = match api.create(&PostParams::default(), &rs).await {
            Ok(created) => (created, false),
            Err(e) if is_conflict(&e, 409) => {
                // A slow cache, or a collision: read what is there.
                let there = api.get(&rs_name).await?;
                let ours = controller_of(&there.metadata).is_some_and(|r| r.uid == self.uid());
                let same = there
                    .spec
                    .as_ref()
                    .and_then(|s| s.template.as_ref())
                    .is_some_and(|t| equal_ignore_hash(t, &template(&self.d)));
                if ours && same {
                    (there, true)
                } else {
                    let n = st.collision_count.unwrap_or(0) + 1;
                    tracing::debug!(deployment = %self.name, collision_count = n, "hash collision, bumping collisionCount");
                    st.collision_count = Some(n);
                    self.write_status(st).await?;
                    return Err(e.into());
                }
            }
            Err(e) => {
                let msg = format!("Failed to create new replica set {rs_name:?}: {}", error_text(&e));
                if has_deadline(&self.d) {
                    progress::set(
                        &mut st,
                        progress::condition(progress::PROGRESSING, "False", progress::RS_CREATE_ERROR, msg.clone()),
                    );
                    // The creation error is the one to report.
                    let _ = self.write_status(st).await;
                }
                self.event(EventType::Warning, progress::RS_CREATE_ERROR, msg).await;
                return Err(e.into());
            }
        };
        if !already && count > 0 {
            let note = format!("Scaled up replica set {rs_name} from 0 to {count}");
            self.event(EventType::Normal, "ScalingReplicaSet", note).await;
        }
        let mut needs_update = self.set_revision(&new_revision.to_string());
        let mut st = self.status();
        if !already && has_deadline(&self.d) {
            let msg = format!("Created new replica set {rs_name:?}");
            progress::set(
                &mut st,
                progress::condition(progress::PROGRESSING, "True", progress::NEW_RS_CREATED, msg),
            );
            needs_update = true;
        }
        if needs_update {
            self.write_status(st).await?;
        }
        Ok(created)
    }

    /// upstream: `NewRSNewReplicas` — how many replicas the new ReplicaSet may have now.
    pub(super) fn new_rs_new_replicas(&self, all: &[&ReplicaSet], new: &ReplicaSet) -> i32 {
        let want = replicas(&self.d);
        if !is_rolling(&self.d) {
            return want;
        }
        let current = spec_sum(all.iter().copied());
        let max_total = want + max_surge(&self.d);
        if current >= max_total {
            return rs_replicas(new);
        }
        let up = (max_total - current).min(want - rs_replicas(new));
        rs_replicas(new) + up
    }

    /// upstream: `scaleReplicaSetAndRecordEvent`.
    pub(super) async fn scale_and_record(&self, rs: &mut ReplicaSet, to: i32) -> Result<bool, Error> {
        if rs_replicas(rs) == to {
            return Ok(false);
        }
        let op = if rs_replicas(rs) < to { "up" } else { "down" };
        self.scale_rs(rs, to, op).await
    }

    /// upstream: `scaleReplicaSet` — sets replicas and the desired/max annotations, with the
    /// ReplicaSet's resourceVersion; records ScalingReplicaSet when the size changed.
    pub(super) async fn scale_rs(&self, rs: &mut ReplicaSet, to: i32, op: &str) -> Result<bool, Error> {
        let from = rs_replicas(rs);
        let desired = replicas(&self.d);
        let max = desired + max_surge(&self.d);
        if from == to && !replicas_annotations_need_update(rs, desired, max) {
            return Ok(false);
        }
        let mut copy = rs.clone();
        copy.spec.get_or_insert_with(Default::default).replicas = Some(to);
        set_replicas_annotations(&mut copy, desired, max);
        tracing::debug!(deployment = %self.name, replicaset = %rs.name_any(), from, to, "scaling replica set");
        *rs = self
            .rs_api()
            .replace(&rs.name_any(), &PostParams::default(), &copy)
            .await?;
        if from != to {
            let note = format!("Scaled {op} replica set {} from {from} to {to}", rs.name_any());
            self.event(EventType::Normal, "ScalingReplicaSet", note).await;
        }
        Ok(from != to)
    }

    /// upstream: `sync` — scaling while paused or on a replicas change, without rolling.
    async fn sync_scale(&mut self, list: Vec<ReplicaSet>) -> Result<Option<Duration>, Error> {
        let (mut new, mut old) = self.all_rs_synced(list, false).await?;
        self.scale(&mut new, &mut old).await?;
        if self.paused() {
            self.cleanup(&old).await?;
        }
        self.sync_status(&old, new.as_ref()).await?;
        Ok(None)
    }

    /// upstream: `scale` — one active ReplicaSet takes the whole size; otherwise a saturated new
    /// one takes it from the old ones; otherwise (rolling) the change is spread over the active
    /// ReplicaSets in proportion to their size.
    async fn scale(&self, new: &mut Option<ReplicaSet>, old: &mut [ReplicaSet]) -> Result<(), Error> {
        let want = replicas(&self.d);
        // upstream: `FindActiveOrLatest`
        old.sort_by(|a, b| by_creation(b, a));
        let n_active = old.iter().chain(new.iter()).filter(|rs| active(rs)).count();
        let target: Option<&mut ReplicaSet> = match n_active {
            0 => match new.as_mut() {
                Some(n) => Some(n),
                None => old.first_mut(),
            },
            1 => old.iter_mut().chain(new.iter_mut()).find(|rs| active(rs)),
            _ => None,
        };
        if let Some(t) = target {
            if rs_replicas(t) != want {
                self.scale_and_record(t, want).await?;
            }
            return Ok(());
        }
        if is_saturated(&self.d, new.as_ref()) {
            for rs in old.iter_mut().filter(|rs| active(rs)) {
                self.scale_and_record(rs, 0).await?;
            }
            return Ok(());
        }
        if !is_rolling(&self.d) {
            return Ok(());
        }
        let mut all: Vec<&mut ReplicaSet> = old.iter_mut().chain(new.iter_mut()).filter(|rs| active(rs)).collect();
        let total: i32 = all.iter().map(|rs| rs_replicas(rs)).sum();
        let allowed = if want > 0 { want + max_surge(&self.d) } else { 0 };
        let to_add = allowed - total;
        let newer_first = |a: &&mut ReplicaSet, b: &&mut ReplicaSet| {
            rs_replicas(b).cmp(&rs_replicas(a)).then_with(|| by_creation(b, a))
        };
        let older_first = |a: &&mut ReplicaSet, b: &&mut ReplicaSet| {
            rs_replicas(b).cmp(&rs_replicas(a)).then_with(|| by_creation(a, b))
        };
        let op = match to_add.cmp(&0) {
            std::cmp::Ordering::Greater => {
                all.sort_by(newer_first);
                "up"
            }
            std::cmp::Ordering::Less => {
                all.sort_by(older_first);
                "down"
            }
            std::cmp::Ordering::Equal => "",
        };
        let mut added = 0;
        let mut sizes = Vec::with_capacity(all.len());
        for rs in &all {
            if to_add != 0 {
                let p = self.proportion(rs, to_add, added);
                sizes.push(rs_replicas(rs) + p);
                added += p;
            } else {
                sizes.push(rs_replicas(rs));
            }
        }
        for (i, rs) in all.into_iter().enumerate() {
            // Leftovers go to the largest ReplicaSet.
            if i == 0 && to_add != 0 {
                sizes[0] = (sizes[0] + to_add - added).max(0);
            }
            self.scale_rs(rs, sizes[i], op).await?;
        }
        Ok(())
    }

    /// upstream: `GetReplicaSetProportion`.
    fn proportion(&self, rs: &ReplicaSet, to_add: i32, added: i32) -> i32 {
        if rs_replicas(rs) == 0 || to_add == 0 || to_add == added {
            return 0;
        }
        let fraction = self.fraction(rs);
        let allowed = to_add - added;
        if to_add > 0 {
            fraction.min(allowed)
        } else {
            fraction.max(allowed)
        }
    }

    /// upstream: `getReplicaSetFraction` — the ReplicaSet's share of the new size, from the
    /// deployment size (max-replicas annotation) it was last scaled for.
    fn fraction(&self, rs: &ReplicaSet) -> i32 {
        let want = replicas(&self.d);
        if want == 0 {
            return -rs_replicas(rs);
        }
        let max_now = want + max_surge(&self.d);
        let before = int_annotation(rs, MAX_REPLICAS).unwrap_or_else(|| self.status().replicas.unwrap_or(0));
        if before == 0 {
            return 0;
        }
        let size = f64::from(rs_replicas(rs)) * f64::from(max_now) / f64::from(before);
        size.round() as i32 - rs_replicas(rs)
    }

    /// upstream: `cleanupDeployment` — deletes the oldest old ReplicaSets past
    /// revisionHistoryLimit, only those fully scaled down and observed so.
    pub(super) async fn cleanup(&self, old: &[ReplicaSet]) -> Result<(), Error> {
        let Some(limit) = self.d.spec.as_ref().and_then(|s| s.revision_history_limit) else {
            return Ok(());
        };
        let mut cleanable: Vec<&ReplicaSet> = old
            .iter()
            .filter(|rs| rs.metadata.deletion_timestamp.is_none())
            .collect();
        let diff = cleanable.len() as i64 - i64::from(limit);
        if diff <= 0 {
            return Ok(());
        }
        cleanable.sort_by(|a, b| by_revision(a, b));
        for rs in cleanable.into_iter().take(diff as usize) {
            let observed = rs.status.as_ref().and_then(|s| s.observed_generation).unwrap_or(0);
            if rs_actual(rs) != 0 || rs_replicas(rs) != 0 || rs.metadata.generation.unwrap_or(0) > observed {
                continue;
            }
            tracing::debug!(deployment = %self.name, replicaset = %rs.name_any(), "deleting old replica set past revisionHistoryLimit");
            match self.rs_api().delete(&rs.name_any(), &DeleteParams::default()).await {
                Ok(_) => {}
                Err(e) if is_conflict(&e, 404) => {}
                Err(e) => return Err(e.into()),
            }
        }
        Ok(())
    }

    /// upstream: `syncDeploymentStatus` — writes the calculated status if it changed.
    pub(super) async fn sync_status(&mut self, old: &[ReplicaSet], new: Option<&ReplicaSet>) -> Result<(), Error> {
        let all: Vec<&ReplicaSet> = old.iter().chain(new).collect();
        let st = progress::calculate(&all, new, &self.d);
        if progress::normalized(&st) == progress::normalized(&self.status()) {
            return Ok(());
        }
        self.write_status(st).await
    }

    /// upstream: `syncRolloutStatus` — status with Progressing, and when to look again for the
    /// progress deadline.
    pub(super) async fn sync_rollout_status(
        &mut self,
        old: &[ReplicaSet],
        new: Option<&ReplicaSet>,
    ) -> Result<Option<Duration>, Error> {
        let all: Vec<&ReplicaSet> = old.iter().chain(new).collect();
        let st = progress::rollout_status(&all, new, &self.d);
        if progress::normalized(&st) != progress::normalized(&self.status()) {
            self.write_status(st.clone()).await?;
        }
        Ok(progress::recheck_after(&self.d, &st))
    }
}
