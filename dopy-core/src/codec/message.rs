//! The wire messages: what one frame carries, postcard-encoded.
//!
//! This is a public contract, documented byte by byte in `PROTOCOL.md`. Variant order is the
//! wire tag: new variants are only ever appended.

use bytes::{BufMut, Bytes};
use serde::{Deserialize, Serialize};

pub(crate) use crate::arena::encode_sized;
pub use crate::id::{ObjectId, Target};
use crate::value::{self, Value};

mod fast;
mod splice;

pub(crate) use fast::Small;
pub use splice::TypedParts;
pub(crate) use splice::{offer, to_payload};

/// A reference to an object, as a message's reference table lists it.
///
/// Inside a payload (typed or [`Value`]), a reference is the index of its entry in the table of
/// the message that carries it.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[non_exhaustive]
pub enum RefWire {
    /// An object the sender exports: the receiver calls it with `Target::Id` on this connection.
    Mine(ObjectId),
    /// An object of the receiver's own (one it exported, or published by name) coming back.
    Yours(Target),
}

/// The arguments of a call.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[non_exhaustive]
pub enum Args {
    /// postcard bytes of the argument tuple (what generated proxies send).
    Typed(#[serde(deserialize_with = "frame_bytes")] Bytes),
    /// Positional dynamic arguments.
    Positional(#[serde(with = "value::wire::seq")] Vec<Value>),
    /// Named (keyword) dynamic arguments, by the parameter names in the source.
    Named(#[serde(with = "value::wire::named")] Vec<(String, Value)>),
    /// postcard bytes of the argument tuple in parts, its large [`crate::Bytes`] not copied:
    /// how a generated proxy sends them. It travels as `Typed` (the receiver gets `Typed`):
    /// [`Message::encode`] writes the parts as they are, serde copies them into one buffer.
    #[serde(skip_deserializing)]
    TypedParts(TypedParts),
}

impl Serialize for Args {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Args::Typed(bytes) => s.serialize_newtype_variant("Args", 0, "Typed", bytes),
            Args::Positional(values) => s.serialize_newtype_variant("Args", 1, "Positional", &WireSeq(values)),
            Args::Named(entries) => s.serialize_newtype_variant("Args", 2, "Named", &WireNamed(entries)),
            // Copied into one buffer here; `Message::encode` writes it in parts.
            Args::TypedParts(parts) => s.serialize_newtype_variant("Args", 0, "Typed", &parts.to_bytes()),
        }
    }
}

/// Positional arguments in their wire form ([`value::wire::seq`]).
struct WireSeq<'a>(&'a [Value]);

impl Serialize for WireSeq<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        value::wire::seq::serialize(self.0, s)
    }
}

/// Named arguments in their wire form ([`value::wire::named`]).
struct WireNamed<'a>(&'a [(String, Value)]);

impl Serialize for WireNamed<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        value::wire::named::serialize(self.0, s)
    }
}

/// Flags of a call (a bit set).
pub mod flags {
    /// The caller wants the result as a [`Value`](crate::Value) rather than postcard bytes.
    pub const DYNAMIC_RESULT: u32 = 1;
    /// No reply is wanted (a oneway call).
    pub const ONEWAY: u32 = 2;
}

/// A method invocation.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Call {
    /// Chosen by the caller, unique among its calls in flight on this connection.
    pub id: u64,
    /// The object called.
    pub target: Target,
    /// The method's remote name.
    pub method: String,
    /// The references the arguments carry (indices into this table stand for them).
    pub refs: Vec<RefWire>,
    /// The arguments.
    pub args: Args,
    /// A bit set of [`flags`].
    pub flags: u32,
    /// Time left for the call, in microseconds; `None` when the caller set no deadline.
    pub deadline: Option<u64>,
    /// The call chain this call belongs to: calls made while serving a call carry its chain,
    /// which lets an object refuse a re-entrant call that would deadlock (0: unknown).
    pub chain: u64,
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

