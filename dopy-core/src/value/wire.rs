//! The wire encoding of a [`Value`]: an explicitly tagged enum that postcard can carry.
//!
//! Postcard is not self-describing, so a [`Value`] cannot travel as its data-model form; it is
//! written as a serde enum named `Value` whose variant index (a varint in postcard) is a stable
//! tag, followed by the payload:
//!
//! | tag | variant   | payload                                                         |
//! |-----|-----------|-----------------------------------------------------------------|
//! | 0   | `Unit`    | none (unit variant)                                             |
//! | 1   | `Bool`    | `bool`                                                          |
//! | 2   | `Int`     | `i64` (zigzag varint)                                           |
//! | 3   | `UInt`    | `u64` (varint)                                                  |
//! | 4   | `Int128`  | `i128` (zigzag varint)                                          |
//! | 5   | `UInt128` | `u128` (varint)                                                 |
//! | 6   | `Float`   | `f64` (8 bytes, little-endian)                                  |
//! | 7   | `Char`    | `char` (as a string)                                            |
//! | 8   | `String`  | string: varint length, UTF-8 bytes                              |
//! | 9   | `Bytes`   | byte string: varint length, raw bytes                           |
//! | 10  | `Option`  | option: `0` for none, `1` then the inner wire value for some    |
//! | 11  | `Seq`     | sequence: varint length, wire values                            |
//! | 12  | `Map`     | sequence: varint length, (key, value) pairs of wire values      |
//! | 13  | `Variant` | 2-tuple: name string, payload wire value                        |
//!
//! For example `Value::Int(-1)` is `[2, 1]` and `Value::String("hi".into())` is
//! `[8, 2, b'h', b'i']`.
//!
//! Use [`serialize`] and [`deserialize`] with `#[serde(with = "...")]` on a [`Value`] field,
//! [`seq`] on a `Vec<Value>` field and [`named`] on a `Vec<(String, Value)>` field, or wrap a
//! borrowed value in [`Wire`]. Encoding borrows the value tree; it is never copied.
//!
//! Decoding faces untrusted input: values nested more than [`MAX_DEPTH`] levels deep are
//! rejected (on encoding too, so that a peer never receives what it would refuse), and no
//! length read from the input pre-allocates more than 4 KiB: every level of a nested value
//! may pre-allocate, so a few KiB of input nesting claims of 4096 elements would otherwise
//! allocate 128 times 4096 elements of 48 bytes or more (found by `dopy-core/tests/props.rs`).
//! A connection applies its node's own nesting limit instead with [`with_max_depth`].
//!
//! Postcard discards the message of custom errors: through postcard, an invalid tag or an
//! excessive nesting is reported as its generic serde error ([`with_max_depth`] says which
//! it was).

use bytes::BufMut;
use serde::de::{self, DeserializeSeed, EnumAccess, Error as _, SeqAccess, Unexpected, VariantAccess, Visitor};
use serde::ser::{self, Serialize, Serializer};
use serde::{Deserialize, Deserializer};
use std::cell::Cell;
use std::fmt;

use super::Value;

mod direct;
mod read;

pub use direct::{to_wire, WireValue};
pub(crate) use read::{take, Reader};

/// Appends `v` as a postcard varint: seven bits per byte, least significant first, the high
/// bit set on every byte but the last (the canonical form, which postcard writes).
#[inline(always)]
pub(crate) fn push_varint(buf: &mut impl BufMut, mut v: u128) {
    if let Ok(v) = u64::try_from(v) {
        return push_varint64(buf, v);
    }
    while v >= 0x80 {
        buf.put_u8(v as u8 | 0x80);
        v >>= 7;
    }
    buf.put_u8(v as u8);
}

/// [`push_varint`] of a `u64`, gathered on the stack and appended at once.
#[inline(always)]
pub(crate) fn push_varint64(buf: &mut impl BufMut, mut v: u64) {
    if v < 0x80 {
        buf.put_u8(v as u8);
        return;
    }
    let mut bytes = [0u8; 10];
    let mut n = 0;
    while v >= 0x80 {
        bytes[n] = v as u8 | 0x80;
        v >>= 7;
        n += 1;
    }
    bytes[n] = v as u8;
    buf.put_slice(&bytes[..=n]);
}

/// The size of `n` as a varint.
#[inline]
pub(crate) fn varint_len(n: u64) -> usize {
    (u64::BITS - (n | 1).leading_zeros()).div_ceil(7) as usize
}

/// The deepest nesting of values accepted by default: the outermost value is at level 1, and
/// the contents of an option, sequence, map or variant are one level deeper than it.
pub const MAX_DEPTH: usize = 128;

/// The highest nesting limit [`with_max_depth`] applies: encoding and decoding recurse once per
/// level, and this many levels fit in a 2 MiB thread stack (a tokio worker's) with room to
/// spare, even in a debug build (maps overflow it at about 500 levels there).
pub const DEPTH_CEILING: usize = 256;

thread_local! {
    /// The nesting limit in force on this thread (see [`with_max_depth`]).
    static LIMIT: Cell<usize> = const { Cell::new(MAX_DEPTH) };
    /// Set when a value was refused for its nesting, so that the caller of [`with_max_depth`]
    /// can tell it from other errors (postcard drops the message).
    static EXCEEDED: Cell<bool> = const { Cell::new(false) };
}

thread_local! {
    /// Bytes the values decoded on this thread may still take (see [`with_budget`]).
    static BUDGET: Cell<usize> = const { Cell::new(usize::MAX) };
    /// Set when a value was refused because its decoding would pass the budget.
    static OVER: Cell<bool> = const { Cell::new(false) };
}

