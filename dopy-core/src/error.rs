//! [`CallError`]: everything a call can end with, and the server-side trace; the typed causes
//! of its local failures: [`CodecError`], [`ProtocolError`] and [`Disconnected`].
//!
//! Unlike the crate's other error types, `CallError` implements `Display` by hand rather than
//! with `thiserror`: its alternate form (`{:#}`) prints the whole trace (local call site, then
//! the remote hops, cause chain and backtrace), which a derived `Display` cannot tell apart.
//!
//! Each cause is shown once: either in an error's own message, or returned by its
//! [`source`](std::error::Error::source), never both, so that reporters that print the chain
//! (`anyhow`, `eyre`) print it once. The one-line message of a `CallError` keeps its first cause
//! in the line (`encoding error: the result of `add` could not be decoded: ...`); its `source()`
//! then continues with the causes after that one.

mod cause;

use std::error::Error as StdError;
use std::fmt;

use cause::{after, Flat};
pub use cause::{BoxError, CodecError, DisconnectCause, Disconnected, ProtocolError};

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

/// What a call ended with, when it did not return a result.
///
/// `E` is the method's own error type: a typed proxy to a method returning `Result<T, E>`
/// returns `Result<T, CallError<E>>` and gets its `E` back in [`CallError::Method`]. Dynamic
/// calls and methods without an error type use the default `CallError<Value>`, where a
/// method's error arrives as a [`Value`].
///
/// Setting up (listening, connecting, parsing addresses) fails with the `dopy` crate's own
/// `dopy::Error`, which converts from any `CallError<E: Serialize>` (the method's error becomes
/// a [`Value`]), so one `?` takes both into a `dopy::Result`.
///
/// `Display` prints one line; `{:#}` prints the whole story: the remote trace, and the chain of
/// [`source`](std::error::Error::source)s. Each cause is either in an error's own message or
/// its `source()`, never both, so error reporters (`anyhow`, `eyre`) show it once.
///
/// # Examples
///
/// ```
/// use dopy_core::{CallError, CodecError};
///
/// let err: CallError = CallError::Codec(CodecError::new("message of 9 bytes exceeds the maximum frame size of 8 bytes"));
/// assert_eq!(err.to_string(), "encoding error: message of 9 bytes exceeds the maximum frame size of 8 bytes");
/// ```
#[derive(Debug)]
#[non_exhaustive]
pub enum CallError<E = Value> {
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
    /// The peer reported that this side violated the protocol, or sent something it could not
    /// handle.
    Protocol(ProtocolError),
    /// The connection ended before the call completed; [`Disconnected::cause`] says who ended
    /// it and why.
    Disconnected(Disconnected),
    /// A local value could not be encoded or decoded (arguments, results, an oversized call).
    Codec(CodecError),
    /// A call through a blocking proxy (`dopy::blocking`) was refused: it was made from inside
    /// an async runtime, whose thread it would block; use the async proxy and `.await` it
    /// instead. Nothing was sent.
    Blocking {
        /// Which call, and what to do instead.
        reason: String,
    },
}

impl<E> CallError<E> {
    /// Builds the error for a fault received in answer to a call, decoding the method's own error
    /// with `decode_detail`.
    pub fn from_fault(
        fault: Fault,
        call: CallSite,
        decode_detail: impl FnOnce(&Fault) -> Option<Result<E, BoxError>>,
    ) -> Self {
        let detail = if fault.kind == FaultKind::Method { decode_detail(&fault) } else { None };
        let trace = |fault| Box::new(Trace { call, fault });
        match fault.kind {
            FaultKind::Method => match detail {
                Some(Ok(error)) => CallError::Method { error, trace: trace(fault) },
                Some(Err(source)) => {
                    CallError::Codec(CodecError::with_source("the method's error could not be decoded", source))
                }
                None => CallError::Codec(CodecError::new(format!(
                    "the method failed without an error value: {}",
                    fault.message
                ))),
            },
            FaultKind::Panic => CallError::Panic(trace(fault)),
            FaultKind::NoSuchObject => CallError::NoSuchObject(trace(fault)),
            FaultKind::NoSuchMethod => CallError::NoSuchMethod(trace(fault)),
            FaultKind::BadArguments | FaultKind::DynamicArgsRequired => CallError::BadArguments(trace(fault)),
            FaultKind::Overloaded => CallError::Overloaded(trace(fault)),
            FaultKind::DeadlineExceeded => CallError::DeadlineExceeded(trace(fault)),
            FaultKind::Cancelled => CallError::Cancelled(trace(fault)),
            FaultKind::Unauthorized => CallError::Unauthorized(trace(fault)),
            FaultKind::Reentrant => CallError::Reentrant(trace(fault)),
            FaultKind::Protocol => CallError::Protocol(ProtocolError::Reported(trace(fault))),
        }
    }

    /// The server-side trace, for errors that come from the serving side.
    pub fn trace(&self) -> Option<&Trace> {
        match self {
            CallError::Method { trace, .. } => Some(trace),
            CallError::Panic(t)
            | CallError::NoSuchObject(t)
            | CallError::NoSuchMethod(t)
            | CallError::BadArguments(t)
            | CallError::Overloaded(t)
            | CallError::DeadlineExceeded(t)
            | CallError::Cancelled(t)
            | CallError::Unauthorized(t)
            | CallError::Reentrant(t)
            | CallError::Protocol(ProtocolError::Reported(t)) => Some(t),
            _ => None,
        }
    }

