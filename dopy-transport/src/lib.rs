//! Transports of dopy: bytes in, frames out.
//!
//! A transport turns a byte stream (a TCP socket, a Unix socket, a child process's stdio, an
//! in-memory pipe) into a [`Link`]: a framed duplex carrying length-prefixed frames, after the
//! dopy [handshake](handshake) has proved that the other end speaks the protocol. This crate
//! knows nothing of objects or messages; `dopy-core` drives any `Link`.
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

pub mod frame;
pub mod handshake;
mod link;
pub mod memory;
pub mod tcp;

pub use frame::FrameError;
pub use handshake::HandshakeError;
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
    /// The handshake did not complete and the transport knows why (a child process exited).
    #[error("{error} ({detail})")]
    Closed {
        /// The handshake's error.
        #[source]
        error: HandshakeError,
        /// What the transport knows (exit status, end of stderr).
        detail: String,
    },
}
