//! Encoding messages: whole ([`Message::encode`], the common shapes by hand in [`fast`]), or
//! in parts around a large typed payload that is not copied ([`Message::encode_shared`]); a call
//! borrowed from its handle ([`CallRef`]); and the postcard output flavors behind them.

use bytes::{BufMut, Bytes};
use serde::Serialize;

use super::fast::{self, Small};
use super::message::{Args, Call, Message, Outcome, Payload, RefWire, Target, TargetIn, SHARE_MIN};
use super::splice;
use crate::arena::encode_sized;
use crate::value::Value;

impl Message {
    /// Encodes the message into a fresh buffer.
    ///
    /// The buffer is allocated once, at the exact size (measured by a first pass, which only
    /// adds lengths): no reallocation while encoding, and none when the `Vec` becomes [`Bytes`].
    ///
    /// # Errors
    ///
    /// A postcard error, which only a failing `Serialize` impl inside typed data could cause.
    pub fn encode(&self) -> Result<Bytes, postcard::Error> {
        if let Some(bytes) = self.encode_fast(usize::MAX) {
            return bytes;
        }
        match self.spliced() {
            Some((head, wire)) => {
                let mut out = encode_head(&head, wire.len())?;
                out.extend_from_slice(wire);
                Ok(Bytes::from(out))
            }
            None => to_bytes(self),
        }
    }

    /// A `Call` or a `Return` with a typed or dynamic result, without references and with a
    /// typed payload below `limit` bytes, encoded by hand ([`fast`]); `None` for any other
    /// message.
    fn encode_fast(&self, limit: usize) -> Option<Result<Bytes, postcard::Error>> {
        match self {
            Message::Call(c) if c.refs.is_empty() && typed_len(&c.args) < limit => {
                Some(fast::encode_call(&c.head(), &c.args))
            }
            Message::Return { id, refs, outcome: Outcome::Ok(payload) } if refs.is_empty() => {
                small_return(*id, payload, limit).map(|m| m.encode())
            }
            _ => None,
        }
    }

    /// A `Return` whose result is a [`Payload::Wire`]: the same message with a one-byte
    /// placeholder (`Value::Unit`, whose wire form is the single tag byte 0) as its result, and
    /// the bytes to write in place of that byte. The result is the last thing in a `Return`,
    /// so the head's bytes without their last one, followed by the wire bytes, are the message.
    fn spliced(&self) -> Option<(Message, &Bytes)> {
        match self {
            Message::Return { id, refs, outcome: Outcome::Ok(Payload::Wire(wire)) } => {
                let placeholder = Outcome::Ok(Payload::Dynamic(Value::Unit));
                Some((Message::Return { id: *id, refs: refs.clone(), outcome: placeholder }, wire.bytes()))
            }
            _ => None,
        }
    }

    /// Encodes the message without copying a large typed payload into it.
    ///
    /// A `Call` with typed arguments, or a `Return` with a typed result, of at least
    /// [`SHARE_MIN`] bytes is encoded in parts: what precedes the payload, the payload itself
    /// (shared, not copied) and what follows it, if anything; written one after the other, the
    /// parts are exactly [`encode`](Message::encode)'s bytes. Anything else is encoded whole.
    ///
    /// # Errors
    ///
    /// As [`encode`](Message::encode).
    pub fn encode_shared(&self) -> Result<Encoded, postcard::Error> {
        if let Some(bytes) = self.encode_fast(SHARE_MIN) {
            return bytes.map(Encoded::Whole);
        }
        // Payloads in parts (without references, as they are made) stay in their parts.
        match self {
            Message::Call(c @ Call { args: Args::TypedParts(args), .. }) if c.refs.is_empty() => {
                return Ok(Encoded::Parts(splice::encode_call(&c.head(), args)));
            }
            Message::Return { id, refs, outcome: Outcome::Ok(Payload::TypedParts(result)) } if refs.is_empty() => {
                return Ok(Encoded::Parts(splice::encode_return(*id, result)));
            }
            _ => {}
        }
        if let Some((head, wire)) = self.spliced() {
            if wire.len() < SHARE_MIN {
                return self.encode().map(Encoded::Whole);
            }
            return Ok(Encoded::Parts(vec![Bytes::from(encode_head(&head, 0)?), wire.clone()]));
        }
        let payload = match self {
            Message::Call(Call { args: Args::Typed(b), .. }) => Some(b),
            Message::Return { outcome: Outcome::Ok(Payload::Typed(b)), .. } => Some(b),
            _ => None,
        };
        encode_around(self, payload)
    }
}

impl Call {
    /// The fields the hand-written encoders take.
    fn head(&self) -> fast::CallHead<'_> {
        fast::CallHead {
            id: self.id,
            target: TargetIn::of(&self.target),
            method: &self.method,
            flags: self.flags,
            deadline: self.deadline,
            chain: self.chain,
        }
    }
}

