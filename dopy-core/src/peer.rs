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
mod outbox;
mod refs;

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
use crate::Error;

pub(crate) use call::CallTo;
use outbox::{Out, Outbox, WriterTask};
pub use refs::Import;
use refs::{Exported, RefTables, Unsent};

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
/// [`Error::Disconnected`] and the references the peer held are released.
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

/// How long a closed connection's writer may take to send its last frame before the stream is
/// dropped anyway (a peer that stopped reading must not keep the socket open).
const LINGER: Duration = Duration::from_secs(2);

/// The first byte of a `Call` frame: its variant index (PROTOCOL.md, section 3).
const CALL_TAG: u8 = 0;

/// Frames up to this size decode without a budget: a wire byte becomes at most 48 bytes of
/// values, 96 while a vector doubles, so 8 KiB stays under the budget's 1 MiB floor.
const UNCHARGED: usize = 8 * 1024;

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

/// A reply slot: the waiting caller's waker until the outcome arrives, then the outcome and
/// its references, or why the connection ended. Slots live in the connection's map of calls
/// (no allocation of their own); the caller takes the outcome out when it is woken.
enum Slot {
    /// No reply yet; whom to wake when it comes.
    Waiting(Option<std::task::Waker>),
    /// The reply (or the end of the connection), for the caller to take.
    Done(Delivery),
}

/// What a reply slot receives.
type Delivery = Result<(Outcome, Vec<DynObject>), String>;

/// A map keyed by call id, hashed with `FxHash` (one multiplication) instead of SipHash: the
/// maps keyed by ids are bounded by `max_in_flight`, so colliding ids chosen by a hostile peer
/// can only slow its own calls down, never grow without bound.
type IdMap<V> = rustc_hash::FxHashMap<u64, V>;

/// This side's calls (and pings) waiting for their reply, by id.
#[derive(Default)]
struct Calls {
    slots: IdMap<Slot>,
    /// Set once the connection has ended, so that a call made after the end fails at once
    /// instead of waiting forever.
    ended: bool,
}

/// The reply of call (or ping) `id`, registered with [`Shared::register`]: ready when it has
/// arrived, or when the connection has ended.
struct Awaited<'a> {
    shared: &'a Shared,
    id: u64,
}

impl std::future::Future for Awaited<'_> {
    type Output = Delivery;

    fn poll(self: std::pin::Pin<&mut Self>, cx: &mut std::task::Context<'_>) -> std::task::Poll<Delivery> {
        use std::collections::hash_map::Entry;
        let mut calls = lock(&self.shared.pending);
        // One lookup, whatever the slot holds.
        match calls.slots.entry(self.id) {
            Entry::Occupied(mut slot) => match slot.get_mut() {
                Slot::Waiting(waker) => {
                    if !waker.as_ref().is_some_and(|w| w.will_wake(cx.waker())) {
                        *waker = Some(cx.waker().clone());
                    }
                    std::task::Poll::Pending
                }
                Slot::Done(_) => match slot.remove() {
                    Slot::Done(delivery) => std::task::Poll::Ready(delivery),
                    Slot::Waiting(_) => unreachable!("the slot was just seen done"),
                },
            },
            // Only the caller removes its slot (when it takes the reply, or gives up).
            Entry::Vacant(_) => {
                drop(calls);
                let reason = lock(&self.shared.close_reason).clone();
                std::task::Poll::Ready(Err(reason.unwrap_or_else(|| "the connection is closed".into())))
            }
        }
    }
}

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
    /// Cancelled when the connection ends, for whatever reason.
    closed: CancellationToken,
    /// The same end, as the reader and writer tasks (and hot checks) see it, without locks.
    ended: Arc<Ended>,
    close_reason: Mutex<Option<String>>,
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

/// The end of a connection as its reader and writer tasks wait for it on every pass of their
/// loops: a flag and one waker per task. A `CancellationToken`'s future takes two locks per
/// poll (about 1,100 instructions per sequential call between the two tasks).
#[derive(Default)]
struct Ended {
    flag: std::sync::atomic::AtomicBool,
    reader: futures_util::task::AtomicWaker,
    writer: futures_util::task::AtomicWaker,
}

impl Ended {
    fn is_set(&self) -> bool {
        self.flag.load(Ordering::Acquire)
    }

    /// Marks the end and wakes both tasks.
    fn set(&self) {
        self.flag.store(true, Ordering::Release);
        self.reader.wake();
        self.writer.wake();
    }

    /// Ready once the end is set; `task` is the waiting task's waker slot (one task each).
    fn wait<'a>(&'a self, task: &'a futures_util::task::AtomicWaker) -> impl std::future::Future<Output = ()> + 'a {
        std::future::poll_fn(move |cx| {
            if self.is_set() {
                return std::task::Poll::Ready(());
            }
            task.register(cx.waker());
            // Set between the check and the registration: the wake may have been missed.
            if self.is_set() {
                std::task::Poll::Ready(())
            } else {
                std::task::Poll::Pending
            }
        })
    }
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
        self.0.close_with(Message::Goodbye, "closed locally");
    }
}

impl fmt::Debug for CloseOnDrop {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("CloseOnDrop")
    }
}

impl fmt::Debug for Connection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Connection").field("endpoint", &self.endpoint()).field("link", &self.shared().info).finish()
    }
}

/// A connection's state is what `handle` keeps opaque in a [`Connection`].
impl Opaque for Shared {
    fn name(&self) -> &str {
        &self.endpoint
    }
}

/// A weak handle: does not keep the connection open.
#[derive(Clone, Debug)]
pub struct WeakConnection {
    owner: Weak<CloseOnDrop>,
}

impl WeakConnection {
    /// The connection, if some handle still keeps it open and it has not ended.
    pub fn upgrade(&self) -> Option<Connection> {
        let owner = self.owner.upgrade()?;
        let conn = Connection { state: owner.0.clone(), owner: Some(owner) };
        (!conn.is_closed()).then_some(conn)
    }
}

impl Connection {
    /// The connection's state, which [`Connection`] holds opaque.
    fn shared(&self) -> &Shared {
        let state: &dyn Any = &*self.state;
        state.downcast_ref().expect("a connection's state is the peer's")
    }

    /// Starts serving a link: spawns its reader and writer tasks on the current tokio runtime.
    ///
    /// `owned` says whether dropping the last handle closes the connection (true for
    /// connections this side opened).
    pub fn start(link: Link, host: Arc<Host>, endpoint: String, owned: bool) -> Connection {
        let LinkParts { reader, writer, info, attachment } = link.into_parts();
        let out = Outbox::new(writer);
        let shared = Arc::new(Shared {
            slots: Arc::new(tokio::sync::Semaphore::new(host.max_in_flight)),
            host,
            attachment,
            info,
            endpoint,
            out: out.clone(),
            next_id: AtomicU64::new(1),
            pending: Mutex::new(Calls::default()),
            refs: Mutex::new(RefTables::default()),
            owner: Mutex::new(Weak::new()),
            closed: CancellationToken::new(),
            ended: Arc::new(Ended::default()),
            close_reason: Mutex::new(None),
            running: Mutex::new(IdMap::default()),
            serving: std::sync::atomic::AtomicUsize::new(0),
            late: AtomicU64::new(0),
            activity: AtomicU64::new(0),
        });
        let span = tracing::debug_span!("dopy.connection", link = %shared.info);
        tracing::debug!(parent: &span, "connection open");
        let writer = spawn_in(outbox::write_loop(WriterTask(out), shared.ended.clone()), span.clone());
        spawn_in(read_loop(shared.clone(), reader, writer), span);
        let owner = owned.then(|| Arc::new(CloseOnDrop(shared.clone())));
        if let Some(o) = &owner {
            *lock(&shared.owner) = Arc::downgrade(o);
        }
        Connection { state: shared, owner: owner.map(|o| o as Arc<dyn Any + Send + Sync>) }
    }

