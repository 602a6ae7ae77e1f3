//! upstream `rollingUpdate` of the DaemonSet controller: without surge, old pods are deleted
//! while no more than maxUnavailable nodes lack an available pod (the manage loop then creates
//! the new ones); with surge, a new pod is started beside an old one on up to maxSurge nodes
//! and the old one goes once the new one is available.

use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

use crate::pods::is_available;

/// upstream `GetScaledValueFromIntOrPercent(v, total, roundUp=true)`.
pub fn scaled(v: Option<&IntOrString>, total: usize) -> usize {
    match v {
        None => 0,
        Some(IntOrString::Int(n)) => usize::try_from(*n).unwrap_or(0),
        Some(IntOrString::String(s)) => {
            let p: usize = s.trim_end_matches('%').parse().unwrap_or(0);
            (p * total).div_ceil(100)
        }
    }
}

/// The daemon pods on one node, and whether the node should run one.
pub struct NodePods<'a> {
    /// The node name.
    pub node: String,
    /// Its pods (terminating ones are skipped here).
    pub pods: Vec<&'a Pod>,
    /// upstream `NodeShouldRunDaemonPod`'s first answer.
    pub should_run: bool,
}

/// What the rolling update asks of `syncNodes`.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Plan {
    /// Names of old pods to delete.
    pub delete: Vec<String>,
    /// Nodes that get a new pod now (surge).
    pub create: Vec<String>,
}

/// The knobs of one rolling update pass.
pub struct Limits {
    /// New pods allowed beside old ones.
    pub max_surge: usize,
    /// Nodes allowed without an available pod.
    pub max_unavailable: usize,
    /// Nodes that should run a pod.
    pub desired: usize,
    /// `spec.minReadySeconds`.
    pub min_ready: i32,
}

/// upstream `findUpdatedPodsOnNode`: at most one new and one old live pod, else `None` (the
/// manage loop prunes the extra ones first).
fn split<'a>(pods: &[&'a Pod], updated: &impl Fn(&Pod) -> bool) -> Option<(Option<&'a Pod>, Option<&'a Pod>)> {
    let (mut new, mut old) = (None, None);
    for p in pods.iter().filter(|p| p.metadata.deletion_timestamp.is_none()) {
        let slot = if updated(p) { &mut new } else { &mut old };
        if slot.is_some() {
            return None;
        }
        *slot = Some(*p);
    }
    Some((new, old))
}