/// The `Return` of call `id` with `Outcome::Ok(payload)` and no references as a [`Small`]
/// message, when the payload is typed or wire bytes of fewer than `limit` bytes.
pub(crate) fn small_return(id: u64, payload: &Payload, limit: usize) -> Option<Small<'_>> {
    match payload {
        Payload::Typed(result) if result.len() < limit => Some(Small::TypedReturn { id, result }),
        Payload::Wire(wire) if wire.bytes().len() < limit => Some(Small::WireReturn { id, wire: wire.bytes() }),
        _ => None,
    }
}

/// Encodes `value` whole, or in parts around `payload` (a byte string it serializes) when that
/// is at least [`SHARE_MIN`] bytes: see [`Message::encode_shared`].
fn encode_around<T: Serialize>(value: &T, payload: Option<&Bytes>) -> Result<Encoded, postcard::Error> {
    let Some(payload) = payload.filter(|p| p.len() >= SHARE_MIN) else {
        return to_bytes(value).map(Encoded::Whole);
    };
    let size = postcard::serialize_with_flavor(value, postcard::ser_flavors::Size::default())?;
    let mut once = Some(payload);
    let take = move |data: &[u8]| once.take_if(|p| p.as_ptr() == data.as_ptr() && p.len() == data.len()).cloned();
    postcard::serialize_with_flavor(value, Parts::new(take, size - payload.len())).map(Encoded::Parts)
}

/// A `Message::Call` that borrows its target, method and arguments: what a caller encodes,
/// without copying the names its handle keeps into a [`Call`]. Encodes to exactly the bytes of
/// the `Message::Call` with the same fields.
#[derive(Debug)]
pub(crate) struct CallRef<'a> {
    pub(crate) id: u64,
    pub(crate) target: &'a Target,
    pub(crate) method: &'a str,
    pub(crate) refs: Vec<RefWire>,
    pub(crate) args: &'a Args,
    pub(crate) flags: u32,
    pub(crate) deadline: Option<u64>,
    pub(crate) chain: u64,
}

impl CallRef<'_> {
    /// The call as a [`Small`] message, if it is one: no references, arguments of fewer than
    /// [`SHARE_MIN`] bytes, dynamic ones nested no deeper than `max_depth` (write those with
    /// that limit: [`value::wire::with_max_depth`]). Anything else takes the general path,
    /// which reports what is wrong with it.
    pub(crate) fn small(&self, max_depth: usize) -> Option<Small<'_>> {
        if !self.refs.is_empty() {
            return None;
        }
        let args_len = match self.args {
            Args::Typed(args) if args.len() < SHARE_MIN => fast::args_len(self.args).ok()?,
            Args::Typed(_) | Args::TypedParts(_) => return None,
            dynamic => {
                // A reference needs the message's reference table.
                let mut found = Vec::new();
                match dynamic {
                    Args::Positional(values) => values.iter().for_each(|v| crate::value::refs::collect(v, &mut found)),
                    Args::Named(values) => values.iter().for_each(|(_, v)| crate::value::refs::collect(v, &mut found)),
                    Args::Typed(_) | Args::TypedParts(_) => {}
                }
                if !found.is_empty() {
                    return None;
                }
                let limit = super::session::DepthLimit::set(max_depth);
                match fast::args_len(dynamic) {
                    Ok(len) if len < SHARE_MIN && !limit.exceeded() => len,
                    _ => return None,
                }
            }
        };
        Some(Small::Call { head: self.head(), args: self.args, args_len })
    }

    /// The fields the hand-written encoders take.
    fn head(&self) -> fast::CallHead<'_> {
        fast::CallHead {
            id: self.id,
            target: TargetIn::of(self.target),
            method: self.method,
            flags: self.flags,
            deadline: self.deadline,
            chain: self.chain,
        }
    }

    /// As [`Message::encode_shared`] of the same call.
    pub(crate) fn encode_shared(&self) -> Result<Encoded, postcard::Error> {
        if self.refs.is_empty() && typed_len(self.args) < SHARE_MIN {
            return fast::encode_call(&self.head(), self.args).map(Encoded::Whole);
        }
        if let (Args::TypedParts(args), true) = (self.args, self.refs.is_empty()) {
            return Ok(Encoded::Parts(splice::encode_call(&self.head(), args)));
        }
        let payload = match self.args {
            Args::Typed(b) => Some(b),
            _ => None,
        };
        encode_around(self, payload)
    }
}

/// The size of typed arguments (0 for dynamic ones): what decides whether a call's encoding
/// shares its payload instead of copying it.
fn typed_len(args: &Args) -> usize {
    match args {
        Args::Typed(bytes) => bytes.len(),
        Args::TypedParts(parts) => parts.len(),
        _ => 0,
    }
}

