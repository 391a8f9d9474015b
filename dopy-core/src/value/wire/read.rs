//! A hand-written reader of the wire form, for the places that hold the bytes themselves.
//!
//! [`super::deserialize`] reads a wire value through serde's visitors, one enum access, variant
//! seed and element seed per value; on a result of many small values that machinery costs
//! several times the work of the bytes. This reader takes the same bytes straight from a slice
//! and accepts exactly what the serde path accepts (postcard's varint, boolean, option, string
//! and char rules; the same nesting limit and pre-allocation caps), which
//! `dopy-core/tests/props.rs` checks on arbitrary input.

use postcard::Error;

use super::{max_depth, Tag, TooDeep, MAX_PREALLOC_BYTES};
use crate::object::DynObject;
use crate::value::{CompactString, Value};

/// Reads one wire value from the start of `input`; returns it and the bytes after it.
///
/// References come out unresolved (their index in the message's table), as from
/// [`super::deserialize`]. The nesting limit is the thread's ([`max_depth`]).
pub(crate) fn take(input: &[u8]) -> Result<(Value, &[u8]), Error> {
    let mut reader = Reader { input, limit: max_depth() };
    let value = reader.value(1)?;
    Ok((value, reader.input))
}

/// A cursor over postcard bytes: the wire form's values, and (for the message fast paths) the
/// plain fields around them.
pub(crate) struct Reader<'a> {
    input: &'a [u8],
    /// The nesting limit of values read.
    limit: usize,
}

impl<'a> Reader<'a> {
    /// A reader of `input` for fields other than wire values (it refuses any nested value).
    pub(crate) fn plain(input: &'a [u8]) -> Self {
        Reader { input, limit: 0 }
    }

