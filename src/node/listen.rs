//! Listening: one accept loop per endpoint, every accepted stream served by the same node.

use std::fmt;
use std::io;
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

#[cfg(feature = "tls")]
use dopy_transport::tls::TlsServer;
use dopy_transport::{memory, tcp, unix, RawStream};
#[cfg(feature = "tls")]
use tokio::net::TcpStream;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio_util::sync::CancellationToken;

use super::{Inner, Node, Transports};
use crate::{Endpoint, Error};

/// A bound listener of any transport.
#[derive(Debug)]
pub(super) enum Listener {
    Tcp(tcp::Listener),
    #[cfg(feature = "tls")]
    Tls(tcp::Listener, TlsServer),
    Unix(unix::Listener),
    Memory(memory::Listener),
}

/// An accepted connection whose transport may still need a handshake of its own (TLS), done in
/// the connection's task so that a slow client never holds up the accept loop.
enum Accepted {
    Ready(RawStream),
    #[cfg(feature = "tls")]
    Tls(TcpStream, TlsServer),
}

/// The caps on a node's accepted connections: how many are alive at once, and how many of
/// them are still in their handshake. Shared by every listener of the node.
#[derive(Debug)]
pub(super) struct Admission {
    connections: Arc<Semaphore>,
    handshakes: Arc<Semaphore>,
    max_connections: usize,
}

/// The slots one admitted connection holds: `connection` until it closes, `handshake` until its
/// handshake is over.
struct Admitted {
    connection: OwnedSemaphorePermit,
    handshake: OwnedSemaphorePermit,
}

/// Why a connection was refused.
#[derive(Clone, Copy, Debug)]
enum Full {
    Connections(usize),
}

impl fmt::Display for Full {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Full::Connections(n) => write!(f, "{n} connections already open (NodeBuilder::max_connections)"),
        }
    }
}

impl Admission {
    pub(super) fn new(max_connections: usize, max_handshakes: usize) -> Admission {
        Admission {
            connections: Arc::new(Semaphore::new(max_connections)),
            handshakes: Arc::new(Semaphore::new(max_handshakes)),
            max_connections,
        }
    }

    /// Takes a connection slot for a connection accepted with a `handshake` slot.
    fn admit(&self, handshake: OwnedSemaphorePermit) -> Result<Admitted, Full> {
        let connection =
            self.connections.clone().try_acquire_owned().map_err(|_| Full::Connections(self.max_connections))?;
        Ok(Admitted { connection, handshake })
    }
}

/// Warnings about refused connections, at most one a second per listener, so that a flood
/// does not flood the log too.
#[derive(Default)]
struct Refusals {
    last: Option<Instant>,
    unreported: u64,
}

impl Refusals {
    const EVERY: Duration = Duration::from_secs(1);

    fn refused(&mut self, peer: &str, full: Full) {
        self.unreported += 1;
        let now = Instant::now();
        if self.last.is_none_or(|last| now.duration_since(last) >= Self::EVERY) {
            tracing::warn!(%peer, refused = self.unreported, "connection refused before the handshake: {full}");
            self.last = Some(now);
            self.unreported = 0;
        }
    }
}

impl Accepted {
    /// The peer's address, for logs.
    fn peer(&self) -> String {
        match self {
            Accepted::Ready(raw) => raw.info.peer.clone(),
            #[cfg(feature = "tls")]
            Accepted::Tls(tcp, _) => tcp.peer_addr().map(|a| a.to_string()).unwrap_or_else(|_| "?".into()),
        }
    }

    #[cfg_attr(not(feature = "tls"), allow(unused_variables))] // `timeout` bounds the TLS handshake only
    async fn finish(self, timeout: Duration) -> io::Result<RawStream> {
        match self {
            Accepted::Ready(raw) => Ok(raw),
            #[cfg(feature = "tls")]
            Accepted::Tls(tcp, server) => tokio::time::timeout(timeout, server.accept(tcp))
                .await
                .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, "no TLS handshake in time"))?,
        }
    }
}

fn cannot_listen(endpoint: &Endpoint, reason: &str) -> Error {
    Error::InvalidAddress { address: endpoint.to_string(), reason: reason.to_owned() }
}

fn bind_error(endpoint: &Endpoint, e: io::Error) -> Error {
    Error::Io(io::Error::new(e.kind(), format!("cannot listen on {endpoint}: {e}")))
}

/// Binds a TCP port; returns the listener and the address actually bound (the port picked for
/// port 0).
async fn bind_tcp(endpoint: &Endpoint, host: &str, port: u16) -> Result<(tcp::Listener, String, u16), Error> {
    let failed = |e| bind_error(endpoint, e);
    let listener = tcp::Listener::bind((host, port)).await.map_err(failed)?;
    let local = listener.local_addr().map_err(failed)?;
    Ok((listener, local.ip().to_string(), local.port()))
}

