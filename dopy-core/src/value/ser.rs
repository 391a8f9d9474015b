//! Serialization into a [`Value`] ([`to_value`]) and of a [`Value`] (the data-model form).

mod data_model;
#[cfg(test)]
mod tests;

use serde::ser::{self, Serialize};

use super::{Error, Value};

pub(crate) use data_model::{variant_from_data_model, VARIANT_NAME};

/// Elements pre-allocated from a length hint, at most.
///
/// A `Serialize` implementation may report any length; it is only a hint.
const MAX_PREALLOC: usize = 4096;

/// Converts any `T: Serialize` into a [`Value`].
///
/// The mapping is the one documented on [`Value`]: integers widen to [`Value::Int`] or
/// [`Value::UInt`] (128-bit integers become [`Value::Int128`] or [`Value::UInt128`]), structs
/// become [`Value::Map`]s with string keys in field order, newtype structs become their inner
/// value, enum variants become [`Value::Variant`]s.
///
/// The serializer is human-readable (see [`serde::Serializer::is_human_readable`]): a dynamic
/// caller such as a JSON command line sees an `IpAddr`, a `SystemTime`-like type or any other
/// type with a textual form as it would in JSON, typically a string, not as its compact binary
/// form.
///
/// # Errors
///
/// Fails only if `T`'s `Serialize` implementation fails (for instance a map key that fails to
/// serialize, or a custom error).
///
/// # Examples
///
/// ```
/// use dopy_core::value::{to_value, Value};
///
/// assert_eq!(to_value(&Some(-3i8)).unwrap(), Value::Option(Some(Box::new(Value::Int(-3)))));
/// ```
pub fn to_value<T: ?Sized + Serialize>(value: &T) -> Result<Value, Error> {
    // References inside `value` are collected in a table of their own, then put in place.
    crate::value::refs::encoding(Vec::new(), || value.serialize(Serializer)).0
}

/// [`to_value`] within an encode already in progress: references go to its table.
pub(crate) fn plain<T: ?Sized + Serialize>(value: &T) -> Result<Value, Error> {
    value.serialize(Serializer)
}

fn with_capacity<T>(len: Option<usize>) -> Vec<T> {
    Vec::with_capacity(len.unwrap_or(0).min(MAX_PREALLOC))
}

/// The serializer whose output is a [`Value`].
struct Serializer;

impl ser::Serializer for Serializer {
    type Ok = Value;
    type Error = Error;
    type SerializeSeq = SerializeSeq;
    type SerializeTuple = SerializeSeq;
    type SerializeTupleStruct = SerializeSeq;
    type SerializeTupleVariant = SerializeTupleVariant;
    type SerializeMap = SerializeMap;
    type SerializeStruct = SerializeStruct;
    type SerializeStructVariant = SerializeStructVariant;

    fn serialize_bool(self, v: bool) -> Result<Value, Error> {
        Ok(Value::Bool(v))
    }

    fn serialize_i8(self, v: i8) -> Result<Value, Error> {
        Ok(Value::Int(v.into()))
    }

    fn serialize_i16(self, v: i16) -> Result<Value, Error> {
        Ok(Value::Int(v.into()))
    }

    fn serialize_i32(self, v: i32) -> Result<Value, Error> {
        Ok(Value::Int(v.into()))
    }

    fn serialize_i64(self, v: i64) -> Result<Value, Error> {
        Ok(Value::Int(v))
    }

    fn serialize_i128(self, v: i128) -> Result<Value, Error> {
        Ok(Value::Int128(v))
    }

    fn serialize_u8(self, v: u8) -> Result<Value, Error> {
        Ok(Value::UInt(v.into()))
    }

    fn serialize_u16(self, v: u16) -> Result<Value, Error> {
        Ok(Value::UInt(v.into()))
    }

    fn serialize_u32(self, v: u32) -> Result<Value, Error> {
        Ok(Value::UInt(v.into()))
    }

    fn serialize_u64(self, v: u64) -> Result<Value, Error> {
        Ok(Value::UInt(v))
    }

    fn serialize_u128(self, v: u128) -> Result<Value, Error> {
        Ok(Value::UInt128(v))
    }

    fn serialize_f32(self, v: f32) -> Result<Value, Error> {
        Ok(Value::Float(v.into()))
    }

