//! The typed causes of a call's local failures: [`CodecError`], [`ProtocolError`], and
//! [`Disconnected`] with its [`DisconnectCause`].

use std::error::Error as StdError;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use dopy_transport::FrameError;

use super::Trace;

/// A boxed error, the source of a [`CodecError`].
pub type BoxError = Box<dyn StdError + Send + Sync + 'static>;

/// A value that could not be encoded or decoded: what failed, and the encoder's or decoder's
/// own error (a `postcard::Error`, a [`value::Error`](crate::value::Error), ...) as its
/// [`source`](std::error::Error::source).
///
/// # Examples
///
/// ```
/// use dopy_core::CodecError;
///
/// let err = CodecError::new("value nesting exceeds 128 levels");
/// assert_eq!(err.to_string(), "value nesting exceeds 128 levels");
/// assert!(std::error::Error::source(&err).is_none());
/// ```
#[derive(Debug)]
pub struct CodecError {
    what: Option<String>,
    source: Option<BoxError>,
}

impl CodecError {
    /// An error that is all said by `what`.
    pub fn new(what: impl Into<String>) -> Self {
        CodecError { what: Some(what.into()), source: None }
    }

    /// `what` failed because of `source`.
    pub fn with_source(what: impl Into<String>, source: impl Into<BoxError>) -> Self {
        CodecError { what: Some(what.into()), source: Some(source.into()) }
    }

    /// The encoder's or decoder's error, which says it all.
    pub fn from_source(source: impl Into<BoxError>) -> Self {
        CodecError { what: None, source: Some(source.into()) }
    }

    /// What failed, if more was said than the source's own message.
    pub fn what(&self) -> Option<&str> {
        self.what.as_deref()
    }
}

impl fmt::Display for CodecError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (&self.what, &self.source) {
            (Some(what), _) => f.write_str(what),
            // The source's message is ours: its own source comes next.
            (None, Some(source)) => write!(f, "{source}"),
            (None, None) => f.write_str("encoding failed"),
        }
    }
}

impl StdError for CodecError {
    fn source(&self) -> Option<&(dyn StdError + 'static)> {
        let source = self.source.as_deref().map(|s| s as &(dyn StdError + 'static));
        if self.what.is_some() {
            source
        } else {
            source.and_then(StdError::source)
        }
    }
}

/// A breach of the protocol: reported by the peer in answer to a call, or found by this side in
/// what the peer sent (which ends the connection: see [`DisconnectCause::Protocol`]).
#[derive(Debug)]
#[non_exhaustive]
pub enum ProtocolError {
    /// The peer could not handle what this side sent for the call (its reply could not be
    /// sent, for instance); the trace holds its message.
    Reported(Box<Trace>),
    /// A frame over the size limit, or a stream that is not made of frames.
    Frame(FrameError),
    /// A frame that is not a message: the decoder's error.
    Malformed(postcard::Error),
    /// A message refused for its values (nested too deep, or too large decoded), whose start
    /// could not be read to refuse it alone.
    Values {
        /// Why its values were refused.
        reason: String,
    },
}

impl fmt::Display for ProtocolError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ProtocolError::Reported(t) => f.write_str(t.message()),
            ProtocolError::Frame(e) => write!(f, "{e}"),
            ProtocolError::Malformed(e) => write!(f, "malformed frame ({e})"),
            ProtocolError::Values { reason } => f.write_str(reason),
        }
    }
}

impl StdError for ProtocolError {
    fn source(&self) -> Option<&(dyn StdError + 'static)> {
        // The frame's and the decoder's errors are in the message: their sources come next.
        match self {
            ProtocolError::Reported(_) | ProtocolError::Values { .. } => None,
            ProtocolError::Frame(e) => e.source(),
            ProtocolError::Malformed(e) => e.source(),
        }
    }
}

