//! Listening: one accept loop per endpoint, every accepted stream served by the same node.
//!
//! Admission is built for hostile peers (docs/SECURITY.md, "Hostile peers"). The accept loop
//! never waits for anything but the operating system, so the accept queue stays short and a
//! newcomer's connection is taken at once, whatever other peers do. An accepted connection is
//! *silent* until its peer sends a first byte (within the first-byte timeout), then *talking*
//! until its handshake ends (within the handshake timeout, counted from the accept, TLS
//! included). Silent connections cost a socket and a small task, and count only towards
//! `max_connections`; talking ones may cost TLS and HMAC work, and at most `max_handshakes`
//! of them run at once. Where a cap is reached, the newcomer gets in and the connection that
//! has been half-open the longest goes (silent ones first), so that a flood of connections
//! that stay silent, or stall mid-handshake, delays a well-behaved client by no more than its
//! own round trips. Only when every slot holds an established connection is a newcomer
//! refused.

use std::collections::BTreeMap;
use std::fmt;
use std::io;
#[cfg(feature = "tls")]
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex, Weak};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

#[cfg(feature = "tls")]
use dopy_transport::tls::TlsServer;
use dopy_transport::{memory, tcp, unix, BoxRead, RawStream};
use tokio::io::{AsyncRead, ReadBuf};
#[cfg(feature = "tls")]
use tokio::net::TcpStream;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use super::{lock, Inner, Node, Transports};
use crate::{Endpoint, Error};

/// How long the accept loop waits before it tries again after an error of the listener itself
/// (out of descriptors, out of kernel memory), so as not to spin.
const BACK_OFF: Duration = Duration::from_millis(50);

/// How long a handshake must have been in progress to be shed for a newer one when
/// `max_handshakes` are: far beyond the round trip or two a well-behaved client needs, even on
/// a loaded machine.
const STALLED: Duration = Duration::from_secs(1);

/// A bound listener of any transport.
#[derive(Debug)]
pub(super) enum Listener {
    Tcp(tcp::Listener),
    #[cfg(feature = "tls")]
    Tls(tcp::Listener, TlsServer),
    Unix(unix::Listener),
    Memory(memory::Listener),
}

/// An accepted connection, before anything is read from it: a TLS one still needs its TLS
/// handshake, done in the connection's task so that a slow client never holds up the accept
/// loop.
enum Accepted {
    Ready(RawStream),
    #[cfg(feature = "tls")]
    Tls(TcpStream, SocketAddr, TlsServer),
}

/// The caps on a node's accepted connections (see the module's docs), shared by every listener
/// of the node.
#[derive(Debug)]
pub(super) struct Admission {
    limits: Limits,
    state: Arc<Mutex<State>>,
}

#[derive(Clone, Copy, Debug)]
struct Limits {
    max_connections: usize,
    max_handshakes: usize,
    first_byte_timeout: Duration,
}

/// Who holds the slots.
#[derive(Debug, Default)]
struct State {
    /// Accepted connections alive, handshakes included.
    open: usize,
    /// Connections whose peer has sent nothing yet, by accept order (oldest first), with the
    /// token that sheds each.
    silent: BTreeMap<u64, CancellationToken>,
    /// Connections whose peer has spoken and whose handshake is not over, likewise, with
    /// when their peer spoke.
    talking: BTreeMap<u64, (Instant, CancellationToken)>,
    /// The number the next accepted connection gets.
    next: u64,
    /// Rate-limited warnings about refused and shed connections.
    warnings: Warnings,
}

/// Where a connection is in its admission.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Stage {
    Silent,
    Talking,
    Established,
}

/// One accepted connection's slots: it holds a connection slot until dropped, and is in the
/// silent or talking set until its handshake ends (or it is shed, which takes it out of both
/// and frees its connection slot at once).
struct Ticket {
    state: Arc<Mutex<State>>,
    limits: Limits,
    id: u64,
    stage: Stage,
    /// Cancelled when the connection is shed to make room for a newer one.
    shed: CancellationToken,
}

/// Why a connection was refused, or another one shed.
#[derive(Clone, Copy, Debug)]
enum Full {
    /// Every connection slot holds an established connection: the newcomer is refused.
    Connections(usize),
    /// Every connection slot is taken: the oldest half-open connection was shed.
    ShedForConnection(usize),
    /// `max_handshakes` peers are in their handshake: the oldest of them was shed.
    ShedForHandshake(usize),
}

