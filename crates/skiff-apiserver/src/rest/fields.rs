//! Checks shared by every write: the body's kind, and `fieldValidation` of unknown fields.

use serde_json::Value;
use skiff_api::registry::ResourceDef;
use skiff_api::validation;

use super::Request;
use crate::errors::{ApiError, ApiResult};
use crate::{body, meta};

/// How unknown fields are treated (`fieldValidation`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    Strict,
    Warn,
    Ignore,
}

fn mode(req: &Request) -> ApiResult<Mode> {
    match req.query.field_validation.as_deref() {
        None | Some("") | Some("Warn") => Ok(Mode::Warn),
        Some("Strict") => Ok(Mode::Strict),
        Some("Ignore") => Ok(Mode::Ignore),
        Some(other) => Err(ApiError::bad_request(format!(
            "fieldValidation must be one of \"Ignore\", \"Warn\", or \"Strict\", got \"{other}\""
        ))),
    }
}

fn cannot_handle(def: &ResourceDef, msg: &str) -> ApiError {
    ApiError::bad_request(format!(
        "{} in version \"{}\" cannot be handled as a {}: {msg}",
        def.kind, def.version, def.kind
    ))
}

/// Checks `apiVersion`/`kind` of a body and fills them in when missing.
pub fn check_kind(def: &ResourceDef, obj: &mut Value) -> ApiResult<()> {
    let want_av = def.api_version();
    match obj.get("kind").and_then(Value::as_str) {
        None | Some("") => obj["kind"] = Value::String(def.kind.into()),
        Some(k) if k == def.kind => {}
        Some(k) => {
            return Err(ApiError::bad_request(format!(
                "the object provided is unrecognized (must be of type {}): kind {k} does not match",
                def.kind
            )))
        }
    }
    match obj.get("apiVersion").and_then(Value::as_str) {
        None | Some("") => obj["apiVersion"] = Value::String(want_av),
        Some(av) if av == want_av => {}
        Some(av) => {
            return Err(ApiError::bad_request(format!(
                "the API version in the data ({av}) does not match the expected API version ({want_av})"
            )))
        }
    }
    Ok(())
}

/// Type-checks the object and handles unknown fields per `fieldValidation`: Strict refuses
/// them, Warn returns a warning for each, and both Warn and Ignore drop them.
pub fn check_unknown(req: &Request, obj: &mut Value) -> ApiResult<Vec<String>> {
    let def = req.target.def;
    let mode = mode(req)?;
    let unknown = validation::check_fields(def, obj).map_err(|e| cannot_handle(def, &e.0))?;
    if unknown.is_empty() {
        return Ok(Vec::new());
    }
    let msgs: Vec<String> = unknown.iter().map(|p| format!("unknown field \"{p}\"")).collect();
    if mode == Mode::Strict {
        return Err(cannot_handle(
            def,
            &format!("strict decoding error: {}", msgs.join(", ")),
        ));
    }
    for p in &unknown {
        meta::remove_path(obj, p);
    }
    Ok(if mode == Mode::Warn { msgs } else { Vec::new() })
}

/// Handles duplicate keys of a JSON body per `fieldValidation`, as upstream's strict decoder
/// does: Strict refuses them (listed with the unknown fields in one message), Warn returns a
/// warning for each, Ignore keeps the last value silently.
pub fn check_duplicates(req: &Request, obj: &Value, bytes: &[u8]) -> ApiResult<Vec<String>> {
    let mode = mode(req)?;
    let json = matches!(
        body::content_type(&req.headers).as_str(),
        "" | "application/json" | "*/*"
    );
    if mode == Mode::Ignore || !json {
        return Ok(Vec::new());
    }
    let duplicates = validation::duplicate_fields(bytes);
    if duplicates.is_empty() {
        return Ok(Vec::new());
    }
    let mut msgs: Vec<String> = duplicates.iter().map(|p| format!("duplicate field \"{p}\"")).collect();
    if mode == Mode::Strict {
        let def = req.target.def;
        let unknown = validation::check_fields(def, obj).map_err(|e| cannot_handle(def, &e.0))?;
        msgs.extend(unknown.iter().map(|p| format!("unknown field \"{p}\"")));
        return Err(cannot_handle(
            def,
            &format!("strict decoding error: {}", msgs.join(", ")),
        ));
    }
    Ok(msgs)
}
