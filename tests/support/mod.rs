//! Shared by the integration tests: a calculator with every kind of remote method, server
//! helpers, waiting for a condition ([`wait`]) and temporary directories; the transport
//! conformance suite ([`harness`]), child processes for the services' tests ([`services`]),
//! a misbehaving peer ([`faulty`]) and a name-server hub ([`hub`]).
#![allow(dead_code, unreachable_pub)]

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use dopy::{Endpoint, Node};
use serde::{Deserialize, Serialize};

pub mod faulty;
#[macro_use]
pub mod harness;
pub mod hub;
pub mod services;
pub mod wait;

#[allow(unused_imports)]
pub use wait::{eventually, eventually_blocking};

/// Resident memory of this process (clients and servers alike), in bytes.
pub fn rss() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let line = status.lines().find(|l| l.starts_with("VmRSS:")).unwrap();
    let kib: u64 = line.split_whitespace().nth(1).unwrap().parse().unwrap();
    kib * 1024
}

/// A fresh directory under the system's temporary directory, removed (with its contents) when
/// dropped; `label` shows in its name.
pub fn temp_dir(label: &str) -> tempfile::TempDir {
    tempfile::Builder::new().prefix(&format!("dopy-{label}-")).tempdir().unwrap()
}

/// A point with optional label and tags, to exercise structs, options and vectors.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Point {
    pub x: f64,
    pub y: f64,
    pub label: Option<String>,
    pub tags: Vec<String>,
}

/// A shape, to exercise every kind of enum variant.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum Shape {
    Empty,
    Circle(f64),
    Rect(f64, f64),
    Polygon { points: Vec<Point> },
}

/// The method's own error type.
#[derive(Debug, PartialEq, Serialize, Deserialize, thiserror::Error)]
#[error("cannot divide {0} by zero")]
pub struct DivideByZero(pub i64);

/// An error with a source chain.
#[derive(Debug, Serialize, Deserialize, thiserror::Error)]
#[error("could not load `{name}`")]
pub struct LoadError {
    pub name: String,
    #[source]
    pub cause: Inner,
}

/// The source of [`LoadError`].
#[derive(Debug, Serialize, Deserialize, thiserror::Error)]
#[error("disk on fire")]
pub struct Inner;

/// Counts calls in progress on `&mut self` methods, to prove they never overlap.
#[derive(Default)]
pub struct Calculator {
    pub total: i64,
    pub busy: Arc<AtomicUsize>,
    pub overlaps: Arc<AtomicUsize>,
    /// Counts the `slow_echo` calls that have started.
    pub echoes: Arc<AtomicUsize>,
}

/// A calculator, DOPY's demo object.
#[dopy::remote]
impl Calculator {
    /// Adds two numbers.
    pub fn add(&self, a: i64, b: i64) -> i64 {
        a + b
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

    /// Divides `a` by `b`.
    pub fn divide(&self, a: i64, b: i64) -> Result<i64, DivideByZero> {
        if b == 0 {
            Err(DivideByZero(a))
        } else {
            Ok(a / b)
        }
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

    /// The area of a shape.
    pub fn area(&self, shape: Shape) -> f64 {
        match shape {
            Shape::Empty => 0.0,
            Shape::Circle(r) => 3.0 * r * r,
            Shape::Rect(w, h) => w * h,
            Shape::Polygon { points } => points.len() as f64,
        }
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

/// Starts a node serving a fresh calculator as `calc` on 127.0.0.1:0.
pub async fn start_server() -> (Node, Endpoint) {
    start_server_with(Calculator::default()).await
}

/// Starts a node serving `calc` on 127.0.0.1:0.
pub async fn start_server_with(calc: Calculator) -> (Node, Endpoint) {
    let node = Node::builder().name("test-server").build();
    node.publish("calc", calc).unwrap();
    let addr = node.listen("tcp://127.0.0.1:0").await.unwrap();
    (node, addr)
}

/// A typed proxy to `calc` at `addr`, from a fresh client node.
pub async fn calc_proxy(addr: &Endpoint) -> CalculatorProxy {
    Node::new().proxy(&format!("{addr}/calc")).await.unwrap()
}
