//! This side's calls waiting for their reply: the reply slots, keyed by call id, the future
//! that waits on one ([`Awaited`]) and the guard that cancels a call given up ([`PendingGuard`]).

use super::*;

/// A reply slot: the waiting caller's waker until the outcome arrives, then the outcome and
/// its references, or why the connection ended. Slots live in the connection's map of calls
/// (no allocation of their own); the caller takes the outcome out when it is woken.
pub(super) enum Slot {
    /// No reply yet; whom to wake when it comes.
    Waiting(Option<std::task::Waker>),
    /// The reply (or the end of the connection), for the caller to take.
    Done(Delivery),
}

/// What a reply slot receives.
pub(super) type Delivery = Result<(Outcome, Vec<DynObject>), Disconnected>;

/// A map keyed by call id, hashed with `FxHash` (one multiplication) instead of SipHash: the
/// maps keyed by ids are bounded by `max_in_flight`, so colliding ids chosen by a hostile peer
/// can only slow its own calls down, never grow without bound.
pub(super) type IdMap<V> = rustc_hash::FxHashMap<u64, V>;

/// This side's calls (and pings) waiting for their reply, by id.
#[derive(Default)]
pub(super) struct Calls {
    pub(super) slots: IdMap<Slot>,
}

/// The reply of call (or ping) `id`, registered with [`Shared::register`]: ready when it has
/// arrived, or when the connection has ended.
pub(super) struct Awaited<'a> {
    pub(super) shared: &'a Shared,
    pub(super) id: u64,
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
                let reason = self.shared.life.reason();
                std::task::Poll::Ready(Err(reason.unwrap_or_else(|| DisconnectCause::Closed.into())))
            }
        }
    }
}

/// Removes a call's reply slot when its future goes before the reply: the caller was
/// cancelled (dropped) or timed out, so the peer is told to stop (`Cancel`).
pub(super) struct PendingGuard<'a> {
    pub(super) shared: &'a Shared,
    pub(super) id: u64,
    pub(super) armed: bool,
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
    /// Creates the reply slot of call (or ping) `id`, to wake `waker` (if given) when the reply
    /// arrives; the reply is awaited with what this returns (and the slot removed by a
    /// [`PendingGuard`]).
    pub(super) fn register<E>(&self, id: u64, waker: Option<&std::task::Waker>) -> Result<Awaited<'_>, Error<E>> {
        self.register_counted(id, waker).map(|(awaited, _)| awaited)
    }

    /// [`register`](Shared::register), with the number of replies awaited now, this one
    /// included.
    pub(super) fn register_counted<E>(
        &self,
        id: u64,
        waker: Option<&std::task::Waker>,
    ) -> Result<(Awaited<'_>, usize), Error<E>> {
        let mut calls = lock(&self.pending);
        if self.life.is_ended() {
            drop(calls);
            return Err(self.disconnected());
        }
        calls.slots.insert(id, Slot::Waiting(waker.cloned()));
        Ok((Awaited { shared: self, id }, calls.slots.len()))
    }

    /// Hands the reply of call (or ping) `id` to its caller; gives it back if nobody waits for
    /// it (any more).
    pub(super) fn deliver(&self, id: u64, delivery: Delivery) -> Result<(), Delivery> {
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
}
