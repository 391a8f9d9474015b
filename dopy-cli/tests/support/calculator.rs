//! The calculator the CLI tests and the `calc_server` example serve.
#![allow(unreachable_pub)] // `#[dopy::remote]` methods are `pub`; this module is private.

use std::sync::atomic::{AtomicUsize, Ordering};

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
}

/// The error of [`Calculator::divide`].
#[derive(Debug, Serialize, Deserialize, thiserror::Error)]
#[error("cannot divide {0} by zero")]
pub struct DivideByZero(pub i64);

/// DOPY's demo object.
#[derive(Debug, Default)]
pub struct Calculator {
    /// How many lines `log` received.
    pub logged: AtomicUsize,
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
        }
    }

    /// Records a line; no reply is sent.
    #[dopy(oneway)]
    pub fn log(&self, line: String) {
        let _ = line;
        self.logged.fetch_add(1, Ordering::Relaxed);
    }
}