/// What decoding a `Value` of `len` input bytes may take in memory, with a node's expansion
/// factor: `factor` times the input, and at least 1 MiB (so that small messages never meet it).
pub fn budget_for(len: usize, factor: usize) -> usize {
    len.saturating_mul(factor).max(1 << 20)
}

/// Runs `f` with `bytes` as what the values it decodes on this thread may take in memory
/// (each value's 48 bytes as its container allocates them, the heap of long strings, byte
/// strings and boxes); returns what `f` returned and whether a value was refused for passing
/// it. Outside, decoding is not charged. (See [`BudgetScope`] for the same without a closure.)
///
/// A dynamic value is amplified when decoded: a `Unit` is one byte on the wire and 48 in
/// memory, so a 16 MiB frame of units would take 800 MiB (and more while vectors double).
/// The budget is charged as the containers grow, so the refusal comes before the memory is
/// taken.
pub fn with_budget<T>(bytes: usize, f: impl FnOnce() -> T) -> (T, bool) {
    let scope = BudgetScope::new(bytes);
    let out = f();
    (out, scope.exceeded())
}

/// A decoding budget in force on this thread until the scope is dropped (see [`with_budget`]);
/// the previous budget comes back then, even if the decode panicked.
#[derive(Debug)]
pub struct BudgetScope {
    previous: usize,
    was_over: bool,
}

impl BudgetScope {
    /// Puts `bytes` in force as the budget of the values decoded on this thread.
    pub fn new(bytes: usize) -> Self {
        BudgetScope { previous: BUDGET.with(|b| b.replace(bytes)), was_over: OVER.with(|o| o.replace(false)) }
    }

    /// Whether a value was refused for passing the budget since the scope began.
    pub fn exceeded(&self) -> bool {
        OVER.with(Cell::get)
    }
}

impl Drop for BudgetScope {
    fn drop(&mut self) {
        BUDGET.with(|b| b.set(self.previous));
        OVER.with(|o| o.set(self.was_over));
    }
}

/// The budget left on this thread (see [`with_budget`]).
pub(crate) fn budget_left() -> usize {
    BUDGET.with(Cell::get)
}

/// Sets what is left of the budget (a reader that kept the count itself gives it back).
pub(crate) fn set_budget_left(left: usize) {
    BUDGET.with(|b| b.set(left));
}

/// Takes `bytes` from the budget; false (noted for [`with_budget`]) when not that much is left.
#[inline]
pub(crate) fn charge(bytes: usize) -> bool {
    BUDGET.with(|b| match b.get().checked_sub(bytes) {
        Some(left) => {
            b.set(left);
            true
        }
        None => {
            OVER.with(|o| o.set(true));
            false
        }
    })
}

/// The error message for a value whose decoding would pass the budget.
const OVER_BUDGET: &str = "decoded values would take more memory than the limit allows";

/// Strings up to this many bytes are kept inline in a `Value` (no heap to charge).
const INLINE_STRING: usize = 24;

/// The nesting limit in force on this thread: [`MAX_DEPTH`] unless inside [`with_max_depth`].
pub fn max_depth() -> usize {
    LIMIT.with(Cell::get)
}

/// Runs `f` with `levels` as the nesting limit of every value encoded or decoded on this
/// thread meanwhile; returns what `f` returned and whether a value was refused for exceeding
/// the limit.
///
/// `levels` is clamped to `1..=`[`DEPTH_CEILING`]. Serde's `with` functions take no
/// parameters, hence a thread-local setting; the previous limit is restored afterwards, even
/// if `f` panics.
///
/// # Examples
///
/// ```
/// use dopy_core::value::{wire, Value};
///
/// let two = Value::Option(Some(Box::new(Value::Unit)));
/// let bytes = postcard::to_allocvec(&wire::Wire(&two)).unwrap();
/// let (decoded, exceeded) = wire::with_max_depth(1, || {
///     let mut de = postcard::Deserializer::from_bytes(&bytes);
///     wire::deserialize(&mut de)
/// });
/// assert!(decoded.is_err() && exceeded);
/// ```
pub fn with_max_depth<T>(levels: usize, f: impl FnOnce() -> T) -> (T, bool) {
    /// Puts the previous limit and flag back when the scope ends.
    struct Restore(usize, bool);

    impl Drop for Restore {
        fn drop(&mut self) {
            LIMIT.with(|l| l.set(self.0));
            EXCEEDED.with(|e| e.set(self.1));
        }
    }

    let previous = LIMIT.with(|l| l.replace(levels.clamp(1, DEPTH_CEILING)));
    let _restore = Restore(previous, EXCEEDED.with(|e| e.replace(false)));
    let out = f();
    (out, EXCEEDED.with(Cell::get))
}

/// Bytes pre-allocated from a length read from the input, at most (per sequence).
const MAX_PREALLOC_BYTES: usize = 4096;

/// The serde name of the wire enum.
const NAME: &str = "Value";

/// Variant names of the wire enum, in tag order.
const VARIANTS: &[&str] = &[
    "Unit", "Bool", "Int", "UInt", "Int128", "UInt128", "Float", "Char", "String", "Bytes", "Option", "Seq", "Map",
    "Variant", "Ref",
];

