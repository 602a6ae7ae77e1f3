//! What revision a LIST reads at: `resourceVersion`, `resourceVersionMatch` and `continue`,
//! validated as kube-apiserver does (apimachinery's `ValidateListOptions`, then the storage
//! layer's), and continue tokens in upstream's format.

use base64::Engine;
use serde_json::json;

use super::Request;
use crate::errors::{ApiError, ApiResult};

/// The state a LIST reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReadAt {
    /// The current state (no resourceVersion, `0`, or a continue token with rv -1).
    Latest,
    /// The current state once the cache has reached this revision (NotOlderThan).
    AtLeast(i64),
    /// Exactly this revision (Exact, a paged legacy list, or a continue token's snapshot).
    Exact(i64),
}

/// A LIST's read: where it starts, at which revision.
#[derive(Debug)]
pub struct ListRead {
    /// Which state.
    pub at: ReadAt,
    /// The first key to list (from a continue token), relative to the list's key prefix.
    pub start: Option<String>,
    /// Whether the read continues an earlier page (a snapshot lost is then the inconsistent-continue 410).
    pub continued: bool,
}

/// The continue token as upstream writes it: base64url (unpadded) JSON
/// `{"v":"meta.k8s.io/v1","rv":N,"start":"<key after the prefix>\u0000"}`.
#[derive(Debug, serde::Serialize, serde::Deserialize)]
pub struct ContinueToken {
    #[serde(default)]
    v: String,
    #[serde(default)]
    rv: i64,
    #[serde(default)]
    start: String,
}

/// Encodes a token continuing after key `last` (relative to the prefix) at revision `rv`
/// (-1: at whatever is current then).
pub fn encode_continue(last: &str, rv: i64) -> String {
    let t = ContinueToken {
        v: "meta.k8s.io/v1".into(),
        rv,
        start: format!("{last}\u{0}"),
    };
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(serde_json::to_vec(&t).unwrap_or_default())
}

/// Decodes a continue token into (start key relative to the prefix, revision), with
/// upstream's messages (`storage.DecodeContinue`).
pub fn decode_continue(s: &str) -> Result<(String, i64), String> {
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(s)
        .map_err(|e| {
            let at = match e {
                base64::DecodeError::InvalidByte(i, _) | base64::DecodeError::InvalidLastSymbol(i, _) => i,
                base64::DecodeError::InvalidLength(n) => n,
                base64::DecodeError::InvalidPadding => s.len(),
            };
            format!("continue key is not valid: illegal base64 data at input byte {at}")
        })?;
    let t: ContinueToken = serde_json::from_slice(&bytes).map_err(|e| format!("continue key is not valid: {e}"))?;
    if t.v != "meta.k8s.io/v1" {
        return Err(format!(
            "continue key is not valid: server does not recognize this encoded version server: \"meta.k8s.io/v1\", client: {:?}",
            t.v
        ));
    }
    if t.rv == 0 {
        return Err(
            "continue key is not valid: incorrect encoded start resourceVersion (version meta.k8s.io/v1)".into(),
        );
    }
    if t.start.is_empty() {
        return Err("continue key is not valid: encoded start key empty (version meta.k8s.io/v1)".into());
    }
    // As upstream: a start key that path cleaning would change (`..`, `//`) could range
    // outside the list's prefix.
    let key = t.start.strip_prefix('/').unwrap_or(&t.start);
    if key.split('/').any(|seg| seg == ".." || seg == "." || seg.is_empty()) {
        return Err(format!("continue key is not valid: {}", t.start));
    }
    Ok((key.to_string(), t.rv))
}

/// Go's `strconv.ParseUint(s, 10, 64)` error text.
fn parse_uint(s: &str) -> Result<u64, String> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!("strconv.ParseUint: parsing {s:?}: invalid syntax"));
    }
    s.parse::<u64>()
        .map_err(|_| format!("strconv.ParseUint: parsing {s:?}: value out of range"))
}

