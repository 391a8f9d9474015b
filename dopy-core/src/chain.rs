//! Call chains: detecting re-entrant calls that would deadlock.
//!
//! Every call belongs to a *chain*: a call made while serving another call (a callback into
//! the caller, say A → B → A) carries the chain id of the call being served, across
//! connections. An object remembers which chains hold it and how: a call that comes back to an
//! object its own chain holds exclusively (`&mut self`), or asks for exclusive access to an
//! object its chain holds at all, would wait for itself forever; it fails at once with
//! [`FaultKind::Reentrant`](crate::message::FaultKind::Reentrant) instead. A shared (`&self`)
//! call that comes back to an object its chain holds shared runs under the same read lock, so
//! that a queued writer cannot wedge it.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, OnceLock, Weak};
use std::time::Instant;

use tokio::sync::OwnedRwLockReadGuard;

use crate::dispatch::Dispatch;

/// What a call being served passes on to the calls it makes: its chain and its deadline.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Scope {
    chain: u64,
    deadline: Option<Instant>,
}

tokio::task_local! {
    static SCOPE: Scope;
}

/// The chain of the call being served by the current task, if any.
pub(crate) fn current() -> Option<u64> {
    SCOPE.try_with(|s| s.chain).ok().filter(|c| *c != 0)
}

/// The deadline of the call being served by the current task, if any.
pub(crate) fn deadline() -> Option<Instant> {
    SCOPE.try_with(|s| s.deadline).ok().flatten()
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
/// calls it makes.
pub(crate) async fn scope<F: std::future::Future>(chain: u64, deadline: Option<Instant>, fut: F) -> F::Output {
    SCOPE.scope(Scope { chain, deadline }, fut).await
}

/// A read guard shared by the calls of one chain.
pub(crate) type SharedGuard = OwnedRwLockReadGuard<dyn Dispatch>;

/// How a chain holds an object.
pub(crate) enum Hold {
    /// `&self`, with the guard a re-entrant `&self` call can use.
    Shared(Weak<SharedGuard>),
    /// `&mut self`, in this method.
    Exclusive(String),
}

/// The chains holding one object.
#[derive(Default)]
pub(crate) struct Holders {
    list: Mutex<Vec<(u64, u64, Hold)>>,
    next: AtomicU64,
}

/// What a chain asking for an object finds.
pub(crate) enum Found {
    /// Nothing of this chain: acquire the lock.
    Free,
    /// This chain holds the object shared: use this guard.
    Shared(std::sync::Arc<SharedGuard>),
    /// This chain holds the object in a way that would deadlock; the text says how.
    Deadlock(String),
}

impl Holders {
    /// What chain `chain` finds when it asks for shared (`exclusive == false`) or exclusive access.
    pub(crate) fn check(&self, chain: u64, exclusive: bool) -> Found {
        if chain == 0 {
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
                    if let Some(guard) = weak.upgrade() {
                        return Found::Shared(guard);
                    }
                }
            }
        }
        Found::Free
    }

    /// Records a hold; it lasts as long as the returned token.
    pub(crate) fn hold(&self, chain: u64, hold: Hold) -> Token<'_> {
        let key = self.next.fetch_add(1, Ordering::Relaxed);
        if chain != 0 {
            self.list.lock().unwrap_or_else(|e| e.into_inner()).push((chain, key, hold));
        }
        Token { holders: self, key }
    }
}

/// Removes a hold when dropped.
pub(crate) struct Token<'a> {
    holders: &'a Holders,
    key: u64,
}

impl Drop for Token<'_> {
    fn drop(&mut self) {
        self.holders.list.lock().unwrap_or_else(|e| e.into_inner()).retain(|(_, k, _)| *k != self.key);
    }
}
