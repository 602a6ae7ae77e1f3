//! Errors of the protobuf decoder.

/// Why a protobuf request body could not be turned into JSON.
#[derive(Debug, thiserror::Error)]
pub enum ProtoError {
    /// The body lacks the `k8s\0` prefix of Kubernetes protobuf.
    #[error("the body does not start with the Kubernetes protobuf prefix \"k8s\\x00\"")]
    BadMagic,
    /// The body ends inside a field.
    #[error("the protobuf body is truncated")]
    Truncated,
    /// A varint is longer than 10 bytes.
    #[error("malformed protobuf varint")]
    BadVarint,
    /// A field number is 0 or too large.
    #[error("invalid protobuf field number {0}")]
    BadTag(u64),
    /// A wire type that Kubernetes never uses (groups) or that does not exist.
    #[error("unsupported protobuf wire type {wire_type} for field {tag}")]
    BadWireType { tag: u32, wire_type: u8 },
    /// A field arrived with a wire type that does not fit its schema.
    #[error("field {field:?} of {message}: expected {expected} encoding, got {got}")]
    WrongWireType {
        message: &'static str,
        field: &'static str,
        expected: &'static str,
        got: &'static str,
    },
    /// A string field is not UTF-8.
    #[error("field {field:?} of {message} is not valid UTF-8")]
    InvalidUtf8 { message: &'static str, field: &'static str },
    /// The envelope has no apiVersion or kind.
    #[error("the protobuf envelope has no apiVersion and kind")]
    MissingTypeMeta,
    /// The envelope names a kind without a protobuf schema here.
    #[error("no protobuf schema for apiVersion {api_version:?}, kind {kind:?}")]
    UnknownKind { api_version: String, kind: String },
    /// The envelope's object is compressed or otherwise encoded.
    #[error("unsupported protobuf content encoding {0:?}")]
    ContentEncoding(String),
    /// An embedded raw object (RawExtension, FieldsV1, JSON) is not valid JSON.
    #[error("embedded raw object in {message} is not valid JSON: {source}")]
    BadRawJson {
        message: &'static str,
        source: serde_json::Error,
    },
    /// A timestamp is out of range.
    #[error("invalid timestamp: {seconds}s {nanos}ns")]
    BadTime { seconds: i64, nanos: i64 },
    /// A double is NaN or infinite, which JSON cannot carry.
    #[error("field {0:?} holds a non-finite number")]
    NonFinite(&'static str),
    /// Messages nested deeper than any real object.
    #[error("protobuf messages nested deeper than {0} levels")]
    TooDeep(usize),
    /// The generated schema references a message it lacks (a generator bug).
    #[error("protobuf schema has no message {0}")]
    MissingSchema(&'static str),
}
