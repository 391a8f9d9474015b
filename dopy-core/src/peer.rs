//! [`Connection`]: one live connection to a peer, symmetric: either side may call the other.
//!
//! Each connection runs two tasks: a reader that decodes frames and routes them (replies to
//! the waiting caller, calls to the object table), and a writer that drains its queue and
//! flushes once per batch, so pipelined calls share write syscalls.

use std::collections::HashMap;
use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use bytes::Bytes;
use dopy_transport::{Attachment, FrameError, FrameReader, FrameWriter, Link, LinkInfo, LinkParts};
use futures_util::{SinkExt, StreamExt};
use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use crate::dispatch::{Dispatched, Invocation, Reply};
use crate::interface::METHODS;
use crate::message::{flags, Args, Call, Fault, FaultKind, Hop, Message, Outcome, Payload, Target};
use crate::panic::{self, CatchUnwind};
use crate::table::{Entry, ObjectTable};
use crate::value::Value;
use crate::Error;

/// What every connection of a node shares: the objects served, the node's name, limits.
#[derive(Debug)]
pub struct Host {
    /// The objects served.
    pub table: ObjectTable,
    /// The node's name, as it appears in error traces.
    pub name: String,
    /// Largest frame payload sent or accepted.
    pub max_frame: usize,
}

impl Host {
    /// Creates a host with an empty object table.
    pub fn new(name: impl Into<String>, max_frame: usize) -> Self {
        panic::install_hook();
        Host { table: ObjectTable::new(), name: name.into(), max_frame }
    }
}

/// An item of the writer's queue.
enum Out {
    /// A frame to send.
    Frame(Bytes),
    /// A last frame (`Goodbye` or `Abort`): send it, then close the stream.
    Last(Bytes),
}

/// A reply slot: the waiting caller gets the outcome, or why the connection ended.
type Slot = oneshot::Sender<Result<Outcome, String>>;

struct Shared {
    host: Arc<Host>,
    /// Kept alive as long as the connection (a child process, say); asked why the link ended.
    attachment: Option<Box<dyn Attachment>>,
    info: LinkInfo,
    /// How the caller names the other end (`tcp://127.0.0.1:9600`), for error call sites.
    endpoint: String,
    out: mpsc::UnboundedSender<Out>,
    next_id: AtomicU64,
    /// Calls waiting for a reply; `None` once the connection has ended, so that a call made
    /// after the end fails at once instead of waiting forever.
    pending: Mutex<Option<HashMap<u64, Slot>>>,
    /// Cancelled when the connection ends, for whatever reason.
    closed: CancellationToken,
    close_reason: Mutex<Option<String>>,
}

/// Closes an outgoing connection when the last user handle is dropped.
struct CloseOnDrop(Arc<Shared>);

impl Drop for CloseOnDrop {
    fn drop(&mut self) {
        self.0.close_with(Message::Goodbye, "closed locally");
    }
}

/// A handle to a live connection; cheap to clone.
///
/// A connection this side opened closes when the last handle (and every proxy using it) is
/// dropped; one the peer opened lives until the peer closes it or the node shuts down.
#[derive(Clone)]
pub struct Connection {
    shared: Arc<Shared>,
    _owner: Option<Arc<CloseOnDrop>>,
}

impl fmt::Debug for Connection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Connection").field("endpoint", &self.shared.endpoint).field("link", &self.shared.info).finish()
    }
}

/// A weak handle: does not keep the connection open.
#[derive(Clone, Debug)]
pub struct WeakConnection {
    owner: std::sync::Weak<CloseOnDrop>,
}

impl fmt::Debug for CloseOnDrop {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("CloseOnDrop")
    }
}

impl WeakConnection {
    /// The connection, if some handle still keeps it open and it has not ended.
    pub fn upgrade(&self) -> Option<Connection> {
        let owner = self.owner.upgrade()?;
        let conn = Connection { shared: owner.0.clone(), _owner: Some(owner) };
        (!conn.is_closed()).then_some(conn)
    }
}

