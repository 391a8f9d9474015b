//! A hand-written reader of the wire form, for the places that hold the bytes themselves.
//!
//! [`super::deserialize`] reads a wire value through serde's visitors, one enum access, variant
//! seed and element seed per value; on a result of many small values that machinery costs
//! several times the work of the bytes. This reader takes the same bytes straight from a slice
//! and accepts exactly what the serde path accepts (postcard's varint, boolean, option, string
//! and char rules; the same nesting limit and pre-allocation caps), which
//! `dopy-core/tests/props.rs` checks on arbitrary input.

use postcard::Error;

use super::budget::{budget_left, charge, set_budget_left, INLINE_STRING, MAX_PREALLOC_BYTES};
use super::depth::{max_depth, TooDeep};
use super::tag::Tag;
use crate::handle::DynObject;
use crate::value::{CompactString, Value};

/// Reads one wire value from the start of `input`; returns it and the bytes after it.
///
/// References come out unresolved (their index in the message's table), as from
/// [`super::deserialize`]. The nesting limit is the thread's ([`max_depth`]).
pub(crate) fn take(input: &[u8]) -> Result<(Value, &[u8]), Error> {
    let mut reader = Reader { input, limit: max_depth(), keys: [None; KEYS], budget: budget_left() };
    let value = reader.value(1);
    // Given back whether the value was read or not: the next value of the message is charged
    // what this one left.
    set_budget_left(reader.budget);
    Ok((value?, reader.input))
}

/// A cursor over postcard bytes: the wire form's values, and (for the message fast paths) the
/// plain fields around them.
pub(crate) struct Reader<'a> {
    input: &'a [u8],
    /// The nesting limit of values read.
    limit: usize,
    /// The short string keys of the last maps read, by their place in the map: the field
    /// names of a struct, which every struct of a sequence repeats (see
    /// [`key_into`](Reader::key_into)).
    /// (`None`, all zeros, rather than `""`: every reader clears them, and most never read a
    /// map.)
    keys: [Option<&'a str>; KEYS],
    /// What the values read may still take in memory (see [`super::with_budget`]), counted here
    /// rather than in the thread's budget on every element.
    budget: usize,
}

/// The places of map keys [`Reader`] remembers: the first fields of a struct.
const KEYS: usize = 8;

/// The longest key [`Reader`] remembers: one kept inline by `CompactString`, built without
/// an allocation.
const KEY_LEN: usize = 24;