/// A wire tag; the discriminant is the stable tag number.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Tag {
    Unit = 0,
    Bool = 1,
    Int = 2,
    UInt = 3,
    Int128 = 4,
    UInt128 = 5,
    Float = 6,
    Char = 7,
    String = 8,
    Bytes = 9,
    Option = 10,
    Seq = 11,
    Map = 12,
    Variant = 13,
    Ref = 14,
}

/// Every tag, in tag order.
const TAGS: [Tag; 15] = [
    Tag::Unit,
    Tag::Bool,
    Tag::Int,
    Tag::UInt,
    Tag::Int128,
    Tag::UInt128,
    Tag::Float,
    Tag::Char,
    Tag::String,
    Tag::Bytes,
    Tag::Option,
    Tag::Seq,
    Tag::Map,
    Tag::Variant,
    Tag::Ref,
];

impl Tag {
    /// The tag number, written as the serde variant index.
    fn index(self) -> u32 {
        self as u32
    }

    /// The serde variant name.
    fn name(self) -> &'static str {
        match self {
            Tag::Unit => "Unit",
            Tag::Bool => "Bool",
            Tag::Int => "Int",
            Tag::UInt => "UInt",
            Tag::Int128 => "Int128",
            Tag::UInt128 => "UInt128",
            Tag::Float => "Float",
            Tag::Char => "Char",
            Tag::String => "String",
            Tag::Bytes => "Bytes",
            Tag::Option => "Option",
            Tag::Seq => "Seq",
            Tag::Map => "Map",
            Tag::Variant => "Variant",
            Tag::Ref => "Ref",
        }
    }

    fn from_index(index: u64) -> Option<Tag> {
        usize::try_from(index).ok().and_then(|i| TAGS.get(i)).copied()
    }

    fn from_name(name: &str) -> Option<Tag> {
        TAGS.iter().copied().find(|tag| tag.name() == name)
    }
}

/// The error message for a value nested deeper than the limit (see [`max_depth`]).
struct TooDeep(usize);

impl TooDeep {
    /// The error for the limit in force, noted for [`with_max_depth`].
    fn noted() -> TooDeep {
        EXCEEDED.with(|e| e.set(true));
        TooDeep(max_depth())
    }
}

impl fmt::Display for TooDeep {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "value nesting exceeds {} levels", self.0)
    }
}

// ---------------------------------------------------------------------------------------------
// Encoding
// ---------------------------------------------------------------------------------------------

/// Writes `value` in the wire form.
///
/// Usable as `#[serde(serialize_with = "crate::value::wire::serialize")]`, or with
/// [`deserialize`] as `#[serde(with = "crate::value::wire")]`, on a [`Value`] field.
///
/// # Errors
///
/// Fails if the serializer fails or if `value` is nested deeper than [`max_depth`] levels.
pub fn serialize<S: Serializer>(value: &Value, serializer: S) -> Result<S::Ok, S::Error> {
    At { value, depth: 1 }.serialize(serializer)
}

/// A borrowed [`Value`] that serializes in the wire form.
///
/// # Examples
///
/// ```
/// use dopy_core::value::{wire::Wire, Value};
///
/// let bytes = postcard::to_allocvec(&Wire(&Value::Int(-1))).unwrap();
/// assert_eq!(bytes, [2, 1]);
/// ```
#[derive(Clone, Copy, Debug)]
pub struct Wire<'a>(pub &'a Value);

impl Serialize for Wire<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serialize(self.0, serializer)
    }
}

/// A value at a nesting level, serialized in the wire form.
struct At<'a> {
    value: &'a Value,
    depth: usize,
}

/// The contents of a `Value::Option`, one level below it.
struct OptionAt<'a> {
    value: Option<&'a Value>,
    depth: usize,
}

/// The items of a `Value::Seq`, one level below it.
struct SeqAt<'a> {
    items: &'a [Value],
    depth: usize,
}

/// The entries of a `Value::Map`, one level below it.
struct MapAt<'a> {
    entries: &'a [(Value, Value)],
    depth: usize,
}

impl Serialize for At<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        fn newtype<S: Serializer, T: ?Sized + Serialize>(s: S, tag: Tag, payload: &T) -> Result<S::Ok, S::Error> {
            s.serialize_newtype_variant(NAME, tag.index(), tag.name(), payload)
        }

        if self.depth > max_depth() {
            return Err(<S::Error as ser::Error>::custom(TooDeep::noted()));
        }
        let depth = self.depth + 1;
        match self.value {
            Value::Unit => s.serialize_unit_variant(NAME, Tag::Unit.index(), Tag::Unit.name()),
            Value::Bool(v) => newtype(s, Tag::Bool, v),
            Value::Int(v) => newtype(s, Tag::Int, v),
            Value::UInt(v) => newtype(s, Tag::UInt, v),
            Value::Int128(v) => newtype(s, Tag::Int128, v),
            Value::UInt128(v) => newtype(s, Tag::UInt128, v),
            Value::Float(v) => newtype(s, Tag::Float, v),
            Value::Char(v) => newtype(s, Tag::Char, v),
            Value::String(v) => newtype(s, Tag::String, v.as_str()),
            Value::Bytes(v) => newtype(s, Tag::Bytes, serde_bytes::Bytes::new(v)),
            Value::Option(v) => newtype(s, Tag::Option, &OptionAt { value: v.as_deref(), depth }),
            Value::Seq(items) => newtype(s, Tag::Seq, &SeqAt { items, depth }),
            Value::Map(entries) => newtype(s, Tag::Map, &MapAt { entries, depth }),
            Value::Variant(name, payload) => newtype(s, Tag::Variant, &(name.as_str(), At { value: payload, depth })),
            Value::Ref(obj) => match crate::value::refs::out_index(obj) {
                Some(index) => newtype(s, Tag::Ref, &index),
                None => Err(<S::Error as ser::Error>::custom("object references can only be sent in dopy messages")),
            },
        }
    }
}

