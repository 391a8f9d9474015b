//! [`Link`]: a framed duplex over any byte stream, after the handshake.

use std::fmt;
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite};
use tokio_util::codec::{FramedRead, FramedWrite, LengthDelimitedCodec};

use crate::{frame, handshake, TransportError};

/// The read half of a byte stream, boxed so every transport yields the same type.
pub type BoxRead = Box<dyn AsyncRead + Send + Unpin>;
/// The write half of a byte stream, boxed so every transport yields the same type.
pub type BoxWrite = Box<dyn AsyncWrite + Send + Unpin>;

/// Incoming frames: a `Stream` of `Result<BytesMut, io::Error>`.
pub type FrameReader = FramedRead<BoxRead, LengthDelimitedCodec>;
/// Outgoing frames: a `Sink<Bytes>`; `feed` several frames and `flush` once to batch writes.
pub type FrameWriter = FramedWrite<BoxWrite, LengthDelimitedCodec>;

/// What is known about the two ends of a link, for logs and error messages.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LinkInfo {
    /// The transport scheme (`tcp`, `unix`, `memory`, ...).
    pub transport: &'static str,
    /// The local end, as the transport names it.
    pub local: String,
    /// The remote end, as the transport names it.
    pub peer: String,
}

impl fmt::Display for LinkInfo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{} <-> {}", self.transport, self.local, self.peer)
    }
}

/// Something a transport keeps alive with its stream, and asks about when the stream ends.
///
/// A child-process transport attaches the child: dropping the attachment (when the last handle
/// to the connection goes) ends the child, and [`on_close`](Attachment::on_close) reports its
/// exit status and the end of its stderr for the `Disconnected` error.
pub trait Attachment: Send + Sync + 'static {
    /// Extra words about why the stream ended (for instance `child exited with status 1;
    /// stderr: ...`), or `None`.
    fn on_close(&self) -> std::pin::Pin<Box<dyn std::future::Future<Output = Option<String>> + Send + '_>>;
}

/// A connected byte stream before the handshake, split into halves.
pub struct RawStream {
    /// Where bytes come from.
    pub reader: BoxRead,
    /// Where bytes go.
    pub writer: BoxWrite,
    /// The two ends.
    pub info: LinkInfo,
    /// What the transport keeps alive with the stream (a child process, for instance).
    pub attachment: Option<Box<dyn Attachment>>,
}

impl RawStream {
    /// A stream with nothing attached.
    pub fn new(reader: BoxRead, writer: BoxWrite, info: LinkInfo) -> Self {
        RawStream { reader, writer, info, attachment: None }
    }
}

impl fmt::Debug for RawStream {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RawStream").field("info", &self.info).finish_non_exhaustive()
    }
}

/// Settings of a link: frame limit and handshake timeout.
#[derive(Clone, Debug)]
pub struct LinkConfig {
    /// Largest frame payload accepted or sent, in bytes.
    pub max_frame: usize,
    /// How long the peer may take to complete the handshake.
    pub handshake_timeout: Duration,
}

impl Default for LinkConfig {
    fn default() -> Self {
        LinkConfig { max_frame: frame::DEFAULT_MAX_FRAME, handshake_timeout: Duration::from_secs(10) }
    }
}

/// A framed duplex ready to carry protocol messages.
pub struct Link {
    reader: FrameReader,
    writer: FrameWriter,
    info: LinkInfo,
    attachment: Option<Box<dyn Attachment>>,
}

/// The parts of a [`Link`], for the code that drives it.
pub struct LinkParts {
    /// Incoming frames.
    pub reader: FrameReader,
    /// Outgoing frames.
    pub writer: FrameWriter,
    /// The two ends.
    pub info: LinkInfo,
    /// What the transport keeps alive with the stream; drop it when the connection is done.
    pub attachment: Option<Box<dyn Attachment>>,
}

impl fmt::Debug for LinkParts {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LinkParts").field("info", &self.info).finish_non_exhaustive()
    }
}

impl fmt::Debug for Link {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Link").field("info", &self.info).finish_non_exhaustive()
    }
}

impl Link {
    /// Runs the handshake on a fresh stream and frames it.
    ///
    /// # Errors
    ///
    /// [`TransportError::Handshake`] when the other end is not a dopy peer of this version or
    /// does not answer within the configured timeout.
    pub async fn establish(mut raw: RawStream, config: &LinkConfig) -> Result<Link, TransportError> {
        if let Err(e) = handshake::run(&mut raw.reader, &mut raw.writer, config.handshake_timeout).await {
            tracing::debug!(link = %raw.info, error = %e, "handshake failed");
            // A child that died before answering explains why better than the handshake can.
            if let Some(why) = match &raw.attachment {
                Some(a) => a.on_close().await,
                None => None,
            } {
                return Err(TransportError::Closed { error: e, detail: why });
            }
            return Err(e.into());
        }
        tracing::debug!(link = %raw.info, "handshake complete");
        Ok(Link {
            reader: FramedRead::with_capacity(raw.reader, frame::codec(config.max_frame), 64 * 1024),
            writer: FramedWrite::new(raw.writer, frame::codec(config.max_frame)),
            info: raw.info,
            attachment: raw.attachment,
        })
    }

    /// The two ends of the link.
    pub fn info(&self) -> &LinkInfo {
        &self.info
    }

    /// Splits the link into its reading and writing halves (dropping any attachment).
    pub fn split(self) -> (FrameReader, FrameWriter) {
        (self.reader, self.writer)
    }

    /// Takes the link apart, keeping the attachment.
    pub fn into_parts(self) -> LinkParts {
        LinkParts { reader: self.reader, writer: self.writer, info: self.info, attachment: self.attachment }
    }
}
