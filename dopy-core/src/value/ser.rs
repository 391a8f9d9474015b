//! Serialization into a [`Value`] ([`to_value`]) and of a [`Value`] (the data-model form).

use serde::ser::{self, Serialize, SerializeMap as _};

use super::{Error, Value};

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

/// The data-model form: a `Value` is written as the data it holds.
///
/// `Value::Int(5)` is the integer 5, a [`Value::Map`] is a map, a [`Value::Option`] an option,
/// [`Value::Bytes`] a byte string, [`Value::Unit`] the unit value. The variant index of a
/// [`Value::Variant`] is unknown, so a variant cannot be written as a serde enum; it is written
/// externally tagged, as a single-entry map `{name: payload}`, except that a variant whose
/// payload is [`Value::Unit`] is written as its name alone (a string), which is how serde
/// formats such as JSON write a unit variant.
///
/// This form suits self-describing formats such as JSON. A binary format (one whose
/// [`is_human_readable`](ser::Serializer::is_human_readable) is `false`, as postcard's) gets the
/// [`wire`](super::wire) form instead, the explicitly tagged enum that such a format can read
/// back: that is how a `Value` travels as (or inside) a typed parameter or result.
///
/// The variant is marked for dopy's own serializers (a newtype struct of a reserved name, which
/// other formats write as its contents), so that [`to_value`] of a `Value` gives it back whole.
impl Serialize for Value {
    fn serialize<S: ser::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        if !serializer.is_human_readable() {
            return super::wire::serialize(self, serializer);
        }
        match self {
            Value::Unit => serializer.serialize_unit(),
            Value::Bool(v) => serializer.serialize_bool(*v),
            Value::Int(v) => serializer.serialize_i64(*v),
            Value::UInt(v) => serializer.serialize_u64(*v),
            Value::Int128(v) => serializer.serialize_i128(*v),
            Value::UInt128(v) => serializer.serialize_u128(*v),
            Value::Float(v) => serializer.serialize_f64(*v),
            Value::Char(v) => serializer.serialize_char(*v),
            Value::String(v) => serializer.serialize_str(v),
            Value::Bytes(v) => serializer.serialize_bytes(v),
            Value::Option(None) => serializer.serialize_none(),
            Value::Option(Some(v)) => serializer.serialize_some(&**v),
            Value::Seq(items) => serializer.collect_seq(items),
            Value::Map(entries) => serializer.collect_map(entries.iter().map(|(k, v)| (k, v))),
            Value::Variant(name, payload) => {
                serializer.serialize_newtype_struct(VARIANT_NAME, &DataModelVariant(name, payload))
            }
            // Inside a dopy encode the reference travels; elsewhere (JSON) it prints as text.
            Value::Ref(obj) => match crate::value::refs::out_index(obj) {
                Some(i) => serializer.serialize_newtype_struct(crate::value::refs::REF_NAME, &i),
                None => serializer.serialize_str(&format!("<object {obj}>")),
            },
        }
    }
}

/// The serde newtype-struct name that marks a [`Value::Variant`] in the data-model form, so
/// that dopy's serializers (which know it) rebuild the variant instead of its map or string.
pub(crate) const VARIANT_NAME: &str = "$dopy::Variant";

/// A variant in the data-model form: `{name: payload}`, or `name` alone for a unit payload.
struct DataModelVariant<'a>(&'a str, &'a Value);

impl Serialize for DataModelVariant<'_> {
    fn serialize<S: ser::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self.1 {
            Value::Unit => serializer.serialize_str(self.0),
            payload => {
                let mut map = serializer.serialize_map(Some(1))?;
                map.serialize_entry(self.0, payload)?;
                map.end()
            }
        }
    }
}

