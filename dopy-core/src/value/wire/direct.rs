//! A typed value written straight into the wire form of the [`Value`] it would become.
//!
//! A server answering a dynamic caller used to convert the result into a `Value` tree
//! ([`to_value`](crate::value::to_value): an allocation per string, per field name, per
//! container) and then walk the tree twice to encode it. [`to_wire`] writes the same bytes in
//! one pass from the typed value, allocating nothing but its output buffer.

use std::cell::Cell;

use bytes::Bytes;
use serde::ser::{self, Serialize};

use super::{push_varint, varint_len, with_max_depth, Tag, DEPTH_CEILING};
use crate::handle::DynObject;
use crate::value::{Error, Value};

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

/// The elements of a sequence or the entries of a map, at level `depth`, counted so that the
/// length written before them can be corrected when the announced one (a hint) was wrong or
/// missing.
struct Compound<'a> {
    out: &'a mut Out,
    depth: usize,
    /// Where the length is (or goes).
    len_at: usize,
    announced: Option<usize>,
    count: usize,
    /// A map key was written, its value not yet.
    key_pending: bool,
}

impl Compound<'_> {
    fn element<T: ?Sized + Serialize>(&mut self, value: &T) -> Result<(), Error> {
        value.serialize(At { out: self.out, depth: self.depth })?;
        self.count += 1;
        Ok(())
    }

    // Always inlined (with `serialize_field`) into the struct's `Serialize`: its field names are
    // constants there, and their copies a few moves instead of a call of `memcpy` each.
    #[inline(always)]
    fn field<T: ?Sized + Serialize>(&mut self, key: &'static str, value: &T) -> Result<(), Error> {
        self.out.start(Tag::String, self.depth)?;
        self.out.str(key);
        self.element(value)
    }

    fn end(self) -> Result<(), Error> {
        if self.key_pending {
            return Err(Error::new("map key serialized without its value"));
        }
        if self.announced == Some(self.count) {
            return Ok(());
        }
        // The hint was wrong or missing: put the true length in place.
        let written = match self.announced {
            Some(n) => varint_len(n as u64),
            None => 0,
        };
        let mut len = Out { buf: Vec::with_capacity(10), deepest: 0 };
        len.varint(self.count as u128);
        self.out.buf.splice(self.len_at..self.len_at + written, len.buf);
        Ok(())
    }
}

/// The serde traits of sequences, tuples and tuple structs and variants: every element is a
/// wire value of the compound.
macro_rules! elements {
    ($($trait:ident :: $method:ident),*) => {$(
        impl ser::$trait for Compound<'_> {
            type Ok = ();
            type Error = Error;

            fn $method<T: ?Sized + Serialize>(&mut self, value: &T) -> Result<(), Error> {
                self.element(value)
            }

            fn end(self) -> Result<(), Error> {
                Compound::end(self)
            }
        }
    )*};
}

elements!(
    SerializeSeq::serialize_element,
    SerializeTuple::serialize_element,
    SerializeTupleStruct::serialize_field,
    SerializeTupleVariant::serialize_field
);

/// The serde traits of structs and struct variants: a map with the field names as keys.
macro_rules! fields {
    ($($trait:ident),*) => {$(
        impl ser::$trait for Compound<'_> {
            type Ok = ();
            type Error = Error;

            #[inline(always)]
            fn serialize_field<T: ?Sized + Serialize>(&mut self, key: &'static str, value: &T) -> Result<(), Error> {
                self.field(key, value)
            }

            fn end(self) -> Result<(), Error> {
                Compound::end(self)
            }
        }
    )*};
}

fields!(SerializeStruct, SerializeStructVariant);

