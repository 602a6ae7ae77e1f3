//! Schema-driven protobuf → JSON conversion.
//!
//! Zero values: gogo-protobuf writes every non-pointer field, even when zero, so a written `""`,
//! `0`, `false` or empty `bytes` is dropped unless the schema marks the field keep-zero (a Go
//! pointer, which is only written when set, or a required field, which JSON always carries).
//! Messages are always kept, `{}` included, as Go's JSON encoder writes non-pointer structs too;
//! the special messages (Time, IntOrString, Quantity, …) follow their own rules in `special.rs`.
//! List elements and map values are always kept. Unknown field numbers are skipped, like
//! newer-client fields in Go.

use base64::Engine;
use serde_json::{Map, Number, Value};

use super::special;
use super::table::{self, Field, Message, Ty};
use super::wire::{Reader, Wire};
use super::ProtoError;

/// No Kubernetes object nests nearly this deep; the limit keeps garbage from exhausting the stack.
pub(super) const MAX_DEPTH: usize = 64;

const KUBERNETES_MAGIC: &[u8] = b"k8s\0";

/// Decodes a `k8s\0` + runtime.Unknown envelope into the JSON object (with apiVersion and kind set
/// from the envelope's TypeMeta), converting field names to their JSON names and values to their
/// JSON forms.
pub fn decode(body: &[u8]) -> Result<Value, ProtoError> {
    decode_envelope(body, 0)
}

/// Whether `bytes` is a Kubernetes protobuf envelope (used for nested RawExtensions).
pub(super) fn is_envelope(bytes: &[u8]) -> bool {
    bytes.starts_with(KUBERNETES_MAGIC)
}

/// Decodes an envelope found at nesting `depth`.
pub(super) fn decode_envelope(body: &[u8], depth: usize) -> Result<Value, ProtoError> {
    let unknown = body.strip_prefix(KUBERNETES_MAGIC).ok_or(ProtoError::BadMagic)?;
    let (mut api_version, mut kind, mut raw, mut encoding, mut content_type) = ("", "", &[][..], "", "");
    let mut reader = Reader::new(unknown);
    while let Some((tag, wire)) = reader.next_field()? {
        match tag {
            1 => {
                let mut type_meta = Reader::new(bytes_of(wire, "runtime.Unknown", "typeMeta")?);
                while let Some((tag, wire)) = type_meta.next_field()? {
                    match tag {
                        1 => api_version = str_of(wire, "runtime.TypeMeta", "apiVersion")?,
                        2 => kind = str_of(wire, "runtime.TypeMeta", "kind")?,
                        _ => {}
                    }
                }
            }
            2 => raw = bytes_of(wire, "runtime.Unknown", "raw")?,
            3 => encoding = str_of(wire, "runtime.Unknown", "contentEncoding")?,
            4 => content_type = str_of(wire, "runtime.Unknown", "contentType")?,
            _ => {}
        }
    }
    if !encoding.is_empty() {
        return Err(ProtoError::ContentEncoding(encoding.to_string()));
    }
    if api_version.is_empty() || kind.is_empty() {
        return Err(ProtoError::MissingTypeMeta);
    }
    let mut object = if content_type.starts_with("application/json") {
        match serde_json::from_slice(raw) {
            Ok(Value::Object(map)) => map,
            Ok(_) => Map::new(),
            Err(source) => {
                return Err(ProtoError::BadRawJson {
                    message: "runtime.Unknown",
                    source,
                })
            }
        }
    } else {
        let message = table::kind_message(api_version, kind).ok_or_else(|| ProtoError::UnknownKind {
            api_version: api_version.into(),
            kind: kind.into(),
        })?;
        message_object(raw, message, depth + 1)?
    };
    object.insert("apiVersion".into(), Value::String(api_version.into()));
    object.insert("kind".into(), Value::String(kind.into()));
    Ok(Value::Object(object))
}

