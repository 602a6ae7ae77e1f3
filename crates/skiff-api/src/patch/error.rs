//! Errors of the patch engines; messages follow apimachinery's `mergepatch` package where it has one.

/// A patch that cannot be applied.
#[derive(Debug, thiserror::Error)]
pub enum PatchError {
    /// The document or the patch is not a JSON object where one is required.
    #[error("invalid JSON document")]
    BadJsonDoc,
    /// A JSON patch body that is not a list of RFC 6902 operations.
    #[error("invalid JSON patch: {0}")]
    InvalidJsonPatch(String),
    /// A JSON patch operation failed (missing path, failed `test`, ...).
    #[error("{0}")]
    JsonPatchFailed(String),
    /// Strategic merge patch asked for a kind without compiled type information (a CRD).
    /// The API server answers 415 with this message, as upstream does.
    #[error(
        "the body of the request was in an unknown format - accepted media types include: \
         application/json-patch+json, application/merge-patch+json, application/apply-patch+yaml"
    )]
    UnsupportedKind {
        /// API group of the kind ("" for core).
        group: String,
        /// Kind name.
        kind: String,
    },
    /// A value of the wrong JSON type where the patch needs a specific one.
    #[error("expected a {expected}, but received a {received}")]
    BadArgType {
        /// Go kind that was expected (`map`, `slice`, ...).
        expected: &'static str,
        /// Go kind that was found.
        received: &'static str,
    },
    /// An element of a merged list lacks its merge key.
    #[error("map: {map} does not contain declared merge key: {key}")]
    NoMergeKey {
        /// The element, as compact JSON.
        map: String,
        /// The merge key.
        key: String,
    },
    /// `$patch` with an unknown value.
    #[error("unknown patch type: {patch_type} in map: {map}")]
    BadPatchType {
        /// The `$patch` value.
        patch_type: String,
        /// The map holding it, as compact JSON.
        map: String,
    },
    /// A list whose elements are lists.
    #[error("lists of lists are not supported")]
    NoListOfLists,
    /// Malformed `$deleteFromPrimitiveList/...` directive.
    #[error("invalid patch format of primitive list")]
    BadPatchFormatForPrimitiveList,
    /// Malformed `$retainKeys` directive, or a patched key missing from it.
    #[error("invalid patch format of retainKeys")]
    BadPatchFormatForRetainKeys,
    /// Malformed `$setElementOrder/...` directive.
    #[error("invalid patch format of setElementOrder list")]
    BadPatchFormatForSetElementOrderList,
    /// Any other invalid strategic merge patch.
    #[error("{0}")]
    Invalid(String),
    /// A JSON patch with more operations than allowed (upstream answers 413).
    #[error("The allowed maximum operations in a JSON patch is {max}, got {got}")]
    TooManyOperations {
        /// The limit.
        max: usize,
        /// Operations in the patch.
        got: usize,
    },
    /// The `copy` operations of a JSON patch added more than allowed (upstream answers 422
    /// with evanphx/json-patch's message).
    #[error("Unable to complete the copy, the accumulated size increase of copy is {accumulated}, exceeding the limit {limit}")]
    CopyTooLarge {
        /// Bytes copied so far, including the refused copy.
        accumulated: u64,
        /// The limit.
        limit: u64,
    },
    /// The patched object is larger than an object may be (answered 413).
    #[error("limit is {limit}")]
    ObjectTooLarge {
        /// The limit in bytes.
        limit: u64,
    },
}

/// The Go `reflect.Kind` name of a decoded JSON value, for upstream-shaped messages.
pub(crate) fn go_kind(v: &serde_json::Value) -> &'static str {
    use serde_json::Value;
    match v {
        Value::Null => "nil",
        Value::Bool(_) => "bool",
        Value::Number(_) => "float64",
        Value::String(_) => "string",
        Value::Array(_) => "slice",
        Value::Object(_) => "map",
    }
}
