//! The wire form of a `Vec<Value>`: a sequence of wire values.
//!
//! Use as `#[serde(with = "crate::value::wire::seq")]` on a `Vec<Value>` field. Each element is
//! at nesting level 1.

use serde::de::DeserializeSeed as _;
use serde::{Deserializer, Serializer};

use super::decode::SeqSeed;
use super::encode::At;
use crate::value::Value;

/// Writes `values` as a sequence of wire values.
///
/// # Errors
///
/// Fails if the serializer fails or if a value is nested deeper than
/// [`max_depth`](super::max_depth) levels.
pub fn serialize<S: Serializer>(values: &[Value], serializer: S) -> Result<S::Ok, S::Error> {
    serializer.collect_seq(values.iter().map(|value| At { value, depth: 1 }))
}

/// Reads a sequence of wire values.
///
/// # Errors
///
/// Fails if the input is not a sequence of wire values (see [`super::deserialize`]).
pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Vec<Value>, D::Error> {
    SeqSeed { depth: 1 }.deserialize(deserializer)
}