/// The variant a [`DataModelVariant`] was written from, as dopy's serializers read it back.
pub(crate) fn variant_from_data_model(written: Value) -> Result<Value, Error> {
    match written {
        Value::String(name) => Ok(Value::Variant(name, Box::new(Value::Unit))),
        Value::Map(mut entries) if entries.len() == 1 => match entries.pop() {
            Some((Value::String(name), payload)) => Ok(Value::Variant(name, Box::new(payload))),
            _ => Err(<Error as ser::Error>::custom("malformed variant")),
        },
        _ => Err(<Error as ser::Error>::custom("malformed variant")),
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use serde::Serialize;

    use super::*;

    fn s(v: &str) -> Value {
        Value::String(v.into())
    }

    #[derive(Serialize)]
    struct Unit;

    #[derive(Serialize)]
    struct Newtype(u16);

    #[derive(Serialize)]
    struct Pair(i8, bool);

    #[derive(Serialize)]
    struct Point {
        y: i32,
        x: i32,
    }

    #[derive(Serialize)]
    enum E {
        A,
        B(u8),
        C(u8, char),
        D { f: f32 },
    }

    #[test]
    fn primitives() {
        assert_eq!(to_value(&true).unwrap(), Value::Bool(true));
        assert_eq!(to_value(&-5i8).unwrap(), Value::Int(-5));
        assert_eq!(to_value(&-5i16).unwrap(), Value::Int(-5));
        assert_eq!(to_value(&-5i32).unwrap(), Value::Int(-5));
        assert_eq!(to_value(&i64::MIN).unwrap(), Value::Int(i64::MIN));
        assert_eq!(to_value(&5u8).unwrap(), Value::UInt(5));
        assert_eq!(to_value(&5u16).unwrap(), Value::UInt(5));
        assert_eq!(to_value(&5u32).unwrap(), Value::UInt(5));
        assert_eq!(to_value(&u64::MAX).unwrap(), Value::UInt(u64::MAX));
        assert_eq!(to_value(&1i128).unwrap(), Value::Int128(1));
        assert_eq!(to_value(&1u128).unwrap(), Value::UInt128(1));
        assert_eq!(to_value(&1.5f32).unwrap(), Value::Float(1.5));
        assert_eq!(to_value(&1.5f64).unwrap(), Value::Float(1.5));
        assert_eq!(to_value(&'x').unwrap(), Value::Char('x'));
        assert_eq!(to_value("hi").unwrap(), s("hi"));
        assert_eq!(to_value(&serde_bytes::Bytes::new(b"ab")).unwrap(), Value::Bytes(b"ab".to_vec()));
        assert_eq!(to_value(&None::<u8>).unwrap(), Value::Option(None));
        assert_eq!(to_value(&Some(1u8)).unwrap(), Value::Option(Some(Box::new(Value::UInt(1)))));
        assert_eq!(to_value(&()).unwrap(), Value::Unit);
    }

    #[test]
    fn compounds() {
        assert_eq!(to_value(&Unit).unwrap(), Value::Unit);
        assert_eq!(to_value(&Newtype(7)).unwrap(), Value::UInt(7));
        assert_eq!(to_value(&Pair(-1, true)).unwrap(), Value::Seq(vec![Value::Int(-1), Value::Bool(true)]));
        assert_eq!(to_value(&(1u8, "a")).unwrap(), Value::Seq(vec![Value::UInt(1), s("a")]));
        assert_eq!(
            to_value(&Point { y: 1, x: 2 }).unwrap(),
            Value::Map(vec![(s("y"), Value::Int(1)), (s("x"), Value::Int(2))])
        );
        let map: BTreeMap<u8, bool> = [(1, true), (2, false)].into();
        assert_eq!(
            to_value(&map).unwrap(),
            Value::Map(vec![(Value::UInt(1), Value::Bool(true)), (Value::UInt(2), Value::Bool(false)),])
        );
    }

    #[test]
    fn variants() {
        let var = |name: &str, payload| Value::Variant(name.into(), Box::new(payload));
        assert_eq!(to_value(&E::A).unwrap(), var("A", Value::Unit));
        assert_eq!(to_value(&E::B(1)).unwrap(), var("B", Value::UInt(1)));
        assert_eq!(to_value(&E::C(1, 'c')).unwrap(), var("C", Value::Seq(vec![Value::UInt(1), Value::Char('c')])));
        assert_eq!(to_value(&E::D { f: 0.5 }).unwrap(), var("D", Value::Map(vec![(s("f"), Value::Float(0.5))])));
    }

    #[test]
    fn human_readable() {
        let ip: std::net::IpAddr = [127, 0, 0, 1].into();
        assert_eq!(to_value(&ip).unwrap(), s("127.0.0.1"));
    }

    #[test]
    fn data_model_form_matches_json() {
        #[derive(Serialize)]
        struct S {
            a: Vec<Option<u8>>,
            b: (i64, f64, char),
            c: BTreeMap<String, E>,
            d: Option<String>,
            e: (),
            f: u128,
        }
        let x = S {
            a: vec![Some(1), None],
            b: (-3, 2.5, 'z'),
            c: [
                ("a".to_owned(), E::A),
                ("b".to_owned(), E::B(2)),
                ("c".to_owned(), E::C(3, 'q')),
                ("d".to_owned(), E::D { f: 1.0 }),
            ]
            .into(),
            d: None,
            e: (),
            f: u128::MAX,
        };
        let v = to_value(&x).unwrap();
        assert_eq!(serde_json::to_string(&v).unwrap(), serde_json::to_string(&x).unwrap());
        let list = vec![Some("x"), None];
        assert_eq!(serde_json::to_string(&to_value(&list).unwrap()).unwrap(), serde_json::to_string(&list).unwrap());
    }
}
