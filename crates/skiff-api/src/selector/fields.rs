//! Field selectors (`fieldSelector=spec.nodeName=n1,status.phase!=Failed`), a port of
//! apimachinery `fields.ParseSelector` with per-kind support checks and matching.

use std::fmt;

use serde_json::Value;

use crate::registry::ResourceDef;

use super::error::SelectorError;
use super::field_labels;

/// One `field=value` or `field!=value` term.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Term {
    field: String,
    value: String,
    negated: bool,
}

/// A parsed field selector: terms ANDed; empty matches everything.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct FieldSelector {
    terms: Vec<Term>,
}

/// Splits on commas not escaped by a backslash (the backslash is kept).
fn split_terms(s: &str) -> Vec<&str> {
    if s.is_empty() {
        return Vec::new();
    }
    let mut out = Vec::new();
    let mut start = 0;
    let mut in_slash = false;
    for (i, c) in s.char_indices() {
        if in_slash {
            in_slash = false;
        } else if c == '\\' {
            in_slash = true;
        } else if c == ',' {
            out.push(&s[start..i]);
            start = i + 1;
        }
    }
    out.push(&s[start..]);
    out
}

/// Splits at the first operator (`!=`, then `==`, then `=` at each position).
fn split_term(term: &str) -> Option<(&str, &str, &str)> {
    for (i, _) in term.char_indices() {
        let rest = &term[i..];
        for op in ["!=", "==", "="] {
            if rest.starts_with(op) {
                return Some((&term[..i], op, &term[i + op.len()..]));
            }
        }
    }
    None
}

/// Upstream `UnescapeValue`: `\\`, `\,` and `\=` are the only escapes; bare `,` and `=` are errors.
fn unescape(s: &str) -> Result<String, SelectorError> {
    let mut out = String::with_capacity(s.len());
    let mut in_slash = false;
    for c in s.chars() {
        if in_slash {
            match c {
                '\\' | ',' | '=' => out.push(c),
                other => {
                    return Err(SelectorError::Field(format!(
                        "invalid field selector: invalid escape sequence: \\{other}"
                    )))
                }
            }
            in_slash = false;
            continue;
        }
        match c {
            '\\' => in_slash = true,
            ',' | '=' => return Err(SelectorError::Field(format!("invalid field selector: unescaped {c}"))),
            c => out.push(c),
        }
    }
    if in_slash {
        return Err(SelectorError::Field(
            "invalid field selector: invalid escape sequence: \\".into(),
        ));
    }
    Ok(out)
}

/// Upstream `EscapeValue`.
fn escape(s: &str) -> String {
    s.replace('\\', "\\\\").replace(',', "\\,").replace('=', "\\=")
}

impl FieldSelector {
    /// Parses the query-string form with upstream's grammar and messages; an empty value is legal.
    pub fn parse(s: &str) -> Result<Self, SelectorError> {
        let mut parts = split_terms(s);
        parts.sort_unstable();
        let mut terms = Vec::new();
        for part in parts {
            if part.is_empty() {
                continue;
            }
            let Some((lhs, op, rhs)) = split_term(part) else {
                return Err(SelectorError::Field(format!(
                    "invalid selector: '{s}'; can't understand '{part}'"
                )));
            };
            terms.push(Term {
                field: lhs.to_string(),
                value: unescape(rhs)?,
                negated: op == "!=",
            });
        }
        Ok(FieldSelector { terms })
    }

    /// Errors for fields the kind does not support, with upstream's message
    /// (`field label not supported: x`), so the server answers 400 BadRequest.
    pub fn check_supported(&self, def: &ResourceDef) -> Result<(), SelectorError> {
        for t in &self.terms {
            field_labels::canonical(def, &t.field).map_err(SelectorError::UnsupportedField)?;
        }
        Ok(())
    }

    /// Whether the object satisfies every term (fields as the kind's selectable field set reads them).
    pub fn matches(&self, def: &ResourceDef, obj: &Value) -> bool {
        self.terms.iter().all(|t| {
            let got = match field_labels::canonical(def, &t.field) {
                Ok(label) => field_labels::value(def, obj, label),
                // Unsupported fields are refused by `check_supported`; here they read as unset.
                Err(_) => String::new(),
            };
            (got == t.value) != t.negated
        })
    }

    /// The value required for `metadata.name` if the selector pins it (used by the server to
    /// serve single-object watches cheaply).
    pub fn exact_name(&self) -> Option<&str> {
        self.terms
            .iter()
            .find(|t| t.field == "metadata.name" && !t.negated)
            .map(|t| t.value.as_str())
    }

    /// True when the selector has no terms.
    pub fn is_empty(&self) -> bool {
        self.terms.is_empty()
    }
}

impl fmt::Display for FieldSelector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, t) in self.terms.iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            let op = if t.negated { "!=" } else { "=" };
            write!(f, "{}{}{}", t.field, op, escape(&t.value))?;
        }
        Ok(())
    }
}
