//! The properties the fuzz targets check, one function per target.
//!
//! Shared with the normal test suite: `dopy-core/tests/fuzz_regressions.rs` includes this file
//! as a module and replays the committed crash inputs and the corpus through the same checks.
//! It only uses crates `dopy-core` depends on (dopy-core, dopy-transport, bytes, postcard,
//! serde, serde_bytes, tokio-util, futures-util), so that both can compile it.
//!
//! Each check returns normally for any input that is handled correctly (decoded, or refused with
//! an error) and panics, with a message saying which property broke, otherwise.

use std::collections::HashMap;
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use dopy_core::dispatch::Reply;
use dopy_core::message::{flags, Args, Call, Encoded, FaultKind, Message, Outcome, Payload};
use dopy_core::table::ObjectTable;
use dopy_core::value::{from_value, to_value, wire, Value};
use dopy_core::Invocation;
use dopy_transport::frame::{self, FrameError};
use dopy_transport::{BoxRead, FrameReader};
use futures_util::{FutureExt, StreamExt};
use serde::{Deserialize, Serialize};
use tokio::io::{AsyncRead, ReadBuf};

/// The frame limit of the frame target: small, so that "too large" is reached often.
pub const FUZZ_MAX_FRAME: usize = 64;

/// The name the dispatch target's object is published under.
pub const OBJECT_NAME: &str = "calc";

// ---------------------------------------------------------------------------------------------
// Frames
// ---------------------------------------------------------------------------------------------

/// A reader that hands out its bytes in chunks of the given sizes (cycled), then ends: what a
/// socket does when a frame arrives in pieces.
struct Chunked {
    data: Vec<u8>,
    pos: usize,
    sizes: Vec<usize>,
    turn: usize,
}

impl AsyncRead for Chunked {
    fn poll_read(mut self: Pin<&mut Self>, _: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        let this = &mut *self;
        let size = this.sizes[this.turn % this.sizes.len()];
        this.turn += 1;
        let n = size.min(buf.remaining()).min(this.data.len() - this.pos);
        buf.put_slice(&this.data[this.pos..this.pos + n]);
        this.pos += n;
        Poll::Ready(Ok(()))
    }
}

/// How a stream of frames ends, according to the protocol (PROTOCOL.md, section 1.3).
#[derive(Debug, PartialEq)]
enum End {
    /// At a frame boundary.
    Clean,
    /// A header announced more than the limit.
    TooLarge,
    /// In the middle of a header or payload.
    Truncated,
}

/// The frames in `data` by the protocol's definition: a 4-byte little-endian length, then
/// that many bytes; a length above `max` is refused as soon as its header is complete.
fn model_frames(mut data: &[u8], max: usize) -> (Vec<&[u8]>, End) {
    let mut frames = Vec::new();
    loop {
        if data.is_empty() {
            return (frames, End::Clean);
        }
        let Some((head, rest)) = data.split_first_chunk::<{ frame::HEADER_LEN }>() else {
            return (frames, End::Truncated);
        };
        let len = u32::from_le_bytes(*head) as usize;
        if len > max {
            return (frames, End::TooLarge);
        }
        if rest.len() < len {
            return (frames, End::Truncated);
        }
        frames.push(&rest[..len]);
        data = &rest[len..];
    }
}

/// Frame reader: the reader of a [`Link`](dopy_transport::Link) (a `FramedRead` with the
/// protocol's codec) fed `data[1..]` in chunks whose sizes come from `data[0]`.
///
/// Properties: it never panics and never waits on a ready stream; it yields exactly the frames
/// of the protocol's definition, none longer than the limit; a header above the limit is the
/// error [`FrameError::TooLarge`], a stream cut short is [`FrameError::Io`].
pub fn check_frames(data: &[u8]) {
    let Some((&pattern, bytes)) = data.split_first() else { return };
    let max = FUZZ_MAX_FRAME;
    // 1 to 8 bytes per read, or everything at once.
    let sizes = match pattern {
        0 => vec![usize::MAX],
        p => vec![usize::from(p & 7) + 1, usize::from(p >> 3 & 7) + 1, usize::from(p >> 6) + 1],
    };
    let io: BoxRead = Box::new(Chunked { data: bytes.to_vec(), pos: 0, sizes, turn: 0 });
    let mut reader = FrameReader::new(io, frame::codec(max));
    let mut frames = Vec::new();
    let error = loop {
        match reader.next().now_or_never().expect("the frame reader waited on a ready stream") {
            None => break None,
            Some(Ok(frame)) => {
                assert!(frame.len() <= max, "a frame of {} bytes passed the limit of {max}", frame.len());
                frames.push(frame);
            }
            Some(Err(e)) => break Some(FrameError::from_read(e, max)),
        }
    };
    let (expected, end) = model_frames(bytes, max);
    assert_eq!(frames.len(), expected.len(), "frame count (stream ended {end:?}, error {error:?})");
    for (i, (got, want)) in frames.iter().zip(&expected).enumerate() {
        assert_eq!(&got[..], *want, "frame {i}");
    }
    match (end, error) {
        (End::Clean, None) => {}
        (End::TooLarge, Some(FrameError::TooLarge { max: m })) => assert_eq!(m, max),
        (End::Truncated, Some(FrameError::Io(_))) => {}
        (end, error) => panic!("the stream ends {end:?} but the reader reported {error:?}"),
    }
}

