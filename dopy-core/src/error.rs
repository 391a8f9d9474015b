//! [`Error`]: everything a remote call can end with, and the server-side trace.
//!
//! Unlike the crate's other error types, `Error` implements `Display` by hand rather than with
//! `thiserror`: its alternate form (`{:#}`) prints the whole trace (local call site, then the
//! remote hops, cause chain and backtrace), which a derived `Display` cannot tell apart.

use std::fmt;

use crate::codec::{Fault, FaultKind, Hop};
use crate::value::Value;

/// Where the caller made the call: the local half of an error's story.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CallSite {
    /// The endpoint the call went to (`tcp://127.0.0.1:9600`).
    pub endpoint: String,
    /// The object called.
    pub object: String,
    /// The method called.
    pub method: String,
}

impl fmt::Display for CallSite {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{} via {}", self.object, self.method, self.endpoint)
    }
}

/// The server-side story of a failed call: what failed, where, why.
///
/// `Display` prints the message; `{:#}` prints the whole trace: the local call site, then the
/// remote part (hops, cause chain, backtrace), clearly divided.
#[derive(Clone, Debug, PartialEq)]
pub struct Trace {
    /// The call as the caller made it.
    pub call: CallSite,
    /// What went wrong, as the serving side described it.
    pub fault: Fault,
}

impl Trace {
    /// The error message sent by the serving side.
    pub fn message(&self) -> &str {
        &self.fault.message
    }

    /// The hops the error crossed, innermost first.
    pub fn hops(&self) -> &[Hop] {
        &self.fault.hops
    }

    /// Messages of the error's causes, outermost first.
    pub fn causes(&self) -> &[String] {
        &self.fault.causes
    }

    /// The backtrace captured on the serving side, if any.
    pub fn backtrace(&self) -> Option<&str> {
        self.fault.backtrace.as_deref()
    }
}

impl fmt::Display for Trace {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.fault.message)?;
        if !f.alternate() {
            return Ok(());
        }
        write!(f, "\n--- local ---\n  call: {}", self.call)?;
        f.write_str("\n--- remote ---")?;
        write!(f, "\n  error ({}): {}", kind_name(self.fault.kind), self.fault.message)?;
        for hop in &self.fault.hops {
            write!(f, "\n  at: node `{}`, object `{}`, method `{}`", hop.node, hop.object, hop.method)?;
        }
        for cause in &self.fault.causes {
            write!(f, "\n  caused by: {cause}")?;
        }
        if let Some(bt) = &self.fault.backtrace {
            f.write_str("\n  backtrace:")?;
            for line in bt.lines() {
                write!(f, "\n    {line}")?;
            }
        }
        Ok(())
    }
}

fn kind_name(kind: FaultKind) -> &'static str {
    match kind {
        FaultKind::Method => "method error",
        FaultKind::Panic => "panic",
        FaultKind::NoSuchObject => "no such object",
        FaultKind::NoSuchMethod => "no such method",
        FaultKind::BadArguments => "bad arguments",
        FaultKind::Overloaded => "overloaded",
        FaultKind::DeadlineExceeded => "deadline exceeded",
        FaultKind::Cancelled => "cancelled",
        FaultKind::Unauthorized => "unauthorized",
        FaultKind::Protocol => "protocol error",
        FaultKind::DynamicArgsRequired => "dynamic arguments required",
        FaultKind::Reentrant => "re-entrant call",
    }
}

