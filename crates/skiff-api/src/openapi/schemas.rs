//! The component schemas shared by every document: generated from the k8s-openapi types with
//! schemars, then given the upstream extensions (group-version-kind tags, strategic-merge
//! metadata) and the list kinds, which k8s-openapi has no schema for.

use std::collections::{BTreeMap, BTreeSet};

use schemars::generate::SchemaSettings;
use serde_json::{json, Map, Value};

use super::kinds::{self, Gvk, KINDS, SUPPORT};
use crate::patch::merge_keys;
use crate::registry::{self, RESOURCES};

/// `$ref` prefix of the OpenAPI v3 form, in which the definitions are stored.
pub(crate) const V3_REF: &str = "#/components/schemas/";

const INT_OR_STRING: &str = "io.k8s.apimachinery.pkg.util.intstr.IntOrString";
const QUANTITY: &str = "io.k8s.apimachinery.pkg.api.resource.Quantity";

/// Every definition, by upstream name, in the OpenAPI v3 form.
pub(crate) type Definitions = BTreeMap<String, Value>;

/// Builds every definition the documents may reference.
pub(crate) fn build() -> Definitions {
    let mut settings = SchemaSettings::draft07();
    settings.definitions_path = "/components/schemas".into();
    settings.meta_schema = None;
    settings.transforms = Vec::new();
    let mut generator = settings.into_generator();
    for k in KINDS {
        (k.add)(&mut generator);
    }
    for add in SUPPORT {
        add(&mut generator);
    }
    let mut defs: Definitions = generator.take_definitions(false).into_iter().collect();

    for k in KINDS {
        let name = (k.name)();
        if let Some(Value::Object(schema)) = defs.get_mut(name.as_ref()) {
            schema.insert("x-kubernetes-group-version-kind".into(), json!([gvk_value(k.gvk)]));
            drop_required(schema, "metadata");
        }
    }
    if let Some(Value::Object(schema)) = defs.get_mut(kinds::DELETE_OPTIONS) {
        let mut tags = vec![gvk_value(Gvk {
            group: "",
            version: "v1",
            kind: "DeleteOptions",
        })];
        for (group, version) in registry::group_versions().into_iter().filter(|(g, _)| !g.is_empty()) {
            tags.push(gvk_value(Gvk {
                group,
                version,
                kind: "DeleteOptions",
            }));
        }
        schema.insert("x-kubernetes-group-version-kind".into(), Value::Array(tags));
    }
    for r in RESOURCES {
        if let Some(k) = kinds::find(r.group, r.version, r.kind) {
            let item = (k.name)().into_owned();
            let list_kind = r.list_kind();
            let list = list_schema(&item, r.kind, r.group, r.version, &list_kind);
            defs.insert(format!("{item}List"), list);
        }
    }
    for (name, schema) in defs.iter_mut() {
        add_merge_metadata(name, schema);
    }
    for (name, scalar) in [
        (
            INT_OR_STRING,
            json!({"format": "int-or-string", "oneOf": [{"type": "integer"}, {"type": "string"}]}),
        ),
        (QUANTITY, json!({"oneOf": [{"type": "string"}, {"type": "number"}]})),
    ] {
        if let Some(Value::Object(schema)) = defs.get_mut(name) {
            schema.remove("x-kubernetes-int-or-string");
            if let Value::Object(extra) = scalar {
                schema.extend(extra);
            }
        }
    }
    defs
}

/// The group-version-kind object of the `x-kubernetes-group-version-kind` extensions.
pub(crate) fn gvk_value(gvk: Gvk) -> Value {
    json!({"group": gvk.group, "kind": gvk.kind, "version": gvk.version})
}

/// Upstream does not require `metadata`; k8s-openapi does because its field is not optional.
fn drop_required(schema: &mut Map<String, Value>, field: &str) {
    let now_empty = match schema.get_mut("required") {
        Some(Value::Array(required)) => {
            required.retain(|f| f != field);
            required.is_empty()
        }
        _ => false,
    };
    if now_empty {
        schema.remove("required");
    }
}

