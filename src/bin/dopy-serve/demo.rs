//! The objects `dopy-serve` publishes: DOPY's demo calculator, and (on request) a handle on the
//! serving process itself, to watch process lifetimes from the calling side.
//!
//! The integration tests publish these same types in-process, so that every transport, whether
//! it reaches a child process or a listener, is tested against the same objects.
// `#[dopy::remote]` serves the `pub` methods; in a binary nothing is reachable from outside.
#![allow(unreachable_pub)]

use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

use dopy::Remote;

/// `a / 0`: the calculator's own error.
#[derive(Debug, PartialEq, serde::Serialize, serde::Deserialize, thiserror::Error)]
#[error("cannot divide {0} by zero")]
pub struct DivideByZero(pub i64);

/// DOPY's demo object: a calculator with a running total.
#[derive(Debug, Default)]
pub struct Calculator {
    total: i64,
}

/// A calculator with a running total.
#[dopy::remote]
impl Calculator {
    /// Adds two numbers.
    pub fn add(&self, a: i64, b: i64) -> i64 {
        a + b
    }

    /// Adds to the running total and returns it.
    pub async fn accumulate(&mut self, x: i64) -> i64 {
        self.total += x;
        self.total
    }

    /// The running total.
    pub fn total(&self) -> i64 {
        self.total
    }

    /// Divides `a` by `b`.
    pub fn divide(&self, a: i64, b: i64) -> Result<i64, DivideByZero> {
        if b == 0 {
            Err(DivideByZero(a))
        } else {
            Ok(a / b)
        }
    }

    /// Panics (the server keeps serving).
    pub fn crash(&self) -> i64 {
        panic!("the calculator caught fire")
    }

    /// Waits `millis` milliseconds, then echoes `text`.
    pub async fn slow_echo(&self, millis: u64, text: String) -> String {
        tokio::time::sleep(Duration::from_millis(millis)).await;
        text
    }

    /// Returns `value` as it came, with its kind: dynamic data as a typed parameter and result.
    pub fn describe(&self, value: dopy::Value) -> (String, dopy::Value) {
        (value.kind().to_owned(), value)
    }

    /// A new register holding `value`, handed out by reference: it stays here, the caller
    /// gets a live proxy.
    pub fn register(&self, value: i64) -> Remote<Register> {
        Remote::new(Register { value })
    }

    /// Calls `tally.take(i)` back for `i` in `1..=n` (the caller's own object, over the
    /// caller's connection) and returns its last answer.
    pub async fn count_to(&self, n: i64, tally: Remote<Tally>) -> Result<i64, String> {
        let mut last = 0;
        for i in 1..=n {
            last = tally.take(i).await.map_err(|e| e.to_string())?;
        }
        Ok(last)
    }
}

/// A memory cell, handed out by [`Calculator::register`].
#[derive(Debug, Default)]
pub struct Register {
    value: i64,
}

/// A memory cell.
#[dopy::remote]
impl Register {
    /// The value held.
    pub fn get(&self) -> i64 {
        self.value
    }

    /// Replaces the value held.
    pub fn set(&mut self, value: i64) {
        self.value = value;
    }
}

/// Sums what it is given: the callback a caller hands to [`Calculator::count_to`].
#[derive(Debug, Default)]
pub struct Tally {
    sum: AtomicI64,
}

/// A running sum.
#[dopy::remote]
impl Tally {
    /// Adds `x`; returns the sum so far.
    pub fn take(&self, x: i64) -> i64 {
        self.sum.fetch_add(x, Ordering::SeqCst) + x
    }
}

/// The serving process (published as `process` with `--expose-process` only).
#[derive(Debug, Default)]
pub struct Process;

/// The serving process: its id, its stderr, its end.
#[dopy::remote]
impl Process {
    /// The process id.
    pub fn pid(&self) -> u32 {
        std::process::id()
    }

    /// Writes a line to the process's stderr.
    pub fn eprint(&self, line: String) {
        eprintln!("{line}");
    }

    /// Ends the process at once with the given exit code.
    #[dopy(oneway)]
    pub fn exit(&self, code: i32) {
        std::process::exit(code)
    }
}