impl fmt::Display for Full {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Full::Connections(n) => write!(
                f,
                "connection refused before the handshake: {n} connections already open (NodeBuilder::max_connections)"
            ),
            Full::ShedForConnection(n) => write!(
                f,
                "the oldest connection not past its handshake was closed to make room: {n} connections open \
                 (NodeBuilder::max_connections)"
            ),
            Full::ShedForHandshake(n) => write!(
                f,
                "the oldest handshake in progress was closed to make room: {n} handshakes in progress \
                 (NodeBuilder::max_handshakes)"
            ),
        }
    }
}

impl Admission {
    pub(super) fn new(max_connections: usize, max_handshakes: usize, first_byte_timeout: Duration) -> Admission {
        Admission {
            limits: Limits { max_connections, max_handshakes, first_byte_timeout },
            state: Arc::new(Mutex::new(State::default())),
        }
    }

    /// Takes a connection slot for a newly accepted connection, shedding the oldest half-open
    /// connection (a silent one first) if none is free; refuses only when every slot holds an
    /// established connection.
    fn admit(&self, peer: &str) -> Result<Ticket, Full> {
        let mut state = lock(&self.state);
        if state.open >= self.limits.max_connections {
            let oldest =
                state.silent.pop_first().or_else(|| state.talking.pop_first().map(|(id, (_, shed))| (id, shed)));
            let Some((_, shed)) = oldest else {
                let full = Full::Connections(self.limits.max_connections);
                state.warnings.note(peer, full);
                return Err(full);
            };
            shed.cancel();
            state.open -= 1;
            state.warnings.note(peer, Full::ShedForConnection(self.limits.max_connections));
        }
        state.open += 1;
        let id = state.next;
        state.next += 1;
        let shed = CancellationToken::new();
        state.silent.insert(id, shed.clone());
        Ok(Ticket { state: self.state.clone(), limits: self.limits, id, stage: Stage::Silent, shed })
    }
}

impl Ticket {
    /// The peer has sent its first byte: the connection takes a handshake slot, shedding the
    /// oldest other handshake in progress if `max_handshakes` are.
    fn spoke(&mut self, peer: &str) {
        if self.stage != Stage::Silent {
            return;
        }
        self.stage = Stage::Talking;
        let mut state = lock(&self.state);
        // Shed meanwhile: its task stops at its next turn.
        let Some(shed) = state.silent.remove(&self.id) else { return };
        let now = Instant::now();
        state.talking.insert(self.id, (now, shed));
        if state.talking.len() > self.limits.max_handshakes {
            // Only a handshake that has stalled is shed: a burst of well-behaved clients, whose
            // handshakes take a round trip or two, goes over the cap for a moment instead.
            let oldest = state
                .talking
                .iter()
                .find(|(id, (since, _))| **id != self.id && now.duration_since(*since) >= STALLED)
                .map(|(id, _)| *id);
            if let Some((_, shed)) = oldest.and_then(|id| state.talking.remove(&id)) {
                shed.cancel();
                state.open -= 1;
                state.warnings.note(peer, Full::ShedForHandshake(self.limits.max_handshakes));
            }
        }
    }

    /// The handshake succeeded: the connection keeps its connection slot only. Returns
    /// `false` if it was shed at the last moment (its slot is given away already).
    fn established(&mut self) -> bool {
        let mut state = lock(&self.state);
        let held = state.silent.remove(&self.id).is_some() || state.talking.remove(&self.id).is_some();
        if held {
            self.stage = Stage::Established;
        }
        held
    }
}

impl Drop for Ticket {
    fn drop(&mut self) {
        let mut state = lock(&self.state);
        let counted = match self.stage {
            Stage::Established => true,
            // Shed ones were taken out of the sets, and their slot freed, by whoever shed them.
            Stage::Silent | Stage::Talking => {
                state.silent.remove(&self.id).is_some() || state.talking.remove(&self.id).is_some()
            }
        };
        if counted {
            state.open -= 1;
        }
    }
}

/// Warnings about refused and shed connections, at most one a second per node, so that a
/// flood does not flood the log too.
#[derive(Debug, Default)]
struct Warnings {
    last: Option<Instant>,
    unreported: u64,
}

impl Warnings {
    const EVERY: Duration = Duration::from_secs(1);

    fn note(&mut self, peer: &str, full: Full) {
        self.unreported += 1;
        let now = Instant::now();
        if self.last.is_none_or(|last| now.duration_since(last) >= Self::EVERY) {
            tracing::warn!(%peer, since_last_warning = self.unreported, "{full}");
            self.last = Some(now);
            self.unreported = 0;
        }
    }
}

/// The read half of an accepted stream, which says when the first byte (or the end of the
/// stream) arrives. After that it costs one branch per read.
struct FirstByte {
    inner: BoxRead,
    spoke: Option<Arc<Notify>>,
}

