// Over 600 lines because the lock protocol described below and every function that takes
// part in it are read together (and model-checked: outbox/loom.rs).
//! The way out of a connection: one queue of frames, written to the link by the writer task,
//! or by the reader itself for the replies of the calls it serves inline (P12 in
//! `docs/perf-proposals.md`).
//!
//! Every frame is pushed onto one FIFO queue, under its lock; frames leave the queue only from
//! its front, and only into the link's [`FrameWriter`], by whoever holds the write half's lock.
//! So the bytes on the wire follow the order of the pushes whoever writes them, and nobody
//! ever writes around a frame taken earlier (taken frames that the link could not accept yet
//! stay in the write half, ahead of the queue, under the same lock).
//!
//! Who writes:
//!
//! - The writer task, woken by a push. It feeds everything queued, flushes once (pipelined
//!   frames share write syscalls) and waits again; it keeps the write half while the transport
//!   makes it wait (its waker is the one registered with the transport).
//! - The reader, for the frames it pushes while handling a frame (replies of inline calls,
//!   answers to pings): those are queued without waking the writer task (a batch). When the
//!   reader has handled every frame it had and is about to wait for input, it ends the batch:
//!   if the write half is idle (nothing fed and unflushed, the writer task not holding it, not
//!   woken for frames of its own) it feeds and flushes the queue itself, without waiting (a
//!   no-op waker; the transport's `Pending` is not waited for). Whatever it could not write is
//!   left where it is and the writer task is woken for it: only the writer task ever waits for
//!   the transport, and it registers its waker again on its next poll.
//! - A caller whose call is the only one awaiting a reply on the connection (a sequential
//!   call): it pushes its frame as a batch of its own and ends it at once, as the reader does
//!   (`Shared::send_small_now`). Every batch's pusher ends its batch after pushing, and an end
//!   writes (or wakes the writer task for) the whole queue, so the `deferred` flag they share
//!   is always cleared by someone who then writes what was deferred.
//!
//! The protocol is model-checked with loom (`outbox/loom.rs`): its synchronisation types come
//! from `outbox/sync.rs`, loom's under `RUSTFLAGS="--cfg dopy_loom"`.

use std::cell::Cell;
use std::collections::VecDeque;
use std::io;
use std::pin::Pin;
use std::sync::atomic::Ordering;
use std::sync::{Arc, TryLockError};
use std::task::{ready, Context, Poll, Waker};

use bytes::Bytes;
use dopy_transport::frame::{self, FrameBatch};
use dopy_transport::FrameWriter;
use futures_util::Sink;
use tokio::sync::oneshot;

use self::sync::{lock, AtomicBool, AtomicUsize, AtomicWaker, Mutex};
use super::Lifecycle;
use crate::codec::{Encoded, Small};

mod sync;

// The model check of the lock protocol, under `RUSTFLAGS="--cfg dopy_loom"` (see the module).
#[cfg(all(test, dopy_loom))]
mod loom;

/// An item of the connection's queue of frames.
pub(super) enum Out {
    /// A frame to send.
    Frame(Encoded),
    /// A frame to send, and who to tell once it is written (a oneway call).
    Acked(Encoded, oneshot::Sender<()>),
    /// A last frame (`Goodbye` or `Abort`): send it, then close the stream.
    Last(Encoded),
    /// Small frames written in place, one after the other (see [`Outbox::push_small`]).
    Framed(FrameBatch),
}

impl Out {
    /// The bytes this item holds, counted in the outbox's backlog.
    fn len(&self) -> usize {
        match self {
            Out::Frame(f) | Out::Acked(f, _) | Out::Last(f) => f.len(),
            Out::Framed(frames) => frames.len(),
        }
    }
}

/// Why [`Outbox::push_small`] queued nothing.
#[derive(Debug)]
pub(super) enum Unpushed {
    /// The writer task has ended.
    Closed,
    /// The message could not be written.
    Encode(postcard::Error),
}

/// A run of small frames ([`Out::Framed`]) takes no more than this: the next frame starts a
/// new one, so that a writer that cannot keep up does not hold one ever-growing buffer.
const RUN_MAX: usize = 64 * 1024;

/// The capacity a run's buffer starts with.
const RUN_START: usize = 256;

/// A run's buffer is kept for the next run when its capacity is at most this.
const SPARE_MAX: usize = 16 * 1024;

