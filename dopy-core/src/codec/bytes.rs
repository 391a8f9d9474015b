//! [`Bytes`]: the byte type for bulk data.

use std::fmt;
use std::ops::Deref;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// The byte type for bulk data: a cheaply cloned, immutable byte buffer that travels as one
/// byte string and is received without a copy.
///
/// Use it for parameters and results that carry more than a few KiB of bytes. Compared with
/// the alternatives:
///
/// - `Vec<u8>` travels byte by byte (serde sees a sequence of `u8`): slow to encode and decode,
///   and a dynamic caller sees a list of numbers.
/// - `serde_bytes::ByteBuf` travels as one byte string, but the receiver copies it out of the
///   message into a new `Vec`.
/// - `dopy::Bytes` travels as one byte string and the receiver's value is a slice of the frame
///   it arrived in (for 4 KiB and more; smaller values are copied so that they never keep a
///   large read buffer alive). The sender does not copy it either: a buffer of 4 KiB or more
///   in typed arguments or a typed result is written to the transport from where it is (in a
///   message that also carries object references, it is copied once, into the message). A
///   dynamic caller sees [`Value::Bytes`](crate::Value::Bytes).
///
/// It dereferences to `[u8]` and converts from and into [`bytes::Bytes`] and `Vec<u8>`.
///
/// # Examples
///
/// ```
/// use dopy_core::Bytes;
///
/// let data = Bytes::from(vec![1u8, 2, 3]);
/// assert_eq!(&data[..], &[1, 2, 3]);
/// assert_eq!(data.len(), 3);
/// let inner: bytes::Bytes = data.clone().into();
/// assert_eq!(inner, bytes::Bytes::from_static(&[1, 2, 3]));
///
/// // The same encoding as `serde_bytes`: a length, then the bytes.
/// let encoded = postcard::to_allocvec(&data).unwrap();
/// assert_eq!(encoded, [3, 1, 2, 3]);
/// assert_eq!(postcard::from_bytes::<Bytes>(&encoded).unwrap(), data);
/// ```
#[derive(Clone, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Bytes(bytes::Bytes);

impl Bytes {
    /// An empty buffer.
    pub const fn new() -> Self {
        Bytes(bytes::Bytes::new())
    }

    /// A buffer of static bytes, without a copy.
    pub const fn from_static(bytes: &'static [u8]) -> Self {
        Bytes(bytes::Bytes::from_static(bytes))
    }

    /// A buffer holding a copy of `data`.
    pub fn copy_from_slice(data: &[u8]) -> Self {
        Bytes(bytes::Bytes::copy_from_slice(data))
    }

    /// The underlying [`bytes::Bytes`].
    pub fn into_inner(self) -> bytes::Bytes {
        self.0
    }

    /// The bytes as a `Vec` (a copy unless this buffer is the only owner of a `Vec`).
    pub fn into_vec(self) -> Vec<u8> {
        self.0.into()
    }
}

impl Deref for Bytes {
    type Target = [u8];

    fn deref(&self) -> &[u8] {
        &self.0
    }
}

impl AsRef<[u8]> for Bytes {
    fn as_ref(&self) -> &[u8] {
        &self.0
    }
}

impl fmt::Debug for Bytes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.0, f)
    }
}

impl From<bytes::Bytes> for Bytes {
    fn from(bytes: bytes::Bytes) -> Self {
        Bytes(bytes)
    }
}

impl From<Bytes> for bytes::Bytes {
    fn from(bytes: Bytes) -> Self {
        bytes.0
    }
}

impl From<Vec<u8>> for Bytes {
    fn from(bytes: Vec<u8>) -> Self {
        Bytes(bytes.into())
    }
}

impl From<Bytes> for Vec<u8> {
    fn from(bytes: Bytes) -> Self {
        bytes.into_vec()
    }
}

impl From<&'static [u8]> for Bytes {
    fn from(bytes: &'static [u8]) -> Self {
        Bytes::from_static(bytes)
    }
}

impl Serialize for Bytes {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        // A large buffer is offered to the typed payload being encoded, which keeps it
        // uncopied as a part of its own (see `message::to_payload`).
        if self.0.len() >= crate::codec::SHARE_MIN {
            crate::codec::offer(&self.0);
        }
        serializer.serialize_bytes(&self.0)
    }
}

impl<'de> Deserialize<'de> for Bytes {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        crate::codec::frame_bytes(deserializer).map(Bytes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec::session::SharedFrame;
    use crate::codec::SHARE_MIN;

    fn encoded(len: usize) -> bytes::Bytes {
        postcard::to_allocvec(&Bytes::from(vec![7u8; len])).unwrap().into()
    }

    fn shares(outer: &bytes::Bytes, inner: &Bytes) -> bool {
        let range = outer.as_ptr() as usize..outer.as_ptr() as usize + outer.len();
        range.contains(&(inner.as_ptr() as usize))
    }

    #[test]
    fn large_values_are_slices_of_the_source_small_ones_copies() {
        for (len, shared) in [(SHARE_MIN, true), (1 << 20, true), (SHARE_MIN - 1, false), (0, false)] {
            let source = encoded(len);
            let frame = SharedFrame::frame(&source);
            let value: Bytes = postcard::from_bytes(&source).unwrap();
            drop(frame);
            assert_eq!(value.len(), len);
            assert!(value.iter().all(|&b| b == 7));
            assert_eq!(shares(&source, &value), shared && len > 0, "len {len}");
        }
    }

    #[test]
    fn without_a_source_values_are_copied() {
        let source = encoded(SHARE_MIN * 2);
        let value: Bytes = postcard::from_bytes(&source).unwrap();
        assert!(!shares(&source, &value));
        assert_eq!(value.len(), SHARE_MIN * 2);
    }

    #[test]
    fn round_trips_through_value() {
        let data = Bytes::from(vec![1u8, 2, 3]);
        let value = crate::to_value(&data).unwrap();
        assert_eq!(value, crate::Value::Bytes(vec![1, 2, 3]));
        assert_eq!(crate::from_value::<Bytes>(value).unwrap(), data);
    }
}
