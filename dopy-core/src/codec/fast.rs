//! Hand-written encoders and decoders for the two messages every call makes, in their common
//! shape: a `Call` (typed or dynamic arguments) and a `Return` with a typed or dynamic result,
//! neither carrying references.
//!
//! serde's derived code walks a message through visitors, sequence accesses and per-field
//! calls; for these few fields that machinery costs more than the bytes (callgrind: about 900
//! instructions to encode a call of `add(i64, i64)`, 950 to decode it). These functions write
//! exactly the bytes postcard writes and accept exactly what it accepts in this shape; anything
//! else (a reference table, dynamic arguments, an error, a malformed field) returns `None` and
//! is left to serde, which decodes it or reports the error. `dopy-core/tests/props.rs` compares
//! both paths on arbitrary and mangled messages.

use bytes::{BufMut, Bytes};

use super::encode::BufFlavor;
use super::{splice, Args, ObjectId, TargetIn};
use crate::arena::encode_sized;
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
/// `Args::Positional`'s.
const POSITIONAL_ARGS: u8 = 1;
/// `Args::Named`'s.
const NAMED_ARGS: u8 = 2;
/// `Outcome::Ok`'s.
const OK: u8 = 0;
/// `Payload::Typed`'s.
const TYPED_RESULT: u8 = 0;
/// `Payload::Dynamic`'s.
const DYNAMIC_RESULT: u8 = 1;
/// An empty reference table (its length).
const NO_REFS: u8 = 0;
/// `Option::None` and `Some`.
const NONE: u8 = 0;
const SOME: u8 = 1;

/// The fields of a call without references, its arguments aside.
#[derive(Debug)]
pub(crate) struct CallHead<'a> {
    pub(super) id: u64,
    pub(super) target: TargetIn<'a>,
    pub(super) method: &'a str,
    pub(super) flags: u32,
    pub(super) deadline: Option<u64>,
    pub(super) chain: u64,
}

/// A call's arguments as [`decode_call`] reads them.
#[derive(Debug)]
pub(super) enum ArgsIn<'a> {
    /// The postcard bytes of the argument tuple (a slice of the frame).
    Typed(&'a [u8]),
    /// Dynamic arguments, read by the wire reader.
    Dynamic(Args),
}

impl<'a> ArgsIn<'a> {
    /// The arguments, typed ones made a payload by `typed` (a slice of the frame, or a copy).
    pub(super) fn into_args(self, typed: impl FnOnce(&'a [u8]) -> Bytes) -> Args {
        match self {
            ArgsIn::Typed(bytes) => Args::Typed(typed(bytes)),
            ArgsIn::Dynamic(args) => args,
        }
    }
}

/// The size of a length-prefixed byte string.
#[inline]
fn bytes_len(b: &[u8]) -> usize {
    varint_len(b.len() as u64) + b.len()
}

#[inline]
fn push_bytes(out: &mut impl BufMut, b: &[u8]) {
    push_varint64(out, b.len() as u64);
    out.put_slice(b);
}

/// Encodes the `Message::Call` with `head`'s fields, no references and `args`, as postcard
/// does, in bytes of the exact size. Typed arguments are copied in; dynamic ones are
/// written by their serde impl (the wire form of each value).
///
/// # Errors
///
/// As postcard's: a value nested too deep (see `value::wire::with_max_depth`).
pub(super) fn encode_call(head: &CallHead<'_>, args: &Args) -> Result<Bytes, postcard::Error> {
    encode_sized(call_len(head, args_len(args)?), |out| write_call(head, args, out))
}

/// The size of `args` in a call.
///
/// # Errors
///
/// As postcard's, for dynamic arguments.
pub(super) fn args_len(args: &Args) -> Result<usize, postcard::Error> {
    match args {
        Args::Typed(b) => Ok(1 + bytes_len(b)),
        Args::TypedParts(p) => Ok(1 + varint_len(p.len() as u64) + p.len()),
        other => postcard::serialize_with_flavor(other, postcard::ser_flavors::Size::default()),
    }
}

/// The size of a call with `head`'s fields, no references and arguments of `args_len` bytes.
fn call_len(head: &CallHead<'_>, args_len: usize) -> usize {
    let target = match head.target {
        TargetIn::Name(name) => bytes_len(name.as_bytes()),
        TargetIn::Id(_) => 16,
    };
    let deadline = head.deadline.map_or(0, varint_len);
    1 + varint_len(head.id)
        + 1
        + target
        + bytes_len(head.method.as_bytes())
        + 1
        + args_len
        + varint_len(u64::from(head.flags))
        + 1
        + deadline
        + varint_len(head.chain)
}

/// Writes the call of [`encode_call`].
fn write_call(head: &CallHead<'_>, args: &Args, out: &mut impl BufMut) -> Result<(), postcard::Error> {
    write_call_head(head, out);
    match args {
        Args::Typed(b) => write_typed_args(b, out),
        Args::TypedParts(p) => {
            out.put_u8(TYPED_ARGS);
            splice::write_prefixed(p, out);
        }
        other => {
            postcard::serialize_with_flavor(other, BufFlavor(&mut *out))?;
        }
    }
    write_call_tail(head, out);
    Ok(())
}

/// A call's fields up to its arguments (its reference table empty).
pub(super) fn write_call_head(head: &CallHead<'_>, out: &mut impl BufMut) {
    out.put_u8(CALL);
    push_varint64(out, head.id);
    match head.target {
        TargetIn::Name(name) => {
            out.put_u8(NAME);
            push_bytes(out, name.as_bytes());
        }
        TargetIn::Id(id) => {
            out.put_u8(ID);
            out.put_slice(&id.0);
        }
    }
    push_bytes(out, head.method.as_bytes());
    out.put_u8(NO_REFS);
}

/// `Args::Typed(args)`.
fn write_typed_args(args: &[u8], out: &mut impl BufMut) {
    out.put_u8(TYPED_ARGS);
    push_bytes(out, args);
}

/// `Args::Typed` of `len` bytes, up to those bytes.
pub(super) fn write_typed_args_prefix(len: usize, out: &mut impl BufMut) {
    out.put_u8(TYPED_ARGS);
    push_varint64(out, len as u64);
}

/// The `Return` of call `id` with `Outcome::Ok` of a typed result of `len` bytes and no
/// references, up to the result's bytes.
pub(super) fn write_typed_return_head(id: u64, len: usize, out: &mut impl BufMut) {
    out.put_u8(RETURN);
    push_varint64(out, id);
    out.put_slice(&[NO_REFS, OK, TYPED_RESULT]);
    push_varint64(out, len as u64);
}

/// A call's fields after its arguments.
pub(super) fn write_call_tail(head: &CallHead<'_>, out: &mut impl BufMut) {
    push_varint64(out, u64::from(head.flags));
    match head.deadline {
        None => out.put_u8(NONE),
        Some(d) => {
            out.put_u8(SOME);
            push_varint64(out, d);
        }
    }
    push_varint64(out, head.chain);
}

/// A small message of the common kinds: a call, a return with a typed or wire result, neither
/// with references. A connection writes these straight into its outgoing buffer
/// ([`Small::write`]).
#[derive(Debug)]
pub(crate) enum Small<'a> {
    /// A `Message::Call` with `head`'s fields and `args`.
    Call {
        /// The fields.
        head: CallHead<'a>,
        /// The arguments.
        args: &'a Args,
        /// Their size ([`args_len`]).
        args_len: usize,
    },
    /// The `Return` of call `id` with `Outcome::Ok` of the typed result `result`.
    TypedReturn {
        /// The call's id.
        id: u64,
        /// The result's postcard bytes.
        result: &'a [u8],
    },
    /// The `Return` of call `id` with `Outcome::Ok` of the dynamic result whose wire form is
    /// `wire`.
    WireReturn {
        /// The call's id.
        id: u64,
        /// The result's wire bytes.
        wire: &'a [u8],
    },
}

