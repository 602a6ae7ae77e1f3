//! Server-side apply, simplified: the applied configuration is merged into the live object
//! with strategic-merge list semantics; no field ownership or conflict detection.

use serde_json::Value;

use super::schema::{graph, Shape};
use super::strategic;
use super::PatchError;

/// Server-side apply (`kubectl apply --server-side`): merges `applied` into `live`
/// (`None` = the object does not exist yet and is created from `applied`).
/// Kinds without compiled types (CRDs) merge maps recursively and replace lists.
/// `metadata.managedFields` of the live object is kept as it was.
pub fn server_side_apply(live: Option<&Value>, applied: &Value, group: &str, kind: &str) -> Result<Value, PatchError> {
    let g = graph();
    let shape = g.kind(group, kind).unwrap_or(Shape::Unknown);
    let mut applied = applied.clone();
    // managedFields belong to the server; an applied configuration cannot set them.
    if let Some(meta) = applied.get_mut("metadata").and_then(Value::as_object_mut) {
        meta.remove("managedFields");
    }
    let base = live.cloned().unwrap_or(Value::Null);
    let out = strategic::apply(g, &shape, &base, &applied)?;
    super::limits::check_object_size(&out)?;
    Ok(out)
}
