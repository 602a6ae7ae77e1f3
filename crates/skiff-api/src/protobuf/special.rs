//! Messages whose JSON form is not an object of their fields: times, durations, quantities,
//! int-or-strings, embedded raw JSON and the few custom-marshalled wrappers.

use serde_json::{Map, Value};

use super::decode::{self, bytes_of, message_object, str_of, varint_of};
use super::table::Message;
use super::wire::Reader;
use super::ProtoError;

const TIME: &str = "apimachinery.pkg.apis.meta.v1.Time";
const MICRO_TIME: &str = "apimachinery.pkg.apis.meta.v1.MicroTime";
const DURATION: &str = "apimachinery.pkg.apis.meta.v1.Duration";
const QUANTITY: &str = "apimachinery.pkg.api.resource.Quantity";
const INT_OR_STRING: &str = "apimachinery.pkg.util.intstr.IntOrString";
const RAW_JSON: &[&str] = &[
    "apimachinery.pkg.runtime.RawExtension",
    "apimachinery.pkg.apis.meta.v1.FieldsV1",
    "apiextensions_apiserver.pkg.apis.apiextensions.v1.Json",
    "apiextensions_apiserver.pkg.apis.apiextensions.v1beta1.Json",
];

/// The outcome of [`convert`].
pub(super) enum Converted {
    /// A special message's JSON value; `None` leaves the field out.
    Value(Option<Value>),
    /// An ordinary message: decode it as an object.
    NotSpecial,
}

/// Converts `bytes` if `message` has a special JSON form.
pub(super) fn convert(
    bytes: &[u8],
    message: &'static Message,
    keep_zero: bool,
    depth: usize,
) -> Result<Converted, ProtoError> {
    let name = message.name;
    let value = match name {
        // The zero Time is Go's `null`: leave it out.
        TIME | MICRO_TIME => {
            let (seconds, nanos) = (int_field(bytes, name, 1)?, int_field(bytes, name, 2)?);
            if seconds == 0 && nanos == 0 {
                None
            } else {
                Some(Value::String(format_time(seconds, nanos, name == MICRO_TIME)?))
            }
        }
        DURATION => Some(Value::String(go_duration(int_field(bytes, name, 1)?))),
        QUANTITY => {
            let s = str_field(bytes, name, 1)?;
            (!s.is_empty() || keep_zero).then(|| Value::String(s.into()))
        }
        // type 1 is a string; anything else an int. The zero value means unset for non-pointers.
        INT_OR_STRING => {
            let (kind, int_val, str_val) = (
                int_field(bytes, name, 1)?,
                int_field(bytes, name, 2)? as i32,
                str_field(bytes, name, 3)?,
            );
            let (zero, v) = if kind == 1 {
                (str_val.is_empty(), Value::String(str_val.into()))
            } else {
                (int_val == 0, Value::from(int_val))
            };
            (!zero || keep_zero).then_some(v)
        }
        _ if RAW_JSON.contains(&name) => raw_json(bytes, name, depth)?,
        // map<string, ExtraValue> (UserInfo.extra) marshals each value as a plain string list.
        _ if name.ends_with(".ExtraValue") => {
            let items = message_object(bytes, message, depth)?.remove("items");
            Some(items.unwrap_or_else(|| Value::Array(Vec::new())))
        }
        // JSONSchemaPropsOr{Bool,Array,StringArray}: the schema if present, else the other form.
        _ if name.contains(".JSONSchemaPropsOr") || name.contains(".JsonSchemaPropsOr") => {
            let mut object = message_object(bytes, message, depth)?;
            Some(match object.remove("schema") {
                Some(schema) => schema,
                None => schema_alternative(name, object),
            })
        }
        _ => return Ok(Converted::NotSpecial),
    };
    Ok(Converted::Value(value))
}

/// The non-schema form of a JSONSchemaPropsOr* wrapper.
fn schema_alternative(name: &str, object: Map<String, Value>) -> Value {
    match object.into_iter().next() {
        Some((_, v)) => v,
        None if name.ends_with("OrBool") => Value::Bool(false),
        None => Value::Array(Vec::new()),
    }
}

/// The raw bytes (field 1) as an embedded JSON value, or a nested Kubernetes protobuf object.
fn raw_json(bytes: &[u8], name: &'static str, depth: usize) -> Result<Option<Value>, ProtoError> {
    let mut raw: &[u8] = &[];
    let mut reader = Reader::new(bytes);
    while let Some((tag, wire)) = reader.next_field()? {
        if tag == 1 {
            raw = bytes_of(wire, name, "raw")?;
        }
    }
    if raw.is_empty() {
        return Ok(None);
    }
    if decode::is_envelope(raw) {
        return decode::decode_envelope(raw, depth).map(Some);
    }
    serde_json::from_slice(raw)
        .map(Some)
        .map_err(|source| ProtoError::BadRawJson { message: name, source })
}