impl<'a> Reader<'a> {
    /// A reader of `input` for fields other than wire values (it refuses any nested value).
    pub(crate) fn plain(input: &'a [u8]) -> Self {
        Reader { input, limit: 0, keys: [None; KEYS], budget: usize::MAX }
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
        // Most tags and lengths take one byte.
        if let Some(&b) = self.input.first() {
            if b < 0x80 && (max_bytes > 1 || b <= max_last) {
                self.input = &self.input[1..];
                return Ok(u128::from(b));
            }
        }
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
        // Most fields (lengths, flags, small ids) take one byte.
        if let Some(&b) = input.first() {
            if b < 0x80 && (max_bytes > 1 || b <= max_last) {
                self.input = &input[1..];
                return Ok(u64::from(b));
            }
        }
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

    #[inline(always)]
    fn string(&mut self) -> Result<CompactString, Error> {
        let text = self.str()?;
        if text.len() > INLINE_STRING {
            self.spend(text.len())?;
        }
        Ok(CompactString::new(text))
    }

    /// Takes `bytes` from the budget of the values read.
    #[inline(always)]
    fn spend(&mut self, bytes: usize) -> Result<(), Error> {
        match self.budget.checked_sub(bytes) {
            Some(left) => {
                self.budget = left;
                Ok(())
            }
            None => Err(over_budget()),
        }
    }

    /// A value at level `depth`.
    #[inline]
    fn value(&mut self, depth: usize) -> Result<Value, Error> {
        let mut value = Value::Unit;
        self.value_into(depth, &mut value)?;
        Ok(value)
    }

    /// A value at level `depth`, written into `slot` (which holds [`Value::Unit`]).
    ///
    /// The leaves that results are mostly made of (strings, integers, floats) are read here, inline
    /// in the loops of the containers that hold them, and written in place: no call per leaf,
    /// no `Value` returned and moved into the container (a `Value` is 48 bytes, a map entry
    /// 96). Any other value is read by [`node`](Reader::node), which applies the same rules to
    /// every tag.
    #[inline(always)]
    fn value_into(&mut self, depth: usize, slot: &mut Value) -> Result<(), Error> {
        if depth > self.limit {
            return Err(too_deep());
        }
        // A tag below 0x80 is a one-byte varint: the tag itself.
        if let Some((&tag, rest)) = self.input.split_first() {
            if tag == Tag::String as u8 {
                self.input = rest;
                fill(slot, Value::String(self.string()?));
                return Ok(());
            }
            if tag == Tag::UInt as u8 {
                self.input = rest;
                fill(slot, Value::UInt(self.u64()?));
                return Ok(());
            }
            if tag == Tag::Float as u8 {
                self.input = rest;
                fill(slot, self.float()?);
                return Ok(());
            }
            if tag == Tag::Int as u8 {
                self.input = rest;
                let v = self.u64()?;
                fill(slot, Value::Int((v >> 1) as i64 ^ -((v & 1) as i64)));
                return Ok(());
            }
        }
        fill(slot, self.node(depth)?);
        Ok(())
    }

    /// A map key at level `depth`, the entry `place` of its map, written into `slot` as by
    /// [`value_into`](Reader::value_into).
    ///
    /// A string key of the same bytes as the last one read at this place is not validated as
    /// UTF-8 again: a sequence of structs repeats the field names in every element. A short
    /// string key read here is remembered for the next map; other keys are read by
    /// `value_into`.
    #[inline]
    fn key_into(&mut self, depth: usize, place: usize, slot: &mut Value) -> Result<(), Error> {
        if depth > self.limit {
            return Err(too_deep());
        }
        if let (Some(&known), [tag, rest @ ..]) = (self.keys.get(place), self.input) {
            if *tag == Tag::String as u8 {
                let known = known.unwrap_or("");
                let n = known.len();
                let text = match rest {
                    // The same length (a one-byte varint: the remembered key is short) and bytes.
                    [len, bytes @ ..] if usize::from(*len) == n && bytes.get(..n) == Some(known.as_bytes()) => {
                        self.input = &bytes[n..];
                        known
                    }
                    _ => {
                        self.input = rest;
                        let text = self.str()?;
                        if text.len() <= KEY_LEN {
                            self.keys[place] = Some(text);
                        }
                        text
                    }
                };
                fill(slot, Value::String(CompactString::new(text)));
                return Ok(());
            }
        }
        self.value_into(depth, slot)
    }

    /// The eight bytes of a `Float`, little-endian.
    #[inline]
    fn float(&mut self) -> Result<Value, Error> {
        let raw: [u8; 8] = self.bytes(8)?.try_into().map_err(|_| Error::DeserializeUnexpectedEnd)?;
        Ok(Value::Float(f64::from_le_bytes(raw)))
    }

    /// The `len` elements of a sequence or map (`len` read from the input), each read into
    /// its place by `read`.
    ///
    /// The vector is pre-allocated within [`MAX_PREALLOC_BYTES`] and grows by doubling, as
    /// pushing would make it grow; its new places are filled with units a stretch at a time
    /// (all of those its capacity holds) and then read into, so that no element is moved.
    #[inline(always)]
    fn elements<T: Default>(
        &mut self,
        len: usize,
        mut read: impl FnMut(&mut Self, &mut T) -> Result<(), Error>,
    ) -> Result<Vec<T>, Error> {
        let mut items = Vec::with_capacity(len.min(MAX_PREALLOC_BYTES / size_of::<T>()));
        self.spend(items.capacity() * size_of::<T>())?;
        let mut start = 0;
        while start < len {
            // Up to the capacity, or twice as many as read so far once it is full.
            let end = len.min(items.capacity().max(2 * start).max(start + 1));
            if end > items.capacity() {
                // What the vector grows by (at least doubling).
                self.spend((end.max(2 * items.capacity()) - items.capacity()) * size_of::<T>())?;
            }
            items.resize_with(end, T::default);
            for slot in &mut items[start..] {
                read(self, slot)?;
            }
            start = end;
        }
        Ok(items)
    }

    /// A value at level `depth` (within the limit), whatever its tag.
    #[inline(never)]
    fn node(&mut self, depth: usize) -> Result<Value, Error> {
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
            Tag::Float => self.float()?,
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
                let bytes = self.bytes(len)?;
                self.spend(len)?;
                Value::Bytes(bytes.to_vec())
            }
            Tag::Option => match self.byte()? {
                0 => Value::Option(None),
                1 => {
                    self.spend(size_of::<Value>())?;
                    Value::Option(Some(Box::new(self.value(inner)?)))
                }
                _ => return Err(Error::DeserializeBadOption),
            },
            Tag::Seq => {
                let len = self.len()?;
                Value::Seq(self.elements(len, |r, slot| r.value_into(inner, slot))?)
            }
            Tag::Map => {
                let len = self.len()?;
                let mut place = 0;
                Value::Map(self.elements(len, |r, (key, value)| {
                    r.key_into(inner, place, key)?;
                    place += 1;
                    r.value_into(inner, value)
                })?)
            }
            Tag::Variant => {
                self.spend(size_of::<Value>())?;
                let name = self.string()?;
                Value::Variant(name, Box::new(self.value(inner)?))
            }
            Tag::Ref => Value::Ref(DynObject::unresolved(self.varint(32)? as u32)),
        })
    }
}

