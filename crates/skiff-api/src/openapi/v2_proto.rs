//! Converts the swagger 2.0 JSON document into gnostic's protobuf `openapi.v2.Document`, the
//! form kubectl asks for (`application/com.github.proto-openapi.spec.v2@v1.0+protobuf`).

use serde_json::{Map, Value};

use super::gnostic::{self as g, additional_properties_item, non_body_parameter, parameter, parameters_item};

fn text(v: &Value, key: &str) -> String {
    v.get(key).and_then(Value::as_str).unwrap_or_default().to_string()
}

fn flag(v: &Value, key: &str) -> bool {
    v.get(key).and_then(Value::as_bool).unwrap_or(false)
}

fn strings(v: &Value, key: &str) -> Vec<String> {
    match v.get(key) {
        Some(Value::Array(items)) => items.iter().filter_map(|s| s.as_str().map(str::to_string)).collect(),
        Some(Value::String(s)) => vec![s.clone()],
        _ => Vec::new(),
    }
}

fn entries<'a>(v: &'a Value, key: &str) -> impl Iterator<Item = (&'a String, &'a Value)> {
    v.get(key).and_then(Value::as_object).into_iter().flat_map(Map::iter)
}

/// A value as gnostic stores it: YAML text. JSON is valid YAML, and kubectl parses it with a
/// YAML decoder.
fn any(v: &Value) -> g::Any {
    g::Any {
        yaml: serde_json::to_string(v).unwrap_or_default(),
    }
}

fn extensions(v: &Value) -> Vec<g::NamedAny> {
    let Some(map) = v.as_object() else { return Vec::new() };
    map.iter()
        .filter(|(k, _)| k.starts_with("x-"))
        .map(|(k, v)| g::NamedAny {
            name: k.clone(),
            value: Some(any(v)),
        })
        .collect()
}

/// The protobuf form of a swagger 2.0 document.
pub(crate) fn document(v: &Value) -> g::Document {
    let info = v.get("info").map(|i| g::Info {
        title: text(i, "title"),
        version: text(i, "version"),
        description: text(i, "description"),
    });
    let path = entries(v, "paths")
        .map(|(name, item)| g::NamedPathItem {
            name: name.clone(),
            value: Some(path_item(item)),
        })
        .collect();
    let definitions = entries(v, "definitions")
        .map(|(name, s)| g::NamedSchema {
            name: name.clone(),
            value: Some(schema(s)),
        })
        .collect();
    g::Document {
        swagger: text(v, "swagger"),
        info,
        schemes: strings(v, "schemes"),
        consumes: strings(v, "consumes"),
        produces: strings(v, "produces"),
        paths: Some(g::Paths {
            vendor_extension: Vec::new(),
            path,
        }),
        definitions: Some(g::Definitions {
            additional_properties: definitions,
        }),
        vendor_extension: extensions(v),
    }
}

fn path_item(v: &Value) -> g::PathItem {
    let op = |m: &str| v.get(m).map(operation);
    g::PathItem {
        get: op("get"),
        put: op("put"),
        post: op("post"),
        delete: op("delete"),
        patch: op("patch"),
        parameters: parameters(v),
        vendor_extension: extensions(v),
    }
}

fn operation(v: &Value) -> g::Operation {
    let response_code = entries(v, "responses")
        .map(|(code, r)| g::NamedResponseValue {
            name: code.clone(),
            value: Some(g::ResponseValue {
                oneof: Some(g::response_value::Oneof::Response(g::Response {
                    description: text(r, "description"),
                    schema: r.get("schema").map(|s| g::SchemaItem {
                        oneof: Some(g::schema_item::Oneof::Schema(schema(s))),
                    }),
                })),
            }),
        })
        .collect();
    g::Operation {
        tags: strings(v, "tags"),
        description: text(v, "description"),
        operation_id: text(v, "operationId"),
        produces: strings(v, "produces"),
        consumes: strings(v, "consumes"),
        parameters: parameters(v),
        responses: Some(g::Responses { response_code }),
        schemes: strings(v, "schemes"),
        vendor_extension: extensions(v),
    }
}

fn parameters(v: &Value) -> Vec<g::ParametersItem> {
    let Some(Value::Array(items)) = v.get("parameters") else {
        return Vec::new();
    };
    items
        .iter()
        .map(|p| {
            let param = match p.get("in").and_then(Value::as_str) {
                Some("body") => parameter::Oneof::BodyParameter(Box::new(g::BodyParameter {
                    description: text(p, "description"),
                    name: text(p, "name"),
                    r#in: "body".into(),
                    required: flag(p, "required"),
                    schema: p.get("schema").map(schema),
                })),
                Some("path") => parameter::Oneof::NonBodyParameter(g::NonBodyParameter {
                    oneof: Some(non_body_parameter::Oneof::PathParameterSubSchema(
                        g::PathParameterSubSchema {
                            required: flag(p, "required"),
                            r#in: "path".into(),
                            description: text(p, "description"),
                            name: text(p, "name"),
                            r#type: text(p, "type"),
                            unique_items: flag(p, "uniqueItems"),
                        },
                    )),
                }),
                _ => parameter::Oneof::NonBodyParameter(g::NonBodyParameter {
                    oneof: Some(non_body_parameter::Oneof::QueryParameterSubSchema(
                        g::QueryParameterSubSchema {
                            required: flag(p, "required"),
                            r#in: "query".into(),
                            description: text(p, "description"),
                            name: text(p, "name"),
                            r#type: text(p, "type"),
                            unique_items: flag(p, "uniqueItems"),
                        },
                    )),
                }),
            };
            g::ParametersItem {
                oneof: Some(parameters_item::Oneof::Parameter(g::Parameter { oneof: Some(param) })),
            }
        })
        .collect()
}