sync::thread_local! {
    /// The address of the [`Outbox`] whose reader is handling a frame on this thread, or 0:
    /// frames that reader pushes go into its batch. Set only around synchronous handling (no
    /// await in between), so no other task's push on this thread can see it.
    static BATCHING: Cell<usize> = const { Cell::new(0) };
}

/// The connection's queue of outgoing frames and the link's write half (see the module docs).
pub(super) struct Outbox {
    /// Frames not yet taken by a writer, in the order they were pushed: the order on the wire.
    queue: Mutex<Queue>,
    /// The link's write half; taken by whoever writes (the writer task, or the reader at the
    /// end of a batch), only within a poll, never across an await. Lock order: `half`, then
    /// `queue` (a push takes `queue` alone).
    half: Mutex<Half>,
    /// The writer task.
    writer: AtomicWaker,
    /// Set when the writer task has been woken for what is queued and has not taken the queue
    /// since: its next poll takes everything, so pushes need not wake it again, and the reader
    /// leaves its batch to it.
    woken: AtomicBool,
    /// Whether the reader pushed frames into its batch (without waking the writer task) since
    /// it last ended one. Read and written by the reader only.
    deferred: AtomicBool,
    /// Bytes pushed and not yet fed into the link: what a peer that does not read makes this
    /// side hold. The reader stops reading the peer's frames while it is over the node's bound
    /// (see [`Outbox::drained`]).
    backlog: AtomicUsize,
    /// Set while the reader waits for the backlog to drain: the writer then tells it, through
    /// `drained`, each time it has fed frames (no lock on the common path).
    stalled: AtomicBool,
    /// Where the stalled reader waits.
    drained: tokio::sync::Notify,
}

/// The queue proper.
#[derive(Default)]
struct Queue {
    items: VecDeque<Out>,
    /// The writer task has ended: nothing more is taken (a push fails).
    closed: bool,
    /// An empty buffer for the next run of small frames, given back by the writer.
    spare: Option<FrameBatch>,
}

/// The link's write half and the frames on their way into it.
struct Half {
    /// `None` once the writer task has ended: the stream is dropped then (a peer that stopped
    /// reading must not keep the socket open).
    sink: Option<FrameWriter>,
    /// Frames taken from the queue (all of it at once, under its lock) and not fed yet, because
    /// the sink was full: they come before anything still queued.
    staged: VecDeque<Out>,
    /// Who to tell once the frames fed so far are flushed.
    acks: Vec<oneshot::Sender<()>>,
    /// Frames were fed and not flushed yet.
    dirty: bool,
    /// A write failed (in the reader): the writer task ends as if it had failed itself.
    failed: bool,
    /// The writer task is closing the stream (a last frame was fed, the connection ended or a
    /// write failed); nothing more is fed.
    closing: bool,
    /// The buffer of the last run of small frames fed, emptied, to give back to the queue.
    spare: Option<FrameBatch>,
}

impl Half {
    /// Feeds staged and queued frames into the sink, in order, while it takes them without
    /// waiting. A last frame is fed when `take_last` (and feeding stops after it), else left
    /// first in line. Ready with whether a last frame was reached.
    fn feed(
        &mut self,
        queue: &Mutex<Queue>,
        woken: &AtomicBool,
        backlog: &AtomicUsize,
        cx: &mut Context<'_>,
        take_last: bool,
    ) -> Poll<io::Result<bool>> {
        let Half { sink, staged, acks, dirty, spare, .. } = self;
        let Some(sink) = sink.as_mut() else { return Poll::Ready(Err(io::ErrorKind::BrokenPipe.into())) };
        loop {
            if staged.is_empty() {
                // Cleared before the queue is taken: a push after this wakes the writer again.
                woken.store(false, Ordering::SeqCst);
                let mut q = lock(queue);
                if q.spare.is_none() {
                    q.spare = spare.take();
                }
                if q.items.is_empty() {
                    return Poll::Ready(Ok(false));
                }
                // `staged` is empty: the queue keeps its buffer's capacity for the next pushes.
                std::mem::swap(&mut q.items, staged);
            }
            while let Some(next) = staged.front() {
                let last = matches!(next, Out::Last(_));
                if last && !take_last {
                    return Poll::Ready(Ok(true));
                }
                // Pending (the sink holds 64 KiB and the transport takes no more): the frame
                // stays first in line.
                ready!(Sink::<Bytes>::poll_ready(Pin::new(&mut *sink), cx))?;
                *dirty = true;
                backlog.fetch_sub(next.len(), Ordering::Relaxed);
                let frame = match staged.pop_front() {
                    Some(Out::Frame(f) | Out::Last(f)) => f,
                    Some(Out::Acked(f, ack)) => {
                        acks.push(ack);
                        f
                    }
                    Some(Out::Framed(mut frames)) => {
                        sink.start_send_batch(&frames);
                        if frames.capacity() <= SPARE_MAX {
                            frames.clear();
                            *spare = Some(frames);
                        }
                        continue;
                    }
                    None => unreachable!("the front was just seen"),
                };
                match frame {
                    Encoded::Whole(frame) => Pin::new(&mut *sink).start_send(frame)?,
                    Encoded::Parts(parts) => Pin::new(&mut *sink).start_send(parts)?,
                }
                if last {
                    return Poll::Ready(Ok(true));
                }
            }
        }
    }