impl Serialize for OptionAt<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self.value {
            None => s.serialize_none(),
            Some(value) => s.serialize_some(&At { value, depth: self.depth }),
        }
    }
}

impl Serialize for SeqAt<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(self.items.iter().map(|value| At { value, depth: self.depth }))
    }
}

impl Serialize for MapAt<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let at = |value| At { value, depth: self.depth };
        s.collect_seq(self.entries.iter().map(|(k, v)| (at(k), at(v))))
    }
}

// ---------------------------------------------------------------------------------------------
// Decoding
// ---------------------------------------------------------------------------------------------

/// Reads a [`Value`] in the wire form.
///
/// Usable as `#[serde(deserialize_with = "crate::value::wire::deserialize")]`, or with
/// [`serialize`] as `#[serde(with = "crate::value::wire")]`, on a [`Value`] field.
///
/// # Errors
///
/// Fails if the input is not a wire value: an unknown tag, a truncated or malformed payload,
/// or a nesting deeper than [`max_depth`] levels.
///
/// # Examples
///
/// ```
/// use dopy_core::value::{wire, Value};
///
/// let mut de = postcard::Deserializer::from_bytes(&[8, 2, b'h', b'i']);
/// assert_eq!(wire::deserialize(&mut de).unwrap(), Value::String("hi".into()));
/// ```
pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Value, D::Error> {
    ValueSeed { depth: 1 }.deserialize(deserializer)
}

impl<'de> Deserialize<'de> for Tag {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_identifier(TagVisitor)
    }
}

/// Reads a tag: its number (binary formats) or its name (human-readable formats).
struct TagVisitor;

impl Visitor<'_> for TagVisitor {
    type Value = Tag;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "a value tag (0 to {})", TAGS.len() - 1)
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Tag, E> {
        Tag::from_index(v).ok_or_else(|| E::invalid_value(Unexpected::Unsigned(v), &self))
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Tag, E> {
        Tag::from_name(v).ok_or_else(|| E::unknown_variant(v, VARIANTS))
    }

    fn visit_bytes<E: de::Error>(self, v: &[u8]) -> Result<Tag, E> {
        match std::str::from_utf8(v) {
            Ok(name) => self.visit_str(name),
            Err(_) => Err(E::invalid_value(Unexpected::Bytes(v), &self)),
        }
    }
}

/// Reads a wire value at nesting level `depth`.
#[derive(Clone, Copy)]
struct ValueSeed {
    depth: usize,
}

impl<'de> DeserializeSeed<'de> for ValueSeed {
    type Value = Value;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Value, D::Error> {
        if self.depth > max_depth() {
            return Err(<D::Error as de::Error>::custom(TooDeep::noted()));
        }
        deserializer.deserialize_enum(NAME, VARIANTS, ValueVisitor { depth: self.depth })
    }
}

/// Reads the tag and payload of a wire value at nesting level `depth`.
struct ValueVisitor {
    depth: usize,
}

impl<'de> Visitor<'de> for ValueVisitor {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a wire-encoded value")
    }

    fn visit_enum<A: EnumAccess<'de>>(self, data: A) -> Result<Value, A::Error> {
        let (tag, payload) = data.variant::<Tag>()?;
        // The contents of an option, sequence, map or variant are one level deeper.
        let depth = self.depth + 1;
        match tag {
            Tag::Unit => payload.unit_variant().map(|()| Value::Unit),
            Tag::Bool => payload.newtype_variant().map(Value::Bool),
            Tag::Int => payload.newtype_variant().map(Value::Int),
            Tag::UInt => payload.newtype_variant().map(Value::UInt),
            Tag::Int128 => payload.newtype_variant().map(Value::Int128),
            Tag::UInt128 => payload.newtype_variant().map(Value::UInt128),
            Tag::Float => payload.newtype_variant().map(Value::Float),
            Tag::Char => payload.newtype_variant().map(Value::Char),
            Tag::String => payload.newtype_variant::<super::CompactString>().and_then(|text| {
                if text.len() > INLINE_STRING && !charge(text.len()) {
                    return Err(A::Error::custom(OVER_BUDGET));
                }
                Ok(Value::String(text))
            }),
            Tag::Bytes => payload.newtype_variant::<serde_bytes::ByteBuf>().and_then(|bytes| {
                if !charge(bytes.len()) {
                    return Err(A::Error::custom(OVER_BUDGET));
                }
                Ok(Value::Bytes(bytes.into_vec()))
            }),
            // The box of an option's or a variant's contents.
            Tag::Option | Tag::Variant if !charge(std::mem::size_of::<Value>()) => Err(A::Error::custom(OVER_BUDGET)),
            Tag::Option => payload.newtype_variant_seed(OptionSeed { depth }),
            Tag::Seq => payload.newtype_variant_seed(SeqSeed { depth }).map(Value::Seq),
            Tag::Map => payload.newtype_variant_seed(MapSeed { depth }).map(Value::Map),
            Tag::Variant => payload
                .newtype_variant_seed(NamedSeed::new(depth))
                .map(|(name, payload)| Value::Variant(name, Box::new(payload))),
            // Resolved against the message's reference table once the whole message is read.
            Tag::Ref => payload.newtype_variant::<u32>().map(|i| Value::Ref(crate::handle::DynObject::unresolved(i))),
        }
    }
}

