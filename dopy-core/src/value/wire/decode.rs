//! Decoding a [`Value`] from the wire form through serde (see [`super`]; [`super::Reader`] is
//! the hand-written equivalent for the places that hold the bytes).

use std::fmt;

use serde::de::{self, DeserializeSeed, EnumAccess, Error as _, SeqAccess, VariantAccess, Visitor};
use serde::{Deserialize, Deserializer};

use super::budget::{charge, INLINE_STRING, MAX_PREALLOC_BYTES, OVER_BUDGET};
use super::depth::{max_depth, TooDeep};
use super::tag::{Tag, NAME, VARIANTS};
use crate::value::Value;

/// Reads a [`Value`] in the wire form.
///
/// Usable as `#[serde(deserialize_with = "crate::value::wire::deserialize")]`, or with
/// [`serialize`](super::serialize) as `#[serde(with = "crate::value::wire")]`, on a [`Value`] field.
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
            Tag::String => payload.newtype_variant::<crate::value::CompactString>().and_then(|text| {
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
pub(super) fn collect<'de, A: SeqAccess<'de>, T: DeserializeSeed<'de> + Copy>(
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
pub(super) struct SeqSeed {
    pub(super) depth: usize,
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
pub(super) struct NamedSeed<N> {
    depth: usize,
    name: std::marker::PhantomData<N>,
}

impl<N> NamedSeed<N> {
    pub(super) fn new(depth: usize) -> Self {
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
