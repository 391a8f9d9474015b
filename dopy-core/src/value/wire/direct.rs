//! A typed value written straight into the wire form of the [`Value`] it would become.
//!
//! A server answering a dynamic caller used to convert the result into a `Value` tree
//! ([`to_value`](crate::value::to_value): an allocation per string, per field name, per
//! container) and then walk the tree twice to encode it. [`to_wire`] writes the same bytes in
//! one pass from the typed value, allocating nothing but its output buffer.

mod compound;
#[cfg(test)]
mod tests;

use std::cell::Cell;

use bytes::Bytes;
use serde::ser::{self, Serialize};

use super::depth::{with_max_depth, DEPTH_CEILING};
use super::tag::Tag;
use super::varint::push_varint;
use crate::handle::DynObject;
use crate::value::{Error, Value};
use compound::Compound;

/// A dynamic value already in its wire form: exactly the bytes the [`Value`] would be encoded
/// to (see [`super`]), made by [`to_wire`] without building the `Value`.
///
/// This is how a server's result travels to a dynamic caller
/// ([`Payload::Wire`](crate::codec::Payload::Wire)); a received dynamic payload is always
/// decoded into a [`Value`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WireValue {
    bytes: Bytes,
    depth: usize,
}

impl WireValue {
    /// The encoded value.
    pub fn bytes(&self) -> &Bytes {
        &self.bytes
    }

    /// The nesting of the value: the level of its deepest part (the outermost value is at
    /// level 1), to be checked against the receiver's limit (see [`super::max_depth`]).
    pub fn depth(&self) -> usize {
        self.depth
    }

    /// Decodes the value. References in it are looked up in the reference table of the decode
    /// in progress (a call's result table); outside one they come out dangling.
    ///
    /// # Errors
    ///
    /// Only if the bytes were not made by [`to_wire`].
    ///
    /// # Examples
    ///
    /// ```
    /// use dopy_core::value::{to_value, wire};
    ///
    /// let (wire, refs) = wire::to_wire(&(1u8, "one")).unwrap();
    /// assert!(refs.is_empty());
    /// assert_eq!(wire.decode().unwrap(), to_value(&(1u8, "one")).unwrap());
    /// ```
    pub fn decode(&self) -> Result<Value, Error> {
        // Made here, so within the ceiling whatever the receiving node's limit.
        let (decoded, _) = with_max_depth(DEPTH_CEILING, || match super::take(&self.bytes) {
            Ok((value, [])) => Ok(value),
            Ok(_) => Err(Error::new("malformed wire value: bytes after the value")),
            Err(e) => Err(Error::new(format!("malformed wire value: {e}"))),
        });
        let mut value = decoded?;
        crate::value::refs::resolve_with(&mut value, &crate::value::refs::in_get);
        Ok(value)
    }
}

