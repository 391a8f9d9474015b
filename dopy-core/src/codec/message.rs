//! The wire messages: what one frame carries, postcard-encoded.
//!
//! This is a public contract, documented byte by byte in `PROTOCOL.md`. Variant order is the
//! wire tag: new variants are only ever appended. Their encoders are in `encode.rs`, their
//! decoders in `decode.rs`.

use bytes::Bytes;
use serde::{Deserialize, Serialize};

pub use crate::id::{ObjectId, Target};
use crate::value::{self, Value};

use super::decode::frame_bytes;
pub use super::encode::{to_bytes, Encoded};
pub use super::splice::TypedParts;

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

/// Typed payloads at least this large are shared rather than copied: with the frame by
/// [`Message::decode_frame`], with the message by [`Message::encode_shared`].
pub const SHARE_MIN: usize = 4096;

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
