//! Deserialization from a [`Value`] ([`from_value`]) and of a [`Value`] (the data-model form).

mod access;
mod data_model;
#[cfg(test)]
mod tests;

use serde::de::{self, DeserializeOwned, Error as _, IntoDeserializer, Unexpected, Visitor};

use super::{Error, Value};

use access::{EnumDeserializer, MapDeserializer, SeqDeserializer};

/// Converts a [`Value`] into any `T: Deserialize`.
///
/// The conversion is as permissive as a dynamic caller needs, without guessing:
/// - any integer variant converts to any integer type it fits in (the range is checked), and
///   integers are accepted where a float is expected;
/// - a struct is read from a [`Value::Map`] with string keys (unknown keys are left to the
///   struct, which ignores them unless it denies unknown fields) or from a [`Value::Seq`] of its
///   fields in order;
/// - an enum is read from a [`Value::Variant`], from a [`Value::String`] naming a unit variant,
///   or from a single-entry [`Value::Map`] `{name: payload}` (the form JSON uses);
/// - bytes are read from [`Value::Bytes`], a [`Value::Seq`] of integers `0..=255`, or a
///   [`Value::String`] (its UTF-8 bytes);
/// - an `Option<T>` is read from [`Value::Option`], from [`Value::Unit`] (`None`) or from the
///   bare inner value (`Some`);
/// - map keys that are strings are parsed when the key type is a number or a boolean, so a
///   `HashMap<u32, _>` can be read from JSON's `{"1": ...}`.
///
/// Like [`to_value`](super::to_value), the deserializer is human-readable: an `IpAddr` is read
/// from a string.
///
/// # Errors
///
/// Fails if the value does not fit `T`; the message says what was expected and what was found,
/// for instance `invalid type: string "x", expected i64` or
/// ``invalid value: integer `300`, expected u8``.
///
/// # Examples
///
/// ```
/// use dopy_core::value::{from_value, Value};
///
/// let v = Value::Seq(vec![Value::UInt(1), Value::Int(-2)]);
/// let pair: (i8, i32) = from_value(v).unwrap();
/// assert_eq!(pair, (1, -2));
/// ```
pub fn from_value<T: DeserializeOwned>(value: Value) -> Result<T, Error> {
    T::deserialize(value)
}

/// Describes `value` for an "invalid type" or "invalid value" error.
pub(crate) fn unexpected(value: &Value) -> Unexpected<'_> {
    match value {
        Value::Unit => Unexpected::Unit,
        Value::Bool(v) => Unexpected::Bool(*v),
        Value::Int(v) => Unexpected::Signed(*v),
        Value::UInt(v) => Unexpected::Unsigned(*v),
        Value::Int128(v) => match i64::try_from(*v) {
            Ok(v) => Unexpected::Signed(v),
            Err(_) => Unexpected::Other("128-bit integer"),
        },
        Value::UInt128(v) => match u64::try_from(*v) {
            Ok(v) => Unexpected::Unsigned(v),
            Err(_) => Unexpected::Other("128-bit integer"),
        },
        Value::Float(v) => Unexpected::Float(*v),
        Value::Char(v) => Unexpected::Char(*v),
        Value::String(v) => Unexpected::Str(v),
        Value::Bytes(v) => Unexpected::Bytes(v),
        Value::Option(_) => Unexpected::Option,
        Value::Ref(_) => Unexpected::Other("object reference"),
        Value::Seq(_) => Unexpected::Seq,
        Value::Map(_) => Unexpected::Map,
        Value::Variant(_, payload) => match **payload {
            Value::Unit => Unexpected::UnitVariant,
            Value::Seq(_) => Unexpected::TupleVariant,
            Value::Map(_) => Unexpected::StructVariant,
            _ => Unexpected::NewtypeVariant,
        },
    }
}

impl Value {
    /// The "invalid type" error for this value where `exp` was expected.
    fn invalid_type(&self, exp: &dyn de::Expected) -> Error {
        Error::invalid_type(unexpected(self), exp)
    }

