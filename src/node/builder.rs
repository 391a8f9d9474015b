//! [`NodeBuilder`]: the settings of a [`Node`], and their defaults.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use dopy_core::{Heartbeat, Host};
#[cfg(feature = "tls")]
use dopy_transport::tls::{TlsClient, TlsServer};
use dopy_transport::{LinkConfig, Secret};
use tokio_util::sync::CancellationToken;

use super::{listen, Inner, Node};

/// Settings of a node; start from [`Node::builder`].
#[derive(Clone, Debug)]
pub struct NodeBuilder {
    name: Option<String>,
    link: LinkConfig,
    transports: Transports,
    /// `None` here and below: the default of [`Host`].
    max_in_flight: Option<usize>,
    overload_wait: Option<Duration>,
    max_exports: Option<usize>,
    max_depth: Option<usize>,
    heartbeat: Option<Option<Heartbeat>>,
    idle_timeout: Option<Option<Duration>>,
    backlog: Option<(usize, Duration)>,
    max_expansion: Option<usize>,
    max_connections: usize,
    max_handshakes: usize,
    first_byte_timeout: Duration,
    panic_backtraces: bool,
}

/// Default of [`NodeBuilder::first_byte_timeout`].
const DEFAULT_FIRST_BYTE_TIMEOUT: Duration = Duration::from_secs(3);

/// Default of [`NodeBuilder::max_connections`].
const DEFAULT_MAX_CONNECTIONS: usize = 4096;

/// Default of [`NodeBuilder::max_handshakes`].
const DEFAULT_MAX_HANDSHAKES: usize = 64;

/// Transport settings shared by every connection of a node.
#[derive(Clone, Debug, Default)]
pub(super) struct Transports {
    /// Certificate and key for `tls://` listeners.
    #[cfg(feature = "tls")]
    pub(super) tls_server: Option<TlsServer>,
    /// Trust roots for `tls://` connections; the system's when `None`.
    #[cfg(feature = "tls")]
    pub(super) tls_client: Option<TlsClient>,
    /// Extra arguments for every `ssh` client this node starts.
    pub(super) ssh_args: Vec<String>,
}

impl NodeBuilder {
    /// The node's name in error traces (default: program name and process id).
    pub fn name(mut self, name: impl Into<String>) -> Self {
        self.name = Some(name.into());
        self
    }

    /// Largest message sent or accepted, in bytes (default 16 MiB).
    ///
    /// A call larger than this fails alone, before anything is sent; a peer sending a larger
    /// frame has its connection closed with a protocol error.
    pub fn max_frame(mut self, bytes: usize) -> Self {
        self.link.max_frame = bytes;
        self
    }

    /// Most calls in flight per connection, each way (default 1024). This node's calls beyond it
    /// wait for a slot (see [`overload_wait`](NodeBuilder::overload_wait)) and then fail with
    /// [`CallError::Overloaded`](crate::CallError::Overloaded); a peer's calls beyond it are refused with `Overloaded` at once.
    pub fn max_in_flight(mut self, calls: usize) -> Self {
        self.max_in_flight = Some(calls.max(1));
        self
    }

    /// How long a call waits for a slot when [`max_in_flight`](NodeBuilder::max_in_flight) calls
    /// are already in flight, before failing with [`CallError::Overloaded`](crate::CallError::Overloaded) (default 5 s).
    pub fn overload_wait(mut self, wait: Duration) -> Self {
        self.overload_wait = Some(wait);
        self
    }

    /// How long a peer may take to complete the handshake (default 10 s).
    ///
    /// For a connection accepted by a listener, the time counts from the accept and covers
    /// every handshake: TLS, dopy, authentication. A peer that sends only part of its hello,
    /// or stalls anywhere in between, is dropped when it passes (one that sends nothing at
    /// all is dropped sooner: [`first_byte_timeout`](NodeBuilder::first_byte_timeout));
    /// dialing a server that does not answer in time fails with [`Error::Connect`](crate::Error::Connect).
    pub fn handshake_timeout(mut self, timeout: Duration) -> Self {
        self.link.handshake_timeout = timeout;
        self
    }

