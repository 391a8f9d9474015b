//! The wire encoding of a [`Value`](super::Value): an explicitly tagged enum that postcard can carry.
//!
//! Postcard is not self-describing, so a [`Value`](super::Value) cannot travel as its data-model form; it is
//! written as a serde enum named `Value` whose variant index (a varint in postcard) is a stable
//! tag, followed by the payload:
//!
//! | tag | variant   | payload                                                         |
//! |-----|-----------|-----------------------------------------------------------------|
//! | 0   | `Unit`    | none (unit variant)                                             |
//! | 1   | `Bool`    | `bool`                                                          |
//! | 2   | `Int`     | `i64` (zigzag varint)                                           |
//! | 3   | `UInt`    | `u64` (varint)                                                  |
//! | 4   | `Int128`  | `i128` (zigzag varint)                                          |
//! | 5   | `UInt128` | `u128` (varint)                                                 |
//! | 6   | `Float`   | `f64` (8 bytes, little-endian)                                  |
//! | 7   | `Char`    | `char` (as a string)                                            |
//! | 8   | `String`  | string: varint length, UTF-8 bytes                              |
//! | 9   | `Bytes`   | byte string: varint length, raw bytes                           |
//! | 10  | `Option`  | option: `0` for none, `1` then the inner wire value for some    |
//! | 11  | `Seq`     | sequence: varint length, wire values                            |
//! | 12  | `Map`     | sequence: varint length, (key, value) pairs of wire values      |
//! | 13  | `Variant` | 2-tuple: name string, payload wire value                        |
//!
//! For example `Value::Int(-1)` is `[2, 1]` and `Value::String("hi".into())` is
//! `[8, 2, b'h', b'i']`.
//!
//! Use [`serialize`] and [`deserialize`] with `#[serde(with = "...")]` on a [`Value`](super::Value) field,
//! [`seq`] on a `Vec<Value>` field and [`named`] on a `Vec<(String, Value)>` field, or wrap a
//! borrowed value in [`Wire`]. Encoding borrows the value tree; it is never copied.
//!
//! Decoding faces untrusted input: values nested more than [`MAX_DEPTH`] levels deep are
//! rejected (on encoding too, so that a peer never receives what it would refuse), and no
//! length read from the input pre-allocates more than 4 KiB: every level of a nested value
//! may pre-allocate, so a few KiB of input nesting claims of 4096 elements would otherwise
//! allocate 128 times 4096 elements of 48 bytes or more (found by `dopy-core/tests/props.rs`).
//! A connection applies its node's own nesting limit instead with [`with_max_depth`].
//!
//! Postcard discards the message of custom errors: through postcard, an invalid tag or an
//! excessive nesting is reported as its generic serde error ([`with_max_depth`] says which
//! it was).

mod budget;
mod decode;
mod depth;
mod direct;
mod encode;
pub mod named;
mod read;
pub mod seq;
mod tag;
#[cfg(test)]
mod tests;
mod varint;

pub use budget::{budget_for, with_budget, BudgetScope};
pub use decode::deserialize;
pub(crate) use depth::DepthLimit;
pub use depth::{max_depth, with_max_depth, DEPTH_CEILING, MAX_DEPTH};
pub use direct::{to_wire, WireValue};
pub use encode::{serialize, Wire};
pub(crate) use read::{take, Reader};
pub(crate) use varint::{push_varint64, varint_len};
