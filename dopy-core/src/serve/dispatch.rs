//! Server-side dispatch: how a call reaches a method.
//!
//! [`Dispatch`] is the one trait between the connection machinery and user objects. The
//! `#[dopy::remote]` attribute implements it for you; a hand-written implementation makes a
//! *dynamic server* that typed proxies can call too (see [`Invocation::dynamic_args`]).

mod args;

use std::fmt;
use std::future::Future;
use std::pin::Pin;

use compact_str::CompactString;
use serde::Serialize;

use crate::codec::session::{InTable, OutTable, SharedFrame};
use crate::codec::{Args, Fault, FaultKind, Payload};
use crate::interface::Interface;
use crate::value::{to_value, Value};

pub use args::ArgList;

/// A boxed future that can move between threads.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// What a method produced: a result (with the references it carries) or a fault.
pub type Reply = Result<Answer, Box<Fault>>;

/// A successful result, encoded, with the object references it carries.
#[derive(Debug)]
pub struct Answer {
    /// The encoded result.
    pub payload: Payload,
    /// The references inside a typed payload, in table order (a dynamic payload holds its own).
    pub refs: Vec<crate::handle::DynObject>,
}

/// What [`Dispatch::dispatch`] did with a call.
///
/// Modelled on zbus' `DispatchResult`: the dispatcher either answers at once, hands back a
/// future, or tells the caller that the method needs exclusive access (the caller then takes the
/// object's write lock and calls [`Dispatch::dispatch_mut`]).
#[non_exhaustive]
pub enum Dispatched<'a> {
    /// The method ran synchronously; here is its reply.
    Ready(Reply),
    /// The method is running; await this future for its reply.
    Pending(BoxFuture<'a, Reply>),
    /// The method takes `&mut self`: call [`Dispatch::dispatch_mut`] with exclusive access.
    RequiresMut(Invocation),
    /// No method by that name.
    NotFound(Invocation),
}

impl fmt::Debug for Dispatched<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Dispatched::Ready(r) => f.debug_tuple("Ready").field(r).finish(),
            Dispatched::Pending(_) => f.write_str("Pending(..)"),
            Dispatched::RequiresMut(i) => f.debug_tuple("RequiresMut").field(i).finish(),
            Dispatched::NotFound(i) => f.debug_tuple("NotFound").field(i).finish(),
        }
    }
}

/// An object that can be called by name.
///
/// It is not recommended to implement this trait by hand for ordinary objects:
/// `#[dopy::remote]` implements it for you, together with the typed proxy. Implement it by hand
/// to build a *dynamic server* (one that interprets method names and [`Value`] arguments itself).
///
/// # Contract
///
/// - [`interface`](Dispatch::interface) describes the methods; it is read once, at publication.
/// - [`dispatch`](Dispatch::dispatch) is called with shared access; several calls may run at
///   once. It must not block: long work belongs in the returned future.
/// - [`dispatch_mut`](Dispatch::dispatch_mut) is called with exclusive access after `dispatch`
///   returned [`Dispatched::RequiresMut`].
/// - Panics in either, or in the returned future, are caught by the caller of these methods and
///   reported to the remote caller as [`FaultKind::Panic`].
#[diagnostic::on_unimplemented(
    message = "`{Self}` cannot be published: it does not implement `Dispatch`",
    note = "put `#[dopy::remote]` on an `impl {Self}` block to make its `pub` methods remote"
)]
pub trait Dispatch: Send + Sync + 'static {
    /// Describes the object's remote methods.
    fn interface(&self) -> Interface;

    /// Starts a call with shared access to the object.
    fn dispatch(&self, call: Invocation) -> Dispatched<'_>;

    /// Starts a call with exclusive access to the object.
    ///
    /// The default forwards to [`dispatch`](Dispatch::dispatch).
    fn dispatch_mut(&mut self, call: Invocation) -> Dispatched<'_> {
        self.dispatch(call)
    }

    /// The methods that may run in the connection's reader, without a task of their own
    /// (`#[dopy(inline)]`): short, synchronous, never blocking. Read once, at publication.
    ///
    /// A call of one of them that can complete at once (the object's lock is free) is served
    /// and answered before the next frame is read, saving a task spawn and a hand-off per call;
    /// one that would wait falls back to a task as usual. A method listed here that blocks
    /// holds every other call on its connection. The default is none.
    fn inline_methods(&self) -> &'static [&'static str] {
        &[]
    }

    /// Whether some calls need exclusive access: [`dispatch`](Dispatch::dispatch) answers
    /// [`Dispatched::RequiresMut`] for them, and they run from
    /// [`dispatch_mut`](Dispatch::dispatch_mut). Read once, at publication.
    ///
    /// An object that answers `false` is served without a lock: every call runs with shared
    /// access, concurrently with the others, as `&self` calls do anyway, but without taking and
    /// releasing the object's read lock (an atomic operation and a mutex shared by every
    /// connection calling the object). Such an object answering `RequiresMut` gets a
    /// `NoSuchMethod` fault saying so.
    /// The default, `true`, is always correct; `#[dopy::remote]` answers `false` for an `impl`
    /// without `&mut self` methods.
    fn needs_exclusive(&self) -> bool {
        true
    }
}