impl Serialize for CallRef<'_> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        /// [`Call`]'s fields, in its order, borrowed.
        #[derive(Serialize)]
        #[serde(rename = "Call")]
        struct Fields<'b> {
            id: u64,
            target: &'b Target,
            method: &'b str,
            refs: &'b [RefWire],
            args: &'b Args,
            flags: u32,
            deadline: Option<u64>,
            chain: u64,
        }
        let fields = Fields {
            id: self.id,
            target: self.target,
            method: self.method,
            refs: &self.refs,
            args: self.args,
            flags: self.flags,
            deadline: self.deadline,
            chain: self.chain,
        };
        // `Message::Call` is the enum's first variant.
        serializer.serialize_newtype_variant("Message", 0, "Call", &fields)
    }
}

/// An encoded message (see [`Message::encode_shared`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Encoded {
    /// One buffer.
    Whole(Bytes),
    /// Parts to write one after the other, one of them a large payload that was not copied.
    Parts(Vec<Bytes>),
}

impl Encoded {
    /// The encoded size in bytes.
    pub fn len(&self) -> usize {
        match self {
            Encoded::Whole(b) => b.len(),
            Encoded::Parts(parts) => parts.iter().map(Bytes::len).sum(),
        }
    }

    /// Whether the encoding is empty (no message encodes to nothing).
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// postcard-encodes any value into [`Bytes`] of the exact size (a first pass measures;
/// `postcard::to_allocvec` grows its buffer by doubling instead, copying the data once more per
/// doubling, and its spare capacity costs `Bytes::from` a second allocation). Small values are
/// written into the thread's arena (see `encode_sized`).
///
/// For typed arguments and results as well as whole messages. The result is meant to be sent
/// or decoded soon: a small one shares its thread's arena chunk (16 KiB) with others, and keeps
/// that chunk allocated while it lives. Copy one that you keep for long.
///
/// # Errors
///
/// A postcard error, which only a failing `Serialize` impl could cause.
pub fn to_bytes<T: Serialize + ?Sized>(value: &T) -> Result<Bytes, postcard::Error> {
    let size = postcard::serialize_with_flavor(value, postcard::ser_flavors::Size::default())?;
    encode_sized(size, |out| postcard::serialize_with_flavor(value, BufFlavor(out)).map(drop))
}

/// Encodes the head of a spliced message (see `Message::spliced`) without its placeholder
/// byte, in a buffer with room for `more` bytes after it.
fn encode_head(head: &Message, more: usize) -> Result<Vec<u8>, postcard::Error> {
    let size = postcard::serialize_with_flavor(head, postcard::ser_flavors::Size::default())?;
    let mut out = postcard::serialize_with_flavor(head, BufFlavor(Vec::with_capacity(size + more)))?;
    debug_assert_eq!(out.last(), Some(&0), "the placeholder is `Value::Unit`, tag 0");
    out.pop();
    Ok(out)
}

/// A postcard output flavor that writes in parts: the byte strings `take` recognises (by the
/// slice the serializer hands over) become parts of their own, uncopied; everything else is
/// written into the parts between them.
pub(super) struct Parts<F> {
    take: F,
    current: Vec<u8>,
    done: Vec<Bytes>,
}

impl<F: FnMut(&[u8]) -> Option<Bytes>> Parts<F> {
    /// With room for `capacity` bytes outside the parts taken.
    pub(super) fn new(take: F, capacity: usize) -> Self {
        Parts { take, current: Vec::with_capacity(capacity), done: Vec::new() }
    }
}

impl<F: FnMut(&[u8]) -> Option<Bytes>> postcard::ser_flavors::Flavor for Parts<F> {
    type Output = Vec<Bytes>;

    #[inline]
    fn try_push(&mut self, data: u8) -> postcard::Result<()> {
        self.current.push(data);
        Ok(())
    }

    fn try_extend(&mut self, data: &[u8]) -> postcard::Result<()> {
        match (self.take)(data) {
            Some(shared) => {
                if !self.current.is_empty() {
                    let room = self.current.capacity() - self.current.len();
                    self.done.push(Bytes::from(std::mem::replace(&mut self.current, Vec::with_capacity(room))));
                }
                self.done.push(shared);
            }
            None => self.current.extend_from_slice(data),
        }
        Ok(())
    }

    fn finalize(mut self) -> postcard::Result<Vec<Bytes>> {
        if !self.current.is_empty() || self.done.is_empty() {
            self.done.push(Bytes::from(self.current));
        }
        Ok(self.done)
    }
}

/// A postcard output flavor writing into a buffer with room for the value (measured beforehand).
pub(super) struct BufFlavor<B>(pub(super) B);

impl<B: BufMut> postcard::ser_flavors::Flavor for BufFlavor<B> {
    type Output = B;

    #[inline]
    fn try_push(&mut self, data: u8) -> postcard::Result<()> {
        self.0.put_u8(data);
        Ok(())
    }

    #[inline]
    fn try_extend(&mut self, data: &[u8]) -> postcard::Result<()> {
        self.0.put_slice(data);
        Ok(())
    }

    fn finalize(self) -> postcard::Result<B> {
        Ok(self.0)
    }
}

#[cfg(test)]
mod tests;