    /// Flushes what was fed, then tells the oneway callers whose frames went out.
    fn flush(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let Some(sink) = self.sink.as_mut() else { return Poll::Ready(Err(io::ErrorKind::BrokenPipe.into())) };
        if self.dirty {
            ready!(Sink::<Bytes>::poll_flush(Pin::new(sink), cx))?;
            self.dirty = false;
        }
        for ack in self.acks.drain(..) {
            let _ = ack.send(());
        }
        Poll::Ready(Ok(()))
    }

    /// The reader's attempt at writing the queue (see [`Outbox::end_batch`]); true when
    /// something is left for the writer task.
    fn write_now(&mut self, queue: &Mutex<Queue>, woken: &AtomicBool, backlog: &AtomicUsize) -> bool {
        // Only onto an idle write path: with frames fed and unflushed (or staged), the writer
        // task is waiting for the transport, and a poll here would replace its waker there.
        if self.sink.is_none() || self.dirty || self.failed || self.closing || !self.staged.is_empty() {
            return true;
        }
        let mut cx = Context::from_waker(Waker::noop());
        let last = match self.feed(queue, woken, backlog, &mut cx, false) {
            Poll::Ready(Ok(last)) => last,
            Poll::Ready(Err(_)) => {
                self.failed = true;
                return true;
            }
            Poll::Pending => return true,
        };
        match self.flush(&mut cx) {
            // A last frame (and what follows it) is the writer task's.
            Poll::Ready(Ok(())) => last,
            Poll::Ready(Err(_)) => {
                self.failed = true;
                true
            }
            Poll::Pending => true,
        }
    }
}

impl Outbox {
    /// The outbox of a link's write half.
    pub(super) fn new(sink: FrameWriter) -> Arc<Outbox> {
        Arc::new(Outbox {
            queue: Mutex::new(Queue::default()),
            half: Mutex::new(Half {
                sink: Some(sink),
                staged: VecDeque::new(),
                acks: Vec::new(),
                dirty: false,
                failed: false,
                closing: false,
                spare: None,
            }),
            writer: AtomicWaker::new(),
            woken: AtomicBool::new(false),
            deferred: AtomicBool::new(false),
            backlog: AtomicUsize::new(0),
            stalled: AtomicBool::new(false),
            drained: tokio::sync::Notify::new(),
        })
    }

    /// Bytes queued and not yet taken by the link.
    pub(super) fn backlog(&self) -> usize {
        self.backlog.load(Ordering::Relaxed)
    }

    /// Waits until the backlog is at most `bound` bytes; false if it still is not after
    /// `timeout` (the peer does not read).
    pub(super) async fn drained(&self, bound: usize, timeout: std::time::Duration) -> bool {
        let wait = async {
            loop {
                let notified = self.drained.notified();
                tokio::pin!(notified);
                notified.as_mut().enable();
                self.stalled.store(true, Ordering::SeqCst);
                if self.backlog() <= bound {
                    return;
                }
                notified.await;
            }
        };
        let ok = tokio::time::timeout(timeout, wait).await.is_ok();
        self.stalled.store(false, Ordering::SeqCst);
        ok
    }

    /// Tells a stalled reader that frames were taken by the link.
    fn fed(&self) {
        if self.stalled.load(Ordering::SeqCst) {
            self.drained.notify_waiters();
        }
    }

