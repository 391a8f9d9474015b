//! TCP: `tcp://HOST:PORT`.

use std::io;
use std::net::SocketAddr;

use tokio::net::{TcpListener, TcpStream, ToSocketAddrs};

use crate::{LinkInfo, RawStream, Role};

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
        wrap(self.accept_tcp().await?, Role::Acceptor)
    }

    /// Waits for the next connection and returns the bare socket (for a protocol layered on
    /// top, such as TLS).
    ///
    /// # Errors
    ///
    /// As [`accept`](Listener::accept).
    pub async fn accept_tcp(&self) -> io::Result<TcpStream> {
        let (stream, _) = self.inner.accept().await?;
        // Calls are small and latency-bound; batching is done by the writer, not by Nagle.
        stream.set_nodelay(true)?;
        Ok(stream)
    }
}

/// Connects to a TCP endpoint.
///
/// # Errors
///
/// The operating system's error when no connection can be made.
pub async fn connect(addr: impl ToSocketAddrs) -> io::Result<RawStream> {
    wrap(connect_tcp(addr).await?, Role::Connector)
}

/// Connects and returns the bare socket (for a protocol layered on top, such as TLS).
///
/// # Errors
///
/// As [`connect`].
pub async fn connect_tcp(addr: impl ToSocketAddrs) -> io::Result<TcpStream> {
    let stream = TcpStream::connect(addr).await?;
    stream.set_nodelay(true)?;
    Ok(stream)
}

fn wrap(stream: TcpStream, role: Role) -> io::Result<RawStream> {
    let info =
        LinkInfo { transport: "tcp", local: stream.local_addr()?.to_string(), peer: stream.peer_addr()?.to_string() };
    let (reader, writer) = stream.into_split();
    Ok(RawStream::new(Box::new(reader), Box::new(writer), info, role))
}
