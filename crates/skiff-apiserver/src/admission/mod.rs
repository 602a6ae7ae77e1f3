//! Admission run on create, after defaulting (upstream's plugins of the same names): mutating
//! plugins change the object, validating ones refuse it with 403.

mod default_storage_class;
mod default_toleration_seconds;
mod limit_ranger;
mod resource_quota;
mod service_account;

use std::sync::Arc;

use serde_json::Value;
use skiff_api::registry::{self, ResourceDef};

pub use resource_quota::admit_create as charge_quota;

use crate::errors::{ApiError, ApiResult};
use crate::meta;
use crate::state::ApiServer;

/// Applies every mutating admission plugin to a new object.
pub fn mutate_create(server: &ApiServer, def: &ResourceDef, obj: &mut Value) {
    if def.group.is_empty() && def.kind == "Pod" {
        default_toleration_seconds::apply(obj, server.default_toleration_seconds());
        service_account::apply(obj);
        let ranges = limit_ranges(server, obj);
        limit_ranger::default_pod(obj, &ranges.iter().map(Arc::as_ref).collect::<Vec<_>>());
    }
    if def.group.is_empty() && def.kind == "PersistentVolumeClaim" {
        let default = registry::find("storage.k8s.io", "v1", "storageclasses").and_then(|sc| {
            let (classes, _) = server.cache.list(sc, &sc.key_prefix(), None);
            default_storage_class::default_class(classes.iter().map(|(_, c)| c.as_ref()))
        });
        default_storage_class::apply(obj, default);
    }
}

/// Runs the validating plugins that need no write (LimitRanger's min/max); quota charging is
/// [`charge_quota`], run just before the object is stored.
pub fn validate_create(server: &ApiServer, def: &ResourceDef, obj: &Value) -> ApiResult<()> {
    if !def.group.is_empty() || !matches!(def.kind, "Pod" | "PersistentVolumeClaim") {
        return Ok(());
    }
    let ranges = limit_ranges(server, obj);
    limit_ranger::validate(def.plural, obj, &ranges.iter().map(Arc::as_ref).collect::<Vec<_>>())
        .map_err(|why| ApiError::forbidden_object(def, meta::name(obj), &why))
}

/// The LimitRanges of the object's namespace.
fn limit_ranges(server: &ApiServer, obj: &Value) -> Vec<Arc<Value>> {
    let (Some(def), Some(ns)) = (
        registry::find("", "v1", "limitranges"),
        meta::meta_str(obj, "namespace"),
    ) else {
        return vec![];
    };
    let (items, _) = server.cache.list(def, &def.namespace_prefix(Some(ns)), None);
    items.into_iter().map(|(_, v)| v).collect()
}
