//! Writing a [`Value`] to any format (`impl Serialize for Value`), and the mark its variants
//! carry for dopy's own serializers.

use serde::ser::{self, Serialize, SerializeMap as _};

use crate::value::{Error, Value};

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
/// [`wire`](crate::value::wire) form instead, the explicitly tagged enum that such a format can read
/// back: that is how a `Value` travels as (or inside) a typed parameter or result.
///
/// The variant is marked for dopy's own serializers (a newtype struct of a reserved name, which
/// other formats write as its contents), so that [`to_value`](crate::value::to_value) of a `Value` gives it back whole.
impl Serialize for Value {
    fn serialize<S: ser::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        if !serializer.is_human_readable() {
            return crate::value::wire::serialize(self, serializer);
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
