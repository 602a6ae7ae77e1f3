//! Which condition taints a node should carry (upstream TaintNodesByCondition and the
//! NoExecute taints of the node lifecycle controller).

use k8s_openapi::api::core::v1::{Node, Taint};

/// Taint key of a node whose Ready condition is False.
pub const NOT_READY: &str = "node.kubernetes.io/not-ready";
/// Taint key of a node whose Ready condition is Unknown (heartbeats stopped).
pub const UNREACHABLE: &str = "node.kubernetes.io/unreachable";
/// Taint key of a cordoned node.
pub const UNSCHEDULABLE: &str = "node.kubernetes.io/unschedulable";

/// Status of the node's Ready condition ("True", "False", "Unknown"; "Unknown" if absent).
pub fn ready_status(node: &Node) -> &str {
    node.status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .and_then(|c| c.iter().find(|c| c.type_ == "Ready"))
        .map_or("Unknown", |c| c.status.as_str())
}

fn taint(key: &str, effect: &str) -> Taint {
    Taint {
        key: key.into(),
        effect: effect.into(),
        ..Default::default()
    }
}

/// The condition taints the node should have: not-ready or unreachable with NoSchedule and
/// NoExecute, and unschedulable:NoSchedule when cordoned.
pub fn desired(node: &Node) -> Vec<Taint> {
    let mut out = Vec::new();
    let key = match ready_status(node) {
        "True" => None,
        "False" => Some(NOT_READY),
        _ => Some(UNREACHABLE),
    };
    if let Some(k) = key {
        out.push(taint(k, "NoSchedule"));
        out.push(taint(k, "NoExecute"));
    }
    if node.spec.as_ref().and_then(|s| s.unschedulable).unwrap_or(false) {
        out.push(taint(UNSCHEDULABLE, "NoSchedule"));
    }
    out
}

fn managed(t: &Taint) -> bool {
    [NOT_READY, UNREACHABLE, UNSCHEDULABLE].contains(&t.key.as_str())
}

/// The node's taints with the managed ones replaced by `want`; `None` if nothing changes.
/// Taints that stay keep their `timeAdded`; new NoExecute taints get `now`.
pub fn reconcile(current: &[Taint], want: &[Taint], now: &jiff::Timestamp) -> Option<Vec<Taint>> {
    let same = |a: &Taint, b: &Taint| a.key == b.key && a.effect == b.effect;
    let have: Vec<&Taint> = current.iter().filter(|t| managed(t)).collect();
    let unchanged = have.len() == want.len() && want.iter().all(|w| have.iter().any(|h| same(h, w)));
    if unchanged {
        return None;
    }
    let mut out: Vec<Taint> = current.iter().filter(|t| !managed(t)).cloned().collect();
    for w in want {
        match have.iter().find(|h| same(h, w)) {
            Some(h) => out.push((*h).clone()),
            None => {
                let mut t = w.clone();
                if t.effect == "NoExecute" {
                    t.time_added = Some(k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(*now));
                }
                out.push(t);
            }
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::{NodeCondition, NodeSpec, NodeStatus};

    fn node(ready: &str, cordoned: bool) -> Node {
        Node {
            spec: Some(NodeSpec {
                unschedulable: Some(cordoned),
                ..Default::default()
            }),
            status: Some(NodeStatus {
                conditions: Some(vec![NodeCondition {
                    type_: "Ready".into(),
                    status: ready.into(),
                    ..Default::default()
                }]),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    #[test]
    fn desired_taints_follow_ready_and_cordon() {
        assert!(desired(&node("True", false)).is_empty());
        let d = desired(&node("Unknown", true));
        let keys: Vec<(&str, &str)> = d.iter().map(|t| (t.key.as_str(), t.effect.as_str())).collect();
        assert_eq!(
            keys,
            vec![
                (UNREACHABLE, "NoSchedule"),
                (UNREACHABLE, "NoExecute"),
                (UNSCHEDULABLE, "NoSchedule")
            ]
        );
        assert_eq!(desired(&node("False", false))[0].key, NOT_READY);
    }

    #[test]
    fn reconcile_keeps_foreign_taints_and_time_added() {
        let now = jiff::Timestamp::now();
        let foreign = Taint {
            key: "team".into(),
            value: Some("a".into()),
            effect: "NoSchedule".into(),
            ..Default::default()
        };
        let want = desired(&node("Unknown", false));
        let first = reconcile(std::slice::from_ref(&foreign), &want, &now).unwrap();
        assert_eq!(first.len(), 3);
        assert!(first.iter().any(|t| t.effect == "NoExecute" && t.time_added.is_some()));
        assert!(reconcile(&first, &want, &now).is_none());
        let healed = reconcile(&first, &[], &now).unwrap();
        assert_eq!(healed, vec![foreign]);
    }
}
