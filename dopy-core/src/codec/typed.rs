//! Decoding typed (postcard) payloads that a peer sent, with the stack the decode may use bounded.
//!
//! A typed argument or result of a recursive type (an AST, a tree, a linked list) nests as deep
//! as its bytes say: one byte per level is enough, so a 100 KB frame can ask for 100,000 levels,
//! and serde decodes each level in a stack frame of its own. Unbounded, that overflows the
//! thread's stack, which aborts the whole process (not a panic: nothing can catch it).
//!
//! [`Guarded`] wraps postcard's slice flavor and, at every byte it hands out, checks how far the
//! stack has grown since the decode began; past [`MAX_DECODE_STACK`] it refuses the input. A
//! finite value of any type reads at least one byte per level of nesting (an enum's
//! discriminant, an option's tag or a length), so the check sees every level. It bounds what
//! really runs out (stack bytes, whatever the frames of the types involved weigh, in debug and
//! release builds alike) at the cost of one comparison per byte read, where a depth-counting
//! wrapper would have to wrap every serde method and visitor. A value refused this way was
//! never built deeper than the bound, so dropping what was built cannot overflow either.

use std::cell::Cell;
use std::marker::PhantomData;

use postcard::de_flavors::{Flavor, Slice};
use serde::de::DeserializeOwned;

/// The most stack a typed decode may use, beyond where it began: a quarter of the 2 MiB that
/// tokio's worker threads (and Rust's spawned threads) have by default.
pub(crate) const MAX_DECODE_STACK: usize = 512 * 1024;

/// The stack position of the caller: the address of a local.
#[inline(always)]
fn stack_position() -> usize {
    let marker = 0u8;
    std::ptr::addr_of!(marker) as usize
}

/// Postcard's slice flavor, refusing to go on once the decode has used more than
/// [`MAX_DECODE_STACK`] bytes of stack (noted in `exceeded`).
pub(crate) struct Guarded<'de> {
    inner: Slice<'de>,
    base: usize,
    exceeded: &'de Cell<bool>,
    _input: PhantomData<&'de [u8]>,
}

impl<'de> Guarded<'de> {
    /// A flavor reading `input`, measuring the stack from here.
    pub(crate) fn new(input: &'de [u8], exceeded: &'de Cell<bool>) -> Self {
        Guarded { inner: Slice::new(input), base: stack_position(), exceeded, _input: PhantomData }
    }

    #[inline(always)]
    fn check(&self) -> postcard::Result<()> {
        // Stacks grow down on every platform Rust supports but a few; measure either way.
        if stack_position().abs_diff(self.base) > MAX_DECODE_STACK {
            self.exceeded.set(true);
            return Err(postcard::Error::DeserializeBadEncoding);
        }
        Ok(())
    }
}

impl<'de> Flavor<'de> for Guarded<'de> {
    type Remainder = &'de [u8];
    type Source = &'de [u8];

    #[inline]
    fn pop(&mut self) -> postcard::Result<u8> {
        self.check()?;
        self.inner.pop()
    }

    #[inline]
    fn size_hint(&self) -> Option<usize> {
        self.inner.size_hint()
    }

    #[inline]
    fn try_take_n(&mut self, ct: usize) -> postcard::Result<&'de [u8]> {
        self.check()?;
        self.inner.try_take_n(ct)
    }

    fn finalize(self) -> postcard::Result<&'de [u8]> {
        self.inner.finalize()
    }
}

/// A postcard deserializer over `input` whose stack use is bounded (see [`Guarded`]).
pub(crate) type Deserializer<'de> = postcard::Deserializer<'de, Guarded<'de>>;

/// Why a typed payload did not decode: `exceeded` says the stack bound stopped it.
pub(crate) fn reason(e: &postcard::Error, exceeded: bool) -> String {
    if exceeded {
        return format!(
            "nesting too deep: decoding it would use more than {} KiB of stack (dopy's limit for typed data)",
            MAX_DECODE_STACK / 1024
        );
    }
    match e {
        postcard::Error::WontImplement => "its type needs a self-describing format (its `Deserialize` uses \
             `deserialize_any`, as `serde_json::Value`, `#[serde(untagged)]` and `#[serde(flatten)]` do), \
             which typed calls (postcard) cannot carry; use `dopy::Value` for dynamic data"
            .to_owned(),
        e => e.to_string(),
    }
}

/// Decodes a `T` from the start of `input`, with the stack bounded; the error says why.
pub(crate) fn from_bytes<T: DeserializeOwned>(input: &[u8]) -> Result<T, String> {
    let exceeded = Cell::new(false);
    let mut de = postcard::Deserializer::from_flavor(Guarded::new(input, &exceeded));
    T::deserialize(&mut de).map_err(|e| reason(&e, exceeded.get()))
}