/// An incoming call as a dispatcher sees it: method name, arguments, and how to reply.
#[derive(Debug)]
pub struct Invocation {
    /// Inline up to 24 bytes: a method name is not allocated per call.
    method: CompactString,
    args: Args,
    responder: Responder,
    /// The references the arguments carry (typed arguments hold indices into this table).
    refs: Vec<crate::handle::DynObject>,
}

/// Dynamic arguments as a hand-written dispatcher receives them.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub enum DynArgs {
    /// Positional arguments.
    Positional(Vec<Value>),
    /// Named (keyword) arguments.
    Named(Vec<(String, Value)>),
}

impl Invocation {
    /// Creates an invocation (the connection machinery does this for each incoming call).
    ///
    /// `refs` is the reference table of the arguments.
    pub fn new(
        method: impl Into<CompactString>,
        args: Args,
        dynamic_result: bool,
        refs: Vec<crate::handle::DynObject>,
    ) -> Self {
        Invocation { method: method.into(), args, responder: Responder { dynamic: dynamic_result }, refs }
    }

    /// Takes the invocation apart (to forward it, say).
    pub fn into_parts(self) -> InvocationParts {
        InvocationParts {
            method: self.method.into_string(),
            args: self.args,
            dynamic_result: self.responder.dynamic,
            refs: self.refs,
        }
    }

    /// The remote name of the method called.
    pub fn method(&self) -> &str {
        &self.method
    }

    /// The raw arguments.
    pub fn args(&self) -> &Args {
        &self.args
    }

    /// How the reply must be encoded; copy it into the method's future.
    pub fn responder(&self) -> Responder {
        self.responder
    }

    /// Answers the built-in [`METHODS`](crate::interface::METHODS) with `interface`, encoded as
    /// the caller asked: it takes no arguments, and a call that carries some is refused with
    /// `BadArguments` rather than answered as if they were not there.
    pub(crate) fn answer_methods(&self, interface: &crate::interface::Interface) -> Reply {
        let given = match &self.args {
            Args::Typed(bytes) => !bytes.is_empty(),
            Args::TypedParts(parts) => !parts.is_empty(),
            Args::Positional(values) => !values.is_empty(),
            Args::Named(values) => !values.is_empty(),
        };
        if given {
            return Err(bad_args(&self.method, "it takes no arguments"));
        }
        self.responder.encode(interface)
    }

    /// Decodes the arguments for a method with the given parameter names.
    ///
    /// Typed arguments are decoded as the tuple `A`; positional ones are matched by position and
    /// named ones by name. A missing argument is accepted only where the parameter takes
    /// `None` (an `Option`).
    ///
    /// # Errors
    ///
    /// A [`FaultKind::BadArguments`] fault naming the parameter and the reason.
    pub fn decode_args<A: ArgList>(&mut self, params: &[&str]) -> Result<A, Box<Fault>> {
        let method = self.method.as_str();
        let args = std::mem::replace(&mut self.args, Args::Positional(Vec::new()));
        let _refs = InTable::push(&self.refs);
        Self::decode(method, args, params)
    }