/// Decides one rolling update pass over `nodes` (sorted by name for a stable order).
pub fn plan(nodes: &[NodePods], updated: impl Fn(&Pod) -> bool, lim: &Limits, now: jiff::Timestamp) -> Plan {
    let avail = |p: &Pod| is_available(p, lim.min_ready, now);
    let name = |p: &Pod| p.metadata.name.clone().unwrap_or_default();
    let mut plan = Plan::default();
    if lim.max_surge == 0 {
        let mut unavailable = 0;
        let mut replace = Vec::new();
        let mut candidates = Vec::new();
        for n in nodes {
            match split(&n.pods, &updated) {
                None => unavailable += 1,
                Some((None, None)) | Some((Some(_), Some(_))) => unavailable += 1,
                Some((Some(new), None)) => unavailable += usize::from(!avail(new)),
                Some((None, Some(old))) => {
                    if !avail(old) {
                        // An old pod that is not available anyway is replaced at once.
                        replace.push(name(old));
                        unavailable += 1;
                    } else if unavailable < lim.max_unavailable {
                        candidates.push(name(old));
                    }
                }
            }
        }
        let room = lim.max_unavailable.saturating_sub(unavailable).min(candidates.len());
        plan.delete = replace;
        plan.delete.extend(candidates.into_iter().take(room));
        return plan;
    }
    let mut surging = 0;
    let mut available = 0;
    let mut allowed_new = Vec::new();
    let mut candidate_new = Vec::new();
    let mut misplaced_old = Vec::new();
    for n in nodes {
        let Some((new, old)) = split(&n.pods, &updated) else {
            surging += 1;
            continue;
        };
        if let Some(p) = old.or(new) {
            available += usize::from(avail(p));
        }
        match (new, old) {
            (_, None) => {}
            (None, Some(old)) if !avail(old) => {
                if n.should_run {
                    allowed_new.push(n.node.clone());
                } else {
                    plan.delete.push(name(old));
                }
            }
            (None, Some(old)) => {
                if !n.should_run {
                    misplaced_old.push(name(old));
                } else if surging < lim.max_surge {
                    candidate_new.push(n.node.clone());
                }
            }
            (Some(new), Some(old)) => {
                if avail(new) {
                    plan.delete.push(name(old));
                } else {
                    surging += 1;
                }
            }
        }
    }
    // With surge users expect full availability: a pod on a node it no longer belongs on goes
    // only while more pods are available than desired.
    let deletable = available.saturating_sub(lim.desired).min(misplaced_old.len());
    plan.delete.extend(misplaced_old.into_iter().take(deletable));
    let room = lim.max_surge.saturating_sub(surging).min(candidate_new.len());
    plan.create = allowed_new;
    plan.create.extend(candidate_new.into_iter().take(room));
    plan
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn pod(name: &str, hash: &str, ready: bool) -> Pod {
        serde_json::from_value(json!({
            "metadata": {"name": name, "labels": {"controller-revision-hash": hash}},
            "status": {"phase": "Running", "conditions": [{"type": "Ready", "status": if ready {"True"} else {"False"}}]}
        }))
        .unwrap()
    }

    fn names(v: &[String]) -> Vec<&str> {
        v.iter().map(String::as_str).collect()
    }

    #[test]
    fn scaling_rounds_up() {
        let cases = [
            (None, 10, 0),
            (Some(IntOrString::Int(2)), 10, 2),
            (Some(IntOrString::String("25%".into())), 10, 3),
            (Some(IntOrString::String("10%".into())), 3, 1),
            (Some(IntOrString::String("0%".into())), 3, 0),
        ];
        for (v, total, want) in cases {
            assert_eq!(scaled(v.as_ref(), total), want, "{v:?} of {total}");
        }
    }

    #[test]
    fn without_surge_deletes_up_to_max_unavailable() {
        let pods: Vec<Pod> = (1..=4).map(|i| pod(&format!("old-{i}"), "a", true)).collect();
        let nodes: Vec<NodePods> = pods
            .iter()
            .enumerate()
            .map(|(i, p)| NodePods {
                node: format!("n{i}"),
                pods: vec![p],
                should_run: true,
            })
            .collect();
        let updated = |p: &Pod| hash_of(p) == "b";
        let lim = Limits {
            max_surge: 0,
            max_unavailable: 2,
            desired: 4,
            min_ready: 0,
        };
        let p = plan(&nodes, updated, &lim, jiff::Timestamp::now());
        assert_eq!(names(&p.delete), ["old-1", "old-2"]);
        assert!(p.create.is_empty());

        // One node already has an unavailable new pod: only one more old pod may go.
        let fresh = pod("new-1", "b", false);
        let mut nodes = nodes;
        nodes[0].pods = vec![&fresh];
        let p = plan(&nodes, updated, &lim, jiff::Timestamp::now());
        assert_eq!(names(&p.delete), ["old-2"]);

        // An old pod that is not available is replaced regardless.
        let sick = pod("sick", "a", false);
        nodes[3].pods = vec![&sick];
        let p = plan(&nodes, updated, &lim, jiff::Timestamp::now());
        assert_eq!(names(&p.delete), ["sick"]);
    }

    #[test]
    fn with_surge_starts_new_pods_then_removes_old_ones() {
        let old: Vec<Pod> = (0..3).map(|i| pod(&format!("old-{i}"), "a", true)).collect();
        let new_ready = pod("new-0", "b", true);
        let new_starting = pod("new-1", "b", false);
        let nodes = vec![
            NodePods {
                node: "n0".into(),
                pods: vec![&old[0], &new_ready],
                should_run: true,
            },
            NodePods {
                node: "n1".into(),
                pods: vec![&old[1], &new_starting],
                should_run: true,
            },
            NodePods {
                node: "n2".into(),
                pods: vec![&old[2]],
                should_run: true,
            },
        ];
        let updated = |p: &Pod| hash_of(p) == "b";
        let lim = Limits {
            max_surge: 2,
            max_unavailable: 0,
            desired: 3,
            min_ready: 0,
        };
        let p = plan(&nodes, updated, &lim, jiff::Timestamp::now());
        assert_eq!(names(&p.delete), ["old-0"], "old pod beside an available new one goes");
        assert_eq!(
            names(&p.create),
            ["n2"],
            "one more surge pod fits beside the starting one"
        );
        let lim = Limits { max_surge: 1, ..lim };
        let p = plan(&nodes, updated, &lim, jiff::Timestamp::now());
        assert!(p.create.is_empty(), "surge budget used by the starting pod");
    }

    fn hash_of(p: &Pod) -> &str {
        p.metadata
            .labels
            .as_ref()
            .and_then(|l| l.get("controller-revision-hash"))
            .map(String::as_str)
            .unwrap_or("")
    }
}
