//! apimachinery's string format checks (`k8s.io/apimachinery/pkg/util/validation`), returning
//! upstream's message strings, and the label and annotation map checks built on them.

use super::cause::{invalid, too_long, Cause};
use serde_json::{Map, Value};

const DNS1123_LABEL_FMT: &str = "[a-z0-9]([-a-z0-9]*[a-z0-9])?";
const DNS1123_SUBDOMAIN_FMT: &str = "[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*";
const DNS1035_LABEL_FMT: &str = "[a-z]([-a-z0-9]*[a-z0-9])?";
const QUALIFIED_NAME_FMT: &str = "([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]";
const LABEL_VALUE_FMT: &str = "(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?";
const QUALIFIED_NAME_MSG: &str =
    "must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character";
/// Upstream's limit on the total size of an object's annotations.
pub(crate) const TOTAL_ANNOTATION_SIZE: usize = 256 * 1024;

/// `validation.RegexError`.
pub(crate) fn regex_error(msg: &str, fmt: &str, examples: &[&str]) -> String {
    if examples.is_empty() {
        return format!("{msg} (regex used for validation is '{fmt}')");
    }
    let ex: Vec<String> = examples.iter().map(|e| format!("'{e}', ")).collect();
    format!("{msg} (e.g. {}regex used for validation is '{fmt}')", ex.join("or "))
}

/// `validation.MaxLenError`.
pub(crate) fn max_len_error(n: usize) -> String {
    format!("must be no more than {n} characters")
}

fn is_lower_alnum(c: u8) -> bool {
    c.is_ascii_lowercase() || c.is_ascii_digit()
}

fn matches_dns1123_label(s: &str) -> bool {
    let b = s.as_bytes();
    !b.is_empty()
        && is_lower_alnum(b[0])
        && is_lower_alnum(b[b.len() - 1])
        && b.iter().all(|&c| is_lower_alnum(c) || c == b'-')
}

fn matches_dns1123_subdomain(s: &str) -> bool {
    s.split('.').all(matches_dns1123_label)
}

fn is_alnum(c: u8) -> bool {
    c.is_ascii_alphanumeric()
}

fn matches_qualified_name(s: &str) -> bool {
    let b = s.as_bytes();
    !b.is_empty()
        && is_alnum(b[0])
        && is_alnum(b[b.len() - 1])
        && b.iter().all(|&c| is_alnum(c) || c == b'-' || c == b'_' || c == b'.')
}

/// `IsDNS1123Label`.
pub(crate) fn dns1123_label(v: &str) -> Vec<String> {
    let mut errs = Vec::new();
    if v.len() > 63 {
        errs.push(max_len_error(63));
    }
    if !matches_dns1123_label(v) {
        if matches_dns1123_subdomain(v) {
            errs.push("must not contain dots".to_string());
        } else {
            errs.push(regex_error(
                "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character",
                DNS1123_LABEL_FMT,
                &["my-name", "123-abc"],
            ));
        }
    }
    errs
}

/// `IsDNS1123Subdomain`.
pub(crate) fn dns1123_subdomain(v: &str) -> Vec<String> {
    let mut errs = Vec::new();
    if v.len() > 253 {
        errs.push(max_len_error(253));
    }
    if !matches_dns1123_subdomain(v) {
        errs.push(regex_error(
            "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character",
            DNS1123_SUBDOMAIN_FMT,
            &["example.com"],
        ));
    }
    errs
}

/// `IsDNS1035Label`.
pub(crate) fn dns1035_label(v: &str) -> Vec<String> {
    let mut errs = Vec::new();
    if v.len() > 63 {
        errs.push(max_len_error(63));
    }
    let b = v.as_bytes();
    let ok = !b.is_empty()
        && b[0].is_ascii_lowercase()
        && is_lower_alnum(b[b.len() - 1])
        && b.iter().all(|&c| is_lower_alnum(c) || c == b'-');
    if !ok {
        errs.push(regex_error(
            "a DNS-1035 label must consist of lower case alphanumeric characters or '-', start with an alphabetic character, and end with an alphanumeric character",
            DNS1035_LABEL_FMT,
            &["my-name", "abc-123"],
        ));
    }
    errs
}

/// The kind of name an object of a kind must have.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum NameRule {
    /// `NameIsDNSSubdomain`.
    Subdomain,
    /// `NameIsDNSLabel`.
    Label,
    /// `NameIsDNS1035Label`.
    Label1035,
    /// `path.IsValidPathSegmentName` (APIServices, whose core one is named `v1.`).
    PathSegment,
}

