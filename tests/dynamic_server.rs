//! A hand-written `Dispatch` (a dynamic server, no Rust types per method) is called by dynamic
//! callers and by typed proxies alike.

mod support;

use dopy::dispatch::{bad_args, DynArgs};
use dopy::{CallError, Dispatch, Dispatched, Interface, Invocation, Node, Value};
use support::{CalculatorProxy, DivideByZero};

/// A dynamic calculator: interprets method names and `Value` arguments itself.
struct DynCalc;

const INTERFACE: Interface = Interface::from_static("DynCalc", "A hand-written dispatcher.", &[]);

impl Dispatch for DynCalc {
    fn interface(&self) -> Interface {
        INTERFACE
    }

    fn dispatch(&self, call: Invocation) -> Dispatched<'_> {
        let args = match call.dynamic_args() {
            Ok(DynArgs::Positional(args)) => args,
            Ok(_) => return Dispatched::Ready(Err(bad_args(call.method(), "positional arguments only"))),
            Err(fault) => return Dispatched::Ready(Err(fault)),
        };
        let ints: Option<Vec<i64>> = args.iter().map(Value::as_i64).collect();
        let Some(ints) = ints else {
            return Dispatched::Ready(Err(bad_args(call.method(), "integers expected")));
        };
        let resp = call.responder();
        let reply = match (call.method(), ints.as_slice()) {
            ("add", [a, b]) => resp.ok(&(a + b)),
            ("divide", [a, 0]) => resp.error(&DivideByZero(*a), Vec::new()),
            ("divide", [a, b]) => resp.ok(&(a / b)),
            ("add" | "divide", _) => Err(bad_args(call.method(), "two integers expected")),
            _ => return Dispatched::NotFound(call),
        };
        Dispatched::Ready(reply)
    }
}

async fn start() -> String {
    let node = Node::new();
    node.publish("dyn", DynCalc).unwrap();
    let addr = node.listen("tcp://127.0.0.1:0").await.unwrap();
    std::mem::forget(node); // keep serving for the whole test
    format!("{addr}/dyn")
}

/// A typed proxy calls the dynamic server: typed arguments are retried as values, dynamic
/// results and errors decode into the proxy's types.
#[tokio::test]
async fn typed_proxy_calls_a_hand_written_dispatcher() {
    let url = start().await;
    let calc: CalculatorProxy = Node::new().proxy(&url).await.unwrap();
    assert_eq!(calc.add(2, 40).await.unwrap(), 42);
    assert_eq!(calc.add(1, 1).await.unwrap(), 2);
    let err = calc.divide(9, 0).await.unwrap_err();
    assert_eq!(err.method_error(), Some(&DivideByZero(9)));
    let err = calc.total().await.unwrap_err();
    assert!(matches!(err, CallError::NoSuchMethod(_)), "{err}");
}

/// A dynamic caller calls the dynamic server and sees its interface.
#[tokio::test]
async fn dynamic_caller_calls_a_hand_written_dispatcher() {
    let url = start().await;
    let obj = Node::new().object(&url).await.unwrap();
    assert_eq!(obj.call("add", [Value::from(2), Value::from(3)]).await.unwrap(), Value::Int(5));
    let err = obj.call("add", [Value::from("x"), Value::from(3)]).await.unwrap_err();
    assert!(matches!(err, CallError::BadArguments(_)), "{err}");
    assert_eq!(obj.methods().await.unwrap().name, "DynCalc");
}

/// A dispatcher that says none of its calls needs exclusive access (it is served without a
/// lock), and then asks for it anyway.
struct Inconsistent;

impl Dispatch for Inconsistent {
    fn interface(&self) -> Interface {
        Interface::from_static("Inconsistent", "Says it needs no lock, then asks for one.", &[])
    }

    fn dispatch(&self, call: Invocation) -> Dispatched<'_> {
        match call.method() {
            "get" => {
                let reply = call.responder().ok(&7u32);
                Dispatched::Ready(reply)
            }
            "set" => Dispatched::RequiresMut(call),
            _ => Dispatched::NotFound(call),
        }
    }

    fn needs_exclusive(&self) -> bool {
        false
    }
}

/// The object gets what it said: its calls run without a lock, and a call that asks for
/// exclusive access after all fails with a clear fault, while the others go on.
#[tokio::test]
async fn an_object_served_without_a_lock_cannot_ask_for_exclusive_access() {
    let node = Node::new();
    node.publish("inconsistent", Inconsistent).unwrap();
    let addr = node.listen("tcp://127.0.0.1:0").await.unwrap();
    let obj = Node::new().object(&format!("{addr}/inconsistent")).await.unwrap();
    assert_eq!(obj.call("get", []).await.unwrap(), Value::UInt(7));
    let err = obj.call("set", []).await.unwrap_err();
    assert!(matches!(err, CallError::NoSuchMethod(_)), "{err:#}");
    let text = format!("{err:#}");
    assert!(text.contains("`set` on `inconsistent` asked for exclusive access"), "{text}");
    assert_eq!(obj.call("get", []).await.unwrap(), Value::UInt(7));
}
