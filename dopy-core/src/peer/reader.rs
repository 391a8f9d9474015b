//! The reader task: reads frames in batches, decodes and routes them (replies to waiting
//! callers, calls to be served), charges large calls' values against a decode budget, and ends
//! the connection when the link does.

use super::*;
use crate::codec::session::{BudgetScope, DepthLimit};

/// The first byte of a `Call` frame: its variant index (PROTOCOL.md, section 3).
pub(super) const CALL_TAG: u8 = 0;

/// Frames up to this size decode without a budget: a wire byte becomes at most 48 bytes of
/// values, 96 while a vector doubles, so 8 KiB stays under the budget's 1 MiB floor.
pub(super) const UNCHARGED: usize = 8 * 1024;

pub(super) async fn read_loop(shared: Arc<Shared>, reader: FrameReader, mut writer: tokio::task::JoinHandle<()>) {
    read_frames(&shared, reader).await;
    // The writer sends the last frame (`Goodbye`, `Abort`) and closes the stream, giving up
    // after `LAST_WORDS` on a peer that stopped reading (a paused process); this bound is the
    // backstop for a writer that does not get to its own.
    if tokio::time::timeout(2 * LAST_WORDS, &mut writer).await.is_err() {
        tracing::debug!("the peer does not take the last frame; dropping the stream");
        writer.abort();
    }
}

/// Bytes of incoming frames after which the reader ends its batch of replies even if more
/// frames are at hand: the reader's buffer (`Link::establish`), what one read brings at most.
pub(super) const BATCH_LIMIT: usize = 64 * 1024;

/// The fewest frames after which a reader on a parallel runtime ends its batch early (see
/// [`Batch`]): below this, the extra writes cost more than the overlap gains.
pub(super) const MIN_SPLIT: usize = 8;
/// The most frames an early-ended batch holds.
pub(super) const MAX_SPLIT: usize = 64;
/// Into how many batches a reader on a parallel runtime splits the frames at hand.
pub(super) const SPLIT_INTO: usize = 4;

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
pub(super) struct Batch {
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
pub(super) fn runs_in_parallel() -> bool {
    static CORES: std::sync::OnceLock<usize> = std::sync::OnceLock::new();
    let workers = tokio::runtime::Handle::try_current().map_or(1, |h| h.metrics().num_workers());
    workers > 1 && *CORES.get_or_init(|| std::thread::available_parallelism().map_or(1, |n| n.get())) > 1
}

pub(super) async fn read_frames(shared: &Arc<Shared>, mut reader: FrameReader) {
    let max = shared.host.max_frame;
    let max_depth = shared.host.max_depth;
    // One wait for the end of the connection, polled by every iteration: creating it anew per
    // frame registers and unregisters a waiter under the token's lock each time.
    let closed = shared.life.wait(&shared.life.reader);
    tokio::pin!(closed);
    // The heartbeat and the idle timeout are checked here, on ticks, rather than by a task of
    // their own (which would cost every idle connection its memory).
    let mut watchdog = Watchdog::new(&shared.host);
    // Frames received so far: the watchdog's sign of life.
    let mut frames = 0u64;
    let mut runner = InlineBox { make: inline_call, spare: None };
    let mut batch = Batch::new();
    // Ends the connection with an `Abort` saying why, which records the cause: the loop's
    // result is then `None`, and `Some` for a cause not recorded yet.
    let abort = |cause: DisconnectCause| {
        shared.close_with(Message::Abort { reason: cause.to_string() }, cause);
        None
    };
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
                let reason =
                    DisconnectCause::NotReading { queued: shared.out.backlog(), limit: bound, waited: timeout };
                break abort(reason);
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
            None => break Some(DisconnectCause::PeerClosed),
            Some(Err(e)) => match FrameError::from_read(e, max) {
                err @ FrameError::TooLarge { .. } => break abort(DisconnectCause::Protocol(ProtocolError::Frame(err))),
                err => break Some(DisconnectCause::Transport(err)),
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
                let charged = frame.first() == Some(&CALL_TAG) && frame.len() > UNCHARGED;
                let budget = || wire::budget_for(frame.len(), shared.host.max_expansion);
                let charge = charged.then(|| BudgetScope::new(budget()));
                let limit = DepthLimit::set(max_depth);
                let decoded = Incoming::decode(&frame);
                let too_deep = limit.exceeded();
                let over = charge.as_ref().is_some_and(BudgetScope::exceeded);
                drop(limit);
                drop(charge);
                let handled = match decoded {
                    Ok(Incoming::Call(call)) => {
                        shared.handle_call(call, &mut runner);
                        Ok(())
                    }
                    // An error here: the peer ended the connection.
                    Ok(Incoming::Other(msg)) => shared.handle(msg, &mut runner).map_err(Some),
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
                            "dynamic values would take more than {} bytes decoded, {} times the frame's {} \
                             bytes (the limit of node `{}`)",
                            budget(),
                            shared.host.max_expansion,
                            frame.len(),
                            shared.host.name
                        );
                        shared.refuse_values(&frame, &why).map_err(abort)
                    }
                    Err(e) => Err(abort(DisconnectCause::Protocol(ProtocolError::Malformed(e)))),
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
    let detail = match &shared.attachment {
        Some(a) => a.on_close().await,
        None => None,
    };
    // A cause recorded already (by an `Abort`) stays: `finish` keeps the first.
    let reason = Disconnected::with_detail(reason.unwrap_or(DisconnectCause::Closed), detail);
    tracing::debug!(%reason, "connection closed");
    shared.finish(reason);
}

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