    /// A weak handle to this connection (for caches); `None` for connections the peer opened.
    pub fn downgrade(&self) -> Option<WeakConnection> {
        let owner = self.owner.clone()?.downcast::<CloseOnDrop>().ok()?;
        Some(WeakConnection { owner: Arc::downgrade(&owner) })
    }

    /// A handle to the object the peer publishes under `name`, over this connection: for a
    /// connection made by hand (`Node::serve_stream`, a custom transport) or accepted from the
    /// peer (calling back the node that connected). Nothing is sent: a name the peer does not
    /// publish fails at the first call with `NoSuchObject`.
    pub fn object(&self, name: &str) -> DynObject {
        DynObject::new(self.clone(), Target::Name(name.to_owned()))
    }

    /// What the transport knows about the two ends.
    pub fn info(&self) -> &LinkInfo {
        &self.shared().info
    }

    /// Whether the connection has ended.
    pub fn is_closed(&self) -> bool {
        self.shared().ended.is_set()
    }

    /// Waits until the connection has ended: once this returns, every call pending on it has
    /// failed and every reference it held or exported has been released.
    pub async fn closed(&self) {
        self.shared().closed.cancelled().await
    }

    /// Why the connection ended, once it has.
    pub fn close_reason(&self) -> Option<String> {
        lock(&self.shared().close_reason).clone()
    }

    /// Closes the connection in an orderly way (`Goodbye`); calls in flight fail with
    /// [`Error::Disconnected`].
    pub fn close(&self) {
        self.shared().close_with(Message::Goodbye, "closed locally");
    }

    /// Bytes queued for the peer and not yet taken by the transport (bounded by the node's
    /// backlog limit, `NodeBuilder::max_backlog`, plus one frame).
    pub fn backlog(&self) -> usize {
        self.shared().out.backlog()
    }

    /// How many objects this side currently exports to the peer (by reference).
    pub fn exported_count(&self) -> usize {
        lock(&self.shared().refs).exported()
    }

    /// How many objects of the peer this side currently holds references to.
    pub fn imported_count(&self) -> usize {
        lock(&self.shared().refs).imported()
    }

    /// How many of the peer's calls this side is serving right now.
    pub fn serving_count(&self) -> usize {
        self.shared().serving.load(Ordering::Acquire)
    }

    /// How many replies arrived for calls nobody waited for any more (cancelled or timed out):
    /// they are discarded, never delivered to another call.
    pub fn late_replies(&self) -> u64 {
        self.shared().late.load(Ordering::Relaxed)
    }

    /// Sends a `Ping` and waits for the `Pong`: the round-trip time of the connection.
    ///
    /// # Errors
    ///
    /// [`Error::Disconnected`] if the connection ends first.
    pub async fn ping(&self) -> Result<std::time::Duration, Error> {
        let shared = self.shared();
        let started = Instant::now();
        let nonce = shared.next_id.fetch_add(1, Ordering::Relaxed);
        let (frame, _) = shared.encode(Message::Ping { nonce }, Vec::new())?;
        let rx = shared.register(nonce, None)?;
        let guard = PendingGuard { shared, id: nonce, armed: false };
        shared.send(Out::Frame(frame))?;
        let answer = rx.await;
        drop(guard);
        match answer {
            Ok(_) => Ok(started.elapsed()),
            Err(reason) => Err(Error::Disconnected { reason }),
        }
    }

    /// Sends a call and waits for its outcome and the references the outcome carries.
    ///
    /// `refs` is the reference table of typed `args`. With a `deadline`, the time left travels
    /// with the call (and applies to the calls made while serving it); when it passes, the call
    /// is cancelled. Dropping the returned future cancels the call too (`Cancel` is sent).
    ///
    /// # Errors
    ///
    /// [`Error::Codec`] if the call exceeds the frame limit (nothing is sent; the connection
    /// stays usable), [`Error::Overloaded`] if no slot frees up in time,
    /// [`Error::DeadlineExceeded`], or [`Error::Disconnected`] if the connection ends first.
    pub async fn call<E>(&self, request: Request) -> Result<(Outcome, Vec<DynObject>), Error<E>> {
        let Request { target, method, args, refs, flags, deadline } = request;
        self.call_to(&target, &method, args, refs, flags, deadline).await
    }

    /// [`call`](Connection::call) with the target and method borrowed (from the handle that
    /// makes the call): they are encoded from there, never copied. A small future of its own
    /// ([`call::CallTo`]).
    pub(crate) fn call_to<'a, E>(
        &'a self,
        target: &'a Target,
        method: &'a str,
        args: Args,
        refs: Vec<DynObject>,
        call_flags: u32,
        deadline: Option<Instant>,
    ) -> call::CallTo<'a, E> {
        call::CallTo::new(self, target, method, args, refs, call_flags, deadline)
    }
}

/// A call to send: see [`Connection::call`].
#[derive(Debug)]
pub struct Request {
    /// The object called.
    pub target: Target,
    /// The method's remote name.
    pub method: String,
    /// The arguments.
    pub args: Args,
    /// The reference table of typed arguments.
    pub refs: Vec<DynObject>,
    /// A bit set of [`flags`].
    pub flags: u32,
    /// When the caller stops waiting.
    pub deadline: Option<Instant>,
}

/// Removes a call's reply slot when its future goes before the reply: the caller was
/// cancelled (dropped) or timed out, so the peer is told to stop (`Cancel`).
struct PendingGuard<'a> {
    shared: &'a Shared,
    id: u64,
    armed: bool,
}

impl Drop for PendingGuard<'_> {
    fn drop(&mut self) {
        let removed = lock(&self.shared.pending).slots.remove(&self.id);
        // A reply that arrived meanwhile needs no `Cancel` (it is dropped, outside the lock).
        if self.armed && matches!(removed, Some(Slot::Waiting(_))) {
            if let Ok((frame, _)) = self.shared.encode::<Value>(Message::Cancel { id: self.id }, Vec::new()) {
                let _ = self.shared.send::<Value>(Out::Frame(frame));
            }
        }
    }
}

impl Shared {
    /// A handle to this connection, keeping it open if this side opened it.
    fn connection(self: &Arc<Self>) -> Connection {
        Connection { state: self.clone(), owner: lock(&self.owner).upgrade().map(|o| o as Arc<dyn Any + Send + Sync>) }
    }