/// Writes any `T: Serialize` in the wire form of [`to_value`](crate::value::to_value)`(value)`,
/// without building the [`Value`]; returns it with the references it holds, in the order of
/// their indices (the table a message must carry with it).
///
/// The bytes are exactly those of `to_value` followed by [`super::serialize`]: same mapping
/// (structs as maps with string keys, integers widened, newtype structs transparent, ...) and
/// human-readable, as `to_value` is.
///
/// # Errors
///
/// As `to_value`: a failing `Serialize` implementation; also a value nested deeper than
/// [`DEPTH_CEILING`] levels.
///
/// # Examples
///
/// ```
/// use dopy_core::value::{to_value, wire};
///
/// #[derive(serde::Serialize)]
/// struct Point { x: i32, y: i32 }
///
/// let (direct, _) = wire::to_wire(&Point { x: 1, y: -1 }).unwrap();
/// let via_value = postcard::to_allocvec(&wire::Wire(&to_value(&Point { x: 1, y: -1 }).unwrap())).unwrap();
/// assert_eq!(&direct.bytes()[..], &via_value[..]);
/// assert_eq!(direct.depth(), 2);
/// ```
pub fn to_wire<T: ?Sized + Serialize>(value: &T) -> Result<(WireValue, Vec<DynObject>), Error> {
    let guess = LAST_LEN.with(Cell::get).clamp(MIN_CAPACITY, MAX_GUESS);
    let (written, refs) = crate::value::refs::encoding(Vec::new(), || {
        // A small result is written into this thread's spare buffer (empty if a nested
        // `to_wire` has it), then copied into the arena: no allocation of its own.
        let mut buf = if guess <= SMALL { SPARE.with(Cell::take) } else { Vec::new() };
        buf.reserve(guess);
        let mut out = Out { buf, deepest: 0 };
        value.serialize(At { out: &mut out, depth: 1 }).map(|()| out)
    });
    let Out { mut buf, deepest } = written?;
    LAST_LEN.with(|l| l.set(buf.len()));
    let bytes = if buf.len() <= SMALL {
        let copied: Result<_, std::convert::Infallible> = crate::arena::encode_sized(buf.len(), |arena| {
            arena.extend_from_slice(&buf);
            Ok(())
        });
        buf.clear();
        if buf.capacity() <= 4 * SMALL {
            SPARE.with(|spare| spare.set(buf));
        }
        copied.unwrap_or_else(|never| match never {})
    } else {
        // Keeps no more than the value (a smaller one than the last, or one grown past its
        // guess), and lets `Bytes` take the buffer without an allocation of its own.
        buf.shrink_to_fit();
        Bytes::from(buf)
    };
    Ok((WireValue { bytes, depth: deepest }, refs))
}

/// The smallest buffer [`to_wire`] starts with.
const MIN_CAPACITY: usize = 128;

/// The largest buffer [`to_wire`] allocates on a guess (more grows as it is written).
const MAX_GUESS: usize = 64 * 1024;

/// Results up to this size are written into the thread's spare buffer and copied into the
/// arena of small encodings (`message::encode_sized`).
const SMALL: usize = crate::arena::ARENA_MAX;

thread_local! {
    /// The length of the last value [`to_wire`] wrote on this thread: the capacity the next
    /// one starts with. A method's results tend to have one size, and a buffer grown by
    /// doubling from a small one is allocated and copied about ten times for 10 KiB (then
    /// `Bytes` allocates once more for a buffer not full).
    static LAST_LEN: Cell<usize> = const { Cell::new(MIN_CAPACITY) };

    /// The buffer small results are written into, kept between calls.
    static SPARE: Cell<Vec<u8>> = const { Cell::new(Vec::new()) };
}

/// The output buffer, and the deepest level written so far.
struct Out {
    buf: Vec<u8>,
    deepest: usize,
}

impl Out {
    /// Starts a value at level `depth` with its tag.
    #[inline]
    fn start(&mut self, tag: Tag, depth: usize) -> Result<(), Error> {
        if depth > DEPTH_CEILING {
            return Err(Error::new(format!("value nesting exceeds {DEPTH_CEILING} levels")));
        }
        self.deepest = self.deepest.max(depth);
        self.buf.push(tag as u8);
        Ok(())
    }

    #[inline]
    fn varint(&mut self, v: u128) {
        push_varint(&mut self.buf, v);
    }

    #[inline(always)]
    fn str(&mut self, s: &str) {
        self.bytes(s.as_bytes());
    }

    #[inline(always)]
    fn bytes(&mut self, b: &[u8]) {
        self.varint(b.len() as u128);
        self.buf.extend_from_slice(b);
    }

    /// Starts a `Variant` named `name` at level `depth`; its payload is at `depth + 1`.
    fn variant(&mut self, name: &str, depth: usize) -> Result<(), Error> {
        self.start(Tag::Variant, depth)?;
        self.str(name);
        Ok(())
    }
}

/// The serializer: a value at nesting level `depth`.
struct At<'a> {
    out: &'a mut Out,
    depth: usize,
}

