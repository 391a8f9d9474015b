//! What `#[dopy::remote]` generates: the interface table, dispatch by method name (typed,
//! positional and named arguments; sync and async; `&self` and `&mut self`), the proxy type,
//! and an expansion that is hygienic and clean under strict lints.
#![deny(missing_docs, unused, unreachable_pub, missing_debug_implementations, rust_2018_idioms)]
#![deny(clippy::all)]

use std::collections::HashMap;

use dopy::dispatch::Reply;
use dopy::protocol::{Fault, FaultKind, Payload};
use dopy::{from_value, to_value, Args, Dispatch, Dispatched, Invocation, Receiver, Value};
use serde::{Deserialize, Serialize};

/// A point in the plane.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Point {
    x: i32,
    y: i32,
}

/// Why a calculation failed.
#[derive(Debug, PartialEq, Serialize, Deserialize, thiserror::Error)]
pub enum MathError {
    /// Division by zero.
    #[error("cannot divide {0} by zero")]
    DivideByZero(i64),
    /// The total went below zero.
    #[error("the total would go below zero")]
    Underflow(#[source] Limit),
}

/// The cause of [`MathError::Underflow`].
#[derive(Debug, PartialEq, Serialize, Deserialize, thiserror::Error)]
#[error("the total is {0}")]
pub struct Limit(i64);

// Not support::Calculator: this test is about the expansion's shape, so it owns the exact
// source it expands (the interface's method list in source order, a sync `&mut self`, an async
// oneway `&mut self`, an error enum with a source, a `#[dopy(skip)]` constructor) and compiles
// it under the strict lints above; the shared fixture changes with the other tests' needs.
/// A calculator with one remote method of each kind.
#[derive(Debug, Default)]
pub struct Calculator {
    total: i64,
}

/// Arithmetic over the network.
///
/// A second paragraph.
#[dopy::remote]
impl Calculator {
    /// Adds two numbers.
    pub fn add(&self, a: i64, b: i64) -> i64 {
        a + b
    }

    /// Divides `a` by `b`.
    pub async fn divide(&self, a: i64, b: i64) -> Result<i64, MathError> {
        if b == 0 {
            return Err(MathError::DivideByZero(a));
        }
        Ok(a / b)
    }

    /// Adds `x` to the running total and returns it.
    pub fn accumulate(&mut self, mut x: i64) -> i64 {
        x += self.total;
        self.total = x;
        x
    }

    /// Takes `x` from the total, which may not go below zero.
    pub async fn take(&mut self, x: i64) -> Result<i64, MathError> {
        if x > self.total {
            return Err(MathError::Underflow(Limit(self.total)));
        }
        self.total -= x;
        Ok(self.total)
    }

    /// Sets the total back to zero.
    #[dopy(oneway)]
    pub async fn reset(&mut self) {
        self.total = 0;
    }

    /// Sums `values`, starting from `start` (zero when not given).
    #[dopy(name = "sum")]
    pub fn sum_all(&self, values: Vec<i64>, start: Option<i64>) -> i64 {
        start.unwrap_or_default() + values.iter().sum::<i64>()
    }

    /// Exercises the type strings of the interface.
    pub fn shapes(&self, p: Point, tags: HashMap<String, i64>, raw: [u8; 4], pair: (i32, String)) -> Vec<Point> {
        let extra = i32::try_from(tags.len() + raw.len()).unwrap_or_default() + pair.0;
        vec![p.clone(), Point { x: p.x + extra, y: p.y }]
    }

    /// Kept local: remote callers cannot reach it.
    #[dopy(skip)]
    pub fn new() -> Self {
        Self::default()
    }

    /// Not `pub`: stays local.
    fn helper(&self) -> i64 {
        self.total
    }

    /// The total.
    pub fn total(&self) -> i64 {
        self.helper()
    }

    /// Adds two numbers (the old name).
    #[deprecated = "use `add`"]
    pub fn plus(&self, a: i64, b: i64) -> i64 {
        a + b
    }

