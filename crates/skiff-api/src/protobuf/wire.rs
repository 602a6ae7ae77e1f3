//! A minimal reader of the protobuf wire format.

use super::ProtoError;

/// The value of one field as it appears on the wire.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) enum Wire<'a> {
    Varint(u64),
    Fixed64(u64),
    Bytes(&'a [u8]),
    Fixed32(u32),
}

impl Wire<'_> {
    /// The name of the wire type, for error messages.
    pub fn type_name(&self) -> &'static str {
        match self {
            Wire::Varint(_) => "varint",
            Wire::Fixed64(_) => "fixed64",
            Wire::Bytes(_) => "length-delimited",
            Wire::Fixed32(_) => "fixed32",
        }
    }
}

/// Iterates over the `(tag, value)` pairs of one encoded message.
pub(super) struct Reader<'a> {
    buf: &'a [u8],
}

impl<'a> Reader<'a> {
    /// Reads the message encoded in `buf`.
    pub fn new(buf: &'a [u8]) -> Self {
        Reader { buf }
    }

    /// The next field, `None` at the end of the message.
    pub fn next_field(&mut self) -> Result<Option<(u32, Wire<'a>)>, ProtoError> {
        if self.buf.is_empty() {
            return Ok(None);
        }
        let key = self.varint()?;
        let tag = u32::try_from(key >> 3).map_err(|_| ProtoError::BadTag(key >> 3))?;
        if tag == 0 {
            return Err(ProtoError::BadTag(0));
        }
        let value = match key & 7 {
            0 => Wire::Varint(self.varint()?),
            1 => Wire::Fixed64(u64::from_le_bytes(self.fixed::<8>()?)),
            2 => {
                let len = usize::try_from(self.varint()?).map_err(|_| ProtoError::Truncated)?;
                if len > self.buf.len() {
                    return Err(ProtoError::Truncated);
                }
                let (bytes, rest) = self.buf.split_at(len);
                self.buf = rest;
                Wire::Bytes(bytes)
            }
            5 => Wire::Fixed32(u32::from_le_bytes(self.fixed::<4>()?)),
            other => {
                return Err(ProtoError::BadWireType {
                    tag,
                    wire_type: other as u8,
                })
            }
        };
        Ok(Some((tag, value)))
    }

    /// Reads one base-128 varint.
    pub fn varint(&mut self) -> Result<u64, ProtoError> {
        let mut value = 0u64;
        for (i, byte) in self.buf.iter().enumerate().take(10) {
            value |= u64::from(byte & 0x7f) << (7 * i);
            if byte & 0x80 == 0 {
                self.buf = &self.buf[i + 1..];
                return Ok(value);
            }
        }
        if self.buf.len() < 10 {
            Err(ProtoError::Truncated)
        } else {
            Err(ProtoError::BadVarint)
        }
    }

    /// Whether all bytes were consumed.
    pub fn is_empty(&self) -> bool {
        self.buf.is_empty()
    }

    fn fixed<const N: usize>(&mut self) -> Result<[u8; N], ProtoError> {
        let head = self.buf.get(..N).ok_or(ProtoError::Truncated)?;
        let mut out = [0u8; N];
        out.copy_from_slice(head);
        self.buf = &self.buf[N..];
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_fields_and_rejects_malformed_input() {
        struct Case {
            name: &'static str,
            input: &'static [u8],
            want: Result<Vec<(u32, Wire<'static>)>, &'static str>,
        }
        let cases = [
            Case {
                name: "empty",
                input: b"",
                want: Ok(vec![]),
            },
            Case {
                name: "varint",
                input: &[0x08, 0x96, 0x01],
                want: Ok(vec![(1, Wire::Varint(150))]),
            },
            Case {
                name: "bytes",
                input: &[0x12, 0x02, b'h', b'i'],
                want: Ok(vec![(2, Wire::Bytes(b"hi"))]),
            },
            Case {
                name: "fixed64",
                input: &[0x19, 1, 0, 0, 0, 0, 0, 0, 0],
                want: Ok(vec![(3, Wire::Fixed64(1))]),
            },
            Case {
                name: "fixed32",
                input: &[0x25, 2, 0, 0, 0],
                want: Ok(vec![(4, Wire::Fixed32(2))]),
            },
            Case {
                name: "length past end",
                input: &[0x12, 0x05, b'h'],
                want: Err("truncated"),
            },
            Case {
                name: "varint cut",
                input: &[0x08, 0x96],
                want: Err("truncated"),
            },
            Case {
                name: "varint too long",
                input: &[0x08, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01],
                want: Err("varint"),
            },
            Case {
                name: "group wire type",
                input: &[0x0b],
                want: Err("wire type 3"),
            },
            Case {
                name: "tag zero",
                input: &[0x00, 0x01],
                want: Err("field number 0"),
            },
        ];
        for case in cases {
            let mut reader = Reader::new(case.input);
            let mut got = Vec::new();
            let result = loop {
                match reader.next_field() {
                    Ok(Some(field)) => got.push(field),
                    Ok(None) => break Ok(got),
                    Err(e) => break Err(e.to_string()),
                }
            };
            match (&result, &case.want) {
                (Ok(got), Ok(want)) => assert_eq!(got, want, "{}", case.name),
                (Err(got), Err(want)) => assert!(got.contains(want), "{}: {got}", case.name),
                _ => panic!("{}: got {result:?}, want {:?}", case.name, case.want),
            }
        }
    }
}