    /// Creates the reply slot of call (or ping) `id`, to wake `waker` (if given) when the reply
    /// arrives; the reply is awaited with what this returns (and the slot removed by a
    /// [`PendingGuard`]).
    fn register<E>(&self, id: u64, waker: Option<&std::task::Waker>) -> Result<Awaited<'_>, Error<E>> {
        self.register_counted(id, waker).map(|(awaited, _)| awaited)
    }

    /// [`register`](Shared::register), with the number of replies awaited now, this one
    /// included.
    fn register_counted<E>(&self, id: u64, waker: Option<&std::task::Waker>) -> Result<(Awaited<'_>, usize), Error<E>> {
        let mut calls = lock(&self.pending);
        if calls.ended {
            drop(calls);
            return Err(self.disconnected());
        }
        calls.slots.insert(id, Slot::Waiting(waker.cloned()));
        Ok((Awaited { shared: self, id }, calls.slots.len()))
    }

    /// Hands the reply of call (or ping) `id` to its caller; gives it back if nobody waits for
    /// it (any more).
    fn deliver(&self, id: u64, delivery: Delivery) -> Result<(), Delivery> {
        let waker = {
            let mut calls = lock(&self.pending);
            match calls.slots.get_mut(&id) {
                Some(slot @ Slot::Waiting(_)) => match std::mem::replace(slot, Slot::Done(delivery)) {
                    Slot::Waiting(waker) => waker,
                    Slot::Done(_) => unreachable!("the slot was just seen waiting"),
                },
                _ => return Err(delivery),
            }
        };
        if let Some(waker) = waker {
            waker.wake();
        }
        Ok(())
    }

    /// Encodes a message: exports the references it carries (`refs` for a typed payload, plus
    /// those inside its values) and fills in its reference table. Returns the frame and the
    /// exports made, to undo if the frame is not sent.
    fn encode<E>(&self, mut msg: Message, refs: Vec<DynObject>) -> Result<(Encoded, Exported), Error<E>> {
        self.encode_mut(&mut msg, refs)
    }

    /// [`encode`](Shared::encode), leaving the message to the caller (who may still need its
    /// fields, so that they need not be cloned into it).
    fn encode_mut<E, M: Outgoing>(
        &self,
        msg: &mut M,
        mut refs: Vec<DynObject>,
    ) -> Result<(Encoded, Exported), Error<E>> {
        let codec = |reason: String| Error::Codec { reason };
        if refs.is_empty() && msg.is_typed() {
            // No value to look into for references or nesting (the common call and reply).
            let frame = msg.encode_shared().map_err(|e| codec(e.to_string()))?;
            return self.check_size(frame).map(|f| (f, Exported::default()));
        }
        msg.collect_refs(&mut refs);
        // Values nested deeper than the node's limit are refused here already, with a clear
        // message (postcard's own drops it).
        let max_depth = self.host.max_depth;
        if msg.depth() > max_depth {
            return Err(codec(format!("value nesting exceeds {max_depth} levels")));
        }
        let encoded = |msg: &M| match wire::with_max_depth(max_depth, || msg.encode_shared()) {
            (Ok(frame), _) => Ok(frame),
            (Err(_), true) => Err(codec(format!("value nesting exceeds {max_depth} levels"))),
            (Err(e), false) => Err(codec(e.to_string())),
        };
        if refs.is_empty() {
            // A large typed payload goes to the writer as it is, not copied into the frame.
            let frame = encoded(msg)?;
            return self.check_size(frame).map(|f| (f, Exported::default()));
        }
        let (wire, ids) = match self.export_all(&refs) {
            Ok(done) => done,
            Err(Unsent::Unsendable(reason)) => return Err(codec(reason)),
            Err(Unsent::Limit(reason)) => {
                let (object, method) = msg.site().unwrap_or_default();
                let site = CallSite { endpoint: self.endpoint.clone(), object, method };
                return Err(Error::from_fault(Fault::new(FaultKind::Overloaded, reason), site, |_| None));
            }
        };
        msg.set_refs(wire);
        let (frame, held) = crate::value::refs::encoding(refs, || encoded(msg));
        let frame = frame.and_then(|f| self.check_size(f));
        match frame {
            Ok(frame) => Ok((frame, Exported { ids, held })),
            Err(e) => {
                self.unexport(&ids);
                Err(e)
            }
        }
    }

    fn check_size<E>(&self, frame: Encoded) -> Result<Encoded, Error<E>> {
        if frame.len() > self.host.max_frame {
            return Err(Error::Codec {
                reason: format!(
                    "message of {} bytes exceeds the maximum frame size of {} bytes",
                    frame.len(),
                    self.host.max_frame
                ),
            });
        }
        Ok(frame)
    }

    fn send<E>(&self, out: Out) -> Result<(), Error<E>> {
        if self.ended.is_set() {
            return Err(self.disconnected());
        }
        self.out.push(out).map_err(|_| self.disconnected())
    }

    /// [`send`](Shared::send) of a small message of `len` bytes, written in place
    /// ([`Outbox::push_small`]); the caller has checked its size.
    fn send_small<E>(&self, msg: &Small<'_>, len: usize) -> Result<(), Error<E>> {
        if self.ended.is_set() {
            return Err(self.disconnected());
        }
        self.out.push_small(msg, len).map_err(|why| match why {
            outbox::Unpushed::Closed => self.disconnected(),
            outbox::Unpushed::Encode(e) => Error::Codec { reason: e.to_string() },
        })
    }

    /// [`send_small`](Shared::send_small), for a caller that awaits no other reply on this
    /// connection (a sequential call): the frame is written by the caller itself if the write
    /// path is idle, as the reader writes its replies (see `outbox`), instead of by the writer
    /// task woken for it. Nothing is gained from waiting for other frames to share the write,
    /// and a hand-off to another task (often on another core) is saved.
    fn send_small_now<E>(&self, msg: &Small<'_>, len: usize) -> Result<(), Error<E>> {
        let batch = self.out.batch();
        let pushed = self.send_small(msg, len);
        drop(batch);
        if pushed.is_ok() {
            self.out.end_batch();
        }
        pushed
    }

    /// Queues a frame; takes its exports back if the connection has ended. The handles the
    /// frame names are dropped after it is queued, so that a `Release` they cause follows it.
    fn send_or_unexport<E>(&self, frame: Encoded, exported: Exported) -> Result<(), Error<E>> {
        let sent = self.send(Out::Frame(frame));
        if sent.is_err() {
            self.unexport(&exported.ids);
        }
        drop(exported.held);
        sent
    }

    fn disconnected<E>(&self) -> Error<E> {
        let reason = lock(&self.close_reason).clone();
        Error::Disconnected { reason: reason.unwrap_or_else(|| "the connection is closed".into()) }
    }

    /// Ends the connection: records why, fails pending calls, and lets the writer finish with
    /// `last` (a `Goodbye` or an `Abort`).
    fn close_with(&self, last: Message, reason: &str) {
        {
            let mut r = lock(&self.close_reason);
            if r.is_some() {
                return;
            }
            *r = Some(reason.to_owned());
        }
        if let Ok(frame) = last.encode() {
            let _ = self.out.push(Out::Last(Encoded::Whole(frame)));
        }
        self.finish(reason);
    }

    /// Fails every pending call, releases every reference, and wakes everything waiting on
    /// the connection.
    fn finish(&self, reason: &str) {
        {
            let mut r = lock(&self.close_reason);
            if r.is_none() {
                *r = Some(reason.to_owned());
            }
        }
        self.ended.set();
        // The peer's calls still running have no one to answer any more: stop them, as a
        // `Cancel` would (`no_cancel` methods run on).
        let running: Vec<CancellationToken> = lock(&self.running).drain().map(|(_, stop)| stop).collect();
        running.iter().for_each(CancellationToken::cancel);
        let wakers: Vec<std::task::Waker> = {
            let mut calls = lock(&self.pending);
            calls.ended = true;
            let waiting = calls.slots.values_mut().filter(|slot| matches!(slot, Slot::Waiting(_)));
            waiting
                .filter_map(|slot| match std::mem::replace(slot, Slot::Done(Err(reason.to_owned()))) {
                    Slot::Waiting(waker) => waker,
                    Slot::Done(_) => None,
                })
                .collect()
        };
        wakers.into_iter().for_each(std::task::Waker::wake);
        // Dropping the exports may run user code (an object's Drop): not under the lock.
        let dropped = lock(&self.refs).clear();
        drop(dropped);
        // Last: whoever waits for the end (`Connection::closed`) finds it complete, every
        // pending call failed and every reference released. (A reply exporting meanwhile sees
        // `ended` when it sends, and takes its exports back.)
        self.closed.cancel();
    }

    fn reply(self: &Arc<Self>, id: u64, reply: Reply) {
        // The common reply, a small result without references, is written in place. (A wire
        // result nested too deep takes the general path, which refuses it.)
        if let Ok(Answer { payload, refs }) = &reply {
            let too_deep = matches!(payload, Payload::Wire(w) if w.depth() > self.host.max_depth);
            let small =
                if refs.is_empty() && !too_deep { small_return(id, payload, crate::codec::SHARE_MIN) } else { None };
            if let Some((len, msg)) = small.map(|m| (m.len(), m)).filter(|(len, _)| *len <= self.host.max_frame) {
                let _ = self.send_small::<Value>(&msg, len);
                return;
            }
        }
        let (outcome, refs) = match reply {
            Ok(Answer { payload, refs }) => (Outcome::Ok(payload), refs),
            Err(fault) => (Outcome::Err(fault), Vec::new()),
        };
        let result = self.encode::<Value>(Message::Return { id, refs: Vec::new(), outcome }, refs);
        let (frame, exported) = match result {
            Ok(f) => f,
            // The result itself cannot be sent (too large, too many references): tell the
            // caller why instead.
            Err(e) => {
                let kind = if matches!(e, Error::Overloaded(_)) { FaultKind::Overloaded } else { FaultKind::Protocol };
                let fault = Fault::new(kind, format!("the reply could not be sent: {e}"));
                let msg = Message::Return { id, refs: Vec::new(), outcome: Outcome::Err(Box::new(fault)) };
                match self.encode::<Value>(msg, Vec::new()) {
                    Ok(f) => f,
                    Err(_) => return,
                }
            }
        };
        let _ = self.send_or_unexport::<Value>(frame, exported);
    }

    fn handle(self: &Arc<Self>, msg: Message, runner: &mut dyn InlineRunner) -> Result<(), String> {
        match msg {
            // The reader decodes calls as `Incoming::Call`.
            Message::Call(Call { id, target, method, refs, args, flags, deadline, chain }) => {
                let target = TargetIn::of(&target);
                let method = method.into();
                self.handle_call(CallIn { id, target, method, refs, args, flags, deadline, chain }, runner)
            }
            Message::Return { id, refs, mut outcome } => {
                // A method's error may be kept (in an `Error`): not a slice of the read buffer.
                if let Outcome::Err(fault) = &mut outcome {
                    if let Some(Payload::Typed(detail)) = &mut fault.detail {
                        crate::codec::unshare(detail);
                    }
                }
                let table = self.import_all(refs);
                if !table.is_empty() {
                    resolve_outcome(&mut outcome, &table);
                }
                if self.deliver(id, Ok((outcome, table))).is_err() {
                    self.late.fetch_add(1, Ordering::Relaxed);
                    tracing::debug!(id, "reply to a call nobody waits for (cancelled or late): discarded");
                }
            }
            Message::Ping { nonce } => {
                if let Ok((frame, _)) = self.encode::<Value>(Message::Pong { nonce }, Vec::new()) {
                    let _ = self.send::<Value>(Out::Frame(frame));
                }
            }
            Message::Pong { nonce } => {
                let _ = self.deliver(nonce, Ok((Outcome::Ok(Payload::Dynamic(Value::Unit)), Vec::new())));
            }
            Message::Release { object, count } => {
                let dropped = lock(&self.refs).release(object, count);
                drop(dropped);
            }
            Message::Cancel { id } => {
                if let Some(token) = lock(&self.running).remove(&id) {
                    token.cancel();
                }
            }
            Message::Goodbye => return Err("the peer said goodbye".into()),
            Message::Abort { reason } => return Err(format!("the peer aborted the connection: {reason}")),
        }
        Ok(())
    }

    /// Whether nothing uses the connection: no call in flight either way, no reference held
    /// either way.
    fn is_idle(&self) -> bool {
        let waiting = !lock(&self.pending).slots.is_empty();
        let refs = lock(&self.refs);
        !waiting && self.serving.load(Ordering::Acquire) == 0 && refs.exported() == 0 && refs.imported() == 0
    }

    /// Answers a message refused for its values (`why`: nested deeper than [`Host::max_depth`],
    /// or more memory than [`Host::max_expansion`] allows): a call gets `BadArguments`, a reply
    /// fails its call (`Protocol`); the references either carried are released. Only a message
    /// whose start cannot be read ends the connection.
    fn refuse_values(self: &Arc<Self>, frame: &[u8], why: &str) -> Result<(), String> {
        /// The variant indexes of `Message::Call` and `Message::Return`.
        const CALL: u32 = 0;
        const RETURN: u32 = 1;
        // A call begins with its id, target, method and references; a reply with its id and
        // references (PROTOCOL.md, section 3).
        match postcard::take_from_bytes::<(u32, u64)>(frame) {
            Ok(((CALL, id), _)) => {
                let Ok(((_, _, target, method, refs), _)) =
                    postcard::take_from_bytes::<(u32, u64, Target, String, Vec<crate::codec::RefWire>)>(frame)
                else {
                    return Err(format!("protocol error: {why}"));
                };
                drop(self.import_all(refs));
                tracing::debug!(%target, %method, "call refused: {why}");
                let fault = Fault::new(FaultKind::BadArguments, format!("the call was refused: its {why}"));
                self.reply(id, Err(Box::new(self.with_hop(fault, &target.to_string(), &method))));
                Ok(())
            }
            Ok(((RETURN, id), _)) => {
                if let Ok(((_, _, refs), _)) =
                    postcard::take_from_bytes::<(u32, u64, Vec<crate::codec::RefWire>)>(frame)
                {
                    drop(self.import_all(refs));
                }
                let fault = Fault::new(FaultKind::Protocol, format!("the reply was refused: its {why}"));
                let _ = self.deliver(id, Ok((Outcome::Err(Box::new(fault)), Vec::new())));
                Ok(())
            }
            _ => Err(format!("protocol error: {why}")),
        }
    }

    fn resolve_target(&self, target: TargetIn<'_>) -> Option<Arc<Entry>> {
        match target {
            TargetIn::Name(name) => self.host.table.get(name),
            TargetIn::Id(id) => lock(&self.refs).exported_entry(&id),
        }
    }

    /// Serves a call; `runner` runs inline calls.
    fn handle_call(self: &Arc<Self>, call: CallIn<'_>, runner: &mut dyn InlineRunner) {
        let CallIn { id, target, method, refs, mut args, flags: call_flags, chain, deadline } = call;
        self.activity.fetch_add(1, Ordering::Relaxed);
        let deadline = deadline.map(|us| Instant::now() + Duration::from_micros(us));
        let oneway = call_flags & flags::ONEWAY != 0;
        let dynamic = call_flags & flags::DYNAMIC_RESULT != 0;
        let table = self.import_all(refs);
        if !table.is_empty() {
            resolve_args(&mut args, &table);
        }
        let Some(entry) = self.resolve_target(target) else {
            tracing::debug!(%target, %method, "call for an unknown object");
            if !oneway {
                let why = match target {
                    TargetIn::Id(_) => "(released, or never exported on this connection)",
                    _ => "",
                };
                let fault = Fault::new(
                    FaultKind::NoSuchObject,
                    format!("no object `{target}` on node `{}` {why}", self.host.name).trim_end().to_owned(),
                );
                self.reply(id, Err(Box::new(self.with_hop(fault, &target.to_string(), &method))));
            }
            return;
        };
        let inline = entry.inline_name(&method);
        if inline.is_none() {
            // Served in a task, where the arguments may wait (for the object's lock, say).
            if let Args::Typed(bytes) = &mut args {
                crate::codec::unshare(bytes);
            }
        }
        let inv = Invocation::new(method, args, dynamic, table);
        // A call whose deadline has passed on arrival (a deadline of 0 included) is not run,
        // whatever the method: nobody waits for its result (PROTOCOL.md, section 3.1).
        if deadline.is_some_and(|d| d <= Instant::now()) {
            if !oneway {
                let fault = expired_on_arrival(inv.method());
                self.reply(id, Err(Box::new(self.with_hop(fault, entry.label(), inv.method()))));
            }
            return;
        }
        if inv.method() == METHODS && !entry.forwards() {
            if !oneway {
                let reply = inv.answer_methods(entry.interface());
                let reply = reply.map_err(|f| Box::new(self.with_hop(*f, entry.label(), METHODS)));
                self.reply(id, reply);
            }
            return;
        }
        if self.host.draining.load(Ordering::Acquire) {
            if !oneway {
                let fault = Fault::new(
                    FaultKind::Cancelled,
                    format!("node `{}` is shutting down; the call was not run", self.host.name),
                );
                self.reply(id, Err(Box::new(self.with_hop(fault, entry.label(), inv.method()))));
            }
            return;
        }
        if self.serving.fetch_add(1, Ordering::AcqRel) >= self.host.max_in_flight {
            self.serving.fetch_sub(1, Ordering::AcqRel);
            if !oneway {
                let fault = Fault::new(
                    FaultKind::Overloaded,
                    format!("{} calls from this peer are already being served", self.host.max_in_flight),
                );
                self.reply(id, Err(Box::new(self.with_hop(fault, entry.label(), inv.method()))));
            }
            return;
        }
        // A serial object takes calls in the order they arrive: take the place in line now.
        let ticket = entry.ticket();
        // Fast path: a method the object marks inline (short, never blocks) runs right here in
        // the reader when it completes without waiting (lock free, no queue): no task, no
        // hand-off, no cancellation token. Anything that would wait gets a task as before.
        let (inv, ticket) = if let Some(method) = inline {
            match runner.run(entry.clone(), inv, ticket, chain, deadline) {
                Ok(reply) => {
                    self.serving.fetch_sub(1, Ordering::AcqRel);
                    if !oneway {
                        let reply = reply.map_err(|f| Box::new(self.with_hop(*f, entry.label(), method)));
                        self.reply(id, reply);
                    }
                    return;
                }
                Err(run) => return self.serve_in_task(id, entry, method, run, oneway, deadline),
            }
        } else {
            (inv, ticket)
        };
        // A `no_cancel` method runs to the end even if its caller gives up.
        let cancellable = !entry.no_cancel(inv.method());
        let stop = CancellationToken::new();
        if cancellable {
            lock(&self.running).insert(id, stop.clone());
            // Ended meanwhile: `finish` has already stopped the calls it found.
            if self.ended.is_set() {
                stop.cancel();
            }
        }
        let shared = self.clone();
        let span = tracing::debug_span!("dopy.serve", object = entry.label(), method = inv.method(), id);
        spawn_in(
            async move {
                let started = Instant::now();
                let method = inv.method().to_owned();
                let run = crate::serve::chain::scope(chain, deadline, entry.call(inv, ticket));
                let reply = if cancellable {
                    let expired = async {
                        match deadline {
                            Some(d) => tokio::time::sleep_until(d.into()).await,
                            None => std::future::pending().await,
                        }
                    };
                    tokio::select! {
                        reply = run => Some(reply),
                        _ = stop.cancelled() => None,
                        _ = expired => Some(Err(Box::new(Fault::new(
                            FaultKind::DeadlineExceeded,
                            format!("the deadline passed while `{method}` was running; it was stopped"),
                        )))),
                    }
                } else {
                    Some(run.await)
                };
                lock(&shared.running).remove(&id);
                shared.serving.fetch_sub(1, Ordering::AcqRel);
                let Some(reply) = reply else {
                    tracing::debug!(elapsed_us = started.elapsed().as_micros() as u64, "call cancelled by the caller");
                    return;
                };
                let ok = reply.is_ok();
                tracing::debug!(elapsed_us = started.elapsed().as_micros() as u64, ok, "call served");
                if !oneway {
                    let reply = reply.map_err(|f| Box::new(shared.with_hop(*f, entry.label(), &method)));
                    shared.reply(id, reply);
                }
            },
            span,
        );
    }

    /// Serves an inline call that has to wait after all, in a task of its own (cancellable and
    /// bounded by its deadline, as any call).
    fn serve_in_task(
        self: &Arc<Self>,
        id: u64,
        entry: Arc<Entry>,
        method: &'static str,
        run: std::pin::Pin<Box<dyn std::future::Future<Output = Reply> + Send>>,
        oneway: bool,
        deadline: Option<Instant>,
    ) {
        let stop = CancellationToken::new();
        lock(&self.running).insert(id, stop.clone());
        let shared = self.clone();
        tokio::spawn(async move {
            let expired = async {
                match deadline {
                    Some(d) => tokio::time::sleep_until(d.into()).await,
                    None => std::future::pending().await,
                }
            };
            let reply = tokio::select! {
                reply = run => Some(reply),
                _ = stop.cancelled() => None,
                _ = expired => Some(Err(Box::new(Fault::new(
                    FaultKind::DeadlineExceeded,
                    format!("the deadline passed while `{method}` was running; it was stopped"),
                )))),
            };
            lock(&shared.running).remove(&id);
            shared.serving.fetch_sub(1, Ordering::AcqRel);
            if let (Some(reply), false) = (reply, oneway) {
                let reply = reply.map_err(|f| Box::new(shared.with_hop(*f, entry.label(), method)));
                shared.reply(id, reply);
            }
        });
    }

    fn with_hop(&self, mut fault: Fault, object: &str, method: &str) -> Fault {
        // A panic of this node's own (no hop yet): its backtrace goes out only if this node
        // opted in (another node of the process may have turned the capture on).
        if fault.hops.is_empty() && !self.host.panic_backtraces {
            fault.backtrace = None;
        }
        fault.hops.push(Hop { node: self.host.name.clone(), object: object.to_owned(), method: method.to_owned() });
        fault
    }
}

