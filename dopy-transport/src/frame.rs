//! Frame layout and limits: a 4-byte little-endian length followed by that many payload bytes.
//!
//! [`FrameCodec`] is the protocol's `tokio_util` codec for that layout (the layout is part of the
//! public protocol, see `PROTOCOL.md`); this module also classifies its errors. [`FrameBatch`]
//! gathers many small frames in one buffer for [`FrameWriter`](crate::FrameWriter).
//!
//! Length prefixes are written and read in this crate only: by the codec, by [`FrameBatch`],
//! and by `FrameWriter`, all through this module. A sender hands over payloads, never a prefix.

use std::io;

use bytes::{Buf, BufMut, Bytes, BytesMut};
use tokio_util::codec::{Decoder, Encoder};

/// Size of the length prefix in bytes.
pub const HEADER_LEN: usize = 4;

/// Writes the length prefix of a frame whose payload is `len` bytes: the payload follows it.
pub(crate) fn put_header(out: &mut impl BufMut, len: u32) {
    out.put_u32_le(len);
}

/// Small frames written one after the other into one buffer, each behind its length prefix,
/// for [`FrameWriter::start_send_batch`](crate::FrameWriter::start_send_batch): a sender of
/// many small messages writes each payload in place ([`push_with`](FrameBatch::push_with))
/// instead of allocating a buffer per frame, and the writer copies the whole batch at once.
/// A batch is reused after [`clear`](FrameBatch::clear), keeping its capacity.
///
/// The batch does not know the link's maximum frame size: the sender checks each payload
/// against it, as before [`FrameWriter`](crate::FrameWriter)'s `start_send`.
///
/// # Examples
///
/// ```
/// use bytes::BufMut;
/// use dopy_transport::frame::FrameBatch;
///
/// let mut batch = FrameBatch::with_capacity(64);
/// let written: Result<(), &str> = batch.push_with(|out| Ok(out.put_slice(b"abc")));
/// assert!(written.is_ok());
/// // A payload that fails to write leaves nothing behind.
/// let failed = batch.push_with(|out| {
///     out.put_slice(b"half");
///     Err("failed")
/// });
/// assert!(failed.is_err());
/// batch.push_with(|out| Ok::<_, ()>(out.put_u8(7))).unwrap();
/// assert_eq!(batch.as_bytes(), &[3, 0, 0, 0, b'a', b'b', b'c', 1, 0, 0, 0, 7]);
/// ```
#[derive(Debug, Default)]
pub struct FrameBatch {
    buf: BytesMut,
}

impl FrameBatch {
    /// An empty batch that holds `capacity` bytes (prefixes included) before it grows.
    pub fn with_capacity(capacity: usize) -> Self {
        FrameBatch { buf: BytesMut::with_capacity(capacity) }
    }

    /// Appends a frame whose payload `write` writes at the end of the buffer it is given (and
    /// only appends to it); the batch writes the length prefix. When `write` fails, nothing of
    /// the frame is left in the batch.
    ///
    /// # Errors
    ///
    /// `write`'s error.
    ///
    /// # Panics
    ///
    /// If the payload is longer than 4 GiB, which no prefix can say (the sender checks its
    /// frames against a far smaller maximum).
    #[inline]
    pub fn push_with<E>(&mut self, write: impl FnOnce(&mut BytesMut) -> Result<(), E>) -> Result<(), E> {
        let start = self.buf.len();
        // A placeholder, set once the payload's length is known.
        put_header(&mut self.buf, 0);
        if let Err(e) = write(&mut self.buf) {
            self.buf.truncate(start);
            return Err(e);
        }
        let len = self.buf.len() - start - HEADER_LEN;
        let prefix = u32::try_from(len).expect("a frame's payload is below 4 GiB");
        self.buf[start..start + HEADER_LEN].copy_from_slice(&prefix.to_le_bytes());
        Ok(())
    }

    /// The frames' bytes, prefixes included, as they go on the wire.
    pub fn as_bytes(&self) -> &[u8] {
        &self.buf
    }

    /// Their size in bytes, prefixes included.
    pub fn len(&self) -> usize {
        self.buf.len()
    }

    /// Whether the batch holds no frame.
    pub fn is_empty(&self) -> bool {
        self.buf.is_empty()
    }

    /// The bytes it holds before it grows.
    pub fn capacity(&self) -> usize {
        self.buf.capacity()
    }

    /// Makes room for at least `additional` more bytes (prefixes included).
    pub fn reserve(&mut self, additional: usize) {
        self.buf.reserve(additional);
    }

    /// Removes every frame, keeping the capacity.
    pub fn clear(&mut self) {
        self.buf.clear();
    }
}

/// Default maximum payload size of one frame: 16 MiB.
pub const DEFAULT_MAX_FRAME: usize = 16 * 1024 * 1024;

/// A frame-level failure.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum FrameError {
    /// A frame announced a payload larger than the configured maximum.
    #[error("frame of more than {max} bytes refused")]
    TooLarge {
        /// The configured maximum payload size.
        max: usize,
    },
    /// The stream failed or ended in the middle of a frame.
    #[error("could not read a frame from the transport")]
    Io(#[source] io::Error),
}

