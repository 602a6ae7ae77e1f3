//! The registry of kinds skiff serves: group, version, resource, kind, scope, short names,
//! categories, verbs and subresources, in upstream discovery order.

use std::collections::HashMap;
use std::sync::OnceLock;

/// A subresource of a resource, as discovery advertises it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Subresource {
    /// Path segment after the object name (`status`, `scale`, `binding`, ...).
    pub name: &'static str,
    /// Group of the kind the subresource answers with.
    pub group: &'static str,
    /// Version of the kind the subresource answers with.
    pub version: &'static str,
    /// Kind the subresource answers with (`Scale`, `Binding`, ...).
    pub kind: &'static str,
    /// Verbs allowed on it.
    pub verbs: &'static [&'static str],
}

impl Subresource {
    /// Whether this is a streaming (connect) subresource served by the node agent: its
    /// options kind is a query, not a body, so it has no object schema.
    pub fn is_connect(&self) -> bool {
        matches!(self.name, "exec" | "attach" | "portforward" | "log")
    }
}

/// One served resource (one group/version/resource).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ResourceDef {
    /// API group; empty for the core group.
    pub group: &'static str,
    /// API version within the group.
    pub version: &'static str,
    /// Kind, e.g. `Deployment`.
    pub kind: &'static str,
    /// Plural resource name, e.g. `deployments`.
    pub plural: &'static str,
    /// Singular resource name, e.g. `deployment`.
    pub singular: &'static str,
    /// Whether objects live in namespaces.
    pub namespaced: bool,
    /// Short names (`deploy`).
    pub short_names: &'static [&'static str],
    /// Categories (`all`).
    pub categories: &'static [&'static str],
    /// Verbs on the collection and its objects.
    pub verbs: &'static [&'static str],
    /// Subresources served.
    pub subresources: &'static [Subresource],
    /// Group of the storage this resource shares with another view (events.k8s.io events are
    /// stored as core events); `None` when stored under its own group.
    pub storage_group: Option<&'static str>,
    /// Whether a completed DELETE answers with the deleted object rather than a Status
    /// (upstream storage with `ReturnDeletedObject: true`).
    pub return_deleted_object: bool,
}

/// The eight standard verbs.
pub const ALL_VERBS: &[&str] = &[
    "create",
    "delete",
    "deletecollection",
    "get",
    "list",
    "patch",
    "update",
    "watch",
];
/// Namespaces have no deletecollection upstream.
const NS_VERBS: &[&str] = &["create", "delete", "get", "list", "patch", "update", "watch"];
const SUB_VERBS: &[&str] = &["get", "patch", "update"];
/// Kinds skiff serves read-only (its local APIServices).
pub const READ_VERBS: &[&str] = &["get", "list", "watch"];

const fn status(group: &'static str, version: &'static str, kind: &'static str) -> Subresource {
    Subresource {
        name: "status",
        group,
        version,
        kind,
        verbs: SUB_VERBS,
    }
}
const fn scale() -> Subresource {
    Subresource {
        name: "scale",
        group: "autoscaling",
        version: "v1",
        kind: "Scale",
        verbs: SUB_VERBS,
    }
}

macro_rules! res {
    ($g:expr, $v:expr, $kind:expr, $plural:expr, $singular:expr, $ns:expr, [$($short:expr),*], [$($cat:expr),*], $verbs:expr, [$($sub:expr),*]) => {
        ResourceDef {
            group: $g, version: $v, kind: $kind, plural: $plural, singular: $singular, namespaced: $ns,
            short_names: &[$($short),*], categories: &[$($cat),*], verbs: $verbs,
            subresources: &[$($sub),*], storage_group: None, return_deleted_object: false,
        }
    };
}

const POD_SUBS: &[Subresource] = &[
    Subresource {
        name: "attach",
        group: "",
        version: "v1",
        kind: "PodAttachOptions",
        verbs: &["create", "get"],
    },
    Subresource {
        name: "binding",
        group: "",
        version: "v1",
        kind: "Binding",
        verbs: &["create"],
    },
    Subresource {
        name: "eviction",
        group: "policy",
        version: "v1",
        kind: "Eviction",
        verbs: &["create"],
    },
    Subresource {
        name: "exec",
        group: "",
        version: "v1",
        kind: "PodExecOptions",
        verbs: &["create", "get"],
    },
    Subresource {
        name: "log",
        group: "",
        version: "v1",
        kind: "Pod",
        verbs: &["get"],
    },
    Subresource {
        name: "portforward",
        group: "",
        version: "v1",
        kind: "PodPortForwardOptions",
        verbs: &["create", "get"],
    },
    status("", "v1", "Pod"),
];