    /// Compiled out (`cfg(any())` is always false): neither remote nor in the interface.
    #[cfg(any())]
    pub fn gone(&self) {}
}

/// Runs a call to completion, taking exclusive access when the method asks for it.
async fn run(object: &mut Calculator, call: Invocation) -> Result<Payload, Box<Fault>> {
    let call = match object.dispatch(call) {
        Dispatched::Ready(reply) => return reply.map(|answer| answer.payload),
        Dispatched::Pending(future) => return future.await.map(|answer| answer.payload),
        Dispatched::RequiresMut(call) => call,
        other => panic!("unexpected {other:?} from dispatch"),
    };
    match object.dispatch_mut(call) {
        Dispatched::Ready(reply) => reply.map(|answer| answer.payload),
        Dispatched::Pending(future) => future.await.map(|answer| answer.payload),
        other => panic!("unexpected {other:?} from dispatch_mut"),
    }
}

/// A call as the connection machinery builds it (no object references among the arguments).
fn invocation(method: &str, args: Args, dynamic_result: bool) -> Invocation {
    Invocation::new(method.to_owned(), args, dynamic_result, Vec::new())
}

/// The value of a dynamic reply.
fn value_of(reply: Reply) -> Value {
    match reply.map(|answer| answer.payload) {
        Ok(Payload::Wire(wire)) => wire.decode().expect("a wire value decodes"),
        other => panic!("expected a dynamic value, got {other:?}"),
    }
}

/// The value of a call that was answered at once.
fn ready(dispatched: Dispatched<'_>) -> Value {
    match dispatched {
        Dispatched::Ready(reply) => value_of(reply),
        other => panic!("expected a ready reply, got {other:?}"),
    }
}

/// Calls `method` with positional dynamic arguments and a dynamic result.
async fn call(object: &mut Calculator, method: &str, args: Vec<Value>) -> Result<Value, Box<Fault>> {
    match run(object, invocation(method, Args::Positional(args), true)).await? {
        Payload::Wire(wire) => Ok(wire.decode().expect("a wire value decodes")),
        other => panic!("expected a dynamic result, got {other:?}"),
    }
}

fn v<T: Serialize>(value: T) -> Value {
    to_value(&value).expect("test values convert")
}

/// The interface lists the remote methods in source order, with their remote names, docs,
/// parameters, tidy type strings, receivers, asyncness, oneway flags and error types.
#[test]
fn interface_describes_remote_methods() {
    let interface = Calculator::new().interface();
    assert_eq!(interface.name, "Calculator");
    assert_eq!(interface.docs, "Arithmetic over the network.\n\nA second paragraph.");
    let names: Vec<&str> = interface.methods.iter().map(|m| &*m.name).collect();
    assert_eq!(names, ["add", "divide", "accumulate", "take", "reset", "sum", "shapes", "total", "plus"]);

    let add = interface.method("add").unwrap();
    assert_eq!(add.docs, "Adds two numbers.");
    assert_eq!(add.param_names().collect::<Vec<_>>(), ["a", "b"]);
    assert_eq!((&*add.returns, add.error.as_deref()), ("i64", None));
    assert_eq!((add.receiver, add.is_async, add.oneway), (Receiver::Shared, false, false));

    let divide = interface.method("divide").unwrap();
    assert_eq!((&*divide.returns, divide.error.as_deref()), ("i64", Some("MathError")));
    assert_eq!((divide.receiver, divide.is_async), (Receiver::Shared, true));
    assert_eq!(divide.docs, "Divides `a` by `b`.");

    let accumulate = interface.method("accumulate").unwrap();
    assert_eq!((accumulate.receiver, accumulate.is_async), (Receiver::Exclusive, false));

    let reset = interface.method("reset").unwrap();
    assert_eq!(
        (&*reset.returns, reset.receiver, reset.is_async, reset.oneway),
        ("()", Receiver::Exclusive, true, true)
    );

    let sum = interface.method("sum").unwrap();
    let params: Vec<(&str, &str)> = sum.params.iter().map(|p| (&*p.name, &*p.ty)).collect();
    assert_eq!(params, [("values", "Vec<i64>"), ("start", "Option<i64>")]);

    let shapes = interface.method("shapes").unwrap();
    let types: Vec<&str> = shapes.params.iter().map(|p| &*p.ty).collect();
    assert_eq!(types, ["Point", "HashMap<String, i64>", "[u8; 4]", "(i32, String)"]);
    assert_eq!(shapes.returns, "Vec<Point>");
    assert_eq!(
        shapes.to_string(),
        "fn shapes(&self, p: Point, tags: HashMap<String, i64>, raw: [u8; 4], pair: (i32, String)) -> Vec<Point>"
    );
}

/// Sync methods answer at once; async ones hand back a future.
#[tokio::test]
async fn dispatch_runs_sync_and_async_methods() {
    let calc = Calculator::new();
    let add = invocation("add", Args::Positional(vec![v(7), v(2)]), true);
    assert_eq!(ready(calc.dispatch(add)), Value::Int(9));
    let divide = invocation("divide", Args::Positional(vec![v(7), v(2)]), true);
    let Dispatched::Pending(future) = calc.dispatch(divide) else { panic!("divide is async") };
    assert_eq!(value_of(future.await), Value::Int(3));
}

/// Named arguments are matched by the parameter names of the source; missing `Option`s are `None`.
#[tokio::test]
async fn named_arguments_match_parameter_names() {
    let mut calc = Calculator::new();
    let named = Args::Named(vec![("b".into(), v(4)), ("a".into(), v(20))]);
    let reply = run(&mut calc, invocation("divide", named, true)).await.unwrap();
    let Payload::Wire(wire) = reply else { panic!("expected a dynamic result, got {reply:?}") };
    assert_eq!(wire.decode().unwrap(), Value::Int(5));
    assert_eq!(call(&mut calc, "sum", vec![v(vec![1, 2, 3])]).await.unwrap(), Value::Int(6));
    assert_eq!(call(&mut calc, "sum", vec![v(vec![1, 2, 3]), v(Some(10))]).await.unwrap(), Value::Int(16));
}

/// Typed arguments are the postcard encoding of the argument tuple, and a typed caller gets a
/// postcard result (postcard writes an `i64` as a zigzag varint: 7 -> 14, 2 -> 4, 9 -> 18).
#[tokio::test]
async fn typed_arguments_and_results_are_postcard() {
    let mut calc = Calculator::new();
    let typed = invocation("add", Args::Typed(vec![14, 4].into()), false);
    let Payload::Typed(bytes) = run(&mut calc, typed).await.unwrap() else { panic!("expected a typed result") };
    assert_eq!(&bytes[..], [18]);
}

/// `&mut self` methods make `dispatch` ask for exclusive access and run from `dispatch_mut`,
/// which forwards `&self` methods to `dispatch`.
#[tokio::test]
async fn mut_methods_require_exclusive_access() {
    let mut calc = Calculator::new();
    let accumulate = || invocation("accumulate", Args::Positional(vec![v(5)]), true);
    assert!(matches!(calc.dispatch(accumulate()), Dispatched::RequiresMut(_)));
    assert_eq!(ready(calc.dispatch_mut(accumulate())), Value::Int(5));
    assert_eq!(call(&mut calc, "accumulate", vec![v(3)]).await.unwrap(), Value::Int(8));
    let total = invocation("total", Args::Positional(vec![]), true);
    assert_eq!(ready(calc.dispatch_mut(total)), Value::Int(8));
    assert_eq!(call(&mut calc, "take", vec![v(6)]).await.unwrap(), Value::Int(2));
    assert_eq!(call(&mut calc, "reset", vec![]).await.unwrap(), Value::Unit);
    assert_eq!(calc.total, 0);
}

/// A method's own error becomes a `Method` fault whose detail decodes back to the error value
/// and whose causes are the error's `source()` chain.
#[tokio::test]
async fn method_errors_carry_their_value_and_causes() {
    let mut calc = Calculator::new();
    let fault = call(&mut calc, "divide", vec![v(1), v(0)]).await.unwrap_err();
    assert_eq!((fault.kind, &*fault.message), (FaultKind::Method, "cannot divide 1 by zero"));
    assert!(fault.causes.is_empty());
    let Some(Payload::Dynamic(detail)) = fault.detail else { panic!("expected a dynamic detail") };
    assert_eq!(from_value::<MathError>(detail).unwrap(), MathError::DivideByZero(1));

    let fault = call(&mut calc, "take", vec![v(1)]).await.unwrap_err();
    assert_eq!(fault.message, "the total would go below zero");
    assert_eq!(fault.causes, ["the total is 0"]);
    let Some(Payload::Dynamic(detail)) = fault.detail else { panic!("expected a dynamic detail") };
    assert_eq!(from_value::<MathError>(detail).unwrap(), MathError::Underflow(Limit(0)));
}

/// Remote names replace Rust names; skipped, non-`pub` and unknown methods are not found.
#[tokio::test]
async fn only_remote_names_are_found() {
    let mut calc = Calculator::new();
    assert_eq!(call(&mut calc, "sum", vec![v(vec![4])]).await.unwrap(), Value::Int(4));
    for name in ["sum_all", "new", "helper", "gone", "nope", "dopy.nope"] {
        let unknown = invocation(name, Args::Positional(vec![]), true);
        let Dispatched::NotFound(back) = calc.dispatch(unknown) else { panic!("`{name}` should not be found") };
        assert_eq!(back.method(), name);
        let unknown = invocation(name, Args::Positional(vec![]), true);
        assert!(matches!(calc.dispatch_mut(unknown), Dispatched::NotFound(_)), "{name}");
    }
}

/// Arguments that do not fit are refused with a fault that names the parameter.
#[tokio::test]
async fn bad_arguments_name_the_parameter() {
    let mut calc = Calculator::new();
    let fault = call(&mut calc, "add", vec![v(1), v("two")]).await.unwrap_err();
    assert_eq!(fault.kind, FaultKind::BadArguments);
    assert!(fault.message.contains("`b`"), "{}", fault.message);
    let fault = call(&mut calc, "total", vec![v(1)]).await.unwrap_err();
    assert_eq!(fault.kind, FaultKind::BadArguments);
    let point = v(Point { x: 1, y: 2 });
    let reply =
        call(&mut calc, "shapes", vec![point, v(HashMap::from([("a".to_owned(), 1)])), v([0u8; 4]), v((1, "x"))]);
    assert_eq!(from_value::<Vec<Point>>(reply.await.unwrap()).unwrap(), [Point { x: 1, y: 2 }, Point { x: 7, y: 2 }]);
}

/// The proxy is a cheap, shareable handle linked to its object type, and can travel (as a
/// reference) in arguments and results.
#[test]
fn proxy_type_is_linked_to_its_object() {
    fn linked<T: dopy::RemoteObject<Proxy = P>, P: dopy::Proxy + Clone + Send + Sync + std::fmt::Debug>() {}
    fn converts<P: Into<dopy::DynObject>>() {}
    fn travels<P: Serialize + serde::de::DeserializeOwned + Send + 'static>() {}
    linked::<Calculator, CalculatorProxy>();
    converts::<CalculatorProxy>();
    travels::<CalculatorProxy>();
}

/// An object without remote methods.
#[derive(Debug)]
pub struct Empty;

#[dopy::remote]
impl Empty {}

/// An object whose only remote method takes `&mut self`.
#[derive(Debug, Default)]
pub struct Cell {
    value: Option<String>,
}

#[dopy::remote]
impl Cell {
    /// Replaces the value, returning the old one.
    pub fn replace(&mut self, value: Option<String>) -> Option<String> {
        std::mem::replace(&mut self.value, value)
    }
}

/// Impl blocks with no remote method, or only `&mut self` ones, expand too.
#[tokio::test]
async fn degenerate_impl_blocks_expand() {
    assert!(Empty.interface().methods.is_empty());
    let call = || invocation("replace", Args::Named(vec![("value".into(), v("x"))]), true);
    assert!(matches!(Empty.dispatch(call()), Dispatched::NotFound(_)));
    let mut cell = Cell::default();
    let Dispatched::RequiresMut(call) = cell.dispatch(call()) else { panic!("replace takes &mut self") };
    assert_eq!(ready(cell.dispatch_mut(call)), Value::Option(None));
    assert_eq!(cell.value.as_deref(), Some("x"));
}

/// The expansion names everything by absolute paths, so it compiles without the prelude.
pub mod hygiene {
    #![no_implicit_prelude]

