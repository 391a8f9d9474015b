//! Call chains: detecting re-entrant calls that would deadlock.
//!
//! Every call belongs to a *chain*: a call made while serving another call (a callback into
//! the caller, say A → B → A) carries the chain id of the call being served, across
//! connections. An object remembers which chains hold it and how: a call that comes back to an
//! object its own chain holds exclusively (`&mut self`), or asks for exclusive access to an
//! object its chain holds at all, would wait for itself forever; it fails at once with
//! [`FaultKind::Reentrant`](crate::codec::FaultKind::Reentrant) instead. A shared (`&self`)
//! call that comes back to an object its chain holds shared runs under the same read lock, so
//! that a queued writer cannot wedge it.

use std::cell::Cell;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock, Weak};
use std::task::{Context, Poll};
use std::time::Instant;

use tokio::sync::OwnedRwLockReadGuard;

use crate::serve::dispatch::Dispatch;

/// What a call being served passes on to the calls it makes: its chain and its deadline.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Scope {
    chain: u64,
    deadline: Option<Instant>,
}

thread_local! {
    /// The scope of the call being polled on this thread: set around each poll of a call (and
    /// its drop) by [`scope`] and [`sync_scope`], as a tokio task-local is, at the cost of two
    /// `Cell` swaps (`Scope` is `Copy`).
    static SCOPE: Cell<Option<Scope>> = const { Cell::new(None) };
}

/// The scope of the call being served by the current task, if any.
fn get() -> Option<Scope> {
    SCOPE.with(Cell::get)
}

/// The chain of the call being served by the current task, if any.
pub(crate) fn current() -> Option<u64> {
    get().map(|s| s.chain).filter(|c| *c != 0)
}

/// The deadline of the call being served by the current task, if any.
pub(crate) fn deadline() -> Option<Instant> {
    get().and_then(|s| s.deadline)
}

/// The chain for a call made now: the current one, or a fresh one for a root call.
pub(crate) fn for_outgoing_call() -> u64 {
    current().unwrap_or_else(fresh)
}

/// A new chain id: a random per-process prefix and a counter (never 0).
fn fresh() -> u64 {
    static PREFIX: OnceLock<u64> = OnceLock::new();
    static NEXT: AtomicU64 = AtomicU64::new(1);
    let prefix = *PREFIX.get_or_init(|| rand::random::<u64>() & 0xFFFF_FFFF_0000_0000);
    prefix | (NEXT.fetch_add(1, Ordering::Relaxed) & 0xFFFF_FFFF)
}

/// Runs `fut` as part of chain `chain` (0: detection off) with `deadline` applying to the
/// calls it makes: each poll of `fut`, and its drop, see the scope.
pub(crate) async fn scope<F: Future>(chain: u64, deadline: Option<Instant>, fut: F) -> F::Output {
    let mut scoped = Scoped { scope: Scope { chain, deadline }, fut: std::pin::pin!(Some(fut)) };
    std::future::poll_fn(|cx| scoped.poll(cx)).await
}

/// A future of [`scope`], pinned in its frame, and the scope it runs in.
struct Scoped<'a, F: Future> {
    scope: Scope,
    /// `None` once it completed (it was dropped in its scope then).
    fut: Pin<&'a mut Option<F>>,
}

impl<F: Future> Scoped<'_, F> {
    /// Polls the future in its scope; a completed future is dropped there too.
    fn poll(&mut self, cx: &mut Context<'_>) -> Poll<F::Output> {
        let Scope { chain, deadline } = self.scope;
        poll_in_scope(chain, deadline, self.fut.as_mut(), cx)
    }
}

impl<F: Future> Drop for Scoped<'_, F> {
    /// A call dropped before it completed (cancelled) is dropped in its scope.
    fn drop(&mut self) {
        if self.fut.is_some() {
            let Scope { chain, deadline } = self.scope;
            let fut = &mut self.fut;
            sync_scope(chain, deadline, || fut.set(None));
        }
    }
}

