//! The shape of the generated schema (`schema.rs`) and lookups into it.

use super::schema::{KINDS, MESSAGES};

/// A protobuf message: its dotted name (k8s-pb module path + message) and its fields sorted by tag.
pub(super) struct Message {
    pub name: &'static str,
    pub fields: &'static [Field],
}

/// One field of a message.
pub(super) struct Field {
    pub tag: u32,
    /// The JSON name; empty for an inlined (`json:",inline"`) embedded struct.
    pub json: &'static str,
    pub ty: Ty,
    flags: u8,
}

/// Plain field: a written zero value means unset.
pub(super) const P: u8 = 0;
/// Keep zero: a Go pointer or required field, whose written zero value is meaningful.
pub(super) const K: u8 = 1;
/// Repeated field.
pub(super) const R: u8 = 2;
/// Inlined embedded struct: its fields go into the parent JSON object.
pub(super) const I: u8 = 4;

/// Builds a [`Field`] (keeps the generated table short).
pub(super) const fn f(tag: u32, json: &'static str, ty: Ty, flags: u8) -> Field {
    Field { tag, json, ty, flags }
}

impl Field {
    /// Whether a written zero value must be kept.
    pub fn keep_zero(&self) -> bool {
        self.flags & K != 0
    }

    /// Whether the field is repeated (a JSON array).
    pub fn repeated(&self) -> bool {
        self.flags & R != 0
    }

    /// Whether the field is an inlined embedded struct.
    pub fn inline(&self) -> bool {
        self.flags & I != 0
    }
}

/// The protobuf type of a field.
pub(super) enum Ty {
    Str,
    Bool,
    I32,
    I64,
    F64,
    Bytes,
    /// A message, by dotted name.
    Msg(&'static str),
    /// `map<string, V>`.
    Map(&'static Ty),
}

/// A top-level kind and the message that encodes it.
pub(super) struct Kind {
    pub api_version: &'static str,
    pub kind: &'static str,
    pub message: &'static str,
}

/// Finds a message by dotted name.
pub(super) fn message(name: &str) -> Option<&'static Message> {
    MESSAGES
        .binary_search_by(|m| m.name.cmp(name))
        .ok()
        .map(|i| &MESSAGES[i])
}

/// Finds the message of a top-level `apiVersion`/`kind`.
pub(super) fn kind_message(api_version: &str, kind: &str) -> Option<&'static Message> {
    let i = KINDS
        .binary_search_by(|k| (k.api_version, k.kind).cmp(&(api_version, kind)))
        .ok()?;
    message(KINDS[i].message)
}

impl Message {
    /// Finds a field by tag.
    pub fn field(&self, tag: u32) -> Option<&'static Field> {
        let fields: &'static [Field] = self.fields;
        fields.binary_search_by(|f| f.tag.cmp(&tag)).ok().map(|i| &fields[i])
    }
}