/// The last varint with field number `tag`, 0 when absent.
fn int_field(bytes: &[u8], name: &'static str, tag: u32) -> Result<i64, ProtoError> {
    let mut out = 0;
    let mut reader = Reader::new(bytes);
    while let Some((t, wire)) = reader.next_field()? {
        if t == tag {
            out = varint_of(wire, name, "")? as i64;
        }
    }
    Ok(out)
}

/// The last string with field number `tag`, empty when absent.
fn str_field<'a>(bytes: &'a [u8], name: &'static str, tag: u32) -> Result<&'a str, ProtoError> {
    let mut out = "";
    let mut reader = Reader::new(bytes);
    while let Some((t, wire)) = reader.next_field()? {
        if t == tag {
            out = str_of(wire, name, "")?;
        }
    }
    Ok(out)
}

/// RFC 3339 in UTC: whole seconds for Time (as Go's metav1.Time), microseconds for MicroTime.
fn format_time(seconds: i64, nanos: i64, micro: bool) -> Result<String, ProtoError> {
    let bad = || ProtoError::BadTime { seconds, nanos };
    let nanos32 = i32::try_from(nanos)
        .ok()
        .filter(|n| (0..1_000_000_000).contains(n))
        .ok_or_else(bad)?;
    let ts = jiff::Timestamp::new(seconds, nanos32).map_err(|_| bad())?;
    let whole = ts.strftime("%Y-%m-%dT%H:%M:%S").to_string();
    Ok(if micro {
        format!("{whole}.{:06}Z", nanos32 / 1000)
    } else {
        format!("{whole}Z")
    })
}

/// Go's `time.Duration.String()`: `1h2m3.5s`, `1.5ms`, `0s`.
fn go_duration(nanos: i64) -> String {
    if nanos == 0 {
        return "0s".into();
    }
    let sign = if nanos < 0 { "-" } else { "" };
    let n = nanos.unsigned_abs();
    let body = if n < 1_000 {
        format!("{n}ns")
    } else if n < 1_000_000 {
        format!("{}µs", decimal(n, 1_000))
    } else if n < 1_000_000_000 {
        format!("{}ms", decimal(n, 1_000_000))
    } else {
        let (hours, rest) = (n / 3_600_000_000_000, n % 3_600_000_000_000);
        let (minutes, rest) = (rest / 60_000_000_000, rest % 60_000_000_000);
        let seconds = decimal(rest, 1_000_000_000);
        match (hours, minutes) {
            (0, 0) => format!("{seconds}s"),
            (0, m) => format!("{m}m{seconds}s"),
            (h, m) => format!("{h}h{m}m{seconds}s"),
        }
    };
    format!("{sign}{body}")
}

/// `n / unit` with its fraction, trailing zeros trimmed (`1500, 1000` → `1.5`).
fn decimal(n: u64, unit: u64) -> String {
    let (whole, frac) = (n / unit, n % unit);
    if frac == 0 {
        return whole.to_string();
    }
    let width = unit.ilog10() as usize;
    let digits = format!("{frac:0width$}");
    format!("{whole}.{}", digits.trim_end_matches('0'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_times_and_durations() {
        let cases: &[(&str, String, &str)] = &[
            (
                "time",
                format_time(1_704_164_645, 0, false).unwrap(),
                "2024-01-02T03:04:05Z",
            ),
            (
                "time drops nanos",
                format_time(1_704_164_645, 123_456_789, false).unwrap(),
                "2024-01-02T03:04:05Z",
            ),
            (
                "micro time",
                format_time(1_704_164_645, 123_456_789, true).unwrap(),
                "2024-01-02T03:04:05.123456Z",
            ),
            ("zero duration", go_duration(0), "0s"),
            ("nanoseconds", go_duration(42), "42ns"),
            ("microseconds", go_duration(1_500), "1.5µs"),
            ("milliseconds", go_duration(2_250_000), "2.25ms"),
            ("seconds", go_duration(90_000_000_000), "1m30s"),
            ("hours", go_duration(3_600_000_000_000), "1h0m0s"),
            ("fractional seconds", go_duration(3_723_500_000_000), "1h2m3.5s"),
            ("negative", go_duration(-5_000_000_000), "-5s"),
        ];
        for (name, got, want) in cases {
            assert_eq!(got, want, "{name}");
        }
    }

    #[test]
    fn rejects_bad_times() {
        for (seconds, nanos) in [(0, -1), (0, 1_000_000_000), (i64::MAX, 0), (i64::MIN, 0)] {
            assert!(format_time(seconds, nanos, false).is_err(), "{seconds}s {nanos}ns");
        }
    }
}
