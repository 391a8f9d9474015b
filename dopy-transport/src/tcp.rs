//! TCP: `tcp://HOST:PORT`.

use std::io;
use std::net::SocketAddr;

use tokio::net::{TcpListener, TcpSocket, TcpStream, ToSocketAddrs};

use crate::{LinkInfo, RawStream, Role};

/// The listen backlog asked of the operating system: how many connections may wait to be
/// accepted (Linux caps it at `net.core.somaxconn`, 4096 by default since 5.4). The standard
/// library's 128 drops the connection attempts of a burst beyond it, and a dropped attempt is
/// retried by its client only after a second or more.
pub const BACKLOG: u32 = 4096;

/// Accepts TCP connections.
#[derive(Debug)]
pub struct Listener {
    inner: TcpListener,
}

impl Listener {
    /// Binds a listening socket (port 0 picks a free port), with a listen backlog of
    /// [`BACKLOG`].
    ///
    /// # Errors
    ///
    /// The operating system's error when the address cannot be bound (the last one's, if the
    /// name resolves to several addresses).
    pub async fn bind(addr: impl ToSocketAddrs) -> io::Result<Listener> {
        let mut last = None;
        for addr in tokio::net::lookup_host(addr).await? {
            match listen(addr) {
                Ok(inner) => return Ok(Listener { inner }),
                Err(e) => last = Some(e),
            }
        }
        Err(last.unwrap_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "the name resolves to no address")))
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
    /// As [`accept_tcp`](Listener::accept_tcp).
    pub async fn accept(&self) -> io::Result<RawStream> {
        let (stream, peer) = self.accept_tcp().await?;
        Ok(wrap_accepted(stream, peer))
    }

    /// Waits for the next connection and returns the bare socket and the peer's address (for
    /// a protocol layered on top, such as TLS, or a caller that looks at the socket before it
    /// wraps it with [`wrap_accepted`]).
    ///
    /// # Errors
    ///
    /// The operating system's error when accepting fails. A connection that fails once
    /// accepted (reset by its peer while it waited to be accepted, say) is an error of kind
    /// [`io::ErrorKind::ConnectionAborted`]: [`is_connection_error`] tells such errors, which
    /// concern one connection only, from those of the listener (out of descriptors).
    pub async fn accept_tcp(&self) -> io::Result<(TcpStream, SocketAddr)> {
        let (stream, peer) = self.inner.accept().await?;
        // Calls are small and latency-bound; batching is done by the writer, not by Nagle.
        stream.set_nodelay(true).map_err(|e| lost(peer, e))?;
        Ok((stream, peer))
    }
}

/// Binds `addr` and listens with a backlog of [`BACKLOG`], as `TcpListener::bind` does with
/// 128.
fn listen(addr: SocketAddr) -> io::Result<TcpListener> {
    let socket = if addr.is_ipv4() { TcpSocket::new_v4()? } else { TcpSocket::new_v6()? };
    // As the standard library and mio do: a restarted server can bind its port at once.
    #[cfg(unix)]
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    socket.listen(BACKLOG)
}

/// A connection that failed after it was accepted: its own problem, not the listener's.
fn lost(peer: SocketAddr, e: io::Error) -> io::Error {
    io::Error::new(io::ErrorKind::ConnectionAborted, format!("connection from {peer} lost as it was accepted: {e}"))
}

/// Whether an error of [`Listener::accept`] (or of any listener's accept) concerns the one
/// connection being accepted (reset or aborted by its peer before or while it was accepted,
/// an interrupted call), so that the listener should go on at once; otherwise the listener
/// itself is short of something (descriptors: `EMFILE`, `ENFILE`; kernel memory: `ENOBUFS`,
/// `ENOMEM`) or broken, and should back off before it tries again. The classification is
/// Hyper's and axum's, plus the errors a connection reset in the accept queue gives.
pub fn is_connection_error(e: &io::Error) -> bool {
    use io::ErrorKind::{
        BrokenPipe, ConnectionAborted, ConnectionRefused, ConnectionReset, Interrupted, NotConnected, TimedOut,
        WouldBlock,
    };
    matches!(
        e.kind(),
        ConnectionAborted
            | ConnectionReset
            | ConnectionRefused
            | NotConnected
            | Interrupted
            | BrokenPipe
            | TimedOut
            | WouldBlock
    )
}

/// Wraps a socket that [`Listener::accept_tcp`] returned, with the peer's address it gave.
/// Asks the operating system nothing more about the peer: a connection reset while it waited
/// to be accepted has no peer address any more (`ENOTCONN`), and fails at its first read.
pub fn wrap_accepted(stream: TcpStream, peer: SocketAddr) -> RawStream {
    let local = stream.local_addr().map(|a| a.to_string()).unwrap_or_else(|_| "?".to_owned());
    let info = LinkInfo { transport: "tcp", local, peer: peer.to_string() };
    let (reader, writer) = stream.into_split();
    RawStream::new(Box::new(reader), Box::new(writer), info, Role::Acceptor)
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
