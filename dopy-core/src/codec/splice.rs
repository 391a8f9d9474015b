//! Typed payloads that keep their large byte strings uncopied: [`TypedParts`].
//!
//! A typed argument list or result is postcard bytes. Serializing it copies every byte string
//! into those bytes, a [`dopy::Bytes`](crate::Bytes) of 1 MiB included: the one copy a bulk
//! transfer made on the sending side. [`to_payload`] serializes a value whose encoding is at
//! least [`SHARE_MIN`] bytes into parts instead: the [`crate::Bytes`] of at least that size
//! that it meets stay the buffers they are (shared, counted), and only the bytes around them
//! are written. A message carrying such a payload is written in parts ([`encode_call`],
//! [`encode_return`]), and the link writes large parts from their own buffers: the payload is
//! never copied before the kernel takes it.
//!
//! How a byte string is recognised: `dopy::Bytes`'s `Serialize` impl offers its buffer
//! ([`offer`]) just before handing its slice to the serializer; the output flavor takes the
//! offer when the slice it is given is exactly that buffer's. Nothing else in the value can be
//! taken for it, and a value without such a byte string is encoded whole, as before.

use std::cell::{Cell, RefCell};

use bytes::{BufMut, Bytes};
use serde::Serialize;

use super::encode::{BufFlavor, Parts};
use super::fast::{self, CallHead};
use super::SHARE_MIN;
use crate::arena::encode_sized;
use crate::value::wire::push_varint64;

/// postcard bytes of a typed value, in parts: written one after the other, they are the value's
/// encoding. Made by the sending side only (a receiver's payload is a slice of its frame, as
/// `Typed`); it never carries references.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TypedParts {
    parts: Vec<Bytes>,
    len: usize,
}

impl TypedParts {
    /// The size of the encoding in bytes.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether the encoding is empty (never: a value in parts holds a large byte string).
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The parts, in order.
    pub fn parts(&self) -> &[Bytes] {
        &self.parts
    }

    /// The encoding in one buffer (a copy).
    pub fn to_bytes(&self) -> Bytes {
        let mut out = Vec::with_capacity(self.len);
        self.parts.iter().for_each(|p| out.extend_from_slice(p));
        Bytes::from(out)
    }
}

/// A large typed value's encoding: whole, or in parts around its large byte strings.
enum Typed {
    /// In one buffer.
    Whole(Bytes),
    /// In parts.
    Parts(TypedParts),
}

thread_local! {
    /// While [`to_payload`] writes parts on this thread: the buffer of the byte string the
    /// serializer is about to be given (`Some(None)`: none offered yet). `None` otherwise.
    static OFFERED: RefCell<Option<Option<Bytes>>> = const { RefCell::new(None) };
    /// Bytes offered on this thread so far (wrapping): the difference across a size pass is
    /// how much of the value could stay uncopied.
    static OFFERED_LEN: Cell<usize> = const { Cell::new(0) };
}

/// The bytes offered on this thread so far.
fn offered_len() -> usize {
    OFFERED_LEN.try_with(Cell::get).unwrap_or(0)
}

/// Offers `bytes` (a [`crate::Bytes`] of at least [`SHARE_MIN`] bytes about to be serialized)
/// to the encoding in progress on this thread, if it takes parts.
pub(crate) fn offer(bytes: &Bytes) {
    let _ = OFFERED_LEN.try_with(|n| n.set(n.get().wrapping_add(bytes.len())));
    let _ = OFFERED.try_with(|o| {
        if let Ok(mut o) = o.try_borrow_mut() {
            if let Some(slot) = o.as_mut() {
                *slot = Some(bytes.clone());
            }
        }
    });
}

/// The offered buffer, if `data` is exactly its bytes.
fn take_offer(data: &[u8]) -> Option<Bytes> {
    if data.len() < SHARE_MIN {
        return None;
    }
    OFFERED.with(|o| {
        let mut o = o.borrow_mut();
        let slot = o.as_mut()?;
        match slot.take() {
            Some(b) if b.as_ptr() == data.as_ptr() && b.len() == data.len() => Some(b),
            _ => None,
        }
    })
}

