//! The codec session: the state encoders and decoders keep per thread while one message is
//! encoded or decoded, set in one place.
//!
//! serde calls `Serialize` and `Deserialize` impls with no context of ours, so what an encode
//! or decode needs beyond its input lives in thread-locals for the duration of that one
//! (synchronous) call: the message's reference table ([`OutTable`] while encoding, [`InTable`]
//! while decoding: a `DynObject` inside any value becomes an index into it), the frame its
//! large byte strings may be slices of ([`SharedFrame`]), the nesting limit of its connection
//! ([`DepthLimit`]) and the memory its values may take decoded ([`BudgetScope`]). Each is a
//! guard: set when made, the previous state back when it drops (also during a panic's
//! unwinding), so sessions nest. No closure is handed down: the caller keeps control, and the
//! layers below do not call back up.
//!
//! Two more thread-locals are not part of a session because they outlive it: the arena small
//! encodings are written into (`arena`, which lends its chunk to a write callback for the length
//! of one write: a guard that took the chunk out and put it back cost 3 % per call), and the byte
//! strings offered while a payload is written in parts (`splice`, entered by `to_payload`).

pub(crate) use super::decode::Shared as SharedFrame;
pub(crate) use crate::value::refs::{InTable, OutTable};
pub(crate) use crate::value::wire::{BudgetScope, DepthLimit};
