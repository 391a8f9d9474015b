//! Transports of dopy: bytes in, frames out.
//!
//! A transport turns a byte stream into a [`RawStream`]; [`Link::establish`] runs the dopy
//! [`handshake`] on it (magic, version, optional shared-secret authentication) and
//! frames it into a [`Link`]: a duplex carrying length-prefixed frames. This crate knows
//! nothing of objects or messages; `dopy-core` drives any `Link`.
//!
//! | module | stream | address in `dopy` |
//! |---|---|---|
//! | [`tcp`] | a TCP socket | `tcp://HOST:PORT` |
//! | `tls` | TLS over a TCP socket (rustls; feature `tls`) | `tls://HOST:PORT` |
//! | [`unix`] | a Unix domain socket | `unix:PATH` |
//! | [`memory`] | an in-process pipe, paired or by name | `memory://NAME` |
//! | [`exec`] | a child process's stdin/stdout | `exec:COMMAND ARGS...` |
//! | [`ssh`] | a remote command's stdin/stdout through `ssh` | `ssh://[USER@]HOST[:PORT]` |
//! | [`stdio`] | this process's own stdin/stdout | (`Node::serve_stdio`) |
//!
//! # Features
//!
//! - `tls` (on by default): the `tls` module, with [rustls](https://docs.rs/rustls) and its
//!   `ring` provider. Without it, neither rustls nor ring is compiled.
//!
//! # Examples
//!
//! ```
//! use dopy_transport::{memory, Link, LinkConfig};
//! use futures_util::{SinkExt, StreamExt};
//!
//! # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let (a, b) = memory::pair();
//! let config = LinkConfig::default();
//! let (a, b) = tokio::try_join!(Link::establish(a, &config), Link::establish(b, &config))?;
//! let (a_read, mut a_write) = a.split();
//! let (mut b_read, _b_write) = b.split();
//! a_write.send(bytes::Bytes::from_static(b"hello")).await?;
//! assert_eq!(&b_read.next().await.unwrap()?[..], b"hello");
//! # drop(a_read); Ok(()) }
//! ```
#![doc(test(attr(deny(warnings))))]
#![cfg_attr(docsrs, feature(doc_cfg))]

pub mod exec;
pub mod frame;
pub mod handshake;
mod link;
pub mod memory;
pub mod ssh;
pub mod stdio;
pub mod tcp;
#[cfg(feature = "tls")]
#[cfg_attr(docsrs, doc(cfg(feature = "tls")))]
pub mod tls;
pub mod unix;

pub use frame::FrameError;
pub use handshake::{HandshakeError, Role, Secret};
pub use link::{
    Attachment, BoxRead, BoxWrite, FrameReader, FrameWriter, Link, LinkConfig, LinkInfo, LinkParts, RawStream,
};

/// An error while opening or using a transport.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TransportError {
    /// The underlying stream failed.
    #[error("transport i/o failed")]
    Io(#[from] std::io::Error),
    /// The handshake did not complete.
    #[error(transparent)]
    Handshake(#[from] HandshakeError),
    /// The handshake did not complete and the transport knows more (a child process exited,
    /// or printed something on stderr). The handshake's error is the
    /// [`source`](std::error::Error::source).
    #[error("the handshake did not complete: {detail}")]
    Closed {
        /// The handshake's error.
        #[source]
        error: HandshakeError,
        /// What the transport knows (exit status, end of stderr).
        detail: String,
    },
}

impl TransportError {
    /// Whether the connection was refused by authentication (a wrong, missing or unexpected
    /// shared secret).
    pub fn is_unauthorized(&self) -> bool {
        match self {
            TransportError::Handshake(e) | TransportError::Closed { error: e, .. } => e.is_unauthorized(),
            TransportError::Io(_) => false,
        }
    }
}