/// Runs `f` with offers taken on this thread, then puts the previous state back (a `Serialize`
/// impl may encode something of its own meanwhile).
fn offering<R>(f: impl FnOnce() -> R) -> R {
    struct Restore(Option<Option<Bytes>>);

    impl Drop for Restore {
        fn drop(&mut self) {
            let previous = self.0.take();
            OFFERED.with(|o| *o.borrow_mut() = previous);
        }
    }

    let _restore = Restore(OFFERED.with(|o| o.borrow_mut().replace(None)));
    f()
}

/// Encodes `value` as [`super::to_bytes`] does, but in parts around its [`crate::Bytes`] of at
/// least [`SHARE_MIN`] bytes, which are not copied. A value without one is encoded whole.
///
/// # Errors
///
/// A postcard error, which only a failing `Serialize` impl could cause.
///
/// The encoding is made into a `P` by `whole` or `parts`: the caller's payload type itself, so
/// that the common small value goes from the encoder to the message with nothing in between.
#[inline]
pub(crate) fn to_payload<T: Serialize + ?Sized, P>(
    value: &T,
    whole: impl FnOnce(Bytes) -> P,
    parts: impl FnOnce(TypedParts) -> P,
) -> Result<P, postcard::Error> {
    // One size pass, which also tells how many bytes of large byte strings it met: a value
    // without any (every small one) is encoded as `to_bytes` does.
    let before = offered_len();
    let size = postcard::serialize_with_flavor(value, postcard::ser_flavors::Size::default())?;
    let shared = offered_len().wrapping_sub(before);
    if size < SHARE_MIN || shared == 0 || shared > size {
        return encode_sized(size, |out| postcard::serialize_with_flavor(value, BufFlavor(out)).map(drop)).map(whole);
    }
    Ok(match to_parts(value, size - shared)? {
        Typed::Whole(bytes) => whole(bytes),
        Typed::Parts(p) => parts(p),
    })
}

/// [`to_payload`] of a value with large byte strings, `rest` bytes besides them.
#[inline(never)]
fn to_parts<T: Serialize + ?Sized>(value: &T, rest: usize) -> Result<Typed, postcard::Error> {
    let mut parts = offering(|| postcard::serialize_with_flavor(value, Parts::new(take_offer, rest)))?;
    if parts.len() == 1 {
        // None was taken after all (a `Serialize` impl that wrote them some other way).
        return Ok(Typed::Whole(parts.pop().unwrap_or_default()));
    }
    // What was written, even by a `Serialize` impl that writes differently each time.
    let len = parts.iter().map(Bytes::len).sum();
    Ok(Typed::Parts(TypedParts { parts, len }))
}

/// The `Message::Call` with `head`'s fields, no references and the typed arguments `args`, in
/// parts: exactly the bytes `Message::encode` writes for it.
pub(crate) fn encode_call(head: &CallHead<'_>, args: &TypedParts) -> Vec<Bytes> {
    let mut before = Vec::with_capacity(64);
    fast::write_call_head(head, &mut before);
    fast::write_typed_args_prefix(args.len, &mut before);
    let mut after = Vec::with_capacity(32);
    fast::write_call_tail(head, &mut after);
    let mut parts = Vec::with_capacity(args.parts.len() + 2);
    parts.push(Bytes::from(before));
    parts.extend(args.parts.iter().cloned());
    parts.push(Bytes::from(after));
    parts
}

/// The `Return` of call `id` with `Outcome::Ok` of the typed result `result` and no references,
/// in parts: exactly the bytes `Message::encode` writes for it.
pub(crate) fn encode_return(id: u64, result: &TypedParts) -> Vec<Bytes> {
    let mut head = Vec::with_capacity(24);
    fast::write_typed_return_head(id, result.len, &mut head);
    let mut parts = Vec::with_capacity(result.parts.len() + 1);
    parts.push(Bytes::from(head));
    parts.extend(result.parts.iter().cloned());
    parts
}