/// The result of a call, or the value half of one.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[non_exhaustive]
pub enum Payload {
    /// postcard bytes of the value.
    Typed(#[serde(deserialize_with = "frame_bytes")] Bytes),
    /// A dynamic value.
    Dynamic(#[serde(deserialize_with = "value::wire::deserialize")] Value),
    /// A dynamic value written straight into its wire form ([`value::wire::to_wire`]): how a
    /// server answers a dynamic caller, without building the [`Value`]. It travels as
    /// [`Payload::Dynamic`] (the receiver decodes a `Value`), and only as the result of a
    /// [`Message::Return`], which [`Message::encode`] writes; any other serializer refuses it.
    #[serde(skip_deserializing)]
    Wire(value::wire::WireValue),
    /// postcard bytes of the value in parts, its large [`crate::Bytes`] not copied: how a
    /// server sends such a result. It travels as `Typed` (the receiver gets `Typed`).
    #[serde(skip_deserializing)]
    TypedParts(TypedParts),
}

impl Serialize for Payload {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Payload::Typed(bytes) => s.serialize_newtype_variant("Payload", 0, "Typed", bytes),
            // Copied into one buffer here; `Message::encode_shared` writes it in parts.
            Payload::TypedParts(parts) => s.serialize_newtype_variant("Payload", 0, "Typed", &parts.to_bytes()),
            Payload::Dynamic(v) => s.serialize_newtype_variant("Payload", 1, "Dynamic", &value::wire::Wire(v)),
            Payload::Wire(_) => Err(serde::ser::Error::custom(
                "a prepared wire value is written by `Message::encode`, as the result of a `Return`",
            )),
        }
    }
}

/// What went wrong in a call, as seen by the side that served it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[non_exhaustive]
pub enum FaultKind {
    /// The method returned its own error (the payload holds it).
    Method,
    /// The method panicked.
    Panic,
    /// No object by that name or id.
    NoSuchObject,
    /// The object has no remote method by that name.
    NoSuchMethod,
    /// The arguments do not fit the method's parameters.
    BadArguments,
    /// The callee refused the call for lack of capacity.
    Overloaded,
    /// The call's deadline passed.
    DeadlineExceeded,
    /// The call was cancelled.
    Cancelled,
    /// The caller is not allowed to do this.
    Unauthorized,
    /// The callee received something it could not understand.
    Protocol,
    /// The callee only accepts dynamic arguments (a hand-written dispatcher); a typed proxy
    /// retries the call with dynamic arguments.
    DynamicArgsRequired,
    /// The call came back to an object its own call chain holds, and waiting would deadlock.
    Reentrant,
}

/// One hop an error crossed: where it happened.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Hop {
    /// The node's name.
    pub node: String,
    /// The object called.
    pub object: String,
    /// The method called.
    pub method: String,
}

/// A failed call, as sent back to the caller.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Fault {
    /// What kind of failure.
    pub kind: FaultKind,
    /// The error message (`Display` of the error, or the panic message).
    pub message: String,
    /// The method's own error value, for [`FaultKind::Method`].
    pub detail: Option<Payload>,
    /// Messages of the error's sources, outermost first.
    pub causes: Vec<String>,
    /// Where the error happened, innermost first.
    pub hops: Vec<Hop>,
    /// A backtrace captured where the error happened, if any.
    pub backtrace: Option<String>,
}

impl Fault {
    /// A fault with just a kind and a message.
    pub fn new(kind: FaultKind, message: impl Into<String>) -> Self {
        Fault { kind, message: message.into(), detail: None, causes: Vec::new(), hops: Vec::new(), backtrace: None }
    }
}

/// The outcome of a call.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub enum Outcome {
    /// The call succeeded with this result.
    Ok(Payload),
    /// The call failed.
    Err(Box<Fault>),
}

