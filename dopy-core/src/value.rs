//! [`Value`]: dynamic data that can hold anything serde can describe.
//!
//! A `Value` is what an untyped caller (the `dopy` command-line tool, a program in another
//! language, a [`DynObject`](../../dopy/struct.DynObject.html)) sends and receives instead of
//! Rust types. [`to_value`] turns any `T: Serialize` into a `Value` and [`from_value`] turns a
//! `Value` back into any `T: Deserialize`, so a dynamic caller and a typed proxy call the same
//! published object.
//!
//! Two encodings exist and must not be confused:
//! - the **data-model** encoding: `impl Serialize for Value` writes the value as the data it
//!   holds (`Value::Int(5)` is the integer 5 in JSON), and `impl Deserialize for Value` reads any
//!   self-describing format (JSON, for instance) into a `Value`;
//! - the **wire** encoding ([`wire`]): an explicitly tagged enum that postcard (which is not
//!   self-describing) can carry; this is the stable form documented in `PROTOCOL.md`.

mod de;
mod error;
pub(crate) mod refs;
mod ser;
#[cfg(test)]
mod tests;
pub mod wire;

use std::fmt;

/// The string type of [`Value::String`] and [`Value::Variant`] names: a `String` that keeps
/// strings of up to 24 bytes inline (no allocation), which most field names, map keys and
/// variant names are. Build one with `.into()` from a `&str` or a `String`; it derefs to `str`.
pub use compact_str::CompactString;
pub use de::from_value;
pub use error::Error;
pub use ser::to_value;

/// Dynamic data: any value of the serde data model.
///
/// Integers are widened to 64 bits (`Int`/`UInt`) unless they need 128; `f32` is widened to
/// `f64`. Structs are [`Value::Map`]s with string keys in field order; tuples, tuple structs and
/// sequences are [`Value::Seq`]; newtype structs are their inner value; unit and unit structs
/// are [`Value::Unit`]; enum variants are [`Value::Variant`].
///
/// # Examples
///
/// ```
/// use dopy_core::value::{from_value, to_value, Value};
///
/// let v = to_value(&vec![1u8, 2, 3]).unwrap();
/// assert_eq!(v, Value::Seq(vec![Value::UInt(1), Value::UInt(2), Value::UInt(3)]));
/// let back: Vec<u8> = from_value(v).unwrap();
/// assert_eq!(back, [1, 2, 3]);
/// ```
#[derive(Clone, Debug, PartialEq, Default)]
#[non_exhaustive]
pub enum Value {
    /// `()`, a unit struct, or the absence of data.
    #[default]
    Unit,
    /// A boolean.
    Bool(bool),
    /// A signed integer (`i8` to `i64`).
    Int(i64),
    /// An unsigned integer (`u8` to `u64`).
    UInt(u64),
    /// A signed 128-bit integer.
    Int128(i128),
    /// An unsigned 128-bit integer.
    UInt128(u128),
    /// A floating-point number (`f32` is widened).
    Float(f64),
    /// A Unicode scalar value.
    Char(char),
    /// A UTF-8 string (see [`CompactString`]: short strings are not allocated).
    String(CompactString),
    /// A byte string (`serde_bytes::ByteBuf`, `Vec<u8>` with `#[serde(with = "serde_bytes")]`).
    Bytes(Vec<u8>),
    /// `Option<T>`: `None` or `Some(value)`.
    Option(Option<Box<Value>>),
    /// A sequence, tuple or tuple struct.
    Seq(Vec<Value>),
    /// A map or struct: entries in order (keys of a struct are [`Value::String`]s).
    Map(Vec<(Value, Value)>),
    /// An enum variant: its name and its payload (`Unit` for a unit variant, the inner value
    /// for a newtype variant, a `Seq` for a tuple variant, a `Map` for a struct variant).
    Variant(CompactString, Box<Value>),
    /// A reference to an object: a live handle a dynamic caller can call like any
    /// [`DynObject`](crate::DynObject), and pass on in further calls.
    Ref(crate::handle::DynObject),
}