    /// A counter.
    #[derive(::core::fmt::Debug, ::core::default::Default)]
    pub struct Counter {
        n: u64,
    }

    /// Counts.
    #[::dopy::remote]
    impl Counter {
        /// Adds `by` and returns the count.
        pub fn bump(&mut self, by: u64) -> u64 {
            self.n += by;
            self.n
        }

        /// The count, or an error when it is zero.
        pub async fn get(&self) -> ::std::result::Result<u64, ::std::string::String> {
            match self.n {
                0 => ::std::result::Result::Err(::std::string::ToString::to_string("zero")),
                n => ::std::result::Result::Ok(n),
            }
        }

        /// Does nothing, without a reply.
        #[dopy(oneway)]
        pub fn ping(&self, _times: ::std::option::Option<u8>) {}

        /// Hands a reference back: proxies travel as arguments and results.
        pub fn echo(&self, other: CounterProxy) -> CounterProxy {
            other
        }
    }
}

/// The expansion works in a module without the prelude.
#[tokio::test]
async fn expansion_is_hygienic() {
    let mut counter = hygiene::Counter::default();
    let bump = invocation("bump", Args::Positional(vec![v(2u64)]), true);
    let Dispatched::RequiresMut(bump) = counter.dispatch(bump) else { panic!("bump takes &mut self") };
    assert_eq!(ready(counter.dispatch_mut(bump)), Value::UInt(2));
    let get = invocation("get", Args::Positional(vec![]), true);
    let Dispatched::Pending(future) = counter.dispatch(get) else { panic!("get is async") };
    assert_eq!(value_of(future.await), Value::UInt(2));
    let names: Vec<String> = counter.interface().methods.iter().map(|m| m.to_string()).collect();
    assert_eq!(
        names,
        [
            "fn bump(&mut self, by: u64) -> u64",
            "async fn get(&self) -> Result<u64, ::std::string::String>",
            "oneway fn ping(&self, _times: ::std::option::Option<u8>)",
            "fn echo(&self, other: CounterProxy) -> CounterProxy",
        ]
    );
    let _: hygiene::CounterProxy;
}