/// The fault for a call whose deadline had passed before it could start: the method was not run.
pub(crate) fn expired_on_arrival(method: &str) -> Fault {
    Fault::new(
        FaultKind::DeadlineExceeded,
        format!("the deadline had passed before `{method}` could start; it was not run"),
    )
}

/// Runs inline calls for a reader (see [`Shared::handle_call`]).
trait InlineRunner {
    /// Starts an inline call: its reply if it completed at once, else the call, to finish in a
    /// task.
    fn run(
        &mut self,
        entry: Arc<Entry>,
        inv: Invocation,
        ticket: Option<Ticket>,
        chain: u64,
        deadline: Option<Instant>,
    ) -> Result<Reply, Pin<Box<dyn Future<Output = Reply> + Send>>>;
}

/// The future of an inline call, without its chain scope: [`InlineBox`] and [`Started`] poll
/// and drop it in [`chain::sync_scope`](crate::serve::chain::sync_scope).
fn inline_call(
    entry: Arc<Entry>,
    inv: Invocation,
    ticket: Option<Ticket>,
) -> impl Future<Output = Reply> + Send + 'static {
    entry.call_owned(inv, ticket)
}

/// A reader's [`InlineRunner`]: one box for its inline calls' futures (made by `make`), reused
/// from one call to the next, so that an inline call that completes at once (the usual case)
/// allocates nothing for its future. One that has to wait takes the box to its task; the next
/// call gets a fresh one.
///
/// The first poll runs in the call's chain scope set for that poll alone
/// ([`chain::sync_scope`](crate::serve::chain::sync_scope)), and a completed call is dropped in it
/// too; a call that has to wait goes on as [`Started`], which does the same for the polls and
/// the drop still to come. Every poll and the drop thus see the scope, as if the future had
/// been wrapped in [`chain::scope`](crate::serve::chain::scope) from the start, without moving it into
/// a scoped future per call.
struct InlineBox<F, Fut> {
    make: F,
    spare: Option<Pin<Box<Option<Fut>>>>,
}

