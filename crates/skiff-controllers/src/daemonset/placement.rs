//! Where a DaemonSet's pods belong (upstream `NodeShouldRunDaemonPod`): the node must match the
//! template's nodeName, nodeSelector and required node affinity, and its taints must be
//! tolerated by the template plus the default DaemonSet tolerations.

use k8s_openapi::api::core::v1::{
    Affinity, Node, NodeAffinity, NodeSelector, NodeSelectorRequirement, NodeSelectorTerm, Pod, PodSpec, Taint,
    Toleration,
};
use kube::ResourceExt;
use skiff_api::node_affinity::required_matches;

use crate::node_lifecycle::eviction::tolerates;

/// upstream `AddOrUpdateDaemonPodTolerations`: daemons survive not-ready and unreachable nodes
/// and run on nodes under pressure or cordoned (and, with hostNetwork, without a network).
pub fn add_default_tolerations(spec: &mut PodSpec) {
    let mut wanted = vec![
        ("node.kubernetes.io/not-ready", "NoExecute"),
        ("node.kubernetes.io/unreachable", "NoExecute"),
        ("node.kubernetes.io/disk-pressure", "NoSchedule"),
        ("node.kubernetes.io/memory-pressure", "NoSchedule"),
        ("node.kubernetes.io/pid-pressure", "NoSchedule"),
        ("node.kubernetes.io/unschedulable", "NoSchedule"),
    ];
    if spec.host_network == Some(true) {
        wanted.push(("node.kubernetes.io/network-unavailable", "NoSchedule"));
    }
    let tols = spec.tolerations.get_or_insert_with(Vec::new);
    for (key, effect) in wanted {
        let t = Toleration {
            key: Some(key.into()),
            operator: Some("Exists".into()),
            effect: Some(effect.into()),
            ..Default::default()
        };
        // upstream `AddOrUpdateTolerationInPodSpec`: one with the same key, operator, value and
        // effect is replaced (e.g. a tolerationSeconds is dropped), else it is appended.
        let same = |x: &Toleration| {
            x.key == t.key
                && x.operator.as_deref().unwrap_or("Equal") == "Exists"
                && x.value.as_deref().unwrap_or("").is_empty()
                && x.effect == t.effect
        };
        match tols.iter_mut().find(|x| same(x)) {
            Some(x) => *x = t,
            None => tols.push(t),
        }
    }
}

/// upstream `ReplaceDaemonSetPodNodeNameNodeAffinity`: the required node affinity becomes
/// `metadata.name In [node]`, so the default scheduler binds the pod to its node.
pub fn pin_to_node(affinity: Option<Affinity>, node: &str) -> Affinity {
    let selector = NodeSelector {
        node_selector_terms: vec![NodeSelectorTerm {
            match_expressions: None,
            match_fields: Some(vec![NodeSelectorRequirement {
                key: "metadata.name".into(),
                operator: "In".into(),
                values: Some(vec![node.into()]),
            }]),
        }],
    };
    let mut affinity = affinity.unwrap_or_default();
    let na = affinity.node_affinity.get_or_insert_with(NodeAffinity::default);
    na.required_during_scheduling_ignored_during_execution = Some(selector);
    affinity
}

/// upstream `GetTargetNodeName`: the pod's node, or the one its node affinity pins it to.
pub fn target_node(pod: &Pod) -> Option<String> {
    let spec = pod.spec.as_ref()?;
    if let Some(n) = spec.node_name.as_ref().filter(|n| !n.is_empty()) {
        return Some(n.clone());
    }
    let terms = &spec
        .affinity
        .as_ref()?
        .node_affinity
        .as_ref()?
        .required_during_scheduling_ignored_during_execution
        .as_ref()?
        .node_selector_terms;
    terms.iter().find_map(|t| {
        t.match_fields.as_ref()?.iter().find_map(|r| {
            let values = r.values.as_deref()?;
            (r.key == "metadata.name" && r.operator == "In" && values.len() == 1).then(|| values[0].clone())
        })
    })
}

/// upstream `GetRequiredNodeAffinity(pod).Match(node)`: nodeSelector and required affinity.
fn fits_affinity(spec: &PodSpec, node: &Node) -> bool {
    required_matches(spec, node.labels(), &node.name_any())
}

fn untolerated<'a>(taints: &'a [Taint], tols: &[Toleration], effects: &[&str]) -> Option<&'a Taint> {
    taints
        .iter()
        .filter(|t| effects.contains(&t.effect.as_str()))
        .find(|t| !tols.iter().any(|tol| tolerates(tol, t)))
}

/// The template's pod spec as a daemon pod gets it (upstream `NewPod`): with the default
/// tolerations. Computed once per sync and given to [`should_run`] for every node.
pub fn daemon_spec(template: &PodSpec) -> PodSpec {
    let mut spec = template.clone();
    add_default_tolerations(&mut spec);
    spec
}

