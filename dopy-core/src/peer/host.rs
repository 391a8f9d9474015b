//! [`Host`]: what every connection of a node shares (the objects served, the node's name,
//! limits), with the limits' defaults.

use super::*;

/// What every connection of a node shares: the objects served, the node's name, limits.
#[derive(Debug)]
pub struct Host {
    /// The objects served.
    pub table: ObjectTable,
    /// The node's name, as it appears in error traces.
    pub name: String,
    /// Largest frame payload sent or accepted.
    pub max_frame: usize,
    /// Most calls in flight per connection, each way: this side's calls beyond it wait for a
    /// slot (at most [`overload_wait`](Host::overload_wait)), the peer's get `Overloaded`.
    pub max_in_flight: usize,
    /// How long a call waits for a slot when [`max_in_flight`](Host::max_in_flight) calls are in
    /// flight, before failing with `Overloaded`.
    pub overload_wait: Duration,
    /// Most objects exported per connection: a call or reply that would export one more fails
    /// with `Overloaded` (nothing is sent; the connection stays usable).
    pub max_exports: usize,
    /// Deepest nesting of the [`Value`]s in an incoming (and outgoing) message: an incoming
    /// call beyond it is refused with `BadArguments`, a reply beyond it fails its call; the
    /// connection stays usable. Clamped to [`wire::DEPTH_CEILING`].
    pub max_depth: usize,
    /// When to check that the peer is alive, and when to give up on it; `None`: never.
    pub heartbeat: Option<Heartbeat>,
    /// How long a connection may stay idle (no call in flight, no reference held either way)
    /// before it is closed with `Goodbye`; `None`: never.
    pub idle_timeout: Option<Duration>,
    /// How many times its encoded size the dynamic values of an incoming call may take in
    /// memory once decoded (at least 1 MiB): past it, the call is refused with `BadArguments`;
    /// the connection goes on. Replies (answers to this side's own calls) are not held to it.
    pub max_expansion: usize,
    /// Most bytes queued for the peer (replies and calls not yet taken by the link): past it,
    /// this side stops reading the peer's frames until the peer has read enough of what it
    /// was sent (backpressure). One frame may take the queue past it.
    pub max_backlog: usize,
    /// How long the backlog may stay over [`max_backlog`](Host::max_backlog) before the
    /// connection is closed (the peer does not read).
    pub backlog_timeout: Duration,
    /// Set when the node shuts down: calls that arrive from then on are refused (`Cancelled`,
    /// "shutting down") while the calls in flight finish.
    pub draining: std::sync::atomic::AtomicBool,
    /// Whether a panic in a method sends its backtrace to the caller (`false`: its message
    /// and location only). Set it with [`Host::send_panic_backtraces`], which also turns the
    /// capture on.
    pub panic_backtraces: bool,
}

/// Heartbeat settings of a connection (PROTOCOL.md, section 3.4).
///
/// A connection that has received nothing for `interval` sends a `Ping` (any frame the peer
/// sends counts as a sign of life, the `Pong` too); one that has received nothing at all for
/// `timeout` is closed with an `Abort` that says so: calls in flight fail with
/// [`CallError::Disconnected`](crate::CallError::Disconnected) and the references the peer held are released.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Heartbeat {
    /// Silence after which a `Ping` is sent.
    pub interval: Duration,
    /// Silence after which the peer is considered gone.
    pub timeout: Duration,
}

/// Default of [`Host::heartbeat`]: a `Ping` after 10 s of silence, closed after 30 s.
pub const DEFAULT_HEARTBEAT: Heartbeat =
    Heartbeat { interval: Duration::from_secs(10), timeout: Duration::from_secs(30) };

/// Default of [`Host::max_exports`].
pub const DEFAULT_MAX_EXPORTS: usize = 65_536;

/// Default of [`Host::max_expansion`].
pub const DEFAULT_MAX_EXPANSION: usize = 8;

/// Default of [`Host::max_backlog`]: 8 MiB.
pub const DEFAULT_MAX_BACKLOG: usize = 8 << 20;

/// Default of [`Host::backlog_timeout`].
pub const DEFAULT_BACKLOG_TIMEOUT: Duration = Duration::from_secs(30);

/// Default of [`Host::max_in_flight`].
pub const DEFAULT_MAX_IN_FLIGHT: usize = 1024;

/// Default of [`Host::overload_wait`].
pub const DEFAULT_OVERLOAD_WAIT: Duration = Duration::from_secs(5);

impl Host {
    /// Creates a host with an empty object table and default limits.
    pub fn new(name: impl Into<String>, max_frame: usize) -> Self {
        crate::serve::panic::install_hook();
        Host {
            table: ObjectTable::new(),
            name: name.into(),
            max_frame,
            max_in_flight: DEFAULT_MAX_IN_FLIGHT,
            overload_wait: DEFAULT_OVERLOAD_WAIT,
            max_exports: DEFAULT_MAX_EXPORTS,
            max_depth: wire::MAX_DEPTH,
            heartbeat: Some(DEFAULT_HEARTBEAT),
            idle_timeout: None,
            max_expansion: DEFAULT_MAX_EXPANSION,
            max_backlog: DEFAULT_MAX_BACKLOG,
            backlog_timeout: DEFAULT_BACKLOG_TIMEOUT,
            draining: std::sync::atomic::AtomicBool::new(false),
            panic_backtraces: false,
        }
    }

    /// Sends the backtraces of panics in this host's methods to their callers, and makes
    /// panics capture them ([`crate::serve::panic::capture_backtraces`]).
    pub fn send_panic_backtraces(&mut self) {
        crate::serve::panic::capture_backtraces();
        self.panic_backtraces = true;
    }
}
