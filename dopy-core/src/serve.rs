//! Serving: what stands between a connection and the objects it calls.
//!
//! `dispatch` is the [`Dispatch`](dispatch::Dispatch) trait with its `Invocation` and replies;
//! `table` the objects a node serves with their locks and queues; `chain` the call chains
//! (deadlines and re-entrancy across nested calls); `panic` catching a method's panic with its
//! trace; `local` serving `!Send` objects on the thread that owns them.

pub(crate) mod chain;
pub mod dispatch;
pub mod local;
pub mod panic;
pub mod table;

pub(crate) use chain::deadline;
