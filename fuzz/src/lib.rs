//! Fuzz targets of dopy (see `docs/FUZZING.md`): the properties live in [`checks`], shared with
//! the regression tests of `dopy-core`; this crate adds the `#[dopy::remote]` object the
//! dispatch target calls.

pub mod checks;

use std::collections::HashMap;
use std::sync::OnceLock;

use dopy::{DynObject, Value};
use dopy_core::table::{Entry, ObjectTable};

pub use checks::{Point, Shape};

/// An error of the method's own.
#[derive(Debug, serde::Serialize, serde::Deserialize)]
pub struct DivideByZero(pub i64);

impl std::fmt::Display for DivideByZero {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "cannot divide {} by zero", self.0)
    }
}

/// A calculator with every kind of method, argument and result; no method can panic, so any
/// panic the dispatch target sees comes from dopy.
#[derive(Debug, Default)]
pub struct Calc {
    total: i64,
}

#[dopy::remote]
impl Calc {
    /// Two integers.
    pub fn add(&self, a: i64, b: i64) -> i64 {
        a.wrapping_add(b)
    }

    /// `&mut self`, async.
    pub async fn accumulate(&mut self, x: i64) -> i64 {
        self.total = self.total.wrapping_add(x);
        self.total
    }

    /// No arguments.
    pub fn total(&self) -> i64 {
        self.total
    }

    /// The method's own error.
    pub fn divide(&self, a: i64, b: i64) -> Result<i64, DivideByZero> {
        a.checked_div(b).ok_or(DivideByZero(a))
    }

    /// A vector of structs.
    pub fn centroid(&self, points: Vec<Point>) -> Point {
        let n = points.len().max(1) as f64;
        Point {
            x: points.iter().map(|p| p.x).sum::<f64>() / n,
            y: points.iter().map(|p| p.y).sum::<f64>() / n,
            label: points.first().and_then(|p| p.label.clone()),
            tags: points.into_iter().flat_map(|p| p.tags).collect(),
        }
    }

    /// Every kind of enum variant.
    pub fn area(&self, shape: Shape) -> f64 {
        match shape {
            Shape::Empty => 0.0,
            Shape::Circle(r) => 3.0 * r * r,
            Shape::Rect(w, h) => w * h,
            Shape::Polygon { points } => points.len() as f64,
        }
    }

    /// A string, an option, a map result.
    pub fn word_count(&self, text: String, min_len: Option<usize>) -> HashMap<String, u32> {
        let mut out = HashMap::new();
        for w in text.split_whitespace().filter(|w| w.len() >= min_len.unwrap_or(0)) {
            *out.entry(w.to_owned()).or_insert(0u32) += 1;
        }
        out
    }

    /// 128-bit integers and bytes.
    pub fn wide(&self, a: i128, b: u128, bytes: serde_bytes::ByteBuf) -> (i128, u128, serde_bytes::ByteBuf) {
        (a, b, bytes)
    }

    /// A dynamic value in and out.
    pub fn echo(&self, value: Value) -> Value {
        value
    }

    /// Chars, small integers, bools, tuples.
    pub fn small(&self, c: char, n: u8, m: i16, flag: bool, pair: (u32, Option<String>)) -> String {
        format!("{c}{n}{m}{flag}{pair:?}")
    }

    /// An object reference (none can be resolved without a connection).
    pub fn has_ref(&self, obj: Option<DynObject>) -> bool {
        obj.is_some()
    }
}

/// The table the dispatch target calls into: one [`Calc`] published as
/// [`checks::OBJECT_NAME`].
pub fn table() -> &'static ObjectTable {
    static TABLE: OnceLock<ObjectTable> = OnceLock::new();
    TABLE.get_or_init(|| {
        let table = ObjectTable::new();
        table.publish(checks::OBJECT_NAME, Entry::new(checks::OBJECT_NAME, Calc::default()));
        table
    })
}

/// A single-threaded runtime for the calls.
pub fn runtime() -> &'static tokio::runtime::Runtime {
    static RT: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RT.get_or_init(|| tokio::runtime::Builder::new_current_thread().build().expect("runtime"))
}
