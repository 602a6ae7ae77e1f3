//! What the deployment controller computes from Deployments and ReplicaSets alone: fenceposts,
//! the pod-template hash, template equality, revision and replica annotations, and counts.

use std::cmp::Ordering;

use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet};
use k8s_openapi::api::core::v1::PodTemplateSpec;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use serde_json::Value;

/// Annotation on the deployment and its ReplicaSets: the rollout revision.
pub const REVISION: &str = "deployment.kubernetes.io/revision";
/// Annotation on a ReplicaSet: revisions it had before a rollback made it current again.
pub const REVISION_HISTORY: &str = "deployment.kubernetes.io/revision-history";
/// Annotation on a ReplicaSet: the deployment's replicas when the ReplicaSet was last scaled.
pub const DESIRED_REPLICAS: &str = "deployment.kubernetes.io/desired-replicas";
/// Annotation on a ReplicaSet: replicas + maxSurge when the ReplicaSet was last scaled.
pub const MAX_REPLICAS: &str = "deployment.kubernetes.io/max-replicas";
/// Label that tells the ReplicaSets (and pods) of one deployment apart.
pub const HASH_LABEL: &str = "pod-template-hash";
/// upstream: `--deployment-controller-max-revision-history-length` … 2000 characters.
const MAX_REVISION_HISTORY_CHARS: usize = 2000;

/// upstream: `annotationsToSkip` — deployment annotations never copied to a ReplicaSet.
fn skip_copy(key: &str) -> bool {
    matches!(
        key,
        "kubectl.kubernetes.io/last-applied-configuration"
            | REVISION
            | REVISION_HISTORY
            | DESIRED_REPLICAS
            | MAX_REPLICAS
            | "deprecated.deployment.rollback.to"
    )
}

/// `spec.replicas` of a deployment (defaulted to 1 by the API server).
pub fn replicas(d: &Deployment) -> i32 {
    d.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1)
}

/// `spec.replicas` of a ReplicaSet.
pub fn rs_replicas(rs: &ReplicaSet) -> i32 {
    rs.spec.as_ref().and_then(|s| s.replicas).unwrap_or(0)
}

/// `status.replicas` of a ReplicaSet (pods it has).
pub fn rs_actual(rs: &ReplicaSet) -> i32 {
    rs.status.as_ref().map(|s| s.replicas).unwrap_or(0)
}

/// `status.availableReplicas` of a ReplicaSet.
pub fn rs_available(rs: &ReplicaSet) -> i32 {
    rs.status.as_ref().and_then(|s| s.available_replicas).unwrap_or(0)
}

/// `status.readyReplicas` of a ReplicaSet.
pub fn rs_ready(rs: &ReplicaSet) -> i32 {
    rs.status.as_ref().and_then(|s| s.ready_replicas).unwrap_or(0)
}

/// Whether the deployment uses the RollingUpdate strategy (the default).
pub fn is_rolling(d: &Deployment) -> bool {
    let ty = d
        .spec
        .as_ref()
        .and_then(|s| s.strategy.as_ref())
        .and_then(|s| s.type_.as_deref());
    ty != Some("Recreate")
}

/// upstream: `GetScaledValueFromIntOrPercent` — a count, or a percentage of `total` rounded up
/// or down.
pub fn scaled_value(v: &IntOrString, total: i32, round_up: bool) -> i32 {
    match v {
        IntOrString::Int(n) => *n,
        IntOrString::String(s) => {
            let Some(pct) = s.strip_suffix('%').and_then(|p| p.parse::<i64>().ok()) else {
                return 0;
            };
            let scaled = pct * i64::from(total);
            let v = if round_up {
                (scaled + 99).div_euclid(100)
            } else {
                scaled.div_euclid(100)
            };
            i32::try_from(v).unwrap_or(0)
        }
    }
}