// ---------------------------------------------------------------------------------------------
// Messages
// ---------------------------------------------------------------------------------------------

/// Whether a value holds an object reference anywhere.
pub fn has_ref(value: &Value) -> bool {
    match value {
        Value::Ref(_) => true,
        Value::Option(Some(v)) | Value::Variant(_, v) => has_ref(v),
        Value::Seq(items) => items.iter().any(has_ref),
        Value::Map(entries) => entries.iter().any(|(k, v)| has_ref(k) || has_ref(v)),
        _ => false,
    }
}

/// The nesting depth of a value (a scalar is 1).
pub fn depth(value: &Value) -> usize {
    1 + match value {
        Value::Option(Some(v)) | Value::Variant(_, v) => depth(v),
        Value::Option(None) => 0,
        Value::Seq(items) => items.iter().map(depth).max().unwrap_or(0),
        Value::Map(entries) => entries.iter().map(|(k, v)| depth(k).max(depth(v))).max().unwrap_or(0),
        _ => 0,
    }
}

/// The dynamic values a message carries.
fn message_values(msg: &Message) -> Vec<&Value> {
    fn payload(p: &Payload) -> Option<&Value> {
        match p {
            Payload::Dynamic(v) => Some(v),
            _ => None,
        }
    }
    match msg {
        Message::Call(Call { args: Args::Positional(values), .. }) => values.iter().collect(),
        Message::Call(Call { args: Args::Named(values), .. }) => values.iter().map(|(_, v)| v).collect(),
        Message::Return { outcome: Outcome::Ok(p), .. } => payload(p).into_iter().collect(),
        Message::Return { outcome: Outcome::Err(fault), .. } => {
            fault.detail.as_ref().and_then(payload).into_iter().collect()
        }
        _ => Vec::new(),
    }
}

/// Message decoder: [`Message::decode`] and [`Message::decode_frame`] of `data`.
///
/// Properties: neither panics; they agree (both refuse, or both give the same message); values
/// inside are at most [`wire::MAX_DEPTH`] deep; a decoded message encodes again (unless it
/// holds an object reference, which only a peer's reference table can encode), to at most as
/// many bytes, and that encoding decodes to the same message and is stable; its shared
/// encoding is the same bytes.
pub fn check_message(data: &[u8]) {
    let plain = Message::decode(data);
    let shared = Message::decode_frame(Bytes::copy_from_slice(data));
    let msg = match (plain, shared) {
        (Err(_), Err(_)) => return,
        (Ok(a), Ok(b)) => {
            // Debug, not PartialEq: a float NaN is not equal to itself.
            assert_eq!(format!("{a:?}"), format!("{b:?}"), "decode and decode_frame differ");
            a
        }
        (a, b) => panic!("decode gave {a:?} but decode_frame gave {b:?}"),
    };
    let values = message_values(&msg);
    for v in &values {
        assert!(depth(v) <= wire::MAX_DEPTH, "a value nested {} deep was accepted", depth(v));
    }
    let encoded = match msg.encode() {
        Ok(bytes) => bytes,
        Err(e) => {
            assert!(values.iter().any(|v| has_ref(v)), "a decoded message does not encode: {e}: {msg:?}");
            return;
        }
    };
    assert!(encoded.len() <= data.len(), "{} bytes re-encode to {} bytes", data.len(), encoded.len());
    let again = Message::decode(&encoded).expect("a message's own encoding does not decode");
    assert_eq!(format!("{again:?}"), format!("{msg:?}"), "round trip changed the message");
    assert_eq!(again.encode().expect("re-encoding"), encoded, "the encoding is not stable");
    match msg.encode_shared().expect("shared encoding") {
        Encoded::Whole(bytes) => assert_eq!(bytes, encoded),
        Encoded::Parts(parts) => assert_eq!(parts.concat(), &encoded[..]),
    }
}

// ---------------------------------------------------------------------------------------------
// Values
// ---------------------------------------------------------------------------------------------

/// A struct, as typed arguments and `from_value` see them.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Point {
    /// Abscissa.
    pub x: f64,
    /// Ordinate.
    pub y: f64,
    /// An optional label.
    pub label: Option<String>,
    /// Tags.
    pub tags: Vec<String>,
}

/// An enum with every kind of variant.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum Shape {
    /// Unit variant.
    Empty,
    /// Newtype variant.
    Circle(f64),
    /// Tuple variant.
    Rect(f64, f64),
    /// Struct variant.
    Polygon {
        /// Corners.
        points: Vec<Point>,
    },
}

