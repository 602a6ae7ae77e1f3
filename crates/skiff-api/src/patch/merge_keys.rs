//! Strategic-merge metadata of the built-in types: the Go struct tags
//! (`patchStrategy`, `patchMergeKey`) of k8s.io/api, keyed by OpenAPI definition and field.

/// How a field merges in a strategic merge patch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MergeInfo {
    /// `patchStrategy`: `merge`, `retainKeys` or `merge,retainKeys`.
    pub strategy: &'static str,
    /// `patchMergeKey` for lists of objects; `None` for primitive lists and maps.
    pub key: Option<&'static str>,
}

const fn m(strategy: &'static str, key: Option<&'static str>) -> MergeInfo {
    MergeInfo { strategy, key }
}

/// (definition, field, info): every tagged field of the served types.
static TABLE: &[(&str, &str, MergeInfo)] = &[
    ("io.k8s.api.core.v1.PodSpec", "containers", m("merge", Some("name"))),
    ("io.k8s.api.core.v1.PodSpec", "initContainers", m("merge", Some("name"))),
    (
        "io.k8s.api.core.v1.PodSpec",
        "ephemeralContainers",
        m("merge", Some("name")),
    ),
    (
        "io.k8s.api.core.v1.PodSpec",
        "volumes",
        m("merge,retainKeys", Some("name")),
    ),
    (
        "io.k8s.api.core.v1.PodSpec",
        "imagePullSecrets",
        m("merge", Some("name")),
    ),
    ("io.k8s.api.core.v1.PodSpec", "hostAliases", m("merge", Some("ip"))),
    (
        "io.k8s.api.core.v1.PodSpec",
        "topologySpreadConstraints",
        m("merge", Some("topologyKey")),
    ),
    (
        "io.k8s.api.core.v1.PodSpec",
        "schedulingGates",
        m("merge", Some("name")),
    ),
    (
        "io.k8s.api.core.v1.PodSpec",
        "resourceClaims",
        m("merge,retainKeys", Some("name")),
    ),
    ("io.k8s.api.core.v1.Container", "env", m("merge", Some("name"))),
    (
        "io.k8s.api.core.v1.Container",
        "ports",
        m("merge", Some("containerPort")),
    ),
    (
        "io.k8s.api.core.v1.Container",
        "volumeMounts",
        m("merge", Some("mountPath")),
    ),
    (
        "io.k8s.api.core.v1.Container",
        "volumeDevices",
        m("merge", Some("devicePath")),
    ),
    ("io.k8s.api.core.v1.EphemeralContainer", "env", m("merge", Some("name"))),
    (
        "io.k8s.api.core.v1.EphemeralContainer",
        "ports",
        m("merge", Some("containerPort")),
    ),
    (
        "io.k8s.api.core.v1.EphemeralContainer",
        "volumeMounts",
        m("merge", Some("mountPath")),
    ),
    (
        "io.k8s.api.core.v1.EphemeralContainer",
        "volumeDevices",
        m("merge", Some("devicePath")),
    ),
    ("io.k8s.api.core.v1.ServiceSpec", "ports", m("merge", Some("port"))),
    ("io.k8s.api.core.v1.ServiceAccount", "secrets", m("merge", Some("name"))),
    (
        "io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta",
        "ownerReferences",
        m("merge", Some("uid")),
    ),
    (
        "io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta",
        "finalizers",
        m("merge", None),
    ),
    ("io.k8s.api.core.v1.NodeSpec", "podCIDRs", m("merge", None)),
    ("io.k8s.api.core.v1.NodeStatus", "addresses", m("merge", Some("type"))),
    ("io.k8s.api.core.v1.NodeStatus", "conditions", m("merge", Some("type"))),
    ("io.k8s.api.core.v1.PodStatus", "conditions", m("merge", Some("type"))),
    ("io.k8s.api.core.v1.PodStatus", "podIPs", m("merge", Some("ip"))),
    ("io.k8s.api.core.v1.PodStatus", "hostIPs", m("merge", Some("ip"))),
    (
        "io.k8s.api.core.v1.NamespaceStatus",
        "conditions",
        m("merge", Some("type")),
    ),
    (
        "io.k8s.api.core.v1.PersistentVolumeClaimStatus",
        "conditions",
        m("merge", Some("type")),
    ),
    (
        "io.k8s.api.core.v1.ServiceStatus",
        "conditions",
        m("merge", Some("type")),
    ),
    (
        "io.k8s.api.core.v1.ReplicationControllerStatus",
        "conditions",
        m("merge", Some("type")),
    ),
    (
        "io.k8s.api.apps.v1.DeploymentStatus",
        "conditions",
        m("merge", Some("type")),
    ),
    (
        "io.k8s.api.apps.v1.ReplicaSetStatus",
        "conditions",
        m("merge", Some("type")),
    ),
    (
        "io.k8s.api.apps.v1.StatefulSetStatus",
        "conditions",
        m("merge", Some("type")),
    ),
    (
        "io.k8s.api.apps.v1.DaemonSetStatus",
        "conditions",
        m("merge", Some("type")),
    ),
    ("io.k8s.api.apps.v1.DeploymentSpec", "strategy", m("retainKeys", None)),
    ("io.k8s.api.batch.v1.JobStatus", "conditions", m("merge", Some("type"))),
    (
        "io.k8s.api.core.v1.PodStatus",
        "resourceClaimStatuses",
        m("merge,retainKeys", Some("name")),
    ),
    (
        "io.k8s.api.autoscaling.v2.HorizontalPodAutoscalerStatus",
        "conditions",
        m("merge", Some("type")),
    ),
    (
        "io.k8s.api.policy.v1.PodDisruptionBudgetStatus",
        "conditions",
        m("merge", Some("type")),
    ),
];

/// The strategic-merge metadata of `field` inside the OpenAPI definition `definition`
/// (e.g. `io.k8s.api.core.v1.PodSpec`, `containers`).
pub fn lookup(definition: &str, field: &str) -> Option<MergeInfo> {
    TABLE
        .iter()
        .find(|(d, f, _)| *d == definition && *f == field)
        .map(|(_, _, i)| *i)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn containers_merge_by_name() {
        let i = lookup("io.k8s.api.core.v1.PodSpec", "containers").unwrap();
        assert_eq!(i.key, Some("name"));
        assert!(lookup("io.k8s.api.core.v1.PodSpec", "tolerations").is_none());
    }
}
