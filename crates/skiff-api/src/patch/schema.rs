//! The type graph of the built-in kinds, built once from the k8s-openapi schemars schemas, so
//! the strategic merge patch knows which definition (and so which merge keys) a JSON path has.

use std::collections::HashMap;
use std::sync::OnceLock;

use k8s_openapi::api;
use schemars::generate::SchemaSettings;
use schemars::{JsonSchema, SchemaGenerator};
use serde_json::Value;

use super::merge_keys::{self, MergeInfo};

/// The shape of a value at some path.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Shape {
    /// No type information (scalars, opaque objects, unknown fields): maps merge, lists replace.
    Unknown,
    /// A struct: index into [`Graph::defs`].
    Struct(usize),
    /// A list of the inner shape.
    List(Box<Shape>),
    /// A string-keyed map of the inner shape.
    Map(Box<Shape>),
}

/// One field of a struct.
#[derive(Debug, Clone)]
pub(crate) struct Field {
    pub shape: Shape,
    pub info: Option<MergeInfo>,
}

/// One struct definition.
#[derive(Debug, Default)]
pub(crate) struct Def {
    pub fields: HashMap<String, Field>,
}

/// Every struct reachable from the served kinds, and the root struct of each kind.
#[derive(Debug, Default)]
pub(crate) struct Graph {
    pub defs: Vec<Def>,
    kinds: HashMap<(&'static str, &'static str), usize>,
    names: HashMap<String, usize>,
}

static UNKNOWN: Shape = Shape::Unknown;

impl Graph {
    /// The shape of a whole object of `kind` in `group`, if it is a built-in kind.
    pub fn kind(&self, group: &str, kind: &str) -> Option<Shape> {
        self.kinds.get(&(group, kind)).map(|&i| Shape::Struct(i))
    }

    /// The shape of a struct by OpenAPI definition name (`io.k8s.api.core.v1.PodSpec`).
    #[cfg(test)]
    pub fn definition(&self, name: &str) -> Option<Shape> {
        self.names.get(name).map(|&i| Shape::Struct(i))
    }

    /// The shape and merge metadata of `key` inside a value of shape `parent`.
    pub fn field<'a>(&'a self, parent: &'a Shape, key: &str) -> (&'a Shape, Option<MergeInfo>) {
        match parent {
            Shape::Struct(i) => match self.defs.get(*i).and_then(|d| d.fields.get(key)) {
                Some(f) => (&f.shape, f.info),
                None => (&UNKNOWN, None),
            },
            Shape::Map(inner) => (inner, None),
            Shape::Unknown | Shape::List(_) => (&UNKNOWN, None),
        }
    }

    /// The element shape of a list shape.
    pub fn elem<'a>(&'a self, list: &'a Shape) -> &'a Shape {
        match list {
            Shape::List(inner) => inner,
            _ => &UNKNOWN,
        }
    }
}

/// The graph, built on first use.
pub(crate) fn graph() -> &'static Graph {
    static GRAPH: OnceLock<Graph> = OnceLock::new();
    GRAPH.get_or_init(build)
}

/// Appends the root schema of a kind to `roots`.
fn root<T: JsonSchema>(
    gen: &mut SchemaGenerator,
    roots: &mut Vec<(&'static str, &'static str, Value)>,
    g: &'static str,
    k: &'static str,
) {
    roots.push((g, k, gen.subschema_for::<T>().to_value()));
}

