//! The synchronisation types of the outbox: std's and `futures_util`'s, or loom's when built
//! with `RUSTFLAGS="--cfg dopy_loom"`, so that the model check (`loom.rs`) explores the
//! outbox's own code. Only the types of its lock protocol are swapped (the locks, the flags,
//! the backlog counter, the writer task's waker and the reader's thread-local batch); the
//! `Notify` a stalled reader waits on, and the connection's `Ended`, stay tokio's and std's.

#[cfg(not(dopy_loom))]
pub(super) use futures_util::task::AtomicWaker;
#[cfg(not(dopy_loom))]
pub(super) use std::sync::atomic::{AtomicBool, AtomicUsize};
#[cfg(not(dopy_loom))]
pub(super) use std::sync::{Mutex, MutexGuard};
#[cfg(not(dopy_loom))]
pub(super) use std::thread_local;

#[cfg(dopy_loom)]
pub(super) use ::loom::sync::atomic::AtomicUsize;

/// loom's `thread_local!` (one value per loom thread, all of which run on one OS thread), for
/// a declaration written for std's with a `const` initialiser, which loom's does not take.
#[cfg(dopy_loom)]
macro_rules! loom_thread_local {
    ($(#[$attr:meta])* $vis:vis static $name:ident: $t:ty = const { $init:expr };) => {
        ::loom::thread_local! { $(#[$attr])* $vis static $name: $t = $init; }
    };
}
#[cfg(dopy_loom)]
pub(super) use loom_thread_local as thread_local;

/// Locks `m`, whether or not a panic poisoned it.
pub(super) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// loom's `AtomicWaker`, with the signature of `futures_util`'s.
#[cfg(dopy_loom)]
#[derive(Debug)]
pub(super) struct AtomicWaker(::loom::future::AtomicWaker);

#[cfg(dopy_loom)]
impl AtomicWaker {
    pub(super) fn new() -> Self {
        AtomicWaker(::loom::future::AtomicWaker::new())
    }

    pub(super) fn register(&self, waker: &std::task::Waker) {
        self.0.register_by_ref(waker);
    }

    pub(super) fn wake(&self) {
        self.0.wake();
    }
}

/// loom's `AtomicBool`, whose `store` is a `swap`.
///
/// loom does not keep a plain store from falling between the read and the write of a
/// concurrent read-modify-write (tokio-rs/loom#254, #389): a pusher's `swap(true)` of `woken`
/// could then read a `true` that the writer task's later `store(false)` had already replaced,
/// and loom reported lost wakeups that the memory model rules out. A swap is ordered with the
/// other swaps correctly; it is also what a `SeqCst` store compiles to on x86-64 (`xchg`).
#[cfg(dopy_loom)]
#[derive(Debug)]
pub(super) struct AtomicBool(::loom::sync::atomic::AtomicBool);

#[cfg(dopy_loom)]
impl AtomicBool {
    pub(super) fn new(v: bool) -> Self {
        AtomicBool(::loom::sync::atomic::AtomicBool::new(v))
    }

    pub(super) fn load(&self, order: std::sync::atomic::Ordering) -> bool {
        self.0.load(order)
    }

    pub(super) fn store(&self, v: bool, order: std::sync::atomic::Ordering) {
        self.0.swap(v, order);
    }

    pub(super) fn swap(&self, v: bool, order: std::sync::atomic::Ordering) -> bool {
        self.0.swap(v, order)
    }
}

/// loom's `Mutex`, whose `try_lock` loom sees depend on the unlock it may come before.
///
/// loom does not count an unlock as an access to the mutex, so it never tries running another
/// thread's `try_lock` just before an unlock, where it fails: for instance between the writer
/// task's last look at the queue and its unlock of the write half, where the end of the
/// reader's batch finds the half taken and must wake the writer task (`Outbox::end_batch`).
/// An atomic of the mutex's own, written just before each unlock and read by each `try_lock`,
/// makes the two depend on each other, and loom tries both orders.
#[cfg(dopy_loom)]
#[derive(Debug)]
pub(super) struct Mutex<T> {
    inner: ::loom::sync::Mutex<T>,
    unlocked: AtomicUsize,
}

/// A guard of [`Mutex`].
#[cfg(dopy_loom)]
#[derive(Debug)]
pub(super) struct MutexGuard<'a, T> {
    inner: Option<::loom::sync::MutexGuard<'a, T>>,
    unlocked: &'a AtomicUsize,
}

#[cfg(dopy_loom)]
impl<T> Mutex<T> {
    pub(super) fn new(value: T) -> Self {
        Mutex { inner: ::loom::sync::Mutex::new(value), unlocked: AtomicUsize::new(0) }
    }

    fn guard<'a>(&'a self, inner: ::loom::sync::MutexGuard<'a, T>) -> MutexGuard<'a, T> {
        MutexGuard { inner: Some(inner), unlocked: &self.unlocked }
    }

    pub(super) fn lock(&self) -> std::sync::LockResult<MutexGuard<'_, T>> {
        match self.inner.lock() {
            Ok(g) => Ok(self.guard(g)),
            Err(p) => Err(std::sync::PoisonError::new(self.guard(p.into_inner()))),
        }
    }

    pub(super) fn try_lock(&self) -> std::sync::TryLockResult<MutexGuard<'_, T>> {
        self.unlocked.load(std::sync::atomic::Ordering::Relaxed);
        match self.inner.try_lock() {
            Ok(g) => Ok(self.guard(g)),
            Err(std::sync::TryLockError::WouldBlock) => Err(std::sync::TryLockError::WouldBlock),
            Err(std::sync::TryLockError::Poisoned(p)) => {
                Err(std::sync::TryLockError::Poisoned(std::sync::PoisonError::new(self.guard(p.into_inner()))))
            }
        }
    }
}

#[cfg(dopy_loom)]
impl<T> std::ops::Deref for MutexGuard<'_, T> {
    type Target = T;

    fn deref(&self) -> &T {
        self.inner.as_ref().expect("held until dropped")
    }
}

#[cfg(dopy_loom)]
impl<T> std::ops::DerefMut for MutexGuard<'_, T> {
    fn deref_mut(&mut self) -> &mut T {
        self.inner.as_mut().expect("held until dropped")
    }
}

#[cfg(dopy_loom)]
impl<T> Drop for MutexGuard<'_, T> {
    fn drop(&mut self) {
        // Not while a failed model unwinds: loom's execution is gone then.
        if !std::thread::panicking() {
            self.unlocked.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        }
        drop(self.inner.take());
    }
}