/// Polls `fut` (a call not yet completed) once as part of chain `chain` with `deadline`, and
/// drops it there if it completes (leaving `None`).
///
/// # Panics
///
/// If `fut` is `None`: a call is not polled after it completed.
pub(crate) fn poll_in_scope<F: Future>(
    chain: u64,
    deadline: Option<Instant>,
    mut fut: Pin<&mut Option<F>>,
    cx: &mut Context<'_>,
) -> Poll<F::Output> {
    sync_scope(chain, deadline, || match fut.as_mut().as_pin_mut() {
        Some(running) => {
            let polled = running.poll(cx);
            if polled.is_ready() {
                fut.set(None);
            }
            polled
        }
        None => unreachable!("a call is not polled after it completed"),
    })
}

/// Runs `f` (one synchronous poll of a call, say) as part of chain `chain` with `deadline`, as
/// [`scope`] does around each poll of its future: what `f` runs sees the same [`current`] chain
/// and [`deadline`], without a future to wrap (and move) the call into. The previous scope is
/// back when `f` returns or unwinds.
pub(crate) fn sync_scope<R>(chain: u64, deadline: Option<Instant>, f: impl FnOnce() -> R) -> R {
    /// Puts the previous scope back, even if `f` panics.
    struct Restore(Option<Scope>);

    impl Drop for Restore {
        fn drop(&mut self) {
            SCOPE.with(|s| s.set(self.0));
        }
    }

    let _restore = Restore(SCOPE.with(|s| s.replace(Some(Scope { chain, deadline }))));
    f()
}

/// What a [`SharedGuard`] shares: the read guard, `None` only once the last holder released it
/// (in an allocation kept for the thread's next call).
type Slot = Option<OwnedRwLockReadGuard<dyn Dispatch>>;

thread_local! {
    /// An emptied [`SharedGuard`] allocation, for the next call on this thread: a call that
    /// completes at once takes and gives back the same one instead of allocating and freeing.
    static SPARE: Cell<Option<Arc<Slot>>> = const { Cell::new(None) };
}

/// Read access to an object, shared by the calls of one chain: a re-entrant `&self` call uses
/// the guard of the call it came back to ([`Found::Shared`]). The lock is released when the
/// last holder drops it.
pub(crate) struct SharedGuard {
    /// Always `Some` until dropped (an `Option` only so that `drop` can keep the allocation).
    slot: Option<Arc<Slot>>,
}

impl SharedGuard {
    /// Shares `guard`, in this thread's spare allocation if there is one.
    pub(crate) fn new(guard: OwnedRwLockReadGuard<dyn Dispatch>) -> Self {
        let slot = match SPARE.with(Cell::take) {
            Some(mut spare) => match Arc::get_mut(&mut spare) {
                Some(empty) => {
                    *empty = Some(guard);
                    spare
                }
                None => Arc::new(Some(guard)),
            },
            None => Arc::new(Some(guard)),
        };
        SharedGuard { slot: Some(slot) }
    }

    /// A handle for the chain's hold, through which a re-entrant call of the chain can share
    /// the guard while it lasts.
    pub(crate) fn downgrade(&self) -> Weak<Slot> {
        self.slot.as_ref().map(Arc::downgrade).unwrap_or_default()
    }

    /// The object.
    pub(crate) fn object(&self) -> &dyn Dispatch {
        match self.slot.as_deref() {
            Some(Some(guard)) => &**guard,
            _ => unreachable!("a shared guard holds the lock until it is dropped"),
        }
    }
}

impl Drop for SharedGuard {
    /// The last holder releases the lock and keeps the emptied allocation for the thread's next
    /// call; any other holder only lets go of its share.
    fn drop(&mut self) {
        if let Some(mut slot) = self.slot.take() {
            if let Some(guard) = Arc::get_mut(&mut slot) {
                *guard = None;
                SPARE.with(|spare| spare.set(Some(slot)));
            }
        }
    }
}