impl Connection {
    /// A weak handle to this connection (for caches); `None` for connections the peer opened.
    pub fn downgrade(&self) -> Option<WeakConnection> {
        self._owner.as_ref().map(|o| WeakConnection { owner: Arc::downgrade(o) })
    }

    /// Starts serving a link: spawns its reader and writer tasks on the current tokio runtime.
    ///
    /// `owned` says whether dropping the last handle closes the connection (true for
    /// connections this side opened).
    pub fn start(link: Link, host: Arc<Host>, endpoint: String, owned: bool) -> Connection {
        let LinkParts { reader, writer, info, attachment } = link.into_parts();
        let (tx, rx) = mpsc::unbounded_channel();
        let shared = Arc::new(Shared {
            host,
            attachment,
            info,
            endpoint,
            out: tx,
            next_id: AtomicU64::new(1),
            pending: Mutex::new(Some(HashMap::new())),
            closed: CancellationToken::new(),
            close_reason: Mutex::new(None),
        });
        let span = tracing::debug_span!("dopy.connection", link = %shared.info);
        tracing::debug!(parent: &span, "connection open");
        tokio::spawn(write_loop(rx, writer, shared.closed.clone()).instrument(span.clone()));
        tokio::spawn(read_loop(shared.clone(), reader).instrument(span));
        let owner = owned.then(|| Arc::new(CloseOnDrop(shared.clone())));
        Connection { shared, _owner: owner }
    }

    /// How the other end was named when connecting (or its address, for accepted ones).
    pub fn endpoint(&self) -> &str {
        &self.shared.endpoint
    }

    /// What the transport knows about the two ends.
    pub fn info(&self) -> &LinkInfo {
        &self.shared.info
    }

    /// Whether the connection has ended.
    pub fn is_closed(&self) -> bool {
        self.shared.closed.is_cancelled()
    }

    /// Waits until the connection has ended.
    pub async fn closed(&self) {
        self.shared.closed.cancelled().await
    }

    /// Why the connection ended, once it has.
    pub fn close_reason(&self) -> Option<String> {
        self.shared.close_reason.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Closes the connection in an orderly way (`Goodbye`); calls in flight fail with
    /// [`Error::Disconnected`].
    pub fn close(&self) {
        self.shared.close_with(Message::Goodbye, "closed locally");
    }

    /// Sends a `Ping` and waits for the `Pong`: the round-trip time of the connection.
    ///
    /// # Errors
    ///
    /// [`Error::Disconnected`] if the connection ends first.
    pub async fn ping(&self) -> Result<std::time::Duration, Error> {
        let shared = &self.shared;
        let started = Instant::now();
        let nonce = shared.next_id.fetch_add(1, Ordering::Relaxed);
        let frame = shared.encode(&Message::Ping { nonce })?;
        let rx = shared.register(nonce)?;
        let guard = PendingGuard { shared, id: nonce };
        shared.send(Out::Frame(frame))?;
        let answer = rx.await;
        drop(guard);
        match answer {
            Ok(Ok(_)) => Ok(started.elapsed()),
            Ok(Err(reason)) => Err(Error::Disconnected { reason }),
            Err(_) => Err(shared.disconnected()),
        }
    }

    /// Sends a call and waits for its outcome.
    ///
    /// # Errors
    ///
    /// [`Error::Codec`] if the call exceeds the frame limit (nothing is sent; the connection
    /// stays usable), [`Error::Disconnected`] if the connection ends first.
    pub async fn call<E>(
        &self,
        target: Target,
        method: &str,
        args: Args,
        call_flags: u32,
    ) -> Result<Outcome, Error<E>> {
        let shared = &self.shared;
        let started = Instant::now();
        let id = shared.next_id.fetch_add(1, Ordering::Relaxed);
        let msg =
            Message::Call(Call { id, target, method: method.to_owned(), args, flags: call_flags, deadline: None });
        let frame = shared.encode(&msg)?;
        if call_flags & flags::ONEWAY != 0 {
            shared.send::<E>(Out::Frame(frame))?;
            return Ok(Outcome::Ok(Payload::Dynamic(Value::Unit)));
        }
        let rx = shared.register(id)?;
        // If this future is dropped before the reply arrives, forget the slot.
        let guard = PendingGuard { shared, id };
        shared.send(Out::Frame(frame))?;
        let outcome = rx.await;
        std::mem::forget(guard);
        tracing::debug!(
            target: "dopy::call",
            endpoint = %shared.endpoint,
            method,
            id,
            elapsed_us = started.elapsed().as_micros() as u64,
            ok = matches!(outcome, Ok(Ok(Outcome::Ok(_)))),
            "call returned"
        );
        match outcome {
            Ok(Ok(outcome)) => Ok(outcome),
            Ok(Err(reason)) => Err(Error::Disconnected { reason }),
            Err(_) => Err(shared.disconnected()),
        }
    }
}

struct PendingGuard<'a> {
    shared: &'a Shared,
    id: u64,
}