    /// Visits an integer, narrowing 128-bit integers that fit in 64 bits.
    ///
    /// The primitive visitors of `i8` to `u64` accept `visit_i64` and `visit_u64` (and check
    /// the range) but not `visit_i128`/`visit_u128`.
    fn visit_integer<'de, V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        match self {
            Value::Int(v) => visitor.visit_i64(v),
            Value::UInt(v) => visitor.visit_u64(v),
            Value::Int128(v) => match (i64::try_from(v), u64::try_from(v)) {
                (Ok(v), _) => visitor.visit_i64(v),
                (_, Ok(v)) => visitor.visit_u64(v),
                _ => visitor.visit_i128(v),
            },
            Value::UInt128(v) => match u64::try_from(v) {
                Ok(v) => visitor.visit_u64(v),
                Err(_) => visitor.visit_u128(v),
            },
            other => Err(other.invalid_type(&visitor)),
        }
    }

    /// Visits a 128-bit integer, or any integer.
    fn visit_integer128<'de, V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        match self {
            Value::Int128(v) => visitor.visit_i128(v),
            Value::UInt128(v) => visitor.visit_u128(v),
            other => other.visit_integer(visitor),
        }
    }

    /// Visits a float, converting integers.
    #[allow(clippy::cast_precision_loss)]
    fn visit_float<'de, V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        match self {
            Value::Float(v) => visitor.visit_f64(v),
            Value::Int(v) => visitor.visit_f64(v as f64),
            Value::UInt(v) => visitor.visit_f64(v as f64),
            Value::Int128(v) => visitor.visit_f64(v as f64),
            Value::UInt128(v) => visitor.visit_f64(v as f64),
            other => Err(other.invalid_type(&visitor)),
        }
    }
}

/// The integer of `value` if it is a byte (an integer in `0..=255`).
fn as_byte(value: &Value) -> Option<u8> {
    match *value {
        Value::Int(v) => u8::try_from(v).ok(),
        Value::UInt(v) => u8::try_from(v).ok(),
        Value::Int128(v) => u8::try_from(v).ok(),
        Value::UInt128(v) => u8::try_from(v).ok(),
        _ => None,
    }
}

/// Visits a sequence and fails if the visitor leaves elements unread.
fn visit_seq<'de, V: Visitor<'de>>(items: Vec<Value>, visitor: V) -> Result<V::Value, Error> {
    let len = items.len();
    let mut seq = SeqDeserializer { iter: items.into_iter() };
    let value = visitor.visit_seq(&mut seq)?;
    match seq.iter.len() {
        0 => Ok(value),
        _ => Err(Error::invalid_length(len, &"fewer elements in sequence")),
    }
}

/// Visits a map and fails if the visitor leaves entries unread.
fn visit_map<'de, V: Visitor<'de>>(entries: Vec<(Value, Value)>, visitor: V) -> Result<V::Value, Error> {
    let len = entries.len();
    let mut map = MapDeserializer { iter: entries.into_iter(), value: None };
    let value = visitor.visit_map(&mut map)?;
    match map.iter.len() {
        0 => Ok(value),
        _ => Err(Error::invalid_length(len, &"fewer entries in map")),
    }
}

