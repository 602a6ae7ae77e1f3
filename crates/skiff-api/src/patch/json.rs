//! RFC 6902 JSON patch and RFC 7386 merge patch.

use serde_json::Value;

use super::PatchError;

/// RFC 6902: apply a list of operations to `doc`; all or nothing.
pub fn json_patch(doc: &Value, patch: &Value) -> Result<Value, PatchError> {
    let ops: json_patch::Patch =
        serde_json::from_value(patch.clone()).map_err(|e| PatchError::InvalidJsonPatch(e.to_string()))?;
    let mut out = doc.clone();
    json_patch::patch(&mut out, &ops).map_err(|e| PatchError::JsonPatchFailed(e.to_string()))?;
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
    Ok(out)
}