    /// How long a peer that connects to a listener may take to send its first byte (default
    /// 3 s; never more than the [`handshake_timeout`](NodeBuilder::handshake_timeout)).
    ///
    /// A dopy client sends its hello as soon as it is connected (a TLS client, its
    /// ClientHello), so its first byte arrives one network round trip after the accept; a peer
    /// that sends nothing for this long is closed, with nothing sent to it. Until its first
    /// byte, a connection holds no handshake slot (see
    /// [`max_handshakes`](NodeBuilder::max_handshakes)) and is the first to be closed when
    /// [`max_connections`](NodeBuilder::max_connections) are open.
    pub fn first_byte_timeout(mut self, timeout: Duration) -> Self {
        self.first_byte_timeout = timeout;
        self
    }

    /// Most accepted connections alive at once, over all the node's listeners (default 4096, at
    /// least 1).
    ///
    /// A connection counts from the moment it is accepted (handshake included) until it
    /// closes. When the cap is reached, a newly accepted connection still gets in: the
    /// connection that has been waiting longest for its handshake to complete is closed
    /// instead, one that has sent nothing yet first (a flood of connections that say nothing,
    /// or stall in their handshake, cannot keep a new client out). Only when every connection
    /// is past its handshake is the newcomer closed at once, before the handshake and with
    /// nothing sent (its dialer sees the stream close: [`Error::Connect`](crate::Error::Connect)). Either way a
    /// `tracing` warning is logged (at most one a second, with the count since the last one).
    /// Established connections are never closed to make room. Connections this node opens
    /// itself do not count. Keep it below the process's file descriptor limit (`ulimit -n`)
    /// minus what the program needs otherwise, so that the cap, not the descriptors, runs out
    /// first.
    pub fn max_connections(mut self, connections: usize) -> Self {
        self.max_connections = connections.max(1);
        self
    }

    /// Most accepted connections in their handshake at once, counting those whose peer has
    /// sent its first byte (TLS and dopy handshakes, authentication included), over all the
    /// node's listeners (default 64, at least 1).
    ///
    /// These are the connections that can make the node work (TLS, HMAC) before proving
    /// anything. When one more peer starts its handshake, the oldest handshake that has been in
    /// progress for a second or more (stalled) is closed to make room; if none has, the count
    /// goes over the cap for a moment (a burst of well-behaved clients). The newcomer is never
    /// kept waiting. A legitimate handshake takes one or two round trips, so only peers that
    /// stall in their handshake are closed. Connections
    /// whose peer has sent nothing yet do not count here (they cost a socket and a small task,
    /// bounded by [`max_connections`](NodeBuilder::max_connections) and
    /// [`first_byte_timeout`](NodeBuilder::first_byte_timeout)).
    pub fn max_handshakes(mut self, handshakes: usize) -> Self {
        self.max_handshakes = handshakes.max(1);
        self
    }

    /// Sends the backtrace of a panic in a method to the caller (default: off).
    ///
    /// By default a panic reaches the caller as [`CallError::Panic`](crate::CallError::Panic) with the panic's message and
    /// location (`src/calc.rs:12:9`) and no backtrace: a backtrace shows a peer the server's
    /// build and file system (absolute paths in a debug build), and capturing one costs
    /// milliseconds that any peer able to make a method panic could make the server spend.
    /// Turn it on where the peers are trusted (development, a private cluster). Independently
    /// of this setting, `RUST_BACKTRACE=1` (or `RUST_LIB_BACKTRACE=1`) in the server's
    /// environment puts the backtrace in the server's own log (the `tracing` error event of
    /// the panic). Once one node of a process has this on, panics in every node of the process
    /// capture a backtrace (only the nodes that have it on send it).
    pub fn panic_backtraces(mut self, send: bool) -> Self {
        self.panic_backtraces = send;
        self
    }

    /// Most objects exported by reference on one connection at a time (default 65,536).
    ///
    /// A call or a reply that would export one more fails alone with [`CallError::Overloaded`](crate::CallError::Overloaded)
    /// (nothing is sent; the connection stays usable): a caller gets it from its call, a
    /// method's caller gets it in place of the result. An object sent again reuses its export
    /// and does not count twice; exports go when the peer releases them.
    pub fn max_exports(mut self, objects: usize) -> Self {
        self.max_exports = Some(objects);
        self
    }

    /// Deepest nesting of the [`Value`](crate::Value)s a message may carry (default 128, at
    /// most 256: more is taken as 256).
    ///
    /// The outermost value is at level 1; the contents of an option, sequence, map or variant
    /// are one level deeper. A peer's call beyond it is refused with [`CallError::BadArguments`](crate::CallError::BadArguments)
    /// and a reply beyond it fails its call with [`CallError::Protocol`](crate::CallError::Protocol); the connection goes on
    /// serving either way. This node refuses to send such a value too ([`CallError::Codec`](crate::CallError::Codec)).
    pub fn max_depth(mut self, levels: usize) -> Self {
        self.max_depth = Some(levels.clamp(1, dopy_core::DEPTH_CEILING));
        self
    }