/// upstream: `ResolveFenceposts` — (maxSurge rounded up, maxUnavailable rounded down); when both
/// come to zero, maxUnavailable is 1 so a rollout can still proceed.
pub fn fenceposts(d: &Deployment) -> (i32, i32) {
    let desired = replicas(d);
    let ru = d
        .spec
        .as_ref()
        .and_then(|s| s.strategy.as_ref())
        .and_then(|s| s.rolling_update.as_ref());
    let zero = IntOrString::Int(0);
    let surge = scaled_value(ru.and_then(|r| r.max_surge.as_ref()).unwrap_or(&zero), desired, true);
    let unavailable = scaled_value(
        ru.and_then(|r| r.max_unavailable.as_ref()).unwrap_or(&zero),
        desired,
        false,
    );
    if surge == 0 && unavailable == 0 {
        (0, 1)
    } else {
        (surge, unavailable)
    }
}

/// upstream: `MaxSurge` (0 for Recreate).
pub fn max_surge(d: &Deployment) -> i32 {
    if !is_rolling(d) {
        return 0;
    }
    fenceposts(d).0
}

/// upstream: `MaxUnavailable` (0 for Recreate or no replicas, at most the replicas).
pub fn max_unavailable(d: &Deployment) -> i32 {
    let desired = replicas(d);
    if !is_rolling(d) || desired == 0 {
        return 0;
    }
    fenceposts(d).1.min(desired)
}

/// The deployment's pod template.
pub fn template(d: &Deployment) -> PodTemplateSpec {
    d.spec.as_ref().map(|s| s.template.clone()).unwrap_or_default()
}

/// A template as JSON without the hash label and without empty values, so templates compare as
/// upstream's semantic equality does (nil and empty are the same).
fn normalized(t: &PodTemplateSpec) -> Value {
    let mut v = serde_json::to_value(t).unwrap_or(Value::Null);
    if let Some(labels) = v.pointer_mut("/metadata/labels").and_then(Value::as_object_mut) {
        labels.remove(HASH_LABEL);
    }
    prune(&mut v);
    v
}

fn prune(v: &mut Value) {
    match v {
        Value::Object(m) => {
            for x in m.values_mut() {
                prune(x);
            }
            m.retain(|_, x| !is_empty(x));
        }
        Value::Array(a) => a.iter_mut().for_each(prune),
        _ => {}
    }
}

fn is_empty(v: &Value) -> bool {
    match v {
        Value::Null => true,
        Value::Object(m) => m.is_empty(),
        Value::Array(a) => a.is_empty(),
        _ => false,
    }
}

/// upstream: `EqualIgnoreHash` — the same template apart from the `pod-template-hash` label.
pub fn equal_ignore_hash(a: &PodTemplateSpec, b: &PodTemplateSpec) -> bool {
    normalized(a) == normalized(b)
}

/// upstream: `rand.SafeEncodeString`'s alphabet (no vowels, no confusable characters).
const SAFE_ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";

/// upstream: `ComputeHash` — FNV-32a over the template and the collision count, printed in
/// decimal and mapped onto the safe alphabet (so `8d55fcd7d`-like names).
pub fn template_hash(t: &PodTemplateSpec, collision_count: Option<i32>) -> String {
    let mut h: u32 = 0x811c_9dc5;
    let mut feed = |bytes: &[u8]| {
        for b in bytes {
            h ^= u32::from(*b);
            h = h.wrapping_mul(0x0100_0193);
        }
    };
    feed(normalized(t).to_string().as_bytes());
    if let Some(c) = collision_count {
        feed(&(c as u32).to_le_bytes());
    }
    h.to_string()
        .bytes()
        .map(|b| SAFE_ALPHABET[usize::from(b) % SAFE_ALPHABET.len()] as char)
        .collect()
}

/// The revision annotation of an object's metadata, 0 when missing or not a number.
pub fn revision(meta: &k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta) -> i64 {
    meta.annotations
        .as_ref()
        .and_then(|a| a.get(REVISION))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

/// upstream: `MaxRevision` of a set of ReplicaSets.
pub fn max_revision<'a>(rss: impl IntoIterator<Item = &'a ReplicaSet>) -> i64 {
    rss.into_iter().map(|rs| revision(&rs.metadata)).max().unwrap_or(0)
}

/// upstream: `copyDeploymentAnnotationsToReplicaSet` — every deployment annotation but the
/// skipped ones; existing ReplicaSet annotations stay. Returns whether anything changed.
fn copy_annotations(d: &Deployment, rs: &mut ReplicaSet) -> bool {
    let mut changed = false;
    let anns = rs.metadata.annotations.get_or_insert_with(Default::default);
    for (k, v) in d.metadata.annotations.iter().flatten() {
        if skip_copy(k) || anns.get(k) == Some(v) {
            continue;
        }
        anns.insert(k.clone(), v.clone());
        changed = true;
    }
    changed
}