    /// Queues `out` to be sent after everything queued before it. Wakes the writer task, unless
    /// the reader pushes it while handling a frame (see [`Outbox::batch`]): then it waits for
    /// the end of the reader's batch. A last frame always wakes the writer task.
    ///
    /// # Errors
    ///
    /// Gives `out` back when the writer task has ended.
    pub(super) fn push(&self, out: Out) -> Result<(), Out> {
        let batched = !matches!(out, Out::Last(_)) && BATCHING.with(Cell::get) == std::ptr::from_ref(self).addr();
        {
            let mut q = lock(&self.queue);
            if q.closed {
                drop(q);
                return Err(out);
            }
            self.backlog.fetch_add(out.len(), Ordering::Relaxed);
            q.items.push_back(out);
        }
        if batched {
            self.deferred.store(true, Ordering::Relaxed);
        } else {
            self.wake();
        }
        Ok(())
    }

    /// Queues the small message `msg` (of `len` bytes) as [`push`](Outbox::push) queues a frame, written in place
    /// into a [`FrameBatch`]: consecutive small frames share one buffer ([`Out::Framed`]),
    /// which the writer copies into the link's write buffer at once, and which comes back empty
    /// for the next ones. No buffer of its own per frame, no queue item per frame.
    ///
    /// The caller has checked its size against the largest frame allowed.
    ///
    /// # Errors
    ///
    /// When the writer task has ended, or the message could not be written (dynamic arguments
    /// nested too deep): then nothing of it is left in the queue.
    pub(super) fn push_small(&self, msg: &Small<'_>, len: usize) -> Result<(), Unpushed> {
        debug_assert_eq!(len, msg.len());
        let batched = BATCHING.with(Cell::get) == std::ptr::from_ref(self).addr();
        {
            let mut q = lock(&self.queue);
            if q.closed {
                return Err(Unpushed::Closed);
            }
            let q = &mut *q;
            let whole = frame::HEADER_LEN + len;
            let run = match q.items.back_mut() {
                Some(Out::Framed(run)) if run.len() + whole <= RUN_MAX => run,
                _ => {
                    let mut run = q.spare.take().unwrap_or_default();
                    run.reserve(whole.max(RUN_START));
                    q.items.push_back(Out::Framed(run));
                    let Some(Out::Framed(run)) = q.items.back_mut() else { unreachable!("just pushed") };
                    run
                }
            };
            let start = run.len();
            if let Err(e) = run.push_with(|out| msg.write(out)) {
                if run.is_empty() {
                    if let Some(Out::Framed(run)) = q.items.pop_back() {
                        q.spare = Some(run);
                    }
                }
                return Err(Unpushed::Encode(e));
            }
            debug_assert_eq!(run.len() - start, whole, "the size computed beforehand");
            self.backlog.fetch_add(whole, Ordering::Relaxed);
        }
        if batched {
            self.deferred.store(true, Ordering::Relaxed);
        } else {
            self.wake();
        }
        Ok(())
    }

    /// Wakes the writer task for what is queued, unless it is already woken for it.
    fn wake(&self) {
        if !self.woken.swap(true, Ordering::SeqCst) {
            self.writer.wake();
        }
    }

    /// Marks the current thread as this outbox's reader handling a frame, until the guard is
    /// dropped: what it pushes meanwhile joins its batch (see [`Outbox::end_batch`]).
    pub(super) fn batch(&self) -> Batching {
        Batching { previous: BATCHING.with(|b| b.replace(std::ptr::from_ref(self).addr())) }
    }

    /// Ends the reader's batch (the reader is about to wait for input, or has handled a lot):
    /// writes the frames it queued since the last end, if that can be done at once (see the
    /// module docs), else wakes the writer task for them.
    pub(super) fn end_batch(&self) {
        if !self.deferred.load(Ordering::Relaxed) {
            return;
        }
        self.deferred.store(false, Ordering::Relaxed);
        // Woken for frames queued by other tasks (before or among the batch's): the writer task
        // takes the whole queue on its next poll, the batch's frames with it, in one write.
        if self.woken.load(Ordering::SeqCst) {
            return;
        }
        let left = match self.half.try_lock() {
            Ok(mut half) => half.write_now(&self.queue, &self.woken, &self.backlog),
            Err(TryLockError::Poisoned(p)) => p.into_inner().write_now(&self.queue, &self.woken, &self.backlog),
            // The writer task is writing right now (it may have taken the batch or not yet).
            Err(TryLockError::WouldBlock) => true,
        };
        if left {
            self.wake();
        }
    }