    /// Checks that peers are alive (default: a `Ping` after 10 s of silence, closed after
    /// 30 s).
    ///
    /// A connection that has received nothing for `interval` sends a `Ping` (any frame the
    /// peer sends counts as life, its `Pong` too); one that has received nothing at all for
    /// `timeout` is closed with an `Abort` saying "heartbeat timeout": calls in flight on it
    /// fail with [`CallError::Disconnected`](crate::CallError::Disconnected), and the references the peer held are released. This
    /// is how a peer that vanished without closing (a paused or unplugged machine) is noticed.
    /// Make `timeout` a few `interval`s; the check runs a few times per `interval`.
    pub fn heartbeat(mut self, interval: Duration, timeout: Duration) -> Self {
        let at_least = Duration::from_millis(1);
        self.heartbeat = Some(Some(Heartbeat { interval: interval.max(at_least), timeout: timeout.max(at_least) }));
        self
    }

    /// Never checks that peers are alive: a vanished peer is noticed only when the transport
    /// reports it (see [`heartbeat`](NodeBuilder::heartbeat)).
    pub fn no_heartbeat(mut self) -> Self {
        self.heartbeat = Some(None);
        self
    }

    /// Closes a connection after it has been idle this long: no call in flight either way and
    /// no object reference held either way (default `None`: never).
    ///
    /// The close is orderly (`Goodbye`); any call, and any reference sent or held, restarts
    /// the count; heartbeats do not. It applies to the connections this node opened too: a
    /// proxy over a closed connection fails with [`CallError::Disconnected`](crate::CallError::Disconnected), and a new
    /// [`Node::proxy`] reconnects. Off by default because proxies do not reconnect by
    /// themselves: a client that keeps a proxy across a pause would find it dead.
    pub fn idle_timeout(mut self, timeout: impl Into<Option<Duration>>) -> Self {
        self.idle_timeout = Some(timeout.into());
        self
    }

    /// How many times its encoded size the dynamic values ([`Value`](crate::Value)s) of a
    /// peer's call may take in memory once decoded (default 8; at least 1 MiB whatever the
    /// call).
    ///
    /// A `Value` takes 48 bytes however little it took on the wire (a unit takes one byte
    /// there): without a bound, a 16 MiB frame of units would take 800 MiB. Decoding is
    /// charged as it allocates, so a message past the bound is refused before the memory is
    /// taken: the caller gets [`CallError::BadArguments`](crate::CallError::BadArguments) ("dynamic values would take more than
    /// …"); the connection goes on. Replies, the answers to this node's own calls, are not
    /// held to it. Typical dynamic data takes 2 to 6 times its encoded size; a long sequence
    /// of small integers about 24 times (raise the factor for such data, or send it typed).
    pub fn max_value_expansion(mut self, factor: usize) -> Self {
        self.max_expansion = Some(factor.max(1));
        self
    }

    /// Bounds the bytes queued for one peer and not yet taken by its connection (default 8 MiB,
    /// 30 s).
    ///
    /// A peer that sends calls but does not read the replies (or whose network is slower than
    /// the replies) makes them queue up. Past `bytes`, the connection stops reading that peer's
    /// frames until it has read enough (backpressure: its calls wait in its own socket); if the
    /// queue is still over `bytes` after `timeout`, the connection is closed with an `Abort`
    /// saying so, and what was queued is freed. One frame may take the queue past `bytes`: a
    /// reply is never refused for it. Other connections are not affected.
    pub fn max_backlog(mut self, bytes: usize, timeout: Duration) -> Self {
        self.backlog = Some((bytes, timeout));
        self
    }

