//! Client side: [`DynObject`] (a handle to an object, called by method name), the [`Proxy`]
//! trait of generated typed proxies, and [`Remote`] (an object passed by reference).

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use serde::de::DeserializeOwned;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::codec::session::{InTable, OutTable, SharedFrame};
use crate::codec::{flags, Args, Fault, FaultKind, Outcome, Payload};
use crate::error::CallSite;
use crate::handle::{Connection, DynObject, Via};
use crate::interface::{Interface, METHODS};
use crate::peer::CallTo;
use crate::serve::dispatch::{Answer, Dispatch, Dispatched, Invocation, InvocationParts, Reply};
use crate::serve::table::Entry;
use crate::value::refs;
use crate::value::{from_value, to_value, Value};
use crate::{BoxError, CallError, CodecError};

/// Typed proxies over a connection.
impl Connection {
    /// A typed proxy (`CalculatorProxy`) to the object the peer publishes under `name`, as
    /// [`object`](Connection::object).
    pub fn proxy<P: Proxy>(&self, name: &str) -> P {
        P::from_object(self.object(name))
    }
}

/// The client side of a [`DynObject`]: calls by name, typed calls, forwarding.
impl DynObject {
    /// A handle that calls an object of this process directly, without a connection (what a
    /// [`Remote`] holds on the side that made it).
    pub fn in_process<T: Dispatch>(object: T) -> Self {
        let label = object.interface().name.into_owned();
        Self::from_entry(Arc::new(Entry::new(label, object)))
    }