    /// The writer task's work, polled until the stream is closed: feeds everything queued,
    /// flushes once per batch, and waits for more (or for the end of the connection, after
    /// which it sends what is queued and closes the stream).
    fn poll_write(&self, cx: &mut Context<'_>, ended: &Lifecycle) -> Poll<()> {
        let mut guard = lock(&self.half);
        let half = &mut *guard;
        loop {
            if half.failed && !half.closing {
                // As before: a write failed; still say goodbye if a last frame is queued.
                let last = {
                    let mut q = lock(&self.queue);
                    let mut rest = std::mem::take(&mut half.staged);
                    rest.append(&mut q.items);
                    rest
                };
                half.staged.extend(last.into_iter().find(|out| matches!(out, Out::Last(_))));
                half.closing = true;
            }
            if half.closing {
                if let (Some(sink), Some(Out::Last(_))) = (half.sink.as_mut(), half.staged.front()) {
                    let ready = ready!(Sink::<Bytes>::poll_ready(Pin::new(&mut *sink), cx));
                    if let (Ok(()), Some(Out::Last(Encoded::Whole(frame)))) = (ready, half.staged.pop_front()) {
                        let _ = Pin::new(&mut *sink).start_send(frame);
                    }
                }
                half.staged.clear();
                if let Some(sink) = half.sink.as_mut() {
                    let _ = ready!(Sink::<Bytes>::poll_close(Pin::new(sink), cx));
                }
                return Poll::Ready(());
            }
            let fed = half.feed(&self.queue, &self.woken, &self.backlog, cx, true);
            self.fed();
            let last = match ready!(fed) {
                Ok(last) => last,
                Err(_) => {
                    half.failed = true;
                    continue;
                }
            };
            if ready!(half.flush(cx)).is_err() {
                half.failed = true;
                continue;
            }
            if last {
                // Closed after its last frame; frames queued after it are not sent.
                half.staged.clear();
                half.closing = true;
                continue;
            }
            // Everything is out: wait for more, or for the end. Registered before looking
            // again, so that a push or the end in between is not missed.
            self.writer.register(cx.waker());
            ended.writer.register(cx.waker());
            // Not woken any more, from here on: a push after this wakes the task again, and
            // one before it is in the queue, seen below. The flag may have been set since the
            // last feed by a wake that found no waker registered (one that had taken the
            // previous registration already): left set, it would keep every later push and
            // end of batch from waking this task, and nothing would be written again.
            self.woken.store(false, Ordering::SeqCst);
            if !lock(&self.queue).items.is_empty() {
                continue;
            }
            if ended.is_ended() {
                half.closing = true;
                continue;
            }
            return Poll::Pending;
        }
    }
}

/// A reader handling a frame (see [`Outbox::batch`]).
pub(super) struct Batching {
    previous: usize,
}

impl Drop for Batching {
    fn drop(&mut self) {
        BATCHING.with(|b| b.set(self.previous));
    }
}

/// The writer task's hold on the outbox: when the task ends (or is dropped, abandoned after
/// [`LAST_WORDS`](super::LAST_WORDS), or aborted), the stream is dropped and nothing more can be
/// queued; the frames still queued are dropped, their oneway callers told (`Disconnected`), and
/// the buffers kept for runs of small frames are freed.
pub(super) struct WriterTask(pub(super) Arc<Outbox>);

impl Drop for WriterTask {
    fn drop(&mut self) {
        let (sink, staged, acks, spare) = {
            let mut half = lock(&self.0.half);
            half.closing = true;
            (half.sink.take(), std::mem::take(&mut half.staged), std::mem::take(&mut half.acks), half.spare.take())
        };
        let (queued, spare_too) = {
            let mut q = lock(&self.0.queue);
            q.closed = true;
            (std::mem::take(&mut q.items), q.spare.take())
        };
        drop((sink, staged, acks, spare, queued, spare_too));
        // Nothing is held for the peer any more: a reader waiting for the backlog goes on.
        self.0.backlog.store(0, Ordering::Relaxed);
        self.0.drained.notify_waiters();
    }
}

