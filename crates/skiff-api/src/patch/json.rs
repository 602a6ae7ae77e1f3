//! RFC 6902 JSON patch and RFC 7386 merge patch.

use serde_json::Value;

use super::limits::{self, MAX_COPY_BYTES, MAX_JSON_PATCH_OPERATIONS};
use super::PatchError;

/// RFC 6902: apply a list of operations to `doc`; all or nothing. At most
/// [`MAX_JSON_PATCH_OPERATIONS`] operations; `copy` operations may add at most
/// [`MAX_COPY_BYTES`] in total, checked before each copy is made; the result is bounded by
/// [`limits::MAX_OBJECT_BYTES`].
pub fn json_patch(doc: &Value, patch: &Value) -> Result<Value, PatchError> {
    // Count first: decoding ten million operations is itself the cost to avoid.
    if let Some(a) = patch.as_array() {
        if a.len() > MAX_JSON_PATCH_OPERATIONS {
            return Err(PatchError::TooManyOperations {
                max: MAX_JSON_PATCH_OPERATIONS,
                got: a.len(),
            });
        }
    }
    let ops: json_patch::Patch =
        serde_json::from_value(patch.clone()).map_err(|e| PatchError::InvalidJsonPatch(e.to_string()))?;
    // Working on a copy makes the patch all or nothing: on error the copy is dropped.
    let mut out = doc.clone();
    let mut copied: u64 = 0;
    for (i, op) in ops.0.iter().enumerate() {
        if let json_patch::PatchOperation::Copy(c) = op {
            if let Some(source) = out.pointer(c.from.as_str()) {
                let room = MAX_COPY_BYTES - copied;
                match limits::json_size_within(source, room) {
                    Some(n) => copied += n,
                    None => {
                        return Err(PatchError::CopyTooLarge {
                            accumulated: copied + limits::json_size_within(source, u64::MAX).unwrap_or(0),
                            limit: MAX_COPY_BYTES,
                        })
                    }
                }
            }
        }
        json_patch::patch_unsafe(&mut out, std::slice::from_ref(op)).map_err(|mut e| {
            e.operation = i;
            PatchError::JsonPatchFailed(e.to_string())
        })?;
    }
    limits::check_object_size(&out)?;
    Ok(out)
}

/// RFC 7386: maps merge recursively, `null` deletes, everything else replaces.
pub fn merge_patch(doc: &Value, patch: &Value) -> Result<Value, PatchError> {
    // Like upstream (evanphx/json-patch MergePatch), the patch body must be a JSON object.
    if !patch.is_object() {
        return Err(PatchError::BadJsonDoc);
    }
    let mut out = doc.clone();
    json_patch::merge(&mut out, patch);
    limits::check_object_size(&out)?;
    Ok(out)
}
