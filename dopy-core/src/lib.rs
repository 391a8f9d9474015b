//! Protocol and object model of dopy, with no I/O of its own.
//!
//! - [`Value`]: dynamic data, with [`to_value`] / [`from_value`] for any serde type;
//! - [`message`]: the wire messages (postcard-encoded, one per frame);
//! - [`dispatch`]: the [`Dispatch`] trait between connections and objects;
//! - [`interface`]: introspection of remote methods;
//! - [`peer`]: one symmetric connection (call ids, pending calls, serving);
//! - [`CallError`]: what a call can end with, with the server-side trace, and its typed causes
//!   ([`CodecError`], [`ProtocolError`], [`Disconnected`]).
//!
//! Most users depend on the `dopy` crate, which re-exports what is meant for them.
#![doc(test(attr(deny(warnings))))]

mod arena;
mod codec;
pub mod error;
mod handle;
mod id;
pub mod interface;
pub mod object;
pub mod peer;
mod serve;
pub mod value;

pub use codec::message;
pub use codec::message::{Args, Call, Fault, FaultKind, Hop, Message, ObjectId, Outcome, Payload, RefWire, Target};
pub use codec::Bytes;
pub use error::{BoxError, CallError, CallSite, CodecError, DisconnectCause, Disconnected, ProtocolError, Trace};
pub use handle::{Connection, DynObject};
pub use interface::{Interface, MethodInfo, ParamInfo, Receiver, RESERVED_PREFIX};
pub use object::{Proxy, Remote, RemoteObject};
pub use peer::{Heartbeat, Host, WeakConnection};
pub use serve::dispatch::{bad_args, Answer, ArgList, BoxFuture, DynArgs, Reply, Responder};
pub use serve::dispatch::{Dispatch, Dispatched, Invocation, InvocationParts};
pub use serve::local::{local_object, LocalDispatch, LocalDispatched, LocalExecutor};
pub use serve::table::Entry;
pub use serve::{dispatch, local, panic, table};
pub use value::wire::{Wire, DEPTH_CEILING};
pub use value::{from_value, to_value, Value};
pub use value::{wire, CompactString};