fn build() -> Graph {
    let mut gen = SchemaSettings::draft2020_12().into_generator();
    let mut roots = Vec::new();
    let r = &mut roots;
    use api::{
        admissionregistration::v1 as admreg, apps::v1 as apps, autoscaling, batch::v1 as batch,
        certificates::v1 as cert, coordination::v1 as coord, core::v1 as core, discovery::v1 as disc,
        events::v1 as events, networking::v1 as net, policy::v1 as policy, rbac::v1 as rbac, scheduling::v1 as sched,
        storage::v1 as storage,
    };
    use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1 as apiext;
    root::<k8s_openapi::kube_aggregator::pkg::apis::apiregistration::v1::APIService>(
        &mut gen,
        r,
        "apiregistration.k8s.io",
        "APIService",
    );
    root::<core::ConfigMap>(&mut gen, r, "", "ConfigMap");
    root::<core::Endpoints>(&mut gen, r, "", "Endpoints");
    root::<core::Event>(&mut gen, r, "", "Event");
    root::<core::LimitRange>(&mut gen, r, "", "LimitRange");
    root::<core::Namespace>(&mut gen, r, "", "Namespace");
    root::<core::Node>(&mut gen, r, "", "Node");
    root::<core::PersistentVolumeClaim>(&mut gen, r, "", "PersistentVolumeClaim");
    root::<core::PersistentVolume>(&mut gen, r, "", "PersistentVolume");
    root::<core::Pod>(&mut gen, r, "", "Pod");
    root::<core::PodTemplate>(&mut gen, r, "", "PodTemplate");
    root::<core::ReplicationController>(&mut gen, r, "", "ReplicationController");
    root::<core::ResourceQuota>(&mut gen, r, "", "ResourceQuota");
    root::<core::Secret>(&mut gen, r, "", "Secret");
    root::<core::ServiceAccount>(&mut gen, r, "", "ServiceAccount");
    root::<core::Service>(&mut gen, r, "", "Service");
    root::<apps::ControllerRevision>(&mut gen, r, "apps", "ControllerRevision");
    root::<apps::DaemonSet>(&mut gen, r, "apps", "DaemonSet");
    root::<apps::Deployment>(&mut gen, r, "apps", "Deployment");
    root::<apps::ReplicaSet>(&mut gen, r, "apps", "ReplicaSet");
    root::<apps::StatefulSet>(&mut gen, r, "apps", "StatefulSet");
    root::<events::Event>(&mut gen, r, "events.k8s.io", "Event");
    root::<autoscaling::v2::HorizontalPodAutoscaler>(&mut gen, r, "autoscaling", "HorizontalPodAutoscaler");
    root::<autoscaling::v1::Scale>(&mut gen, r, "autoscaling", "Scale");
    root::<batch::CronJob>(&mut gen, r, "batch", "CronJob");
    root::<batch::Job>(&mut gen, r, "batch", "Job");
    root::<net::Ingress>(&mut gen, r, "networking.k8s.io", "Ingress");
    root::<net::IngressClass>(&mut gen, r, "networking.k8s.io", "IngressClass");
    root::<net::NetworkPolicy>(&mut gen, r, "networking.k8s.io", "NetworkPolicy");
    root::<coord::Lease>(&mut gen, r, "coordination.k8s.io", "Lease");
    root::<disc::EndpointSlice>(&mut gen, r, "discovery.k8s.io", "EndpointSlice");
    root::<policy::PodDisruptionBudget>(&mut gen, r, "policy", "PodDisruptionBudget");
    root::<rbac::Role>(&mut gen, r, "rbac.authorization.k8s.io", "Role");
    root::<rbac::ClusterRole>(&mut gen, r, "rbac.authorization.k8s.io", "ClusterRole");
    root::<rbac::RoleBinding>(&mut gen, r, "rbac.authorization.k8s.io", "RoleBinding");
    root::<rbac::ClusterRoleBinding>(&mut gen, r, "rbac.authorization.k8s.io", "ClusterRoleBinding");
    root::<storage::StorageClass>(&mut gen, r, "storage.k8s.io", "StorageClass");
    root::<sched::PriorityClass>(&mut gen, r, "scheduling.k8s.io", "PriorityClass");
    root::<cert::CertificateSigningRequest>(&mut gen, r, "certificates.k8s.io", "CertificateSigningRequest");
    root::<admreg::ValidatingWebhookConfiguration>(
        &mut gen,
        r,
        "admissionregistration.k8s.io",
        "ValidatingWebhookConfiguration",
    );
    root::<admreg::MutatingWebhookConfiguration>(
        &mut gen,
        r,
        "admissionregistration.k8s.io",
        "MutatingWebhookConfiguration",
    );
    root::<apiext::CustomResourceDefinition>(&mut gen, r, "apiextensions.k8s.io", "CustomResourceDefinition");

    let schemas = gen.take_definitions(false);
    let mut b = Builder {
        schemas: &schemas,
        graph: Graph::default(),
    };
    for (g, k, schema) in roots {
        if let Shape::Struct(i) = b.shape(&schema) {
            b.graph.kinds.insert((g, k), i);
        }
    }
    b.graph
}

/// Converts schemars definitions into [`Graph`] structs, each definition once.
struct Builder<'s> {
    schemas: &'s serde_json::Map<String, Value>,
    graph: Graph,
}