impl<'a> At<'a> {
    /// An integer of the tag's width (`Int` or `Int128`), zigzag-encoded as postcard does.
    fn int(self, v: i128, tag: Tag) -> Result<(), Error> {
        self.out.start(tag, self.depth)?;
        self.out.varint(((v << 1) ^ (v >> 127)) as u128);
        Ok(())
    }

    fn uint(self, v: u128, tag: Tag) -> Result<(), Error> {
        self.out.start(tag, self.depth)?;
        self.out.varint(v);
        Ok(())
    }

    /// A sequence or map whose elements are at `depth` (its own level plus one).
    fn compound(self, len: Option<usize>, depth: usize) -> Compound<'a> {
        let len_at = self.out.buf.len();
        if let Some(n) = len {
            self.out.varint(n as u128);
        }
        Compound { out: self.out, depth, len_at, announced: len, count: 0, key_pending: false }
    }
}

/// `Serializer` methods of integer types, each widened to the 128-bit writer `$write` with the
/// wire tag `$tag`.
macro_rules! integers {
    ($($method:ident($ty:ty) => $write:ident($tag:expr)),* $(,)?) => {$(
        fn $method(self, v: $ty) -> Result<(), Error> {
            self.$write(v.into(), $tag)
        }
    )*};
}

impl At<'_> {
    /// A newtype struct of a reserved name: a reference, or a `Value::Variant` in its
    /// data-model form. Out of the common path (any other newtype struct is transparent).
    #[inline(never)]
    fn marked<T: ?Sized + Serialize>(self, name: &'static str, value: &T) -> Result<(), Error> {
        if name == crate::value::ser::VARIANT_NAME {
            // Written as the variant it is.
            return match crate::value::ser::variant_from_data_model(crate::value::ser::plain(value)?)? {
                Value::Variant(name, payload) => {
                    self.out.variant(&name, self.depth)?;
                    payload.serialize(At { out: self.out, depth: self.depth + 1 })
                }
                _ => Err(Error::new("malformed variant")),
            };
        }
        // A reference wrote its index in the table `to_wire` set up, as `to_value` expects it.
        let index = match crate::value::ser::plain(value)? {
            Value::UInt(i) => u32::try_from(i).ok().filter(|&i| crate::value::refs::out_get(i).is_some()),
            _ => None,
        };
        let index = index.ok_or_else(|| Error::new("malformed object reference"))?;
        self.uint(index.into(), Tag::Ref)
    }
}

impl<'a> ser::Serializer for At<'a> {
    type Ok = ();
    type Error = Error;
    type SerializeSeq = Compound<'a>;
    type SerializeTuple = Compound<'a>;
    type SerializeTupleStruct = Compound<'a>;
    type SerializeTupleVariant = Compound<'a>;
    type SerializeMap = Compound<'a>;
    type SerializeStruct = Compound<'a>;
    type SerializeStructVariant = Compound<'a>;

    fn serialize_bool(self, v: bool) -> Result<(), Error> {
        self.out.start(Tag::Bool, self.depth)?;
        self.out.buf.push(u8::from(v));
        Ok(())
    }

    integers! {
        serialize_i8(i8) => int(Tag::Int),
        serialize_i16(i16) => int(Tag::Int),
        serialize_i32(i32) => int(Tag::Int),
        serialize_i64(i64) => int(Tag::Int),
        // `to_value` keeps an `i128` an `Int128` whatever its size.
        serialize_i128(i128) => int(Tag::Int128),
        serialize_u8(u8) => uint(Tag::UInt),
        serialize_u16(u16) => uint(Tag::UInt),
        serialize_u32(u32) => uint(Tag::UInt),
        serialize_u64(u64) => uint(Tag::UInt),
    }

    fn serialize_u128(self, v: u128) -> Result<(), Error> {
        self.uint(v, Tag::UInt128)
    }

    fn serialize_f32(self, v: f32) -> Result<(), Error> {
        self.serialize_f64(v.into())
    }

    fn serialize_f64(self, v: f64) -> Result<(), Error> {
        self.out.start(Tag::Float, self.depth)?;
        self.out.buf.extend_from_slice(&v.to_le_bytes());
        Ok(())
    }

