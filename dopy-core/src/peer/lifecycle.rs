//! A connection's life ([`Lifecycle`], [`Phase`]) and how it ends: closing in an orderly way
//! or on error, failing the calls pending and releasing the references held, and how long the
//! last frame may take ([`LAST_WORDS`]).

use super::*;

/// Where a connection is in its life. It only moves forward.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
#[repr(u8)]
pub(super) enum Phase {
    /// Calls go both ways.
    Open = 0,
    /// It is ending (why is recorded): no new call is taken, pending calls fail, the calls being
    /// served stop, the references are released, the writer sends its last frame.
    Ending = 1,
    /// All of that is done ([`Connection::closed`](crate::handle::Connection::closed) returns).
    Closed = 2,
}

/// A connection's life in one place: its [`Phase`], why it ended, and who waits for the end.
///
/// The phase is an atomic that the hot path reads without a lock (every send, every pass of
/// the reader's and writer's loops); the two tasks each have a waker slot instead of a
/// `CancellationToken`'s future, which takes two locks per poll (about 1,100 instructions per
/// sequential call between the two tasks). Whoever awaits the closed phase from outside
/// (`Connection::closed`) awaits `closed`, cancelled last.
pub(super) struct Lifecycle {
    phase: std::sync::atomic::AtomicU8,
    /// Why the connection ended: the first reason given.
    reason: Mutex<Option<Disconnected>>,
    pub(super) reader: futures_util::task::AtomicWaker,
    pub(super) writer: futures_util::task::AtomicWaker,
    closed: CancellationToken,
}

impl Default for Lifecycle {
    fn default() -> Self {
        Lifecycle {
            phase: std::sync::atomic::AtomicU8::new(Phase::Open as u8),
            reason: Mutex::new(None),
            reader: Default::default(),
            writer: Default::default(),
            closed: CancellationToken::new(),
        }
    }
}

impl Lifecycle {
    /// The phase now.
    pub(super) fn phase(&self) -> Phase {
        match self.phase.load(Ordering::Acquire) {
            0 => Phase::Open,
            1 => Phase::Ending,
            _ => Phase::Closed,
        }
    }

    /// Whether the connection is ending or closed.
    pub(super) fn is_ended(&self) -> bool {
        self.phase.load(Ordering::Acquire) != Phase::Open as u8
    }

    /// Records `reason` as why the connection ends, unless one was already; whether it was.
    pub(super) fn record(&self, reason: &Disconnected) -> bool {
        let mut r = lock(&self.reason);
        if r.is_some() {
            return false;
        }
        *r = Some(reason.clone());
        true
    }

    /// Why the connection ended, once it has.
    pub(super) fn reason(&self) -> Option<Disconnected> {
        lock(&self.reason).clone()
    }

    /// Moves to [`Phase::Ending`] and wakes both tasks.
    pub(super) fn end(&self) {
        self.phase.fetch_max(Phase::Ending as u8, Ordering::AcqRel);
        self.reader.wake();
        self.writer.wake();
    }

    /// Moves to [`Phase::Closed`]: whoever waits in [`closed`](Lifecycle::closed) goes on.
    fn close(&self) {
        self.phase.store(Phase::Closed as u8, Ordering::Release);
        self.closed.cancel();
    }

    /// Ready once the phase is [`Phase::Closed`].
    pub(super) async fn closed(&self) {
        self.closed.cancelled().await
    }

    /// Ready once the connection is ending; `task` is the waiting task's waker slot (one task
    /// each).
    pub(super) fn wait<'a>(
        &'a self,
        task: &'a futures_util::task::AtomicWaker,
    ) -> impl std::future::Future<Output = ()> + 'a {
        std::future::poll_fn(move |cx| {
            if self.is_ended() {
                return std::task::Poll::Ready(());
            }
            task.register(cx.waker());
            // Ended between the check and the registration: the wake may have been missed.
            if self.is_ended() {
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
        let reason = self.life.reason();
        Error::Disconnected(reason.unwrap_or_else(|| DisconnectCause::Closed.into()))
    }

    /// Ends the connection: records why, fails pending calls, and lets the writer finish with
    /// `last` (a `Goodbye` or an `Abort`).
    pub(super) fn close_with(&self, last: Message, cause: DisconnectCause) {
        let reason = Disconnected::new(cause);
        if !self.life.record(&reason) {
            return;
        }
        if let Ok(frame) = last.encode() {
            let _ = self.out.push(Out::Last(Encoded::Whole(frame)));
        }
        self.finish(reason);
    }

    /// Fails every pending call, releases every reference, and wakes everything waiting on
    /// the connection.
    pub(super) fn finish(&self, reason: Disconnected) {
        self.life.record(&reason);
        self.life.end();
        // The peer's calls still running have no one to answer any more: stop them, as a
        // `Cancel` would (`no_cancel` methods run on).
        let running: Vec<CancellationToken> = lock(&self.running).drain().map(|(_, stop)| stop).collect();
        running.iter().for_each(CancellationToken::cancel);
        let wakers: Vec<std::task::Waker> = {
            // Under the lock, after the phase moved: a call registering meanwhile either saw
            // the end (and failed) or has its slot here.
            let mut calls = lock(&self.pending);
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
        // the end when it sends, and takes its exports back.)
        self.life.close();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_phase_only_moves_forward_and_the_first_reason_stays() {
        let life = Lifecycle::default();
        assert_eq!(life.phase(), Phase::Open);
        assert!(!life.is_ended());
        assert!(life.record(&DisconnectCause::ClosedLocally.into()));
        assert!(!life.record(&DisconnectCause::PeerClosed.into()), "a second reason is not recorded");
        life.end();
        assert_eq!(life.phase(), Phase::Ending);
        // Both tasks find the end, even when they start waiting after it.
        life.wait(&life.reader).await;
        life.wait(&life.writer).await;
        life.close();
        life.end();
        assert_eq!(life.phase(), Phase::Closed, "ending again does not go back");
        life.closed().await;
        let reason = life.reason().expect("recorded");
        assert!(matches!(reason.cause(), DisconnectCause::ClosedLocally), "{reason}");
    }
}
