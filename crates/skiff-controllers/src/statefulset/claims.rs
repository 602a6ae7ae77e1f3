//! upstream `persistentVolumeClaimRetentionPolicy`: which owner references a StatefulSet's
//! claims carry, so the garbage collector deletes them with the set (`whenDeleted: Delete`) or
//! with a pod removed by scale-down (`whenScaled: Delete`); `Retain` (the default) keeps them.

use k8s_openapi::api::apps::v1::StatefulSet;
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;
use kube::ResourceExt;

/// The policy's `(whenDeleted, whenScaled)` deletes, defaults `Retain`.
fn policy(set: &StatefulSet) -> (bool, bool) {
    let p = set
        .spec
        .as_ref()
        .and_then(|s| s.persistent_volume_claim_retention_policy.as_ref());
    let delete = |v: Option<&String>| v.is_some_and(|v| v == "Delete");
    (
        delete(p.and_then(|p| p.when_deleted.as_ref())),
        delete(p.and_then(|p| p.when_scaled.as_ref())),
    )
}

/// A plain (non-controller) reference to the set.
pub fn set_ref(set: &StatefulSet) -> OwnerReference {
    OwnerReference {
        api_version: "apps/v1".into(),
        kind: "StatefulSet".into(),
        name: set.name_any(),
        uid: set.uid().unwrap_or_default(),
        ..Default::default()
    }
}

fn pod_ref(pod: &Pod) -> OwnerReference {
    OwnerReference {
        api_version: "v1".into(),
        kind: "Pod".into(),
        name: pod.name_any(),
        uid: pod.uid().unwrap_or_default(),
        ..Default::default()
    }
}

/// upstream `updateClaimOwnerRefForSetAndPod`: the claim's owner references as the policy wants
/// them for `pod` (`None` for a pod not created yet), or `None` when they are right already.
pub fn wanted_refs(
    current: &[OwnerReference],
    set: &StatefulSet,
    pod: Option<&Pod>,
    scaled_down: bool,
) -> Option<Vec<OwnerReference>> {
    let (when_deleted, when_scaled) = policy(set);
    let want_set = when_deleted && !(when_scaled && scaled_down);
    let want_pod = when_scaled && scaled_down;
    let set_uid = set.uid().unwrap_or_default();
    let pod_uid = pod.and_then(|p| p.uid());
    let mut refs: Vec<OwnerReference> = current
        .iter()
        .filter(|r| r.uid != set_uid && Some(&r.uid) != pod_uid.as_ref())
        .cloned()
        .collect();
    if want_set {
        refs.push(
            current
                .iter()
                .find(|r| r.uid == set_uid)
                .cloned()
                .unwrap_or_else(|| set_ref(set)),
        );
    }
    match pod {
        Some(p) if want_pod => refs.push(
            current
                .iter()
                .find(|r| Some(&r.uid) == pod_uid.as_ref())
                .cloned()
                .unwrap_or_else(|| pod_ref(p)),
        ),
        // The pod's reference is left alone until the pod exists.
        None => refs.extend(current.iter().filter(|r| r.kind == "Pod").cloned()),
        Some(_) => {}
    }
    let same = refs.len() == current.len() && refs.iter().all(|r| current.iter().any(|c| c.uid == r.uid));
    (!same).then_some(refs)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn set(deleted: &str, scaled: &str) -> StatefulSet {
        serde_json::from_value(json!({
            "metadata": {"name": "web", "uid": "set"},
            "spec": {"selector": {}, "template": {}, "serviceName": "",
                "persistentVolumeClaimRetentionPolicy": {"whenDeleted": deleted, "whenScaled": scaled}}
        }))
        .unwrap()
    }

    #[test]
    fn refs_follow_the_policy() {
        let pod: Pod = serde_json::from_value(json!({"metadata": {"name": "web-3", "uid": "pod"}})).unwrap();
        let uids = |r: Option<Vec<OwnerReference>>| r.map(|v| v.into_iter().map(|r| r.uid).collect::<Vec<_>>());
        type Case<'a> = (&'a str, &'a str, &'a str, bool, Option<Vec<&'a str>>);
        let cases: [Case; 6] = [
            ("retain keeps none", "Retain", "Retain", false, None),
            ("whenDeleted adds the set", "Delete", "Retain", false, Some(vec!["set"])),
            ("whenScaled in range: none", "Retain", "Delete", false, None),
            (
                "whenScaled scaled down: pod",
                "Retain",
                "Delete",
                true,
                Some(vec!["pod"]),
            ),
            ("both, in range: set", "Delete", "Delete", false, Some(vec!["set"])),
            (
                "both, scaled down: pod only",
                "Delete",
                "Delete",
                true,
                Some(vec!["pod"]),
            ),
        ];
        for (name, d, s, down, want) in cases {
            let want = want.map(|v| v.into_iter().map(String::from).collect::<Vec<_>>());
            assert_eq!(uids(wanted_refs(&[], &set(d, s), Some(&pod), down)), want, "{name}");
        }
        // Already right: nothing to do; a stale set reference goes under Retain.
        let s = set("Delete", "Retain");
        assert_eq!(wanted_refs(&[set_ref(&s)], &s, Some(&pod), false), None);
        let r = set("Retain", "Retain");
        assert_eq!(uids(wanted_refs(&[set_ref(&r)], &r, Some(&pod), false)), Some(vec![]));
    }
}
