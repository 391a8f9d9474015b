//! Decoding messages: [`Message::decode`] (the common shapes by hand in [`fast`]), what a
//! connection's reader decodes a frame into ([`Incoming`]), and the sharing of large typed
//! payloads with the frame they were read from ([`Shared`], [`unshare`]).

use bytes::Bytes;
use serde::Deserialize;

use super::fast;
use super::message::{Args, Call, Message, Outcome, Payload, RefWire, Target, TargetIn, SHARE_MIN};
use crate::value;

impl Message {
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
        let _frame = Shared::frame(&frame);
        Message::decode(&frame)
    }
}

thread_local! {
    /// The frame [`Message::decode_frame`] is decoding, so that a large typed payload can be a
    /// slice of it (serde has no context argument; the decode is synchronous), with the size
    /// from which byte strings are shared.
    static FRAME: std::cell::RefCell<Option<(Bytes, usize)>> = const { std::cell::RefCell::new(None) };
}

/// The frame a decode in progress on this thread may share its large byte strings with, until
/// it drops and puts the previous one back (even during a panic's unwinding): large byte
/// strings read from it become slices of it instead of copies (typed payloads of a frame, and
/// [`crate::Bytes`] values in typed arguments and results).
pub(crate) struct Shared(Option<Option<(Bytes, usize)>>);

impl Shared {
    /// Shares byte strings of at least [`SHARE_MIN`] bytes with `source`.
    pub(crate) fn frame(source: &Bytes) -> Shared {
        // A source too small to hold a shared value is not worth a clone (which, for a buffer
        // that owns a `Vec`, allocates).
        if source.len() < SHARE_MIN {
            return Shared(None);
        }
        Shared::from(source, SHARE_MIN)
    }

    /// Shares byte strings of at least `min` bytes with `source`.
    fn from(source: &Bytes, min: usize) -> Shared {
        Shared(Some(FRAME.with(|f| f.borrow_mut().replace((source.clone(), min)))))
    }
}

impl Drop for Shared {
    fn drop(&mut self) {
        if let Some(previous) = self.0.take() {
            FRAME.with(|f| *f.borrow_mut() = previous);
        }
    }
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
        let _frame = Shared::from(frame, 0);
        // The variant index of `Message::Call`, a varint, is one zero byte.
        if frame.first() != Some(&0) {
            return Message::decode(frame).map(Incoming::Other);
        }
        match postcard::take_from_bytes::<CallOnly<'a>>(frame)? {
            (CallOnly::Call(call), []) => Ok(Incoming::Call(call)),
            _ => Err(postcard::Error::DeserializeBadEncoding),
        }
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

/// Gives a small payload shared with a frame by [`Incoming::decode`] (or with the thread's
/// encoding arena, see [`encode_sized`](crate::arena::encode_sized)) a buffer of its own, so
/// that it does not keep the frame's read buffer (or an arena chunk) alive; large ones stay
/// shared, as [`Message::decode_frame`] leaves them.
pub(crate) fn unshare(payload: &mut Bytes) {
    if payload.len() < SHARE_MIN {
        *payload = Bytes::copy_from_slice(payload);
    }
}

/// A typed payload read from the input: a slice of the frame being decoded (see [`Shared`])
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec::{Call, ObjectId};

    fn typed_return(len: usize) -> Message {
        Message::Return { id: 9, refs: Vec::new(), outcome: Outcome::Ok(Payload::Typed(Bytes::from(vec![5u8; len]))) }
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