/// Converts `value` to several Rust types; each conversion may fail, none may panic.
fn convert_all(value: &Value) {
    let _ = from_value::<Value>(value.clone());
    let _ = from_value::<Shape>(value.clone());
    let _ = from_value::<Vec<Point>>(value.clone());
    let _ = from_value::<HashMap<String, u32>>(value.clone());
    let _ = from_value::<(i128, u128, serde_bytes::ByteBuf)>(value.clone());
    let _ = from_value::<Option<(u8, i16, char, bool)>>(value.clone());
    let _ = from_value::<String>(value.clone());
    let _ = from_value::<Vec<u8>>(value.clone());
    let _ = from_value::<f32>(value.clone());
}

/// `Value` decoder: [`wire::deserialize`] of `data` with postcard.
///
/// Properties: it never panics; a decoded value is at most [`wire::MAX_DEPTH`] deep; it
/// encodes again (unless it holds a reference) to at most the bytes it was read from, and that
/// encoding decodes to the same value; converting it to Rust types (`from_value`) and back
/// (`to_value`) never panics.
pub fn check_value(data: &[u8]) {
    let mut de = postcard::Deserializer::from_bytes(data);
    let Ok(value) = wire::deserialize(&mut de) else { return };
    let rest = de.finalize().expect("a slice deserializer always finalizes");
    let used = data.len() - rest.len();
    assert!(depth(&value) <= wire::MAX_DEPTH, "a value nested {} deep was accepted", depth(&value));
    match postcard::to_allocvec(&wire::Wire(&value)) {
        Ok(bytes) => {
            assert!(bytes.len() <= used, "{used} bytes re-encode to {} bytes", bytes.len());
            let mut de = postcard::Deserializer::from_bytes(&bytes);
            let again = wire::deserialize(&mut de).expect("a value's own encoding does not decode");
            assert!(de.finalize().expect("finalize").is_empty(), "bytes left after a value's own encoding");
            assert_eq!(format!("{again:?}"), format!("{value:?}"), "round trip changed the value");
        }
        Err(e) => assert!(has_ref(&value), "a decoded value does not encode: {e}: {value:?}"),
    }
    convert_all(&value);
    if let Ok(v) = from_value::<Value>(value.clone()) {
        let _ = to_value(&v);
    }
}

// ---------------------------------------------------------------------------------------------
// Dispatch
// ---------------------------------------------------------------------------------------------

/// Dispatch: decodes `data` as a frame; a `Call` for an object of `table` runs through the
/// object's [`Entry::call`](dopy_core::table::Entry::call) (lock, argument decoding, the
/// method, result encoding) on `rt`, as a connection runs it, without a connection.
///
/// Properties: nothing panics (a panic inside the call would come back as a `Panic` fault);
/// a failure is a fault of an expected kind whose message names the method; a result comes in
/// the encoding the caller asked for; the reply encodes into a `Return` message (unless it
/// holds an object reference, which needs a connection's reference table).
pub fn check_dispatch(data: &[u8], table: &ObjectTable, rt: &tokio::runtime::Runtime) {
    let Ok(Message::Call(call)) = Message::decode_frame(Bytes::copy_from_slice(data)) else { return };
    let Call { id, target, method, args, flags: call_flags, .. } = call;
    let Some(entry) = table.resolve(&target) else { return };
    let dynamic = call_flags & flags::DYNAMIC_RESULT != 0;
    let inv = Invocation::new(method.clone(), args, dynamic, Vec::new());
    let reply: Reply = if method == "dopy.methods" {
        inv.responder().encode(entry.interface())
    } else {
        rt.block_on(entry.call(inv, None))
    };
    let outcome = match reply {
        Ok(answer) => {
            match (&answer.payload, dynamic) {
                (Payload::Wire(wire), true) => {
                    wire.decode().expect("a dynamic result written in the wire form decodes");
                }
                (Payload::Typed(_), false) => {}
                (payload, _) => panic!("`{method}` answered {payload:?} to a call with dynamic = {dynamic}"),
            }
            Outcome::Ok(answer.payload)
        }
        Err(fault) => {
            let expected = [FaultKind::BadArguments, FaultKind::NoSuchMethod, FaultKind::Method];
            assert!(expected.contains(&fault.kind), "`{method}` failed with an unexpected fault: {fault:?}");
            if fault.kind != FaultKind::Method {
                assert!(
                    fault.message.contains(&format!("`{method}`")),
                    "the fault does not name `{method}`: {fault:?}"
                );
            }
            Outcome::Err(fault)
        }
    };
    // A dynamic result holding an object reference (`echo` of a `Value::Ref`) encodes only with
    // the connection's reference table; a connection answers a failure with a `Protocol` fault.
    let carries_refs = matches!(&outcome, Outcome::Ok(Payload::Dynamic(v)) if has_ref(v));
    let ret = Message::Return { id, refs: Vec::new(), outcome };
    match ret.encode() {
        Ok(frame) => {
            Message::decode(&frame).expect("the reply does not decode");
        }
        Err(e) => assert!(carries_refs, "the reply does not encode: {e}: {ret:?}"),
    }
}