impl Small<'_> {
    /// The size of the encoding.
    pub(crate) fn len(&self) -> usize {
        match self {
            Small::Call { head, args_len, .. } => call_len(head, *args_len),
            Small::TypedReturn { id, result } => 1 + varint_len(*id) + 3 + bytes_len(result),
            Small::WireReturn { id, wire } => 1 + varint_len(*id) + 3 + wire.len(),
        }
    }

    /// The encoding, in bytes of the exact size.
    ///
    /// # Errors
    ///
    /// As [`write`](Small::write).
    pub(crate) fn encode(&self) -> Result<Bytes, postcard::Error> {
        encode_sized(self.len(), |out| self.write(out))
    }

    /// Writes exactly [`len`](Small::len) bytes: what postcard writes for the message.
    ///
    /// # Errors
    ///
    /// Only dynamic arguments can fail (nested deeper than the thread's limit), as in
    /// [`args_len`]: the same limit gives the same answer.
    pub(crate) fn write(&self, out: &mut impl BufMut) -> Result<(), postcard::Error> {
        match self {
            Small::Call { head, args, .. } => return write_call(head, args, out),
            Small::TypedReturn { id, result } => {
                write_typed_return_head(*id, result.len(), out);
                out.put_slice(result);
            }
            Small::WireReturn { id, wire } => {
                out.put_u8(RETURN);
                push_varint64(out, *id);
                out.put_slice(&[NO_REFS, OK, DYNAMIC_RESULT]);
                out.put_slice(wire);
            }
        }
        Ok(())
    }
}

/// Reads `frame` as a `Message::Call` with no references; `None` for anything else,
/// well-formed or not.
pub(super) fn decode_call(frame: &[u8]) -> Option<(CallHead<'_>, ArgsIn<'_>)> {
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
    if r.byte().ok()? != NO_REFS {
        return None;
    }
    let args = match r.byte().ok()? {
        TYPED_ARGS => {
            let len = r.len().ok()?;
            ArgsIn::Typed(r.bytes(len).ok()?)
        }
        POSITIONAL_ARGS => ArgsIn::Dynamic(Args::Positional(r.wire_values().ok()?)),
        NAMED_ARGS => ArgsIn::Dynamic(Args::Named(r.named_wire_values().ok()?)),
        _ => return None,
    };
    // Within 32 bits by the varint rules.
    let flags = r.varint64(32).ok()? as u32;
    let deadline = match r.byte().ok()? {
        NONE => None,
        SOME => Some(r.u64().ok()?),
        _ => return None,
    };
    let chain = r.u64().ok()?;
    r.rest().is_empty().then_some((CallHead { id, target, method, flags, deadline, chain }, args))
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
