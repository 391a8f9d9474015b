//! The blocking [`DynObject`]: dynamic calls by method name, with [`Value`] arguments.

use std::fmt;
use std::time::Duration;

use serde::de::DeserializeOwned;
use serde::Serialize;

use super::runtime::{blocking_call, Runtime};
use super::BlockingProxy;
use crate::{CallError, Interface, Value};

/// A blocking handle to an object, called by method name with [`Value`] arguments: the blocking
/// twin of [`dopy::DynObject`](crate::DynObject).
///
/// Get one from [`Node::object`](super::Node::object), or wrap an async handle (received in a
/// [`Value::Ref`], say) with [`BlockingProxy::from_async`]. Cheap to clone, `Send + Sync`.
///
/// # Examples
///
/// ```
/// use dopy::Value;
///
/// # #[derive(Default)] struct Calculator;
/// # #[dopy::remote] impl Calculator { pub fn add(&self, a: i64, b: i64) -> i64 { a + b } }
/// let server = dopy::blocking::Node::new();
/// server.publish("calc", Calculator::default())?;
/// let addr = server.listen("tcp://127.0.0.1:0")?;
///
/// let calc = dopy::blocking::Node::new().object(&addr.object("calc").to_string())?;
/// assert_eq!(calc.call("add", [Value::from(2), Value::from(3)])?, Value::Int(5));
/// assert_eq!(calc.call_named("add", [("b", Value::from(3)), ("a", Value::from(2))])?, Value::Int(5));
/// assert_eq!(calc.methods()?.method("add").unwrap().params.len(), 2);
/// # Ok::<(), dopy::Error>(())
/// ```
#[derive(Clone)]
pub struct DynObject {
    object: crate::DynObject,
    runtime: Runtime,
}

impl fmt::Debug for DynObject {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "blocking::DynObject({})", self.object)
    }
}

impl fmt::Display for DynObject {
    /// The object's address, as [`dopy::DynObject`](crate::DynObject) prints it.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.object, f)
    }
}

impl PartialEq for DynObject {
    /// Two handles are equal when they reach the same object the same way.
    fn eq(&self, other: &Self) -> bool {
        self.object == other.object
    }
}

impl BlockingProxy for DynObject {
    type Async = crate::DynObject;

    fn from_async(object: crate::DynObject, runtime: Runtime) -> Self {
        DynObject { object, runtime }
    }

    fn as_async(&self) -> &crate::DynObject {
        &self.object
    }

    fn into_async(self) -> crate::DynObject {
        self.object
    }

    fn runtime(&self) -> &Runtime {
        &self.runtime
    }
}

impl DynObject {
    /// Calls a method with positional arguments and waits for the result.
    ///
    /// # Errors
    ///
    /// As [`dopy::DynObject::call`](crate::DynObject::call); [`CallError::Blocking`] inside an
    /// async runtime.
    pub fn call<I>(&self, method: &str, args: I) -> Result<Value, CallError>
    where
        I: IntoIterator<Item = Value>,
    {
        blocking_call(&self.runtime, "call", self.object.call(method, args))
    }

    /// Calls a method with named (keyword) arguments and waits for the result.
    ///
    /// # Errors
    ///
    /// As [`dopy::DynObject::call_named`](crate::DynObject::call_named); [`CallError::Blocking`]
    /// inside an async runtime.
    pub fn call_named<K, I>(&self, method: &str, args: I) -> Result<Value, CallError>
    where
        K: Into<String>,
        I: IntoIterator<Item = (K, Value)>,
    {
        blocking_call(&self.runtime, "call_named", self.object.call_named(method, args))
    }

    /// Asks the object for its interface: methods, parameter names and types, docs.
    ///
    /// # Errors
    ///
    /// Any [`CallError`] of the call; [`CallError::Blocking`] inside an async runtime.
    pub fn methods(&self) -> Result<Interface, CallError> {
        blocking_call(&self.runtime, "methods", self.object.methods())
    }

    /// Calls a method with typed arguments (a tuple) and decodes a typed result, waiting for
    /// it. See [`dopy::DynObject::call_typed`](crate::DynObject::call_typed).
    ///
    /// # Errors
    ///
    /// Any [`CallError`]; the method's own error arrives as [`CallError::Method`] holding an `E`;
    /// [`CallError::Blocking`] inside an async runtime.
    pub fn call_typed<A, R, E>(&self, method: &str, args: A) -> Result<R, CallError<E>>
    where
        A: Serialize + Send,
        R: DeserializeOwned,
        E: DeserializeOwned,
    {
        blocking_call(&self.runtime, "call_typed", self.object.call_typed(method, args))
    }

    /// Sends a oneway call: returns once it is written, without waiting for a reply.
    ///
    /// # Errors
    ///
    /// As [`dopy::DynObject::call_oneway`](crate::DynObject::call_oneway); [`CallError::Blocking`]
    /// inside an async runtime.
    pub fn call_oneway<A: Serialize + Send>(&self, method: &str, args: A) -> Result<(), CallError> {
        blocking_call(&self.runtime, "call_oneway", self.object.call_oneway(method, args))
    }

    /// A handle whose calls fail with [`CallError::DeadlineExceeded`] when no reply comes within
    /// `timeout`; see [`dopy::DynObject::with_timeout`](crate::DynObject::with_timeout).
    pub fn with_timeout(&self, timeout: Duration) -> DynObject {
        DynObject { object: self.object.with_timeout(timeout), runtime: self.runtime.clone() }
    }

    /// The default time limit of calls made through this handle.
    pub fn timeout(&self) -> Option<Duration> {
        self.object.timeout()
    }
}
