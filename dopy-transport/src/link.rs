//! [`Link`]: a framed duplex over any byte stream, after the handshake.

use std::fmt;
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite};
use tokio_util::codec::{FramedRead, FramedWrite, LengthDelimitedCodec};

use crate::handshake::{self, HandshakeError, Secret};
use crate::{frame, TransportError};

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

/// Which end of a stream this side is: the one that opened it, or the one that accepted it.
///
/// The handshake's authentication binds each proof to its role, so that a proof made by one
/// end can never be replayed as the other's.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Role {
    /// This side opened the stream (connected, dialled, spawned the child).
    Connector,
    /// This side accepted the stream (a listener, a process serving its own stdio).
    Acceptor,
}

/// Something a transport keeps alive with its stream, and asks about when the stream ends.
///
/// A child-process transport attaches the child: dropping the attachment (when the last handle
/// to the connection goes) ends the child, and [`on_close`](Attachment::on_close) reports its
/// exit status and the end of its stderr for the `Disconnected` error.
pub trait Attachment: Send + Sync + 'static {
    /// Extra words about why the stream ended (for instance `child exited with status 1;
    /// stderr: ...`), or `None`. May wait a little for the transport to settle (a child to exit).
    fn on_close(&self) -> std::pin::Pin<Box<dyn std::future::Future<Output = Option<String>> + Send + '_>>;

    /// What the transport knows right now, without waiting (a child's stderr so far), or `None`.
    ///
    /// Used when the stream has not ended but the connection fails anyway (a banner instead of
    /// the handshake, a handshake timeout).
    fn describe(&self) -> Option<String> {
        None
    }
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
    /// Whether this side opened or accepted the stream.
    pub role: Role,
}

impl RawStream {
    /// A stream with nothing attached.
    pub fn new(reader: BoxRead, writer: BoxWrite, info: LinkInfo, role: Role) -> Self {
        RawStream { reader, writer, info, attachment: None, role }
    }

    /// Attaches what must live as long as the stream (a child process, for instance).
    pub fn with_attachment(mut self, attachment: Box<dyn Attachment>) -> Self {
        self.attachment = Some(attachment);
        self
    }
}

impl fmt::Debug for RawStream {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RawStream").field("info", &self.info).field("role", &self.role).finish_non_exhaustive()
    }
}

/// Settings of a link: frame limit, handshake timeout and authentication.
#[derive(Clone, Debug)]
pub struct LinkConfig {
    /// Largest frame payload accepted or sent, in bytes.
    pub max_frame: usize,
    /// How long the peer may take to complete the handshake.
    pub handshake_timeout: Duration,
    /// The shared secret both ends must prove they know, or `None` for no authentication.
    ///
    /// With a secret, this side accepts only peers that prove knowledge of the same secret, and
    /// proves its own knowledge in turn (mutual challenge–response, see [`handshake`]).
    pub secret: Option<Secret>,
}

impl Default for LinkConfig {
    fn default() -> Self {
        LinkConfig { max_frame: frame::DEFAULT_MAX_FRAME, handshake_timeout: Duration::from_secs(10), secret: None }
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
    /// [`TransportError::Handshake`] when the other end is not a dopy peer of this version, does
    /// not answer within the configured timeout, or fails authentication
    /// ([`TransportError::is_unauthorized`]); [`TransportError::Closed`] when the transport
    /// knows more (a child process exited: its status and the end of its stderr).
    pub async fn establish(mut raw: RawStream, config: &LinkConfig) -> Result<Link, TransportError> {
        let outcome = handshake::run(
            &mut raw.reader,
            &mut raw.writer,
            raw.role,
            config.secret.as_ref(),
            config.handshake_timeout,
        )
        .await;
        if let Err(e) = outcome {
            tracing::debug!(link = %raw.info, error = %e, "handshake failed");
            let detail = match &raw.attachment {
                // The stream ended: a child that died before answering explains why better
                // than the handshake can, so wait for its exit status.
                Some(a) if matches!(e, HandshakeError::Closed { .. } | HandshakeError::Io(_)) => a.on_close().await,
                // The peer is still there (a banner, silence): say what it printed so far.
                Some(a) => a.describe(),
                None => None,
            };
            return Err(match detail {
                Some(detail) => TransportError::Closed { error: e, detail },
                None => e.into(),
            });
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