/// How a chain holds an object.
pub(crate) enum Hold {
    /// `&self`, with the guard a re-entrant `&self` call can use.
    Shared(Weak<Slot>),
    /// `&mut self`, in this method.
    Exclusive(String),
}

/// The chains holding one object.
#[derive(Default)]
pub(crate) struct Holders {
    list: Mutex<Vec<(u64, u64, Hold)>>,
    next: AtomicU64,
    /// How many holds `list` has, kept under its lock: [`Holders::check`] answers `Free` without
    /// the lock when there are none. A hold a check must see (its own chain's) is recorded
    /// before the calls of that chain that could come back are made, so the count is read
    /// after it was raised.
    held: AtomicUsize,
}

/// What a chain asking for an object finds.
pub(crate) enum Found {
    /// Nothing of this chain: acquire the lock.
    Free,
    /// This chain holds the object shared: use this guard.
    Shared(SharedGuard),
    /// This chain holds the object in a way that would deadlock; the text says how.
    Deadlock(String),
}

impl Holders {
    /// What chain `chain` finds when it asks for shared (`exclusive == false`) or exclusive access.
    pub(crate) fn check(&self, chain: u64, exclusive: bool) -> Found {
        if chain == 0 || self.held.load(Ordering::Acquire) == 0 {
            return Found::Free;
        }
        let list = self.list.lock().unwrap_or_else(|e| e.into_inner());
        for (c, _, hold) in list.iter().filter(|(c, ..)| *c == chain) {
            let _ = c;
            match hold {
                Hold::Exclusive(method) => {
                    return Found::Deadlock(format!("this call chain holds the object exclusively in `{method}`"))
                }
                Hold::Shared(_) if exclusive => {
                    return Found::Deadlock("this call chain holds the object in a `&self` call".into())
                }
                Hold::Shared(weak) => {
                    if let Some(slot) = weak.upgrade() {
                        return Found::Shared(SharedGuard { slot: Some(slot) });
                    }
                }
            }
        }
        Found::Free
    }

    /// Records a hold; it lasts as long as the returned token.
    pub(crate) fn hold(&self, chain: u64, hold: Hold) -> Token<'_> {
        if chain == 0 {
            // Detection off: nothing to record, nothing to remove.
            return Token { holders: self, key: None };
        }
        let key = self.next.fetch_add(1, Ordering::Relaxed);
        let mut list = self.list.lock().unwrap_or_else(|e| e.into_inner());
        list.push((chain, key, hold));
        self.held.store(list.len(), Ordering::Release);
        Token { holders: self, key: Some(key) }
    }
}

/// Removes a hold when dropped.
pub(crate) struct Token<'a> {
    holders: &'a Holders,
    /// The hold's key in the list; `None` when nothing was recorded (chain 0).
    key: Option<u64>,
}