/// Reads the element `index` of a tuple, failing if it is missing.
fn element<'de, A: SeqAccess<'de>, T: DeserializeSeed<'de>>(
    seq: &mut A,
    seed: T,
    index: usize,
    exp: &dyn de::Expected,
) -> Result<T::Value, A::Error> {
    seq.next_element_seed(seed)?.ok_or_else(|| A::Error::invalid_length(index, exp))
}

/// Reads a sequence of elements with `seed`, pre-allocating cautiously.
fn collect<'de, A: SeqAccess<'de>, T: DeserializeSeed<'de> + Copy>(
    mut seq: A,
    seed: T,
) -> Result<Vec<T::Value>, A::Error> {
    let size = std::mem::size_of::<T::Value>().max(1);
    let most = MAX_PREALLOC_BYTES / size;
    let mut items = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(most));
    if !charge(items.capacity() * size) {
        return Err(A::Error::custom(OVER_BUDGET));
    }
    while let Some(item) = seq.next_element_seed(seed)? {
        if items.len() == items.capacity() {
            // What the push below allocates: the vector doubles.
            if !charge(items.capacity().max(4) * size) {
                return Err(A::Error::custom(OVER_BUDGET));
            }
        }
        items.push(item);
    }
    Ok(items)
}

/// Reads the payload of a `Value::Option` whose contents are at level `depth`.
struct OptionSeed {
    depth: usize,
}

impl<'de> DeserializeSeed<'de> for OptionSeed {
    type Value = Value;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Value, D::Error> {
        deserializer.deserialize_option(self)
    }
}

impl<'de> Visitor<'de> for OptionSeed {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an optional wire-encoded value")
    }

    fn visit_none<E: de::Error>(self) -> Result<Value, E> {
        Ok(Value::Option(None))
    }

    fn visit_unit<E: de::Error>(self) -> Result<Value, E> {
        Ok(Value::Option(None))
    }

    fn visit_some<D: Deserializer<'de>>(self, deserializer: D) -> Result<Value, D::Error> {
        ValueSeed { depth: self.depth }.deserialize(deserializer).map(|v| Value::Option(Some(Box::new(v))))
    }
}

/// Reads a sequence of wire values at level `depth`.
#[derive(Clone, Copy)]
struct SeqSeed {
    depth: usize,
}

impl<'de> DeserializeSeed<'de> for SeqSeed {
    type Value = Vec<Value>;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Vec<Value>, D::Error> {
        deserializer.deserialize_seq(self)
    }
}

impl<'de> Visitor<'de> for SeqSeed {
    type Value = Vec<Value>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a sequence of wire-encoded values")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Vec<Value>, A::Error> {
        collect(seq, ValueSeed { depth: self.depth })
    }
}

/// Reads a sequence of (key, value) pairs of wire values at level `depth`.
#[derive(Clone, Copy)]
struct MapSeed {
    depth: usize,
}

impl<'de> DeserializeSeed<'de> for MapSeed {
    type Value = Vec<(Value, Value)>;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Self::Value, D::Error> {
        deserializer.deserialize_seq(self)
    }
}

impl<'de> Visitor<'de> for MapSeed {
    type Value = Vec<(Value, Value)>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a sequence of (key, value) pairs of wire-encoded values")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Self::Value, A::Error> {
        collect(seq, PairSeed { depth: self.depth })
    }
}

/// Reads a (key, value) pair of wire values at level `depth`.
#[derive(Clone, Copy)]
struct PairSeed {
    depth: usize,
}

impl<'de> DeserializeSeed<'de> for PairSeed {
    type Value = (Value, Value);

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Self::Value, D::Error> {
        deserializer.deserialize_tuple(2, self)
    }
}

impl<'de> Visitor<'de> for PairSeed {
    type Value = (Value, Value);

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a (key, value) pair of wire-encoded values")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        let seed = ValueSeed { depth: self.depth };
        let key = element(&mut seq, seed, 0, &self)?;
        let value = element(&mut seq, seed, 1, &self)?;
        Ok((key, value))
    }
}

/// Reads a (name, wire value) pair whose value is at level `depth`; the name is an `N`
/// (a `String` for named arguments, a [`CompactString`](super::CompactString) for variants).
struct NamedSeed<N> {
    depth: usize,
    name: std::marker::PhantomData<N>,
}

impl<N> NamedSeed<N> {
    fn new(depth: usize) -> Self {
        NamedSeed { depth, name: std::marker::PhantomData }
    }
}

impl<N> Clone for NamedSeed<N> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<N> Copy for NamedSeed<N> {}

impl<'de, N: Deserialize<'de>> DeserializeSeed<'de> for NamedSeed<N> {
    type Value = (N, Value);

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Self::Value, D::Error> {
        deserializer.deserialize_tuple(2, self)
    }
}

impl<'de, N: Deserialize<'de>> Visitor<'de> for NamedSeed<N> {
    type Value = (N, Value);

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a (name, wire-encoded value) pair")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        let name = element(&mut seq, std::marker::PhantomData::<N>, 0, &self)?;
        let value = element(&mut seq, ValueSeed { depth: self.depth }, 1, &self)?;
        Ok((name, value))
    }
}

/// The wire form of a `Vec<Value>`: a sequence of wire values.
///
/// Use as `#[serde(with = "crate::value::wire::seq")]` on a `Vec<Value>` field. Each element is
/// at nesting level 1.
pub mod seq {
    use serde::de::DeserializeSeed as _;
    use serde::{Deserializer, Serializer};

