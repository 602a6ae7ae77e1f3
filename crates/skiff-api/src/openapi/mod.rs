//! The OpenAPI documents kubectl fetches before `apply`, `create -f`, `edit`, `replace` and for
//! `explain`: the v3 index and per-group-version documents, and the swagger 2.0 document in
//! JSON and in gnostic protobuf form. Schemas come from the k8s-openapi types; everything is
//! built once, on first use.

mod gnostic;
mod kinds;
mod paths;
mod schemas;
mod v2;
mod v2_proto;
mod v3;

use std::sync::OnceLock;

use prost::Message;

use crate::registry;

/// The v3 index and the documents it points at.
struct V3 {
    index: Vec<u8>,
    /// (index key such as `apis/apps/v1`, document bytes).
    documents: Vec<(String, Vec<u8>)>,
}

fn definitions() -> &'static schemas::Definitions {
    static DEFS: OnceLock<schemas::Definitions> = OnceLock::new();
    DEFS.get_or_init(schemas::build)
}

fn to_bytes(value: &serde_json::Value) -> Vec<u8> {
    // Serializing a `Value` cannot fail: its keys are strings.
    serde_json::to_vec(value).unwrap_or_default()
}

/// FNV-1a over the document bytes, in the upper-case hex upstream uses for its hashes.
fn hash(bytes: &[u8]) -> String {
    let (mut a, mut b) = (0xcbf2_9ce4_8422_2325_u64, 0x8422_2325_cbf2_9ce4_u64);
    for &byte in bytes {
        a = (a ^ u64::from(byte)).wrapping_mul(0x0000_0100_0000_01b3);
        b = (b ^ u64::from(byte)).wrapping_mul(0x0000_0100_0000_01b3).rotate_left(7);
    }
    format!("{a:016X}{b:016X}")
}

fn v3() -> &'static V3 {
    static V3_DOCS: OnceLock<V3> = OnceLock::new();
    V3_DOCS.get_or_init(|| {
        let documents: Vec<(String, Vec<u8>)> = registry::group_versions()
            .into_iter()
            .map(|(g, v)| (v3::index_key(g, v), to_bytes(&v3::document(definitions(), g, v))))
            .collect();
        let hashes: Vec<(String, String)> = documents.iter().map(|(k, d)| (k.clone(), hash(d))).collect();
        let index = to_bytes(&v3::index(hashes.iter().map(|(k, h)| (k.as_str(), h.as_str()))));
        V3 { index, documents }
    })
}

/// `GET /openapi/v3`: `{"paths": {"api/v1": {"serverRelativeURL": "/openapi/v3/api/v1?hash=…"}, …}}`.
pub fn v3_index() -> &'static [u8] {
    &v3().index
}

/// `GET /openapi/v3/<path>` for `api/v1` or `apis/<group>/<version>` (leading `/` and any
/// `?query` ignored); `None` for an unknown group version.
pub fn v3_document(path: &str) -> Option<&'static [u8]> {
    let path = path.split('?').next().unwrap_or(path).trim_matches('/');
    v3().documents
        .iter()
        .find(|(key, _)| key == path)
        .map(|(_, doc)| doc.as_slice())
}

fn v2_value() -> &'static serde_json::Value {
    static V2: OnceLock<serde_json::Value> = OnceLock::new();
    V2.get_or_init(|| v2::document(definitions()))
}

/// `GET /openapi/v2` as JSON (swagger 2.0).
pub fn v2_json() -> &'static [u8] {
    static BYTES: OnceLock<Vec<u8>> = OnceLock::new();
    BYTES.get_or_init(|| to_bytes(v2_value()))
}

/// `GET /openapi/v2` with `Accept: application/com.github.proto-openapi.spec.v2@v1.0+protobuf`
/// (also `/swagger-2.0.0.pb-v1`): the gnostic `openapi.v2.Document` message.
pub fn v2_protobuf() -> &'static [u8] {
    static BYTES: OnceLock<Vec<u8>> = OnceLock::new();
    BYTES.get_or_init(|| v2_proto::document(v2_value()).encode_to_vec())
}

/// Content type to answer [`v2_protobuf`] with. kubectl asks for
/// `application/com.github.proto-openapi.spec.v2@v1.0+protobuf`, but `@` is not valid in a
/// Content-Type header (Go's mime parser rejects it), so upstream answers with `.` instead.
pub const V2_PROTOBUF_CONTENT_TYPE: &str = "application/com.github.proto-openapi.spec.v2.v1.0+protobuf";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hash_changes_with_content_and_is_stable() {
        let cases = [
            ("same input", b"abc".as_slice(), b"abc".as_slice(), true),
            ("one byte differs", b"abc", b"abd", false),
        ];
        for (case, x, y, equal) in cases {
            assert_eq!(hash(x) == hash(y), equal, "{case}");
        }
        assert_eq!(hash(b"x").len(), 32);
    }

    #[test]
    fn protobuf_content_type_parses_as_a_media_type() {
        // Go's mime.ParseMediaType (kubectl 1.27/1.28) rejects `@` in the subtype.
        assert!(!V2_PROTOBUF_CONTENT_TYPE.contains('@'));
        assert!(V2_PROTOBUF_CONTENT_TYPE.ends_with("+protobuf"));
    }

    #[test]
    fn documents_are_cached() {
        assert!(std::ptr::eq(v2_protobuf(), v2_protobuf()));
        assert!(std::ptr::eq(v3_index(), v3_index()));
    }
}