impl<F, Fut> InlineRunner for InlineBox<F, Fut>
where
    F: Fn(Arc<Entry>, Invocation, Option<Ticket>) -> Fut,
    Fut: Future<Output = Reply> + Send + 'static,
{
    fn run(
        &mut self,
        entry: Arc<Entry>,
        inv: Invocation,
        ticket: Option<Ticket>,
        chain: u64,
        deadline: Option<Instant>,
    ) -> Result<Reply, Pin<Box<dyn Future<Output = Reply> + Send>>> {
        let mut call = self.spare.take().unwrap_or_else(|| Box::pin(None));
        call.set(Some((self.make)(entry, inv, ticket)));
        let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
        match crate::serve::chain::poll_in_scope(chain, deadline, call.as_mut(), &mut cx) {
            std::task::Poll::Ready(reply) => {
                self.spare = Some(call);
                Ok(reply)
            }
            std::task::Poll::Pending => Err(Box::pin(Started { call, chain, deadline })),
        }
    }
}

/// An inline call that has to wait, in the box it started in, with its chain scope: polled
/// and dropped (completed or cancelled) in it, as its first poll was.
struct Started<Fut> {
    /// The call, `None` once completed (it was dropped in its scope then).
    call: Pin<Box<Option<Fut>>>,
    /// Its chain and deadline, set around each poll and the drop.
    chain: u64,
    deadline: Option<Instant>,
}