/// Upstream `path.IsValidPathSegmentName`: any name usable as one URL path segment.
fn path_segment(name: &str) -> Vec<String> {
    let mut errs = Vec::new();
    if name == "." || name == ".." {
        errs.push(format!("may not be '{name}'"));
    }
    for bad in ["/", "%"] {
        if name.contains(bad) {
            errs.push(format!("may not contain '{bad}'"));
        }
    }
    errs
}

/// Checks a name or (with `prefix`) a generateName, as the upstream `ValidateNameFunc`s do.
pub(crate) fn check_name(rule: NameRule, name: &str, prefix: bool) -> Vec<String> {
    // A generateName may end in '-': upstream masks a trailing dash before checking.
    let masked;
    let name = if prefix && name.ends_with('-') {
        masked = format!("{}a", &name[..name.len() - 1]);
        masked.as_str()
    } else {
        name
    };
    match rule {
        NameRule::Subdomain => dns1123_subdomain(name),
        NameRule::Label => dns1123_label(name),
        NameRule::Label1035 => dns1035_label(name),
        NameRule::PathSegment => path_segment(name),
    }
}

/// `IsQualifiedName` (label keys, annotation keys, finalizers).
pub(crate) fn qualified_name(v: &str) -> Vec<String> {
    let mut errs = Vec::new();
    let parts: Vec<&str> = v.split('/').collect();
    let name = match parts.as_slice() {
        [n] => *n,
        [prefix, n] => {
            if prefix.is_empty() {
                errs.push("prefix part must be non-empty".to_string());
            } else {
                errs.extend(
                    dns1123_subdomain(prefix)
                        .into_iter()
                        .map(|m| format!("prefix part {m}")),
                );
            }
            *n
        }
        _ => {
            errs.push(format!(
                "a qualified name {} with an optional DNS subdomain prefix and '/' (e.g. 'example.com/MyName')",
                regex_error(
                    QUALIFIED_NAME_MSG,
                    QUALIFIED_NAME_FMT,
                    &["MyName", "my.name", "123-abc"]
                )
            ));
            return errs;
        }
    };
    if name.is_empty() {
        errs.push("name part must be non-empty".to_string());
    } else if name.len() > 63 {
        errs.push(format!("name part {}", max_len_error(63)));
    }
    if !matches_qualified_name(name) {
        errs.push(format!(
            "name part {}",
            regex_error(
                QUALIFIED_NAME_MSG,
                QUALIFIED_NAME_FMT,
                &["MyName", "my.name", "123-abc"]
            )
        ));
    }
    errs
}

/// `IsValidLabelValue`.
pub(crate) fn label_value(v: &str) -> Vec<String> {
    let mut errs = Vec::new();
    if v.len() > 63 {
        errs.push(max_len_error(63));
    }
    if !v.is_empty() && !matches_qualified_name(v) {
        errs.push(regex_error(
            "a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character",
            LABEL_VALUE_FMT,
            &["MyValue", "my_value", "12345"],
        ));
    }
    errs
}

/// `IsValidPortName`.
pub(crate) fn port_name(p: &str) -> Vec<String> {
    let mut errs = Vec::new();
    if p.len() > 15 {
        errs.push(max_len_error(15));
    }
    if p.is_empty() || !p.bytes().all(|c| is_lower_alnum(c) || c == b'-') {
        errs.push("must contain only alpha-numeric characters (a-z, 0-9), and hyphens (-)".to_string());
    }
    if !p.bytes().any(|c| c.is_ascii_lowercase()) {
        errs.push("must contain at least one letter (a-z)".to_string());
    }
    if p.contains("--") {
        errs.push("must not contain consecutive hyphens".to_string());
    }
    if p.starts_with('-') || p.ends_with('-') {
        errs.push("must not begin or end with a hyphen".to_string());
    }
    errs
}

/// `IsValidPortNum`.
pub(crate) fn port_num(p: i64) -> Vec<String> {
    if (1..=65535).contains(&p) {
        Vec::new()
    } else {
        vec!["must be between 1 and 65535, inclusive".to_string()]
    }
}

/// `IsValidPercent`.
pub(crate) fn percent(p: &str) -> Vec<String> {
    let ok = p.len() > 1 && p.ends_with('%') && p[..p.len() - 1].bytes().all(|c| c.is_ascii_digit());
    if ok {
        Vec::new()
    } else {
        vec![regex_error(
            "a valid percent string must be a numeric string followed by an ending '%'",
            "[0-9]+%",
            &["1%", "93%"],
        )]
    }
}

/// `IsRelaxedEnvVarName` (the RelaxedEnvironmentVariableValidation gate is on by default in 1.33).
pub(crate) fn env_var_name(v: &str) -> Vec<String> {
    let mut errs = Vec::new();
    if v.is_empty() {
        errs.push("environment variable name must be non-empty".to_string());
    }
    if v.chars().any(|c| !(' '..='~').contains(&c) || c == '=') {
        errs.push(
            "a valid environment variable name must consist only of printable ASCII characters other than '='"
                .to_string(),
        );
    }
    errs
}