/// One frame's content.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub enum Message {
    /// Invoke a method.
    Call(Call),
    /// The outcome of the call with this id.
    Return {
        /// The id of the call answered.
        id: u64,
        /// The references the outcome carries (indices into this table stand for them).
        refs: Vec<RefWire>,
        /// Its outcome.
        outcome: Outcome,
    },
    /// The caller no longer wants the result of this call.
    Cancel {
        /// The id of the call cancelled.
        id: u64,
    },
    /// The sender drops `count` references to an object the receiver exported.
    Release {
        /// The object.
        object: ObjectId,
        /// How many references are dropped.
        count: u32,
    },
    /// Are you there?
    Ping {
        /// Echoed in the answer.
        nonce: u64,
    },
    /// Yes.
    Pong {
        /// The ping's nonce.
        nonce: u64,
    },
    /// The sender closes the connection in an orderly way.
    Goodbye,
    /// The sender closes the connection because of an error.
    Abort {
        /// Why.
        reason: String,
    },
}

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

    /// Decodes one frame.
    ///
    /// # Errors
    ///
    /// A postcard error for anything that is not exactly one valid message.
    pub fn decode(frame: &[u8]) -> Result<Message, postcard::Error> {
        if let Some((head, args)) = fast::decode_call(frame) {
            return Ok(Message::Call(CallIn::read(head, args.into_args(payload_bytes)).into_call()));
        }
        if let Some((id, result)) = fast::decode_typed_return(frame) {
            let outcome = Outcome::Ok(Payload::Typed(payload_bytes(result)));
            return Ok(Message::Return { id, refs: Vec::new(), outcome });
        }
        if let Some(msg) = Message::decode_dynamic_return(frame) {
            return msg;
        }
        let (msg, rest) = postcard::take_from_bytes::<Message>(frame)?;
        if rest.is_empty() {
            Ok(msg)
        } else {
            Err(postcard::Error::DeserializeBadEncoding)
        }
    }

    /// A `Return` with a dynamic result, read past its head by hand: its value, the last thing
    /// in the frame, is read by the wire reader that works on the bytes themselves, several
    /// times faster than serde's visitors on a result of many small values. `None` for any
    /// other frame (and for one whose head does not decode: serde's path reports it).
    fn decode_dynamic_return(frame: &[u8]) -> Option<Result<Message, postcard::Error>> {
        // `Message::Return` is variant 1, `Outcome::Ok` variant 0, `Payload::Dynamic` variant 1
        // (postcard writes variant indices as varints: one byte each here).
        let head = frame.strip_prefix(&[1])?;
        let (id, rest) = postcard::take_from_bytes::<u64>(head).ok()?;
        // Most returns carry no references (an empty table is the single byte 0): then the
        // result's kind is known before anything is decoded, and any other return (a typed
        // result, a fault) goes to serde's path having cost two byte comparisons.
        let (refs, rest) = match rest {
            [0, 0, 1, ..] => (Vec::new(), &rest[1..]),
            [0, ..] => return None,
            _ => postcard::take_from_bytes::<Vec<RefWire>>(rest).ok()?,
        };
        let wire = rest.strip_prefix(&[0, 1])?;
        Some(match value::wire::take(wire) {
            Ok((value, [])) => Ok(Message::Return { id, refs, outcome: Outcome::Ok(Payload::Dynamic(value)) }),
            Ok(_) => Err(postcard::Error::DeserializeBadEncoding),
            Err(e) => Err(e),
        })
    }

    /// Decodes one frame it may keep parts of: a large typed payload (arguments or result of at
    /// least [`SHARE_MIN`] bytes) becomes a slice of `frame` instead of a copy.
    ///
    /// Small payloads are still copied, so that a message never keeps a read buffer alive for a
    /// few bytes.
    ///
    /// # Errors
    ///
    /// As [`decode`](Message::decode).
    pub fn decode_frame(frame: Bytes) -> Result<Message, postcard::Error> {
        sharing(&frame, || Message::decode(&frame))
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
                match value::wire::with_max_depth(max_depth, || fast::args_len(dynamic)) {
                    (Ok(len), false) if len < SHARE_MIN => len,
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

/// Typed payloads at least this large are shared rather than copied: with the frame by
/// [`Message::decode_frame`], with the message by [`Message::encode_shared`].
pub const SHARE_MIN: usize = 4096;

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

thread_local! {
    /// The frame [`Message::decode_frame`] is decoding, so that a large typed payload can be a
    /// slice of it (serde has no context argument; the decode is synchronous), with the size
    /// from which byte strings are shared.
    static FRAME: std::cell::RefCell<Option<(Bytes, usize)>> = const { std::cell::RefCell::new(None) };
}

/// Runs `decode` (a synchronous decode of `source`) so that large byte strings read from
/// `source` become slices of it instead of copies: typed payloads of a frame, and
/// [`crate::Bytes`] values in typed arguments and results.
pub(crate) fn sharing<R>(source: &Bytes, decode: impl FnOnce() -> R) -> R {
    // A source too small to hold a shared value is not worth a clone (which, for a buffer
    // that owns a `Vec`, allocates).
    if source.len() < SHARE_MIN {
        return decode();
    }
    sharing_from(source, SHARE_MIN, decode)
}

/// [`sharing`], with byte strings of at least `min` bytes shared.
fn sharing_from<R>(source: &Bytes, min: usize, decode: impl FnOnce() -> R) -> R {
    /// Puts the previous source back, even if the decode panics.
    struct Restore(Option<(Bytes, usize)>);

    impl Drop for Restore {
        fn drop(&mut self) {
            let previous = self.0.take();
            FRAME.with(|f| *f.borrow_mut() = previous);
        }
    }

    let _restore = Restore(FRAME.with(|f| f.borrow_mut().replace((source.clone(), min))));
    decode()
}

/// What a connection's reader decodes a frame into: a call, with its target's name borrowed
/// from the frame, or any other message.
///
/// Typed payloads of every size are slices of the frame (not copies): the reader hands a
/// payload on to be consumed at once, and gives one that may stay around longer (arguments of
/// a call served in a task, a method's error) a copy of its own with [`unshare`].
pub(crate) enum Incoming<'a> {
    /// A `Message::Call`.
    Call(CallIn<'a>),
    /// Any other message.
    Other(Message),
}

impl<'a> Incoming<'a> {
    /// Decodes one frame, as [`Message::decode_frame`] does but for the above.
    pub(crate) fn decode(frame: &'a Bytes) -> Result<Incoming<'a>, postcard::Error> {
        /// `Message` with its first variant only.
        #[derive(Deserialize)]
        #[serde(rename = "Message")]
        enum CallOnly<'b> {
            Call(#[serde(borrow)] CallIn<'b>),
        }

        // The common shapes, by hand ([`fast`]): their payloads are slices of the frame.
        if let Some((head, args)) = fast::decode_call(frame) {
            return Ok(Incoming::Call(CallIn::read(head, args.into_args(|bytes| frame.slice_ref(bytes)))));
        }
        if let Some((id, result)) = fast::decode_typed_return(frame) {
            let outcome = Outcome::Ok(Payload::Typed(frame.slice_ref(result)));
            return Ok(Incoming::Other(Message::Return { id, refs: Vec::new(), outcome }));
        }
        // A dynamic result holds no typed payload: nothing to share.
        if let Some(msg) = Message::decode_dynamic_return(frame) {
            return msg.map(Incoming::Other);
        }
        sharing_from(frame, 0, || {
            // The variant index of `Message::Call`, a varint, is one zero byte.
            if frame.first() != Some(&0) {
                return Message::decode(frame).map(Incoming::Other);
            }
            match postcard::take_from_bytes::<CallOnly<'a>>(frame)? {
                (CallOnly::Call(call), []) => Ok(Incoming::Call(call)),
                _ => Err(postcard::Error::DeserializeBadEncoding),
            }
        })
    }
}

/// A [`Call`] as the reader decodes it: the target's name is borrowed from the frame.
#[derive(Debug, Deserialize)]
#[serde(rename = "Call")]
pub(crate) struct CallIn<'a> {
    pub(crate) id: u64,
    #[serde(borrow)]
    pub(crate) target: TargetIn<'a>,
    /// Inline up to 24 bytes: a method name is not allocated per call.
    pub(crate) method: compact_str::CompactString,
    pub(crate) refs: Vec<RefWire>,
    pub(crate) args: Args,
    pub(crate) flags: u32,
    pub(crate) deadline: Option<u64>,
    pub(crate) chain: u64,
}

impl<'a> CallIn<'a> {
    /// A call read by the hand-written decoder ([`fast::decode_call`]), with its arguments.
    fn read(head: fast::CallHead<'a>, args: Args) -> Self {
        let fast::CallHead { id, target, method, flags, deadline, chain } = head;
        CallIn { id, target, method: method.into(), refs: Vec::new(), args, flags, deadline, chain }
    }

    /// The same call, owning its target's name.
    fn into_call(self) -> Call {
        let CallIn { id, target, method, refs, args, flags, deadline, chain } = self;
        let target = match target {
            TargetIn::Name(name) => Target::Name(name.to_owned()),
            TargetIn::Id(id) => Target::Id(id),
        };
        Call { id, target, method: method.into_string(), refs, args, flags, deadline, chain }
    }
}

/// A [`Target`] that borrows its name.
#[derive(Clone, Copy, Debug, Deserialize)]
#[serde(rename = "Target")]
pub(crate) enum TargetIn<'a> {
    /// [`Target::Name`].
    Name(&'a str),
    /// [`Target::Id`].
    Id(ObjectId),
}

impl<'a> TargetIn<'a> {
    /// Borrows `target`.
    pub(crate) fn of(target: &'a Target) -> Self {
        match target {
            Target::Name(name) => TargetIn::Name(name),
            Target::Id(id) => TargetIn::Id(*id),
        }
    }
}

impl std::fmt::Display for TargetIn<'_> {
    /// As [`Target`]'s.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            TargetIn::Name(n) => f.write_str(n),
            TargetIn::Id(id) => write!(f, "#{id}"),
        }
    }
}