    fn serialize_char(self, v: char) -> Result<(), Error> {
        self.out.start(Tag::Char, self.depth)?;
        self.out.str(v.encode_utf8(&mut [0; 4]));
        Ok(())
    }

    fn serialize_str(self, v: &str) -> Result<(), Error> {
        self.out.start(Tag::String, self.depth)?;
        self.out.str(v);
        Ok(())
    }

    fn serialize_bytes(self, v: &[u8]) -> Result<(), Error> {
        self.out.start(Tag::Bytes, self.depth)?;
        self.out.bytes(v);
        Ok(())
    }

    fn serialize_none(self) -> Result<(), Error> {
        self.out.start(Tag::Option, self.depth)?;
        self.out.buf.push(0);
        Ok(())
    }

    fn serialize_some<T: ?Sized + Serialize>(self, value: &T) -> Result<(), Error> {
        self.out.start(Tag::Option, self.depth)?;
        self.out.buf.push(1);
        value.serialize(At { out: self.out, depth: self.depth + 1 })
    }

    fn serialize_unit(self) -> Result<(), Error> {
        self.out.start(Tag::Unit, self.depth)
    }

    fn serialize_unit_struct(self, _name: &'static str) -> Result<(), Error> {
        self.serialize_unit()
    }

    fn serialize_unit_variant(self, _name: &'static str, _index: u32, variant: &'static str) -> Result<(), Error> {
        self.out.variant(variant, self.depth)?;
        self.out.start(Tag::Unit, self.depth + 1)
    }

    fn serialize_newtype_struct<T: ?Sized + Serialize>(self, name: &'static str, value: &T) -> Result<(), Error> {
        if name == crate::value::refs::REF_NAME || name == crate::value::ser::VARIANT_NAME {
            return self.marked(name, value);
        }
        value.serialize(self)
    }

    fn serialize_newtype_variant<T: ?Sized + Serialize>(
        self,
        _name: &'static str,
        _index: u32,
        variant: &'static str,
        value: &T,
    ) -> Result<(), Error> {
        self.out.variant(variant, self.depth)?;
        value.serialize(At { out: self.out, depth: self.depth + 1 })
    }

    fn serialize_seq(self, len: Option<usize>) -> Result<Compound<'a>, Error> {
        self.out.start(Tag::Seq, self.depth)?;
        let depth = self.depth + 1;
        Ok(self.compound(len, depth))
    }

    fn serialize_tuple(self, len: usize) -> Result<Compound<'a>, Error> {
        self.serialize_seq(Some(len))
    }

    fn serialize_tuple_struct(self, _name: &'static str, len: usize) -> Result<Compound<'a>, Error> {
        self.serialize_seq(Some(len))
    }

    fn serialize_tuple_variant(
        self,
        _name: &'static str,
        _index: u32,
        variant: &'static str,
        len: usize,
    ) -> Result<Compound<'a>, Error> {
        self.out.variant(variant, self.depth)?;
        At { out: self.out, depth: self.depth + 1 }.serialize_seq(Some(len))
    }

    fn serialize_map(self, len: Option<usize>) -> Result<Compound<'a>, Error> {
        self.out.start(Tag::Map, self.depth)?;
        let depth = self.depth + 1;
        Ok(self.compound(len, depth))
    }

    fn serialize_struct(self, _name: &'static str, len: usize) -> Result<Compound<'a>, Error> {
        self.serialize_map(Some(len))
    }

    fn serialize_struct_variant(
        self,
        _name: &'static str,
        _index: u32,
        variant: &'static str,
        len: usize,
    ) -> Result<Compound<'a>, Error> {
        self.out.variant(variant, self.depth)?;
        At { out: self.out, depth: self.depth + 1 }.serialize_map(Some(len))
    }

    fn is_human_readable(&self) -> bool {
        // As `to_value`'s serializer: dynamic callers see textual forms.
        true
    }
}
