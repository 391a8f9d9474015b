//! Encoding a [`Value`] in the wire form through serde (see [`super`]).

use serde::ser::{self, Serialize, Serializer};

use super::depth::{max_depth, TooDeep};
use super::tag::{Tag, NAME};
use crate::value::Value;

/// Writes `value` in the wire form.
///
/// Usable as `#[serde(serialize_with = "crate::value::wire::serialize")]`, or with
/// [`deserialize`](super::deserialize) as `#[serde(with = "crate::value::wire")]`, on a [`Value`] field.
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
pub(super) struct At<'a> {
    pub(super) value: &'a Value,
    pub(super) depth: usize,
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
