//! Typed field checking: walks an object against the OpenAPI schema of its k8s-openapi type to
//! find values of the wrong JSON type (reported as Go's `encoding/json` would) and unknown
//! fields (reported with paths such as `spec.template.spec.containers[0].imagee`).

use crate::registry::ResourceDef;
use k8s_openapi::api::{apps::v1 as apps, autoscaling::v2 as autoscaling, batch::v1 as batch, core::v1 as core};
use k8s_openapi::api::{
    coordination::v1 as coordination, discovery::v1 as discovery, events::v1 as events, networking::v1 as networking,
    storage::v1 as storage,
};
use serde_json::{Map, Value};
use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};

/// A body that cannot be decoded into the kind's type; the server answers 400 BadRequest.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct TypeError(pub String);

/// Generated schemas by (group, kind).
type SchemaCache = HashMap<(&'static str, &'static str), Arc<Value>>;

const QUANTITY: &str = "io.k8s.apimachinery.pkg.api.resource.Quantity";

fn root<T: schemars::JsonSchema>() -> Value {
    schemars::SchemaGenerator::default()
        .into_root_schema_for::<T>()
        .to_value()
}

/// The schema of a served kind, generated once per kind.
fn schema_for(def: &ResourceDef) -> Option<Arc<Value>> {
    static CACHE: OnceLock<Mutex<SchemaCache>> = OnceLock::new();
    let cache = CACHE.get_or_init(Default::default);
    let key = (def.group, def.kind);
    if let Some(s) = cache.lock().ok()?.get(&key) {
        return Some(s.clone());
    }
    let schema = match key {
        ("", "ConfigMap") => root::<core::ConfigMap>(),
        ("", "Endpoints") => root::<core::Endpoints>(),
        ("", "Event") => root::<core::Event>(),
        ("", "LimitRange") => root::<core::LimitRange>(),
        ("", "Namespace") => root::<core::Namespace>(),
        ("", "Node") => root::<core::Node>(),
        ("", "PersistentVolumeClaim") => root::<core::PersistentVolumeClaim>(),
        ("", "PersistentVolume") => root::<core::PersistentVolume>(),
        ("", "Pod") => root::<core::Pod>(),
        ("", "ReplicationController") => root::<core::ReplicationController>(),
        ("", "ResourceQuota") => root::<core::ResourceQuota>(),
        ("", "Secret") => root::<core::Secret>(),
        ("", "ServiceAccount") => root::<core::ServiceAccount>(),
        ("", "Service") => root::<core::Service>(),
        ("apps", "ControllerRevision") => root::<apps::ControllerRevision>(),
        ("apps", "DaemonSet") => root::<apps::DaemonSet>(),
        ("apps", "Deployment") => root::<apps::Deployment>(),
        ("apps", "ReplicaSet") => root::<apps::ReplicaSet>(),
        ("apps", "StatefulSet") => root::<apps::StatefulSet>(),
        ("events.k8s.io", "Event") => root::<events::Event>(),
        ("autoscaling", "HorizontalPodAutoscaler") => root::<autoscaling::HorizontalPodAutoscaler>(),
        ("batch", "CronJob") => root::<batch::CronJob>(),
        ("batch", "Job") => root::<batch::Job>(),
        ("networking.k8s.io", "Ingress") => root::<networking::Ingress>(),
        ("storage.k8s.io", "StorageClass") => root::<storage::StorageClass>(),
        ("coordination.k8s.io", "Lease") => root::<coordination::Lease>(),
        ("discovery.k8s.io", "EndpointSlice") => root::<discovery::EndpointSlice>(),
        _ => return None,
    };
    let schema = Arc::new(schema);
    if let Ok(mut c) = cache.lock() {
        c.insert(key, schema.clone());
    }
    Some(schema)
}

/// Checks `obj` against the kind's type: `Err` on the first value of the wrong type, else the
/// paths of unknown fields (empty for kinds without a typed schema).
pub fn check_fields(def: &ResourceDef, obj: &Value) -> Result<Vec<String>, TypeError> {
    let Some(schema) = schema_for(def) else {
        return Ok(Vec::new());
    };
    let empty = Map::new();
    let defs = schema.get("$defs").and_then(Value::as_object).unwrap_or(&empty);
    let mut walker = Walker {
        defs,
        unknown: Vec::new(),
        error: None,
    };
    let pkg = go_package(def);
    if !obj.is_object() {
        return Err(TypeError(format!(
            "json: cannot unmarshal {} into Go value of type {pkg}.{}",
            kind_of(obj),
            def.kind
        )));
    }
    walker.walk(
        obj,
        schema.as_ref(),
        &Ctx {
            struct_name: def.kind,
            go_path: String::new(),
            path: String::new(),
        },
    );
    match walker.error {
        Some(e) => Err(TypeError(e)),
        None => Ok(walker.unknown),
    }
}

fn go_package(def: &ResourceDef) -> &'static str {
    match def.version {
        "v2" => "v2",
        _ => "v1",
    }
}

struct Ctx<'a> {
    /// Go name of the struct that holds the value being checked.
    struct_name: &'a str,
    /// Dotted JSON path without indices (how Go names the field).
    go_path: String,
    /// Dotted path with `[i]` indices (how upstream names unknown fields).
    path: String,
}

struct Walker<'a> {
    defs: &'a Map<String, Value>,
    unknown: Vec<String>,
    error: Option<String>,
}

fn kind_of(v: &Value) -> String {
    match v {
        Value::Null => "null".into(),
        Value::Bool(_) => "bool".into(),
        Value::Number(_) => "number".into(),
        Value::String(_) => "string".into(),
        Value::Array(_) => "array".into(),
        Value::Object(_) => "object".into(),
    }
}