    /// When a call made now must be answered: this handle's limit, or less if the call is made
    /// while serving a call with less time left.
    fn deadline(&self) -> Option<Instant> {
        let own = self.0.timeout.map(|t| Instant::now() + t);
        match (own, crate::serve::deadline()) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    fn site(&self, method: &str) -> CallSite {
        let (endpoint, object) = match &self.0.via {
            Via::Remote { conn, target, .. } => (conn.endpoint().to_owned(), target.to_string()),
            Via::Local(entry) => ("local".to_owned(), entry.name().to_owned()),
            other => ("nowhere".to_owned(), DynObject::from_via(other.clone()).to_string()),
        };
        CallSite { endpoint, object, method: method.to_owned() }
    }

    /// Sends a call with raw arguments; the future yields the raw outcome and its references.
    fn invoke<'a, E>(&'a self, method: &'a str, args: Args, refs: Vec<DynObject>, call_flags: u32) -> Invoke<'a, E> {
        let deadline = self.deadline();
        match &self.0.via {
            Via::Remote { conn, target, .. } => {
                Invoke::Remote(conn.call_to(target, method, args, refs, call_flags, deadline))
            }
            // Boxed: the local path's state (the served call, its deadline) would otherwise
            // make every remote call's future as large as itself (1.7 KiB; each move of a call
            // future, into a task or a `FuturesUnordered`, copies it).
            Via::Local(_) => {
                let entry = self.local_entry().expect("a local handle holds an entry");
                Invoke::Local(Box::pin(invoke_local(entry, method, args, refs, call_flags, deadline)))
            }
            Via::Unresolved(_) | Via::Dangling(_) => {
                let fault = Fault::new(FaultKind::NoSuchObject, format!("cannot call `{method}` on {self}"));
                Invoke::Failed(Some(Box::new(CallError::from_fault(fault, self.site(method), |_| None))))
            }
        }
    }

    /// Calls a method with positional arguments.
    ///
    /// # Errors
    ///
    /// Any [`CallError`]: the method's own error arrives as [`CallError::Method`] holding a [`Value`].
    pub async fn call<I>(&self, method: &str, args: I) -> Result<Value, CallError>
    where
        I: IntoIterator<Item = Value>,
    {
        self.call_args(method, Args::Positional(args.into_iter().collect())).await
    }

    /// Calls a method with named (keyword) arguments, by the parameter names in the source.
    ///
    /// # Errors
    ///
    /// As [`call`](DynObject::call); a missing or unknown name gives [`CallError::BadArguments`].
    pub async fn call_named<K, I>(&self, method: &str, args: I) -> Result<Value, CallError>
    where
        K: Into<String>,
        I: IntoIterator<Item = (K, Value)>,
    {
        self.call_args(method, Args::Named(args.into_iter().map(|(k, v)| (k.into(), v)).collect())).await
    }

    async fn call_args(&self, method: &str, args: Args) -> Result<Value, CallError> {
        let (outcome, refs) = self.invoke(method, args, Vec::new(), flags::DYNAMIC_RESULT).await?;
        self.finish(method, outcome, &refs, |p| match p {
            Payload::Dynamic(v) => Ok(v),
            Payload::Wire(wire) => wire.decode().map_err(Into::into),
            Payload::Typed(_) | Payload::TypedParts(_) => {
                Err("the peer answered a dynamic call with typed data".into())
            }
        })
    }

    /// Asks the object for its interface: methods, parameter names and types, docs.
    ///
    /// # Errors
    ///
    /// Any [`CallError`] of the call.
    pub async fn methods(&self) -> Result<Interface, CallError> {
        self.call_typed::<_, Interface, Value>(METHODS, ()).await
    }

    /// Calls a method with typed arguments and decodes a typed result (what generated proxies
    /// use). `args` is the tuple of arguments.
    ///
    /// # Errors
    ///
    /// Any [`CallError`]; the method's own error arrives as [`CallError::Method`] holding an `E`.
    pub async fn call_typed<A, R, E>(&self, method: &str, args: A) -> Result<R, CallError<E>>
    where
        A: Serialize + Send,
        R: DeserializeOwned,
        E: DeserializeOwned,
    {
        let mut dynamic = self.0.dynamic_only.load(Ordering::Relaxed);
        loop {
            let (wire, refs) = encode_args(&args, dynamic).map_err(CallError::Codec)?;
            let (outcome, refs) = self.invoke(method, wire, refs, 0).await?;
            match outcome {
                Outcome::Err(fault) if fault.kind == FaultKind::DynamicArgsRequired && !dynamic => {
                    self.0.dynamic_only.store(true, Ordering::Relaxed);
                    dynamic = true;
                }
                outcome => return self.finish(method, outcome, &refs, decode_payload),
            }
        }
    }

    /// Sends a oneway call: no reply is awaited.
    ///
    /// # Errors
    ///
    /// [`CallError::Codec`] when the arguments cannot be encoded, [`CallError::Disconnected`] when the
    /// connection has ended.
    pub async fn call_oneway<A: Serialize + Send>(&self, method: &str, args: A) -> Result<(), CallError> {
        let dynamic = self.0.dynamic_only.load(Ordering::Relaxed);
        let (wire, refs) = encode_args(&args, dynamic).map_err(CallError::Codec)?;
        self.invoke(method, wire, refs, flags::ONEWAY).await.map(|_| ())
    }

    fn finish<R, E: DeserializeOwned>(
        &self,
        method: &str,
        outcome: Outcome,
        refs: &[DynObject],
        decode: impl FnOnce(Payload) -> Result<R, BoxError>,
    ) -> Result<R, CallError<E>> {
        let _refs = InTable::push(refs);
        match outcome {
            Outcome::Ok(payload) => decode(payload).map_err(|source| {
                CallError::Codec(CodecError::with_source(
                    format!("the result of `{method}` could not be decoded"),
                    source,
                ))
            }),
            Outcome::Err(fault) => Err(CallError::from_fault(*fault, self.site(method), decode_detail::<E>)),
        }
    }

    /// Forwards a call received for this handle (when a reference received from one peer is
    /// handed on to another, the second peer's calls travel through here).
    async fn forward(&self, inv: Invocation) -> Reply {
        let InvocationParts { method, args, dynamic_result, refs, .. } = inv.into_parts();
        let call_flags = if dynamic_result { flags::DYNAMIC_RESULT } else { 0 };
        match self.invoke::<Value>(&method, args, refs, call_flags).await {
            Ok((Outcome::Ok(payload), refs)) => Ok(Answer { payload, refs }),
            Ok((Outcome::Err(fault), _)) => Err(fault),
            Err(e) => Err(Box::new(Fault::new(FaultKind::NoSuchObject, format!("forwarded call failed: {e}")))),
        }
    }
}

/// A `DynObject` handed on to another peer is served by forwarding.
impl Dispatch for DynObject {
    fn interface(&self) -> Interface {
        Interface::from_static("forwarded reference", "Calls are forwarded to the original object.", &[])
    }

    fn dispatch(&self, call: Invocation) -> Dispatched<'_> {
        Dispatched::Pending(Box::pin(self.forward(call)))
    }
}