    fn decode<A: ArgList>(method: &str, args: Args, params: &[&str]) -> Result<A, Box<Fault>> {
        match args {
            // `dopy::Bytes` arguments become slices of the payload, not copies.
            Args::Typed(bytes) => {
                let _frame = SharedFrame::frame(&bytes);
                A::from_typed(&bytes, params, method)
            }
            // Only a caller in this process sends arguments in parts (`LocalDispatch`).
            Args::TypedParts(parts) => {
                let bytes = parts.to_bytes();
                let _frame = SharedFrame::frame(&bytes);
                A::from_typed(&bytes, params, method)
            }
            Args::Positional(values) => {
                if values.len() > params.len() {
                    return Err(bad_args(
                        method,
                        format!("expected {} argument(s), got {}", params.len(), values.len()),
                    ));
                }
                let mut slots: Vec<Option<Value>> = values.into_iter().map(Some).collect();
                slots.resize(params.len(), None);
                A::from_values(slots, params, method)
            }
            Args::Named(named) => {
                let mut slots: Vec<Option<Value>> = vec![None; params.len()];
                for (name, value) in named {
                    let Some(i) = params.iter().position(|p| *p == name) else {
                        return Err(bad_args(method, format!("unexpected argument `{name}`")));
                    };
                    if slots[i].replace(value).is_some() {
                        return Err(bad_args(method, format!("argument `{name}` given twice")));
                    }
                }
                A::from_values(slots, params, method)
            }
        }
    }

    /// The arguments as [`Value`]s, for a hand-written (dynamic) dispatcher.
    ///
    /// # Errors
    ///
    /// A [`FaultKind::DynamicArgsRequired`] fault when the caller sent typed (postcard) arguments:
    /// a typed proxy receiving it retries the call with dynamic arguments.
    pub fn dynamic_args(&self) -> Result<DynArgs, Box<Fault>> {
        match &self.args {
            Args::Typed(_) | Args::TypedParts(_) => Err(Box::new(Fault::new(
                FaultKind::DynamicArgsRequired,
                format!("`{}` takes dynamic arguments only", self.method),
            ))),
            Args::Positional(v) => Ok(DynArgs::Positional(v.clone())),
            Args::Named(v) => Ok(DynArgs::Named(v.clone())),
        }
    }
}

/// Builds a [`FaultKind::BadArguments`] fault for a method.
pub fn bad_args(method: &str, reason: impl fmt::Display) -> Box<Fault> {
    Box::new(Fault::new(FaultKind::BadArguments, format!("bad arguments for `{method}`: {reason}")))
}

/// Encodes a method's result the way the caller asked for (typed postcard bytes or a `Value`).
#[derive(Clone, Copy, Debug)]
pub struct Responder {
    dynamic: bool,
}

impl Responder {
    /// Whether the caller asked for a dynamic result.
    pub fn is_dynamic(&self) -> bool {
        self.dynamic
    }

    /// Encodes a value in the requested encoding.
    ///
    /// # Errors
    ///
    /// A [`FaultKind::Method`] fault when the value's `Serialize` impl fails.
    pub fn encode<T: Serialize + ?Sized>(&self, value: &T) -> Result<Answer, Box<Fault>> {
        let encoded = if self.dynamic {
            // Written straight into the wire form of its `Value`: no tree is built.
            crate::value::wire::to_wire(value)
                .map(|(wire, refs)| Answer { payload: Payload::Wire(wire), refs })
                .map_err(|e| e.to_string())
        } else {
            // Large `dopy::Bytes` stay uncopied (a result that also carries references is
            // written whole, by serde, with one copy).
            let table = OutTable::push(Vec::new());
            let payload = crate::codec::to_payload(value, Payload::Typed, Payload::TypedParts);
            let refs = table.finish();
            payload.map(|payload| Answer { payload, refs }).map_err(|e| e.to_string())
        };
        encoded.map_err(|e| Box::new(Fault::new(FaultKind::Method, format!("the result could not be encoded: {e}"))))
    }

    /// The reply of a method that returned a plain value.
    pub fn ok<T: Serialize + ?Sized>(&self, value: &T) -> Reply {
        self.encode(value)
    }

