//! Deserialization from a [`Value`] ([`from_value`]) and of a [`Value`] (the data-model form).

use std::fmt;
use std::vec;

use serde::de::{self, DeserializeOwned, DeserializeSeed, Error as _, IntoDeserializer, Unexpected, Visitor};
use serde::Deserialize;

use super::{Error, Value};

/// Elements pre-allocated from a length hint, at most.
///
/// A self-describing format may report a length it read from untrusted input.
const MAX_PREALLOC: usize = 4096;

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

/// The elements of a [`Value::Seq`].
struct SeqDeserializer {
    iter: vec::IntoIter<Value>,
}

impl<'de> de::SeqAccess<'de> for SeqDeserializer {
    type Error = Error;

    fn next_element_seed<T: DeserializeSeed<'de>>(&mut self, seed: T) -> Result<Option<T::Value>, Error> {
        self.iter.next().map(|v| seed.deserialize(v)).transpose()
    }

    fn size_hint(&self) -> Option<usize> {
        Some(self.iter.len())
    }
}

/// The entries of a [`Value::Map`].
struct MapDeserializer {
    iter: vec::IntoIter<(Value, Value)>,
    /// The value of the last key read.
    value: Option<Value>,
}

impl<'de> de::MapAccess<'de> for MapDeserializer {
    type Error = Error;

    fn next_key_seed<K: DeserializeSeed<'de>>(&mut self, seed: K) -> Result<Option<K::Value>, Error> {
        match self.iter.next() {
            Some((key, value)) => {
                self.value = Some(value);
                seed.deserialize(MapKeyDeserializer(key)).map(Some)
            }
            None => Ok(None),
        }
    }

    fn next_value_seed<V: DeserializeSeed<'de>>(&mut self, seed: V) -> Result<V::Value, Error> {
        match self.value.take() {
            Some(value) => seed.deserialize(value),
            None => Err(Error::new("map value requested before its key")),
        }
    }

    fn next_entry_seed<K: DeserializeSeed<'de>, V: DeserializeSeed<'de>>(
        &mut self,
        kseed: K,
        vseed: V,
    ) -> Result<Option<(K::Value, V::Value)>, Error> {
        match self.iter.next() {
            Some((key, value)) => {
                let key = kseed.deserialize(MapKeyDeserializer(key))?;
                Ok(Some((key, vseed.deserialize(value)?)))
            }
            None => Ok(None),
        }
    }

    fn size_hint(&self) -> Option<usize> {
        Some(self.iter.len())
    }
}

/// A map key: like its [`Value`], except that a string key is parsed when a number or a
/// boolean is requested (JSON object keys are always strings).
struct MapKeyDeserializer(Value);

/// Forwards `deserialize_*` methods to the inner [`Value`].
macro_rules! forward_to_value {
    ($($method:ident($($arg:ident: $ty:ty),*);)*) => {
        $(
            fn $method<V: Visitor<'de>>(self, $($arg: $ty,)* visitor: V)
                -> Result<V::Value, Error>
            {
                self.0.$method($($arg,)* visitor)
            }
        )*
    };
}

/// Parses a string key when a number or a boolean is requested, else forwards to the value.
macro_rules! parse_string_key {
    ($($method:ident => $ty:ty, $visit:ident;)*) => {
        $(
            fn $method<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
                match self.0 {
                    Value::String(s) => match s.parse::<$ty>() {
                        Ok(v) => visitor.$visit(v),
                        Err(_) => Err(Error::invalid_value(Unexpected::Str(&s), &visitor)),
                    },
                    other => other.$method(visitor),
                }
            }
        )*
    };
}

impl<'de> de::Deserializer<'de> for MapKeyDeserializer {
    type Error = Error;