/// The future of [`DynObject::invoke`]: a remote call ([`CallTo`], small), a local one (boxed)
/// or a call that cannot be made.
enum Invoke<'a, E> {
    Remote(CallTo<'a, E>),
    Local(Pin<Box<dyn Future<Output = (Outcome, Vec<DynObject>)> + Send + 'a>>),
    /// Boxed, taken by the first poll.
    Failed(Option<Box<CallError<E>>>),
}

impl<E> Future for Invoke<'_, E> {
    type Output = Result<(Outcome, Vec<DynObject>), CallError<E>>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match self.get_mut() {
            Invoke::Remote(call) => Pin::new(call).poll(cx),
            Invoke::Local(call) => call.as_mut().poll(cx).map(Ok),
            Invoke::Failed(error) => Poll::Ready(Err(*error.take().expect("a failed call's future polled again"))),
        }
    }
}

/// A call of an object of this process (see [`DynObject::invoke`]).
async fn invoke_local(
    entry: Arc<Entry>,
    method: &str,
    args: Args,
    refs: Vec<DynObject>,
    call_flags: u32,
    deadline: Option<Instant>,
) -> (Outcome, Vec<DynObject>) {
    let inv = Invocation::new(method, args, call_flags & flags::DYNAMIC_RESULT != 0, refs);
    let reply = if deadline.is_some_and(|d| d <= Instant::now()) {
        // As a remote callee does: a call whose deadline has passed is not run.
        Err(Box::new(crate::peer::expired_on_arrival(method)))
    } else if method == METHODS && !entry.forwards() {
        inv.answer_methods(entry.interface())
    } else {
        // A local call is part of the caller's chain (or starts one).
        let call =
            crate::serve::chain::scope(crate::serve::chain::for_outgoing_call(), deadline, entry.call(inv, None));
        match deadline {
            None => call.await,
            Some(d) => match tokio::time::timeout_at(d.into(), call).await {
                Ok(reply) => reply,
                Err(_) => Err(Box::new(Fault::new(
                    FaultKind::DeadlineExceeded,
                    format!("`{method}` did not finish before the deadline; it was stopped"),
                ))),
            },
        }
    };
    match reply {
        Ok(Answer { payload, refs }) => (Outcome::Ok(payload), refs),
        Err(fault) => (Outcome::Err(fault), Vec::new()),
    }
}

fn encode_args<A: Serialize>(args: &A, dynamic: bool) -> Result<(Args, Vec<DynObject>), CodecError> {
    if dynamic {
        let values = match to_value(args).map_err(CodecError::from_source)? {
            Value::Seq(values) => values,
            Value::Unit => Vec::new(),
            other => vec![other],
        };
        Ok((Args::Positional(values), Vec::new()))
    } else {
        // One allocation of the exact size (the size pass sees the same references); large
        // `dopy::Bytes` stay uncopied (a message that also carries references is written whole,
        // by serde, with one copy).
        let table = OutTable::push(Vec::new());
        let args = crate::codec::to_payload(args, Args::Typed, Args::TypedParts);
        Ok((args.map_err(CodecError::from_source)?, table.finish()))
    }
}

fn decode_payload<R: DeserializeOwned>(payload: Payload) -> Result<R, BoxError> {
    match payload {
        // `dopy::Bytes` results become slices of the payload, not copies.
        Payload::Typed(bytes) => decode_typed(&bytes),
        // Only from a server in this process (`LocalDispatch`).
        Payload::TypedParts(parts) => decode_typed(&parts.to_bytes()),
        Payload::Dynamic(value) => from_value(value).map_err(Into::into),
        Payload::Wire(wire) => wire.decode().and_then(from_value).map_err(Into::into),
    }
}

fn decode_typed<R: DeserializeOwned>(bytes: &bytes::Bytes) -> Result<R, BoxError> {
    let _frame = SharedFrame::frame(bytes);
    crate::codec::typed::from_bytes(bytes).map_err(Into::into)
}

fn decode_detail<E: DeserializeOwned>(fault: &Fault) -> Option<Result<E, BoxError>> {
    fault.detail.clone().map(decode_payload)
}

impl Serialize for DynObject {
    /// Writes the reference's index in the reference table of the message being encoded.
    ///
    /// # Errors
    ///
    /// Outside a dopy call (for instance `serde_json::to_string(&proxy)`), references cannot
    /// be serialized.
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match refs::out_index(self) {
            Some(index) => serializer.serialize_newtype_struct(refs::REF_NAME, &index),
            None => Err(serde::ser::Error::custom("object references can only be sent in dopy calls")),
        }
    }
}

impl<'de> Deserialize<'de> for DynObject {
    /// Reads a reference's index and takes the object from the reference table of the message
    /// being decoded (or from a [`Value::Ref`]).
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct RefVisitor;

        impl<'de> serde::de::Visitor<'de> for RefVisitor {
            type Value = DynObject;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an object reference")
            }