/// Who ended a connection, and why: the cause of a [`Disconnected`].
#[derive(Debug)]
#[non_exhaustive]
pub enum DisconnectCause {
    /// This side closed it (`Connection::close`, a node shutting down, the last handle dropped).
    ClosedLocally,
    /// The connection had ended; this call came too late to learn why.
    Closed,
    /// The peer said goodbye (it closed the connection in an orderly way, or shut down).
    Goodbye,
    /// The peer's stream ended without a goodbye.
    PeerClosed,
    /// The peer aborted the connection.
    Aborted {
        /// The peer's reason.
        reason: String,
    },
    /// The transport failed (the i/o error is the frame error's [`source`](StdError::source)).
    Transport(FrameError),
    /// The peer breached the protocol, and this side aborted the connection.
    Protocol(ProtocolError),
    /// The peer did not read what it was sent, for longer than the node allows.
    NotReading {
        /// The bytes still queued for the peer.
        queued: usize,
        /// The node's limit (`max_backlog`).
        limit: usize,
        /// How long the queue stayed over the limit.
        waited: Duration,
    },
    /// Nothing was received from the peer for longer than the heartbeat allows.
    HeartbeatTimeout {
        /// How long the peer was silent.
        silent: Duration,
        /// The heartbeat's timeout.
        timeout: Duration,
    },
    /// The connection had no call and no reference for the node's idle timeout.
    IdleTimeout {
        /// The idle timeout.
        idle: Duration,
    },
}

impl fmt::Display for DisconnectCause {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DisconnectCause::ClosedLocally => f.write_str("closed locally"),
            DisconnectCause::Closed => f.write_str("the connection is closed"),
            DisconnectCause::Goodbye => f.write_str("the peer said goodbye"),
            DisconnectCause::PeerClosed => f.write_str("the peer closed the connection"),
            DisconnectCause::Aborted { reason } => write!(f, "the peer aborted the connection: {reason}"),
            DisconnectCause::Transport(e) => write!(f, "{}", Flat(e)),
            DisconnectCause::Protocol(e) => write!(f, "protocol error: {e}"),
            DisconnectCause::NotReading { queued, limit, waited } => write!(
                f,
                "the peer did not read: {queued} bytes were still queued for it after {waited:?} over the limit of \
                 {limit} bytes"
            ),
            DisconnectCause::HeartbeatTimeout { silent, timeout } => {
                write!(f, "heartbeat timeout: nothing received from the peer for {silent:?} (limit {timeout:?})")
            }
            DisconnectCause::IdleTimeout { idle } => write!(f, "idle timeout: no call and no reference for {idle:?}"),
        }
    }
}

impl StdError for DisconnectCause {
    fn source(&self) -> Option<&(dyn StdError + 'static)> {
        // What the message prints (the transport's error and its cause, the protocol error)
        // is not a source again.
        match self {
            DisconnectCause::Transport(e) => after(e),
            DisconnectCause::Protocol(e) => e.source(),
            _ => None,
        }
    }
}

/// Why a connection ended: its [`cause`](Disconnected::cause), and what the transport could add
/// (a child process's exit status and last words on stderr, for instance).
///
/// Cheap to clone: every call that the end of a connection fails holds the same one.
#[derive(Clone, Debug)]
pub struct Disconnected(Arc<Ended>);

#[derive(Debug)]
struct Ended {
    cause: DisconnectCause,
    detail: Option<String>,
}

impl Disconnected {
    /// The end of a connection for `cause`.
    pub fn new(cause: DisconnectCause) -> Self {
        Disconnected(Arc::new(Ended { cause, detail: None }))
    }

    /// The same, with what the transport said about the end (`detail`).
    pub fn with_detail(cause: DisconnectCause, detail: Option<String>) -> Self {
        Disconnected(Arc::new(Ended { cause, detail }))
    }

    /// Who ended the connection, and why.
    pub fn cause(&self) -> &DisconnectCause {
        &self.0.cause
    }

    /// What the transport said about the end, if anything (an exited child's status and the
    /// last lines it wrote to stderr, for instance).
    pub fn detail(&self) -> Option<&str> {
        self.0.detail.as_deref()
    }
}

impl fmt::Display for Disconnected {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0.cause)?;
        match &self.0.detail {
            Some(detail) => write!(f, "; {detail}"),
            None => Ok(()),
        }
    }
}

impl StdError for Disconnected {
    fn source(&self) -> Option<&(dyn StdError + 'static)> {
        self.0.cause.source()
    }
}

impl From<DisconnectCause> for Disconnected {
    fn from(cause: DisconnectCause) -> Self {
        Disconnected::new(cause)
    }
}

/// An error with its first cause on the same line (`what: cause`), as the one-line message of
/// an error that holds it.
pub(crate) struct Flat<'a>(pub(crate) &'a dyn StdError);

impl fmt::Display for Flat<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)?;
        match self.0.source() {
            Some(cause) => write!(f, ": {cause}"),
            None => Ok(()),
        }
    }
}

/// The causes of `e` after the one [`Flat`] prints.
pub(crate) fn after<'a>(e: &'a (dyn StdError + 'static)) -> Option<&'a (dyn StdError + 'static)> {
    e.source().and_then(StdError::source)
}