    /// The server-side trace, to change (for instance to take its backtrace out before the
    /// error is shown); see [`trace`](CallError::trace).
    pub fn trace_mut(&mut self) -> Option<&mut Trace> {
        match self {
            CallError::Method { trace, .. } => Some(trace),
            CallError::Panic(t)
            | CallError::NoSuchObject(t)
            | CallError::NoSuchMethod(t)
            | CallError::BadArguments(t)
            | CallError::Overloaded(t)
            | CallError::DeadlineExceeded(t)
            | CallError::Cancelled(t)
            | CallError::Unauthorized(t)
            | CallError::Reentrant(t)
            | CallError::Protocol(ProtocolError::Reported(t)) => Some(t),
            _ => None,
        }
    }

    /// Whether the peer refused this caller (a remote `Unauthorized`).
    pub fn is_unauthorized(&self) -> bool {
        matches!(self, CallError::Unauthorized(_))
    }

    /// The method's own error, if that is what this is.
    pub fn method_error(&self) -> Option<&E> {
        match self {
            CallError::Method { error, .. } => Some(error),
            _ => None,
        }
    }

    /// Converts the method's error type (for instance to use `?` across methods).
    pub fn map_method<F>(self, f: impl FnOnce(E) -> F) -> CallError<F> {
        match self {
            CallError::Method { error, trace } => CallError::Method { error: f(error), trace },
            CallError::Panic(t) => CallError::Panic(t),
            CallError::NoSuchObject(t) => CallError::NoSuchObject(t),
            CallError::NoSuchMethod(t) => CallError::NoSuchMethod(t),
            CallError::BadArguments(t) => CallError::BadArguments(t),
            CallError::Overloaded(t) => CallError::Overloaded(t),
            CallError::DeadlineExceeded(t) => CallError::DeadlineExceeded(t),
            CallError::Cancelled(t) => CallError::Cancelled(t),
            CallError::Unauthorized(t) => CallError::Unauthorized(t),
            CallError::Reentrant(t) => CallError::Reentrant(t),
            CallError::Protocol(e) => CallError::Protocol(e),
            CallError::Disconnected(e) => CallError::Disconnected(e),
            CallError::Codec(e) => CallError::Codec(e),
            CallError::Blocking { reason } => CallError::Blocking { reason },
        }
    }

    /// Converts the method's error into a [`Value`], giving the untyped `CallError`.
    pub fn into_dynamic(self) -> CallError
    where
        E: serde::Serialize,
    {
        self.map_method(|e| crate::value::to_value(&e).unwrap_or_else(|err| Value::String(err.to_string().into())))
    }
}

impl<E> fmt::Display for CallError<E> {
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
            CallError::Method { trace, .. } => {
                write!(f, "{}.{} failed: {}", trace.call.object, trace.call.method, trace.message())?;
                if f.alternate() {
                    // The message is already on the first line; print the rest of the trace.
                    let full = format!("{trace:#}");
                    f.write_str(full.strip_prefix(trace.message()).unwrap_or(&full))?;
                }
                Ok(())
            }
            CallError::Panic(t) => remote(f, "panic", t),
            CallError::NoSuchObject(t) => remote(f, "no such object", t),
            CallError::NoSuchMethod(t) => remote(f, "no such method", t),
            CallError::BadArguments(t) => remote(f, "bad arguments", t),
            CallError::Overloaded(t) => remote(f, "overloaded", t),
            CallError::DeadlineExceeded(t) => remote(f, "deadline exceeded", t),
            CallError::Cancelled(t) => remote(f, "cancelled", t),
            CallError::Unauthorized(t) => remote(f, "unauthorized", t),
            CallError::Reentrant(t) => remote(f, "re-entrant call", t),
            CallError::Protocol(ProtocolError::Reported(t)) => {
                write!(f, "protocol error: {}", t.message())?;
                if f.alternate() {
                    let full = format!("{t:#}");
                    f.write_str(full.strip_prefix(t.message()).unwrap_or(&full))?;
                }
                Ok(())
            }
            CallError::Protocol(e) => write!(f, "protocol error: {}", Flat(e)),
            CallError::Disconnected(e) => write!(f, "disconnected: {e}"),
            CallError::Codec(e) => write!(f, "encoding error: {}", Flat(e)),
            CallError::Blocking { reason } => write!(f, "blocking call refused: {reason}"),
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

/// The error's source, for any `E` (the `std::error::Error` impl needs `E: Debug`): the causes
/// after those its message prints.
fn source<E>(err: &CallError<E>) -> Option<&(dyn StdError + 'static)> {
    match err {
        CallError::Protocol(e) => after(e),
        CallError::Disconnected(e) => e.source(),
        CallError::Codec(e) => after(e),
        _ => None,
    }
}

impl<E: fmt::Debug> StdError for CallError<E> {
    fn source(&self) -> Option<&(dyn StdError + 'static)> {
        source(self)
    }
}