    fn serialize_f64(self, v: f64) -> Result<Value, Error> {
        Ok(Value::Float(v))
    }

    fn serialize_char(self, v: char) -> Result<Value, Error> {
        Ok(Value::Char(v))
    }

    fn serialize_str(self, v: &str) -> Result<Value, Error> {
        Ok(Value::String(v.into()))
    }

    fn serialize_bytes(self, v: &[u8]) -> Result<Value, Error> {
        Ok(Value::Bytes(v.to_vec()))
    }

    fn serialize_none(self) -> Result<Value, Error> {
        Ok(Value::Option(None))
    }

    fn serialize_some<T: ?Sized + Serialize>(self, value: &T) -> Result<Value, Error> {
        Ok(Value::Option(Some(Box::new(value.serialize(self)?))))
    }

    fn serialize_unit(self) -> Result<Value, Error> {
        Ok(Value::Unit)
    }

    fn serialize_unit_struct(self, _name: &'static str) -> Result<Value, Error> {
        Ok(Value::Unit)
    }

    fn serialize_unit_variant(
        self,
        _name: &'static str,
        _variant_index: u32,
        variant: &'static str,
    ) -> Result<Value, Error> {
        Ok(Value::Variant(variant.into(), Box::new(Value::Unit)))
    }

    fn serialize_newtype_struct<T: ?Sized + Serialize>(self, name: &'static str, value: &T) -> Result<Value, Error> {
        let inner = value.serialize(self)?;
        if name == VARIANT_NAME {
            return variant_from_data_model(inner);
        }
        if name == crate::value::refs::REF_NAME {
            // A reference wrote its index in the table `to_value` set up: put the object itself.
            if let Value::UInt(i) = inner {
                if let Some(obj) = u32::try_from(i).ok().and_then(crate::value::refs::out_get) {
                    return Ok(Value::Ref(obj));
                }
            }
            return Err(<Error as ser::Error>::custom("malformed object reference"));
        }
        Ok(inner)
    }

    fn serialize_newtype_variant<T: ?Sized + Serialize>(
        self,
        _name: &'static str,
        _variant_index: u32,
        variant: &'static str,
        value: &T,
    ) -> Result<Value, Error> {
        Ok(Value::Variant(variant.into(), Box::new(value.serialize(self)?)))
    }

    fn serialize_seq(self, len: Option<usize>) -> Result<SerializeSeq, Error> {
        Ok(SerializeSeq { items: with_capacity(len) })
    }

    fn serialize_tuple(self, len: usize) -> Result<SerializeSeq, Error> {
        self.serialize_seq(Some(len))
    }

    fn serialize_tuple_struct(self, _name: &'static str, len: usize) -> Result<SerializeSeq, Error> {
        self.serialize_seq(Some(len))
    }

    fn serialize_tuple_variant(
        self,
        _name: &'static str,
        _variant_index: u32,
        variant: &'static str,
        len: usize,
    ) -> Result<SerializeTupleVariant, Error> {
        Ok(SerializeTupleVariant { variant, items: with_capacity(Some(len)) })
    }

    fn serialize_map(self, len: Option<usize>) -> Result<SerializeMap, Error> {
        Ok(SerializeMap { entries: with_capacity(len), key: None })
    }

    fn serialize_struct(self, _name: &'static str, len: usize) -> Result<SerializeStruct, Error> {
        Ok(SerializeStruct { entries: with_capacity(Some(len)) })
    }

    fn serialize_struct_variant(
        self,
        _name: &'static str,
        _variant_index: u32,
        variant: &'static str,
        len: usize,
    ) -> Result<SerializeStructVariant, Error> {
        Ok(SerializeStructVariant { variant, entries: with_capacity(Some(len)) })
    }

    fn is_human_readable(&self) -> bool {
        // A `Value` is what dynamic callers (the JSON command line, other languages) see: they
        // expect the textual forms that human-readable formats use, e.g. an `IpAddr` as a string.
        true
    }
}

/// Builds a [`Value::Seq`] from a sequence, tuple or tuple struct.
struct SerializeSeq {
    items: Vec<Value>,
}

impl SerializeSeq {
    fn push<T: ?Sized + Serialize>(&mut self, value: &T) -> Result<(), Error> {
        self.items.push(value.serialize(Serializer)?);
        Ok(())
    }
}