impl FrameError {
    /// Classifies an error returned by the framed reader.
    pub fn from_read(err: io::Error, max: usize) -> Self {
        // The codec reports an oversized frame as InvalidData wrapping its own error.
        let too_large =
            err.kind() == io::ErrorKind::InvalidData && err.get_ref().is_some_and(|inner| inner.is::<Oversized>());
        if too_large {
            FrameError::TooLarge { max }
        } else {
            FrameError::Io(err)
        }
    }
}

/// The codec's own error for a frame above its maximum, carried inside an `InvalidData`
/// [`io::Error`] (the error type of `tokio_util`'s framed streams) and recognised by
/// [`FrameError::from_read`].
#[derive(Debug, thiserror::Error)]
#[error("frame of {len} bytes exceeds the maximum of {max} bytes")]
struct Oversized {
    len: usize,
    max: usize,
}

impl Oversized {
    fn check(len: usize, max: usize) -> io::Result<()> {
        if len > max {
            return Err(io::Error::new(io::ErrorKind::InvalidData, Oversized { len, max }));
        }
        Ok(())
    }
}

/// Builds the codec for the protocol's frame layout with the given maximum payload size.
pub fn codec(max_frame: usize) -> FrameCodec {
    FrameCodec { max_frame }
}

/// The protocol's frame codec: a 4-byte little-endian length, then the payload.
///
/// It is written for this one layout rather than configured from `tokio_util`'s
/// `LengthDelimitedCodec`: the general codec cost about 300 instructions per frame, two frames
/// per call (see `docs/PERFORMANCE.md`). A header stays in the buffer until its whole frame is
/// there, so a stream that ends anywhere inside a frame leaves bytes behind and is reported as
/// truncated. The buffer is grown once to hold a frame whose header says it is larger.
#[derive(Debug)]
pub struct FrameCodec {
    max_frame: usize,
}

impl Decoder for FrameCodec {
    type Item = BytesMut;
    type Error = io::Error;

    #[inline]
    fn decode(&mut self, src: &mut BytesMut) -> io::Result<Option<BytesMut>> {
        let Some(header) = src.first_chunk::<HEADER_LEN>() else { return Ok(None) };
        let len = u32::from_le_bytes(*header) as usize;
        Oversized::check(len, self.max_frame)?;
        let whole = HEADER_LEN + len;
        if src.len() < whole {
            src.reserve(whole - src.len());
            return Ok(None);
        }
        src.advance(HEADER_LEN);
        Ok(Some(src.split_to(len)))
    }

    fn decode_eof(&mut self, src: &mut BytesMut) -> io::Result<Option<BytesMut>> {
        match self.decode(src)? {
            Some(frame) => Ok(Some(frame)),
            None if src.is_empty() => Ok(None),
            None => Err(io::Error::new(io::ErrorKind::UnexpectedEof, "the stream ended inside a frame")),
        }
    }
}

impl Encoder<Bytes> for FrameCodec {
    type Error = io::Error;

    fn encode(&mut self, frame: Bytes, dst: &mut BytesMut) -> io::Result<()> {
        Oversized::check(frame.len(), self.max_frame)?;
        let prefix = u32::try_from(frame.len()).map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?;
        dst.reserve(HEADER_LEN + frame.len());
        put_header(dst, prefix);
        dst.extend_from_slice(&frame);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::{Bytes, BytesMut};
    use tokio_util::codec::{Decoder, Encoder};

    #[test]
    fn layout_is_little_endian_length_then_payload() {
        let mut out = BytesMut::new();
        codec(16).encode(Bytes::from_static(b"abc"), &mut out).unwrap();
        assert_eq!(&out[..], &[3, 0, 0, 0, b'a', b'b', b'c']);
    }

    #[test]
    fn frame_at_limit_passes_and_above_limit_is_refused() {
        let mut c = codec(4);
        let mut buf = BytesMut::from(&[4u8, 0, 0, 0, 1, 2, 3, 4][..]);
        assert_eq!(&c.decode(&mut buf).unwrap().unwrap()[..], &[1, 2, 3, 4]);
        let mut buf = BytesMut::from(&[5u8, 0, 0, 0, 1, 2, 3, 4, 5][..]);
        let err = c.decode(&mut buf).unwrap_err();
        assert!(matches!(FrameError::from_read(err, 4), FrameError::TooLarge { max: 4 }));
    }

    /// Found by the `frame` fuzz target: a stream cut right after a header (no payload byte
    /// yet) was taken for a clean end.
    #[test]
    fn stream_ending_inside_a_frame_is_an_error() {
        for cut in [&[3u8, 0, 0][..], &[3, 0, 0, 0], &[3, 0, 0, 0, 1, 2]] {
            let mut c = codec(16);
            let mut buf = BytesMut::from(cut);
            assert!(c.decode(&mut buf).unwrap().is_none());
            let err = c.decode_eof(&mut buf).unwrap_err();
            assert!(matches!(FrameError::from_read(err, 16), FrameError::Io(_)), "cut after {cut:?}");
        }
        let mut c = codec(16);
        let mut buf = BytesMut::from(&[1u8, 0, 0, 0, 7, 0, 0, 0, 0][..]);
        assert_eq!(&c.decode_eof(&mut buf).unwrap().unwrap()[..], &[7]);
        assert_eq!(&c.decode_eof(&mut buf).unwrap().unwrap()[..], &[] as &[u8]);
        assert!(c.decode_eof(&mut buf).unwrap().is_none());
    }
}