impl Builder<'_> {
    fn shape(&mut self, schema: &Value) -> Shape {
        if let Some(name) = schema
            .get("$ref")
            .and_then(Value::as_str)
            .and_then(|r| r.strip_prefix("#/$defs/"))
        {
            return self.def(name);
        }
        if let Some(items) = schema.get("items") {
            return Shape::List(Box::new(self.shape(items)));
        }
        if let Some(values) = schema.get("additionalProperties").filter(|v| v.is_object()) {
            return Shape::Map(Box::new(self.shape(values)));
        }
        Shape::Unknown
    }

    fn def(&mut self, name: &str) -> Shape {
        if let Some(&i) = self.graph.names.get(name) {
            return Shape::Struct(i);
        }
        let Some(props) = self
            .schemas
            .get(name)
            .and_then(|s| s.get("properties"))
            .and_then(Value::as_object)
        else {
            return Shape::Unknown;
        };
        // Register before recursing: the graph has cycles (JSONSchemaProps).
        let i = self.graph.defs.len();
        self.graph.defs.push(Def::default());
        self.graph.names.insert(name.to_string(), i);
        let mut fields = HashMap::with_capacity(props.len());
        for (field, schema) in props {
            let shape = self.shape(schema);
            fields.insert(
                field.clone(),
                Field {
                    shape,
                    info: merge_keys::lookup(name, field),
                },
            );
        }
        self.graph.defs[i].fields = fields;
        Shape::Struct(i)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Walks `path` (fields; `[]` enters a list) from the root of a kind.
    fn walk(group: &str, kind: &str, path: &[&str]) -> (Shape, Option<MergeInfo>) {
        let g = graph();
        let mut shape = g.kind(group, kind).unwrap();
        let mut info = None;
        for p in path {
            let (s, i) = if *p == "[]" {
                (g.elem(&shape).clone(), None)
            } else {
                let (s, i) = g.field(&shape, p);
                (s.clone(), i)
            };
            shape = s;
            info = i;
        }
        (shape, info)
    }

    /// (case, group, kind, path, expected shape, merge key of the last field).
    type PathCase<'a> = (&'a str, &'a str, &'a str, &'a [&'a str], Shape, Option<&'a str>);

    fn def(name: &str) -> Shape {
        graph().definition(name).unwrap()
    }

    #[test]
    fn paths_resolve_to_definitions() {
        let pod_spec = &["spec", "template", "spec"];
        let containers = [&pod_spec[..], &["containers"]].concat();
        let container = [&containers[..], &["[]"]].concat();
        let env = [&container[..], &["env"]].concat();
        let list = |d: &str| Shape::List(Box::new(def(d)));
        let cases: Vec<PathCase> = vec![
            (
                "deployment containers",
                "apps",
                "Deployment",
                &containers,
                list("io.k8s.api.core.v1.Container"),
                Some("name"),
            ),
            (
                "deployment container",
                "apps",
                "Deployment",
                &container,
                def("io.k8s.api.core.v1.Container"),
                None,
            ),
            (
                "container env",
                "apps",
                "Deployment",
                &env,
                list("io.k8s.api.core.v1.EnvVar"),
                Some("name"),
            ),
            (
                "service ports",
                "",
                "Service",
                &["spec", "ports"],
                list("io.k8s.api.core.v1.ServicePort"),
                Some("port"),
            ),
            (
                "finalizers",
                "",
                "ConfigMap",
                &["metadata", "finalizers"],
                Shape::List(Box::new(Shape::Unknown)),
                None,
            ),
            (
                "labels are a map",
                "",
                "Pod",
                &["metadata", "labels"],
                Shape::Map(Box::new(Shape::Unknown)),
                None,
            ),
            (
                "cronjob pod spec",
                "batch",
                "CronJob",
                &["spec", "jobTemplate", "spec", "template", "spec"],
                def("io.k8s.api.core.v1.PodSpec"),
                None,
            ),
            ("unknown field", "", "Pod", &["spec", "nope"], Shape::Unknown, None),
        ];
        for (name, g, k, path, want, key) in cases {
            let (got, info) = walk(g, k, path);
            assert_eq!(got, want, "{name}");
            assert_eq!(info.and_then(|i| i.key), key, "{name}");
        }
        assert!(graph().kind("example.com", "Widget").is_none());
        let finalizers = walk("", "ConfigMap", &["metadata", "finalizers"]).1;
        assert_eq!(finalizers.map(|i| i.strategy), Some("merge"));
    }
}

#[cfg(test)]
mod registry_tests {
    /// Every served kind can be strategic-merge-patched, as upstream allows for built-in kinds.
    #[test]
    fn every_served_kind_has_types() {
        for r in crate::registry::RESOURCES {
            assert!(super::graph().kind(r.group, r.kind).is_some(), "{}/{}", r.group, r.kind);
        }
    }
}