/// upstream: `SetNewReplicaSetAnnotations` — copies the deployment's annotations, raises the
/// revision to `new_revision` (keeping the old one in `revision-history` when a rollback
/// reuses this ReplicaSet), and for a ReplicaSet about to be created sets the replica
/// annotations. Returns whether anything changed.
pub fn set_new_rs_annotations(d: &Deployment, rs: &mut ReplicaSet, new_revision: i64, exists: bool) -> bool {
    let mut changed = copy_annotations(d, rs);
    let anns = rs.metadata.annotations.get_or_insert_with(Default::default);
    let old = anns.get(REVISION).cloned();
    let old_rev = match old.as_deref().map(str::parse::<i64>) {
        None => 0,
        Some(Ok(v)) => v,
        // upstream leaves a ReplicaSet with a garbled revision alone
        Some(Err(_)) => return changed,
    };
    if old_rev < new_revision {
        anns.insert(REVISION.into(), new_revision.to_string());
        changed = true;
        if let Some(old) = old {
            let history = anns.get(REVISION_HISTORY).cloned().unwrap_or_default();
            let mut olds: Vec<&str> = history.split(',').filter(|s| !s.is_empty()).collect();
            let mut total = if history.is_empty() { 0 } else { history.len() + 1 } + old.len();
            // Drop the oldest entries until the list fits the length limit.
            while total > MAX_REVISION_HISTORY_CHARS && !olds.is_empty() {
                total -= olds.remove(0).len() + 1;
            }
            if total <= MAX_REVISION_HISTORY_CHARS {
                olds.push(&old);
                anns.insert(REVISION_HISTORY.into(), olds.join(","));
            }
        }
    }
    if !exists && set_replicas_annotations(rs, replicas(d), replicas(d) + max_surge(d)) {
        changed = true;
    }
    changed
}

/// upstream: `SetReplicasAnnotations`; returns whether anything changed.
pub fn set_replicas_annotations(rs: &mut ReplicaSet, desired: i32, max: i32) -> bool {
    let anns = rs.metadata.annotations.get_or_insert_with(Default::default);
    let mut changed = false;
    for (k, v) in [(DESIRED_REPLICAS, desired), (MAX_REPLICAS, max)] {
        let v = v.to_string();
        if anns.get(k) != Some(&v) {
            anns.insert(k.into(), v);
            changed = true;
        }
    }
    changed
}

/// An integer annotation of a ReplicaSet.
pub fn int_annotation(rs: &ReplicaSet, key: &str) -> Option<i32> {
    rs.metadata.annotations.as_ref()?.get(key)?.parse().ok()
}

/// upstream: `ReplicasAnnotationsNeedUpdate`.
pub fn replicas_annotations_need_update(rs: &ReplicaSet, desired: i32, max: i32) -> bool {
    int_annotation(rs, DESIRED_REPLICAS) != Some(desired) || int_annotation(rs, MAX_REPLICAS) != Some(max)
}

/// upstream: `IsSaturated` — the new ReplicaSet has all the deployment's replicas, available.
pub fn is_saturated(d: &Deployment, rs: Option<&ReplicaSet>) -> bool {
    let Some(rs) = rs else { return false };
    let want = replicas(d);
    rs_replicas(rs) == want && int_annotation(rs, DESIRED_REPLICAS) == Some(want) && rs_available(rs) == want
}

/// Creation time, then name: upstream's `ReplicaSetsByCreationTimestamp`.
pub fn by_creation(a: &ReplicaSet, b: &ReplicaSet) -> Ordering {
    let t = |rs: &ReplicaSet| rs.metadata.creation_timestamp.as_ref().map(|t| t.0);
    t(a).cmp(&t(b)).then_with(|| a.metadata.name.cmp(&b.metadata.name))
}

/// Revision, then creation: upstream's `ReplicaSetsByRevision`.
pub fn by_revision(a: &ReplicaSet, b: &ReplicaSet) -> Ordering {
    revision(&a.metadata)
        .cmp(&revision(&b.metadata))
        .then_with(|| by_creation(a, b))
}