impl Value {
    /// Returns the name of this variant in lowercase: `"unit"`, `"int"`, `"string"`, ...
    ///
    /// Meant for messages such as "expected a string, found an int".
    pub fn kind(&self) -> &'static str {
        match self {
            Value::Unit => "unit",
            Value::Bool(_) => "bool",
            Value::Int(_) => "int",
            Value::UInt(_) => "uint",
            Value::Int128(_) => "int128",
            Value::UInt128(_) => "uint128",
            Value::Float(_) => "float",
            Value::Char(_) => "char",
            Value::String(_) => "string",
            Value::Bytes(_) => "bytes",
            Value::Option(_) => "option",
            Value::Seq(_) => "seq",
            Value::Map(_) => "map",
            Value::Variant(..) => "variant",
            Value::Ref(_) => "ref",
        }
    }

    /// Returns `true` if this is [`Value::Unit`].
    pub fn is_unit(&self) -> bool {
        matches!(self, Value::Unit)
    }

    /// Returns the boolean of a [`Value::Bool`].
    pub fn as_bool(&self) -> Option<bool> {
        match *self {
            Value::Bool(v) => Some(v),
            _ => None,
        }
    }

    /// Returns the integer of any integer variant, if it fits in an `i64`.
    pub fn as_i64(&self) -> Option<i64> {
        match *self {
            Value::Int(v) => Some(v),
            Value::UInt(v) => i64::try_from(v).ok(),
            Value::Int128(v) => i64::try_from(v).ok(),
            Value::UInt128(v) => i64::try_from(v).ok(),
            _ => None,
        }
    }

    /// Returns the integer of any integer variant, if it fits in a `u64`.
    pub fn as_u64(&self) -> Option<u64> {
        match *self {
            Value::Int(v) => u64::try_from(v).ok(),
            Value::UInt(v) => Some(v),
            Value::Int128(v) => u64::try_from(v).ok(),
            Value::UInt128(v) => u64::try_from(v).ok(),
            _ => None,
        }
    }

    /// Returns the number of a [`Value::Float`] or of any integer variant.
    ///
    /// Integers too large for an `f64` mantissa are rounded to the nearest `f64`.
    #[allow(clippy::cast_precision_loss)]
    pub fn as_f64(&self) -> Option<f64> {
        match *self {
            Value::Float(v) => Some(v),
            Value::Int(v) => Some(v as f64),
            Value::UInt(v) => Some(v as f64),
            Value::Int128(v) => Some(v as f64),
            Value::UInt128(v) => Some(v as f64),
            _ => None,
        }
    }

    /// Returns the string of a [`Value::String`].
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::String(v) => Some(v),
            _ => None,
        }
    }

    /// Returns the bytes of a [`Value::Bytes`].
    pub fn as_bytes(&self) -> Option<&[u8]> {
        match self {
            Value::Bytes(v) => Some(v),
            _ => None,
        }
    }

    /// Returns the elements of a [`Value::Seq`].
    pub fn as_seq(&self) -> Option<&[Value]> {
        match self {
            Value::Seq(v) => Some(v),
            _ => None,
        }
    }

    /// Returns the entries of a [`Value::Map`].
    pub fn as_map(&self) -> Option<&[(Value, Value)]> {
        match self {
            Value::Map(v) => Some(v),
            _ => None,
        }
    }

    /// Returns the value of the first entry of a [`Value::Map`] whose key is the string `key`.
    ///
    /// This is how a field of a struct is looked up.
    ///
    /// # Examples
    ///
    /// ```
    /// use dopy_core::value::{to_value, Value};
    ///
    /// #[derive(serde::Serialize)]
    /// struct Point {
    ///     x: i32,
    /// }
    ///
    /// let v = to_value(&Point { x: 3 }).unwrap();
    /// assert_eq!(v.get("x"), Some(&Value::Int(3)));
    /// assert_eq!(v.get("y"), None);
    /// ```
    pub fn get(&self, key: &str) -> Option<&Value> {
        self.as_map()?.iter().find(|(k, _)| k.as_str() == Some(key)).map(|(_, v)| v)
    }
}

/// Converts integers of at most 64 bits to [`Value::Int`] or [`Value::UInt`].
macro_rules! from_int {
    ($($t:ty => $variant:ident),* $(,)?) => {$(
        impl From<$t> for Value {
            fn from(v: $t) -> Self {
                Value::$variant(v.into())
            }
        }
    )*};
}

from_int!(
    i8 => Int, i16 => Int, i32 => Int, i64 => Int,
    u8 => UInt, u16 => UInt, u32 => UInt, u64 => UInt,
);

impl From<isize> for Value {
    fn from(v: isize) -> Self {
        match i64::try_from(v) {
            Ok(v) => Value::Int(v),
            // Only on targets with pointers wider than 64 bits.
            Err(_) => Value::Int128(v as i128),
        }
    }
}

impl From<usize> for Value {
    fn from(v: usize) -> Self {
        match u64::try_from(v) {
            Ok(v) => Value::UInt(v),
            // Only on targets with pointers wider than 64 bits.
            Err(_) => Value::UInt128(v as u128),
        }
    }
}