    use super::{At, SeqSeed, Value};

    /// Writes `values` as a sequence of wire values.
    ///
    /// # Errors
    ///
    /// Fails if the serializer fails or if a value is nested deeper than
    /// [`max_depth`](super::max_depth) levels.
    pub fn serialize<S: Serializer>(values: &[Value], serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_seq(values.iter().map(|value| At { value, depth: 1 }))
    }

    /// Reads a sequence of wire values.
    ///
    /// # Errors
    ///
    /// Fails if the input is not a sequence of wire values (see [`super::deserialize`]).
    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Vec<Value>, D::Error> {
        SeqSeed { depth: 1 }.deserialize(deserializer)
    }
}

/// The wire form of a `Vec<(String, Value)>`: a sequence of (name, wire value) pairs.
///
/// Use as `#[serde(with = "crate::value::wire::named")]` on a `Vec<(String, Value)>` field, for
/// instance named arguments. Each value is at nesting level 1.
pub mod named {
    use std::fmt;

    use serde::de::{SeqAccess, Visitor};
    use serde::{Deserializer, Serializer};

    use super::{collect, At, NamedSeed, Value};

    /// Writes `entries` as a sequence of (name, wire value) pairs.
    ///
    /// # Errors
    ///
    /// Fails if the serializer fails or if a value is nested deeper than
    /// [`max_depth`](super::max_depth) levels.
    pub fn serialize<S: Serializer>(entries: &[(String, Value)], serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_seq(entries.iter().map(|(name, value)| (name.as_str(), At { value, depth: 1 })))
    }

    /// Reads a sequence of (name, wire value) pairs.
    ///
    /// # Errors
    ///
    /// Fails if the input is not a sequence of (string, wire value) pairs (see
    /// [`super::deserialize`]).
    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Vec<(String, Value)>, D::Error> {
        struct NamedSeqVisitor;

        impl<'de> Visitor<'de> for NamedSeqVisitor {
            type Value = Vec<(String, Value)>;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a sequence of (name, wire-encoded value) pairs")
            }

            fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Self::Value, A::Error> {
                collect(seq, NamedSeed::new(1))
            }
        }

        deserializer.deserialize_seq(NamedSeqVisitor)
    }
}

#[cfg(test)]
mod tests {
    use serde::{Deserialize, Serialize};

    use super::super::{from_value, to_value};
    use super::*;

    fn s(v: &str) -> Value {
        Value::String(v.into())
    }

    fn some(v: Value) -> Value {
        Value::Option(Some(Box::new(v)))
    }

    fn var(name: &str, payload: Value) -> Value {
        Value::Variant(name.into(), Box::new(payload))
    }

    fn encode(v: &Value) -> Vec<u8> {
        // References (decoded as placeholders) need a table to be written.
        crate::value::refs::encoding(Vec::new(), || postcard::to_allocvec(&Wire(v))).0.unwrap()
    }

    /// Decodes a whole wire value, failing on trailing bytes.
    fn decode(bytes: &[u8]) -> Result<Value, postcard::Error> {
        let mut de = postcard::Deserializer::from_bytes(bytes);
        let v = deserialize(&mut de)?;
        match de.finalize()? {
            [] => Ok(v),
            _ => Err(postcard::Error::DeserializeBadEncoding),
        }
    }

    /// Nests `Unit` in `levels - 1` options: `levels` levels in all.
    fn nested(levels: usize) -> Value {
        (1..levels).fold(Value::Unit, |v, _| some(v))
    }

    /// One value of every variant, some nested.
    fn samples() -> Vec<Value> {
        vec![
            Value::Unit,
            Value::Bool(false),
            Value::Bool(true),
            Value::Int(0),
            Value::Int(i64::MIN),
            Value::Int(i64::MAX),
            Value::UInt(u64::MAX),
            Value::Int128(i128::MIN),
            Value::UInt128(u128::MAX),
            Value::Float(-0.0),
            Value::Float(f64::INFINITY),
            Value::Float(1e-300),
            Value::Char('\u{10FFFF}'),
            s(""),
            s("héllo"),
            Value::Bytes(vec![]),
            Value::Bytes((0..=255).collect()),
            Value::Option(None),
            some(some(Value::Int(3))),
            Value::Seq(vec![]),
            Value::Seq(vec![Value::Unit, s("a"), Value::Seq(vec![Value::UInt(1)])]),
            Value::Map(vec![]),
            Value::Map(vec![
                (s("k"), Value::Float(0.5)),
                (Value::UInt(1), Value::Map(vec![(Value::Unit, Value::Unit)])),
            ]),
            var("A", Value::Unit),
            var("B", Value::Seq(vec![Value::Int(-1), var("", Value::Bool(true))])),
            var("é", Value::Map(vec![(s("f"), Value::Option(None))])),
            nested(MAX_DEPTH),
        ]
    }