/// 422 `ListOptions.meta.k8s.io "" is invalid: ...` with field causes.
fn invalid_options(causes: Vec<(&'static str, String)>) -> ApiError {
    let text: Vec<String> = causes
        .iter()
        .map(|(_, m)| format!("resourceVersionMatch: {m}"))
        .collect();
    let message = if text.len() == 1 {
        format!("ListOptions.meta.k8s.io \"\" is invalid: {}", text[0])
    } else {
        format!("ListOptions.meta.k8s.io \"\" is invalid: [{}]", text.join(", "))
    };
    let causes: Vec<_> = causes
        .into_iter()
        .map(|(reason, m)| json!({"reason": reason, "message": m, "field": "resourceVersionMatch"}))
        .collect();
    ApiError {
        details: Some(json!({"group": "meta.k8s.io", "kind": "ListOptions", "causes": causes})),
        ..ApiError::new(422, "Invalid", message)
    }
}

/// Validates a LIST's options and decides what it reads; `limit` is the page size (0: all).
pub fn list_read(req: &Request, limit: usize) -> ApiResult<ListRead> {
    let q = &req.query;
    let rv = q.resource_version.as_deref().unwrap_or("");
    let cont = q.continue_.as_deref().unwrap_or("");
    let matching = q.resource_version_match.as_deref().unwrap_or("");
    // apimachinery's ValidateListOptions: 422.
    let mut causes = Vec::new();
    if !matching.is_empty() {
        let forbidden = |m: &str| ("FieldValueForbidden", format!("Forbidden: {m}"));
        if rv.is_empty() {
            causes.push(forbidden(
                "resourceVersionMatch is forbidden unless resourceVersion is provided",
            ));
        }
        if !cont.is_empty() {
            causes.push(forbidden("resourceVersionMatch is forbidden when continue is provided"));
        }
        if matching != "Exact" && matching != "NotOlderThan" {
            causes.push((
                "FieldValueNotSupported",
                format!("Unsupported value: {matching:?}: supported values: \"Exact\", \"NotOlderThan\", \"\""),
            ));
        }
        if matching == "Exact" && rv == "0" {
            causes.push(forbidden(
                "resourceVersionMatch \"exact\" is forbidden for resourceVersion \"0\"",
            ));
        }
    }
    if !causes.is_empty() {
        return Err(invalid_options(causes));
    }
    // The storage layer's checks: 400.
    if !cont.is_empty() {
        let (start, token_rv) =
            decode_continue(cont).map_err(|e| ApiError::bad_request(format!("invalid continue token: {e}")))?;
        if !rv.is_empty() && rv != "0" {
            return Err(ApiError::bad_request(
                "specifying resource version is not allowed when using continue",
            ));
        }
        let at = if token_rv > 0 {
            ReadAt::Exact(token_rv)
        } else {
            ReadAt::Latest
        };
        return Ok(ListRead {
            at,
            start: Some(start),
            continued: true,
        });
    }
    let at = if rv.is_empty() {
        ReadAt::Latest
    } else {
        let parsed = parse_uint(rv).map_err(|e| {
            ApiError::bad_request(format!(
                "invalid resource version: resourceVersion: Invalid value: {rv:?}: {e}"
            ))
        })?;
        // Beyond i64 is beyond any revision: it waits and times out as a too-large one.
        let n = i64::try_from(parsed).unwrap_or(i64::MAX);
        match (matching, n) {
            (_, 0) => ReadAt::Latest,
            ("Exact", n) => ReadAt::Exact(n),
            // Legacy: a paged list at a resourceVersion reads exactly that revision.
            ("", n) if limit > 0 => ReadAt::Exact(n),
            (_, n) => ReadAt::AtLeast(n),
        }
    };
    Ok(ListRead {
        at,
        start: None,
        continued: false,
    })
}

/// 410 for an exact read older than the history kept.
pub fn expired_list() -> ApiError {
    ApiError::gone("The resourceVersion for the provided list is too old.")
}

/// The 410 answered for a continue token whose snapshot is gone, with a token that continues
/// at the current state (upstream's `handleCompactedErrorForPaging`).
pub fn expired_continue(start: &str) -> serde_json::Value {
    let err = ApiError::gone(
        "The provided continue parameter is too old to display a consistent list result. You can start a new list without the continue parameter, or use the continue token in this response to retrieve the remainder of the results. Continuing with the provided token results in an inconsistent list - objects that were created, modified, or deleted between the time the first chunk was returned and now may show up in the list.",
    );
    let mut status = err.to_status();
    // The token restarts at the same key: `start` already ends with the NUL a token adds.
    let last = start.strip_suffix('\u{0}').unwrap_or(start);
    status["metadata"] = json!({"continue": encode_continue(last, -1)});
    status
}

/// 504 for a revision the cache has not reached in time (upstream's
/// `NewTooLargeResourceVersionError`).
pub fn too_large(rv: i64, current: i64) -> ApiError {
    ApiError {
        details: Some(json!({
            "causes": [{"reason": "ResourceVersionTooLarge", "message": "Too large resource version"}],
            "retryAfterSeconds": 1
        })),
        ..ApiError::new(
            504,
            "Timeout",
            format!("Too large resource version: {rv}, current: {current}"),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::request::{parse_path, Query};

    fn read(query: &str) -> ApiResult<ListRead> {
        let req = Request {
            target: parse_path("/api/v1/namespaces/a/pods").unwrap().unwrap(),
            query: Query::parse(Some(query)).unwrap(),
            headers: Default::default(),
            raw_query: query.into(),
        };
        let limit = req.query.limit()?;
        list_read(&req, limit)
    }

    #[test]
    fn resource_versions_are_validated_as_upstream() {
        // (query, expected code, expected message)
        let bad = [
            (
                "resourceVersion=abc",
                400,
                r#"invalid resource version: resourceVersion: Invalid value: "abc": strconv.ParseUint: parsing "abc": invalid syntax"#,
            ),
            (
                "resourceVersion=-1",
                400,
                r#"invalid resource version: resourceVersion: Invalid value: "-1": strconv.ParseUint: parsing "-1": invalid syntax"#,
            ),
            (
                "resourceVersion=1.5",
                400,
                r#"invalid resource version: resourceVersion: Invalid value: "1.5": strconv.ParseUint: parsing "1.5": invalid syntax"#,
            ),
            (
                "resourceVersion=18446744073709551616",
                400,
                r#"invalid resource version: resourceVersion: Invalid value: "18446744073709551616": strconv.ParseUint: parsing "18446744073709551616": value out of range"#,
            ),
            (
                "resourceVersionMatch=Exact",
                422,
                r#"ListOptions.meta.k8s.io "" is invalid: resourceVersionMatch: Forbidden: resourceVersionMatch is forbidden unless resourceVersion is provided"#,
            ),
            (
                "resourceVersion=0&resourceVersionMatch=Exact",
                422,
                r#"ListOptions.meta.k8s.io "" is invalid: resourceVersionMatch: Forbidden: resourceVersionMatch "exact" is forbidden for resourceVersion "0""#,
            ),
            (
                "resourceVersion=1&resourceVersionMatch=Newest",
                422,
                r#"ListOptions.meta.k8s.io "" is invalid: resourceVersionMatch: Unsupported value: "Newest": supported values: "Exact", "NotOlderThan", """#,
            ),
            (
                "resourceVersion=5&continue=eyJ2IjoibWV0YS5rOHMuaW8vdjEiLCJydiI6Nywic3RhcnQiOiJiXHUwMDAwIn0",
                400,
                "specifying resource version is not allowed when using continue",
            ),
            (
                "continue=!!",
                400,
                "invalid continue token: continue key is not valid: illegal base64 data at input byte 0",
            ),
        ];
        for (q, code, msg) in bad {
            let e = read(q).unwrap_err();
            assert_eq!((e.code, e.message.as_str()), (code, msg), "{q}");
        }
        let good = [
            ("", ReadAt::Latest),
            ("resourceVersion=0", ReadAt::Latest),
            ("resourceVersion=0&limit=5", ReadAt::Latest),
            ("resourceVersion=7", ReadAt::AtLeast(7)),
            (
                "resourceVersion=7&resourceVersionMatch=NotOlderThan&limit=5",
                ReadAt::AtLeast(7),
            ),
            ("resourceVersion=7&resourceVersionMatch=Exact", ReadAt::Exact(7)),
            ("resourceVersion=7&limit=5", ReadAt::Exact(7)),
        ];
        for (q, want) in good {
            assert_eq!(read(q).unwrap().at, want, "{q}");
        }
    }

    #[test]
    fn continue_tokens_are_upstreams() {
        let t = encode_continue("b", 7);
        // Upstream's bytes for the same token.
        let raw = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(&t).unwrap();
        assert_eq!(raw, br#"{"v":"meta.k8s.io/v1","rv":7,"start":"b\u0000"}"#);
        assert_eq!(decode_continue(&t).unwrap(), ("b\u{0}".to_string(), 7));
        let r = read(&format!("continue={t}")).unwrap();
        assert_eq!((r.at, r.start.as_deref()), (ReadAt::Exact(7), Some("b\u{0}")));
        let latest = read(&format!("continue={}", encode_continue("b", -1))).unwrap();
        assert_eq!(latest.at, ReadAt::Latest);
        let enc = |j: &str| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(j);
        for (json, want) in [
            (
                r#"{"v":"meta.k8s.io/v1","rv":0,"start":"b"}"#,
                "incorrect encoded start resourceVersion",
            ),
            (r#"{"v":"meta.k8s.io/v1","rv":3,"start":""}"#, "encoded start key empty"),
            (
                r#"{"v":"meta.k8s.io/v1","rv":3,"start":"../x"}"#,
                "continue key is not valid: ../x",
            ),
            (
                r#"{"v":"x","rv":3,"start":"b"}"#,
                "does not recognize this encoded version",
            ),
        ] {
            let e = decode_continue(&enc(json)).unwrap_err();
            assert!(e.contains(want), "{json}: {e}");
        }
    }
}
