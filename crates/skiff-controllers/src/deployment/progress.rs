//! Deployment status and conditions: replica counts summed over the ReplicaSets, Available
//! against maxUnavailable, and Progressing with `progressDeadlineSeconds`.

use std::time::Duration;

use k8s_openapi::api::apps::v1::{Deployment, DeploymentCondition, DeploymentStatus, ReplicaSet};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

use super::util::{max_unavailable, replicas, rs_actual, rs_available, rs_ready, spec_sum};

/// Condition type: the deployment has at least replicas − maxUnavailable available.
pub const AVAILABLE: &str = "Available";
/// Condition type: the rollout makes progress (or completed, or timed out).
pub const PROGRESSING: &str = "Progressing";
/// upstream reasons of the Progressing and Available conditions.
pub const NEW_RS_CREATED: &str = "NewReplicaSetCreated";
/// An existing ReplicaSet matches the template.
pub const FOUND_NEW_RS: &str = "FoundNewReplicaSet";
/// The new ReplicaSet gained replicas, or old ones lost some.
pub const RS_UPDATED: &str = "ReplicaSetUpdated";
/// Rollout complete.
pub const NEW_RS_AVAILABLE: &str = "NewReplicaSetAvailable";
/// No progress within progressDeadlineSeconds.
pub const TIMED_OUT: &str = "ProgressDeadlineExceeded";
/// Creating the new ReplicaSet failed.
pub const RS_CREATE_ERROR: &str = "ReplicaSetCreateError";
/// spec.paused set.
pub const PAUSED: &str = "DeploymentPaused";
/// spec.paused cleared.
pub const RESUMED: &str = "DeploymentResumed";
const MIN_AVAILABLE: &str = "MinimumReplicasAvailable";
const MIN_UNAVAILABLE: &str = "MinimumReplicasUnavailable";

/// Now, to the second (what the API stores), so unchanged conditions compare equal.
pub fn now() -> Time {
    Time(jiff::Timestamp::from_second(jiff::Timestamp::now().as_second()).unwrap_or_default())
}

/// upstream: `NewDeploymentCondition`.
pub fn condition(type_: &str, status: &str, reason: &str, message: String) -> DeploymentCondition {
    let t = now();
    DeploymentCondition {
        type_: type_.into(),
        status: status.into(),
        reason: Some(reason.into()),
        message: Some(message),
        last_update_time: Some(t.clone()),
        last_transition_time: Some(t),
    }
}

/// The condition of `type_`, if any.
pub fn get<'a>(st: &'a DeploymentStatus, type_: &str) -> Option<&'a DeploymentCondition> {
    st.conditions.as_ref()?.iter().find(|c| c.type_ == type_)
}

/// upstream: `SetDeploymentCondition` — nothing changes when status and reason are the same; the
/// transition time stays when only the reason changes; the condition moves to the end.
pub fn set(st: &mut DeploymentStatus, mut c: DeploymentCondition) {
    if let Some(cur) = get(st, &c.type_) {
        if cur.status == c.status && cur.reason == c.reason {
            return;
        }
        if cur.status == c.status {
            c.last_transition_time = cur.last_transition_time.clone();
        }
    }
    remove(st, &c.type_.clone());
    st.conditions.get_or_insert_with(Vec::new).push(c);
}

/// Removes the condition of `type_`.
pub fn remove(st: &mut DeploymentStatus, type_: &str) {
    if let Some(cs) = st.conditions.as_mut() {
        cs.retain(|c| c.type_ != type_);
    }
}

/// Whether the deployment has a progress deadline.
pub fn has_deadline(d: &Deployment) -> bool {
    deadline(d).is_some()
}

fn deadline(d: &Deployment) -> Option<i32> {
    d.spec
        .as_ref()
        .and_then(|s| s.progress_deadline_seconds)
        .filter(|s| *s != i32::MAX)
}

fn nz(v: i32) -> Option<i32> {
    (v != 0).then_some(v)
}

