//! Hand-written encoders and decoders for the two messages every call makes, in their common
//! shape: a `Call` with typed arguments and a `Return` with a typed result, neither carrying
//! references.
//!
//! serde's derived code walks a message through visitors, sequence accesses and per-field
//! calls; for these few fields that machinery costs more than the bytes (callgrind: about 900
//! instructions to encode a call of `add(i64, i64)`, 950 to decode it). These functions write
//! exactly the bytes postcard writes and accept exactly what it accepts in this shape; anything
//! else (a reference table, dynamic arguments, an error, a malformed field) returns `None` and
//! is left to serde, which decodes it or reports the error. `dopy-core/tests/props.rs` compares
//! both paths on arbitrary and mangled messages.

use bytes::Bytes;

use super::{ObjectId, TargetIn};
use crate::value::wire::{push_varint64, varint_len, Reader};

/// `Message::Call`'s variant index (postcard writes variant indices as varints: every index
/// here is below 128, one byte).
const CALL: u8 = 0;
/// `Message::Return`'s.
const RETURN: u8 = 1;
/// `Target::Name`'s.
const NAME: u8 = 0;
/// `Target::Id`'s.
const ID: u8 = 1;
/// `Args::Typed`'s.
const TYPED_ARGS: u8 = 0;
/// `Outcome::Ok`'s.
const OK: u8 = 0;
/// `Payload::Typed`'s.
const TYPED_RESULT: u8 = 0;
/// An empty reference table (its length).
const NO_REFS: u8 = 0;
/// `Option::None` and `Some`.
const NONE: u8 = 0;
const SOME: u8 = 1;

/// The fields of a call without references and with typed arguments.
#[derive(Debug)]
pub(super) struct TypedCall<'a> {
    pub(super) id: u64,
    pub(super) target: TargetIn<'a>,
    pub(super) method: &'a str,
    /// The postcard bytes of the argument tuple.
    pub(super) args: &'a [u8],
    pub(super) flags: u32,
    pub(super) deadline: Option<u64>,
    pub(super) chain: u64,
}

/// The size of a length-prefixed byte string.
#[inline]
fn bytes_len(b: &[u8]) -> usize {
    varint_len(b.len() as u64) + b.len()
}

#[inline]
fn push_bytes(out: &mut Vec<u8>, b: &[u8]) {
    push_varint64(out, b.len() as u64);
    out.extend_from_slice(b);
}

/// Encodes `call` as postcard encodes the `Message::Call` with its fields and no references,
/// in one allocation of the exact size.
pub(super) fn encode_call(call: &TypedCall<'_>) -> Bytes {
    let target = match call.target {
        TargetIn::Name(name) => bytes_len(name.as_bytes()),
        TargetIn::Id(_) => 16,
    };
    let deadline = call.deadline.map_or(0, varint_len);
    let size = 1
        + varint_len(call.id)
        + 1
        + target
        + bytes_len(call.method.as_bytes())
        + 1
        + 1
        + bytes_len(call.args)
        + varint_len(u64::from(call.flags))
        + 1
        + deadline
        + varint_len(call.chain);
    let mut out = Vec::with_capacity(size);
    out.push(CALL);
    push_varint64(&mut out, call.id);
    match call.target {
        TargetIn::Name(name) => {
            out.push(NAME);
            push_bytes(&mut out, name.as_bytes());
        }
        TargetIn::Id(id) => {
            out.push(ID);
            out.extend_from_slice(&id.0);
        }
    }
    push_bytes(&mut out, call.method.as_bytes());
    out.push(NO_REFS);
    out.push(TYPED_ARGS);
    push_bytes(&mut out, call.args);
    push_varint64(&mut out, u64::from(call.flags));
    match call.deadline {
        None => out.push(NONE),
        Some(d) => {
            out.push(SOME);
            push_varint64(&mut out, d);
        }
    }
    push_varint64(&mut out, call.chain);
    debug_assert_eq!(out.len(), size, "the size computed beforehand");
    Bytes::from(out)
}

/// Encodes the `Message::Return` of call `id` with no references and `Outcome::Ok` of the
/// typed result `result`, in one allocation of the exact size.
pub(super) fn encode_typed_return(id: u64, result: &[u8]) -> Bytes {
    let size = 1 + varint_len(id) + 3 + bytes_len(result);
    let mut out = Vec::with_capacity(size);
    out.push(RETURN);
    push_varint64(&mut out, id);
    out.extend_from_slice(&[NO_REFS, OK, TYPED_RESULT]);
    push_bytes(&mut out, result);
    debug_assert_eq!(out.len(), size, "the size computed beforehand");
    Bytes::from(out)
}

/// Reads `frame` as a `Message::Call` with no references and typed arguments; `None` for
/// anything else, well-formed or not.
pub(super) fn decode_call(frame: &[u8]) -> Option<TypedCall<'_>> {
    let mut r = Reader::plain(frame);
    if r.byte().ok()? != CALL {
        return None;
    }
    let id = r.u64().ok()?;
    let target = match r.byte().ok()? {
        NAME => TargetIn::Name(r.str().ok()?),
        ID => TargetIn::Id(ObjectId(r.bytes(16).ok()?.try_into().ok()?)),
        _ => return None,
    };
    let method = r.str().ok()?;
    if r.byte().ok()? != NO_REFS || r.byte().ok()? != TYPED_ARGS {
        return None;
    }
    let len = r.len().ok()?;
    let args = r.bytes(len).ok()?;
    // Within 32 bits by the varint rules.
    let flags = r.varint64(32).ok()? as u32;
    let deadline = match r.byte().ok()? {
        NONE => None,
        SOME => Some(r.u64().ok()?),
        _ => return None,
    };
    let chain = r.u64().ok()?;
    r.rest().is_empty().then_some(TypedCall { id, target, method, args, flags, deadline, chain })
}

/// Reads `frame` as a `Message::Return` with no references and a typed result: the call's id
/// and the result's bytes. `None` for anything else, well-formed or not.
pub(super) fn decode_typed_return(frame: &[u8]) -> Option<(u64, &[u8])> {
    let mut r = Reader::plain(frame);
    if r.byte().ok()? != RETURN {
        return None;
    }
    let id = r.u64().ok()?;
    if r.bytes(3).ok()? != [NO_REFS, OK, TYPED_RESULT] {
        return None;
    }
    let len = r.len().ok()?;
    let result = r.bytes(len).ok()?;
    r.rest().is_empty().then_some((id, result))
}