fn schema(v: &Value) -> g::Schema {
    let additional_properties = match v.get("additionalProperties") {
        Some(Value::Bool(b)) => Some(Box::new(g::AdditionalPropertiesItem {
            oneof: Some(additional_properties_item::Oneof::Boolean(*b)),
        })),
        Some(s @ Value::Object(_)) => Some(Box::new(g::AdditionalPropertiesItem {
            oneof: Some(additional_properties_item::Oneof::Schema(Box::new(schema(s)))),
        })),
        _ => None,
    };
    let items = match v.get("items") {
        Some(Value::Array(list)) => Some(g::ItemsItem {
            schema: list.iter().map(schema).collect(),
        }),
        Some(s @ Value::Object(_)) => Some(g::ItemsItem {
            schema: vec![schema(s)],
        }),
        _ => None,
    };
    let properties = v
        .get("properties")
        .and_then(Value::as_object)
        .map(|props| g::Properties {
            additional_properties: props
                .iter()
                .map(|(name, s)| g::NamedSchema {
                    name: name.clone(),
                    value: Some(schema(s)),
                })
                .collect(),
        });
    let types = strings(v, "type");
    g::Schema {
        r#ref: text(v, "$ref"),
        format: text(v, "format"),
        title: text(v, "title"),
        description: text(v, "description"),
        default: v.get("default").map(any),
        required: strings(v, "required"),
        r#enum: v
            .get("enum")
            .and_then(Value::as_array)
            .map(|e| e.iter().map(any).collect())
            .unwrap_or_default(),
        additional_properties,
        r#type: (!types.is_empty()).then_some(g::TypeItem { value: types }),
        items,
        all_of: v
            .get("allOf")
            .and_then(Value::as_array)
            .map(|a| a.iter().map(schema).collect())
            .unwrap_or_default(),
        properties,
        read_only: flag(v, "readOnly"),
        vendor_extension: extensions(v),
    }
}

#[cfg(test)]
mod tests {
    use prost::Message;
    use serde_json::json;

    use super::*;

    #[test]
    fn converts_each_part_of_a_document() {
        let doc = json!({
            "swagger": "2.0",
            "info": {"title": "Kubernetes", "version": "v1.33.0"},
            "paths": {"/api/v1/namespaces/{namespace}/pods/{name}": {
                "parameters": [{"name": "name", "in": "path", "required": true, "type": "string"}],
                "patch": {
                    "operationId": "patchCoreV1NamespacedPod",
                    "parameters": [
                        {"name": "body", "in": "body", "required": true, "schema": {"$ref": "#/definitions/P"}},
                        {"name": "fieldValidation", "in": "query", "type": "string", "uniqueItems": true},
                    ],
                    "responses": {"200": {"description": "OK", "schema": {"$ref": "#/definitions/P"}}},
                    "x-kubernetes-group-version-kind": {"group": "", "kind": "Pod", "version": "v1"},
                },
            }},
            "definitions": {"P": {
                "type": "object",
                "required": ["a"],
                "properties": {
                    "a": {"type": "array", "items": {"type": "string"}, "x-kubernetes-patch-strategy": "merge"},
                    "m": {"type": "object", "additionalProperties": {"type": "string"}},
                },
            }},
        });
        let pb = document(&doc);
        let bytes = pb.encode_to_vec();
        let back = g::Document::decode(bytes.as_slice()).unwrap();
        assert_eq!(back, pb);
        let item = back.paths.unwrap().path.remove(0).value.unwrap();
        let patch = item.patch.unwrap();
        assert_eq!(
            patch.vendor_extension[0].value.as_ref().unwrap().yaml,
            r#"{"group":"","kind":"Pod","version":"v1"}"#
        );
        let Some(parameters_item::Oneof::Parameter(g::Parameter {
            oneof:
                Some(parameter::Oneof::NonBodyParameter(g::NonBodyParameter {
                    oneof: Some(non_body_parameter::Oneof::QueryParameterSubSchema(q)),
                })),
        })) = &patch.parameters[1].oneof
        else {
            panic!("query parameter expected")
        };
        assert_eq!(q.name, "fieldValidation");
        let def = back.definitions.unwrap().additional_properties.remove(0).value.unwrap();
        let props = def.properties.unwrap().additional_properties;
        assert_eq!(
            props[0].value.as_ref().unwrap().items.as_ref().unwrap().schema[0]
                .r#type
                .as_ref()
                .unwrap()
                .value,
            ["string"]
        );
        assert_eq!(
            props[0].value.as_ref().unwrap().vendor_extension[0].name,
            "x-kubernetes-patch-strategy"
        );
        assert!(props[1].value.as_ref().unwrap().additional_properties.is_some());
    }
}