    #[test]
    fn vectors() {
        let cases: Vec<(Value, Vec<u8>)> = vec![
            (Value::Unit, vec![0]),
            (Value::Bool(true), vec![1, 1]),
            (Value::Bool(false), vec![1, 0]),
            (Value::Int(-1), vec![2, 1]),
            (Value::Int(1), vec![2, 2]),
            (Value::Int(64), vec![2, 0x80, 0x01]),
            (Value::Int(i64::MIN), {
                let mut v = vec![2];
                v.extend([0xFF; 9]);
                v.push(0x01);
                v
            }),
            (Value::UInt(300), vec![3, 0xAC, 0x02]),
            (Value::Int128(-1), vec![4, 1]),
            (Value::Int128(i128::MIN), {
                let mut v = vec![4];
                v.extend([0xFF; 18]);
                v.push(0x03);
                v
            }),
            (Value::UInt128(1 << 64), {
                let mut v = vec![5];
                v.extend([0x80; 9]);
                v.push(0x02);
                v
            }),
            (Value::Float(1.0), vec![6, 0, 0, 0, 0, 0, 0, 0xF0, 0x3F]),
            (Value::Float(-0.5), vec![6, 0, 0, 0, 0, 0, 0, 0xE0, 0xBF]),
            (Value::Char('é'), vec![7, 2, 0xC3, 0xA9]),
            (s("hi"), vec![8, 2, b'h', b'i']),
            (Value::Bytes(vec![1, 2, 3]), vec![9, 3, 1, 2, 3]),
            (Value::Option(None), vec![10, 0]),
            (some(Value::Bool(false)), vec![10, 1, 1, 0]),
            (Value::Seq(vec![Value::Unit, Value::Int(1)]), vec![11, 2, 0, 2, 2]),
            (
                Value::Map(vec![(s("a"), Value::UInt(1)), (Value::Unit, Value::Unit)]),
                vec![12, 2, 8, 1, b'a', 3, 1, 0, 0],
            ),
            (var("A", Value::Unit), vec![13, 1, b'A', 0]),
            (var("Pt", Value::Seq(vec![Value::Int(-2)])), vec![13, 2, b'P', b't', 11, 1, 2, 3]),
        ];
        for (value, bytes) in cases {
            assert_eq!(encode(&value), bytes, "encoding {value:?}");
            assert_eq!(decode(&bytes).unwrap(), value, "decoding {bytes:?}");
        }
    }

    #[test]
    fn tags_are_consistent() {
        for (i, tag) in TAGS.iter().enumerate() {
            assert_eq!(tag.index() as usize, i);
            assert_eq!(VARIANTS[i], tag.name());
            assert_eq!(Tag::from_index(i as u64), Some(*tag));
            assert_eq!(Tag::from_name(tag.name()), Some(*tag));
        }
        assert_eq!(Tag::from_index(15), None);
        assert_eq!(Tag::from_index(u64::MAX), None);
    }

    #[test]
    fn round_trips() {
        for value in samples() {
            let bytes = encode(&value);
            assert_eq!(decode(&bytes).unwrap(), value);
            // The human-readable path: the wire form through the data model.
            let model = to_value(&Wire(&value)).unwrap();
            assert_eq!(deserialize(model).unwrap(), value);
        }
    }

    #[test]
    fn with_attributes() {
        #[derive(Serialize, Deserialize, PartialEq, Debug)]
        struct Call {
            #[serde(with = "crate::value::wire")]
            target: Value,
            #[serde(with = "crate::value::wire::seq")]
            args: Vec<Value>,
            #[serde(with = "crate::value::wire::named")]
            named: Vec<(String, Value)>,
        }
        let call = Call {
            target: s("obj"),
            args: vec![Value::Int(1), Value::Unit],
            named: vec![("x".to_owned(), Value::Bool(true))],
        };
        let bytes = postcard::to_allocvec(&call).unwrap();
        assert_eq!(bytes, [8, 3, b'o', b'b', b'j', 2, 2, 2, 0, 1, 1, b'x', 1, 1]);
        assert_eq!(postcard::from_bytes::<Call>(&bytes).unwrap(), call);
        // Every element of a sequence is at level 1.
        let deep = Call {
            target: nested(MAX_DEPTH),
            args: vec![nested(MAX_DEPTH)],
            named: vec![(String::new(), nested(MAX_DEPTH))],
        };
        let bytes = postcard::to_allocvec(&deep).unwrap();
        assert_eq!(postcard::from_bytes::<Call>(&bytes).unwrap(), deep);
    }

    #[test]
    fn configured_depth_limit() {
        for n in [1, 5, 200] {
            let (ok, exceeded) = with_max_depth(n, || decode(&encode(&nested(n))));
            assert_eq!(ok.unwrap(), nested(n));
            assert!(!exceeded, "{n} levels");
            let (bytes, _) = with_max_depth(n + 1, || encode(&nested(n + 1)));
            let (refused, exceeded) = with_max_depth(n, || decode(&bytes));
            assert!(refused.is_err() && exceeded, "{} levels", n + 1);
            let (refused, exceeded) = with_max_depth(n, || to_value(&Wire(&nested(n + 1))));
            assert_eq!(refused.unwrap_err().to_string(), format!("value nesting exceeds {n} levels"));
            assert!(exceeded);
        }
        // Outside the scope, the default again; a malformed value is not a nesting error.
        assert_eq!(max_depth(), MAX_DEPTH);
        let (refused, exceeded) = with_max_depth(5, || decode(&[99]));
        assert!(refused.is_err() && !exceeded);
        assert_eq!(with_max_depth(0, max_depth).0, 1);
        assert_eq!(with_max_depth(usize::MAX, max_depth).0, DEPTH_CEILING);
    }

