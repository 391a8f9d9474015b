//! How a connection ends: the end flag its tasks wait on ([`Ended`]), closing in an orderly way
//! or on error, failing the calls pending and releasing the references held, and how long the
//! last frame may take ([`LAST_WORDS`]).

use super::*;

/// The end of a connection as its reader and writer tasks wait for it on every pass of their
/// loops: a flag and one waker per task. A `CancellationToken`'s future takes two locks per
/// poll (about 1,100 instructions per sequential call between the two tasks).
#[derive(Default)]
pub(super) struct Ended {
    pub(super) flag: std::sync::atomic::AtomicBool,
    pub(super) reader: futures_util::task::AtomicWaker,
    pub(super) writer: futures_util::task::AtomicWaker,
}

impl Ended {
    pub(super) fn is_set(&self) -> bool {
        self.flag.load(Ordering::Acquire)
    }

    /// Marks the end and wakes both tasks.
    pub(super) fn set(&self) {
        self.flag.store(true, Ordering::Release);
        self.reader.wake();
        self.writer.wake();
    }

    /// Ready once the end is set; `task` is the waiting task's waker slot (one task each).
    pub(super) fn wait<'a>(
        &'a self,
        task: &'a futures_util::task::AtomicWaker,
    ) -> impl std::future::Future<Output = ()> + 'a {
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

/// How long the writer may still spend on its last words (`Goodbye`/`Abort`, a flush) once the
/// connection has ended, before the stream is dropped regardless: a peer that stopped reading
/// must not keep the socket (and the task) for ever.
pub(super) const LAST_WORDS: Duration = Duration::from_secs(1);

impl Shared {
    pub(super) fn disconnected<E>(&self) -> Error<E> {
        let reason = lock(&self.close_reason).clone();
        Error::Disconnected(reason.unwrap_or_else(|| DisconnectCause::Closed.into()))
    }

    /// Ends the connection: records why, fails pending calls, and lets the writer finish with
    /// `last` (a `Goodbye` or an `Abort`).
    pub(super) fn close_with(&self, last: Message, cause: DisconnectCause) {
        let reason = Disconnected::new(cause);
        {
            let mut r = lock(&self.close_reason);
            if r.is_some() {
                return;
            }
            *r = Some(reason.clone());
        }
        if let Ok(frame) = last.encode() {
            let _ = self.out.push(Out::Last(Encoded::Whole(frame)));
        }
        self.finish(reason);
    }

    /// Fails every pending call, releases every reference, and wakes everything waiting on
    /// the connection.
    pub(super) fn finish(&self, reason: Disconnected) {
        {
            let mut r = lock(&self.close_reason);
            if r.is_none() {
                *r = Some(reason.clone());
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
                .filter_map(|slot| match std::mem::replace(slot, Slot::Done(Err(reason.clone()))) {
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
}
