//! The calculator every test serves: one remote method of each kind the tests need, with
//! counters and logs the tests await instead of sleeping.
//!
//! The workspace tests reach it as `support::Calculator`; dopy-cli's tests and its
//! `calc_server` example include this very file (dopy-cli/tests/support/calculator.rs), so it
//! uses nothing but dopy, serde, serde_bytes, thiserror and tokio. The first methods are the
//! ones the CLI's help examples and tests call, in the order its "methods of" hint lists them.
#![allow(dead_code, unreachable_pub)] // Each test uses some of it; a test crate's modules are private.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use dopy::Remote;
use serde::{Deserialize, Serialize};

/// A point with an optional label and tags.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Point {
    /// Horizontal coordinate.
    pub x: f64,
    /// Vertical coordinate.
    pub y: f64,
    /// An optional label.
    pub label: Option<String>,
    /// Tags.
    pub tags: Vec<String>,
}

/// A shape: every kind of enum variant.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum Shape {
    /// Nothing.
    Empty,
    /// A circle of this radius.
    Circle(f64),
    /// A rectangle: width and height.
    Rect(f64, f64),
    /// A polygon through these points.
    Polygon {
        /// Its corners.
        points: Vec<Point>,
    },
}

/// The error of [`Calculator::divide`].
#[derive(Debug, PartialEq, Serialize, Deserialize, thiserror::Error)]
#[error("cannot divide {0} by zero")]
pub struct DivideByZero(pub i64);

/// The error of [`Calculator::load`]: one with a source chain.
#[derive(Debug, Serialize, Deserialize, thiserror::Error)]
#[error("could not load `{name}`")]
pub struct LoadError {
    /// What could not be loaded.
    pub name: String,
    /// Why.
    #[source]
    pub cause: Inner,
}

/// The source of [`LoadError`].
#[derive(Debug, Serialize, Deserialize, thiserror::Error)]
#[error("disk on fire")]
pub struct Inner;

/// Counts itself in a shared counter while it lives: a test awaits the counter going back down
/// to see the object holding it dropped.
#[derive(Debug)]
pub struct Tracked(Arc<AtomicUsize>);

impl Tracked {
    /// Counts one more in `count`, until dropped.
    pub fn new(count: &Arc<AtomicUsize>) -> Tracked {
        count.fetch_add(1, Ordering::SeqCst);
        Tracked(count.clone())
    }
}

impl Drop for Tracked {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

/// Counts one in its counter when dropped: when a future holding it ends, however it ends.
struct OnDrop(Arc<AtomicUsize>);

impl Drop for OnDrop {
    fn drop(&mut self) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }
}

/// DOPY's demo object; its fields let a test watch what the methods did.
#[derive(Debug, Default)]
pub struct Calculator {
    /// The running total of `accumulate`.
    pub total: i64,
    /// `&mut self` calls in progress, to prove they never overlap.
    pub busy: Arc<AtomicUsize>,
    /// How many `&mut self` calls found another one in progress.
    pub overlaps: Arc<AtomicUsize>,
    /// Counts the `slow_echo` calls that have started.
    pub echoes: Arc<AtomicUsize>,
    /// Counts the `sleep` calls that have ended, whether they ran to the end or were stopped.
    pub sleeps_ended: Arc<AtomicUsize>,
    /// The lines `log` received, in order.
    pub logged: Arc<Mutex<Vec<String>>>,
    /// Held while the calculator lives, when a test tracks it.
    pub live: Option<Tracked>,
}

/// A calculator, DOPY's demo object.
#[dopy::remote]
impl Calculator {
    /// Adds two numbers.
    pub fn add(&self, a: i64, b: i64) -> i64 {
        a + b
    }

    /// Divides `a` by `b`.
    ///
    /// Fails when `b` is zero.
    pub fn divide(&self, a: i64, b: i64) -> Result<i64, DivideByZero> {
        if b == 0 {
            Err(DivideByZero(a))
        } else {
            Ok(a / b)
        }
    }