/// Every resource served, in discovery order (core first, then groups in upstream order).
pub static RESOURCES: &[ResourceDef] = &[
    // core/v1, alphabetical as upstream lists it
    res!(
        "",
        "v1",
        "ConfigMap",
        "configmaps",
        "configmap",
        true,
        ["cm"],
        [],
        ALL_VERBS,
        []
    ),
    res!(
        "",
        "v1",
        "Endpoints",
        "endpoints",
        "endpoints",
        true,
        ["ep"],
        [],
        ALL_VERBS,
        []
    ),
    res!("", "v1", "Event", "events", "event", true, ["ev"], [], ALL_VERBS, []),
    res!(
        "",
        "v1",
        "LimitRange",
        "limitranges",
        "limitrange",
        true,
        ["limits"],
        [],
        ALL_VERBS,
        []
    ),
    ResourceDef {
        return_deleted_object: true,
        ..res!(
            "",
            "v1",
            "Namespace",
            "namespaces",
            "namespace",
            false,
            ["ns"],
            [],
            NS_VERBS,
            [status("", "v1", "Namespace")]
        )
    },
    res!(
        "",
        "v1",
        "Node",
        "nodes",
        "node",
        false,
        ["no"],
        [],
        ALL_VERBS,
        [status("", "v1", "Node")]
    ),
    ResourceDef {
        return_deleted_object: true,
        ..res!(
            "",
            "v1",
            "PersistentVolumeClaim",
            "persistentvolumeclaims",
            "persistentvolumeclaim",
            true,
            ["pvc"],
            [],
            ALL_VERBS,
            [status("", "v1", "PersistentVolumeClaim")]
        )
    },
    ResourceDef {
        return_deleted_object: true,
        ..res!(
            "",
            "v1",
            "PersistentVolume",
            "persistentvolumes",
            "persistentvolume",
            false,
            ["pv"],
            [],
            ALL_VERBS,
            [status("", "v1", "PersistentVolume")]
        )
    },
    ResourceDef {
        subresources: POD_SUBS,
        return_deleted_object: true,
        ..res!("", "v1", "Pod", "pods", "pod", true, ["po"], ["all"], ALL_VERBS, [])
    },
    res!(
        "",
        "v1",
        "ReplicationController",
        "replicationcontrollers",
        "replicationcontroller",
        true,
        ["rc"],
        ["all"],
        ALL_VERBS,
        [scale(), status("", "v1", "ReplicationController")]
    ),
    ResourceDef {
        return_deleted_object: true,
        ..res!(
            "",
            "v1",
            "ResourceQuota",
            "resourcequotas",
            "resourcequota",
            true,
            ["quota"],
            [],
            ALL_VERBS,
            [status("", "v1", "ResourceQuota")]
        )
    },
    res!("", "v1", "Secret", "secrets", "secret", true, [], [], ALL_VERBS, []),
    ResourceDef {
        return_deleted_object: true,
        ..res!(
            "",
            "v1",
            "ServiceAccount",
            "serviceaccounts",
            "serviceaccount",
            true,
            ["sa"],
            [],
            ALL_VERBS,
            []
        )
    },
    ResourceDef {
        return_deleted_object: true,
        ..res!(
            "",
            "v1",
            "Service",
            "services",
            "service",
            true,
            ["svc"],
            ["all"],
            ALL_VERBS,
            [status("", "v1", "Service")]
        )
    },
    // apiregistration.k8s.io/v1: the local APIServices kube-aggregator lists, served read-only
    res!(
        "apiregistration.k8s.io",
        "v1",
        "APIService",
        "apiservices",
        "apiservice",
        false,
        [],
        ["api-extensions"],
        READ_VERBS,
        []
    ),
    // apps/v1
    res!(
        "apps",
        "v1",
        "ControllerRevision",
        "controllerrevisions",
        "controllerrevision",
        true,
        [],
        [],
        ALL_VERBS,
        []
    ),
    res!(
        "apps",
        "v1",
        "DaemonSet",
        "daemonsets",
        "daemonset",
        true,
        ["ds"],
        ["all"],
        ALL_VERBS,
        [status("apps", "v1", "DaemonSet")]
    ),
    res!(
        "apps",
        "v1",
        "Deployment",
        "deployments",
        "deployment",
        true,
        ["deploy"],
        ["all"],
        ALL_VERBS,
        [scale(), status("apps", "v1", "Deployment")]
    ),
    res!(
        "apps",
        "v1",
        "ReplicaSet",
        "replicasets",
        "replicaset",
        true,
        ["rs"],
        ["all"],
        ALL_VERBS,
        [scale(), status("apps", "v1", "ReplicaSet")]
    ),
    res!(
        "apps",
        "v1",
        "StatefulSet",
        "statefulsets",
        "statefulset",
        true,
        ["sts"],
        ["all"],
        ALL_VERBS,
        [scale(), status("apps", "v1", "StatefulSet")]
    ),
    // events.k8s.io/v1: a second view of core events
    ResourceDef {
        storage_group: Some(""),
        ..res!(
            "events.k8s.io",
            "v1",
            "Event",
            "events",
            "event",
            true,
            ["ev"],
            [],
            ALL_VERBS,
            []
        )
    },
    // autoscaling/v2
    res!(
        "autoscaling",
        "v2",
        "HorizontalPodAutoscaler",
        "horizontalpodautoscalers",
        "horizontalpodautoscaler",
        true,
        ["hpa"],
        ["all"],
        ALL_VERBS,
        [status("autoscaling", "v2", "HorizontalPodAutoscaler")]
    ),
    // batch/v1
    res!(
        "batch",
        "v1",
        "CronJob",
        "cronjobs",
        "cronjob",
        true,
        ["cj"],
        ["all"],
        ALL_VERBS,
        [status("batch", "v1", "CronJob")]
    ),
    res!(
        "batch",
        "v1",
        "Job",
        "jobs",
        "job",
        true,
        [],
        ["all"],
        ALL_VERBS,
        [status("batch", "v1", "Job")]
    ),
    // networking.k8s.io/v1
    res!(
        "networking.k8s.io",
        "v1",
        "Ingress",
        "ingresses",
        "ingress",
        true,
        ["ing"],
        [],
        ALL_VERBS,
        [status("networking.k8s.io", "v1", "Ingress")]
    ),
    // storage.k8s.io/v1
    ResourceDef {
        return_deleted_object: true,
        ..res!(
            "storage.k8s.io",
            "v1",
            "StorageClass",
            "storageclasses",
            "storageclass",
            false,
            ["sc"],
            [],
            ALL_VERBS,
            []
        )
    },
    // coordination.k8s.io/v1
    res!(
        "coordination.k8s.io",
        "v1",
        "Lease",
        "leases",
        "lease",
        true,
        [],
        [],
        ALL_VERBS,
        []
    ),
    // discovery.k8s.io/v1
    res!(
        "discovery.k8s.io",
        "v1",
        "EndpointSlice",
        "endpointslices",
        "endpointslice",
        true,
        [],
        [],
        ALL_VERBS,
        []
    ),
];