impl Drop for PendingGuard<'_> {
    fn drop(&mut self) {
        if let Some(map) = self.shared.pending.lock().unwrap_or_else(|e| e.into_inner()).as_mut() {
            map.remove(&self.id);
        }
    }
}

impl Shared {
    /// Creates the reply slot of call (or ping) `id`.
    fn register<E>(&self, id: u64) -> Result<oneshot::Receiver<Result<Outcome, String>>, Error<E>> {
        let (tx, rx) = oneshot::channel();
        let mut pending = self.pending.lock().unwrap_or_else(|e| e.into_inner());
        let Some(map) = pending.as_mut() else {
            return Err(self.disconnected());
        };
        map.insert(id, tx);
        Ok(rx)
    }

    fn encode<E>(&self, msg: &Message) -> Result<Bytes, Error<E>> {
        let frame = msg.encode().map_err(|e| Error::Codec { reason: e.to_string() })?;
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
        if self.closed.is_cancelled() {
            return Err(self.disconnected());
        }
        self.out.send(out).map_err(|_| self.disconnected())
    }

    fn disconnected<E>(&self) -> Error<E> {
        let reason = self.close_reason.lock().unwrap_or_else(|e| e.into_inner()).clone();
        Error::Disconnected { reason: reason.unwrap_or_else(|| "the connection is closed".into()) }
    }

    /// Ends the connection: records why, fails pending calls, and lets the writer finish with
    /// `last` (a `Goodbye` or an `Abort`).
    fn close_with(&self, last: Message, reason: &str) {
        {
            let mut r = self.close_reason.lock().unwrap_or_else(|e| e.into_inner());
            if r.is_some() {
                return;
            }
            *r = Some(reason.to_owned());
        }
        if let Ok(frame) = last.encode() {
            let _ = self.out.send(Out::Last(frame));
        }
        self.finish(reason);
    }

    /// Fails every pending call and wakes everything waiting on the connection.
    fn finish(&self, reason: &str) {
        {
            let mut r = self.close_reason.lock().unwrap_or_else(|e| e.into_inner());
            if r.is_none() {
                *r = Some(reason.to_owned());
            }
        }
        let pending = self.pending.lock().unwrap_or_else(|e| e.into_inner()).take();
        for (_, slot) in pending.into_iter().flatten() {
            let _ = slot.send(Err(reason.to_owned()));
        }
        self.closed.cancel();
    }

    fn reply(&self, id: u64, outcome: Outcome) {
        let msg = Message::Return { id, outcome };
        let frame = match self.encode::<Value>(&msg) {
            Ok(f) => f,
            // The result itself cannot be sent (too large): tell the caller why instead.
            Err(e) => {
                let fault = Fault::new(FaultKind::Protocol, format!("the reply could not be sent: {e}"));
                match self.encode::<()>(&Message::Return { id, outcome: Outcome::Err(Box::new(fault)) }) {
                    Ok(f) => f,
                    Err(_) => return,
                }
            }
        };
        let _ = self.send::<()>(Out::Frame(frame));
    }