impl Listener {
    /// Binds `endpoint`; returns the listener and the endpoint actually bound (the port picked
    /// for port 0).
    #[cfg_attr(not(feature = "tls"), allow(unused_variables))] // `transports` holds the TLS certificate only
    pub(super) async fn bind(endpoint: &Endpoint, transports: &Transports) -> Result<(Listener, Endpoint), Error> {
        let failed = |e| bind_error(endpoint, e);
        match endpoint {
            Endpoint::Tcp { host, port } => {
                let (listener, host, port) = bind_tcp(endpoint, host, *port).await?;
                Ok((Listener::Tcp(listener), Endpoint::Tcp { host, port }))
            }
            #[cfg(feature = "tls")]
            Endpoint::Tls { host, port } => {
                let tls = transports.tls_server.clone().ok_or_else(|| {
                    cannot_listen(endpoint, "this node has no TLS certificate: set one with `NodeBuilder::tls_server`")
                })?;
                let (listener, host, port) = bind_tcp(endpoint, host, *port).await?;
                Ok((Listener::Tls(listener, tls), Endpoint::Tls { host, port }))
            }
            #[cfg(not(feature = "tls"))]
            Endpoint::Tls { .. } => Err(cannot_listen(endpoint, super::NO_TLS)),
            Endpoint::Unix { path } => {
                Ok((Listener::Unix(unix::Listener::bind(path).map_err(failed)?), endpoint.clone()))
            }
            Endpoint::Memory { name } => {
                Ok((Listener::Memory(memory::Listener::bind(name).map_err(failed)?), endpoint.clone()))
            }
            Endpoint::Exec { .. } | Endpoint::Ssh { .. } => Err(cannot_listen(
                endpoint,
                "only tcp, tls, unix and memory endpoints can be listened on; a server started by `exec:` or `ssh://` \
                 serves its stdio (`Node::serve_stdio`)",
            )),
        }
    }

    async fn accept(&mut self) -> io::Result<Accepted> {
        Ok(match self {
            Listener::Tcp(l) => Accepted::Ready(l.accept().await?),
            #[cfg(feature = "tls")]
            Listener::Tls(l, server) => Accepted::Tls(l.accept_tcp().await?, server.clone()),
            Listener::Unix(l) => Accepted::Ready(l.accept().await?),
            Listener::Memory(l) => Accepted::Ready(l.accept().await?),
        })
    }
}

/// Accepts connections until the node goes away; each is served in a task of its own.
///
/// While `max_handshakes` accepted connections are in their handshake, the loop accepts no
/// more: new connections wait in the operating system's accept queue (a burst is served as
/// fast as handshakes complete, and a flood of silent peers delays newcomers by at most the
/// handshake timeout, never refuses them). A connection beyond `max_connections` is closed at
/// once, before the handshake: nothing is sent to it.
pub(super) async fn accept_loop(node: Weak<Inner>, mut listener: Listener, stop: CancellationToken) {
    let mut refusals = Refusals::default();
    let Some(handshakes) = node.upgrade().map(|inner| inner.admission.handshakes.clone()) else { return };
    loop {
        let handshake = tokio::select! {
            biased;
            _ = stop.cancelled() => break,
            permit = handshakes.clone().acquire_owned() => match permit {
                Ok(permit) => permit,
                Err(_) => break,
            },
        };
        let accepted = tokio::select! {
            biased;
            _ = stop.cancelled() => break,
            r = listener.accept() => r,
        };
        match accepted {
            // Stopped meanwhile (`unlisten`, shutdown): a connection accepted after the stop is
            // refused, so that once `unlisten` has returned no new peer gets in.
            Ok(_) if stop.is_cancelled() => break,
            Ok(accepted) => {
                let Some(inner) = node.upgrade() else { break };
                let admitted = match inner.admission.admit(handshake) {
                    Ok(admitted) => admitted,
                    Err(full) => {
                        // Dropping the stream closes it.
                        refusals.refused(&accepted.peer(), full);
                        continue;
                    }
                };
                let node = Node { inner };
                tokio::spawn(async move {
                    let Admitted { connection, handshake } = admitted;
                    let raw = match accepted.finish(node.inner.link.handshake_timeout).await {
                        Ok(raw) => raw,
                        Err(e) => return tracing::info!(error = %e, "connection refused by the transport"),
                    };
                    let peer = raw.info.peer.clone();
                    let served = node.serve_stream(raw).await;
                    drop(handshake);
                    // The node must not be kept alive by its own connections.
                    drop(node);
                    match served {
                        Ok(conn) => conn.closed().await,
                        Err(e) => tracing::info!(%peer, error = %e, "connection refused"),
                    }
                    drop(connection);
                });
            }
            Err(e) => {
                // Out of descriptors and similar: back off instead of spinning.
                tracing::warn!(error = %e, "accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }
    tracing::info!("listener stopped");
}