fn list_schema(item: &str, kind: &str, group: &str, version: &str, list_kind: &str) -> Value {
    json!({
        "description": format!("{list_kind} is a list of {kind} objects."),
        "type": "object",
        "properties": {
            "apiVersion": {"description": "APIVersion defines the versioned schema of this representation of an object. Servers should convert recognized schemas to the latest internal value, and may reject unrecognized values. More info: https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#resources", "type": "string"},
            "items": {"description": format!("List of {kind} objects."), "type": "array", "items": {"$ref": format!("{V3_REF}{item}")}},
            "kind": {"description": "Kind is a string value representing the REST resource this object represents. Servers may infer this from the endpoint the client submits requests to. Cannot be updated. In CamelCase. More info: https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#types-kinds", "type": "string"},
            "metadata": {"$ref": format!("{V3_REF}{}", kinds::LIST_META), "description": "Standard list metadata. More info: https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#types-kinds"},
        },
        "required": ["items"],
        "x-kubernetes-group-version-kind": [{"group": group, "kind": list_kind, "version": version}],
    })
}

/// Tags the properties of `name` that have a strategic-merge strategy (Go struct tags upstream).
fn add_merge_metadata(name: &str, schema: &mut Value) {
    let Some(Value::Object(props)) = schema.get_mut("properties") else {
        return;
    };
    for (field, prop) in props.iter_mut() {
        let (Some(info), Value::Object(prop)) = (merge_keys::lookup(name, field), prop) else {
            continue;
        };
        if let Some(key) = info.key {
            prop.insert("x-kubernetes-patch-merge-key".into(), key.into());
        }
        prop.insert("x-kubernetes-patch-strategy".into(), info.strategy.into());
    }
}

/// The names `schema` references directly.
pub(crate) fn refs_in(schema: &Value, out: &mut Vec<String>) {
    match schema {
        Value::Object(map) => {
            for (key, value) in map {
                match (key.as_str(), value) {
                    ("$ref", Value::String(r)) => {
                        if let Some(name) = r.strip_prefix(V3_REF) {
                            out.push(name.to_string());
                        }
                    }
                    _ => refs_in(value, out),
                }
            }
        }
        Value::Array(items) => items.iter().for_each(|v| refs_in(v, out)),
        _ => {}
    }
}

/// `roots` and every definition they reference, transitively (names absent from `defs` kept,
/// so tests can spot them).
pub(crate) fn closure(defs: &Definitions, roots: impl IntoIterator<Item = String>) -> BTreeSet<String> {
    let mut seen = BTreeSet::new();
    let mut todo: Vec<String> = roots.into_iter().collect();
    while let Some(name) = todo.pop() {
        if !seen.insert(name.clone()) {
            continue;
        }
        if let Some(schema) = defs.get(&name) {
            refs_in(schema, &mut todo);
        }
    }
    seen
}

/// The OpenAPI v2 form of one definition: `#/definitions/` references and the swagger 2.0
/// spelling of the two scalar unions.
pub(crate) fn to_v2(name: &str, schema: &Value) -> Value {
    let mut out = rewrite_refs(schema);
    if let Value::Object(map) = &mut out {
        let scalar = match name {
            INT_OR_STRING => Some(("string", Some("int-or-string"))),
            QUANTITY => Some(("string", None)),
            _ => None,
        };
        if let Some((ty, format)) = scalar {
            map.remove("oneOf");
            map.remove("format");
            map.insert("type".into(), ty.into());
            if let Some(format) = format {
                map.insert("format".into(), format.into());
            }
        }
    }
    out
}

/// The OpenAPI v3 form of one definition: a `$ref` with siblings (description, patch
/// metadata) becomes `allOf: [{$ref}]` plus the siblings, as upstream publishes it; kubectl
/// `explain` ignores the siblings of a bare `$ref`.
pub(crate) fn to_v3(value: &Value) -> Value {
    match value {
        Value::Object(map) => {
            let mut out: Map<String, Value> = map.iter().map(|(k, v)| (k.clone(), to_v3(v))).collect();
            if out.len() > 1 {
                if let Some(reference) = out.remove("$ref") {
                    out.insert("allOf".into(), json!([{ "$ref": reference }]));
                }
            }
            Value::Object(out)
        }
        Value::Array(items) => Value::Array(items.iter().map(to_v3).collect()),
        other => other.clone(),
    }
}