/// Decodes one message into a JSON object.
pub(super) fn message_object(
    bytes: &[u8],
    message: &'static Message,
    depth: usize,
) -> Result<Map<String, Value>, ProtoError> {
    if depth > MAX_DEPTH {
        return Err(ProtoError::TooDeep(MAX_DEPTH));
    }
    let mut object = Map::new();
    decode_into(bytes, message, depth, &mut object)?;
    Ok(object)
}

/// Decodes the fields of `bytes` into `object` (shared by inlined embedded structs).
fn decode_into(
    bytes: &[u8],
    message: &'static Message,
    depth: usize,
    object: &mut Map<String, Value>,
) -> Result<(), ProtoError> {
    let mut reader = Reader::new(bytes);
    while let Some((tag, wire)) = reader.next_field()? {
        let Some(field) = message.field(tag) else { continue };
        if field.inline() {
            if let Ty::Msg(name) = field.ty {
                let inner = bytes_of(wire, message.name, field.json)?;
                if depth >= MAX_DEPTH {
                    return Err(ProtoError::TooDeep(MAX_DEPTH));
                }
                decode_into(inner, lookup(name)?, depth + 1, object)?;
            }
            continue;
        }
        let key = field.json;
        if let Ty::Map(value_ty) = field.ty {
            let (k, v) = map_entry(wire, value_ty, message, field, depth)?;
            let entry = object.entry(key).or_insert_with(|| Value::Object(Map::new()));
            if let (Value::Object(map), Some(v)) = (entry, v) {
                map.insert(k, v);
            }
        } else if field.repeated() {
            let mut items = Vec::new();
            repeated_values(wire, &field.ty, message, field, depth, &mut items)?;
            let entry = object.entry(key).or_insert_with(|| Value::Array(Vec::new()));
            if let Value::Array(list) = entry {
                list.extend(items);
            }
        } else {
            match value(wire, &field.ty, field.keep_zero(), message, field, depth)? {
                Some(v) => object.insert(key.to_string(), v),
                None => object.remove(key),
            };
        }
    }
    Ok(())
}

/// Converts one singular value; `None` means "leave the field out".
fn value(
    wire: Wire<'_>,
    ty: &Ty,
    keep_zero: bool,
    message: &'static Message,
    field: &'static Field,
    depth: usize,
) -> Result<Option<Value>, ProtoError> {
    let keep = |zero: bool, v: Value| if zero && !keep_zero { None } else { Some(v) };
    Ok(match ty {
        Ty::Str => {
            let s = str_of(wire, message.name, field.json)?;
            keep(s.is_empty(), Value::String(s.into()))
        }
        Ty::Bytes => {
            let b = bytes_of(wire, message.name, field.json)?;
            keep(
                b.is_empty(),
                Value::String(base64::engine::general_purpose::STANDARD.encode(b)),
            )
        }
        Ty::Bool => {
            let b = varint_of(wire, message.name, field.json)? != 0;
            keep(!b, Value::Bool(b))
        }
        // int32 travels sign-extended to 64 bits, so truncating recovers negative values.
        Ty::I32 => {
            let n = varint_of(wire, message.name, field.json)? as i32;
            keep(n == 0, Value::from(n))
        }
        Ty::I64 => {
            let n = varint_of(wire, message.name, field.json)? as i64;
            keep(n == 0, Value::from(n))
        }
        Ty::F64 => {
            let Wire::Fixed64(bits) = wire else {
                return Err(wrong(message, field, "fixed64", wire));
            };
            let x = f64::from_bits(bits);
            let n = Number::from_f64(x).ok_or(ProtoError::NonFinite(field.json))?;
            keep(x == 0.0, Value::Number(n))
        }
        Ty::Msg(name) => {
            let bytes = bytes_of(wire, message.name, field.json)?;
            let inner = lookup(name)?;
            match special::convert(bytes, inner, keep_zero, depth + 1)? {
                special::Converted::Value(v) => v,
                special::Converted::NotSpecial => Some(Value::Object(message_object(bytes, inner, depth + 1)?)),
            }
        }
        Ty::Map(_) => None,
    })
}

