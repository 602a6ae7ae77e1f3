//! The selector error type; every message is upstream's text, so the server can answer with it.

/// A selector that cannot be parsed, or asks for a field the kind cannot select on.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SelectorError {
    /// The label selector string or object is malformed or holds invalid keys or values.
    #[error("{0}")]
    Label(String),
    /// The field selector string is malformed.
    #[error("{0}")]
    Field(String),
    /// The kind does not support selecting on this field (the server answers 400 BadRequest).
    #[error("{0}")]
    UnsupportedField(String),
}