impl AsyncRead for FirstByte {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        let this = &mut *self;
        let polled = Pin::new(&mut this.inner).poll_read(cx, buf);
        if polled.is_ready() {
            if let Some(spoke) = this.spoke.take() {
                spoke.notify_one();
            }
        }
        polled
    }
}

impl Accepted {
    /// The peer's address, for logs.
    fn peer(&self) -> String {
        match self {
            Accepted::Ready(raw) => raw.info.peer.clone(),
            #[cfg(feature = "tls")]
            Accepted::Tls(_, peer, _) => peer.to_string(),
        }
    }

    /// Runs the transport's own handshake (TLS) once the peer has spoken, telling `spoke`.
    async fn finish(self, spoke: Arc<Notify>) -> io::Result<RawStream> {
        match self {
            Accepted::Ready(mut raw) => {
                raw.reader = Box::new(FirstByte { inner: raw.reader, spoke: Some(spoke) });
                Ok(raw)
            }
            #[cfg(feature = "tls")]
            Accepted::Tls(tcp, peer, server) => {
                // The client speaks first in TLS: its hello is the first byte.
                tcp.readable().await?;
                spoke.notify_one();
                server.accept(tcp, peer).await
            }
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
            Listener::Tls(l, server) => {
                let (tcp, peer) = l.accept_tcp().await?;
                Accepted::Tls(tcp, peer, server.clone())
            }
            Listener::Unix(l) => Accepted::Ready(l.accept().await?),
            Listener::Memory(l) => Accepted::Ready(l.accept().await?),
        })
    }
}

/// Accepts connections until the node goes away; each is served in a task of its own.
///
/// The loop waits for nothing but the next connection (see the module's docs): admission
/// never holds it up, and an error that concerns one connection (reset while it waited to be
/// accepted) is skipped at once. Only an error of the listener itself (out of descriptors)
/// makes it pause, for [`BACK_OFF`].
pub(super) async fn accept_loop(node: Weak<Inner>, mut listener: Listener, stop: CancellationToken) {
    loop {
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
                let accepted_at = tokio::time::Instant::now();
                let Some(inner) = node.upgrade() else { break };
                // Refused: dropping the stream closes it, with nothing sent.
                let Ok(ticket) = inner.admission.admit(&accepted.peer()) else { continue };
                tokio::spawn(serve(Node { inner }, accepted, ticket, accepted_at));
            }
            Err(e) if tcp::is_connection_error(&e) => {
                tracing::debug!(error = %e, "a connection failed as it was accepted");
            }
            Err(e) => {
                tracing::warn!(error = %e, "accept failed; trying again in {BACK_OFF:?}");
                tokio::time::sleep(BACK_OFF).await;
            }
        }
    }
    tracing::info!("listener stopped");
}

/// Serves one accepted connection: its first byte within the first-byte timeout, its
/// handshakes (TLS and dopy) within the handshake timeout counted from the accept, unless it is
/// shed first; then serves it until it closes.
async fn serve(node: Node, accepted: Accepted, mut ticket: Ticket, accepted_at: tokio::time::Instant) {
    let timeout = node.inner.link.handshake_timeout;
    let deadline = accepted_at + timeout;
    let first_byte = deadline.min(accepted_at + ticket.limits.first_byte_timeout);
    let peer = accepted.peer();
    let spoke = Arc::new(Notify::new());
    let served = {
        let handshake = async {
            let raw = accepted.finish(spoke.clone()).await.map_err(|e| format!("the transport refused it: {e}"))?;
            node.serve_stream(raw).await.map_err(|e| format!("{e:#}"))
        };
        let handshake = tokio::time::timeout_at(deadline, handshake);
        tokio::pin!(handshake);
        let shed = ticket.shed.clone();
        let mut talking = false;
        loop {
            tokio::select! {
                biased;
                _ = shed.cancelled() => break Err("shed to make room for a newer connection".to_owned()),
                _ = spoke.notified(), if !talking => {
                    talking = true;
                    ticket.spoke(&peer);
                }
                _ = tokio::time::sleep_until(first_byte), if !talking => {
                    break Err(format!("nothing received within {:?} (NodeBuilder::first_byte_timeout)", first_byte - accepted_at));
                }
                r = &mut handshake => break match r {
                    Ok(r) => r,
                    Err(_) => Err(format!("no complete handshake within {timeout:?} (NodeBuilder::handshake_timeout)")),
                },
            }
        }
    };
    match served {
        Ok(conn) => {
            if !ticket.established() {
                conn.close();
            }
            // The node must not be kept alive by its own connections.
            drop(node);
            conn.closed().await;
        }
        Err(e) => tracing::info!(%peer, error = %e, "connection closed before its handshake completed"),
    }
    drop(ticket);
}