    /// The reply of a method whose own error is `error`, with its cause chain.
    ///
    /// Use [`causes!`](crate::causes) to collect the chain of any error type.
    pub fn error<E: Serialize + fmt::Display + ?Sized>(&self, error: &E, causes: Vec<String>) -> Reply {
        let mut fault = Fault::new(FaultKind::Method, error.to_string());
        fault.causes = causes;
        // A detail travels inside the fault, where only a `Value` can be written.
        fault.detail = if self.dynamic {
            to_value(error).ok().map(Payload::Dynamic)
        } else {
            // A fault may be kept for long (inside the caller's `Error`, for a local call): its
            // detail gets bytes of its own rather than a share of the thread's encoding arena.
            self.encode(error).ok().map(|a| match a.payload {
                Payload::Typed(mut detail) => {
                    crate::codec::unshare(&mut detail);
                    Payload::Typed(detail)
                }
                other => other,
            })
        };
        Err(Box::new(fault))
    }

    /// The reply of a method returning `Result<T, E>`.
    pub fn result<T: Serialize, E: Serialize + fmt::Display>(
        &self,
        result: &Result<T, E>,
        causes: Vec<String>,
    ) -> Reply {
        match result {
            Ok(v) => self.ok(v),
            Err(e) => self.error(e, causes),
        }
    }
}

/// Collects the messages of an error's `source()` chain (empty for a type that only implements
/// `Display`): `causes!(&err) -> Vec<String>`.
#[macro_export]
macro_rules! causes {
    ($err:expr) => {{
        #[allow(unused_imports)]
        use $crate::dispatch::causes::{ViaDisplay as _, ViaError as _};
        (&&$crate::dispatch::causes::Wrap($err)).causes()
    }};
}

/// What an [`Invocation`] is made of: see [`Invocation::into_parts`].
#[derive(Debug)]
#[non_exhaustive]
pub struct InvocationParts {
    /// The remote name of the method called.
    pub method: String,
    /// The arguments.
    pub args: Args,
    /// Whether the caller wants the result as a `Value` (a dynamic call).
    pub dynamic_result: bool,
    /// The reference table of the arguments.
    pub refs: Vec<crate::handle::DynObject>,
}

#[doc(hidden)]
pub mod causes {
    //! Autoref specialisation behind [`causes!`](crate::causes).

    /// Wraps an error reference.
    #[derive(Debug)]
    pub struct Wrap<'a, T: ?Sized>(pub &'a T);

    /// Chosen when the type implements `std::error::Error`.
    pub trait ViaError {
        /// The source chain.
        fn causes(&self) -> Vec<String>;
    }

    impl<T: std::error::Error + ?Sized> ViaError for &Wrap<'_, T> {
        fn causes(&self) -> Vec<String> {
            let mut out = Vec::new();
            let mut next = self.0.source();
            while let Some(e) = next {
                out.push(e.to_string());
                next = e.source();
            }
            out
        }
    }

    /// Chosen otherwise.
    pub trait ViaDisplay {
        /// Nothing: the type has no sources.
        fn causes(&self) -> Vec<String>;
    }

    impl<T: ?Sized> ViaDisplay for Wrap<'_, T> {
        fn causes(&self) -> Vec<String> {
            Vec::new()
        }
    }
}

/// Objects for the crate's unit tests.
#[cfg(test)]
pub(crate) mod fixtures {
    use super::{Dispatch, Dispatched, Invocation};
    use crate::interface::Interface;

    /// An object that has no methods.
    pub(crate) struct Nothing;

    impl Dispatch for Nothing {
        fn interface(&self) -> Interface {
            Interface::from_static("Nothing", "", &[])
        }

        fn dispatch(&self, call: Invocation) -> Dispatched<'_> {
            Dispatched::NotFound(call)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A method's error may be kept for long (inside the caller's `Error`, for a local call):
    /// its encoded detail owns its bytes instead of sharing the thread's encoding arena, which
    /// a small result does (and which it would keep allocated).
    #[test]
    fn an_error_detail_does_not_share_the_encoding_arena() {
        let responder = Responder { dynamic: false };
        let Ok(Answer { payload: Payload::Typed(result), .. }) = responder.ok(&"a small result") else {
            panic!("a typed result")
        };
        assert!(!result.is_unique(), "small results are split off the arena");
        let Err(fault) = responder.error(&"a small error", Vec::new()) else { panic!("a fault") };
        let Some(Payload::Typed(detail)) = &fault.detail else { panic!("a typed detail") };
        assert!(detail.is_unique());
        assert_eq!(postcard::from_bytes::<String>(detail).unwrap(), "a small error");
    }
}