/// Gives a small payload shared with a frame by [`Incoming::decode`] (or with the thread's
/// encoding arena, see [`encode_sized`]) a buffer of its own, so that it does not keep the
/// frame's read buffer (or an arena chunk) alive; large ones stay shared, as
/// [`Message::decode_frame`] leaves them.
pub(crate) fn unshare(payload: &mut Bytes) {
    if payload.len() < SHARE_MIN {
        *payload = Bytes::copy_from_slice(payload);
    }
}

/// A typed payload read from the input: a slice of the frame being decoded (see [`sharing`])
/// when it is large enough and lies in it, a copy otherwise.
fn payload_bytes(v: &[u8]) -> Bytes {
    let shared = FRAME.with(|f| {
        let frame = f.borrow();
        let (frame, min) = frame.as_ref()?;
        let (start, end) = (frame.as_ptr() as usize, frame.as_ptr() as usize + frame.len());
        let inside = v.as_ptr() as usize >= start && v.as_ptr() as usize + v.len() <= end;
        (v.len() >= *min && inside).then(|| frame.slice_ref(v))
    });
    shared.unwrap_or_else(|| Bytes::copy_from_slice(v))
}

/// Reads a typed payload: a slice of the frame being decoded when it is large and lies in it,
/// a copy otherwise. Same wire format as `Bytes`' own `Deserialize` (a byte string).
pub(crate) fn frame_bytes<'de, D: serde::Deserializer<'de>>(deserializer: D) -> Result<Bytes, D::Error> {
    struct Visitor;

    impl<'de> serde::de::Visitor<'de> for Visitor {
        type Value = Bytes;

        fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("a byte string")
        }

        fn visit_borrowed_bytes<E: serde::de::Error>(self, v: &'de [u8]) -> Result<Bytes, E> {
            Ok(payload_bytes(v))
        }

        fn visit_bytes<E: serde::de::Error>(self, v: &[u8]) -> Result<Bytes, E> {
            Ok(Bytes::copy_from_slice(v))
        }

        fn visit_byte_buf<E: serde::de::Error>(self, v: Vec<u8>) -> Result<Bytes, E> {
            Ok(Bytes::from(v))
        }

        fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<Bytes, A::Error> {
            let mut out = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(4096));
            while let Some(b) = seq.next_element::<u8>()? {
                out.push(b);
            }
            Ok(Bytes::from(out))
        }
    }

    deserializer.deserialize_bytes(Visitor)
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
struct BufFlavor<B>(B);

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
mod tests {
    use super::*;
    use crate::arena::ARENA_MAX;
    use bytes::BytesMut;