/// Sum of `spec.replicas`.
pub fn spec_sum<'a>(rss: impl IntoIterator<Item = &'a ReplicaSet>) -> i32 {
    rss.into_iter().map(rs_replicas).sum()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn deploy(replicas: i32, surge: Value, unavailable: Value) -> Deployment {
        serde_json::from_value(json!({
            "metadata": {"name": "d"},
            "spec": {
                "replicas": replicas,
                "selector": {"matchLabels": {"a": "b"}},
                "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": surge, "maxUnavailable": unavailable}},
                "template": {"metadata": {"labels": {"a": "b"}}, "spec": {"containers": [{"name": "c", "image": "i"}]}}
            }
        }))
        .unwrap()
    }

    #[test]
    fn fenceposts_round_surge_up_and_unavailable_down() {
        let cases = [
            ("seed 10 at 25%", deploy(10, json!("25%"), json!("25%")), (3, 2)),
            ("counts", deploy(10, json!(3), json!(2)), (3, 2)),
            ("3 at 25%", deploy(3, json!("25%"), json!("25%")), (1, 0)),
            (
                "both zero becomes 1 unavailable",
                deploy(3, json!(0), json!("10%")),
                (0, 1),
            ),
            ("1 at 100%", deploy(1, json!("100%"), json!("0%")), (1, 0)),
        ];
        for (name, d, want) in cases {
            assert_eq!(fenceposts(&d), want, "{name}");
        }
        assert_eq!(max_unavailable(&deploy(2, json!(0), json!(5))), 2, "capped at replicas");
    }

    #[test]
    fn hash_uses_the_safe_alphabet_and_ignores_the_hash_label() {
        let d = deploy(1, json!(1), json!(0));
        let t = template(&d);
        let h = template_hash(&t, None);
        assert!(!h.is_empty() && h.len() <= 10, "{h}");
        assert!(h.bytes().all(|b| b"4567689bcdf".contains(&b)), "{h}");
        let mut labelled = t.clone();
        labelled
            .metadata
            .get_or_insert_with(Default::default)
            .labels
            .get_or_insert_with(Default::default)
            .insert(HASH_LABEL.into(), h.clone());
        assert_eq!(template_hash(&labelled, None), h);
        assert!(equal_ignore_hash(&t, &labelled));
        assert_ne!(template_hash(&t, Some(1)), h, "collision count changes the hash");
        let mut other = t.clone();
        other.spec.as_mut().unwrap().containers[0].image = Some("j".into());
        assert!(!equal_ignore_hash(&t, &other));
    }

    #[test]
    fn rollback_keeps_old_revisions_in_history() {
        let mut d = deploy(3, json!(1), json!(0));
        // kubectl `--record` sets the change cause; `rollout history` reads it from the RS.
        d.metadata.annotations = Some(
            [
                ("kubernetes.io/change-cause", "kubectl apply --record=true"),
                (REVISION, "9"),
            ]
            .into_iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        );
        let mut rs: ReplicaSet =
            serde_json::from_value(json!({"metadata": {"name": "r", "annotations": {REVISION: "1"}}})).unwrap();
        assert!(set_new_rs_annotations(&d, &mut rs, 3, true));
        let a = rs.metadata.annotations.clone().unwrap();
        assert_eq!((a[REVISION].as_str(), a[REVISION_HISTORY].as_str()), ("3", "1"));
        assert_eq!(a["kubernetes.io/change-cause"], "kubectl apply --record=true");
        assert!(set_new_rs_annotations(&d, &mut rs, 5, true));
        assert_eq!(rs.metadata.annotations.as_ref().unwrap()[REVISION_HISTORY], "1,3");
        assert!(!set_new_rs_annotations(&d, &mut rs, 4, true), "never lowered");
        let mut fresh = ReplicaSet::default();
        assert!(set_new_rs_annotations(&d, &mut fresh, 1, false));
        let a = fresh.metadata.annotations.unwrap();
        assert_eq!((a[DESIRED_REPLICAS].as_str(), a[MAX_REPLICAS].as_str()), ("3", "4"));
        assert!(!a.contains_key(REVISION_HISTORY));
    }
}