/// The writer task of a connection: writes until the stream is closed, or gives up
/// [`LAST_WORDS`](super::LAST_WORDS) after the end of the connection.
pub(super) async fn write_loop(task: WriterTask, ended: Arc<Lifecycle>) {
    let outbox = &task.0;
    let work = std::future::poll_fn(|cx| outbox.poll_write(cx, &ended));
    tokio::pin!(work);
    let abandon = async {
        ended.wait(&ended.writer).await;
        tokio::time::sleep(super::LAST_WORDS).await;
    };
    tokio::select! {
        () = &mut work => {}
        () = abandon => tracing::debug!("the transport took nothing for {:?} after the end; dropped", super::LAST_WORDS),
    }
}

#[cfg(test)]
mod tests {
    use tokio::io::AsyncReadExt;

    use super::*;
    use crate::codec::{Args, CallRef, Message, Target};
    use crate::value::{wire, Value};

    /// Reads one frame's payload.
    async fn next_frame(from: &mut tokio::io::DuplexStream) -> Vec<u8> {
        let len = from.read_u32_le().await.expect("a length prefix") as usize;
        let mut payload = vec![0; len];
        from.read_exact(&mut payload).await.expect("the payload");
        payload
    }

    /// Small frames written in place keep their order among whole frames and acknowledged
    /// ones, across runs (a run ends at another item, or at `RUN_MAX` bytes), and each is the
    /// same bytes as the message's own encoding.
    #[tokio::test]
    async fn small_frames_keep_their_place_among_the_others() {
        let (near, mut far) = tokio::io::duplex(1 << 16);
        let outbox = Outbox::new(FrameWriter::new(Box::new(near), 1 << 20));
        let result = vec![7u8; 1000];
        let small = |id| Small::TypedReturn { id, result: &result };
        let whole = |id| Message::Pong { nonce: id }.encode().expect("a pong");
        let mut expected = Vec::new();
        let mut acks = Vec::new();
        let nested = (0..10).fold(Value::Int(1), |v, _| Value::Seq(vec![v]));
        let (target, args) = (Target::Name("x".into()), Args::Positional(vec![nested]));
        let call = CallRef {
            id: 1,
            target: &target,
            method: "m",
            refs: Vec::new(),
            args: &args,
            flags: 0,
            deadline: None,
            chain: 0,
        };
        let too_deep = call.small(64).expect("a small call");
        // More than `RUN_MAX` bytes of small frames in a row, then every kind in turn.
        for id in 0..100u64 {
            let out = match id % 10 {
                3 => Some(Out::Frame(Encoded::Whole(whole(id)))),
                7 => {
                    let (ack, written) = oneshot::channel();
                    acks.push(written);
                    Some(Out::Acked(Encoded::Whole(whole(id)), ack))
                }
                _ if id < 70 => None,
                _ => Some(Out::Frame(Encoded::Parts(vec![whole(id).slice(..1), whole(id).slice(1..)]))),
            };
            match out {
                Some(out) => {
                    expected.push(whole(id).to_vec());
                    assert!(outbox.push(out).is_ok());
                }
                None => {
                    expected.push(small(id).encode().unwrap().to_vec());
                    outbox.push_small(&small(id), small(id).len()).expect("the writer is running");
                }
            }
            // A message that fails to write leaves nothing behind: neither in a run it would
            // have joined (after id 1), nor as a run of its own (after id 3, a whole frame).
            if id == 1 || id == 3 {
                let failed = wire::with_max_depth(2, || outbox.push_small(&too_deep, too_deep.len())).0;
                assert!(matches!(failed, Err(Unpushed::Encode(_))), "{failed:?}");
            }
        }
        let ended = Arc::new(Lifecycle::default());
        let writer = tokio::spawn(write_loop(WriterTask(outbox.clone()), ended.clone()));
        for (i, frame) in expected.iter().enumerate() {
            assert_eq!(&next_frame(&mut far).await, frame, "frame {i}");
        }
        for written in acks {
            written.await.expect("an acknowledged frame is acknowledged once written");
        }
        // Pushed while the writer waits: written in the next batch, in a reused buffer.
        outbox.push_small(&small(1000), small(1000).len()).expect("the writer is running");
        assert_eq!(next_frame(&mut far).await, small(1000).encode().unwrap().to_vec());
        ended.end();
        writer.await.expect("the writer ends with the connection");
        assert!(
            outbox.push_small(&small(1001), small(1001).len()).is_err(),
            "nothing is queued after the writer ended"
        );
    }
}
