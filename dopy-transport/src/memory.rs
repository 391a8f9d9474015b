//! In-process links: a connected pair of byte streams with no socket, for tests and embedding.

use crate::{LinkInfo, RawStream};

/// Buffer size of each direction of an in-memory pair.
const BUFFER: usize = 256 * 1024;

/// Creates two connected in-memory streams.
///
/// # Examples
///
/// ```
/// let (a, b) = dopy_transport::memory::pair();
/// assert_eq!(a.info.transport, "memory");
/// # drop(b);
/// ```
pub fn pair() -> (RawStream, RawStream) {
    let (a, b) = tokio::io::duplex(BUFFER);
    (half(a, "a", "b"), half(b, "b", "a"))
}

fn half(stream: tokio::io::DuplexStream, local: &str, peer: &str) -> RawStream {
    let (reader, writer) = tokio::io::split(stream);
    RawStream::new(
        Box::new(reader),
        Box::new(writer),
        LinkInfo { transport: "memory", local: local.into(), peer: peer.into() },
    )
}