/// An error from dopy: a failed call, connection or setup step.
///
/// `E` is the method's own error type: a typed proxy to a method returning `Result<T, E>`
/// returns `Result<T, Error<E>>` and gets its `E` back in [`Error::Method`]. Everything else
/// (dynamic calls, methods without an error type, node operations) uses the default
/// `Error<Value>`, where a method's error arrives as a [`Value`].
///
/// `Display` prints one line; `{:#}` prints the whole story: the remote trace, and the chain of
/// [`source`](std::error::Error::source)s (for a [`Connect`](Error::Connect) error, why the
/// connection failed). Each cause is either in an error's own message or its `source()`, never
/// both, so error reporters (`anyhow`, `eyre`) show it once.
///
/// # Examples
///
/// ```
/// use dopy_core::Error;
///
/// let err: Error = Error::Disconnected { reason: "the peer closed the connection".into() };
/// assert_eq!(err.to_string(), "disconnected: the peer closed the connection");
/// ```
#[derive(Debug)]
#[non_exhaustive]
pub enum Error<E = Value> {
    /// The remote method returned its own error.
    Method {
        /// The method's error value.
        error: E,
        /// Where and how it happened.
        trace: Box<Trace>,
    },
    /// The remote method panicked (the server keeps serving).
    Panic(Box<Trace>),
    /// No object by that name or id on the serving side.
    NoSuchObject(Box<Trace>),
    /// The object has no remote method by that name.
    NoSuchMethod(Box<Trace>),
    /// The arguments did not fit the method's parameters (the message names the parameter).
    BadArguments(Box<Trace>),
    /// The serving side refused the call for lack of capacity.
    Overloaded(Box<Trace>),
    /// The call's deadline passed.
    DeadlineExceeded(Box<Trace>),
    /// The call was cancelled.
    Cancelled(Box<Trace>),
    /// The peer refused this caller.
    Unauthorized(Box<Trace>),
    /// The call came back (A → B → A) to an object its own call chain holds in a way that
    /// would deadlock; it failed at once instead of waiting forever.
    Reentrant(Box<Trace>),
    /// The peer violated the protocol or sent something that could not be decoded.
    Protocol {
        /// What was wrong.
        reason: String,
    },
    /// The connection closed before the call completed.
    Disconnected {
        /// Why the connection closed.
        reason: String,
    },
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
    /// An address could not be parsed.
    InvalidAddress {
        /// The address as given.
        address: String,
        /// What is wrong with it.
        reason: String,
    },
    /// A local value could not be encoded or decoded (arguments, results, an oversized call).
    Codec {
        /// What failed.
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
    /// A blocking call (`dopy::blocking`) was refused: it was made from inside an async
    /// runtime, whose thread it would block; use the async proxy and `.await` it instead.
    Blocking {
        /// Which call, and what to do instead.
        reason: String,
    },
}

impl<E> Error<E> {
    /// Builds the error for a fault received in answer to a call, decoding the method's own error
    /// with `decode_detail`.
    pub fn from_fault(
        fault: Fault,
        call: CallSite,
        decode_detail: impl FnOnce(&Fault) -> Option<Result<E, String>>,
    ) -> Self {
        let detail = if fault.kind == FaultKind::Method { decode_detail(&fault) } else { None };
        let trace = |fault| Box::new(Trace { call, fault });
        match fault.kind {
            FaultKind::Method => match detail {
                Some(Ok(error)) => Error::Method { error, trace: trace(fault) },
                Some(Err(reason)) => {
                    Error::Codec { reason: format!("the method's error could not be decoded: {reason}") }
                }
                None => Error::Codec { reason: format!("the method failed without an error value: {}", fault.message) },
            },
            FaultKind::Panic => Error::Panic(trace(fault)),
            FaultKind::NoSuchObject => Error::NoSuchObject(trace(fault)),
            FaultKind::NoSuchMethod => Error::NoSuchMethod(trace(fault)),
            FaultKind::BadArguments | FaultKind::DynamicArgsRequired => Error::BadArguments(trace(fault)),
            FaultKind::Overloaded => Error::Overloaded(trace(fault)),
            FaultKind::DeadlineExceeded => Error::DeadlineExceeded(trace(fault)),
            FaultKind::Cancelled => Error::Cancelled(trace(fault)),
            FaultKind::Unauthorized => Error::Unauthorized(trace(fault)),
            FaultKind::Reentrant => Error::Reentrant(trace(fault)),
            FaultKind::Protocol => Error::Protocol { reason: fault.message },
        }
    }

    /// The server-side trace, for errors that come from the serving side.
    pub fn trace(&self) -> Option<&Trace> {
        match self {
            Error::Method { trace, .. } => Some(trace),
            Error::Panic(t)
            | Error::NoSuchObject(t)
            | Error::NoSuchMethod(t)
            | Error::BadArguments(t)
            | Error::Overloaded(t)
            | Error::DeadlineExceeded(t)
            | Error::Cancelled(t)
            | Error::Unauthorized(t)
            | Error::Reentrant(t) => Some(t),
            _ => None,
        }
    }

    /// The server-side trace, to change (for instance to take its backtrace out before the
    /// error is shown); see [`trace`](Error::trace).
    pub fn trace_mut(&mut self) -> Option<&mut Trace> {
        match self {
            Error::Method { trace, .. } => Some(trace),
            Error::Panic(t)
            | Error::NoSuchObject(t)
            | Error::NoSuchMethod(t)
            | Error::BadArguments(t)
            | Error::Overloaded(t)
            | Error::DeadlineExceeded(t)
            | Error::Cancelled(t)
            | Error::Unauthorized(t)
            | Error::Reentrant(t) => Some(t),
            _ => None,
        }
    }

    /// Whether the peer refused this side: a remote `Unauthorized`, or a handshake refused for
    /// a wrong or missing shared secret.
    pub fn is_unauthorized(&self) -> bool {
        match self {
            Error::Unauthorized(_) => true,
            Error::Connect { source, .. } => {
                source.downcast_ref::<dopy_transport::TransportError>().is_some_and(|e| e.is_unauthorized())
            }
            _ => false,
        }
    }

    /// The method's own error, if that is what this is.
    pub fn method_error(&self) -> Option<&E> {
        match self {
            Error::Method { error, .. } => Some(error),
            _ => None,
        }
    }