/// Rewrites `#/components/schemas/X` references to `#/definitions/X`.
pub(crate) fn rewrite_refs(value: &Value) -> Value {
    match value {
        Value::Object(map) => Value::Object(
            map.iter()
                .map(|(k, v)| match (k.as_str(), v) {
                    ("$ref", Value::String(r)) => (k.clone(), Value::String(r.replacen(V3_REF, "#/definitions/", 1))),
                    _ => (k.clone(), rewrite_refs(v)),
                })
                .collect(),
        ),
        Value::Array(items) => Value::Array(items.iter().map(rewrite_refs).collect()),
        other => other.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn defs() -> &'static Definitions {
        super::super::definitions()
    }

    #[test]
    fn definitions_carry_upstream_extensions() {
        let cases: &[(&str, &str, Value)] = &[
            (
                "deployment gvk",
                "/io.k8s.api.apps.v1.Deployment/x-kubernetes-group-version-kind/0/kind",
                json!("Deployment"),
            ),
            (
                "list gvk",
                "/io.k8s.api.apps.v1.DeploymentList/x-kubernetes-group-version-kind/0/kind",
                json!("DeploymentList"),
            ),
            (
                "core group is empty",
                "/io.k8s.api.core.v1.Pod/x-kubernetes-group-version-kind/0/group",
                json!(""),
            ),
            (
                "containers merge key",
                "/io.k8s.api.core.v1.PodSpec/properties/containers/x-kubernetes-patch-merge-key",
                json!("name"),
            ),
            (
                "volumes strategy",
                "/io.k8s.api.core.v1.PodSpec/properties/volumes/x-kubernetes-patch-strategy",
                json!("merge,retainKeys"),
            ),
            (
                "strategy retainKeys",
                "/io.k8s.api.apps.v1.DeploymentSpec/properties/strategy/x-kubernetes-patch-strategy",
                json!("retainKeys"),
            ),
            (
                "service ports by port",
                "/io.k8s.api.core.v1.ServiceSpec/properties/ports/x-kubernetes-patch-merge-key",
                json!("port"),
            ),
            (
                "int-or-string",
                "/io.k8s.apimachinery.pkg.util.intstr.IntOrString/format",
                json!("int-or-string"),
            ),
            (
                "container requires name",
                "/io.k8s.api.core.v1.Container/required",
                json!(["name"]),
            ),
            (
                "scale gvk",
                "/io.k8s.api.autoscaling.v1.Scale/x-kubernetes-group-version-kind/0/group",
                json!("autoscaling"),
            ),
        ];
        let all = Value::Object(defs().clone().into_iter().collect());
        for (case, pointer, want) in cases {
            assert_eq!(all.pointer(pointer), Some(want), "{case}");
        }
        assert!(
            defs()["io.k8s.api.apps.v1.Deployment"].get("required").is_none(),
            "metadata not required"
        );
        assert!(defs()["io.k8s.api.core.v1.PodSpec"]["properties"]["tolerations"]
            .get("x-kubernetes-patch-strategy")
            .is_none());
    }

    #[test]
    fn every_reference_resolves_and_names_are_upstream() {
        let all = closure(defs(), defs().keys().cloned());
        for name in all {
            assert!(defs().contains_key(&name), "dangling {name}");
            assert!(name.starts_with("io.k8s."), "odd name {name}");
        }
    }

    #[test]
    fn v2_and_v3_forms() {
        let pod = to_v2("io.k8s.api.core.v1.Pod", &defs()["io.k8s.api.core.v1.Pod"]);
        assert_eq!(
            pod["properties"]["spec"]["$ref"],
            "#/definitions/io.k8s.api.core.v1.PodSpec"
        );
        let spec = to_v3(&defs()["io.k8s.api.apps.v1.DeploymentSpec"]);
        let strategy = &spec["properties"]["strategy"];
        assert_eq!(
            strategy["allOf"][0]["$ref"],
            "#/components/schemas/io.k8s.api.apps.v1.DeploymentStrategy"
        );
        assert!(strategy.get("$ref").is_none() && strategy.get("description").is_some());
        let items = &to_v3(&defs()["io.k8s.api.apps.v1.DeploymentList"])["properties"]["items"]["items"];
        assert!(items.get("$ref").is_some(), "a bare $ref stays bare");
        let ios = to_v2(INT_OR_STRING, &defs()[INT_OR_STRING]);
        assert_eq!(ios["type"], "string");
        assert!(ios.get("oneOf").is_none());
    }
}