impl From<bool> for Value {
    fn from(v: bool) -> Self {
        Value::Bool(v)
    }
}

impl From<i128> for Value {
    fn from(v: i128) -> Self {
        Value::Int128(v)
    }
}

impl From<u128> for Value {
    fn from(v: u128) -> Self {
        Value::UInt128(v)
    }
}

impl From<f32> for Value {
    fn from(v: f32) -> Self {
        Value::Float(v.into())
    }
}

impl From<f64> for Value {
    fn from(v: f64) -> Self {
        Value::Float(v)
    }
}

impl From<char> for Value {
    fn from(v: char) -> Self {
        Value::Char(v)
    }
}

impl From<&str> for Value {
    fn from(v: &str) -> Self {
        Value::String(v.into())
    }
}

impl From<String> for Value {
    fn from(v: String) -> Self {
        Value::String(v.into())
    }
}

impl From<Vec<Value>> for Value {
    fn from(v: Vec<Value>) -> Self {
        Value::Seq(v)
    }
}

impl<T: Into<Value>> From<Option<T>> for Value {
    fn from(v: Option<T>) -> Self {
        Value::Option(v.map(|v| Box::new(v.into())))
    }
}

/// Writes `s` as a JSON string literal.
fn write_json_str(f: &mut fmt::Formatter<'_>, s: &str) -> fmt::Result {
    f.write_str("\"")?;
    let mut plain = 0;
    for (i, c) in s.char_indices() {
        let escape = match c {
            '"' => "\\\"",
            '\\' => "\\\\",
            '\n' => "\\n",
            '\r' => "\\r",
            '\t' => "\\t",
            c if c.is_control() => "",
            _ => continue,
        };
        f.write_str(&s[plain..i])?;
        if escape.is_empty() {
            write!(f, "\\u{:04x}", u32::from(c))?;
        } else {
            f.write_str(escape)?;
        }
        plain = i + c.len_utf8();
    }
    f.write_str(&s[plain..])?;
    f.write_str("\"")
}

/// A readable, JSON-like form for people, as the `dopy` command-line tool prints it.
///
/// [`Value::Unit`] is `()`, numbers are written as Rust writes them (a float always has a
/// decimal point or an exponent: `1.0`), a char is quoted `'c'`, a string is a JSON string,
/// bytes are `b"..."` with escapes, `None` is `null` and `Some(x)` is `x`, a sequence is
/// `[a, b]`, a map is `{k: v, ...}` and a variant is `Name` (unit payload) or `Name(payload)`.
///
/// # Examples
///
/// ```
/// use dopy_core::value::Value;
///
/// let v = Value::Map(vec![(
///     Value::String("a".into()),
///     Value::Seq(vec![Value::Float(1.0), Value::Option(None)]),
/// )]);
/// assert_eq!(v.to_string(), r#"{"a": [1.0, null]}"#);
/// ```
impl fmt::Display for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Value::Unit => f.write_str("()"),
            Value::Bool(v) => write!(f, "{v}"),
            Value::Int(v) => write!(f, "{v}"),
            Value::UInt(v) => write!(f, "{v}"),
            Value::Int128(v) => write!(f, "{v}"),
            Value::UInt128(v) => write!(f, "{v}"),
            // `Debug` always writes a decimal point or an exponent (`1.0`, `1e100`).
            Value::Float(v) => write!(f, "{v:?}"),
            Value::Char(v) => write!(f, "{v:?}"),
            Value::String(v) => write_json_str(f, v),
            Value::Bytes(v) => write!(f, "b\"{}\"", v.escape_ascii()),
            Value::Option(None) => f.write_str("null"),
            Value::Option(Some(v)) => v.fmt(f),
            Value::Seq(items) => {
                f.write_str("[")?;
                for (i, item) in items.iter().enumerate() {
                    if i > 0 {
                        f.write_str(", ")?;
                    }
                    item.fmt(f)?;
                }
                f.write_str("]")
            }
            Value::Map(entries) => {
                f.write_str("{")?;
                for (i, (k, v)) in entries.iter().enumerate() {
                    if i > 0 {
                        f.write_str(", ")?;
                    }
                    write!(f, "{k}: {v}")?;
                }
                f.write_str("}")
            }
            Value::Variant(name, payload) => match **payload {
                Value::Unit => f.write_str(name),
                _ => write!(f, "{name}({payload})"),
            },
            Value::Ref(obj) => write!(f, "<object {obj}>"),
        }
    }
}