    /// Converts the method's error type (for instance to use `?` across methods).
    pub fn map_method<F>(self, f: impl FnOnce(E) -> F) -> Error<F> {
        match self {
            Error::Method { error, trace } => Error::Method { error: f(error), trace },
            Error::Panic(t) => Error::Panic(t),
            Error::NoSuchObject(t) => Error::NoSuchObject(t),
            Error::NoSuchMethod(t) => Error::NoSuchMethod(t),
            Error::BadArguments(t) => Error::BadArguments(t),
            Error::Overloaded(t) => Error::Overloaded(t),
            Error::DeadlineExceeded(t) => Error::DeadlineExceeded(t),
            Error::Cancelled(t) => Error::Cancelled(t),
            Error::Unauthorized(t) => Error::Unauthorized(t),
            Error::Reentrant(t) => Error::Reentrant(t),
            Error::Protocol { reason } => Error::Protocol { reason },
            Error::Disconnected { reason } => Error::Disconnected { reason },
            Error::Connect { endpoint, source } => Error::Connect { endpoint, source },
            Error::InvalidAddress { address, reason } => Error::InvalidAddress { address, reason },
            Error::Codec { reason } => Error::Codec { reason },
            Error::NameTaken { name } => Error::NameTaken { name },
            Error::Io(e) => Error::Io(e),
            Error::Blocking { reason } => Error::Blocking { reason },
        }
    }

    /// Converts the method's error into a [`Value`], giving the untyped `dopy::Error`.
    pub fn into_dynamic(self) -> Error
    where
        E: serde::Serialize,
    {
        self.map_method(|e| crate::value::to_value(&e).unwrap_or_else(|err| Value::String(err.to_string().into())))
    }
}

impl<E> fmt::Display for Error<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The first line names the kind and, for remote errors, the call; `{:#}` adds the trace.
        let remote = |f: &mut fmt::Formatter<'_>, what: &str, t: &Trace| {
            write!(f, "{what} in {}.{}: ", t.call.object, t.call.method)?;
            if f.alternate() {
                write!(f, "{t:#}")
            } else {
                write!(f, "{t}")
            }
        };
        match self {
            // The serving side's message is the error's `Display`, also for a dynamic caller
            // whose `E` is a `Value` (which would only show the error's data).
            Error::Method { trace, .. } => {
                write!(f, "{}.{} failed: {}", trace.call.object, trace.call.method, trace.message())?;
                if f.alternate() {
                    // The message is already on the first line; print the rest of the trace.
                    let full = format!("{trace:#}");
                    f.write_str(full.strip_prefix(trace.message()).unwrap_or(&full))?;
                }
                Ok(())
            }
            Error::Panic(t) => remote(f, "panic", t),
            Error::NoSuchObject(t) => remote(f, "no such object", t),
            Error::NoSuchMethod(t) => remote(f, "no such method", t),
            Error::BadArguments(t) => remote(f, "bad arguments", t),
            Error::Overloaded(t) => remote(f, "overloaded", t),
            Error::DeadlineExceeded(t) => remote(f, "deadline exceeded", t),
            Error::Cancelled(t) => remote(f, "cancelled", t),
            Error::Unauthorized(t) => remote(f, "unauthorized", t),
            Error::Reentrant(t) => remote(f, "re-entrant call", t),
            Error::Protocol { reason } => write!(f, "protocol error: {reason}"),
            Error::Disconnected { reason } => write!(f, "disconnected: {reason}"),
            Error::Connect { endpoint, .. } => write!(f, "could not connect to {endpoint}"),
            Error::InvalidAddress { address, reason } => write!(f, "invalid address `{address}`: {reason}"),
            Error::Codec { reason } => write!(f, "encoding error: {reason}"),
            Error::NameTaken { name } => write!(f, "the name `{name}` is already published"),
            Error::Io(e) => write!(f, "i/o error: {e}"),
            Error::Blocking { reason } => write!(f, "blocking call refused: {reason}"),
        }?;
        if f.alternate() {
            // The causes that are not in the message: each one once, outermost first.
            let mut cause = source(self);
            while let Some(e) = cause {
                write!(f, ": {e}")?;
                cause = e.source();
            }
        }
        Ok(())
    }
}

/// The error's source, for any `E` (the `std::error::Error` impl needs `E: Debug`).
fn source<E>(err: &Error<E>) -> Option<&(dyn std::error::Error + 'static)> {
    match err {
        Error::Connect { source, .. } => Some(&**source),
        // The i/o error's message is in ours: its source comes next.
        Error::Io(e) => std::error::Error::source(e),
        _ => None,
    }
}

impl<E: fmt::Debug> std::error::Error for Error<E> {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        source(self)
    }
}

impl<E> From<std::io::Error> for Error<E> {
    fn from(e: std::io::Error) -> Self {
        Error::Io(e)
    }
}
