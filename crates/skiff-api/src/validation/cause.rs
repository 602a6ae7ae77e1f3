//! Field errors in upstream's shape (`field.Error`): a reason, a field path and the message
//! `ErrorBody()` would print.

use std::collections::BTreeMap;

/// One field-level validation failure, as it appears in `details.causes` of a 422 Status.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Cause {
    /// `FieldValueRequired`, `FieldValueInvalid`, `FieldValueNotSupported`, ...
    pub reason: String,
    /// The body upstream prints, e.g. `Required value` or `Invalid value: "x": ...`.
    pub message: String,
    /// The field path, e.g. `spec.template.spec.containers[0].name`.
    pub field: String,
}

/// A bad value, printed the way Go's `%v`, `%q` or `%#v` prints the upstream type.
#[derive(Debug, Clone)]
pub(crate) enum Bad {
    /// A Go string, printed quoted.
    Str(String),
    /// A Go integer.
    Int(i64),
    /// A `map[string]string`.
    Map(BTreeMap<String, String>),
    /// Already formatted text (Stringers such as IntOrString, or structs).
    Raw(String),
}

impl Bad {
    fn render(&self) -> String {
        match self {
            Bad::Str(s) => go_quote(s),
            Bad::Int(i) => i.to_string(),
            Bad::Raw(s) => s.clone(),
            Bad::Map(m) => {
                let items: Vec<String> = m
                    .iter()
                    .map(|(k, v)| format!("{}:{}", go_quote(k), go_quote(v)))
                    .collect();
                format!("map[string]string{{{}}}", items.join(", "))
            }
        }
    }
}

impl From<&str> for Bad {
    fn from(s: &str) -> Self {
        Bad::Str(s.to_string())
    }
}
impl From<String> for Bad {
    fn from(s: String) -> Self {
        Bad::Str(s)
    }
}
impl From<i64> for Bad {
    fn from(i: i64) -> Self {
        Bad::Int(i)
    }
}