/// upstream: `calculateStatus` — counts from the ReplicaSets, conditions carried over, Available
/// set from maxUnavailable. Zero counts are left out as the API's omitempty does.
pub fn calculate(all: &[&ReplicaSet], new_rs: Option<&ReplicaSet>, d: &Deployment) -> DeploymentStatus {
    let old = d.status.clone().unwrap_or_default();
    let available: i32 = all.iter().map(|rs| rs_available(rs)).sum();
    let total = spec_sum(all.iter().copied());
    let mut st = DeploymentStatus {
        observed_generation: d.metadata.generation,
        replicas: nz(all.iter().map(|rs| rs_actual(rs)).sum()),
        updated_replicas: nz(new_rs.map(rs_actual).unwrap_or(0)),
        ready_replicas: nz(all.iter().map(|rs| rs_ready(rs)).sum()),
        available_replicas: nz(available),
        unavailable_replicas: nz((total - available).max(0)),
        collision_count: old.collision_count,
        conditions: old.conditions.clone(),
        terminating_replicas: None,
    };
    if available >= replicas(d) - max_unavailable(d) {
        set(
            &mut st,
            condition(
                AVAILABLE,
                "True",
                MIN_AVAILABLE,
                "Deployment has minimum availability.".into(),
            ),
        );
    } else {
        set(
            &mut st,
            condition(
                AVAILABLE,
                "False",
                MIN_UNAVAILABLE,
                "Deployment does not have minimum availability.".into(),
            ),
        );
    }
    st
}

/// Normalizes a status for comparison (absent and zero are the same; empty conditions too).
pub fn normalized(st: &DeploymentStatus) -> DeploymentStatus {
    let z = |v: Option<i32>| v.filter(|v| *v != 0);
    DeploymentStatus {
        observed_generation: st.observed_generation,
        replicas: z(st.replicas),
        updated_replicas: z(st.updated_replicas),
        ready_replicas: z(st.ready_replicas),
        available_replicas: z(st.available_replicas),
        unavailable_replicas: z(st.unavailable_replicas),
        collision_count: st.collision_count,
        conditions: st.conditions.clone().filter(|c| !c.is_empty()),
        terminating_replicas: z(st.terminating_replicas),
    }
}

/// upstream: `DeploymentComplete` — every replica updated and available, generation observed.
pub fn complete(d: &Deployment, st: &DeploymentStatus) -> bool {
    let want = replicas(d);
    st.updated_replicas.unwrap_or(0) == want
        && st.replicas.unwrap_or(0) == want
        && st.available_replicas.unwrap_or(0) == want
        && st.observed_generation >= d.metadata.generation
}

/// upstream: `DeploymentProgressing` — more updated, ready or available replicas, or fewer old
/// ones, than the stored status shows.
fn progressing(d: &Deployment, new: &DeploymentStatus) -> bool {
    let old = d.status.clone().unwrap_or_default();
    let g = |v: Option<i32>| v.unwrap_or(0);
    let old_old = g(old.replicas) - g(old.updated_replicas);
    let new_old = g(new.replicas) - g(new.updated_replicas);
    g(new.updated_replicas) > g(old.updated_replicas)
        || new_old < old_old
        || g(new.ready_replicas) > g(old.ready_replicas)
        || g(new.available_replicas) > g(old.available_replicas)
}

/// Time left until the Progressing condition's last update is older than the deadline.
fn time_left(d: &Deployment, st: &DeploymentStatus) -> Option<jiff::SignedDuration> {
    let secs = deadline(d)?;
    let c = get(st, PROGRESSING)?;
    let last = c.last_update_time.as_ref()?.0;
    let end = last + jiff::SignedDuration::from_secs(secs.into());
    Some(end.duration_since(jiff::Timestamp::now()))
}

/// upstream: `DeploymentTimedOut`.
fn timed_out(d: &Deployment, st: &DeploymentStatus) -> bool {
    let Some(c) = get(st, PROGRESSING) else { return false };
    match c.reason.as_deref() {
        Some(NEW_RS_AVAILABLE) => false,
        Some(TIMED_OUT) => true,
        _ => time_left(d, st).is_some_and(|left| left.is_negative()),
    }
}