impl ResourceDef {
    /// `apiVersion` as written in objects: `v1` or `apps/v1`.
    pub fn api_version(&self) -> String {
        if self.group.is_empty() {
            self.version.to_string()
        } else {
            format!("{}/{}", self.group, self.version)
        }
    }

    /// Kind of the list type (`DeploymentList`).
    pub fn list_kind(&self) -> String {
        format!("{}List", self.kind)
    }

    /// Name used in upstream error messages: `pods`, `deployments.apps`.
    pub fn qualified_plural(&self) -> String {
        if self.group.is_empty() {
            self.plural.to_string()
        } else {
            format!("{}.{}", self.plural, self.group)
        }
    }

    /// The group whose storage holds these objects (`core` for the core group).
    pub fn storage_group_name(&self) -> &'static str {
        let g = self.storage_group.unwrap_or(self.group);
        if g.is_empty() {
            "core"
        } else {
            g
        }
    }

    /// Store key prefix for all objects of this resource, ending in `/`.
    pub fn key_prefix(&self) -> String {
        format!("/registry/{}/{}/", self.storage_group_name(), self.plural)
    }

    /// Store key prefix for one namespace (or the whole resource when `ns` is `None`).
    pub fn namespace_prefix(&self, ns: Option<&str>) -> String {
        match (self.namespaced, ns) {
            (true, Some(ns)) => format!("{}{}/", self.key_prefix(), ns),
            _ => self.key_prefix(),
        }
    }

    /// Store key of one object.
    pub fn key(&self, ns: Option<&str>, name: &str) -> String {
        match (self.namespaced, ns) {
            (true, Some(ns)) => format!("{}{}/{}", self.key_prefix(), ns, name),
            _ => format!("{}{}", self.key_prefix(), name),
        }
    }

    /// The subresource with this name, if served.
    pub fn subresource(&self, name: &str) -> Option<&'static Subresource> {
        self.subresources.iter().find(|s| s.name == name)
    }

    /// Whether the kind has a `status` subresource (and so ignores status on main writes).
    pub fn has_status(&self) -> bool {
        self.subresource("status").is_some()
    }
}