/// `IsConfigMapKey` (ConfigMap and Secret data keys).
pub(crate) fn config_map_key(v: &str) -> Vec<String> {
    let mut errs = Vec::new();
    if v.len() > 253 {
        errs.push(max_len_error(253));
    }
    if v.is_empty() || !v.bytes().all(|c| is_alnum(c) || c == b'-' || c == b'_' || c == b'.') {
        errs.push(regex_error(
            "a valid config key must consist of alphanumeric characters, '-', '_' or '.'",
            "[-._a-zA-Z0-9]+",
            &["key.name", "KEY_NAME", "key-name"],
        ));
    }
    if v == "." {
        errs.push("must not be '.'".to_string());
    } else if v == ".." {
        errs.push("must not be '..'".to_string());
    } else if v.starts_with("..") {
        errs.push("must not start with '..'".to_string());
    }
    errs
}

/// `ValidateLabels`: keys and values of a label map, all reported on the map's path.
pub(crate) fn labels(map: Option<&Value>, field: &str, out: &mut Vec<Cause>) {
    let Some(Value::Object(m)) = map else { return };
    for (k, v) in m {
        for msg in qualified_name(k) {
            out.push(invalid(field, k.as_str(), &msg));
        }
        if let Some(v) = v.as_str() {
            for msg in label_value(v) {
                out.push(invalid(field, v, &msg));
            }
        }
    }
}

/// `ValidateAnnotations`: keys (case-insensitive qualified names) and the total size.
pub(crate) fn annotations(map: Option<&Value>, field: &str, out: &mut Vec<Cause>) {
    let Some(Value::Object(m)) = map else { return };
    for k in m.keys() {
        for msg in qualified_name(&k.to_lowercase()) {
            out.push(invalid(field, k.as_str(), &msg));
        }
    }
    if annotations_size(m) > TOTAL_ANNOTATION_SIZE {
        out.push(too_long(field, TOTAL_ANNOTATION_SIZE));
    }
}

fn annotations_size(m: &Map<String, Value>) -> usize {
    m.iter().map(|(k, v)| k.len() + v.as_str().map_or(0, str::len)).sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_follow_upstream() {
        type Check = fn(&str) -> Vec<String>;
        let sub_msg = "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')";
        let long = "a".repeat(64);
        let cases: Vec<(&str, Check, &str, Vec<String>)> = vec![
            ("subdomain ok", dns1123_subdomain, "a.b-c", vec![]),
            ("subdomain upper", dns1123_subdomain, "Bad_Name", vec![sub_msg.to_string()]),
            ("subdomain empty label", dns1123_subdomain, "a..b", vec![sub_msg.to_string()]),
            ("label dots", dns1123_label, "a.b", vec!["must not contain dots".into()]),
            ("label too long", dns1123_label, &long, vec!["must be no more than 63 characters".into()]),
            ("1035 digit start", dns1035_label, "1abc", vec!["a DNS-1035 label must consist of lower case alphanumeric characters or '-', start with an alphabetic character, and end with an alphanumeric character (e.g. 'my-name',  or 'abc-123', regex used for validation is '[a-z]([-a-z0-9]*[a-z0-9])?')".replace(",  or", ", or")]),
            ("qualified ok", qualified_name, "example.com/My_name", vec![]),
            ("qualified empty prefix", qualified_name, "/a", vec!["prefix part must be non-empty".into()]),
            ("qualified bad name", qualified_name, "-a", vec!["name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyName', or 'my.name', or '123-abc', regex used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')".into()]),
            ("label value ok empty", label_value, "", vec![]),
            ("label value bad", label_value, "a b", vec!["a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyValue', or 'my_value', or '12345', regex used for validation is '(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')".into()]),
            ("port name digits", port_name, "80", vec!["must contain at least one letter (a-z)".into()]),
            ("percent ok", percent, "25%", vec![]),
            ("env ok", env_var_name, "1A.b-c", vec![]),
            ("env equals", env_var_name, "A=B", vec!["a valid environment variable name must consist only of printable ASCII characters other than '='".into()]),
            ("config key dotdot", config_map_key, "..a", vec!["must not start with '..'".into()]),
        ];
        for (name, f, input, want) in cases {
            assert_eq!(f(input), want, "{name}");
        }
    }

    #[test]
    fn generate_name_may_end_in_dash() {
        assert!(check_name(NameRule::Subdomain, "web-", true).is_empty());
        assert!(!check_name(NameRule::Subdomain, "web-", false).is_empty());
    }
}