/// upstream: `syncRolloutStatus`'s computation — the new status with Progressing updated.
pub fn rollout_status(all: &[&ReplicaSet], new_rs: Option<&ReplicaSet>, d: &Deployment) -> DeploymentStatus {
    let mut st = calculate(all, new_rs, d);
    if !has_deadline(d) {
        remove(&mut st, PROGRESSING);
    }
    let old = d.status.clone().unwrap_or_default();
    let cur = get(&old, PROGRESSING).cloned();
    let name = d.metadata.name.clone().unwrap_or_default();
    let subject = |what: &str| match new_rs.and_then(|rs| rs.metadata.name.as_deref()) {
        Some(rs) => format!("ReplicaSet {rs:?} {what}"),
        None => format!("Deployment {name:?} {what}"),
    };
    let is_complete_rollout = st.replicas == st.updated_replicas
        && cur
            .as_ref()
            .is_some_and(|c| c.reason.as_deref() == Some(NEW_RS_AVAILABLE));
    if has_deadline(d) && !is_complete_rollout {
        if complete(d, &st) {
            let c = condition(
                PROGRESSING,
                "True",
                NEW_RS_AVAILABLE,
                subject("has successfully progressed."),
            );
            set(&mut st, c);
        } else if progressing(d, &st) {
            // upstream: with the same reason only lastUpdateTime moves, so this is set by hand.
            let mut c = condition(PROGRESSING, "True", RS_UPDATED, subject("is progressing."));
            if let Some(cur) = &cur {
                if cur.status == "True" {
                    c.last_transition_time = cur.last_transition_time.clone();
                }
                remove(&mut st, PROGRESSING);
            }
            set(&mut st, c);
        } else if timed_out(d, &st) {
            let c = condition(PROGRESSING, "False", TIMED_OUT, subject("has timed out progressing."));
            set(&mut st, c);
        }
    }
    st
}

/// upstream: `requeueStuckDeployment` — when to look again so a stalled rollout times out on
/// time (None: nothing to wait for).
pub fn recheck_after(d: &Deployment, st: &DeploymentStatus) -> Option<Duration> {
    let c = get(st, PROGRESSING)?;
    if !has_deadline(d) || complete(d, st) || c.reason.as_deref() == Some(TIMED_OUT) {
        return None;
    }
    let left = time_left(d, st)?;
    Some(Duration::try_from(left).unwrap_or(Duration::ZERO) + Duration::from_secs(1))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn st() -> DeploymentStatus {
        DeploymentStatus::default()
    }

    #[test]
    fn set_condition_keeps_transition_time_when_status_stays() {
        let mut s = st();
        let mut first = condition(PROGRESSING, "True", NEW_RS_CREATED, "a".into());
        first.last_transition_time = Some(Time(jiff::Timestamp::UNIX_EPOCH));
        set(&mut s, first);
        set(&mut s, condition(AVAILABLE, "True", MIN_AVAILABLE, "b".into()));
        set(&mut s, condition(PROGRESSING, "True", NEW_RS_AVAILABLE, "c".into()));
        let cs = s.conditions.as_ref().unwrap();
        assert_eq!(
            cs.iter().map(|c| c.type_.as_str()).collect::<Vec<_>>(),
            [AVAILABLE, PROGRESSING]
        );
        assert_eq!(cs[1].last_transition_time, Some(Time(jiff::Timestamp::UNIX_EPOCH)));
        assert_eq!(cs[1].message.as_deref(), Some("c"));
        // Same status and reason: nothing changes, not even the message.
        set(&mut s, condition(PROGRESSING, "True", NEW_RS_AVAILABLE, "d".into()));
        assert_eq!(get(&s, PROGRESSING).unwrap().message.as_deref(), Some("c"));
        set(&mut s, condition(PROGRESSING, "False", TIMED_OUT, "e".into()));
        assert_ne!(
            get(&s, PROGRESSING).unwrap().last_transition_time,
            Some(Time(jiff::Timestamp::UNIX_EPOCH))
        );
    }
}
