//! Client side: [`DynObject`] (a dynamic handle to a remote object) and the [`Proxy`] trait of
//! generated typed proxies.

use std::fmt;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::error::CallSite;
use crate::interface::{Interface, METHODS};
use crate::message::{flags, Args, Fault, FaultKind, Outcome, Payload, Target};
use crate::peer::Connection;
use crate::value::{from_value, to_value, Value};
use crate::Error;

/// A handle to a remote object that is called by method name with [`Value`] arguments.
///
/// Every typed proxy wraps one (see [`Proxy::object`]), so any object can also be called
/// dynamically. Cheap to clone; clones share the connection.
#[derive(Clone)]
pub struct DynObject {
    conn: Connection,
    target: Target,
    /// Set once the object answered that it takes dynamic arguments only (a hand-written
    /// dispatcher): typed calls then send their arguments as values.
    dynamic_only: Arc<AtomicBool>,
}

impl fmt::Debug for DynObject {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "DynObject({}/{})", self.conn.endpoint(), self.target)
    }
}

impl DynObject {
    /// A handle to `target` over `conn`.
    pub fn new(conn: Connection, target: Target) -> Self {
        DynObject { conn, target, dynamic_only: Arc::new(AtomicBool::new(false)) }
    }

    /// The connection calls travel on.
    pub fn connection(&self) -> &Connection {
        &self.conn
    }

    /// The object this handle calls.
    pub fn target(&self) -> &Target {
        &self.target
    }

    fn site(&self, method: &str) -> CallSite {
        CallSite {
            endpoint: self.conn.endpoint().to_owned(),
            object: self.target.to_string(),
            method: method.to_owned(),
        }
    }

    /// Calls a method with positional arguments.
    ///
    /// # Errors
    ///
    /// Any [`Error`]: the method's own error arrives as [`Error::Method`] holding a [`Value`].
    pub async fn call<I>(&self, method: &str, args: I) -> Result<Value, Error>
    where
        I: IntoIterator<Item = Value>,
    {
        self.call_args(method, Args::Positional(args.into_iter().collect())).await
    }

    /// Calls a method with named (keyword) arguments, by the parameter names in the source.
    ///
    /// # Errors
    ///
    /// As [`call`](DynObject::call); a missing or unknown name gives [`Error::BadArguments`].
    pub async fn call_named<K, I>(&self, method: &str, args: I) -> Result<Value, Error>
    where
        K: Into<String>,
        I: IntoIterator<Item = (K, Value)>,
    {
        self.call_args(method, Args::Named(args.into_iter().map(|(k, v)| (k.into(), v)).collect())).await
    }

    async fn call_args(&self, method: &str, args: Args) -> Result<Value, Error> {
        let outcome = self.conn.call(self.target.clone(), method, args, flags::DYNAMIC_RESULT).await?;
        self.finish(method, outcome, |p| match p {
            Payload::Dynamic(v) => Ok(v),
            Payload::Typed(_) => Err("the peer answered a dynamic call with typed data".into()),
        })
    }

    /// Asks the object for its interface: methods, parameter names and types, docs.
    ///
    /// # Errors
    ///
    /// Any [`Error`] of the call.
    pub async fn methods(&self) -> Result<Interface, Error> {
        self.call_typed::<_, Interface, Value>(METHODS, ()).await
    }

    /// Calls a method with typed arguments and decodes a typed result (what generated proxies
    /// use). `args` is the tuple of arguments.
    ///
    /// # Errors
    ///
    /// Any [`Error`]; the method's own error arrives as [`Error::Method`] holding an `E`.
    pub async fn call_typed<A, R, E>(&self, method: &str, args: A) -> Result<R, Error<E>>
    where
        A: Serialize + Send,
        R: DeserializeOwned,
        E: DeserializeOwned,
    {
        let mut dynamic = self.dynamic_only.load(Ordering::Relaxed);
        loop {
            let wire = encode_args(&args, dynamic).map_err(|reason| Error::Codec { reason })?;
            let outcome = self.conn.call(self.target.clone(), method, wire, 0).await?;
            match outcome {
                Outcome::Err(fault) if fault.kind == FaultKind::DynamicArgsRequired && !dynamic => {
                    self.dynamic_only.store(true, Ordering::Relaxed);
                    dynamic = true;
                }
                outcome => return self.finish(method, outcome, decode_payload),
            }
        }
    }

    /// Sends a oneway call: no reply is awaited.
    ///
    /// # Errors
    ///
    /// [`Error::Codec`] when the arguments cannot be encoded, [`Error::Disconnected`] when the
    /// connection has ended.
    pub async fn call_oneway<A: Serialize + Send>(&self, method: &str, args: A) -> Result<(), Error> {
        let dynamic = self.dynamic_only.load(Ordering::Relaxed);
        let wire = encode_args(&args, dynamic).map_err(|reason| Error::Codec { reason })?;
        self.conn.call(self.target.clone(), method, wire, flags::ONEWAY).await.map(|_| ())
    }

    fn finish<R, E: DeserializeOwned>(
        &self,
        method: &str,
        outcome: Outcome,
        decode: impl FnOnce(Payload) -> Result<R, String>,
    ) -> Result<R, Error<E>> {
        match outcome {
            Outcome::Ok(payload) => decode(payload).map_err(|reason| Error::Codec {
                reason: format!("the result of `{method}` could not be decoded: {reason}"),
            }),
            Outcome::Err(fault) => Err(Error::from_fault(*fault, self.site(method), decode_detail::<E>)),
        }
    }
}

fn encode_args<A: Serialize>(args: &A, dynamic: bool) -> Result<Args, String> {
    if dynamic {
        match to_value(args).map_err(|e| e.to_string())? {
            Value::Seq(values) => Ok(Args::Positional(values)),
            Value::Unit => Ok(Args::Positional(Vec::new())),
            other => Ok(Args::Positional(vec![other])),
        }
    } else {
        postcard::to_allocvec(args).map(|v| Args::Typed(v.into())).map_err(|e| e.to_string())
    }
}

fn decode_payload<R: DeserializeOwned>(payload: Payload) -> Result<R, String> {
    match payload {
        Payload::Typed(bytes) => postcard::from_bytes(&bytes).map_err(|e| e.to_string()),
        Payload::Dynamic(value) => from_value(value).map_err(|e| e.to_string()),
    }
}

fn decode_detail<E: DeserializeOwned>(fault: &Fault) -> Option<Result<E, String>> {
    fault.detail.clone().map(decode_payload)
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
pub trait Remote: crate::dispatch::Dispatch {
    /// The typed proxy of this type.
    type Proxy: Proxy;
}
