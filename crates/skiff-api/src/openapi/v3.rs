//! OpenAPI v3 documents: one per group version, plus the index that points at them.

use serde_json::{json, Map, Value};

use super::paths::{self, OpSpec, PathSpec};
use super::schemas::{self, gvk_value, Definitions, V3_REF};

const RESPONSE_TYPES: &[&str] = &[
    "application/json",
    "application/vnd.kubernetes.protobuf",
    "application/yaml",
];
const WATCH_TYPES: &[&str] = &[
    "application/json;stream=watch",
    "application/vnd.kubernetes.protobuf;stream=watch",
];

/// The index key of a group version: `api/v1` or `apis/apps/v1`.
pub(crate) fn index_key(group: &str, version: &str) -> String {
    if group.is_empty() {
        format!("api/{version}")
    } else {
        format!("apis/{group}/{version}")
    }
}

/// The index document: every group version with the URL of its document.
pub(crate) fn index<'a>(docs: impl IntoIterator<Item = (&'a str, &'a str)>) -> Value {
    let paths: Map<String, Value> = docs
        .into_iter()
        .map(|(key, hash)| {
            (
                key.to_string(),
                json!({"serverRelativeURL": format!("/openapi/v3/{key}?hash={hash}")}),
            )
        })
        .collect();
    json!({ "paths": paths })
}

fn reference(def: &str) -> Value {
    json!({"$ref": format!("{V3_REF}{def}")})
}

fn content(types: &[&str], def: &str) -> Value {
    Value::Object(
        types
            .iter()
            .map(|t| (t.to_string(), json!({"schema": reference(def)})))
            .collect(),
    )
}

fn param(name: &str, location: &str, ty: &str, description: &str, required: bool) -> Value {
    let mut p = json!({"in": location, "name": name, "schema": {"type": ty, "uniqueItems": true}});
    if !description.is_empty() {
        p["description"] = description.into();
    }
    if required {
        p["required"] = true.into();
    }
    p
}

/// Path-level parameters: `{name}`, `{namespace}` and `pretty`.
fn path_params(p: &PathSpec) -> Vec<Value> {
    let mut out = Vec::new();
    if let Some(kind) = p.named {
        out.push(param("name", "path", "string", &format!("name of the {kind}"), true));
    }
    if p.namespaced {
        out.push(param("namespace", "path", "string", paths::NAMESPACE, true));
    }
    out.push(param("pretty", "query", "string", paths::PRETTY, false));
    out
}

fn operation(o: &OpSpec, tag: &str) -> Value {
    let parameters: Vec<Value> = o
        .query
        .iter()
        .map(|name| {
            let (ty, description) = paths::query_param(name);
            param(name, "query", ty, description, false)
        })
        .collect();
    let mut types = RESPONSE_TYPES.to_vec();
    if o.watch {
        types.extend(WATCH_TYPES);
    }
    let responses: Map<String, Value> = o
        .responses
        .iter()
        .map(|(code, description, def)| {
            (
                code.to_string(),
                json!({"content": content(&types, def), "description": description}),
            )
        })
        .collect();
    let mut op = json!({
        "description": o.description,
        "operationId": o.id,
        "parameters": parameters,
        "responses": responses,
        "tags": [tag],
        "x-kubernetes-action": o.action,
        "x-kubernetes-group-version-kind": gvk_value(o.gvk),
    });
    if let Some(body) = &o.body {
        op["requestBody"] = json!({"content": content(body.content_types, &body.schema)});
        if body.required {
            op["requestBody"]["required"] = true.into();
        }
    }
    op
}

/// The document of one group version, with only the schemas its paths need.
pub(crate) fn document(defs: &Definitions, group: &str, version: &str) -> Value {
    let specs = paths::group_version_paths(group, version);
    let tag = paths::tag(group, version);
    let mut out_paths = Map::new();
    for p in &specs {
        let mut item = Map::new();
        for o in &p.ops {
            item.insert(o.method.to_string(), operation(o, &tag));
        }
        item.insert("parameters".into(), Value::Array(path_params(p)));
        out_paths.insert(p.path.clone(), Value::Object(item));
    }
    let names = schemas::closure(defs, paths::referenced_definitions(&specs));
    let components: Map<String, Value> = names
        .into_iter()
        .filter_map(|n| defs.get(&n).map(|s| (n, schemas::to_v3(s))))
        .collect();
    json!({
        "openapi": "3.0.0",
        "info": {"title": "Kubernetes", "version": "unversioned"},
        "paths": out_paths,
        "components": {"schemas": components},
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::openapi::{v3_document, v3_index};
    use crate::registry::{group_versions, RESOURCES};

    fn parsed(bytes: &[u8]) -> Value {
        serde_json::from_slice(bytes).unwrap()
    }

    #[test]
    fn index_lists_every_group_version_with_a_fetchable_url() {
        let index = parsed(v3_index());
        for (g, v) in group_versions() {
            let key = index_key(g, v);
            let url = index["paths"][&key]["serverRelativeURL"].as_str().unwrap();
            let path = url.strip_prefix("/openapi/v3/").unwrap().split('?').next().unwrap();
            assert_eq!(path, key);
            assert!(v3_document(path).is_some(), "{key}");
            assert!(v3_document(&format!("/{path}")).is_some(), "leading slash accepted");
        }
        assert!(v3_document("apis/nope/v1").is_none());
    }

    #[test]
    fn every_kind_has_a_patch_operation_that_lists_field_validation() {
        // Read-only kinds (the local APIServices) have no patch operation.
        for r in RESOURCES.iter().filter(|r| r.verbs.contains(&"patch")) {
            let doc = parsed(v3_document(&index_key(r.group, r.version)).unwrap());
            let want = json!({"group": r.group, "kind": r.kind, "version": r.version});
            let patch = doc["paths"]
                .as_object()
                .unwrap()
                .values()
                .filter_map(|item| item.get("patch"))
                .find(|op| op["x-kubernetes-group-version-kind"] == want)
                .unwrap_or_else(|| panic!("no patch for {}", r.kind));
            let names: Vec<&str> = patch["parameters"]
                .as_array()
                .unwrap()
                .iter()
                .filter(|p| p["in"] == "query")
                .filter_map(|p| p["name"].as_str())
                .collect();
            assert!(names.contains(&"fieldValidation"), "{}", r.kind);
            let body = patch["requestBody"]["content"].as_object().unwrap();
            assert!(body.contains_key("application/apply-patch+yaml"));
            assert!(!body.contains_key("application/strategic-merge-patch+json"));
        }
    }

    #[test]
    fn every_document_reference_resolves() {
        for (g, v) in group_versions() {
            let doc = parsed(v3_document(&index_key(g, v)).unwrap());
            let components = doc["components"]["schemas"].as_object().unwrap();
            let mut refs = Vec::new();
            schemas::refs_in(&doc, &mut refs);
            for r in refs {
                assert!(components.contains_key(&r), "{g}/{v}: dangling {r}");
            }
            for r in RESOURCES.iter().filter(|r| r.group == g && r.version == v) {
                let tagged = components.values().any(|s| {
                    s["x-kubernetes-group-version-kind"].as_array().is_some_and(|tags| {
                        tags.contains(&json!({"group": r.group, "kind": r.kind, "version": r.version}))
                    })
                });
                assert!(tagged, "{} schema tagged with its kind", r.kind);
            }
        }
    }
}