    /// Requires every peer to prove knowledge of this shared secret, and proves it in turn
    /// (default: no authentication).
    ///
    /// Applies to every connection of the node, on every transport, in both directions: a peer
    /// with another secret, or none, is refused during the handshake, before any call
    /// ([`Error::is_unauthorized`](crate::Error::is_unauthorized), and `{:#}` says "unauthorized"). The secret never travels: the handshake is an HMAC-SHA256
    /// challenge–response (PROTOCOL.md, section 1.2). It authenticates the peer; it does not
    /// encrypt the traffic: use `tls://` or `ssh://` for that.
    ///
    /// # Examples
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), dopy::Error> {
    /// let server = dopy::Node::builder().secret("correct horse").build();
    /// let addr = server.listen("tcp://127.0.0.1:0").await?;
    ///
    /// let friend = dopy::Node::builder().secret("correct horse").build();
    /// friend.connect(&addr.to_string()).await?;
    ///
    /// let stranger = dopy::Node::new();
    /// let err = stranger.connect(&addr.to_string()).await.unwrap_err();
    /// assert!(err.is_unauthorized(), "{err:#}");
    /// assert!(format!("{err:#}").contains("unauthorized"), "{err:#}");
    /// # Ok(()) }
    /// ```
    pub fn secret(mut self, secret: impl AsRef<[u8]>) -> Self {
        self.link.secret = Some(Secret::new(secret));
        self
    }

    /// The certificate chain and key that `tls://` listeners present (required to listen on
    /// `tls://`).
    #[cfg(feature = "tls")]
    #[cfg_attr(docsrs, doc(cfg(feature = "tls")))]
    pub fn tls_server(mut self, server: TlsServer) -> Self {
        self.transports.tls_server = Some(server);
        self
    }

    /// Which certificate authorities `tls://` connections trust (default: the operating
    /// system's certificate store).
    #[cfg(feature = "tls")]
    #[cfg_attr(docsrs, doc(cfg(feature = "tls")))]
    pub fn tls_client(mut self, client: TlsClient) -> Self {
        self.transports.tls_client = Some(client);
        self
    }

    /// Extra arguments for every `ssh` client this node starts for `ssh://` addresses, placed
    /// before the destination (for instance `["-i", "/keys/id", "-o", "UserKnownHostsFile=/k"]`).
    pub fn ssh_args<I, S>(mut self, args: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.transports.ssh_args.extend(args.into_iter().map(Into::into));
        self
    }

    /// Creates the node.
    pub fn build(self) -> Node {
        let name = self.name.unwrap_or_else(default_name);
        let mut host = Host::new(name, self.link.max_frame);
        host.max_in_flight = self.max_in_flight.unwrap_or(host.max_in_flight);
        host.overload_wait = self.overload_wait.unwrap_or(host.overload_wait);
        host.max_exports = self.max_exports.unwrap_or(host.max_exports);
        host.max_depth = self.max_depth.unwrap_or(host.max_depth);
        host.heartbeat = self.heartbeat.unwrap_or(host.heartbeat);
        host.idle_timeout = self.idle_timeout.unwrap_or(host.idle_timeout);
        host.max_expansion = self.max_expansion.unwrap_or(host.max_expansion);
        (host.max_backlog, host.backlog_timeout) = self.backlog.unwrap_or((host.max_backlog, host.backlog_timeout));
        if self.panic_backtraces {
            host.send_panic_backtraces();
        }
        let host = Arc::new(host);
        Node {
            inner: Arc::new(Inner {
                host,
                link: self.link,
                transports: self.transports,
                outgoing: Mutex::new(HashMap::new()),
                dedicated: Mutex::new(Vec::new()),
                incoming: Mutex::new(Vec::new()),
                stop: CancellationToken::new(),
                admission: listen::Admission::new(self.max_connections, self.max_handshakes, self.first_byte_timeout),
                listeners: Mutex::new(HashMap::new()),
                shut_down: CancellationToken::new(),
            }),
        }
    }
}

fn default_name() -> String {
    let program = std::env::current_exe()
        .ok()
        .and_then(|p| p.file_stem().map(|s| s.to_string_lossy().into_owned()))
        .unwrap_or_else(|| "dopy".into());
    format!("{program}[{}]", std::process::id())
}

impl Node {
    /// Starts configuring a node.
    pub fn builder() -> NodeBuilder {
        NodeBuilder {
            name: None,
            link: LinkConfig::default(),
            transports: Transports::default(),
            max_in_flight: None,
            overload_wait: None,
            max_exports: None,
            max_depth: None,
            heartbeat: None,
            idle_timeout: None,
            backlog: None,
            max_expansion: None,
            max_connections: DEFAULT_MAX_CONNECTIONS,
            max_handshakes: DEFAULT_MAX_HANDSHAKES,
            first_byte_timeout: DEFAULT_FIRST_BYTE_TIMEOUT,
            panic_backtraces: false,
        }
    }
}