impl<'de> de::Deserializer<'de> for Value {
    type Error = Error;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        match self {
            Value::Unit => visitor.visit_unit(),
            Value::Bool(v) => visitor.visit_bool(v),
            Value::Int(v) => visitor.visit_i64(v),
            Value::UInt(v) => visitor.visit_u64(v),
            Value::Int128(v) => visitor.visit_i128(v),
            Value::UInt128(v) => visitor.visit_u128(v),
            Value::Float(v) => visitor.visit_f64(v),
            Value::Char(v) => visitor.visit_char(v),
            Value::String(v) => visitor.visit_string(v.into_string()),
            Value::Bytes(v) => visitor.visit_byte_buf(v),
            Value::Option(None) => visitor.visit_none(),
            Value::Option(Some(v)) => visitor.visit_some(*v),
            Value::Seq(v) => visit_seq(v, visitor),
            Value::Map(v) => visit_map(v, visitor),
            Value::Variant(name, payload) => {
                visitor.visit_enum(EnumDeserializer { variant: Value::String(name), payload: Some(*payload) })
            }
            Value::Ref(obj) => crate::value::refs::hand_off(obj, visitor),
        }
    }

    fn deserialize_bool<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        match self {
            Value::Bool(v) => visitor.visit_bool(v),
            other => Err(other.invalid_type(&visitor)),
        }
    }

    fn deserialize_i8<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        self.visit_integer(visitor)
    }

    fn deserialize_i16<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        self.visit_integer(visitor)
    }

    fn deserialize_i32<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        self.visit_integer(visitor)
    }

    fn deserialize_i64<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        self.visit_integer(visitor)
    }

    fn deserialize_i128<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        self.visit_integer128(visitor)
    }

    fn deserialize_u8<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        self.visit_integer(visitor)
    }

    fn deserialize_u16<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        self.visit_integer(visitor)
    }

    fn deserialize_u32<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        self.visit_integer(visitor)
    }

    fn deserialize_u64<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        self.visit_integer(visitor)
    }

    fn deserialize_u128<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        self.visit_integer128(visitor)
    }

    fn deserialize_f32<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        self.visit_float(visitor)
    }

    fn deserialize_f64<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        self.visit_float(visitor)
    }

    fn deserialize_char<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        match self {
            Value::Char(v) => visitor.visit_char(v),
            Value::String(v) => {
                let mut chars = v.chars();
                match (chars.next(), chars.next()) {
                    (Some(c), None) => visitor.visit_char(c),
                    // Let the visitor report the string it cannot take.
                    _ => visitor.visit_string(v.into_string()),
                }
            }
            other => Err(other.invalid_type(&visitor)),
        }
    }

    fn deserialize_str<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        self.deserialize_string(visitor)
    }

    fn deserialize_string<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        match self {
            Value::String(v) => visitor.visit_string(v.into_string()),
            Value::Char(v) => visitor.visit_char(v),
            Value::Bytes(v) => visitor.visit_byte_buf(v),
            other => Err(other.invalid_type(&visitor)),
        }
    }

    fn deserialize_bytes<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        self.deserialize_byte_buf(visitor)
    }

    fn deserialize_byte_buf<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        match self {
            Value::Bytes(v) => visitor.visit_byte_buf(v),
            Value::String(v) => visitor.visit_byte_buf(v.into_string().into_bytes()),
            Value::Seq(items) => match items.iter().map(as_byte).collect::<Option<Vec<u8>>>() {
                Some(bytes) => visitor.visit_byte_buf(bytes),
                // Not all bytes: let the visitor say which element it cannot take.
                None => visit_seq(items, visitor),
            },
            other => Err(other.invalid_type(&visitor)),
        }
    }

    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        match self {
            Value::Option(None) | Value::Unit => visitor.visit_none(),
            Value::Option(Some(v)) => visitor.visit_some(*v),
            other => visitor.visit_some(other),
        }
    }

    fn deserialize_unit<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        match self {
            Value::Unit | Value::Option(None) => visitor.visit_unit(),
            other => Err(other.invalid_type(&visitor)),
        }
    }

    fn deserialize_unit_struct<V: Visitor<'de>>(self, _name: &'static str, visitor: V) -> Result<V::Value, Error> {
        self.deserialize_unit(visitor)
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(self, name: &'static str, visitor: V) -> Result<V::Value, Error> {
        match self {
            // A reference meets a type that holds one (a proxy, `DynObject`, `Remote<T>`).
            Value::Ref(obj) if name == crate::value::refs::REF_NAME => crate::value::refs::hand_off(obj, visitor),
            other => visitor.visit_newtype_struct(other),
        }
    }

    fn deserialize_seq<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        match self {
            Value::Seq(v) => visit_seq(v, visitor),
            Value::Bytes(v) => visit_seq(v.into_iter().map(Value::from).collect(), visitor),
            other => Err(other.invalid_type(&visitor)),
        }
    }

    fn deserialize_tuple<V: Visitor<'de>>(self, _len: usize, visitor: V) -> Result<V::Value, Error> {
        self.deserialize_seq(visitor)
    }

    fn deserialize_tuple_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _len: usize,
        visitor: V,
    ) -> Result<V::Value, Error> {
        self.deserialize_seq(visitor)
    }

    fn deserialize_map<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        match self {
            Value::Map(v) => visit_map(v, visitor),
            other => Err(other.invalid_type(&visitor)),
        }
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, Error> {
        match self {
            Value::Map(v) => visit_map(v, visitor),
            Value::Seq(v) => visit_seq(v, visitor),
            other => Err(other.invalid_type(&visitor)),
        }
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _variants: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, Error> {
        let (variant, payload) = match self {
            Value::Variant(name, payload) => (Value::String(name), Some(*payload)),
            Value::String(name) => (Value::String(name), None),
            Value::Map(entries) if entries.len() == 1 => match entries.into_iter().next() {
                Some((name, payload)) => (name, Some(payload)),
                None => return Err(Error::new("single-entry map without an entry")),
            },
            other => return Err(other.invalid_type(&visitor)),
        };
        visitor.visit_enum(EnumDeserializer { variant, payload })
    }

    fn deserialize_identifier<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        self.deserialize_any(visitor)
    }

    fn deserialize_ignored_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        drop(self);
        visitor.visit_unit()
    }

    fn is_human_readable(&self) -> bool {
        // Symmetric with `to_value`: dynamic callers use textual forms (an `IpAddr` string).
        true
    }
}

impl IntoDeserializer<'_, Error> for Value {
    type Deserializer = Self;

    fn into_deserializer(self) -> Self {
        self
    }
}
