#![doc = include_str!("../README.md")]
//!
//! # Crate layout
//!
//! - [`Node`]: publish objects, listen, connect, get proxies ([`Node::proxy`]) or dynamic
//!   handles ([`Node::object`]).
//! - [`remote`]: the attribute that makes an `impl` block callable by name and generates its
//!   typed proxy.
//! - [`Value`], [`to_value`], [`from_value`]: dynamic data for untyped callers.
//! - [`CallError`]: what a call can end with, with the server-side trace (`{:#}` prints it
//!   all); [`Error`]: what a node's operations end with, and any call error converted by `?`.
//! - [`Address`], [`Endpoint`]: `tcp://HOST:PORT/OBJECT` URLs.
//! - [`blocking`]: the same without an async runtime: a blocking node and blocking proxies.
//!
//! For advanced uses, three documented modules:
//!
//! - [`dispatch`]: hand-written dispatchers ([`Dispatch`] implemented by hand, [`DynArgs`],
//!   [`dispatch::bad_args`], ...);
//! - [`protocol`]: the wire types ([`protocol::Message`], [`protocol::Call`],
//!   [`protocol::Target`], [`protocol::ObjectId`], ...), for raw-frame tools and peers in other
//!   languages;
//! - [`transport`]: byte streams, TLS settings and the handshake, for custom transports.
//!
//! # Features
//!
//! | feature | default | what it adds |
//! |---|---|---|
//! | `services` | on | `dopy::naming` and `dopy::persist`: the name service and persistent objects, on redb |
//! | `tls` | on | `tls://` endpoints and [`dopy::transport::tls`](transport) (rustls with `ring`); without it, neither is compiled and a `tls://` endpoint is refused with [`Error::InvalidAddress`] naming the feature |
//!
//! `default-features = false` gives the core: every other transport, typed and dynamic calls,
//! references, the blocking API.
#![doc(test(attr(deny(warnings))))]
#![cfg_attr(docsrs, feature(doc_cfg))]

// `#[dopy::remote]` expands to `::dopy::…` paths, which the services' own remote objects need too.
#[cfg(feature = "services")]
extern crate self as dopy;

mod address;
pub mod blocking;
pub mod dispatch;
mod error;
mod into_proxy;
mod node;
pub mod protocol;
pub mod transport;

#[cfg(feature = "services")]
#[cfg_attr(docsrs, doc(cfg(feature = "services")))]
pub mod naming;
#[cfg(feature = "services")]
#[cfg_attr(docsrs, doc(cfg(feature = "services")))]
pub mod persist;

#[doc(hidden)]
#[path = "private.rs"]
pub mod __private;

pub use address::{Address, Endpoint, IntoAddress};
pub use dopy_core::{from_value, to_value, CompactString, Value};
pub use dopy_core::{Args, DynArgs};
pub use dopy_core::{Bytes, CallSite, Trace};
pub use dopy_core::{CallError, CodecError, DisconnectCause, Disconnected, ProtocolError};
pub use dopy_core::{Connection, DynObject, LocalExecutor, Proxy, Remote, RemoteObject};
pub use dopy_core::{Dispatch, Dispatched, Invocation};
pub use dopy_core::{Interface, MethodInfo, ParamInfo, Receiver};
pub use error::Error;
pub use into_proxy::IntoProxy;
pub use node::{Node, NodeBuilder};