/// The error for values whose decoding would pass the budget, noted for [`super::with_budget`].
#[cold]
fn over_budget() -> Error {
    charge(usize::MAX);
    Error::SerdeDeCustom
}

/// The error for a value nested deeper than the limit, noted for [`super::with_max_depth`].
#[cold]
fn too_deep() -> Error {
    TooDeep::noted();
    Error::SerdeDeCustom
}

/// Puts `value` in `slot`, which holds a [`Value::Unit`]: there is nothing to drop, and the
/// compiler, which cannot tell, would otherwise call the drop of a `Value` there.
#[inline(always)]
fn fill(slot: &mut Value, value: Value) {
    let old = std::mem::replace(slot, value);
    debug_assert!(old.is_unit());
    std::mem::forget(old);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::value::wire::{with_max_depth, Wire, DEPTH_CEILING};

    /// The hand-written reader at the ceiling fits in a 2 MiB stack (a tokio worker's), debug
    /// build included, every way a value nests.
    #[test]
    fn depth_ceiling_fits_the_stack() {
        let run = || {
            let levels = 1..DEPTH_CEILING;
            let deepest: [Value; 4] = [
                levels.clone().fold(Value::Unit, |v, _| Value::Option(Some(Box::new(v)))),
                levels.clone().fold(Value::Unit, |v, _| Value::Seq(vec![v])),
                levels.clone().fold(Value::Unit, |v, _| Value::Map(vec![(Value::Unit, v)])),
                levels.fold(Value::Unit, |v, _| Value::Variant("v".into(), Box::new(v))),
            ];
            for v in deepest {
                let bytes = with_max_depth(DEPTH_CEILING, || postcard::to_allocvec(&Wire(&v))).0.unwrap();
                let (back, exceeded) = with_max_depth(DEPTH_CEILING, || take(&bytes).map(|(v, _)| v));
                assert_eq!(back.unwrap(), v);
                assert!(!exceeded);
            }
        };
        std::thread::Builder::new().stack_size(2 << 20).spawn(run).unwrap().join().unwrap();
    }

    /// Sequences and maps longer than their pre-allocation are read whole, in order, and a
    /// truncated one is an error.
    #[test]
    fn long_sequences_and_maps() {
        for n in [0, 1, 50, 51, 52, 200, 1000] {
            let seq = Value::Seq((0..n).map(|i| Value::UInt(i as u64)).collect());
            let map =
                Value::Map((0..n).map(|i| (Value::String(i.to_string().into()), Value::Float(i as f64))).collect());
            for v in [seq, map] {
                let bytes = postcard::to_allocvec(&Wire(&v)).unwrap();
                assert_eq!(take(&bytes).unwrap(), (v, &[][..]));
                if n > 0 {
                    assert!(take(&bytes[..bytes.len() - 1]).is_err());
                }
            }
        }
    }
}
