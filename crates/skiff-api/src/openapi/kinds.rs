//! Which k8s-openapi type describes each kind that the documents mention: the served kinds,
//! the kinds their subresources answer with, and the meta kinds used by every path.

use std::borrow::Cow;

use k8s_openapi::api::{apps, autoscaling, batch, coordination, core, discovery, events, networking, policy, storage};
use k8s_openapi::apimachinery::pkg::apis::meta::v1 as meta;
use k8s_openapi::kube_aggregator::pkg::apis::apiregistration;
use schemars::{JsonSchema, SchemaGenerator};

/// A group, version and kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Gvk {
    pub group: &'static str,
    pub version: &'static str,
    pub kind: &'static str,
}

/// One kind and the type whose JSON schema describes it.
pub(crate) struct KindSchema {
    pub gvk: Gvk,
    /// Upstream definition name, e.g. `io.k8s.api.apps.v1.Deployment`.
    pub name: fn() -> Cow<'static, str>,
    /// Adds the schema (and everything it references) to the generator.
    pub add: fn(&mut SchemaGenerator),
}

fn add<T: JsonSchema>(generator: &mut SchemaGenerator) {
    generator.subschema_for::<T>();
}

macro_rules! kind {
    ($g:expr, $v:expr, $k:expr, $t:ty) => {
        KindSchema {
            gvk: Gvk {
                group: $g,
                version: $v,
                kind: $k,
            },
            name: <$t as JsonSchema>::schema_name,
            add: add::<$t>,
        }
    };
}

/// Every kind with a top-level schema (tagged with `x-kubernetes-group-version-kind`).
pub(crate) static KINDS: &[KindSchema] = &[
    kind!("", "v1", "ConfigMap", core::v1::ConfigMap),
    kind!("", "v1", "Endpoints", core::v1::Endpoints),
    kind!("", "v1", "Event", core::v1::Event),
    kind!("", "v1", "LimitRange", core::v1::LimitRange),
    kind!("", "v1", "Namespace", core::v1::Namespace),
    kind!("", "v1", "Node", core::v1::Node),
    kind!("", "v1", "PersistentVolumeClaim", core::v1::PersistentVolumeClaim),
    kind!("", "v1", "PersistentVolume", core::v1::PersistentVolume),
    kind!("", "v1", "Pod", core::v1::Pod),
    kind!("", "v1", "ReplicationController", core::v1::ReplicationController),
    kind!("", "v1", "ResourceQuota", core::v1::ResourceQuota),
    kind!("", "v1", "Secret", core::v1::Secret),
    kind!("", "v1", "ServiceAccount", core::v1::ServiceAccount),
    kind!("", "v1", "Service", core::v1::Service),
    kind!("", "v1", "Binding", core::v1::Binding),
    kind!(
        "apiregistration.k8s.io",
        "v1",
        "APIService",
        apiregistration::v1::APIService
    ),
    kind!("apps", "v1", "ControllerRevision", apps::v1::ControllerRevision),
    kind!("apps", "v1", "DaemonSet", apps::v1::DaemonSet),
    kind!("apps", "v1", "Deployment", apps::v1::Deployment),
    kind!("apps", "v1", "ReplicaSet", apps::v1::ReplicaSet),
    kind!("apps", "v1", "StatefulSet", apps::v1::StatefulSet),
    kind!("events.k8s.io", "v1", "Event", events::v1::Event),
    kind!(
        "autoscaling",
        "v2",
        "HorizontalPodAutoscaler",
        autoscaling::v2::HorizontalPodAutoscaler
    ),
    kind!("autoscaling", "v1", "Scale", autoscaling::v1::Scale),
    kind!("batch", "v1", "CronJob", batch::v1::CronJob),
    kind!("batch", "v1", "Job", batch::v1::Job),
    kind!("networking.k8s.io", "v1", "Ingress", networking::v1::Ingress),
    kind!("storage.k8s.io", "v1", "StorageClass", storage::v1::StorageClass),
    kind!("coordination.k8s.io", "v1", "Lease", coordination::v1::Lease),
    kind!("discovery.k8s.io", "v1", "EndpointSlice", discovery::v1::EndpointSlice),
    kind!("policy", "v1", "Eviction", policy::v1::Eviction),
    kind!("", "v1", "Status", meta::Status),
];

/// Schemas used by paths but not tagged with a kind of their own here.
pub(crate) static SUPPORT: &[fn(&mut SchemaGenerator)] =
    &[add::<meta::DeleteOptions>, add::<meta::ListMeta>, add::<meta::Patch>];

/// Definition name of DeleteOptions.
pub(crate) const DELETE_OPTIONS: &str = "io.k8s.apimachinery.pkg.apis.meta.v1.DeleteOptions";
/// Definition name of Status.
pub(crate) const STATUS: &str = "io.k8s.apimachinery.pkg.apis.meta.v1.Status";
/// Definition name of the PATCH body.
pub(crate) const PATCH: &str = "io.k8s.apimachinery.pkg.apis.meta.v1.Patch";
/// Definition name of ListMeta.
pub(crate) const LIST_META: &str = "io.k8s.apimachinery.pkg.apis.meta.v1.ListMeta";

/// The kind table entry for a group, version and kind.
pub(crate) fn find(group: &str, version: &str, kind: &str) -> Option<&'static KindSchema> {
    KINDS
        .iter()
        .find(|k| k.gvk.group == group && k.gvk.version == version && k.gvk.kind == kind)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::registry::RESOURCES;

    #[test]
    fn every_served_kind_and_subresource_kind_has_a_schema() {
        for r in RESOURCES {
            assert!(
                find(r.group, r.version, r.kind).is_some(),
                "{}/{} {}",
                r.group,
                r.version,
                r.kind
            );
            for s in r.subresources.iter().filter(|s| !s.is_connect()) {
                assert!(find(s.group, s.version, s.kind).is_some(), "{} of {}", s.name, r.kind);
            }
        }
    }

    #[test]
    fn names_are_upstream_definition_names() {
        let cases = [
            ("apps", "v1", "Deployment", "io.k8s.api.apps.v1.Deployment"),
            ("", "v1", "Pod", "io.k8s.api.core.v1.Pod"),
            ("events.k8s.io", "v1", "Event", "io.k8s.api.events.v1.Event"),
            ("autoscaling", "v1", "Scale", "io.k8s.api.autoscaling.v1.Scale"),
            ("", "v1", "Status", STATUS),
        ];
        for (g, v, k, want) in cases {
            assert_eq!((find(g, v, k).unwrap().name)(), want);
        }
    }
}
