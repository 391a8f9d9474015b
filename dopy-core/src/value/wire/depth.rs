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
    /// Puts the previous limit and flag back when the scope ends.
    struct Restore(usize, bool);

    impl Drop for Restore {
        fn drop(&mut self) {
            LIMIT.with(|l| l.set(self.0));
            EXCEEDED.with(|e| e.set(self.1));
        }
    }

    let previous = LIMIT.with(|l| l.replace(levels.clamp(1, DEPTH_CEILING)));
    let _restore = Restore(previous, EXCEEDED.with(|e| e.replace(false)));
    let out = f();
    (out, EXCEEDED.with(Cell::get))
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