/// Appends the element(s) of one repeated-field occurrence, packed or not.
fn repeated_values(
    wire: Wire<'_>,
    ty: &Ty,
    message: &'static Message,
    field: &'static Field,
    depth: usize,
    out: &mut Vec<Value>,
) -> Result<(), ProtoError> {
    let packed = matches!((ty, wire), (Ty::Bool | Ty::I32 | Ty::I64 | Ty::F64, Wire::Bytes(_)));
    if !packed {
        out.extend(value(wire, ty, true, message, field, depth)?);
        return Ok(());
    }
    let Wire::Bytes(bytes) = wire else { return Ok(()) };
    if matches!(ty, Ty::F64) {
        let mut chunks = bytes.chunks_exact(8);
        for chunk in &mut chunks {
            let bits = u64::from_le_bytes(chunk.try_into().map_err(|_| ProtoError::Truncated)?);
            out.extend(value(Wire::Fixed64(bits), ty, true, message, field, depth)?);
        }
        if !chunks.remainder().is_empty() {
            return Err(ProtoError::Truncated);
        }
        return Ok(());
    }
    let mut reader = Reader::new(bytes);
    while !reader.is_empty() {
        out.extend(value(Wire::Varint(reader.varint()?), ty, true, message, field, depth)?);
    }
    Ok(())
}

/// Decodes one `map<string, V>` entry message `{1: key, 2: value}`.
fn map_entry(
    wire: Wire<'_>,
    value_ty: &Ty,
    message: &'static Message,
    field: &'static Field,
    depth: usize,
) -> Result<(String, Option<Value>), ProtoError> {
    let mut reader = Reader::new(bytes_of(wire, message.name, field.json)?);
    let (mut key, mut val) = (String::new(), None);
    while let Some((tag, wire)) = reader.next_field()? {
        match tag {
            1 => key = str_of(wire, message.name, field.json)?.to_string(),
            2 => val = value(wire, value_ty, true, message, field, depth)?,
            _ => {}
        }
    }
    // A missing value is the value type's zero, as in protobuf.
    let val = val.or_else(|| match value_ty {
        Ty::Str | Ty::Bytes => Some(Value::String(String::new())),
        _ => None,
    });
    Ok((key, val))
}

/// Looks up a message the schema references.
pub(super) fn lookup(name: &'static str) -> Result<&'static Message, ProtoError> {
    table::message(name).ok_or(ProtoError::MissingSchema(name))
}

fn wrong(message: &'static Message, field: &'static Field, expected: &'static str, got: Wire<'_>) -> ProtoError {
    ProtoError::WrongWireType {
        message: message.name,
        field: field.json,
        expected,
        got: got.type_name(),
    }
}

/// The payload of a length-delimited field.
pub(super) fn bytes_of<'a>(wire: Wire<'a>, message: &'static str, field: &'static str) -> Result<&'a [u8], ProtoError> {
    match wire {
        Wire::Bytes(b) => Ok(b),
        other => Err(ProtoError::WrongWireType {
            message,
            field,
            expected: "length-delimited",
            got: other.type_name(),
        }),
    }
}

/// The payload of a string field.
pub(super) fn str_of<'a>(wire: Wire<'a>, message: &'static str, field: &'static str) -> Result<&'a str, ProtoError> {
    std::str::from_utf8(bytes_of(wire, message, field)?).map_err(|_| ProtoError::InvalidUtf8 { message, field })
}

/// The payload of a varint field.
pub(super) fn varint_of(wire: Wire<'_>, message: &'static str, field: &'static str) -> Result<u64, ProtoError> {
    match wire {
        Wire::Varint(v) => Ok(v),
        other => Err(ProtoError::WrongWireType {
            message,
            field,
            expected: "varint",
            got: other.type_name(),
        }),
    }
}
