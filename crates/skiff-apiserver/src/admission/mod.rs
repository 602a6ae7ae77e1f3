//! Mutating admission run on create, after defaulting (upstream's plugins of the same names).

mod default_storage_class;
mod default_toleration_seconds;

use serde_json::Value;
use skiff_api::registry::{self, ResourceDef};

use crate::state::ApiServer;

/// Applies every mutating admission plugin to a new object.
pub fn mutate_create(server: &ApiServer, def: &ResourceDef, obj: &mut Value) {
    if def.group.is_empty() && def.kind == "Pod" {
        default_toleration_seconds::apply(obj, server.default_toleration_seconds());
    }
    if def.group.is_empty() && def.kind == "PersistentVolumeClaim" {
        let default = registry::find("storage.k8s.io", "v1", "storageclasses").and_then(|sc| {
            let (classes, _) = server.cache.list(sc, &sc.key_prefix(), None);
            default_storage_class::default_class(classes.iter().map(|(_, c)| c.as_ref()))
        });
        default_storage_class::apply(obj, default);
    }
}
