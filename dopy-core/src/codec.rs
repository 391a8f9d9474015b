//! The codec: the wire messages and their postcard encoding.
//!
//! `message` holds the protocol's types (one frame's content) and their serde impls; `encode`
//! and `decode` turn them into frames and back, with hand-written fast paths for the common
//! `Call` and `Return` (`fast`) and typed payloads kept in parts (`splice`); `typed` decodes a
//! peer's typed payloads with the stack they may use bounded; `Bytes` is the byte type for bulk
//! data, which the codec keeps uncopied. Below it: values (`value`), handles (`handle`), ids
//! (`id`) and the encoding arena (`arena`).

mod bytes;
mod decode;
mod encode;
mod fast;
pub mod message;
pub(crate) mod session;
mod splice;
pub(crate) mod typed;

pub use bytes::Bytes;
pub(crate) use decode::{frame_bytes, unshare, CallIn, Incoming};
pub(crate) use encode::{small_return, CallRef};
pub(crate) use fast::Small;
pub(crate) use message::*;
pub(crate) use splice::{offer, to_payload};
