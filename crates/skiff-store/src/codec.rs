//! On-disk record layout: `create_revision | mod_revision | version` (little-endian i64 each), then the value.

use bytes::Bytes;

use crate::types::KeyValue;

/// Bytes of the fixed header before the value.
pub(crate) const HEADER_LEN: usize = 24;

/// The revision bookkeeping of a stored key.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Meta {
    pub create_revision: i64,
    pub mod_revision: i64,
    pub version: i64,
}

/// Writes the header of `meta` into the first `HEADER_LEN` bytes of `out`.
pub(crate) fn write_header(meta: Meta, out: &mut [u8]) {
    out[0..8].copy_from_slice(&meta.create_revision.to_le_bytes());
    out[8..16].copy_from_slice(&meta.mod_revision.to_le_bytes());
    out[16..24].copy_from_slice(&meta.version.to_le_bytes());
}

/// Reads the header of a record; `None` if the record is too short.
pub(crate) fn read_meta(record: &[u8]) -> Option<Meta> {
    let field = |i: usize| -> Option<i64> { Some(i64::from_le_bytes(record.get(i..i + 8)?.try_into().ok()?)) };
    Some(Meta {
        create_revision: field(0)?,
        mod_revision: field(8)?,
        version: field(16)?,
    })
}

/// Decodes a full record of `key`; `None` if the record is too short.
pub(crate) fn decode(key: &str, record: &[u8]) -> Option<KeyValue> {
    let meta = read_meta(record)?;
    Some(KeyValue {
        key: key.to_owned(),
        value: Bytes::copy_from_slice(&record[HEADER_LEN..]),
        create_revision: meta.create_revision,
        mod_revision: meta.mod_revision,
        version: meta.version,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_short_records() {
        let cases: &[(&str, &[u8], bool)] = &[
            ("empty value", b"", true),
            ("some value", b"hello", true),
            ("truncated header", b"", false),
        ];
        for (name, value, whole) in cases {
            let meta = Meta {
                create_revision: 3,
                mod_revision: 7,
                version: 2,
            };
            let mut record = vec![0u8; HEADER_LEN + value.len()];
            write_header(meta, &mut record);
            record[HEADER_LEN..].copy_from_slice(value);
            if !whole {
                record.truncate(HEADER_LEN - 1);
                assert_eq!(decode("k", &record), None, "{name}");
                continue;
            }
            let kv = decode("k", &record).unwrap();
            assert_eq!(
                (kv.create_revision, kv.mod_revision, kv.version, &kv.value[..]),
                (3, 7, 2, *value),
                "{name}"
            );
        }
    }
}
