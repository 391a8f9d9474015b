//! Frame layout and limits: a 4-byte little-endian length followed by that many payload bytes.
//!
//! Framing itself is `tokio_util`'s [`LengthDelimitedCodec`]; this module fixes its settings
//! (the layout is part of the public protocol, see `PROTOCOL.md`), reports a stream that ends
//! inside a frame ([`FrameCodec`]) and classifies its errors.

use std::io;

use bytes::{Bytes, BytesMut};
use tokio_util::codec::{length_delimited, Decoder, Encoder, LengthDelimitedCodec};

/// Size of the length prefix in bytes.
pub const HEADER_LEN: usize = 4;

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
        // LengthDelimitedCodec reports an oversized frame as InvalidData wrapping its own error.
        let too_large = err.kind() == io::ErrorKind::InvalidData
            && err.get_ref().is_some_and(|inner| inner.is::<length_delimited::LengthDelimitedCodecError>());
        if too_large {
            FrameError::TooLarge { max }
        } else {
            FrameError::Io(err)
        }
    }
}

/// Builds the codec for the protocol's frame layout with the given maximum payload size.
pub fn codec(max_frame: usize) -> FrameCodec {
    let inner = LengthDelimitedCodec::builder()
        .length_field_length(HEADER_LEN)
        .little_endian()
        .max_frame_length(max_frame)
        .new_codec();
    FrameCodec { inner, in_frame: false }
}

/// The protocol's frame codec: [`LengthDelimitedCodec`] with the protocol's settings, which
/// also reports a stream that ends right after a frame's header as truncated.
///
/// `LengthDelimitedCodec` takes a header out of the buffer as soon as it is complete; when the
/// stream then ends before any of the payload came, its buffer is empty and the default
/// `decode_eof` took that for a clean end. A stream cut anywhere inside a frame is an error.
#[derive(Debug)]
pub struct FrameCodec {
    inner: LengthDelimitedCodec,
    /// Whether a header was taken out of the buffer and its payload is still awaited.
    in_frame: bool,
}

impl Decoder for FrameCodec {
    type Item = BytesMut;
    type Error = io::Error;

    fn decode(&mut self, src: &mut BytesMut) -> io::Result<Option<BytesMut>> {
        let before = src.len();
        let frame = self.inner.decode(src)?;
        // The inner codec consumes input only to take a header or a whole frame.
        self.in_frame = frame.is_none() && (self.in_frame || src.len() < before);
        Ok(frame)
    }

    fn decode_eof(&mut self, src: &mut BytesMut) -> io::Result<Option<BytesMut>> {
        match self.decode(src)? {
            Some(frame) => Ok(Some(frame)),
            None if src.is_empty() && !self.in_frame => Ok(None),
            None => Err(io::Error::new(io::ErrorKind::UnexpectedEof, "the stream ended inside a frame")),
        }
    }
}

impl Encoder<Bytes> for FrameCodec {
    type Error = io::Error;

    fn encode(&mut self, frame: Bytes, dst: &mut BytesMut) -> io::Result<()> {
        self.inner.encode(frame, dst)
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
