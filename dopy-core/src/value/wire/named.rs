//! The wire form of a `Vec<(String, Value)>`: a sequence of (name, wire value) pairs.
//!
//! Use as `#[serde(with = "crate::value::wire::named")]` on a `Vec<(String, Value)>` field, for
//! instance named arguments. Each value is at nesting level 1.

use std::fmt;

use serde::de::{SeqAccess, Visitor};
use serde::{Deserializer, Serializer};

use super::decode::{collect, NamedSeed};
use super::encode::At;
use crate::value::Value;

/// Writes `entries` as a sequence of (name, wire value) pairs.
///
/// # Errors
///
/// Fails if the serializer fails or if a value is nested deeper than
/// [`max_depth`](super::max_depth) levels.
pub fn serialize<S: Serializer>(entries: &[(String, Value)], serializer: S) -> Result<S::Ok, S::Error> {
    serializer.collect_seq(entries.iter().map(|(name, value)| (name.as_str(), At { value, depth: 1 })))
}

/// Reads a sequence of (name, wire value) pairs.
///
/// # Errors
///
/// Fails if the input is not a sequence of (string, wire value) pairs (see
/// [`super::deserialize`]).
pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Vec<(String, Value)>, D::Error> {
    struct NamedSeqVisitor;

    impl<'de> Visitor<'de> for NamedSeqVisitor {
        type Value = Vec<(String, Value)>;

        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a sequence of (name, wire-encoded value) pairs")
        }

        fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Self::Value, A::Error> {
            collect(seq, NamedSeed::new(1))
        }
    }

    deserializer.deserialize_seq(NamedSeqVisitor)
}