/// Writes `parts` one after the other (a payload's bytes, with its length first).
pub(crate) fn write_prefixed(parts: &TypedParts, out: &mut impl BufMut) {
    push_varint64(out, parts.len as u64);
    parts.parts.iter().for_each(|p| out.put_slice(p));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Serialize)]
    struct Upload<'a> {
        name: &'a str,
        data: crate::Bytes,
        more: Vec<crate::Bytes>,
        tail: u64,
    }

    #[test]
    fn large_byte_strings_stay_uncopied_and_the_parts_are_postcards_bytes() {
        let big = crate::Bytes::from(vec![7u8; 3 * SHARE_MIN]);
        let other = crate::Bytes::from(vec![9u8; SHARE_MIN]);
        let small = crate::Bytes::from(vec![1u8; SHARE_MIN - 1]);
        let value = Upload { name: "x", data: big.clone(), more: vec![small.clone(), other.clone()], tail: 300 };
        let Typed::Parts(parts) = to_payload(&value, Typed::Whole, Typed::Parts).unwrap() else {
            panic!("not in parts")
        };
        assert_eq!(parts.to_bytes(), postcard::to_allocvec(&value).unwrap());
        assert_eq!(parts.len(), postcard::to_allocvec(&value).unwrap().len());
        // The two large ones are the caller's buffers; the small one was copied.
        let starts: Vec<_> = parts.parts().iter().map(|p| p.as_ptr()).collect();
        assert_eq!(starts[1], big.as_ptr());
        assert_eq!(starts[3], other.as_ptr());
        assert!(!starts.contains(&small.as_ptr()));
        assert_eq!(parts.parts().len(), 5, "before, big, between (the small one copied), other, after");
    }

    #[test]
    fn messages_with_a_payload_in_parts_are_the_bytes_of_their_whole_form() {
        use crate::codec::{Args, Call, CallRef, Encoded, Message, Outcome, Payload, Target};
        let big = crate::Bytes::from(vec![5u8; 40_000]);
        let Typed::Parts(parts) = to_payload(&(big.clone(), 7u32), Typed::Whole, Typed::Parts).unwrap() else {
            panic!("not in parts")
        };
        let whole = parts.to_bytes();
        let call = |args| {
            let target = Target::Name("files".into());
            Message::Call(Call {
                id: 300,
                target,
                method: "put".into(),
                refs: vec![],
                args,
                flags: 0,
                deadline: Some(99),
                chain: 1 << 40,
            })
        };
        let ret = |payload| Message::Return { id: 300, refs: vec![], outcome: Outcome::Ok(payload) };
        let cases = [
            (call(Args::TypedParts(parts.clone())), call(Args::Typed(whole.clone()))),
            (ret(Payload::TypedParts(parts.clone())), ret(Payload::Typed(whole.clone()))),
        ];
        for (in_parts, as_whole) in cases {
            let expected = as_whole.encode().unwrap();
            let Encoded::Parts(sent) = in_parts.encode_shared().unwrap() else { panic!("not in parts") };
            assert_eq!(sent.concat(), expected);
            assert!(sent.iter().any(|p| p.as_ptr() == big.as_ptr()), "the buffer was copied");
            assert_eq!(in_parts.encode().unwrap(), expected, "encoded whole, the same bytes");
            // Serde (any format) writes a payload in parts as its whole form too.
            assert_eq!(postcard::to_allocvec(&in_parts).unwrap(), expected, "serde, the same bytes");
            assert_eq!(serde_json::to_value(&in_parts).unwrap(), serde_json::to_value(&as_whole).unwrap());
            // The receiver reads the whole form.
            assert_eq!(Message::decode(&expected).unwrap(), as_whole);
            if let Message::Call(c) = &in_parts {
                let args = &c.args;
                let by_ref = CallRef {
                    id: 300,
                    target: &c.target,
                    method: "put",
                    refs: vec![],
                    args,
                    flags: 0,
                    deadline: Some(99),
                    chain: 1 << 40,
                };
                let Encoded::Parts(sent) = by_ref.encode_shared().unwrap() else { panic!("not in parts") };
                assert_eq!(sent.concat(), expected, "a caller's call");
            }
        }
    }

    #[test]
    fn values_without_a_large_byte_string_are_encoded_whole() {
        let small = (crate::Bytes::from(vec![1u8; 100]), vec![3u64; 2000]);
        let Typed::Whole(whole) = to_payload(&small, Typed::Whole, Typed::Parts).unwrap() else { panic!("in parts") };
        assert_eq!(whole, postcard::to_allocvec(&small).unwrap());
        // Outside `to_payload`, nothing is taken: a byte string is copied as any other.
        let big = crate::Bytes::from(vec![2u8; SHARE_MIN]);
        assert_eq!(super::super::to_bytes(&(big.clone(),)).unwrap(), postcard::to_allocvec(&(big,)).unwrap());
    }
}