/// Quotes like Go's `strconv.Quote`.
pub(crate) fn go_quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            '\u{7}' => out.push_str("\\a"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            '\u{b}' => out.push_str("\\v"),
            c if (c as u32) < 0x20 || c as u32 == 0x7f => out.push_str(&format!("\\x{:02x}", c as u32)),
            c if c.is_control() => {
                if (c as u32) < 0x10000 {
                    out.push_str(&format!("\\u{:04x}", c as u32))
                } else {
                    out.push_str(&format!("\\U{:08x}", c as u32))
                }
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

fn with_detail(mut s: String, detail: &str) -> String {
    if !detail.is_empty() {
        s.push_str(": ");
        s.push_str(detail);
    }
    s
}

fn cause(reason: &str, field: &str, message: String) -> Cause {
    Cause {
        reason: reason.to_string(),
        message,
        field: field.to_string(),
    }
}

/// `field.Required`.
pub(crate) fn required(field: &str, detail: &str) -> Cause {
    cause(
        "FieldValueRequired",
        field,
        with_detail("Required value".into(), detail),
    )
}

/// `field.Invalid`.
pub(crate) fn invalid(field: &str, value: impl Into<Bad>, detail: &str) -> Cause {
    let body = format!("Invalid value: {}", value.into().render());
    cause("FieldValueInvalid", field, with_detail(body, detail))
}

/// `field.NotSupported` with the supported values quoted in the given order.
pub(crate) fn not_supported(field: &str, value: impl Into<Bad>, valid: &[&str]) -> Cause {
    let body = format!("Unsupported value: {}", value.into().render());
    let detail = if valid.is_empty() {
        String::new()
    } else {
        let q: Vec<String> = valid.iter().map(|v| go_quote(v)).collect();
        format!("supported values: {}", q.join(", "))
    };
    cause("FieldValueNotSupported", field, with_detail(body, &detail))
}

/// `field.Duplicate`.
pub(crate) fn duplicate(field: &str, value: impl Into<Bad>) -> Cause {
    cause(
        "FieldValueDuplicate",
        field,
        format!("Duplicate value: {}", value.into().render()),
    )
}

/// `field.Forbidden`.
pub(crate) fn forbidden(field: &str, detail: &str) -> Cause {
    cause("FieldValueForbidden", field, with_detail("Forbidden".into(), detail))
}

/// `field.NotFound`.
pub(crate) fn not_found(field: &str, value: impl Into<Bad>) -> Cause {
    cause(
        "FieldValueNotFound",
        field,
        format!("Not found: {}", value.into().render()),
    )
}

/// `field.TooLong` (the value is never printed).
pub(crate) fn too_long(field: &str, max: usize) -> Cause {
    cause(
        "FieldValueTooLong",
        field,
        format!("Too long: must have at most {max} bytes"),
    )
}

/// `ValidateNonnegativeField`.
pub(crate) fn nonnegative(field: &str, value: i64, out: &mut Vec<Cause>) {
    if value < 0 {
        out.push(invalid(field, value, "must be greater than or equal to 0"));
    }
}

/// `ValidateImmutableField` for JSON values (an absent field equals null).
pub(crate) fn immutable(
    field: &str,
    new: Option<&serde_json::Value>,
    old: Option<&serde_json::Value>,
) -> Option<Cause> {
    let n = new.filter(|v| !v.is_null());
    let o = old.filter(|v| !v.is_null());
    if n == o {
        return None;
    }
    Some(invalid(field, bad_json(n), "field is immutable"))
}

/// Renders a JSON value roughly as Go would print the typed value.
pub(crate) fn bad_json(v: Option<&serde_json::Value>) -> Bad {
    match v {
        None | Some(serde_json::Value::Null) => Bad::Raw("null".into()),
        Some(serde_json::Value::String(s)) => Bad::Str(s.clone()),
        Some(serde_json::Value::Number(n)) => Bad::Raw(n.to_string()),
        Some(serde_json::Value::Bool(b)) => Bad::Raw(b.to_string()),
        Some(serde_json::Value::Object(m)) if m.values().all(|v| v.is_string()) => Bad::Map(
            m.iter()
                .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_string()))
                .collect(),
        ),
        Some(other) => Bad::Raw(other.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bodies_match_upstream_error_body() {
        let m: BTreeMap<String, String> = [("app".to_string(), "x".to_string())].into();
        let cases: Vec<(&str, Cause, &str)> = vec![
            ("required", required("spec.selector", ""), "Required value"),
            (
                "required detail",
                required("metadata.name", "name or generateName is required"),
                "Required value: name or generateName is required",
            ),
            (
                "invalid string",
                invalid("a", "Bad\"x", "no"),
                "Invalid value: \"Bad\\\"x\": no",
            ),
            (
                "invalid int",
                invalid("a", -1i64, "must be greater than or equal to 0"),
                "Invalid value: -1: must be greater than or equal to 0",
            ),
            (
                "invalid map",
                invalid("a", Bad::Map(m), "`selector` does not match template `labels`"),
                "Invalid value: map[string]string{\"app\":\"x\"}: `selector` does not match template `labels`",
            ),
            (
                "not supported",
                not_supported("a", "Always", &["OnFailure", "Never"]),
                "Unsupported value: \"Always\": supported values: \"OnFailure\", \"Never\"",
            ),
            ("duplicate", duplicate("a", "x"), "Duplicate value: \"x\""),
            ("forbidden", forbidden("a", "nope"), "Forbidden: nope"),
            ("not found", not_found("a", "v"), "Not found: \"v\""),
            (
                "too long",
                too_long("a", 262144),
                "Too long: must have at most 262144 bytes",
            ),
            ("control chars", invalid("a", "a\u{1}", ""), "Invalid value: \"a\\x01\""),
        ];
        for (name, got, want) in cases {
            assert_eq!(got.message, want, "{name}");
        }
    }
}