impl ser::SerializeMap for Compound<'_> {
    type Ok = ();
    type Error = Error;

    fn serialize_key<T: ?Sized + Serialize>(&mut self, key: &T) -> Result<(), Error> {
        if self.key_pending {
            return Err(Error::new("map key serialized without its value"));
        }
        key.serialize(At { out: self.out, depth: self.depth })?;
        self.key_pending = true;
        Ok(())
    }

    fn serialize_value<T: ?Sized + Serialize>(&mut self, value: &T) -> Result<(), Error> {
        if !self.key_pending {
            return Err(Error::new("map value serialized before its key"));
        }
        self.key_pending = false;
        self.element(value)
    }

    fn end(self) -> Result<(), Error> {
        Compound::end(self)
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use serde::Serialize;

    use super::*;
    use crate::value::to_value;

    /// `to_wire` must write exactly what `to_value` and the wire encoding write.
    fn same<T: Serialize + ?Sized>(value: &T) {
        let (direct, refs) = to_wire(value).unwrap();
        assert!(refs.is_empty());
        let tree = to_value(value).unwrap();
        let via = postcard::to_allocvec(&super::super::Wire(&tree)).unwrap();
        assert_eq!(&direct.bytes()[..], &via[..], "{tree:?}");
        assert_eq!(direct.decode().unwrap(), tree);
    }

    #[derive(Serialize)]
    struct Unit;

    #[derive(Serialize)]
    struct Newtype(u16);

    #[derive(Serialize)]
    struct Tuple(i8, String);

    #[derive(Serialize)]
    struct Row {
        id: u64,
        x: f64,
        name: String,
        tags: Vec<&'static str>,
        #[serde(skip_serializing_if = "Option::is_none")]
        note: Option<String>,
    }

    #[derive(Serialize)]
    enum E {
        A,
        B(i32),
        C(u8, u8),
        D { x: i64 },
    }

    /// A sequence whose `Serialize` announces no length, or a wrong one.
    struct Unsized(usize, Option<usize>);

    impl Serialize for Unsized {
        fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
            use serde::ser::SerializeSeq;
            let mut seq = s.serialize_seq(self.1)?;
            for i in 0..self.0 {
                seq.serialize_element(&i)?;
            }
            seq.end()
        }
    }

    #[test]
    fn writes_what_to_value_and_the_wire_encoding_write() {
        same(&());
        same(&true);
        same(&[i64::MIN, -1, 0, 1, i64::MAX]);
        same(&(i8::MIN, i16::MAX, i32::MIN, u8::MAX, u16::MAX, u32::MAX, u64::MAX));
        same(&(i128::MIN, i128::from(i64::MAX) + 1, 5i128, u128::MAX, 7u128));
        same(&(1.5f32, -0.25f64, f64::NAN.is_nan()));
        same(&('x', 'é', "hé", String::new()));
        same(&serde_bytes::Bytes::new(&[0, 1, 255]));
        same(&(None::<u8>, Some(Some(3u8)), Some(None::<u8>)));
        same(&(Unit, Newtype(9), Tuple(-3, "t".into())));
        same(&[E::A, E::B(-2), E::C(1, 2), E::D { x: 4 }]);
        same(&BTreeMap::from([(1u8, "one"), (2, "two")]));
        same(&BTreeMap::from([(vec![1u8], BTreeMap::from([("k", E::A)]))]));
        let row = |note| Row { id: 7, x: 0.5, name: "row".into(), tags: vec!["a", "b"], note };
        same(&vec![row(None), row(Some("n".into()))]);
        same(&"x".repeat(300));
        same(&(0..200u32).collect::<Vec<_>>());
        same(&std::net::Ipv4Addr::LOCALHOST);
        same(&Value::Map(vec![(Value::Int(1), Value::Seq(vec![Value::Unit, Value::Bool(false)]))]));
    }

    #[test]
    fn wrong_or_missing_length_hints_are_corrected() {
        for (n, hint) in [(0, None), (3, None), (200, None), (3, Some(1)), (200, Some(2)), (2, Some(300)), (5, Some(5))]
        {
            same(&Unsized(n, hint));
            same(&vec![Unsized(n, hint), Unsized(1, None)]);
        }
    }

    #[test]
    fn depth_is_the_deepest_level() {
        assert_eq!(to_wire(&5u8).unwrap().0.depth(), 1);
        assert_eq!(to_wire(&Some(vec![1u8])).unwrap().0.depth(), 3);
        assert_eq!(to_wire(&Vec::<u8>::new()).unwrap().0.depth(), 1);
        assert_eq!(to_wire(&E::A).unwrap().0.depth(), 2);
        assert_eq!(to_wire(&E::C(1, 2)).unwrap().0.depth(), 3);
        let mut deep = Value::Unit;
        for _ in 0..DEPTH_CEILING - 1 {
            deep = Value::Option(Some(Box::new(deep)));
        }
        assert_eq!(to_wire(&deep).unwrap().0.depth(), DEPTH_CEILING);
        let deeper = Value::Option(Some(Box::new(deep)));
        let err = to_wire(&deeper).unwrap_err();
        assert!(err.message().contains("nesting exceeds 256 levels"), "{err}");
    }

    #[test]
    fn failing_serialize_and_unbalanced_maps_are_errors() {
        struct Fails;
        impl Serialize for Fails {
            fn serialize<S: serde::Serializer>(&self, _: S) -> Result<S::Ok, S::Error> {
                Err(serde::ser::Error::custom("no way"))
            }
        }
        assert_eq!(to_wire(&vec![Fails]).unwrap_err().message(), "no way");

        struct KeyOnly;
        impl Serialize for KeyOnly {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                use serde::ser::SerializeMap;
                let mut map = s.serialize_map(None)?;
                map.serialize_key("k")?;
                map.end()
            }
        }
        assert!(to_wire(&KeyOnly).unwrap_err().message().contains("without its value"));
    }
}