    /// The centroid of some points.
    pub fn centroid(&self, points: Vec<Point>) -> Point {
        let n = points.len().max(1) as f64;
        Point {
            x: points.iter().map(|p| p.x).sum::<f64>() / n,
            y: points.iter().map(|p| p.y).sum::<f64>() / n,
            label: None,
            tags: Vec::new(),
        }
    }

    /// Repeats a text, `times` times (once if left out).
    pub async fn repeat(&self, text: String, times: Option<u8>) -> String {
        text.repeat(times.unwrap_or(1).into())
    }

    /// The area of a shape.
    pub fn area(&self, shape: Shape) -> f64 {
        match shape {
            Shape::Empty => 0.0,
            Shape::Circle(r) => 3.0 * r * r,
            Shape::Rect(w, h) => w * h,
            Shape::Polygon { points } => points.len() as f64,
        }
    }

    /// Records a line; no reply is sent.
    #[dopy(oneway)]
    pub fn log(&self, line: String) {
        self.logged.lock().unwrap().push(line);
    }

    /// Adds to the running total and returns it.
    pub async fn accumulate(&mut self, x: i64) -> i64 {
        if self.busy.fetch_add(1, Ordering::SeqCst) != 0 {
            self.overlaps.fetch_add(1, Ordering::SeqCst);
        }
        tokio::task::yield_now().await;
        self.total += x;
        self.busy.fetch_sub(1, Ordering::SeqCst);
        self.total
    }

    /// The running total.
    pub fn total(&self) -> i64 {
        self.total
    }

    /// Fails with a cause chain.
    pub fn load(&self, name: String) -> Result<u8, LoadError> {
        Err(LoadError { name, cause: Inner })
    }

    /// Panics.
    pub fn explode(&self, why: String) -> i64 {
        panic!("exploded: {why}")
    }

    /// Sleeps, then echoes.
    pub async fn slow_echo(&self, millis: u64, text: String) -> String {
        self.echoes.fetch_add(1, Ordering::SeqCst);
        tokio::time::sleep(Duration::from_millis(millis)).await;
        text
    }

    /// Sleeps (asynchronously), then returns `millis`; stopped at its next await when cancelled.
    pub async fn sleep(&self, millis: u64) -> u64 {
        let _ended = OnDrop(self.sleeps_ended.clone());
        tokio::time::sleep(Duration::from_millis(millis)).await;
        millis
    }

    /// Counts words.
    pub fn word_count(&self, text: String, min_len: Option<usize>) -> HashMap<String, u32> {
        let mut out = HashMap::new();
        for w in text.split_whitespace().filter(|w| w.len() >= min_len.unwrap_or(0)) {
            *out.entry(w.to_owned()).or_insert(0) += 1;
        }
        out
    }

    /// Echoes 128-bit integers and bytes.
    pub fn wide(&self, a: i128, b: u128, bytes: serde_bytes::ByteBuf) -> (i128, u128, serde_bytes::ByteBuf) {
        (a, b, bytes)
    }

    /// A cursor, passed by reference.
    pub fn cursor(&self) -> Remote<Cursor> {
        Remote::new(Cursor { pos: 0 })
    }

    /// Called by another name.
    #[dopy(name = "plus")]
    pub fn add_renamed(&self, a: i64, b: i64) -> i64 {
        a + b
    }

    /// Public but kept local.
    #[dopy(skip)]
    pub fn local_only(&self) -> i64 {
        42
    }

    fn private_helper(&self) -> i64 {
        self.local_only()
    }
}

/// Made by [`Calculator::cursor`], used from the client.
#[derive(Debug)]
pub struct Cursor {
    pos: u32,
}

/// A position that moves on.
#[dopy::remote]
impl Cursor {
    /// The next position.
    pub fn advance(&mut self) -> u32 {
        self.pos += 1;
        self.pos
    }
}