    parse_string_key! {
        deserialize_bool => bool, visit_bool;
        deserialize_i8 => i8, visit_i8;
        deserialize_i16 => i16, visit_i16;
        deserialize_i32 => i32, visit_i32;
        deserialize_i64 => i64, visit_i64;
        deserialize_i128 => i128, visit_i128;
        deserialize_u8 => u8, visit_u8;
        deserialize_u16 => u16, visit_u16;
        deserialize_u32 => u32, visit_u32;
        deserialize_u64 => u64, visit_u64;
        deserialize_u128 => u128, visit_u128;
        deserialize_f32 => f32, visit_f32;
        deserialize_f64 => f64, visit_f64;
    }

    forward_to_value! {
        deserialize_any();
        deserialize_char();
        deserialize_str();
        deserialize_string();
        deserialize_bytes();
        deserialize_byte_buf();
        deserialize_option();
        deserialize_unit();
        deserialize_unit_struct(name: &'static str);
        deserialize_seq();
        deserialize_tuple(len: usize);
        deserialize_tuple_struct(name: &'static str, len: usize);
        deserialize_map();
        deserialize_struct(name: &'static str, fields: &'static [&'static str]);
        deserialize_enum(name: &'static str, variants: &'static [&'static str]);
        deserialize_identifier();
        deserialize_ignored_any();
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(self, _name: &'static str, visitor: V) -> Result<V::Value, Error> {
        // Keep parsing string keys inside a newtype key, e.g. `struct Id(u32)`.
        visitor.visit_newtype_struct(self)
    }

    fn is_human_readable(&self) -> bool {
        true
    }
}

/// An enum: its variant identifier and, unless it is named by a bare string, its payload.
struct EnumDeserializer {
    variant: Value,
    payload: Option<Value>,
}

impl<'de> de::EnumAccess<'de> for EnumDeserializer {
    type Error = Error;
    type Variant = VariantDeserializer;

    fn variant_seed<V: DeserializeSeed<'de>>(self, seed: V) -> Result<(V::Value, VariantDeserializer), Error> {
        let variant = seed.deserialize(self.variant)?;
        Ok((variant, VariantDeserializer { payload: self.payload }))
    }
}

/// The payload of an enum variant; `None` when the variant was named by a bare string.
struct VariantDeserializer {
    payload: Option<Value>,
}

impl<'de> de::VariantAccess<'de> for VariantDeserializer {
    type Error = Error;

    fn unit_variant(self) -> Result<(), Error> {
        match self.payload {
            None | Some(Value::Unit | Value::Option(None)) => Ok(()),
            Some(other) => Err(other.invalid_type(&"unit variant")),
        }
    }

    fn newtype_variant_seed<T: DeserializeSeed<'de>>(self, seed: T) -> Result<T::Value, Error> {
        match self.payload {
            Some(value) => seed.deserialize(value),
            None => Err(Error::invalid_type(Unexpected::UnitVariant, &"newtype variant")),
        }
    }

    fn tuple_variant<V: Visitor<'de>>(self, len: usize, visitor: V) -> Result<V::Value, Error> {
        match self.payload {
            Some(value) => de::Deserializer::deserialize_tuple(value, len, visitor),
            None => Err(Error::invalid_type(Unexpected::UnitVariant, &"tuple variant")),
        }
    }

    fn struct_variant<V: Visitor<'de>>(self, fields: &'static [&'static str], visitor: V) -> Result<V::Value, Error> {
        match self.payload {
            Some(value) => de::Deserializer::deserialize_struct(value, "", fields, visitor),
            None => Err(Error::invalid_type(Unexpected::UnitVariant, &"struct variant")),
        }
    }
}

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
/// `false`, as postcard's) is read in the [`wire`](super::wire) form, which is what
/// `impl Serialize for Value` writes there; references in it are taken from the reference table
/// of the message being decoded.
impl<'de> Deserialize<'de> for Value {
    fn deserialize<D: de::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        if !deserializer.is_human_readable() {
            let mut value = super::wire::deserialize(deserializer)?;
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

#[cfg(test)]
mod tests {
    use std::collections::{BTreeMap, HashMap};

    use serde::{Deserialize, Serialize};
    use serde_bytes::ByteBuf;

    use super::super::to_value;
    use super::*;

    fn s(v: &str) -> Value {
        Value::String(v.into())
    }

    fn map(entries: Vec<(&str, Value)>) -> Value {
        Value::Map(entries.into_iter().map(|(k, v)| (s(k), v)).collect())
    }

    fn var(name: &str, payload: Value) -> Value {
        Value::Variant(name.into(), Box::new(payload))
    }

    #[track_caller]
    fn round_trip<T>(x: &T)
    where
        T: Serialize + DeserializeOwned + PartialEq + fmt::Debug,
    {
        let v = to_value(x).unwrap();
        let back: T = from_value(v.clone()).unwrap_or_else(|e| panic!("{v:?}: {e}"));
        assert_eq!(&back, x);
    }

    #[track_caller]
    fn err<T: DeserializeOwned + fmt::Debug>(v: Value) -> String {
        from_value::<T>(v).unwrap_err().to_string()
    }

    #[derive(Serialize, Deserialize, PartialEq, Debug)]
    struct UnitStruct;

    #[derive(Serialize, Deserialize, PartialEq, Debug)]
    struct Newtype(String);

    #[derive(Serialize, Deserialize, PartialEq, Debug)]
    struct TupleStruct(u8, Option<i16>);

    #[derive(Serialize, Deserialize, PartialEq, Debug, Default)]
    struct Point {
        x: i32,
        y: i32,
        #[serde(default)]
        label: Option<String>,
    }

    #[derive(Serialize, Deserialize, PartialEq, Debug)]
    enum E {
        A,
        B(u8),
        C(u8, char),
        D { f: f32, g: Vec<E> },
    }

    type Nested = Vec<HashMap<String, Option<(u8, i64, Vec<bool>)>>>;

    #[derive(Serialize, Deserialize, PartialEq, Debug)]
    struct Everything {
        unit: (),
        unit_struct: UnitStruct,
        newtype: Newtype,
        tuple_struct: TupleStruct,
        point: Point,
        enums: Vec<E>,
        nested: Nested,
        by_int: BTreeMap<u32, Vec<Option<f64>>>,
        big: (i128, u128),
        small: (i8, u16, f32),
        chars: (char, char),
        bytes: ByteBuf,
        none: Option<Box<Everything>>,
    }

    #[test]
    fn round_trips() {
        round_trip(&());
        round_trip(&UnitStruct);
        round_trip(&Newtype("n".into()));
        round_trip(&TupleStruct(1, Some(-1)));
        round_trip(&Point::default());
        round_trip(&E::A);
        round_trip(&E::B(9));
        round_trip(&E::C(0, 'é'));
        round_trip(&E::D { f: 0.1, g: vec![E::A, E::C(1, '\0')] });
        round_trip(&i128::MIN);
        round_trip(&u128::MAX);
        round_trip(&f32::MIN_POSITIVE);
        round_trip(&ByteBuf::from(vec![0, 255]));
        round_trip(&"".to_owned());
        let x = Everything {
            unit: (),
            unit_struct: UnitStruct,
            newtype: Newtype("x".into()),
            tuple_struct: TupleStruct(255, None),
            point: Point { x: -1, y: 1, label: Some("p".into()) },
            enums: vec![E::A, E::B(2), E::C(3, 'c'), E::D { f: -1.5, g: vec![E::A] }],
            nested: vec![
                HashMap::new(),
                [("a".to_owned(), None), ("b".to_owned(), Some((1, -1, vec![true, false])))].into(),
            ],
            by_int: [(1, vec![Some(0.5), None]), (7, vec![])].into(),
            big: (i128::MIN, u128::MAX),
            small: (i8::MIN, u16::MAX, 0.25),
            chars: ('a', '🦀'),
            bytes: ByteBuf::from(b"bytes".to_vec()),
            none: None,
        };
        round_trip(&x);
    }

    #[test]
    fn value_is_its_own_value() {
        let v = map(vec![
            ("a", Value::Int128(-1)),
            ("b", var("V", Value::Seq(vec![Value::Unit]))),
            ("c", Value::Option(Some(Box::new(Value::Bytes(vec![1]))))),
            ("d", Value::Char('c')),
        ]);
        assert_eq!(from_value::<Value>(v.clone()).unwrap(), v);
    }

    #[test]
    fn struct_from_map_or_seq() {
        let p: Point =
            from_value(map(vec![("y", Value::UInt(2)), ("unknown", Value::Bool(true)), ("x", Value::Int(1))])).unwrap();
        assert_eq!(p, Point { x: 1, y: 2, label: None });
        let p: Point = from_value(Value::Seq(vec![Value::Int(1), Value::Int(2), Value::Option(None)])).unwrap();
        assert_eq!(p.y, 2);
        assert_eq!(err::<Point>(map(vec![("x", Value::Int(1))])), "missing field `y`");
        assert_eq!(err::<Point>(Value::Int(1)), "invalid type: integer `1`, expected struct Point");
    }

    #[test]
    fn enum_forms() {
        assert_eq!(from_value::<E>(s("A")).unwrap(), E::A);
        assert_eq!(from_value::<E>(var("A", Value::Unit)).unwrap(), E::A);
        assert_eq!(from_value::<E>(map(vec![("A", Value::Unit)])).unwrap(), E::A);
        assert_eq!(from_value::<E>(map(vec![("B", Value::Int(4))])).unwrap(), E::B(4));
        assert_eq!(from_value::<E>(map(vec![("C", Value::Seq(vec![Value::UInt(1), s("x")]))])).unwrap(), E::C(1, 'x'));
        assert_eq!(
            from_value::<E>(var("D", map(vec![("f", Value::Int(2)), ("g", Value::Seq(vec![]))]))).unwrap(),
            E::D { f: 2.0, g: vec![] }
        );
        assert_eq!(err::<E>(s("Z")), "unknown variant `Z`, expected one of `A`, `B`, `C`, `D`");
        assert_eq!(err::<E>(s("B")), "invalid type: unit variant, expected newtype variant");
        assert_eq!(err::<E>(var("A", Value::Int(1))), "invalid type: integer `1`, expected unit variant");
        assert_eq!(err::<E>(Value::Map(vec![])), "invalid type: map, expected enum E");
    }

    #[test]
    fn integers_coerce() {
        assert_eq!(from_value::<i32>(Value::UInt(7)).unwrap(), 7);
        assert_eq!(from_value::<u8>(Value::Int(7)).unwrap(), 7);
        assert_eq!(from_value::<u16>(Value::Int128(7)).unwrap(), 7);
        assert_eq!(from_value::<i64>(Value::UInt128(7)).unwrap(), 7);
        assert_eq!(from_value::<i128>(Value::Int(-7)).unwrap(), -7);
        assert_eq!(from_value::<u128>(Value::UInt(7)).unwrap(), 7);
        assert_eq!(from_value::<f64>(Value::Int(-2)).unwrap(), -2.0);
        assert_eq!(from_value::<f32>(Value::UInt(3)).unwrap(), 3.0);
        let e = err::<u8>(Value::UInt(300));
        assert_eq!(e, "invalid value: integer `300`, expected u8");
        assert!(e.contains("300"));
        assert_eq!(err::<u32>(Value::Int(-1)), "invalid value: integer `-1`, expected u32");
        assert!(from_value::<u64>(Value::UInt128(u128::MAX)).is_err());
        assert!(from_value::<i64>(Value::Int128(i128::MIN)).is_err());
        assert_eq!(err::<i64>(s("x")), "invalid type: string \"x\", expected i64");
        assert_eq!(err::<f64>(Value::Bool(true)), "invalid type: boolean `true`, expected f64");
    }

    #[test]
    fn options() {
        assert_eq!(from_value::<Option<u8>>(Value::Unit).unwrap(), None);
        assert_eq!(from_value::<Option<u8>>(Value::Option(None)).unwrap(), None);
        assert_eq!(from_value::<Option<u8>>(Value::UInt(1)).unwrap(), Some(1));
        assert_eq!(from_value::<Option<u8>>(Value::Option(Some(Box::new(Value::UInt(1))))).unwrap(), Some(1));
        from_value::<()>(Value::Option(None)).unwrap();
        assert_eq!(err::<()>(Value::Bool(false)), "invalid type: boolean `false`, expected unit");
    }

    #[test]
    fn bytes_and_chars() {
        let b = |v: Value| from_value::<ByteBuf>(v).map(ByteBuf::into_vec);
        assert_eq!(b(Value::Bytes(vec![1, 2])).unwrap(), [1, 2]);
        assert_eq!(b(s("hé")).unwrap(), "hé".as_bytes());
        assert_eq!(b(Value::Seq(vec![Value::UInt(0), Value::Int(255)])).unwrap(), [0, 255]);
        assert_eq!(
            b(Value::Seq(vec![Value::UInt(256)])).unwrap_err().to_string(),
            "invalid value: integer `256`, expected u8"
        );
        assert_eq!(from_value::<Vec<u8>>(Value::Bytes(vec![3])).unwrap(), [3]);
        assert_eq!(from_value::<char>(s("x")).unwrap(), 'x');
        assert_eq!(from_value::<char>(Value::Char('y')).unwrap(), 'y');
        assert_eq!(err::<char>(s("xy")), "invalid value: string \"xy\", expected a character");
        assert_eq!(from_value::<String>(Value::Char('y')).unwrap(), "y");
    }

    #[test]
    fn sequences() {
        assert_eq!(err::<(u8, u8)>(Value::Seq(vec![Value::UInt(1)])), "invalid length 1, expected a tuple of size 2");
        assert_eq!(
            err::<(u8,)>(Value::Seq(vec![Value::UInt(1), Value::UInt(2)])),
            "invalid length 2, expected fewer elements in sequence"
        );
        assert_eq!(err::<Vec<u8>>(s("ab")), "invalid type: string \"ab\", expected a sequence");
    }

    #[test]
    fn human_readable() {
        let ip: std::net::IpAddr = from_value(s("::1")).unwrap();
        assert_eq!(ip, std::net::Ipv6Addr::LOCALHOST);
    }

    #[test]
    fn map_keys_from_strings() {
        let m: HashMap<u32, bool> =
            from_value(Value::Map(vec![(s("1"), Value::Bool(true)), (Value::UInt(2), Value::Bool(false))])).unwrap();
        assert_eq!(m, [(1, true), (2, false)].into());
        assert_eq!(err::<HashMap<u8, ()>>(map(vec![("x", Value::Unit)])), "invalid value: string \"x\", expected u8");
    }

    #[test]
    fn json_to_value_to_type() {
        let v: Value =
            serde_json::from_str(r#"{"x": 1, "y": -2, "label": "l", "extra": [1.5, null, {"k": true}]}"#).unwrap();
        assert_eq!(v.get("y"), Some(&Value::Int(-2)));
        let p: Point = from_value(v).unwrap();
        assert_eq!(p, Point { x: 1, y: -2, label: Some("l".into()) });
        let v: Value = serde_json::from_str(r#"[{"B": 1}, "A", {"C": [2, "c"]}]"#).unwrap();
        let e: Vec<E> = from_value(v).unwrap();
        assert_eq!(e, [E::B(1), E::A, E::C(2, 'c')]);
        let v: Value = serde_json::from_str(r#"{"a":[1,2]}"#).unwrap();
        assert_eq!(v, map(vec![("a", Value::Seq(vec![Value::UInt(1), Value::UInt(2)]))]));
    }

    #[test]
    fn unexpected_describes_values() {
        assert_eq!(unexpected(&Value::Int128(i128::MAX)), Unexpected::Other("128-bit integer"));
        assert_eq!(unexpected(&var("A", Value::Unit)), Unexpected::UnitVariant);
        assert_eq!(unexpected(&var("A", Value::Int(1))), Unexpected::NewtypeVariant);
        assert_eq!(unexpected(&s("a")), Unexpected::Str("a"));
    }
}
