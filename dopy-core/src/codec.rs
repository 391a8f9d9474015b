//! The codec: the wire messages and their postcard encoding.
//!
//! `message` holds the protocol's types (one frame's content) and their encoders and decoders,
//! with hand-written fast paths for the common `Call` and `Return` (`message/fast.rs`) and typed
//! payloads kept in parts (`message/splice.rs`); `typed` decodes a peer's typed payloads with
//! the stack they may use bounded; `Bytes` is the byte type for bulk data, which the codec
//! keeps uncopied. Below it: values (`value`), handles (`handle`), ids (`id`)
//! and the encoding arena (`arena`).

mod bytes;
pub mod message;
pub(crate) mod typed;

pub use bytes::Bytes;
pub(crate) use message::*;
