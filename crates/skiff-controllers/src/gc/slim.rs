//! What the collector's watches decode of any object: the few metadata fields the graph reads,
//! with everything else (spec, status, labels, managed fields) skipped while parsing, so
//! thousands of pod updates cost little. It asks for metadata-only answers
//! (`as=PartialObjectMetadata`); full objects decode the same way.

use std::borrow::Cow;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{OwnerReference, Time};
use kube::core::{ApiResource, DynamicResourceScope, ObjectMeta};
use kube::Resource;
use serde::{Deserialize, Deserializer};

/// An object reduced to the metadata the collector reads.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct Slim {
    /// Name, namespace, uid, resourceVersion, deletionTimestamp, finalizers, ownerReferences.
    #[serde(default, deserialize_with = "slim_meta")]
    pub metadata: ObjectMeta,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct SlimMeta {
    name: Option<String>,
    namespace: Option<String>,
    uid: Option<String>,
    resource_version: Option<String>,
    deletion_timestamp: Option<Time>,
    finalizers: Option<Vec<String>>,
    owner_references: Option<Vec<OwnerReference>>,
}

fn slim_meta<'de, D: Deserializer<'de>>(d: D) -> Result<ObjectMeta, D::Error> {
    let m = SlimMeta::deserialize(d)?;
    Ok(ObjectMeta {
        name: m.name,
        namespace: m.namespace,
        uid: m.uid,
        resource_version: m.resource_version,
        deletion_timestamp: m.deletion_timestamp,
        finalizers: m.finalizers,
        owner_references: m.owner_references,
        ..Default::default()
    })
}

impl Resource for Slim {
    type DynamicType = ApiResource;
    type Scope = DynamicResourceScope;

    fn kind(dt: &ApiResource) -> Cow<'_, str> {
        Cow::Borrowed(&dt.kind)
    }
    fn group(dt: &ApiResource) -> Cow<'_, str> {
        Cow::Borrowed(&dt.group)
    }
    fn version(dt: &ApiResource) -> Cow<'_, str> {
        Cow::Borrowed(&dt.version)
    }
    fn api_version(dt: &ApiResource) -> Cow<'_, str> {
        Cow::Borrowed(&dt.api_version)
    }
    fn plural(dt: &ApiResource) -> Cow<'_, str> {
        Cow::Borrowed(&dt.plural)
    }
    fn metadata_api() -> bool {
        true
    }
    fn meta(&self) -> &ObjectMeta {
        &self.metadata
    }
    fn meta_mut(&mut self) -> &mut ObjectMeta {
        &mut self.metadata
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_only_what_the_graph_reads() {
        let pod = serde_json::json!({
            "apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": "p", "namespace": "ns", "uid": "u", "resourceVersion": "7",
                         "labels": {"a": "b"}, "finalizers": ["f"],
                         "deletionTimestamp": "2024-01-01T00:00:00Z",
                         "managedFields": [{"manager": "kubectl", "fieldsV1": {"f:spec": {}}}],
                         "ownerReferences": [{"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "rs",
                                              "uid": "o", "controller": true, "blockOwnerDeletion": true}]},
            "spec": {"containers": [{"name": "c", "image": "i"}]},
            "status": {"phase": "Running"}
        });
        let s: Slim = serde_json::from_value(pod).unwrap();
        let m = &s.metadata;
        assert_eq!(
            (m.name.as_deref(), m.namespace.as_deref(), m.uid.as_deref()),
            (Some("p"), Some("ns"), Some("u"))
        );
        assert_eq!(m.resource_version.as_deref(), Some("7"));
        assert!(m.deletion_timestamp.is_some());
        assert_eq!(m.finalizers.as_deref(), Some(&["f".to_string()][..]));
        assert_eq!(m.owner_references.as_ref().unwrap()[0].block_owner_deletion, Some(true));
        assert!(m.labels.is_none() && m.managed_fields.is_none());
    }
}
