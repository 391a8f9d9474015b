//! The nesting limit of values, in force on the current thread.
//!
//! Why a thread-local: the limit is a setting of the connection (its node's), but it must
//! reach [`serialize`](super::serialize), [`deserialize`](super::deserialize),
//! [`seq`](super::seq) and [`named`](super::named), which serde calls through
//! `#[serde(with = "...")]` with no parameter of ours, and postcard discards the message of
//! the error that refuses a value. So a connection sets the limit around an encode or a
//! decode with [`with_max_depth`], the serde encoder and decoder read it at every level (the
//! hand-written [`Reader`](super::Reader) once per value it takes), and a refusal is noted
//! beside it so that the caller can tell it from other errors. The level of each value is
//! passed explicitly down the recursion; only the limit and the "exceeded" flag live here.

use std::cell::Cell;
use std::fmt;

/// The deepest nesting of values accepted by default: the outermost value is at level 1, and
/// the contents of an option, sequence, map or variant are one level deeper than it.
pub const MAX_DEPTH: usize = 128;

/// The highest nesting limit [`with_max_depth`] applies: encoding and decoding recurse once per
/// level, and this many levels fit in a 2 MiB thread stack (a tokio worker's) with room to
/// spare, even in a debug build (maps overflow it at about 500 levels there).
pub const DEPTH_CEILING: usize = 256;

thread_local! {
    /// The nesting limit in force on this thread (see [`with_max_depth`]).
    static LIMIT: Cell<usize> = const { Cell::new(MAX_DEPTH) };
    /// Set when a value was refused for its nesting, so that the caller of [`with_max_depth`]
    /// can tell it from other errors (postcard drops the message).
    static EXCEEDED: Cell<bool> = const { Cell::new(false) };
}

/// The nesting limit in force on this thread: [`MAX_DEPTH`] unless inside [`with_max_depth`].
pub fn max_depth() -> usize {
    LIMIT.with(Cell::get)
}

/// Runs `f` with `levels` as the nesting limit of every value encoded or decoded on this
/// thread meanwhile; returns what `f` returned and whether a value was refused for exceeding
/// the limit.
///
/// `levels` is clamped to `1..=`[`DEPTH_CEILING`]. Serde's `with` functions take no
/// parameters, hence a thread-local setting; the previous limit is restored afterwards, even
/// if `f` panics.
///
/// # Examples
///
/// ```
/// use dopy_core::value::{wire, Value};
///
/// let two = Value::Option(Some(Box::new(Value::Unit)));
/// let bytes = postcard::to_allocvec(&wire::Wire(&two)).unwrap();
/// let (decoded, exceeded) = wire::with_max_depth(1, || {
///     let mut de = postcard::Deserializer::from_bytes(&bytes);
///     wire::deserialize(&mut de)
/// });
/// assert!(decoded.is_err() && exceeded);
/// ```
pub fn with_max_depth<T>(levels: usize, f: impl FnOnce() -> T) -> (T, bool) {
    let limit = DepthLimit::set(levels);
    let out = f();
    (out, limit.exceeded())
}

/// A nesting limit in force on this thread until it drops (see [`with_max_depth`]), which puts
/// the previous limit back, even during a panic's unwinding.
pub(crate) struct DepthLimit {
    previous: usize,
    exceeded_before: bool,
}

impl DepthLimit {
    /// Sets `levels` (clamped to `1..=`[`DEPTH_CEILING`]) as the limit of every value encoded or
    /// decoded on this thread until the returned guard drops.
    pub(crate) fn set(levels: usize) -> DepthLimit {
        let previous = LIMIT.with(|l| l.replace(levels.clamp(1, DEPTH_CEILING)));
        DepthLimit { previous, exceeded_before: EXCEEDED.with(|e| e.replace(false)) }
    }

    /// Whether a value was refused for its nesting since the limit was set.
    pub(crate) fn exceeded(&self) -> bool {
        EXCEEDED.with(Cell::get)
    }
}

impl Drop for DepthLimit {
    fn drop(&mut self) {
        LIMIT.with(|l| l.set(self.previous));
        EXCEEDED.with(|e| e.set(self.exceeded_before));
    }
}

/// The error message for a value nested deeper than the limit (see [`max_depth`]).
pub(super) struct TooDeep(usize);

impl TooDeep {
    /// The error for the limit in force, noted for [`with_max_depth`].
    pub(super) fn noted() -> TooDeep {
        EXCEEDED.with(|e| e.set(true));
        TooDeep(max_depth())
    }
}

impl fmt::Display for TooDeep {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "value nesting exceeds {} levels", self.0)
    }
}