impl<Fut: Future> Future for Started<Fut> {
    type Output = Fut::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut std::task::Context<'_>) -> std::task::Poll<Fut::Output> {
        let Started { call, chain, deadline } = self.get_mut();
        crate::serve::chain::poll_in_scope(*chain, *deadline, call.as_mut(), cx)
    }
}

impl<Fut> Drop for Started<Fut> {
    fn drop(&mut self) {
        if self.call.is_some() {
            let call = &mut self.call;
            crate::serve::chain::sync_scope(self.chain, self.deadline, || call.set(None));
        }
    }
}

/// A message to encode: a [`Message`], or a call borrowing its parts ([`CallRef`]).
trait Outgoing {
    /// Adds the references inside the message's dynamic values to `refs`.
    fn collect_refs(&self, refs: &mut Vec<DynObject>);
    /// Fills in the message's reference table.
    fn set_refs(&mut self, wire: Vec<RefWire>);
    /// The object and method called, for a call.
    fn site(&self) -> Option<(String, String)>;
    /// See [`Message::encode_shared`].
    fn encode_shared(&self) -> Result<Encoded, postcard::Error>;
    /// Whether the message carries typed data only (typed arguments, a typed result): no
    /// [`Value`] that could hold references or be nested too deep.
    fn is_typed(&self) -> bool;
    /// The nesting of a value already in its wire form (a [`Payload::Wire`] result), which
    /// the encoding cannot check; 0 when there is none.
    fn depth(&self) -> usize {
        0
    }
}

fn collect_args(args: &Args, refs: &mut Vec<DynObject>) {
    match args {
        Args::Positional(values) => values.iter().for_each(|v| crate::value::refs::collect(v, refs)),
        Args::Named(values) => values.iter().for_each(|(_, v)| crate::value::refs::collect(v, refs)),
        _ => {}
    }
}

impl Outgoing for Message {
    fn depth(&self) -> usize {
        match self {
            Message::Return { outcome: Outcome::Ok(Payload::Wire(wire)), .. } => wire.depth(),
            _ => 0,
        }
    }

    fn collect_refs(&self, refs: &mut Vec<DynObject>) {
        match self {
            Message::Call(call) => collect_args(&call.args, refs),
            Message::Return { outcome: Outcome::Ok(Payload::Dynamic(v)), .. } => crate::value::refs::collect(v, refs),
            _ => {}
        }
    }

    fn set_refs(&mut self, wire: Vec<RefWire>) {
        match self {
            Message::Call(call) => call.refs = wire,
            Message::Return { refs, .. } => *refs = wire,
            _ => {}
        }
    }

    fn site(&self) -> Option<(String, String)> {
        match self {
            Message::Call(call) => Some((call.target.to_string(), call.method.clone())),
            _ => None,
        }
    }

    fn encode_shared(&self) -> Result<Encoded, postcard::Error> {
        Message::encode_shared(self)
    }

    fn is_typed(&self) -> bool {
        match self {
            Message::Call(call) => matches!(call.args, Args::Typed(_) | Args::TypedParts(_)),
            Message::Return { outcome, .. } => {
                matches!(outcome, Outcome::Ok(Payload::Typed(_) | Payload::TypedParts(_)))
            }
            _ => false,
        }
    }
}

impl Outgoing for CallRef<'_> {
    fn collect_refs(&self, refs: &mut Vec<DynObject>) {
        collect_args(self.args, refs)
    }

    fn set_refs(&mut self, wire: Vec<RefWire>) {
        self.refs = wire;
    }

    fn site(&self) -> Option<(String, String)> {
        Some((self.target.to_string(), self.method.to_owned()))
    }

    fn encode_shared(&self) -> Result<Encoded, postcard::Error> {
        CallRef::encode_shared(self)
    }

    fn is_typed(&self) -> bool {
        matches!(self.args, Args::Typed(_) | Args::TypedParts(_))
    }
}

fn resolve_args(args: &mut Args, table: &[DynObject]) {
    match args {
        Args::Positional(values) => values.iter_mut().for_each(|v| crate::value::refs::resolve(v, table)),
        Args::Named(values) => values.iter_mut().for_each(|(_, v)| crate::value::refs::resolve(v, table)),
        _ => {}
    }
}

fn resolve_outcome(outcome: &mut Outcome, table: &[DynObject]) {
    match outcome {
        Outcome::Ok(Payload::Dynamic(v)) => crate::value::refs::resolve(v, table),
        Outcome::Err(fault) => {
            if let Some(Payload::Dynamic(v)) = &mut fault.detail {
                crate::value::refs::resolve(v, table)
            }
        }
        _ => {}
    }
}

async fn read_loop(shared: Arc<Shared>, reader: FrameReader, mut writer: tokio::task::JoinHandle<()>) {
    read_frames(&shared, reader).await;
    // The writer sends the last frame (`Goodbye`, `Abort`) and closes the stream; a peer that
    // stopped reading (a paused process) must not keep it open forever.
    if tokio::time::timeout(LINGER, &mut writer).await.is_err() {
        tracing::debug!("the peer does not take the last frame; dropping the stream");
        writer.abort();
    }
}

/// Bytes of incoming frames after which the reader ends its batch of replies even if more
/// frames are at hand: the reader's buffer (`Link::establish`), what one read brings at most.
const BATCH_LIMIT: usize = 64 * 1024;

/// The fewest frames after which a reader on a parallel runtime ends its batch early (see
/// [`Batch`]): below this, the extra writes cost more than the overlap gains.
const MIN_SPLIT: usize = 8;
/// The most frames an early-ended batch holds.
const MAX_SPLIT: usize = 64;
/// Into how many batches a reader on a parallel runtime splits the frames at hand.
const SPLIT_INTO: usize = 4;

/// The reader's current batch of frames: what it handled since its replies last went out.
///
/// Replies queued while a batch lasts go out together when it ends (one write). A batch ends
/// when the read buffer is empty, after [`BATCH_LIMIT`] bytes, and, on a runtime whose tasks
/// run in parallel, early: after a quarter of the frames at hand when it began (between
/// [`MIN_SPLIT`] and [`MAX_SPLIT`]). Then the first replies of a long read reach the peer
/// while the rest are being served, so that the peer's side of the work (on another core)
/// overlaps this side's instead of the two taking turns, one whole read at a time. Each
/// early end costs a write, hence the bounds. Measured on 2 cores, one connection: 64 calls
/// in flight, about 2x the calls per second of one batch per read; 256 in flight, about 2x;
/// 16 in flight (two batches of 8), no clear change (docs/PERFORMANCE.md). On one core nothing
/// overlaps, so a batch there lasts as long as the read.
struct Batch {
    /// Bytes of the frames handled.
    bytes: usize,
    /// Frames handled.
    frames: usize,
    /// Frames after which this batch ends (fixed at its first frame).
    split: usize,
    /// Whether early ends pay (a runtime with more than one worker, on more than one core).
    parallel: bool,
}

impl Batch {
    fn new() -> Self {
        Batch { bytes: 0, frames: 0, split: usize::MAX, parallel: runs_in_parallel() }
    }

    /// Starts a new batch.
    fn reset(&mut self) {
        self.bytes = 0;
        self.frames = 0;
    }

    /// Counts a handled frame of `len` bytes, with `buffered` bytes still in the read buffer;
    /// true when the batch should end now.
    fn handled(&mut self, len: usize, buffered: usize) -> bool {
        if self.frames == 0 && self.parallel {
            // Frames at hand, this one included, taken to be of this one's size.
            let at_hand = buffered / (len + dopy_transport::frame::HEADER_LEN) + 1;
            self.split = (at_hand / SPLIT_INTO).clamp(MIN_SPLIT, MAX_SPLIT);
        }
        self.bytes += len;
        self.frames += 1;
        let end = self.bytes >= BATCH_LIMIT || self.frames >= self.split;
        if end {
            self.reset();
        }
        end
    }
}

