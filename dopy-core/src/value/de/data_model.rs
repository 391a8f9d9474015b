//! Reading a [`Value`] from any format (`impl Deserialize for Value`).

use std::fmt;

use serde::de::{self, Visitor};
use serde::Deserialize;

use crate::value::Value;

/// Elements pre-allocated from a length hint, at most.
///
/// A self-describing format may report a length it read from untrusted input.
const MAX_PREALLOC: usize = 4096;

/// The data-model form: reads a `Value` from any self-describing format.
///
/// Every kind of data the format reports becomes the matching variant: integers become
/// [`Value::Int`] or [`Value::UInt`] (or the 128-bit variants), floats [`Value::Float`], maps
/// [`Value::Map`] (keys are `Value`s, so a JSON object has [`Value::String`] keys), and so on.
/// Formats that report enums (not JSON, which has none) produce a [`Value::Variant`]; its
/// payload is read as a newtype payload.
///
/// # Examples
///
/// ```
/// use dopy_core::value::Value;
///
/// let v: Value = serde_json::from_str(r#"{"a": [1, -2]}"#).unwrap();
/// assert_eq!(
///     v,
///     Value::Map(vec![(
///         Value::String("a".into()),
///         Value::Seq(vec![Value::UInt(1), Value::Int(-2)]),
///     )])
/// );
/// ```
///
/// A binary format (one whose [`is_human_readable`](de::Deserializer::is_human_readable) is
/// `false`, as postcard's) is read in the [`wire`](crate::value::wire) form, which is what
/// `impl Serialize for Value` writes there; references in it are taken from the reference table
/// of the message being decoded.
impl<'de> Deserialize<'de> for Value {
    fn deserialize<D: de::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        if !deserializer.is_human_readable() {
            let mut value = crate::value::wire::deserialize(deserializer)?;
            crate::value::refs::resolve_with(&mut value, &crate::value::refs::in_get);
            return Ok(value);
        }
        deserializer.deserialize_any(ValueVisitor)
    }
}

/// Builds a [`Value`] from whatever the format reports.
struct ValueVisitor;

impl<'de> Visitor<'de> for ValueVisitor {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any value")
    }

    fn visit_bool<E: de::Error>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }

    fn visit_i8<E: de::Error>(self, v: i8) -> Result<Value, E> {
        Ok(Value::Int(v.into()))
    }

    fn visit_i16<E: de::Error>(self, v: i16) -> Result<Value, E> {
        Ok(Value::Int(v.into()))
    }

    fn visit_i32<E: de::Error>(self, v: i32) -> Result<Value, E> {
        Ok(Value::Int(v.into()))
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Value, E> {
        Ok(Value::Int(v))
    }

    fn visit_i128<E: de::Error>(self, v: i128) -> Result<Value, E> {
        Ok(Value::Int128(v))
    }

    fn visit_u8<E: de::Error>(self, v: u8) -> Result<Value, E> {
        Ok(Value::UInt(v.into()))
    }

    fn visit_u16<E: de::Error>(self, v: u16) -> Result<Value, E> {
        Ok(Value::UInt(v.into()))
    }

    fn visit_u32<E: de::Error>(self, v: u32) -> Result<Value, E> {
        Ok(Value::UInt(v.into()))
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Value, E> {
        Ok(Value::UInt(v))
    }

    fn visit_u128<E: de::Error>(self, v: u128) -> Result<Value, E> {
        Ok(Value::UInt128(v))
    }

    fn visit_f32<E: de::Error>(self, v: f32) -> Result<Value, E> {
        Ok(Value::Float(v.into()))
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Value, E> {
        Ok(Value::Float(v))
    }

    fn visit_char<E: de::Error>(self, v: char) -> Result<Value, E> {
        Ok(Value::Char(v))
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Value, E> {
        Ok(Value::String(v.into()))
    }

    fn visit_string<E: de::Error>(self, v: String) -> Result<Value, E> {
        Ok(Value::String(v.into()))
    }

    fn visit_bytes<E: de::Error>(self, v: &[u8]) -> Result<Value, E> {
        Ok(Value::Bytes(v.to_vec()))
    }

    fn visit_byte_buf<E: de::Error>(self, v: Vec<u8>) -> Result<Value, E> {
        Ok(Value::Bytes(v))
    }

    fn visit_none<E: de::Error>(self) -> Result<Value, E> {
        Ok(Value::Option(None))
    }

    fn visit_some<D: de::Deserializer<'de>>(self, deserializer: D) -> Result<Value, D::Error> {
        Value::deserialize(deserializer).map(|v| Value::Option(Some(Box::new(v))))
    }

    fn visit_unit<E: de::Error>(self) -> Result<Value, E> {
        Ok(Value::Unit)
    }

    fn visit_newtype_struct<D: de::Deserializer<'de>>(self, deserializer: D) -> Result<Value, D::Error> {
        let inner = Value::deserialize(deserializer)?;
        // A reference handed over by `refs::hand_off` comes back as itself.
        Ok(crate::value::refs::take_handed_off(&inner).map(Value::Ref).unwrap_or(inner))
    }

    fn visit_seq<A: de::SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut items = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(MAX_PREALLOC));
        while let Some(item) = seq.next_element()? {
            items.push(item);
        }
        Ok(Value::Seq(items))
    }

    fn visit_map<A: de::MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut entries = Vec::with_capacity(map.size_hint().unwrap_or(0).min(MAX_PREALLOC));
        while let Some(entry) = map.next_entry()? {
            entries.push(entry);
        }
        Ok(Value::Map(entries))
    }

    fn visit_enum<A: de::EnumAccess<'de>>(self, data: A) -> Result<Value, A::Error> {
        use de::VariantAccess as _;

        let (variant, access) = data.variant::<Value>()?;
        let name = match variant {
            Value::String(name) => name,
            other => other.to_string().into(),
        };
        let payload = access.newtype_variant::<Value>()?;
        Ok(Value::Variant(name, Box::new(payload)))
    }
}
