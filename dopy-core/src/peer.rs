//! [`Connection`]: one live connection to a peer, symmetric: either side may call the other.
//!
//! Each connection runs two tasks: a reader that decodes frames and routes them (replies to
//! the waiting caller, calls to the object table), and a writer that drains its queue and
//! flushes once per batch, so pipelined calls share write syscalls. The replies of the calls
//! the reader serves inline are queued in order with everything else, but the reader writes
//! them itself when it runs out of input and the write path is idle, which saves waking the
//! writer task for each call (module `outbox`). The reader also keeps the heartbeat and the idle
//! timeout (a watchdog tick in its loop).
//!
//! A connection also keeps the reference bookkeeping of its two ends (PROTOCOL.md, section 3.2):
//! the objects this side exported to the peer, with how many references the peer holds, and the
//! objects the peer exported to this side, released with `Release` when their last handle drops.

mod call;
mod connection;
mod exports;
mod host;
mod inline;
mod lifecycle;
mod outbox;
mod pending;
mod reader;
mod send;
mod serve;
mod watchdog;

use std::any::Any;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

use dopy_transport::{Attachment, FrameError, FrameReader, Link, LinkInfo, LinkParts};
use futures_util::StreamExt;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use crate::codec::{
    flags, small_return, Args, Call, CallIn, CallRef, Encoded, Fault, FaultKind, Hop, Incoming, Message, Outcome,
    Payload, RefWire, Small, Target, TargetIn,
};
use crate::error::CallSite;
use crate::handle::{Connection, DynObject, Opaque};
use crate::interface::METHODS;
use crate::serve::dispatch::{Answer, Invocation, Reply};
use crate::serve::table::{Entry, ObjectTable, Ticket};
use crate::value::{wire, Value};
use crate::{CallError as Error, CodecError, DisconnectCause, Disconnected, ProtocolError};

pub(crate) use call::CallTo;
pub use connection::{Request, WeakConnection};
pub use exports::Import;
use exports::{Exported, RefTables, Unsent};
pub use host::{
    Heartbeat, Host, DEFAULT_BACKLOG_TIMEOUT, DEFAULT_HEARTBEAT, DEFAULT_MAX_BACKLOG, DEFAULT_MAX_EXPANSION,
    DEFAULT_MAX_EXPORTS, DEFAULT_MAX_IN_FLIGHT, DEFAULT_OVERLOAD_WAIT,
};
use inline::{inline_call, InlineBox, InlineRunner};
use lifecycle::{Lifecycle, LAST_WORDS};
use outbox::{Out, Outbox, WriterTask};
use pending::{Awaited, Calls, IdMap, PendingGuard, Slot};
use reader::read_loop;
pub(crate) use serve::expired_on_arrival;
use watchdog::Watchdog;

struct Shared {
    host: Arc<Host>,
    /// Kept alive as long as the connection (a child process, say); asked why the link ended.
    attachment: Option<Box<dyn Attachment>>,
    info: LinkInfo,
    /// How the caller names the other end (`tcp://127.0.0.1:9600`), for error call sites.
    endpoint: String,
    /// Outgoing frames, on their way to the link (the writer task, or the reader for its
    /// replies: see [`outbox`]).
    out: Arc<Outbox>,
    next_id: AtomicU64,
    /// Calls waiting for a reply.
    pending: Mutex<Calls>,
    /// Objects exported to the peer and imported from it.
    refs: Mutex<RefTables>,
    /// The handle that keeps an outgoing connection open, so that handles made later (for
    /// references received on it) keep it open too.
    owner: Mutex<Weak<CloseOnDrop>>,
    /// Where the connection is in its life, why it ended, who waits for the end.
    life: Arc<Lifecycle>,
    /// Slots for this side's calls in flight ([`Host::max_in_flight`]).
    slots: Arc<tokio::sync::Semaphore>,
    /// The peer's calls being served, each with the token that stops it (`Cancel`).
    running: Mutex<IdMap<CancellationToken>>,
    /// The peer's calls being served right now (for [`Host::max_in_flight`]).
    serving: std::sync::atomic::AtomicUsize,
    /// Replies that arrived for calls nobody waits for any more (cancelled or timed out).
    late: AtomicU64,
    /// Calls sent or received so far: the watchdog's sign of use (heartbeats do not count).
    activity: AtomicU64,
}

/// Spawns `fut` inside `span`, or bare when the span is disabled (no subscriber wanted it): a
/// disabled span is still entered and left on every poll of an instrumented future, which
/// costs, with tracing's `log` feature on, a `log` check each time, for nothing.
fn spawn_in<F>(fut: F, span: tracing::Span) -> tokio::task::JoinHandle<F::Output>
where
    F: std::future::Future + Send + 'static,
    F::Output: Send + 'static,
{
    if span.is_disabled() {
        tokio::spawn(fut)
    } else {
        tokio::spawn(fut.instrument(span))
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// Closes an outgoing connection when the last user handle is dropped.
struct CloseOnDrop(Arc<Shared>);

impl Drop for CloseOnDrop {
    fn drop(&mut self) {
        self.0.close_with(Message::Goodbye, DisconnectCause::ClosedLocally);
    }
}

impl fmt::Debug for CloseOnDrop {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("CloseOnDrop")
    }
}

/// A connection's state is what `handle` keeps opaque in a [`Connection`].
impl Opaque for Shared {
    fn name(&self) -> &str {
        &self.endpoint
    }
}

impl Shared {
    /// A handle to this connection, keeping it open if this side opened it.
    fn connection(self: &Arc<Self>) -> Connection {
        Connection { state: self.clone(), owner: lock(&self.owner).upgrade().map(|o| o as Arc<dyn Any + Send + Sync>) }
    }
}