impl Drop for Token<'_> {
    fn drop(&mut self) {
        let Some(key) = self.key else { return };
        let mut list = self.holders.list.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(i) = list.iter().position(|(_, k, _)| *k == key) {
            let hold = list.remove(i);
            self.holders.held.store(list.len(), Ordering::Release);
            drop(list);
            // The hold's `Weak` is released outside the lock.
            drop(hold);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::serve::dispatch::fixtures::Nothing;
    use std::task::Waker;

    /// Records the chain seen by each of its polls and by its drop; pending at its first poll.
    struct Probe {
        seen: Arc<Mutex<Vec<Option<u64>>>>,
        polls: usize,
    }

    impl Future for Probe {
        type Output = ();

        fn poll(mut self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<()> {
            self.seen.lock().unwrap().push(current());
            self.polls += 1;
            if self.polls == 1 {
                Poll::Pending
            } else {
                Poll::Ready(())
            }
        }
    }

    impl Drop for Probe {
        fn drop(&mut self) {
            self.seen.lock().unwrap().push(current());
        }
    }

    /// Every poll of a scoped call, and its drop (at completion or cancelled), see the call's
    /// chain; nothing outside its polls does.
    #[test]
    fn a_scoped_call_sees_its_chain_in_every_poll_and_in_its_drop() {
        let mut cx = Context::from_waker(Waker::noop());
        let seen = Arc::default();
        let mut call = Box::pin(scope(7, None, Probe { seen: Arc::clone(&seen), polls: 0 }));
        assert!(call.as_mut().poll(&mut cx).is_pending());
        assert_eq!(current(), None);
        assert!(call.as_mut().poll(&mut cx).is_ready());
        drop(call);
        assert_eq!(*seen.lock().unwrap(), [Some(7), Some(7), Some(7)]);

        let seen = Arc::default();
        let mut call = Box::pin(scope(8, None, Probe { seen: Arc::clone(&seen), polls: 0 }));
        assert!(call.as_mut().poll(&mut cx).is_pending());
        drop(call);
        assert_eq!(*seen.lock().unwrap(), [Some(8), Some(8)], "cancelled: dropped in its scope");
        assert_eq!(current(), None);
    }

    /// Scopes nest; the outer one is back when an inner one ends, even by a panic; chain 0
    /// means no chain.
    #[test]
    fn sync_scopes_nest_and_restore_the_outer_one_even_on_panic() {
        let at = Instant::now();
        sync_scope(1, Some(at), || {
            assert_eq!((current(), deadline()), (Some(1), Some(at)));
            let inner = std::panic::catch_unwind(|| {
                sync_scope(2, None, || {
                    assert_eq!((current(), deadline()), (Some(2), None));
                    panic!("inner call panicked");
                })
            });
            assert!(inner.is_err());
            assert_eq!((current(), deadline()), (Some(1), Some(at)));
            sync_scope(0, None, || assert_eq!(current(), None));
        });
        assert_eq!((current(), deadline()), (None, None));
    }

    /// A `&self` hold is shared by a re-entrant call of its chain (and refuses it exclusive
    /// access); the lock is released with the last holder's guard, whose emptied allocation
    /// then serves the thread's next call.
    #[test]
    fn a_shared_guard_releases_the_lock_with_its_last_holder() {
        let lock: Arc<tokio::sync::RwLock<dyn Dispatch>> = Arc::new(tokio::sync::RwLock::new(Nothing));
        let holders = Holders::default();
        assert!(matches!(holders.check(5, false), Found::Free));
        let first = SharedGuard::new(lock.clone().try_read_owned().unwrap());
        let token = holders.hold(5, Hold::Shared(first.downgrade()));
        assert!(matches!(holders.check(6, true), Found::Free), "another chain is not concerned");
        assert!(matches!(holders.check(5, true), Found::Deadlock(_)));
        let Found::Shared(second) = holders.check(5, false) else { panic!("chain 5 holds the object shared") };
        let allocation = second.slot.as_ref().map(Arc::as_ptr);
        drop(token);
        assert!(matches!(holders.check(5, false), Found::Free));
        drop(first);
        assert!(lock.try_write().is_err(), "the re-entrant call still holds the lock");
        drop(second);
        assert!(lock.try_write().is_ok(), "released with the last holder");
        let next = SharedGuard::new(lock.clone().try_read_owned().unwrap());
        assert_eq!(next.slot.as_ref().map(Arc::as_ptr), allocation, "the allocation is reused");
        assert!(lock.try_write().is_err());
        drop(next);
        assert!(lock.try_write().is_ok());
    }

    /// Chain 0 (detection off) records no hold.
    #[test]
    fn chain_zero_records_nothing() {
        let holders = Holders::default();
        let token = holders.hold(0, Hold::Exclusive("m".into()));
        assert!(holders.list.lock().unwrap().is_empty());
        assert!(matches!(holders.check(0, true), Found::Free));
        drop(token);
        let token = holders.hold(3, Hold::Exclusive("m".into()));
        assert!(matches!(holders.check(3, false), Found::Deadlock(_)));
        drop(token);
        assert!(matches!(holders.check(3, false), Found::Free));
        assert!(holders.list.lock().unwrap().is_empty());
    }
}
