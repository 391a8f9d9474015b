//! Protocol and object model of dopy, with no I/O of its own.
//!
//! - [`Value`]: dynamic data, with [`to_value`] / [`from_value`] for any serde type;
//! - [`message`]: the wire messages (postcard-encoded, one per frame);
//! - [`dispatch`]: the [`Dispatch`] trait between connections and objects;
//! - [`interface`]: introspection of remote methods;
//! - [`peer`]: one symmetric connection (call ids, pending calls, serving);
//! - [`Error`]: what a call can end with, with the server-side trace.
//!
//! Most users depend on the `dopy` crate, which re-exports what is meant for them.
#![doc(test(attr(deny(warnings))))]

mod bulk;
mod chain;
pub mod dispatch;
pub mod error;
pub mod interface;
pub mod local;
pub mod message;
pub mod object;
pub mod panic;
pub mod peer;
mod refs;
pub mod table;
mod typed;
pub mod value;

pub use bulk::Bytes;
pub use dispatch::{bad_args, Answer, ArgList, BoxFuture, DynArgs, Reply, Responder};
pub use dispatch::{Dispatch, Dispatched, Invocation};
pub use error::{CallSite, Error, Trace};
pub use interface::{Interface, MethodInfo, ParamInfo, Receiver, RESERVED_PREFIX};
pub use local::{local_object, LocalExecutor};
pub use local::{LocalDispatch, LocalDispatched};
pub use message::{Args, Call, Fault, FaultKind, Hop, Message, ObjectId, Outcome, Payload, RefWire, Target};
pub use object::{DynObject, Proxy, Remote, RemoteObject};
pub use peer::{Connection, Host};
pub use peer::{Heartbeat, WeakConnection};
pub use table::Entry;
pub use value::wire::{Wire, DEPTH_CEILING};
pub use value::{from_value, to_value, Value};
pub use value::{wire, CompactString};