fn def_name(schema: &Value) -> Option<&str> {
    schema
        .get("$ref")
        .and_then(Value::as_str)
        .and_then(|r| r.strip_prefix("#/$defs/"))
}

/// `io.k8s.api.core.v1.PodSpec` → (`v1`, `PodSpec`).
fn split_def(name: &str) -> (&str, &str) {
    let mut it = name.rsplit('.');
    let ty = it.next().unwrap_or(name);
    let pkg = it.next().unwrap_or("");
    (pkg, ty)
}

/// Follows a `$ref` into the definitions.
fn resolve<'s>(defs: &'s Map<String, Value>, schema: &'s Value) -> (&'s Value, Option<&'s str>) {
    match def_name(schema) {
        Some(name) => (defs.get(name).unwrap_or(&Value::Null), Some(name)),
        None => (schema, None),
    }
}

impl<'a> Walker<'a> {
    fn go_type(&self, schema: &Value) -> String {
        if let Some(name) = def_name(schema) {
            let (pkg, ty) = split_def(name);
            return format!("{pkg}.{ty}");
        }
        match (
            schema.get("type").and_then(Value::as_str),
            schema.get("format").and_then(Value::as_str),
        ) {
            (Some("integer"), Some("int32")) => "int32".into(),
            (Some("integer"), _) => "int64".into(),
            (Some("number"), _) => "float64".into(),
            (Some("string"), Some("byte")) => "[]uint8".into(),
            (Some("string"), _) => "string".into(),
            (Some("boolean"), _) => "bool".into(),
            (Some("array"), _) => format!("[]{}", self.go_type(schema.get("items").unwrap_or(&Value::Null))),
            (Some("object"), _) => match schema.get("additionalProperties") {
                Some(ap) if ap.is_object() => format!("map[string]{}", self.go_type(ap)),
                _ => "map[string]interface {}".into(),
            },
            _ => "interface {}".into(),
        }
    }

    fn fail(&mut self, value_desc: String, ctx: &Ctx, go_type: String) {
        if self.error.is_none() {
            self.error = Some(format!(
                "json: cannot unmarshal {value_desc} into Go struct field {}.{} of type {go_type}",
                ctx.struct_name, ctx.go_path
            ));
        }
    }

    fn walk(&mut self, v: &Value, schema: &'a Value, ctx: &Ctx) {
        if v.is_null() || self.error.is_some() {
            return;
        }
        let go_type = self.go_type(schema);
        let defs = self.defs;
        let (resolved, name) = resolve(defs, schema);
        if name == Some(QUANTITY) {
            match v {
                Value::String(s) if super::quantity::parse(s).is_none() => {
                    self.error = Some(super::quantity::QUANTITY_ERROR.to_string());
                }
                Value::String(_) | Value::Number(_) => {}
                other => self.fail(kind_of(other), ctx, go_type),
            }
            return;
        }
        if resolved.get("x-kubernetes-int-or-string").is_some() {
            if !(v.is_string() || v.is_i64() || v.is_u64()) {
                self.fail(kind_of(v), ctx, go_type);
            }
            return;
        }
        match resolved.get("type").and_then(Value::as_str) {
            Some("object") => {
                let Value::Object(m) = v else {
                    return self.fail(kind_of(v), ctx, go_type);
                };
                let struct_name = name.map(|n| split_def(n).1).unwrap_or(ctx.struct_name);
                if let Some(props) = resolved.get("properties").and_then(Value::as_object) {
                    for (k, child) in m {
                        let go_path = join(&ctx.go_path, k);
                        let path = join(&ctx.path, k);
                        match props.get(k) {
                            Some(s) => self.walk(
                                child,
                                s,
                                &Ctx {
                                    struct_name,
                                    go_path,
                                    path,
                                },
                            ),
                            None => self.unknown.push(path),
                        }
                    }
                } else if let Some(ap) = resolved.get("additionalProperties").filter(|a| a.is_object()) {
                    for (k, child) in m {
                        let path = format!("{}[{k}]", ctx.path);
                        self.walk(
                            child,
                            ap,
                            &Ctx {
                                struct_name,
                                go_path: ctx.go_path.clone(),
                                path,
                            },
                        );
                    }
                }
            }
            Some("array") => {
                let Value::Array(items) = v else {
                    return self.fail(kind_of(v), ctx, go_type);
                };
                let item_schema = resolved.get("items").unwrap_or(&Value::Null);
                for (i, item) in items.iter().enumerate() {
                    let path = format!("{}[{i}]", ctx.path);
                    self.walk(
                        item,
                        item_schema,
                        &Ctx {
                            struct_name: ctx.struct_name,
                            go_path: ctx.go_path.clone(),
                            path,
                        },
                    );
                }
            }
            Some("string") if !v.is_string() => self.fail(kind_of(v), ctx, go_type),
            Some("boolean") if !v.is_boolean() => self.fail(kind_of(v), ctx, go_type),
            Some("integer") => match v {
                Value::Number(n) => {
                    let fits = match resolved.get("format").and_then(Value::as_str) {
                        Some("int32") => n.as_i64().is_some_and(|x| i32::try_from(x).is_ok()),
                        _ => n.as_i64().is_some(),
                    };
                    if !fits {
                        self.fail(format!("number {n}"), ctx, go_type);
                    }
                }
                other => self.fail(kind_of(other), ctx, go_type),
            },
            Some("number") if !v.is_number() => self.fail(kind_of(v), ctx, go_type),
            _ => {}
        }
    }
}

fn join(base: &str, k: &str) -> String {
    if base.is_empty() {
        k.to_string()
    } else {
        format!("{base}.{k}")
    }
}
