//! Byte streams and the dopy handshake (`dopy-transport`), for custom transports and
//! transport settings.
//!
//! A [`Node`](crate::Node) opens and accepts its connections itself from addresses; this module
//! is for what addresses do not cover:
//!
//! - TLS settings: [`tls::TlsServer`] and [`tls::TlsClient`] for
//!   [`NodeBuilder::tls_server`](crate::NodeBuilder::tls_server) and
//!   [`NodeBuilder::tls_client`](crate::NodeBuilder::tls_client) (cargo feature `tls`);
//! - a stream from elsewhere: build a [`RawStream`] (from any `AsyncRead` and `AsyncWrite`, or
//!   with the [`tcp`], [`unix`], [`memory`], [`exec`], [`ssh`] and [`stdio`] modules) and hand it
//!   to [`Node::serve_stream`](crate::Node::serve_stream);
//! - the [`handshake`]'s constants, for peers that speak the protocol without a node;
//! - [`TransportError`], the source of an [`Error::Connect`](crate::Error::Connect).
//!
//! # Examples
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")] async fn main() -> dopy::Result<()> {
//! let server = dopy::Node::new();
//! let client = dopy::Node::new();
//! let (a, b) = dopy::transport::memory::pair();
//! let (served, connected) = tokio::try_join!(server.serve_stream(a), client.serve_stream(b))?;
//! assert!(!served.is_closed() && !connected.is_closed());
//! # Ok(()) }
//! ```

#[cfg(feature = "tls")]
#[cfg_attr(docsrs, doc(cfg(feature = "tls")))]
pub use dopy_transport::tls;
pub use dopy_transport::{exec, handshake, memory, ssh, stdio, tcp, unix};
pub use dopy_transport::{Attachment, BoxRead, BoxWrite, LinkInfo, RawStream, Role};
pub use dopy_transport::{FrameError, HandshakeError, Secret, TransportError};
