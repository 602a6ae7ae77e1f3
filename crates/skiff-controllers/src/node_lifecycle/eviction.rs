//! When a pod on a node with NoExecute taints must go (upstream taint eviction controller).

use k8s_openapi::api::core::v1::{Pod, Taint, Toleration};

/// Whether a toleration tolerates a taint (upstream `ToleratesTaint`).
pub fn tolerates(tol: &Toleration, taint: &Taint) -> bool {
    let effect_ok = tol.effect.as_deref().is_none_or(|e| e.is_empty() || e == taint.effect);
    let key = tol.key.as_deref().unwrap_or("");
    let op = tol.operator.as_deref().unwrap_or("Equal");
    if key.is_empty() {
        return effect_ok && op == "Exists";
    }
    if key != taint.key || !effect_ok {
        return false;
    }
    match op {
        "Exists" => true,
        _ => tol.value.as_deref().unwrap_or("") == taint.value.as_deref().unwrap_or(""),
    }
}

/// What to do with a pod on a node with NoExecute taints.
#[derive(Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Every taint is tolerated forever.
    Keep,
    /// Delete now.
    EvictNow,
    /// Delete at this time (seconds since the epoch).
    EvictAt(i64),
}

/// Decides by the node's NoExecute taints and the pod's tolerations.
pub fn verdict(pod: &Pod, taints: &[Taint]) -> Verdict {
    let no_exec: Vec<&Taint> = taints.iter().filter(|t| t.effect == "NoExecute").collect();
    if no_exec.is_empty() {
        return Verdict::Keep;
    }
    let tols: &[Toleration] = pod.spec.as_ref().and_then(|s| s.tolerations.as_deref()).unwrap_or(&[]);
    let mut min_secs: Option<i64> = None;
    for taint in &no_exec {
        let matching: Vec<&Toleration> = tols.iter().filter(|t| tolerates(t, taint)).collect();
        if matching.is_empty() {
            return Verdict::EvictNow;
        }
        for t in matching {
            if let Some(s) = t.toleration_seconds {
                min_secs = Some(min_secs.map_or(s.max(0), |m| m.min(s.max(0))));
            }
        }
    }
    let Some(secs) = min_secs else { return Verdict::Keep };
    let added = no_exec
        .iter()
        .filter_map(|t| t.time_added.as_ref().map(|ta| ta.0.as_second()))
        .min();
    match added {
        Some(a) => Verdict::EvictAt(a + secs),
        None if secs == 0 => Verdict::EvictNow,
        None => Verdict::EvictAt(jiff::Timestamp::now().as_second() + secs),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::PodSpec;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

    fn pod(tols: Vec<Toleration>) -> Pod {
        Pod {
            spec: Some(PodSpec {
                tolerations: Some(tols),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    fn tol(key: &str, secs: Option<i64>) -> Toleration {
        Toleration {
            key: Some(key.into()),
            operator: Some("Exists".into()),
            effect: Some("NoExecute".into()),
            toleration_seconds: secs,
            ..Default::default()
        }
    }

    #[test]
    fn verdicts() {
        let at = jiff::Timestamp::from_second(1000).unwrap();
        let taint = Taint {
            key: "node.kubernetes.io/unreachable".into(),
            effect: "NoExecute".into(),
            time_added: Some(Time(at)),
            ..Default::default()
        };
        assert_eq!(verdict(&pod(vec![]), std::slice::from_ref(&taint)), Verdict::EvictNow);
        assert_eq!(
            verdict(
                &pod(vec![tol("node.kubernetes.io/unreachable", Some(300))]),
                std::slice::from_ref(&taint)
            ),
            Verdict::EvictAt(1300)
        );
        assert_eq!(
            verdict(
                &pod(vec![tol("node.kubernetes.io/unreachable", None)]),
                std::slice::from_ref(&taint)
            ),
            Verdict::Keep
        );
        let any = Toleration {
            operator: Some("Exists".into()),
            ..Default::default()
        };
        assert_eq!(verdict(&pod(vec![any]), std::slice::from_ref(&taint)), Verdict::Keep);
        let no_schedule = Taint {
            effect: "NoSchedule".into(),
            ..taint
        };
        assert_eq!(verdict(&pod(vec![]), &[no_schedule]), Verdict::Keep);
    }
}