    /// The ceiling fits in a 2 MiB stack (a tokio worker's), debug build included, every way
    /// a value nests.
    #[test]
    fn depth_ceiling_fits_the_stack() {
        let run = || {
            let deepest: [Value; 4] = [
                nested(DEPTH_CEILING),
                (1..DEPTH_CEILING).fold(Value::Unit, |v, _| Value::Seq(vec![v])),
                (1..DEPTH_CEILING).fold(Value::Unit, |v, _| Value::Map(vec![(Value::Unit, v)])),
                (1..DEPTH_CEILING).fold(Value::Unit, |v, _| var("v", v)),
            ];
            for v in deepest {
                let (back, exceeded) = with_max_depth(DEPTH_CEILING, || decode(&encode(&v)));
                assert_eq!(back.unwrap(), v);
                assert!(!exceeded);
            }
        };
        std::thread::Builder::new().stack_size(2 << 20).spawn(run).unwrap().join().unwrap();
    }

    #[test]
    fn depth_limit() {
        // Exactly MAX_DEPTH levels pass, one more fails on both sides.
        assert_eq!(decode(&encode(&nested(MAX_DEPTH))).unwrap(), nested(MAX_DEPTH));
        let too_deep = nested(MAX_DEPTH + 1);
        assert!(postcard::to_allocvec(&Wire(&too_deep)).is_err());
        assert_eq!(to_value(&Wire(&too_deep)).unwrap_err().to_string(), "value nesting exceeds 128 levels");
        let mut bytes = encode(&nested(MAX_DEPTH));
        bytes.splice(0..0, [10, 1]);
        assert!(decode(&bytes).is_err());

        // 200 nested options.
        let mut bytes = [10, 1].repeat(200);
        bytes.push(0);
        assert!(decode(&bytes).is_err());

        // Far too deep for the stack, were the depth not limited.
        let mut bytes = [11, 1].repeat(1_000_000);
        bytes.push(0);
        assert!(decode(&bytes).is_err());
        let mut bytes = [13, 0].repeat(1_000_000);
        bytes.push(0);
        assert!(decode(&bytes).is_err());

        // The message, through a deserializer that keeps it.
        let model = (0..200).fold(var("Unit", Value::Unit), |v, _| var("Option", some(v)));
        assert_eq!(deserialize(model).unwrap_err().to_string(), "value nesting exceeds 128 levels");
    }

    #[test]
    fn invalid_tags() {
        assert!(decode(&[15]).is_err());
        assert!(decode(&[0xFF, 0xFF, 0xFF, 0xFF, 0x0F]).is_err());
        assert_eq!(
            deserialize(Value::Map(vec![(Value::UInt(15), Value::Unit)])).unwrap_err().to_string(),
            "invalid value: integer `15`, expected a value tag (0 to 14)"
        );
        assert_eq!(
            deserialize(var("Nope", Value::Unit)).unwrap_err().to_string(),
            "unknown variant `Nope`, expected one of `Unit`, `Bool`, `Int`, `UInt`, `Int128`, \
             `UInt128`, `Float`, `Char`, `String`, `Bytes`, `Option`, `Seq`, `Map`, `Variant`, `Ref`"
        );
        // A plain `Value` is not its wire form.
        assert!(from_value::<Value>(s("x")).is_ok());
        assert!(deserialize(s("x")).is_err());
    }

    #[test]
    fn malformed_payloads() {
        // Invalid UTF-8 string and char, bad bool, bad option flag.
        assert!(decode(&[8, 1, 0xFF]).is_err());
        assert!(decode(&[7, 2, b'a', b'b']).is_err());
        assert!(decode(&[1, 2]).is_err());
        assert!(decode(&[10, 2]).is_err());
        // Lengths far beyond the input: an error, no huge allocation.
        assert!(decode(&[11, 0xFF, 0xFF, 0xFF, 0xFF, 0x0F, 0]).is_err());
        assert!(decode(&[12, 0xFF, 0xFF, 0xFF, 0xFF, 0x0F]).is_err());
        assert!(decode(&[9, 0xFF, 0xFF, 0xFF, 0xFF, 0x0F, 1]).is_err());
        assert!(decode(&[8, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0x01]).is_err());
        // Overlong varints.
        assert!(decode(&[2, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0x7F]).is_err());
    }

    #[test]
    fn truncations_fail() {
        for value in samples() {
            let bytes = encode(&value);
            for len in 0..bytes.len() {
                assert!(decode(&bytes[..len]).is_err(), "{value:?} cut at {len}");
            }
        }
    }

    #[test]
    fn random_bytes_never_panic() {
        let mut state: u64 = 0x9E37_79B9_7F4A_7C15;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        let mut decoded = 0;
        for round in 0..20_000 {
            let len = usize::try_from(next() % 64).unwrap();
            let bytes: Vec<u8> = (0..len)
                .map(|_| {
                    let r = next();
                    // Mostly small bytes, so that tags and lengths are often valid.
                    if round % 2 == 0 || r % 4 != 0 {
                        (r >> 8) as u8 % 16
                    } else {
                        (r >> 8) as u8
                    }
                })
                .collect();
            if let Ok(value) = decode(&bytes) {
                decoded += 1;
                assert!(decode(&encode(&value)).is_ok());
            }
        }
        assert!(decoded > 0);

        // Random corruptions of valid encodings.
        for value in samples() {
            let bytes = encode(&value);
            for _ in 0..200 {
                let mut corrupt = bytes.clone();
                let i = usize::try_from(next() % bytes.len() as u64).unwrap();
                corrupt[i] = next() as u8;
                if let Ok(value) = decode(&corrupt) {
                    assert!(decode(&encode(&value)).is_ok());
                }
            }
        }
    }
}