    fn handle(self: &Arc<Self>, msg: Message) -> Result<(), String> {
        match msg {
            Message::Call(call) => self.handle_call(call),
            Message::Pong { nonce } => {
                let slot =
                    self.pending.lock().unwrap_or_else(|e| e.into_inner()).as_mut().and_then(|m| m.remove(&nonce));
                if let Some(slot) = slot {
                    let _ = slot.send(Ok(Outcome::Ok(Payload::Dynamic(Value::Unit))));
                }
            }
            Message::Return { id, outcome } => {
                let slot = self.pending.lock().unwrap_or_else(|e| e.into_inner()).as_mut().and_then(|m| m.remove(&id));
                match slot {
                    Some(slot) => {
                        let _ = slot.send(Ok(outcome));
                    }
                    None => tracing::debug!(id, "reply to a call nobody waits for (cancelled or late)"),
                }
            }
            Message::Ping { nonce } => {
                if let Ok(frame) = self.encode::<()>(&Message::Pong { nonce }) {
                    let _ = self.send::<()>(Out::Frame(frame));
                }
            }
            Message::Cancel { .. } | Message::Release { .. } => {}
            Message::Goodbye => return Err("the peer said goodbye".into()),
            Message::Abort { reason } => return Err(format!("the peer aborted the connection: {reason}")),
        }
        Ok(())
    }

    fn handle_call(self: &Arc<Self>, call: Call) {
        let Call { id, target, method, args, flags: call_flags, .. } = call;
        let oneway = call_flags & flags::ONEWAY != 0;
        let dynamic = call_flags & flags::DYNAMIC_RESULT != 0;
        let Some(entry) = self.host.table.resolve(&target) else {
            tracing::debug!(%target, %method, "call for an unknown object");
            if !oneway {
                let fault =
                    Fault::new(FaultKind::NoSuchObject, format!("no object `{target}` on node `{}`", self.host.name));
                self.reply(id, Outcome::Err(Box::new(self.with_hop(fault, &target.to_string(), &method))));
            }
            return;
        };
        let inv = Invocation::new(method, args, dynamic);
        if inv.method() == METHODS {
            if !oneway {
                let outcome = match inv.responder().encode(entry.interface()) {
                    Ok(p) => Outcome::Ok(p),
                    Err(f) => Outcome::Err(f),
                };
                self.reply(id, outcome);
            }
            return;
        }
        let shared = self.clone();
        let span = tracing::debug_span!("dopy.serve", object = entry.label(), method = inv.method(), id);
        tokio::spawn(
            async move {
                let started = Instant::now();
                let method = inv.method().to_owned();
                let reply = run(&entry, inv).await;
                let ok = reply.is_ok();
                tracing::debug!(elapsed_us = started.elapsed().as_micros() as u64, ok, "call served");
                if !oneway {
                    let outcome = match reply {
                        Ok(p) => Outcome::Ok(p),
                        Err(f) => Outcome::Err(Box::new(shared.with_hop(*f, entry.label(), &method))),
                    };
                    shared.reply(id, outcome);
                }
            }
            .instrument(span),
        );
    }

    fn with_hop(&self, mut fault: Fault, object: &str, method: &str) -> Fault {
        fault.hops.push(Hop { node: self.host.name.clone(), object: object.to_owned(), method: method.to_owned() });
        fault
    }
}

