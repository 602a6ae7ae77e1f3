//! The swagger 2.0 document (`/openapi/v2`): every served path and every definition.

use serde_json::{json, Map, Value};

use super::paths::{self, OpSpec, PathSpec};
use super::schemas::{self, gvk_value, Definitions};
use crate::registry;

const PRODUCES: &[&str] = &[
    "application/json",
    "application/yaml",
    "application/vnd.kubernetes.protobuf",
];
const WATCH_PRODUCES: &[&str] = &[
    "application/json;stream=watch",
    "application/vnd.kubernetes.protobuf;stream=watch",
];

fn reference(def: &str) -> Value {
    json!({"$ref": format!("#/definitions/{def}")})
}

fn param(name: &str, location: &str, ty: &str, description: &str, required: bool) -> Value {
    let mut p = json!({"in": location, "name": name, "type": ty, "uniqueItems": true});
    if !description.is_empty() {
        p["description"] = description.into();
    }
    if required {
        p["required"] = true.into();
    }
    p
}

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
    let mut parameters = Vec::new();
    if let Some(body) = &o.body {
        parameters
            .push(json!({"in": "body", "name": "body", "required": body.required, "schema": reference(&body.schema)}));
    }
    for name in o.query {
        let (ty, description) = paths::query_param(name);
        parameters.push(param(name, "query", ty, description, false));
    }
    let responses: Map<String, Value> = o
        .responses
        .iter()
        .map(|(code, description, def)| {
            (
                code.to_string(),
                json!({"description": description, "schema": reference(def)}),
            )
        })
        .collect();
    let mut produces = PRODUCES.to_vec();
    if o.watch {
        produces.extend(WATCH_PRODUCES);
    }
    let mut op = json!({
        "description": o.description,
        "operationId": o.id,
        "parameters": parameters,
        "produces": produces,
        "responses": responses,
        "schemes": ["https"],
        "tags": [tag],
        "x-kubernetes-action": o.action,
        "x-kubernetes-group-version-kind": gvk_value(o.gvk),
    });
    if let Some(body) = &o.body {
        op["consumes"] = json!(body.content_types);
    }
    op
}

/// The whole swagger 2.0 document.
pub(crate) fn document(defs: &Definitions) -> Value {
    let mut out_paths = Map::new();
    for (group, version) in registry::group_versions() {
        let tag = paths::tag(group, version);
        for p in paths::group_version_paths(group, version) {
            let mut item = Map::new();
            for o in &p.ops {
                item.insert(o.method.to_string(), operation(o, &tag));
            }
            item.insert("parameters".into(), Value::Array(path_params(&p)));
            out_paths.insert(p.path.clone(), Value::Object(item));
        }
    }
    let definitions: Map<String, Value> = defs
        .iter()
        .map(|(name, schema)| (name.clone(), schemas::to_v2(name, schema)))
        .collect();
    json!({
        "swagger": "2.0",
        "info": {"title": "Kubernetes", "version": "v1.33.0"},
        "paths": out_paths,
        "definitions": definitions,
    })
}

#[cfg(test)]
mod tests {
    use prost::Message;

    use super::*;
    use crate::openapi::gnostic;
    use crate::openapi::{v2_json, v2_protobuf};
    use crate::registry::RESOURCES;

    #[test]
    fn json_has_definitions_paths_and_no_v3_refs() {
        let doc: Value = serde_json::from_slice(v2_json()).unwrap();
        let text = String::from_utf8_lossy(v2_json());
        assert!(!text.contains("#/components/schemas/"));
        let defs = doc["definitions"].as_object().unwrap();
        assert!(defs.contains_key("io.k8s.api.apps.v1.Deployment"));
        // Read-only kinds (the local APIServices) have no patch operation.
        for r in RESOURCES.iter().filter(|r| r.verbs.contains(&"patch")) {
            let want = json!({"group": r.group, "kind": r.kind, "version": r.version});
            let patch = doc["paths"]
                .as_object()
                .unwrap()
                .values()
                .filter_map(|i| i.get("patch"))
                .find(|op| op["x-kubernetes-group-version-kind"] == want)
                .unwrap_or_else(|| panic!("no v2 patch for {}", r.kind));
            assert!(patch["parameters"]
                .as_array()
                .unwrap()
                .iter()
                .any(|p| p["name"] == "fieldValidation"));
        }
    }

    #[test]
    fn protobuf_round_trips_with_every_definition() {
        let doc: Value = serde_json::from_slice(v2_json()).unwrap();
        let decoded = gnostic::Document::decode(v2_protobuf()).unwrap();
        let defs = decoded.definitions.unwrap().additional_properties;
        assert_eq!(defs.len(), doc["definitions"].as_object().unwrap().len());
        assert_eq!(
            decoded.paths.unwrap().path.len(),
            doc["paths"].as_object().unwrap().len()
        );
        let deploy = defs.iter().find(|d| d.name == "io.k8s.api.apps.v1.Deployment").unwrap();
        let ext = &deploy.value.as_ref().unwrap().vendor_extension;
        assert_eq!(ext[0].name, "x-kubernetes-group-version-kind");
        let ios = defs
            .iter()
            .find(|d| d.name == "io.k8s.apimachinery.pkg.util.intstr.IntOrString")
            .unwrap();
        assert_eq!(ios.value.as_ref().unwrap().r#type.as_ref().unwrap().value, ["string"]);
    }

    #[test]
    fn every_array_has_items_and_every_type_is_known() {
        // kubectl's proto model parser rejects arrays without items and unknown types.
        fn walk(v: &Value, at: &str) {
            if let Value::Object(m) = v {
                match m.get("type").and_then(Value::as_str) {
                    Some("array") => assert!(m.contains_key("items"), "array without items at {at}"),
                    Some(t) => assert!(
                        ["object", "string", "integer", "number", "boolean"].contains(&t),
                        "{t} at {at}"
                    ),
                    None => {}
                }
                for (k, child) in m {
                    walk(child, &format!("{at}/{k}"));
                }
            }
        }
        let doc: Value = serde_json::from_slice(v2_json()).unwrap();
        walk(&doc["definitions"], "");
    }
}