impl ser::SerializeSeq for SerializeSeq {
    type Ok = Value;
    type Error = Error;

    fn serialize_element<T: ?Sized + Serialize>(&mut self, value: &T) -> Result<(), Error> {
        self.push(value)
    }

    fn end(self) -> Result<Value, Error> {
        Ok(Value::Seq(self.items))
    }
}

impl ser::SerializeTuple for SerializeSeq {
    type Ok = Value;
    type Error = Error;

    fn serialize_element<T: ?Sized + Serialize>(&mut self, value: &T) -> Result<(), Error> {
        self.push(value)
    }

    fn end(self) -> Result<Value, Error> {
        Ok(Value::Seq(self.items))
    }
}

impl ser::SerializeTupleStruct for SerializeSeq {
    type Ok = Value;
    type Error = Error;

    fn serialize_field<T: ?Sized + Serialize>(&mut self, value: &T) -> Result<(), Error> {
        self.push(value)
    }

    fn end(self) -> Result<Value, Error> {
        Ok(Value::Seq(self.items))
    }
}

/// Builds a [`Value::Variant`] with a [`Value::Seq`] payload.
struct SerializeTupleVariant {
    variant: &'static str,
    items: Vec<Value>,
}

impl ser::SerializeTupleVariant for SerializeTupleVariant {
    type Ok = Value;
    type Error = Error;

    fn serialize_field<T: ?Sized + Serialize>(&mut self, value: &T) -> Result<(), Error> {
        self.items.push(value.serialize(Serializer)?);
        Ok(())
    }

    fn end(self) -> Result<Value, Error> {
        Ok(Value::Variant(self.variant.into(), Box::new(Value::Seq(self.items))))
    }
}

/// Builds a [`Value::Map`] from a map.
struct SerializeMap {
    entries: Vec<(Value, Value)>,
    /// The key given to `serialize_key`, waiting for its value.
    key: Option<Value>,
}

impl ser::SerializeMap for SerializeMap {
    type Ok = Value;
    type Error = Error;

    fn serialize_key<T: ?Sized + Serialize>(&mut self, key: &T) -> Result<(), Error> {
        self.key = Some(key.serialize(Serializer)?);
        Ok(())
    }

    fn serialize_value<T: ?Sized + Serialize>(&mut self, value: &T) -> Result<(), Error> {
        let key = self.key.take().ok_or_else(|| Error::new("map value serialized before its key"))?;
        self.entries.push((key, value.serialize(Serializer)?));
        Ok(())
    }

    fn serialize_entry<K: ?Sized + Serialize, V: ?Sized + Serialize>(
        &mut self,
        key: &K,
        value: &V,
    ) -> Result<(), Error> {
        let key = key.serialize(Serializer)?;
        self.entries.push((key, value.serialize(Serializer)?));
        Ok(())
    }

    fn end(self) -> Result<Value, Error> {
        match self.key {
            Some(_) => Err(Error::new("map key serialized without its value")),
            None => Ok(Value::Map(self.entries)),
        }
    }
}

/// Builds a [`Value::Map`] with string keys from a struct.
struct SerializeStruct {
    entries: Vec<(Value, Value)>,
}

impl ser::SerializeStruct for SerializeStruct {
    type Ok = Value;
    type Error = Error;

    fn serialize_field<T: ?Sized + Serialize>(&mut self, key: &'static str, value: &T) -> Result<(), Error> {
        self.entries.push((Value::String(key.into()), value.serialize(Serializer)?));
        Ok(())
    }

    fn end(self) -> Result<Value, Error> {
        Ok(Value::Map(self.entries))
    }
}

/// Builds a [`Value::Variant`] with a [`Value::Map`] payload.
struct SerializeStructVariant {
    variant: &'static str,
    entries: Vec<(Value, Value)>,
}

impl ser::SerializeStructVariant for SerializeStructVariant {
    type Ok = Value;
    type Error = Error;

    fn serialize_field<T: ?Sized + Serialize>(&mut self, key: &'static str, value: &T) -> Result<(), Error> {
        self.entries.push((Value::String(key.into()), value.serialize(Serializer)?));
        Ok(())
    }

    fn end(self) -> Result<Value, Error> {
        Ok(Value::Variant(self.variant.into(), Box::new(Value::Map(self.entries))))
    }
}