    /// Encodings written into the arena, kept alive across chunk boundaries and interleaved
    /// with large ones, failing ones and nested ones, each keep exactly their own bytes.
    #[test]
    fn arena_encodings_keep_their_own_bytes() {
        /// Measured fine, then fails half-way through being written (as a `Serialize` impl
        /// reading shared state may).
        struct Fails(std::cell::Cell<u32>);
        impl Serialize for Fails {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                use serde::ser::{Error, SerializeTuple};
                self.0.set(self.0.get() + 1);
                let mut t = s.serialize_tuple(2)?;
                t.serialize_element("written before the failure")?;
                if self.0.get().is_multiple_of(2) {
                    return Err(S::Error::custom("refused"));
                }
                t.serialize_element(&1u8)?;
                t.end()
            }
        }
        /// Encodes something else (into the arena, were it free) while being encoded.
        struct Nested(Vec<u8>);
        impl Serialize for Nested {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                let inner = to_bytes(&self.0).map_err(serde::ser::Error::custom)?;
                s.serialize_bytes(&inner)
            }
        }
        let mut kept = Vec::new();
        for i in 0..200usize {
            let value: Vec<u8> = (0..(i * 37) % (ARENA_MAX + 300)).map(|b| (b ^ i) as u8).collect();
            kept.push((to_bytes(&value).unwrap(), postcard::to_allocvec(&value).unwrap()));
            if i % 7 == 0 {
                assert!(to_bytes(&Fails(std::cell::Cell::new(0))).is_err());
            }
            if i % 11 == 0 {
                let nested = Nested(value.clone());
                kept.push((to_bytes(&nested).unwrap(), postcard::to_allocvec(&nested).unwrap()));
            }
            if i % 3 == 0 {
                // Some are dropped early, so that chunks are both reused and replaced.
                kept.remove(kept.len() / 2);
            }
        }
        assert!(kept.len() > 100);
        for (arena, expected) in &kept {
            assert_eq!(&arena[..], &expected[..]);
        }
    }

    fn typed_return(len: usize) -> Message {
        Message::Return { id: 9, refs: Vec::new(), outcome: Outcome::Ok(Payload::Typed(Bytes::from(vec![5u8; len]))) }
    }

    #[test]
    fn encode_writes_what_postcard_writes() {
        let msg = typed_return(100_000);
        let bytes = msg.encode().unwrap();
        assert_eq!(&bytes[..], &postcard::to_allocvec(&msg).unwrap()[..]);
    }

    #[test]
    fn decode_frame_shares_large_payloads_and_copies_small_ones() {
        for (len, shared) in [(SHARE_MIN, true), (SHARE_MIN - 1, false), (3, false)] {
            let frame = typed_return(len).encode().unwrap();
            let msg = Message::decode_frame(frame.clone()).unwrap();
            assert_eq!(msg, typed_return(len));
            let Message::Return { outcome: Outcome::Ok(Payload::Typed(payload)), .. } = msg else { unreachable!() };
            let inside = frame.as_ptr_range().contains(&payload.as_ptr());
            assert_eq!(inside, shared, "payload of {len} bytes");
        }
        // Nothing stays behind: a later plain decode copies.
        assert!(FRAME.with(|f| f.borrow().is_none()));
    }

    #[test]
    fn encode_shared_keeps_large_typed_payloads_uncopied() {
        let call = |len: usize| {
            Message::Call(Call {
                id: 3,
                target: Target::Name("calc".into()),
                method: "echo".into(),
                refs: Vec::new(),
                args: Args::Typed(Bytes::from(vec![7u8; len])),
                flags: 0,
                deadline: Some(5),
                chain: 9,
            })
        };
        for msg in [typed_return(SHARE_MIN), typed_return(100_000), call(SHARE_MIN), call(1 << 20)] {
            let Encoded::Parts(parts) = msg.encode_shared().unwrap() else { panic!("not in parts") };
            // A `Return` ends with its result: nothing follows the payload.
            assert_eq!(parts.len(), if matches!(msg, Message::Call(_)) { 3 } else { 2 });
            assert_eq!(parts.concat(), &msg.encode().unwrap()[..]);
            let payload = match &msg {
                Message::Call(Call { args: Args::Typed(b), .. }) => b,
                Message::Return { outcome: Outcome::Ok(Payload::Typed(b)), .. } => b,
                _ => unreachable!(),
            };
            assert_eq!(parts[1].as_ptr(), payload.as_ptr(), "the payload is shared, not copied");
            assert_eq!(parts[1].len(), payload.len());
        }
        for msg in [typed_return(SHARE_MIN - 1), call(10), Message::Goodbye] {
            assert_eq!(msg.encode_shared().unwrap(), Encoded::Whole(msg.encode().unwrap()));
        }
    }

    #[test]
    fn a_prepared_wire_result_encodes_as_the_dynamic_value() {
        for rows in [0usize, 3, 2000] {
            let data: Vec<(u32, String)> = (0..rows as u32).map(|i| (i, format!("row {i}"))).collect();
            let (wire, _) = value::wire::to_wire(&data).unwrap();
            let refs = vec![RefWire::Mine(ObjectId([42; 16]))];
            let prepared = Message::Return { id: 7, refs: refs.clone(), outcome: Outcome::Ok(Payload::Wire(wire)) };
            let tree = Outcome::Ok(Payload::Dynamic(value::to_value(&data).unwrap()));
            let plain = Message::Return { id: 7, refs, outcome: tree };
            let expected = plain.encode().unwrap();
            assert_eq!(prepared.encode().unwrap(), expected);
            let shared = prepared.encode_shared().unwrap();
            assert_eq!(matches!(shared, Encoded::Parts(_)), expected.len() > SHARE_MIN, "{rows} rows");
            let joined = match shared {
                Encoded::Whole(b) => b.to_vec(),
                Encoded::Parts(parts) => parts.concat(),
            };
            assert_eq!(joined, &expected[..]);
            // The receiver decodes the value.
            assert_eq!(Message::decode(&expected).unwrap(), plain);
            // Nothing else can write it (it would be written wrongly).
            assert!(postcard::to_allocvec(&prepared).is_err());
        }
    }

    #[test]
    fn call_ref_encodes_as_the_call() {
        let target = Target::Name("calc".into());
        let some_refs = vec![RefWire::Mine(ObjectId([3; 16])), RefWire::Yours(Target::Name("x".into()))];
        let nested = (0..10).fold(Value::Int(1), |v, _| Value::Seq(vec![v]));
        let payloads = [
            Args::Typed(Bytes::from(vec![7u8; 12])),
            Args::Typed(Bytes::from(vec![1u8; SHARE_MIN])),
            Args::Positional(vec![Value::Int(-3), Value::String("x".into()), nested.clone()]),
            Args::Named(vec![("a".into(), Value::Float(0.5)), ("b".into(), Value::Bool(true))]),
            Args::Positional(vec![Value::Bytes(vec![2; SHARE_MIN])]),
        ];
        // Without references, small arguments take the hand-written encoder; the connection
        // writes such a call in place (`small`).
        for (args, refs) in payloads.iter().flat_map(|a| [(a.clone(), some_refs.clone()), (a.clone(), Vec::new())]) {
            let call = Message::Call(Call {
                id: 300,
                target: target.clone(),
                method: "add".into(),
                refs: refs.clone(),
                args: args.clone(),
                flags: 1,
                deadline: Some(70_000),
                chain: u64::MAX,
            });
            let borrowed = CallRef {
                id: 300,
                target: &target,
                method: "add",
                refs,
                args: &args,
                flags: 1,
                deadline: Some(70_000),
                chain: u64::MAX,
            };
            let postcard = postcard::to_allocvec(&call).unwrap();
            assert_eq!(to_bytes(&borrowed).unwrap(), postcard);
            assert_eq!(call.encode().unwrap(), postcard);
            assert_eq!(borrowed.encode_shared().unwrap(), call.encode_shared().unwrap());
            let small = borrowed.small(64);
            assert_eq!(small.is_some(), borrowed.refs.is_empty() && postcard.len() < SHARE_MIN, "{args:?}");
            if let Some(small) = small {
                assert_eq!(small.len(), postcard.len());
                assert_eq!(small.encode().unwrap(), postcard);
                let mut in_place = BytesMut::from(&b"before"[..]);
                small.write(&mut in_place).unwrap();
                assert_eq!(&in_place[6..], &postcard[..]);
            }
        }
        // Values nested deeper than the limit, or holding a reference, take the general path
        // (which reports the one and exports the other).
        let call = |args: &'static Args| CallRef {
            id: 1,
            target: &target,
            method: "m",
            refs: Vec::new(),
            args,
            flags: 0,
            deadline: None,
            chain: 0,
        };
        let deep: &'static Args = Box::leak(Box::new(Args::Positional(vec![nested])));
        assert!(call(deep).small(64).is_some());
        assert!(call(deep).small(5).is_none());
        let with_ref: &'static Args =
            Box::leak(Box::new(Args::Positional(vec![Value::Ref(crate::handle::DynObject::dangling("x".into()))])));
        assert!(call(with_ref).small(64).is_none());
    }

    #[test]
    fn small_returns_encode_as_the_return() {
        let typed = Payload::Typed(Bytes::from(vec![9u8; 300]));
        let (wire, _) = crate::value::wire::to_wire(&("ok", 5u8)).unwrap();
        // A wire result is written as the same result as a `Value` would be.
        let dynamic = Payload::Dynamic(crate::value::to_value(&("ok", 5u8)).unwrap());
        let cases = [
            (0, typed.clone(), typed.clone()),
            (u64::MAX, typed.clone(), typed),
            (1 << 20, Payload::Wire(wire), dynamic),
        ];
        for (id, payload, as_encoded) in cases {
            let ret = Message::Return { id, refs: Vec::new(), outcome: Outcome::Ok(as_encoded) };
            let expected = ret.encode().unwrap();
            let small = small_return(id, &payload, SHARE_MIN).expect("a small result");
            assert_eq!(small.len(), expected.len());
            assert_eq!(small.encode().unwrap(), expected);
            assert!(small_return(id, &payload, 3).is_none(), "not below the limit");
        }
        assert!(small_return(1, &Payload::Dynamic(Value::Unit), SHARE_MIN).is_none());
    }

    #[test]
    fn incoming_decodes_the_common_shapes_by_hand_as_decode_does() {
        let call = |target: Target, args: usize| {
            let args = Args::Typed(Bytes::from(vec![4u8; args]));
            Message::Call(Call {
                id: 1 << 40,
                target,
                method: "add".into(),
                refs: Vec::new(),
                args,
                flags: 3,
                deadline: None,
                chain: 7,
            })
        };
        let messages = [
            call(Target::Name("calc".into()), 16),
            call(Target::Id(ObjectId([9; 16])), 0),
            call(Target::Name("big".into()), SHARE_MIN + 1),
            typed_return(8),
            typed_return(SHARE_MIN * 2),
        ];
        for msg in messages {
            let frame = msg.encode().unwrap();
            assert_eq!(Message::decode(&frame).unwrap(), msg);
            let payload = match Incoming::decode(&frame).unwrap() {
                Incoming::Call(c) => {
                    let Message::Call(expected) = &msg else { panic!("{msg:?} came back as a call") };
                    assert_eq!(
                        (c.id, c.method.as_str(), &c.args, c.flags, c.deadline, c.chain),
                        (
                            expected.id,
                            expected.method.as_str(),
                            &expected.args,
                            expected.flags,
                            expected.deadline,
                            expected.chain
                        )
                    );
                    assert_eq!(c.target.to_string(), expected.target.to_string());
                    assert!(c.refs.is_empty());
                    let Args::Typed(payload) = c.args else { unreachable!() };
                    payload
                }
                Incoming::Other(other) => {
                    assert_eq!(other, msg);
                    let Message::Return { outcome: Outcome::Ok(Payload::Typed(payload)), .. } = other else {
                        unreachable!()
                    };
                    payload
                }
            };
            // Every payload is a slice of the frame, whatever its size.
            assert!(payload.is_empty() || frame.as_ptr_range().contains(&payload.as_ptr()));
        }
    }

    #[test]
    fn decode_frame_refuses_what_decode_refuses() {
        let mut frame = typed_return(SHARE_MIN).encode().unwrap().to_vec();
        frame.push(0);
        assert!(Message::decode_frame(Bytes::from(frame.clone())).is_err());
        assert!(Message::decode(&frame).is_err());
        frame.truncate(10);
        assert!(Message::decode_frame(Bytes::from(frame)).is_err());
    }
}
