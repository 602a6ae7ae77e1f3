//! Mutating admission run on create, after defaulting (upstream's plugins of the same names).

mod default_toleration_seconds;

use serde_json::Value;
use skiff_api::registry::ResourceDef;

use crate::state::ApiServer;

/// Applies every mutating admission plugin to a new object.
pub fn mutate_create(server: &ApiServer, def: &ResourceDef, obj: &mut Value) {
    if def.group.is_empty() && def.kind == "Pod" {
        default_toleration_seconds::apply(obj, server.default_toleration_seconds());
    }
}
