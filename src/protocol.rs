//! The wire types of the dopy protocol (PROTOCOL.md), for tools that speak it without a
//! [`Node`](crate::Node): raw-frame tests, peers in other languages, protocol inspectors.
//!
//! Each frame carries one [`Message`], encoded with postcard. A call is a [`Message::Call`]
//! holding a [`Call`] (a [`Target`] object, a method name, [`Args`]); its answer is a
//! [`Message::Return`] holding an [`Outcome`]: a [`Payload`] or a [`Fault`]. Object references
//! travel as [`RefWire`]s, and a dynamic [`Value`](crate::Value) travels as [`Wire`].
//!
//! A [`Target`] also names an object for [`DynObject::new`](crate::DynObject::new), to make a
//! handle from an object id or a name on a [`Connection`](crate::Connection).
//!
//! # Examples
//!
//! ```
//! use dopy::protocol::{ObjectId, Target};
//!
//! let by_name = Target::Name("calc".into());
//! let by_id = Target::Id(ObjectId::random());
//! assert_ne!(by_name, by_id);
//! ```

pub use dopy_core::{Args, Call, Fault, FaultKind, Hop, Message, ObjectId, Outcome, Payload, RefWire, Target, Wire};