/// upstream `NodeShouldRunDaemonPod` for a [`daemon_spec`]: `(should run, should continue
/// running)`. A node whose taints the pod does not tolerate gets no new pod, but a running one
/// stays unless a NoExecute taint is not tolerated.
pub fn should_run(spec: &PodSpec, node: &Node) -> (bool, bool) {
    let name = node.name_any();
    if spec.node_name.as_ref().is_some_and(|n| !n.is_empty() && *n != name) || !fits_affinity(spec, node) {
        return (false, false);
    }
    let taints = node.spec.as_ref().and_then(|s| s.taints.as_deref()).unwrap_or(&[]);
    let tols = spec.tolerations.as_deref().unwrap_or(&[]);
    if untolerated(taints, tols, &["NoSchedule", "NoExecute"]).is_some() {
        return (false, untolerated(taints, tols, &["NoExecute"]).is_none());
    }
    (true, true)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn node(labels: serde_json::Value, taints: serde_json::Value) -> Node {
        serde_json::from_value(json!({"metadata": {"name": "n1", "labels": labels}, "spec": {"taints": taints}}))
            .unwrap()
    }

    fn spec(extra: serde_json::Value) -> PodSpec {
        let mut v = json!({"containers": [{"name": "c"}]});
        if let (Some(o), Some(e)) = (v.as_object_mut(), extra.as_object()) {
            o.extend(e.clone());
        }
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn placement_cases() {
        let cases = [
            ("plain node", spec(json!({})), node(json!({}), json!([])), (true, true)),
            (
                "nodeSelector miss",
                spec(json!({"nodeSelector": {"disk": "ssd"}})),
                node(json!({}), json!([])),
                (false, false),
            ),
            (
                "nodeSelector hit",
                spec(json!({"nodeSelector": {"disk": "ssd"}})),
                node(json!({"disk": "ssd"}), json!([])),
                (true, true),
            ),
            (
                "affinity NotIn",
                spec(
                    json!({"affinity": {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution":
                    {"nodeSelectorTerms": [{"matchExpressions": [{"key": "zone", "operator": "NotIn", "values": ["a"]}]}]}}}}),
                ),
                node(json!({"zone": "a"}), json!([])),
                (false, false),
            ),
            (
                "affinity by name",
                spec(
                    json!({"affinity": {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution":
                    {"nodeSelectorTerms": [{"matchFields": [{"key": "metadata.name", "operator": "In", "values": ["n1"]}]}]}}}}),
                ),
                node(json!({}), json!([])),
                (true, true),
            ),
            (
                "other nodeName",
                spec(json!({"nodeName": "n2"})),
                node(json!({}), json!([])),
                (false, false),
            ),
            (
                "cordoned: tolerated by default",
                spec(json!({})),
                node(
                    json!({}),
                    json!([{"key": "node.kubernetes.io/unschedulable", "effect": "NoSchedule"}]),
                ),
                (true, true),
            ),
            (
                "not ready: tolerated by default",
                spec(json!({})),
                node(
                    json!({}),
                    json!([{"key": "node.kubernetes.io/not-ready", "effect": "NoExecute"}]),
                ),
                (true, true),
            ),
            (
                "foreign NoSchedule: no new pod, keep running",
                spec(json!({})),
                node(
                    json!({}),
                    json!([{"key": "dedicated", "value": "db", "effect": "NoSchedule"}]),
                ),
                (false, true),
            ),
            (
                "foreign NoExecute: evicted",
                spec(json!({})),
                node(
                    json!({}),
                    json!([{"key": "dedicated", "value": "db", "effect": "NoExecute"}]),
                ),
                (false, false),
            ),
            (
                "tolerated foreign taint",
                spec(json!({"tolerations": [{"key": "dedicated", "operator": "Exists"}]})),
                node(
                    json!({}),
                    json!([{"key": "dedicated", "value": "db", "effect": "NoExecute"}]),
                ),
                (true, true),
            ),
            (
                "network unavailable: only hostNetwork tolerates",
                spec(json!({})),
                node(
                    json!({}),
                    json!([{"key": "node.kubernetes.io/network-unavailable", "effect": "NoSchedule"}]),
                ),
                (false, true),
            ),
            (
                "network unavailable with hostNetwork",
                spec(json!({"hostNetwork": true})),
                node(
                    json!({}),
                    json!([{"key": "node.kubernetes.io/network-unavailable", "effect": "NoSchedule"}]),
                ),
                (true, true),
            ),
        ];
        for (name, s, n, want) in cases {
            assert_eq!(should_run(&daemon_spec(&s), &n), want, "{name}");
        }
    }

    #[test]
    fn tolerations_and_pinning() {
        let mut s = spec(json!({"tolerations": [
            {"key": "node.kubernetes.io/not-ready", "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 300},
            {"key": "custom", "operator": "Exists"}]}));
        add_default_tolerations(&mut s);
        let tols = s.tolerations.as_ref().unwrap();
        assert_eq!(tols.len(), 7, "{tols:?}");
        assert_eq!(tols[0].toleration_seconds, None, "replaced, without seconds");
        assert_eq!(tols[1].key.as_deref(), Some("custom"));

        let a = pin_to_node(None, "n7");
        let pod = Pod {
            spec: Some(PodSpec {
                affinity: Some(a),
                ..Default::default()
            }),
            ..Default::default()
        };
        assert_eq!(target_node(&pod).as_deref(), Some("n7"));
        let n7: Node = serde_json::from_value(json!({"metadata": {"name": "n7"}})).unwrap();
        assert!(fits_affinity(pod.spec.as_ref().unwrap(), &n7));
        assert!(!fits_affinity(pod.spec.as_ref().unwrap(), &node(json!({}), json!([]))));
    }
}
