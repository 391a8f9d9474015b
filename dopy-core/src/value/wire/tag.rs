//! The tags of the wire form: the variant indexes (binary formats) and names (human-readable
//! formats) of the serde enum a [`Value`](crate::value::Value) is written as.

use std::fmt;

use serde::de::{self, Unexpected, Visitor};
use serde::{Deserialize, Deserializer};

/// The serde name of the wire enum.
pub(super) const NAME: &str = "Value";

/// Variant names of the wire enum, in tag order.
pub(super) const VARIANTS: &[&str] = &[
    "Unit", "Bool", "Int", "UInt", "Int128", "UInt128", "Float", "Char", "String", "Bytes", "Option", "Seq", "Map",
    "Variant", "Ref",
];

/// A wire tag; the discriminant is the stable tag number.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Tag {
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
pub(super) const TAGS: [Tag; 15] = [
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
    pub(super) fn index(self) -> u32 {
        self as u32
    }

    /// The serde variant name.
    pub(super) fn name(self) -> &'static str {
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

    pub(super) fn from_index(index: u64) -> Option<Tag> {
        usize::try_from(index).ok().and_then(|i| TAGS.get(i)).copied()
    }

    pub(super) fn from_name(name: &str) -> Option<Tag> {
        TAGS.iter().copied().find(|tag| tag.name() == name)
    }
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
