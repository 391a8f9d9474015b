//! TCP: `tcp://HOST:PORT`.

use std::io;
use std::net::SocketAddr;

use tokio::net::{TcpListener, TcpStream, ToSocketAddrs};

use crate::{LinkInfo, RawStream};

/// Accepts TCP connections.
#[derive(Debug)]
pub struct Listener {
    inner: TcpListener,
}

impl Listener {
    /// Binds a listening socket (port 0 picks a free port).
    ///
    /// # Errors
    ///
    /// The operating system's error when the address cannot be bound.
    pub async fn bind(addr: impl ToSocketAddrs) -> io::Result<Listener> {
        Ok(Listener { inner: TcpListener::bind(addr).await? })
    }

    /// The bound address.
    ///
    /// # Errors
    ///
    /// The operating system's error when the socket has no address.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.inner.local_addr()
    }

    /// Waits for the next connection.
    ///
    /// # Errors
    ///
    /// The operating system's error when accepting fails (for instance, out of descriptors).
    pub async fn accept(&self) -> io::Result<RawStream> {
        let (stream, _) = self.inner.accept().await?;
        wrap(stream)
    }
}

/// Connects to a TCP endpoint.
///
/// # Errors
///
/// The operating system's error when no connection can be made.
pub async fn connect(addr: impl ToSocketAddrs) -> io::Result<RawStream> {
    wrap(TcpStream::connect(addr).await?)
}

fn wrap(stream: TcpStream) -> io::Result<RawStream> {
    // Calls are small and latency-bound; batching is done by the writer, not by Nagle.
    stream.set_nodelay(true)?;
    let info =
        LinkInfo { transport: "tcp", local: stream.local_addr()?.to_string(), peer: stream.peer_addr()?.to_string() };
    let (reader, writer) = stream.into_split();
    Ok(RawStream::new(Box::new(reader), Box::new(writer), info))
}