/// Runs one call on an object: shared access first, exclusive if the method needs it; panics
/// become faults.
async fn run(entry: &Entry, inv: Invocation) -> Reply {
    let object = entry.object();
    let guard = object.clone().read_owned().await;
    let inv = match panic::catch(|| guard.dispatch(inv)) {
        Err(fault) => return Err(fault),
        Ok(Dispatched::Ready(reply)) => return reply,
        Ok(Dispatched::Pending(fut)) => return CatchUnwind::new(fut).await.unwrap_or_else(Err),
        Ok(Dispatched::NotFound(inv)) => return Err(no_such_method(entry, &inv)),
        Ok(Dispatched::RequiresMut(inv)) => inv,
    };
    drop(guard);
    let mut guard = object.clone().write_owned().await;
    let reply = match panic::catch(|| guard.dispatch_mut(inv)) {
        Err(fault) => Err(fault),
        Ok(Dispatched::Ready(reply)) => reply,
        Ok(Dispatched::Pending(fut)) => CatchUnwind::new(fut).await.unwrap_or_else(Err),
        Ok(Dispatched::NotFound(inv) | Dispatched::RequiresMut(inv)) => Err(no_such_method(entry, &inv)),
    };
    reply
}

fn no_such_method(entry: &Entry, inv: &Invocation) -> Box<Fault> {
    Box::new(Fault::new(
        FaultKind::NoSuchMethod,
        format!("`{}` ({}) has no remote method `{}`", entry.label(), entry.interface().name, inv.method()),
    ))
}

async fn read_loop(shared: Arc<Shared>, mut reader: FrameReader) {
    let max = shared.host.max_frame;
    let reason = loop {
        let item = tokio::select! {
            item = reader.next() => item,
            _ = shared.closed.cancelled() => return,
        };
        match item {
            None => break "the peer closed the connection".to_owned(),
            Some(Err(e)) => match FrameError::from_read(e, max) {
                err @ FrameError::TooLarge { .. } => {
                    let reason = format!("protocol error: {err}");
                    shared.close_with(Message::Abort { reason: reason.clone() }, &reason);
                    break reason;
                }
                err => {
                    break format!(
                        "{err}: {}",
                        std::error::Error::source(&err).map(|s| s.to_string()).unwrap_or_default()
                    )
                }
            },
            Some(Ok(frame)) => match Message::decode(&frame) {
                Ok(msg) => {
                    if let Err(reason) = shared.handle(msg) {
                        break reason;
                    }
                }
                Err(e) => {
                    let reason = format!("protocol error: malformed frame ({e})");
                    shared.close_with(Message::Abort { reason: reason.clone() }, &reason);
                    break reason;
                }
            },
        }
    };
    let reason = match &shared.attachment {
        Some(a) => match a.on_close().await {
            Some(detail) => format!("{reason} ({detail})"),
            None => reason,
        },
        None => reason,
    };
    tracing::debug!(%reason, "connection closed");
    shared.finish(&reason);
}

async fn write_loop(mut rx: mpsc::UnboundedReceiver<Out>, mut writer: FrameWriter, closed: CancellationToken) {
    'outer: loop {
        let first = tokio::select! {
            biased;
            out = rx.recv() => out,
            _ = closed.cancelled() => None,
        };
        let Some(mut out) = first else { break };
        // Batch: queue everything already waiting, then flush once.
        loop {
            let (frame, last) = match out {
                Out::Frame(f) => (f, false),
                Out::Last(f) => (f, true),
            };
            if writer.feed(frame).await.is_err() {
                break 'outer;
            }
            if last {
                let _ = SinkExt::<Bytes>::flush(&mut writer).await;
                break 'outer;
            }
            match rx.try_recv() {
                Ok(next) => out = next,
                Err(_) => break,
            }
        }
        if SinkExt::<Bytes>::flush(&mut writer).await.is_err() {
            break;
        }
    }
    // Send a pending Goodbye/Abort if the loop ended on cancellation.
    while let Ok(out) = rx.try_recv() {
        if let Out::Last(frame) = out {
            let _ = writer.send(frame).await;
            break;
        }
    }
    let _ = SinkExt::<Bytes>::close(&mut writer).await;
}