    /// What is left to read.
    pub(crate) fn rest(&self) -> &'a [u8] {
        self.input
    }

    /// One byte.
    #[inline]
    pub(crate) fn byte(&mut self) -> Result<u8, Error> {
        let (&b, rest) = self.input.split_first().ok_or(Error::DeserializeUnexpectedEnd)?;
        self.input = rest;
        Ok(b)
    }

    /// The next `n` bytes.
    #[inline]
    pub(crate) fn bytes(&mut self, n: usize) -> Result<&'a [u8], Error> {
        if n > self.input.len() {
            return Err(Error::DeserializeUnexpectedEnd);
        }
        let (taken, rest) = self.input.split_at(n);
        self.input = rest;
        Ok(taken)
    }

    /// A varint of at most `bits` bits, by postcard's rules: at most `ceil(bits / 7)` bytes,
    /// and no bits beyond `bits` in the last possible one.
    #[inline]
    pub(crate) fn varint(&mut self, bits: u32) -> Result<u128, Error> {
        let max_bytes = bits.div_ceil(7);
        let max_last = (1u8 << (bits % 7)) - 1;
        let mut out = 0u128;
        for i in 0..max_bytes {
            let b = self.byte()?;
            out |= u128::from(b & 0x7f) << (7 * i);
            if b & 0x80 == 0 {
                if i == max_bytes - 1 && b > max_last {
                    return Err(Error::DeserializeBadVarint);
                }
                return Ok(out);
            }
        }
        Err(Error::DeserializeBadVarint)
    }

    /// A varint of at most `bits <= 64` bits, by the rules of [`varint`](Reader::varint), in
    /// 64-bit arithmetic and without a call per byte: the hot fields of messages (ids, lengths,
    /// flags) are read with it.
    #[inline(always)]
    pub(crate) fn varint64(&mut self, bits: u32) -> Result<u64, Error> {
        debug_assert!(bits <= 64);
        let max_bytes = bits.div_ceil(7) as usize;
        let max_last = (1u8 << (bits % 7)) - 1;
        let input = self.input;
        let available = input.len().min(max_bytes);
        let mut out = 0u64;
        let mut shift = 0;
        for (i, &b) in input[..available].iter().enumerate() {
            // Bits shifted beyond 64 are lost only in a last byte refused below.
            out |= u64::from(b & 0x7f) << shift;
            if b < 0x80 {
                if i == max_bytes - 1 && b > max_last {
                    return Err(Error::DeserializeBadVarint);
                }
                self.input = &input[i + 1..];
                return Ok(out);
            }
            shift += 7;
        }
        Err(if input.len() < max_bytes { Error::DeserializeUnexpectedEnd } else { Error::DeserializeBadVarint })
    }

    /// A `u64` (a varint).
    #[inline]
    pub(crate) fn u64(&mut self) -> Result<u64, Error> {
        self.varint64(64)
    }

    /// A length (a `usize` varint).
    #[inline]
    pub(crate) fn len(&mut self) -> Result<usize, Error> {
        self.u64().map(|v| v as usize)
    }

    /// A wire value at nesting level 1 (the thread's [`max_depth`] applies).
    pub(crate) fn wire_value(&mut self) -> Result<Value, Error> {
        let (value, rest) = take(self.input)?;
        self.input = rest;
        Ok(value)
    }

    /// A sequence of wire values at level 1, as [`super::seq`] reads it (pre-allocating within
    /// the same cap).
    pub(crate) fn wire_values(&mut self) -> Result<Vec<Value>, Error> {
        let len = self.len()?;
        let mut values = Vec::with_capacity(len.min(MAX_PREALLOC_BYTES / size_of::<Value>()));
        for _ in 0..len {
            values.push(self.wire_value()?);
        }
        Ok(values)
    }

    /// A sequence of (name, wire value) pairs, as [`super::named`] reads it.
    pub(crate) fn named_wire_values(&mut self) -> Result<Vec<(String, Value)>, Error> {
        let len = self.len()?;
        let mut entries = Vec::with_capacity(len.min(MAX_PREALLOC_BYTES / size_of::<(String, Value)>()));
        for _ in 0..len {
            let name = self.str()?.to_owned();
            entries.push((name, self.wire_value()?));
        }
        Ok(entries)
    }

    /// A string (a length, then UTF-8), borrowed.
    #[inline]
    pub(crate) fn str(&mut self) -> Result<&'a str, Error> {
        let len = self.len()?;
        std::str::from_utf8(self.bytes(len)?).map_err(|_| Error::DeserializeBadUtf8)
    }

    fn string(&mut self) -> Result<CompactString, Error> {
        self.str().map(CompactString::new)
    }

    fn value(&mut self, depth: usize) -> Result<Value, Error> {
        if depth > self.limit {
            TooDeep::noted();
            return Err(Error::SerdeDeCustom);
        }
        let tag = self.varint(32)?;
        let tag = u64::try_from(tag).ok().and_then(Tag::from_index).ok_or(Error::SerdeDeCustom)?;
        let inner = depth + 1;
        Ok(match tag {
            Tag::Unit => Value::Unit,
            Tag::Bool => match self.byte()? {
                0 => Value::Bool(false),
                1 => Value::Bool(true),
                _ => return Err(Error::DeserializeBadBool),
            },
            Tag::Int => {
                let v = self.u64()?;
                Value::Int((v >> 1) as i64 ^ -((v & 1) as i64))
            }
            Tag::UInt => Value::UInt(self.u64()?),
            Tag::Int128 => {
                let v = self.varint(128)?;
                Value::Int128((v >> 1) as i128 ^ -((v & 1) as i128))
            }
            Tag::UInt128 => Value::UInt128(self.varint(128)?),
            Tag::Float => {
                let raw: [u8; 8] = self.bytes(8)?.try_into().map_err(|_| Error::DeserializeUnexpectedEnd)?;
                Value::Float(f64::from_le_bytes(raw))
            }
            Tag::Char => {
                let len = self.len()?;
                if len > 4 {
                    return Err(Error::DeserializeBadChar);
                }
                let s = std::str::from_utf8(self.bytes(len)?).map_err(|_| Error::DeserializeBadChar)?;
                let mut chars = s.chars();
                match (chars.next(), chars.next()) {
                    (Some(c), None) => Value::Char(c),
                    _ => return Err(Error::DeserializeBadChar),
                }
            }
            Tag::String => Value::String(self.string()?),
            Tag::Bytes => {
                let len = self.len()?;
                Value::Bytes(self.bytes(len)?.to_vec())
            }
            Tag::Option => match self.byte()? {
                0 => Value::Option(None),
                1 => Value::Option(Some(Box::new(self.value(inner)?))),
                _ => return Err(Error::DeserializeBadOption),
            },
            Tag::Seq => {
                let len = self.len()?;
                let mut items = Vec::with_capacity(len.min(MAX_PREALLOC_BYTES / size_of::<Value>()));
                for _ in 0..len {
                    items.push(self.value(inner)?);
                }
                Value::Seq(items)
            }
            Tag::Map => {
                let len = self.len()?;
                let mut entries = Vec::with_capacity(len.min(MAX_PREALLOC_BYTES / size_of::<(Value, Value)>()));
                for _ in 0..len {
                    let key = self.value(inner)?;
                    entries.push((key, self.value(inner)?));
                }
                Value::Map(entries)
            }
            Tag::Variant => {
                let name = self.string()?;
                Value::Variant(name, Box::new(self.value(inner)?))
            }
            Tag::Ref => Value::Ref(DynObject::unresolved(self.varint(32)? as u32)),
        })
    }
}
