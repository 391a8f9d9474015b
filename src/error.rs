//! [`Error`]: what a node's operations (listening, connecting, publishing, parsing addresses)
//! can end with, and any [`CallError`] converted into it.
//!
//! Which function returns which type:
//!
//! - [`Node`](crate::Node), [`blocking::Node`](crate::blocking::Node), [`Address`](crate::Address)
//!   parsing, and the services' setup return [`Error`];
//! - calls ([`DynObject`](crate::DynObject)'s methods, the methods of generated proxies) return
//!   [`CallError<E>`](CallError), `E` being the method's own error type.
//!
//! `impl From<CallError<E>> for Error` (for any `E: Serialize`; the method's error becomes a
//! [`Value`]) lets one `?` take both into a [`dopy::Result`](crate::Result).

use std::fmt;

use serde::Serialize;

use crate::{CallError, Trace, Value};

/// An error from dopy: a node's operation that failed, or a call.
///
/// Which function returns which type: [`Node`](crate::Node) and
/// [`blocking::Node`](crate::blocking::Node) methods, [`Address`](crate::Address) parsing and
/// the services' setup return `Error`; calls ([`DynObject`](crate::DynObject)'s methods, the
/// methods of generated proxies and their blocking twins) return [`CallError<E>`](CallError),
/// `E` being the method's own error type.
///
/// A node's own operations fail with the variants below; a call converted with `?` (or
/// [`From`]) becomes [`Error::Call`], its method's error carried as a [`Value`]
/// ([`CallError::into_dynamic`]).
///
/// `Display` prints one line; `{:#}` prints the whole story: for a call, the remote trace; for
/// the others, the chain of [`source`](std::error::Error::source)s (for a
/// [`Connect`](Error::Connect) error, why the connection failed). Each cause is either in an
/// error's own message or its `source()`, never both, so error reporters (`anyhow`, `eyre`)
/// show it once.
///
/// # Examples
///
/// One `?` takes a node's error, a typed call's (whatever its method's error type) and a
/// dynamic call's:
///
/// ```
/// #[derive(Debug, serde::Serialize, serde::Deserialize)]
/// pub struct Negative;
///
/// impl std::fmt::Display for Negative {
///     fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
///         f.write_str("negative")
///     }
/// }
///
/// pub struct Calc;
///
/// #[dopy::remote]
/// impl Calc {
///     /// Square root of `x`.
///     pub fn sqrt(&self, x: f64) -> Result<f64, Negative> {
///         if x < 0.0 { Err(Negative) } else { Ok(x.sqrt()) }
///     }
/// }
///
/// async fn run(node: &dopy::Node, address: &str) -> dopy::Result<f64> {
///     let calc: CalcProxy = node.proxy(address).await?; // dopy::Error
///     let root = calc.sqrt(16.0).await?; // dopy::CallError<Negative>
///     match calc.object().call("sqrt", [dopy::Value::Float(root)]).await? { // dopy::CallError
///         dopy::Value::Float(again) => Ok(again),
///         other => panic!("not a float: {other:?}"),
///     }
/// }
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> dopy::Result<()> {
/// let node = dopy::Node::new();
/// node.publish("calc", Calc)?;
/// let endpoint = node.listen("tcp://127.0.0.1:0").await?;
/// assert_eq!(run(&node, &endpoint.object("calc").to_string()).await?, 2.0);
/// let err = node.object("tcp://127.0.0.1:1/calc").await.unwrap_err();
/// assert!(matches!(err, dopy::Error::Connect { .. }), "{err}");
/// # Ok(())
/// # }
/// ```
#[derive(Debug)]
#[non_exhaustive]
pub enum Error {
    /// A call failed; its method's error, if that is what it is, is a [`Value`].
    Call(CallError),
    /// A connection could not be established.
    ///
    /// The message names the endpoint; why it failed is the error's
    /// [`source`](std::error::Error::source) (`{:#}` prints both).
    Connect {
        /// The endpoint.
        endpoint: String,
        /// Why (the transport's or the handshake's error).
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// An address could not be parsed, or names something this build cannot do.
    InvalidAddress {
        /// The address as given.
        address: String,
        /// What is wrong with it.
        reason: String,
    },
    /// A name is already published on this node.
    NameTaken {
        /// The name.
        name: String,
    },
    /// A local i/o operation (binding a listener, for instance) failed.
    ///
    /// The message includes the i/o error's, so [`source`](std::error::Error::source) is the
    /// i/o error's own source, as with `#[error(transparent)]`.
    Io(std::io::Error),
    /// A blocking operation (`dopy::blocking`) was refused: it was made from inside an async
    /// runtime, whose thread it would block; use the async API and `.await` it instead.
    Blocking {
        /// Which operation, and what to do instead.
        reason: String,
    },
}

impl Error {
    /// The call's error, if this is one.
    pub fn call(&self) -> Option<&CallError> {
        match self {
            Error::Call(e) => Some(e),
            _ => None,
        }
    }

    /// The server-side trace, for errors that come from the serving side.
    pub fn trace(&self) -> Option<&Trace> {
        self.call().and_then(CallError::trace)
    }

    /// The server-side trace, to change (for instance to take its backtrace out before the
    /// error is shown); see [`trace`](Error::trace).
    pub fn trace_mut(&mut self) -> Option<&mut Trace> {
        match self {
            Error::Call(e) => e.trace_mut(),
            _ => None,
        }
    }

    /// The method's own error, as a [`Value`], if that is what this is.
    pub fn method_error(&self) -> Option<&Value> {
        self.call().and_then(CallError::method_error)
    }

    /// Whether the peer refused this side: a remote `Unauthorized`, or a handshake refused for
    /// a wrong or missing shared secret.
    pub fn is_unauthorized(&self) -> bool {
        match self {
            Error::Call(e) => e.is_unauthorized(),
            Error::Connect { source, .. } => {
                source.downcast_ref::<dopy_transport::TransportError>().is_some_and(|e| e.is_unauthorized())
            }
            _ => false,
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            // The call's own `{:#}` prints its trace and causes.
            Error::Call(e) => return fmt::Display::fmt(e, f),
            Error::Connect { endpoint, .. } => write!(f, "could not connect to {endpoint}"),
            Error::InvalidAddress { address, reason } => write!(f, "invalid address `{address}`: {reason}"),
            Error::NameTaken { name } => write!(f, "the name `{name}` is already published"),
            Error::Io(e) => write!(f, "i/o error: {e}"),
            Error::Blocking { reason } => write!(f, "blocking call refused: {reason}"),
        }?;
        if f.alternate() {
            // The causes that are not in the message: each one once, outermost first.
            let mut cause = std::error::Error::source(self);
            while let Some(e) = cause {
                write!(f, ": {e}")?;
                cause = e.source();
            }
        }
        Ok(())
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            // Transparent: the call's message is ours.
            Error::Call(e) => e.source(),
            Error::Connect { source, .. } => Some(&**source),
            // The i/o error's message is in ours: its source comes next.
            Error::Io(e) => e.source(),
            _ => None,
        }
    }
}

impl<E: Serialize> From<CallError<E>> for Error {
    fn from(e: CallError<E>) -> Self {
        Error::Call(e.into_dynamic())
    }
}

impl From<std::io::Error> for Error {
    fn from(e: std::io::Error) -> Self {
        Error::Io(e)
    }
}
