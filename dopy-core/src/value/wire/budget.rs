//! The memory budget of decoding, in force on the current thread, and the caps on what a
//! length read from the input may pre-allocate.
//!
//! A thread-local for the reason the nesting limit is one (see [`super::depth`]): the decoders
//! serde calls through `#[serde(with = "...")]` take no parameter of ours.

use std::cell::Cell;

thread_local! {
    /// Bytes the values decoded on this thread may still take (see [`with_budget`]).
    static BUDGET: Cell<usize> = const { Cell::new(usize::MAX) };
    /// Set when a value was refused because its decoding would pass the budget.
    static OVER: Cell<bool> = const { Cell::new(false) };
}

/// What decoding a `Value` of `len` input bytes may take in memory, with a node's expansion
/// factor: `factor` times the input, and at least 1 MiB (so that small messages never meet it).
pub fn budget_for(len: usize, factor: usize) -> usize {
    len.saturating_mul(factor).max(1 << 20)
}

/// Runs `f` with `bytes` as what the values it decodes on this thread may take in memory
/// (each value's 48 bytes as its container allocates them, the heap of long strings, byte
/// strings and boxes); returns what `f` returned and whether a value was refused for passing
/// it. Outside, decoding is not charged. (See [`BudgetScope`] for the same without a closure.)
///
/// A dynamic value is amplified when decoded: a `Unit` is one byte on the wire and 48 in
/// memory, so a 16 MiB frame of units would take 800 MiB (and more while vectors double).
/// The budget is charged as the containers grow, so the refusal comes before the memory is
/// taken.
pub fn with_budget<T>(bytes: usize, f: impl FnOnce() -> T) -> (T, bool) {
    let scope = BudgetScope::new(bytes);
    let out = f();
    (out, scope.exceeded())
}

/// A decoding budget in force on this thread until the scope is dropped (see [`with_budget`]);
/// the previous budget comes back then, even if the decode panicked.
#[derive(Debug)]
pub struct BudgetScope {
    previous: usize,
    was_over: bool,
}

impl BudgetScope {
    /// Puts `bytes` in force as the budget of the values decoded on this thread.
    pub fn new(bytes: usize) -> Self {
        BudgetScope { previous: BUDGET.with(|b| b.replace(bytes)), was_over: OVER.with(|o| o.replace(false)) }
    }

    /// Whether a value was refused for passing the budget since the scope began.
    pub fn exceeded(&self) -> bool {
        OVER.with(Cell::get)
    }
}

impl Drop for BudgetScope {
    fn drop(&mut self) {
        BUDGET.with(|b| b.set(self.previous));
        OVER.with(|o| o.set(self.was_over));
    }
}

/// The budget left on this thread (see [`with_budget`]).
pub(crate) fn budget_left() -> usize {
    BUDGET.with(Cell::get)
}

/// Sets what is left of the budget (a reader that kept the count itself gives it back).
pub(crate) fn set_budget_left(left: usize) {
    BUDGET.with(|b| b.set(left));
}

/// Takes `bytes` from the budget; false (noted for [`with_budget`]) when not that much is left.
#[inline]
pub(crate) fn charge(bytes: usize) -> bool {
    BUDGET.with(|b| match b.get().checked_sub(bytes) {
        Some(left) => {
            b.set(left);
            true
        }
        None => {
            OVER.with(|o| o.set(true));
            false
        }
    })
}

/// The error message for a value whose decoding would pass the budget.
pub(super) const OVER_BUDGET: &str = "decoded values would take more memory than the limit allows";

/// Strings up to this many bytes are kept inline in a `Value` (no heap to charge).
pub(super) const INLINE_STRING: usize = 24;

/// Bytes pre-allocated from a length read from the input, at most (per sequence).
pub(super) const MAX_PREALLOC_BYTES: usize = 4096;