/// Whether the current runtime runs tasks in parallel: several workers, more than one core
/// for this process. Read once per connection (the cores once per process).
fn runs_in_parallel() -> bool {
    static CORES: std::sync::OnceLock<usize> = std::sync::OnceLock::new();
    let workers = tokio::runtime::Handle::try_current().map_or(1, |h| h.metrics().num_workers());
    workers > 1 && *CORES.get_or_init(|| std::thread::available_parallelism().map_or(1, |n| n.get())) > 1
}

async fn read_frames(shared: &Arc<Shared>, mut reader: FrameReader) {
    let max = shared.host.max_frame;
    let max_depth = shared.host.max_depth;
    // One wait for the end of the connection, polled by every iteration: creating it anew per
    // frame registers and unregisters a waiter under the token's lock each time.
    let closed = shared.ended.wait(&shared.ended.reader);
    tokio::pin!(closed);
    // The heartbeat and the idle timeout are checked here, on ticks, rather than by a task of
    // their own (which would cost every idle connection its memory).
    let mut watchdog = Watchdog::new(&shared.host);
    // Frames received so far: the watchdog's sign of life.
    let mut frames = 0u64;
    let mut runner = InlineBox { make: inline_call, spare: None };
    let mut batch = Batch::new();
    let reason = loop {
        // Here, where no frame is held (a frame held across this wait would be moved into the
        // reader's future on every frame).
        if shared.out.backlog() > shared.host.max_backlog {
            // The peer does not read what it is sent: read nothing more from it until it has,
            // and give up on it if it never does.
            shared.out.end_batch();
            let (bound, timeout) = (shared.host.max_backlog, shared.host.backlog_timeout);
            let drained = tokio::select! {
                drained = shared.out.drained(bound, timeout) => drained,
                _ = &mut closed => return,
            };
            if !drained {
                let reason = format!(
                    "the peer did not read: {} bytes were still queued for it after {timeout:?} over the limit \
                     of {bound} bytes",
                    shared.out.backlog()
                );
                shared.close_with(Message::Abort { reason: reason.clone() }, &reason);
                break reason;
            }
        }
        // Biased: while frames keep coming, only the reader is polled.
        let item = tokio::select! {
            biased;
            item = std::future::poll_fn(|cx| {
                // Nothing left in the read buffer: the batch ends before the socket is read
                // again, so that a lone call's reply does not wait for that read (on a
                // sequential call, an `EAGAIN` read) to be written.
                if reader.read_buffer().is_empty() {
                    batch.reset();
                    shared.out.end_batch();
                }
                let item = reader.poll_next_unpin(cx);
                if item.is_pending() {
                    // Every frame at hand is handled and the reader is about to wait: the
                    // frames it queued meanwhile (replies of inline calls) go out now, in one
                    // write, by the reader itself if the write path is idle (`outbox`).
                    batch.reset();
                    shared.out.end_batch();
                }
                item
            }) => item,
            _ = &mut closed => return,
            () = Watchdog::tick(&mut watchdog) => {
                if let Some(watchdog) = &mut watchdog {
                    watchdog.check(shared, frames);
                }
                continue;
            }
        };
        if matches!(item, Some(Ok(_))) {
            frames += 1;
        }
        match item {
            None => break "the peer closed the connection".to_owned(),
            Some(Err(e)) => match FrameError::from_read(e, max) {
                err @ FrameError::TooLarge { .. } => {
                    let reason = format!("protocol error: {err}");
                    shared.close_with(Message::Abort { reason: reason.clone() }, &reason);
                    break reason;
                }
                err => {
                    let source = std::error::Error::source(&err).map(|s| s.to_string()).unwrap_or_default();
                    break format!("{err}: {source}");
                }
            },
            Some(Ok(frame)) => {
                let frame = frame.freeze();
                // What the frame's handling sends joins the reader's batch: queued, without
                // waking the writer task, until the batch ends.
                let batching = shared.out.batch();
                // Typed payloads stay in the frame's buffer instead of being copied (small ones
                // get a copy if they are kept: see `Incoming`).
                // The peer's calls are what it sends unasked: their values are held to the
                // budget. A reply answers a call this side chose to make (a method returning a
                // long `Vec<u8>` to a dynamic caller is 24 times its size as values): not held.
                // A frame of at most `UNCHARGED` bytes cannot decode to more than the budget's
                // floor: small calls pay nothing for it.
                let budget = wire::budget_for(frame.len(), shared.host.max_expansion);
                let scope = (frame.first() == Some(&CALL_TAG) && frame.len() > UNCHARGED)
                    .then(|| wire::BudgetScope::new(budget));
                let (decoded, too_deep) = wire::with_max_depth(max_depth, || Incoming::decode(&frame));
                let over = scope.as_ref().is_some_and(wire::BudgetScope::exceeded);
                drop(scope);
                let abort = |reason: String| {
                    shared.close_with(Message::Abort { reason: reason.clone() }, &reason);
                    reason
                };
                let handled = match decoded {
                    Ok(Incoming::Call(call)) => {
                        shared.handle_call(call, &mut runner);
                        Ok(())
                    }
                    // An error here: the peer ended the connection.
                    Ok(Incoming::Other(msg)) => shared.handle(msg, &mut runner),
                    // One message too deep fails alone: the connection goes on.
                    Err(_) if too_deep => {
                        let why = format!(
                            "value nesting exceeds {} levels, the limit of node `{}`",
                            shared.host.max_depth, shared.host.name
                        );
                        shared.refuse_values(&frame, &why).map_err(abort)
                    }
                    Err(_) if over => {
                        let why = format!(
                            "dynamic values would take more than {budget} bytes decoded, {} times the frame's {} \
                             bytes (the limit of node `{}`)",
                            shared.host.max_expansion,
                            frame.len(),
                            shared.host.name
                        );
                        shared.refuse_values(&frame, &why).map_err(abort)
                    }
                    Err(e) => Err(abort(format!("protocol error: malformed frame ({e})"))),
                };
                drop(batching);
                // A peer that keeps sending never lets the reader wait: its replies go out at
                // least once per read buffer's worth of frames, and sooner if that overlaps
                // the two sides' work (`Batch`).
                if batch.handled(frame.len(), reader.read_buffer().len()) {
                    shared.out.end_batch();
                }
                if let Err(reason) = handled {
                    break reason;
                }
            }
        }
    };
    // The last batch's frames go out before the wait for the attachment below.
    shared.out.end_batch();
    let reason = match &shared.attachment {
        Some(a) => match a.on_close().await {
            Some(detail) => format!("{reason}; {detail}"),
            None => reason,
        },
        None => reason,
    };
    tracing::debug!(%reason, "connection closed");
    shared.finish(&reason);
}

/// Watches a connection's signs of life and use, for its reader: sends a `Ping` after
/// [`Heartbeat::interval`] of silence, closes the connection after [`Heartbeat::timeout`] of
/// silence (the peer is gone) or after [`Host::idle_timeout`] without use.
///
/// It wakes a few times per period and compares counters: the frames the reader received, the
/// calls made either way; the hot path reads no clock and takes no lock for it.
struct Watchdog {
    heartbeat: Option<Heartbeat>,
    idle_timeout: Option<Duration>,
    /// The time between checks.
    tick: Duration,
    ticks: tokio::time::Interval,
    /// The counters at the last check (`u64::MAX` before the first).
    received: u64,
    activity: u64,
    alive_at: Instant,
    used_at: Instant,
    pinged_at: Option<Instant>,
    ticked_at: Instant,
    /// Whether the last tick came late and was skipped.
    waited: bool,
}

impl Watchdog {
    /// The watchdog of a connection of `host`; `None` when it has neither heartbeat nor idle
    /// timeout.
    fn new(host: &Host) -> Option<Watchdog> {
        let (heartbeat, idle_timeout) = (host.heartbeat, host.idle_timeout);
        let periods = [heartbeat.map(|h| h.interval), heartbeat.map(|h| h.timeout), idle_timeout];
        let shortest = periods.into_iter().flatten().min()?;
        // A sign of life is noticed at most one tick late.
        let tick = (shortest / 4).max(Duration::from_millis(1));
        let mut ticks = tokio::time::interval(tick);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let now = Instant::now();
        Some(Watchdog {
            heartbeat,
            idle_timeout,
            tick,
            ticks,
            received: u64::MAX,
            activity: u64::MAX,
            alive_at: now,
            used_at: now,
            pinged_at: None,
            ticked_at: now,
            waited: false,
        })
    }