            // Resolved here, while the table (or the handed-off reference) is in place.
            fn visit_newtype_struct<D: Deserializer<'de>>(self, d: D) -> Result<DynObject, D::Error> {
                let i = u32::deserialize(d)?;
                refs::in_get(i).ok_or_else(|| {
                    serde::de::Error::custom(format!("object reference #{i} is not in the message's table"))
                })
            }
        }

        deserializer.deserialize_newtype_struct(refs::REF_NAME, RefVisitor)
    }
}

/// A typed proxy generated by `#[dopy::remote]` (`CalculatorProxy` for `Calculator`).
///
/// Not meant to be implemented by hand.
#[diagnostic::on_unimplemented(
    message = "`{Self}` is not a dopy proxy",
    note = "proxies are generated by `#[dopy::remote]`: for `impl Foo`, use `FooProxy`, or use `DynObject` for dynamic calls"
)]
pub trait Proxy: Clone + Send + Sync + 'static {
    /// Wraps a dynamic handle.
    fn from_object(object: DynObject) -> Self;

    /// The dynamic handle inside.
    fn object(&self) -> &DynObject;

    /// A proxy whose calls fail with `DeadlineExceeded` (and are cancelled on the serving side)
    /// when no reply comes within `timeout`; see [`DynObject::with_timeout`].
    fn with_timeout(&self, timeout: Duration) -> Self {
        Self::from_object(self.object().with_timeout(timeout))
    }
}

impl Proxy for DynObject {
    fn from_object(object: DynObject) -> Self {
        object
    }

    fn object(&self) -> &DynObject {
        self
    }
}

/// Links an object type to its generated proxy type. Implemented by `#[dopy::remote]`.
pub trait RemoteObject: 'static {
    /// The typed proxy of this type.
    type Proxy: Proxy;
}

/// An object passed *by reference*: the object stays where it was created; whoever receives a
/// `Remote<T>` (as an argument or a result) gets a live proxy to it.
///
/// On the side that creates it, `Remote::new(obj)` wraps a local object; calls through it go
/// directly to the object. It dereferences to the typed proxy, so both sides use it the same way.
/// The object lives as long as some handle to it (here or on any peer) exists.
///
/// See `dopy::Remote` for an example.
pub struct Remote<T: RemoteObject + Dispatch> {
    proxy: T::Proxy,
}

impl<T: RemoteObject + Dispatch> Remote<T> {
    /// Wraps a local object so that it can be passed by reference.
    pub fn new(object: T) -> Self {
        Remote { proxy: <T::Proxy as Proxy>::from_object(DynObject::in_process(object)) }
    }

    /// Wraps a local object that takes one call at a time, in arrival order (an actor), so that
    /// it can be passed by reference.
    pub fn serial(object: T) -> Self {
        let label = object.interface().name.into_owned();
        let entry = Arc::new(Entry::serial(label, object));
        Remote { proxy: <T::Proxy as Proxy>::from_object(DynObject::from_entry(entry)) }
    }

    /// The typed proxy.
    pub fn proxy(&self) -> &T::Proxy {
        &self.proxy
    }

    /// Unwraps the typed proxy.
    pub fn into_proxy(self) -> T::Proxy {
        self.proxy
    }
}

impl<T: RemoteObject + Dispatch> Clone for Remote<T> {
    fn clone(&self) -> Self {
        Remote { proxy: self.proxy.clone() }
    }
}

impl<T: RemoteObject + Dispatch> fmt::Debug for Remote<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Remote({})", self.proxy.object())
    }
}

impl<T: RemoteObject + Dispatch> std::ops::Deref for Remote<T> {
    type Target = T::Proxy;

    fn deref(&self) -> &T::Proxy {
        &self.proxy
    }
}

impl<T: RemoteObject + Dispatch> Serialize for Remote<T> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.proxy.object().serialize(serializer)
    }
}

impl<'de, T: RemoteObject + Dispatch> Deserialize<'de> for Remote<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        DynObject::deserialize(deserializer).map(|o| Remote { proxy: <T::Proxy as Proxy>::from_object(o) })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every move of a call's future copies it (into a task, a `FuturesUnordered`, a `join!`):
    /// it holds the arguments until its first poll, then only what waiting needs. It was 608
    /// bytes for this call when `call_to` was an `async fn`.
    #[test]
    fn a_typed_call_future_stays_small() {
        let obj = DynObject::dangling("for its size".into());
        let call = obj.call_typed::<(i64, i64), i64, Value>("add", (1, 2));
        let size = std::mem::size_of_val(&call);
        assert!(size <= 256, "the call's future takes {size} bytes");
    }
}
