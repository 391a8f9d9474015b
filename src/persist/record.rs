//! How a persistent object's state is stored: one record per object name.
//!
//! A record is the postcard encoding of a format number (a varint, `1`), then of
//! `(version: u32, type_name: String, state: Value)`, where the state is a [`Value`] in its wire
//! encoding (PROTOCOL.md, section 4). The state is thus *self-describing*: structs keep their
//! field names, so a field added with `#[serde(default)]` or a field removed reads back
//! without a migration, and anything that no longer fits fails to decode with a message that
//! says why, instead of being misread.

use dopy_core::{from_value, to_value, wire, Value};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use super::Saved;

/// The record format this version of dopy writes and reads.
pub(crate) const FORMAT: u32 = 1;

#[derive(Serialize)]
struct RecordRef<'a> {
    version: u32,
    type_name: &'a str,
    #[serde(with = "wire")]
    state: &'a Value,
}

#[derive(Deserialize)]
struct RecordV1 {
    version: u32,
    type_name: String,
    #[serde(with = "wire")]
    state: Value,
}

/// Why a record could not be read.
#[derive(Debug)]
pub(crate) enum Unreadable {
    /// Written by a newer dopy, in a format this one does not know.
    NewerFormat(u32),
    /// Not a record at all.
    Corrupt(String),
}

/// Turns a state into a [`Value`].
///
/// # Errors
///
/// The state's `Serialize` failed, or it holds an object reference (references live only as
/// long as a connection: they cannot be saved).
pub(crate) fn state_value<T: Serialize>(state: &T) -> Result<Value, String> {
    let value = to_value(state).map_err(|e| e.to_string())?;
    if holds_reference(&value) {
        return Err("the state holds an object reference, which cannot be saved".into());
    }
    Ok(value)
}

fn holds_reference(value: &Value) -> bool {
    match value {
        Value::Ref(_) => true,
        Value::Option(Some(v)) | Value::Variant(_, v) => holds_reference(v),
        Value::Seq(values) => values.iter().any(holds_reference),
        Value::Map(entries) => entries.iter().any(|(k, v)| holds_reference(k) || holds_reference(v)),
        _ => false,
    }
}

/// Encodes a record.
pub(crate) fn encode(version: u32, type_name: &str, state: &Value) -> Result<Vec<u8>, String> {
    let mut bytes = postcard::to_allocvec(&FORMAT).map_err(|e| e.to_string())?;
    let record = RecordRef { version, type_name, state };
    bytes.extend(postcard::to_allocvec(&record).map_err(|e| format!("the state could not be encoded: {e}"))?);
    Ok(bytes)
}

/// Decodes a record.
pub(crate) fn decode(bytes: &[u8]) -> Result<Saved, Unreadable> {
    let (format, rest) =
        postcard::take_from_bytes::<u32>(bytes).map_err(|e| Unreadable::Corrupt(format!("no format number: {e}")))?;
    if format != FORMAT {
        return Err(Unreadable::NewerFormat(format));
    }
    let record: RecordV1 = postcard::from_bytes(rest).map_err(|e| Unreadable::Corrupt(e.to_string()))?;
    Ok(Saved { version: record.version, type_name: record.type_name, state: record.state })
}

/// Decodes a saved state as `T`.
pub(crate) fn state<T: DeserializeOwned>(value: Value) -> Result<T, String> {
    from_value(value).map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_record_round_trips() {
        let state = Value::Map(vec![(Value::from("n"), Value::UInt(3))]);
        let bytes = encode(2, "app::Counter", &state).unwrap();
        assert_eq!(bytes[0], 1, "the format number comes first");
        let saved = decode(&bytes).unwrap();
        assert_eq!((saved.version, saved.type_name.as_str(), saved.state), (2, "app::Counter", state));
    }

    #[test]
    fn a_newer_format_is_refused_not_misread() {
        let mut bytes = encode(1, "T", &Value::Unit).unwrap();
        bytes[0] = 2;
        assert!(matches!(decode(&bytes), Err(Unreadable::NewerFormat(2))));
        assert!(matches!(decode(&[]), Err(Unreadable::Corrupt(_))));
    }
}