    /// Waits for the next check (for ever without a watchdog).
    async fn tick(watchdog: &mut Option<Watchdog>) {
        match watchdog {
            Some(w) => {
                w.ticks.tick().await;
            }
            None => std::future::pending().await,
        }
    }

    /// Checks the connection, `received` frames having arrived so far; closes it if the peer is
    /// gone or the connection idle.
    fn check(&mut self, shared: &Arc<Shared>, received: u64) {
        let now = Instant::now();
        if received != self.received {
            self.received = received;
            self.alive_at = now;
        }
        // A tick this late means this process did not run (suspended, starved): what arrived
        // meanwhile may still wait to be read, so decide nothing before the reader has had a
        // tick to catch up (once: a runtime always late must still notice a dead peer).
        let stalled = now.duration_since(self.ticked_at) > self.tick * 2 && !self.waited;
        self.ticked_at = now;
        self.waited = stalled;
        if stalled {
            return;
        }
        if let Some(Heartbeat { interval, timeout }) = self.heartbeat {
            let silent = now.duration_since(self.alive_at);
            if silent >= timeout {
                let reason =
                    format!("heartbeat timeout: nothing received from the peer for {silent:?} (limit {timeout:?})");
                tracing::info!(%reason, "peer gone");
                shared.close_with(Message::Abort { reason: reason.clone() }, &reason);
                return;
            }
            let since_ping = self.pinged_at.map_or(Duration::MAX, |at| now.duration_since(at));
            if silent >= interval && since_ping >= interval {
                self.pinged_at = Some(now);
                let nonce = shared.next_id.fetch_add(1, Ordering::Relaxed);
                if let Ok((frame, _)) = shared.encode::<Value>(Message::Ping { nonce }, Vec::new()) {
                    let _ = shared.send::<Value>(Out::Frame(frame));
                }
            }
        }
        if let Some(idle) = self.idle_timeout {
            let calls = shared.activity.load(Ordering::Relaxed);
            if calls != self.activity || !shared.is_idle() {
                self.activity = calls;
                self.used_at = now;
            } else if now.duration_since(self.used_at) >= idle {
                let reason = format!("idle timeout: no call and no reference for {idle:?}");
                tracing::debug!(%reason, "closing an idle connection");
                shared.close_with(Message::Goodbye, &reason);
            }
        }
    }
}

/// How long the writer may still spend on its last words (`Goodbye`/`Abort`, a flush) once the
/// connection has ended, before the stream is dropped regardless: a peer that stopped reading
/// must not keep the socket (and the task) for ever.
const LAST_WORDS: Duration = Duration::from_secs(1);

#[cfg(test)]
mod tests {
    use super::*;
    use crate::serve::dispatch::fixtures::Nothing;

    /// Frames handled, one by one, until the batch ends: how many it took.
    fn batch_length(batch: &mut Batch, frame: usize, mut buffered: usize) -> usize {
        for n in 1.. {
            buffered = buffered.saturating_sub(frame + dopy_transport::frame::HEADER_LEN);
            if batch.handled(frame, buffered) {
                return n;
            }
        }
        unreachable!()
    }

    #[test]
    fn a_parallel_reader_ends_its_batches_early_and_a_single_core_one_per_read() {
        let frame = 30;
        let read = |frames: usize| frames * (frame + dopy_transport::frame::HEADER_LEN);
        let mut parallel = Batch { bytes: 0, frames: 0, split: usize::MAX, parallel: true };
        // A quarter of the frames at hand, within the bounds; each batch sized when it begins.
        assert_eq!(batch_length(&mut parallel, frame, read(64)), 16);
        assert_eq!(batch_length(&mut parallel, frame, read(48)), 12);
        assert_eq!(batch_length(&mut parallel, frame, read(10)), MIN_SPLIT);
        assert_eq!(batch_length(&mut parallel, frame, read(10_000)), MAX_SPLIT);
        // Large frames: the byte limit comes first.
        assert_eq!(batch_length(&mut parallel, 16 * 1024, 1 << 20), 4);
        // On one core, only the byte limit ends a batch before the read buffer is empty.
        let mut single = Batch { bytes: 0, frames: 0, split: usize::MAX, parallel: false };
        assert_eq!(batch_length(&mut single, frame, read(10_000)), BATCH_LIMIT.div_ceil(frame));
        // A reset (the buffer ran empty) starts the count again.
        assert!(!parallel.handled(frame, read(63)));
        parallel.reset();
        assert_eq!(batch_length(&mut parallel, frame, read(64)), 16);
    }

    /// Records the chain seen by each of its polls and by its drop; pending at its first poll
    /// if it is to `wait`.
    struct Probe {
        seen: Arc<Mutex<Vec<Option<u64>>>>,
        wait: bool,
        polls: usize,
    }

    impl Future for Probe {
        type Output = Reply;

        fn poll(mut self: Pin<&mut Self>, _: &mut std::task::Context<'_>) -> std::task::Poll<Reply> {
            self.seen.lock().unwrap().push(crate::serve::chain::current());
            self.polls += 1;
            if self.wait && self.polls == 1 {
                return std::task::Poll::Pending;
            }
            std::task::Poll::Ready(Ok(Answer { payload: Payload::Dynamic(Value::Unit), refs: Vec::new() }))
        }
    }

    impl Drop for Probe {
        fn drop(&mut self) {
            self.seen.lock().unwrap().push(crate::serve::chain::current());
        }
    }

    /// An inline call runs in its chain whether it completes in the reader or has to wait (in a
    /// task, or cancelled there): every poll and its drop see the chain, nothing after it does,
    /// and the reader's box is kept only by the calls that completed at once.
    #[test]
    fn inline_calls_see_their_chain_whether_they_complete_at_once_or_wait() {
        let seen: Arc<Mutex<Vec<Option<u64>>>> = Arc::default();
        let probes = Arc::clone(&seen);
        let make = move |_: Arc<Entry>, inv: Invocation, _: Option<Ticket>| Probe {
            seen: Arc::clone(&probes),
            wait: inv.method() == "wait",
            polls: 0,
        };
        let mut runner = InlineBox { make, spare: None };
        let entry = Arc::new(Entry::new("probe", Nothing));
        let call = |method: &str| Invocation::new(method.to_owned(), Args::Positional(Vec::new()), false, Vec::new());
        let taken = |seen: &Mutex<Vec<Option<u64>>>| std::mem::take(&mut *seen.lock().unwrap());

        assert!(matches!(runner.run(entry.clone(), call("now"), None, 3, None), Ok(Ok(_))));
        assert!(runner.spare.is_some(), "the box is kept for the next call");
        assert_eq!(taken(&seen), [Some(3), Some(3)]);

        let Err(mut waiting) = runner.run(entry.clone(), call("wait"), None, 4, None) else { panic!("the call waits") };
        assert!(runner.spare.is_none(), "a call that waits takes its box along");
        assert_eq!(crate::serve::chain::current(), None);
        let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
        assert!(waiting.as_mut().poll(&mut cx).is_ready());
        drop(waiting);
        assert_eq!(taken(&seen), [Some(4), Some(4), Some(4)]);

        let Err(cancelled) = runner.run(entry.clone(), call("wait"), None, 5, None) else { panic!("the call waits") };
        drop(cancelled);
        assert_eq!(taken(&seen), [Some(5), Some(5)]);
        assert!(matches!(runner.run(entry, call("now"), None, 6, None), Ok(Ok(_))));
        assert_eq!(taken(&seen), [Some(6), Some(6)]);
        assert_eq!(crate::serve::chain::current(), None);
    }
}
