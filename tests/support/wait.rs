//! Waiting for a condition that another task or thread makes true, with a bound, instead of
//! sleeping for a guessed time.
//!
//! Part of `support`; a test file that needs only this includes it alone
//! (`#[path = "support/wait.rs"] mod wait;`).
#![allow(dead_code, unreachable_pub)]

use std::time::{Duration, Instant};

/// How long a condition may take before the test fails: long enough for a loaded machine.
pub const PATIENCE: Duration = Duration::from_secs(10);

/// Waits, polling every 10 ms, until `ready` holds; panics naming `what` after [`PATIENCE`].
pub async fn eventually(what: &str, ready: impl FnMut() -> bool) {
    assert!(holds_within(PATIENCE, ready).await, "{what}: did not happen within {PATIENCE:?}");
}

/// Waits, polling every 10 ms, until `ready` holds or `limit` has passed; whether it held. For
/// a helper that reports the state it found rather than panicking.
pub async fn holds_within(limit: Duration, mut ready: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + limit;
    loop {
        if ready() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// [`eventually`] for a thread with no runtime: blocks it while polling.
pub fn eventually_blocking(what: &str, mut ready: impl FnMut() -> bool) {
    let deadline = Instant::now() + PATIENCE;
    while !ready() {
        assert!(Instant::now() < deadline, "{what}: did not happen within {PATIENCE:?}");
        std::thread::sleep(Duration::from_millis(10));
    }
}