/// Every served group version in discovery order, e.g. `("apps", "v1")`; core is `("", "v1")`.
pub fn group_versions() -> Vec<(&'static str, &'static str)> {
    let mut out: Vec<(&str, &str)> = Vec::new();
    for r in RESOURCES {
        if !out.contains(&(r.group, r.version)) {
            out.push((r.group, r.version));
        }
    }
    out
}

/// Resources of one group version, in discovery order.
pub fn resources_in<'a>(group: &'a str, version: &'a str) -> impl Iterator<Item = &'static ResourceDef> + use<'a> {
    RESOURCES
        .iter()
        .filter(move |r| r.group == group && r.version == version)
}

/// Looks up a resource by group, version and plural.
pub fn find(group: &str, version: &str, plural: &str) -> Option<&'static ResourceDef> {
    // Every request looks its resource up; an index by name keeps that off the profile.
    static BY_PLURAL: OnceLock<HashMap<&'static str, Vec<&'static ResourceDef>>> = OnceLock::new();
    let index = BY_PLURAL.get_or_init(|| index_by(|r| r.plural));
    index
        .get(plural)?
        .iter()
        .copied()
        .find(|r| r.group == group && r.version == version)
}

/// Looks up a resource by `apiVersion` and kind, as found in an object body.
pub fn find_kind(api_version: &str, kind: &str) -> Option<&'static ResourceDef> {
    static BY_KIND: OnceLock<HashMap<&'static str, Vec<&'static ResourceDef>>> = OnceLock::new();
    let index = BY_KIND.get_or_init(|| index_by(|r| r.kind));
    let (group, version) = split_api_version(api_version);
    index
        .get(kind)?
        .iter()
        .copied()
        .find(|r| r.group == group && r.version == version)
}

fn index_by(name: fn(&ResourceDef) -> &'static str) -> HashMap<&'static str, Vec<&'static ResourceDef>> {
    let mut index: HashMap<&'static str, Vec<&'static ResourceDef>> = HashMap::new();
    for r in RESOURCES {
        index.entry(name(r)).or_default().push(r);
    }
    index
}

/// Splits `apps/v1` into `("apps", "v1")` and `v1` into `("", "v1")`.
pub fn split_api_version(api_version: &str) -> (&str, &str) {
    match api_version.split_once('/') {
        Some((g, v)) => (g, v),
        None => ("", api_version),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_follow_the_registry_layout() {
        let deploy = find("apps", "v1", "deployments").unwrap();
        assert_eq!(
            deploy.key(Some("default"), "web"),
            "/registry/apps/deployments/default/web"
        );
        assert_eq!(deploy.qualified_plural(), "deployments.apps");
        let node = find("", "v1", "nodes").unwrap();
        assert_eq!(node.key(None, "n1"), "/registry/core/nodes/n1");
        assert_eq!(node.qualified_plural(), "nodes");
        let ev = find("events.k8s.io", "v1", "events").unwrap();
        assert_eq!(ev.key(Some("a"), "b"), "/registry/core/events/a/b");
    }

    #[test]
    fn group_versions_start_with_core() {
        let gvs = group_versions();
        assert_eq!(gvs[0], ("", "v1"));
        assert!(gvs.contains(&("batch", "v1")));
        assert_eq!(find_kind("apps/v1", "Deployment").unwrap().plural, "deployments");
    }
}