/// `Result` with [`Error`] as the default error type.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Makes the `pub` methods of an inherent `impl` block callable by name, and generates a typed
/// proxy.
///
/// ```
/// #[derive(Default)]
/// pub struct Calculator { total: i64 }
///
/// #[dopy::remote]
/// impl Calculator {
///     /// Adds two numbers.
///     pub fn add(&self, a: i64, b: i64) -> i64 { a + b }
///     /// Adds to the running total and returns it.
///     pub async fn accumulate(&mut self, x: i64) -> i64 { self.total += x; self.total }
///     fn helper(&self) {} // not `pub`: stays local
/// }
/// # let _ = Calculator::default().helper();
/// ```
///
/// # What it generates
///
/// For `impl Calculator`:
/// - `impl dopy::Dispatch for Calculator`: the dispatch table by method name, accepting typed
///   (postcard) and dynamic ([`Value`], positional or named) arguments, and the introspection
///   table ([`Interface`]) built from the signatures and doc comments;
/// - `CalculatorProxy`: a typed proxy (`Clone + Send + Sync`, cheap to share across tasks) with
///   one `async` method per remote method, returning `Result<T, dopy::CallError>`, or
///   `Result<T, dopy::CallError<E>>` for a method returning `Result<T, E>` (`?` converts either
///   into a [`dopy::Error`]);
/// - `CalculatorBlockingProxy`: its blocking twin, for code without an async runtime (the same
///   methods without `async`; see [`blocking`]);
/// - `impl dopy::Remote for Calculator { type Proxy = CalculatorProxy; }`.
///
/// # `#[dopy::remote(local)]`: objects that are not `Send`
///
/// The attribute takes no arguments, or `local` (anything else is a compile error). With
/// `local`, the object may be `!Send` and `!Sync` (`Rc`, `RefCell`): the macro implements
/// `LocalDispatch` instead of `Dispatch`, and the object is published with
/// [`Node::publish_local`], which hands back an executor that the owning thread runs
/// (`tokio::task::spawn_local` in a `LocalSet`, or polled in the program's own loop): its calls
/// all run on that thread. Callers see no difference: the proxies are the same as for any
/// object, usable from any thread.
///
/// ```
/// use std::cell::Cell;
/// use std::rc::Rc;
///
/// pub struct Counter { n: Rc<Cell<i64>> }
///
/// #[dopy::remote(local)]
/// impl Counter {
///     /// Adds one and returns the count.
///     pub fn bump(&self) -> i64 { self.n.set(self.n.get() + 1); self.n.get() }
/// }
///
/// # fn main() -> dopy::Result<()> {
/// let node = dopy::Node::new();
/// let _executor = node.publish_local("counter", Counter { n: Rc::new(Cell::new(0)) })?;
/// # Ok(())
/// # }
/// ```
///
/// # Rules
///
/// - Remote methods take `&self` (may run concurrently) or `&mut self` (run alone), may be
///   `async`, and take owned parameters of any serde type (`DeserializeOwned`); they return any
///   `Serialize` type, or `Result<T, E>` with `E: Serialize + DeserializeOwned + Display`.
/// - No generic methods, no `impl Trait` arguments, no references as parameters or results
///   (arguments travel by copy): neither `&str` nor a reference inside a tuple, an array, a
///   slice or a standard container (`Option<&str>`, `Vec<&[u8]>`). A `&` that is not a value
///   (`PhantomData<&'static str>`, `fn(&str)`) is left to the serde bounds.
/// - Typed arguments travel as postcard, which is not self-describing: serde attributes that
///   need a self-describing format (`untagged`, `flatten`, `skip_serializing_if`) do not work in
///   parameter types; a mismatch is reported as [`CallError::BadArguments`] (a result, as
///   [`CallError::Codec`]) that says so.
/// - For dynamic data, use [`Value`]: it travels as (or inside) a typed parameter or result,
///   explicitly tagged, and arrives as it was sent. Other crates' dynamic types
///   (`serde_json::Value`, `toml::Value`, ...) need a self-describing format: the macro refuses
///   them in a signature and points to [`Value`] ([`to_value`] and [`from_value`] convert).
///
/// # Method attributes
///
/// - `#[dopy(name = "remote_name")]`: the name callers use (default: the method's name);
/// - `#[dopy(skip)]`: keep a `pub` method local;
/// - `#[dopy(oneway)]`: no reply is sent; the proxy returns once the call is written to the
///   transport (methods returning `()` only); introspection shows it as oneway.
/// - `#[dopy(no_cancel)]`: the method runs to the end even when its caller cancels (drops the
///   call's future) or the call's deadline passes; other methods are stopped at their next
///   `.await`.
/// - `#[dopy(inline)]` (synchronous methods only): the method is short and never blocks, so a
///   call that can complete at once is served in the connection's reader, without a task of
///   its own (about a third fewer instructions per pipelined call); one that would wait (the
///   object is held by a `&mut self` call) gets a task as usual. An inline method that blocks
///   holds every other call on its connection; without the attribute, `&self` calls run in
///   parallel.
pub use dopy_macros::remote;
