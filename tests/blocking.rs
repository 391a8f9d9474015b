//! The blocking API: blocking nodes and proxies, without an async runtime, talking to async
//! nodes both ways; and a clear error instead of a panic when used inside an async runtime.
#![allow(missing_debug_implementations)]

mod support;

use std::fmt::Debug;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use dopy::blocking::{self, BlockingProxy};
use dopy::{CallError, Error, Remote, Value};
use support::{
    eventually_blocking, Calculator, CalculatorBlockingProxy, CalculatorProxy, CursorBlockingProxy, DivideByZero,
};

/// Serves on a blocking node and calls other objects through blocking proxies from its
/// (synchronous) methods.
pub struct Relay {
    calc: CalculatorBlockingProxy,
    /// A proxy to this very object, for the re-entrant case.
    me: OnceLock<RelayBlockingProxy>,
    /// What `sleep_via` saw, for the deadline case.
    outcomes: Arc<Mutex<Vec<String>>>,
}

#[dopy::remote]
impl Relay {
    /// Adds one, through the calculator.
    pub fn add_one(&self, x: i64) -> Result<i64, String> {
        self.calc.add(x, 1).map_err(|e| e.to_string())
    }

    /// Calls the calculator's `sleep` and notes how it went.
    pub fn sleep_via(&self, millis: u64) -> String {
        let outcome = match self.calc.sleep(millis) {
            Ok(v) => format!("ok {v}"),
            Err(CallError::DeadlineExceeded(_)) => "deadline exceeded".to_owned(),
            Err(e) => format!("error {e}"),
        };
        self.outcomes.lock().unwrap().push(outcome.clone());
        outcome
    }

    /// Holds this object exclusively and calls back into it.
    pub fn reenter(&mut self) -> String {
        match self.me.get().expect("set by the test").add_one(1) {
            Ok(v) => format!("ok {v}"),
            Err(CallError::Reentrant(_)) => "re-entrant".to_owned(),
            Err(e) => format!("error {e}"),
        }
    }
}

/// Stops its node when asked.
pub struct Control {
    stopper: blocking::Stopper,
}

#[dopy::remote]
impl Control {
    /// Ends the server's `wait`.
    pub fn quit(&self) {
        self.stopper.stop();
    }
}

/// Attributes forwarded to the blocking twin compile without warnings.
pub mod attributes {
    #![deny(warnings)]

    /// Methods with every forwarded attribute.
    #[derive(Debug)]
    pub struct Greeter;

    #[dopy::remote]
    impl Greeter {
        /// Greets, under another name.
        #[dopy(name = "hello")]
        pub fn greet(&self, name: String) -> String {
            format!("hello, {name}")
        }

        /// An old way to greet.
        #[deprecated(note = "use `greet`")]
        pub fn old_greet(&self) -> String {
            "hi".into()
        }

        /// Not compiled in.
        #[cfg(any())]
        pub fn missing(&self) {}
    }
}

/// A blocking node serving a calculator on TCP, and the calculator's address.
fn blocking_server() -> (blocking::Node, String) {
    blocking_server_with(Calculator::default())
}

fn blocking_server_with(calc: Calculator) -> (blocking::Node, String) {
    let node = blocking::Node::builder().settings(dopy::Node::builder().name("blocking-server")).build().unwrap();
    node.publish("calc", calc).unwrap();
    let addr = node.listen("tcp://127.0.0.1:0").unwrap();
    (node, addr.object("calc").to_string())
}

/// A current-thread runtime for the async side of a test.
fn tokio_runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap()
}

/// A blocking server and a blocking client, in a plain `#[test]` with no runtime of its own:
/// typed calls, `&mut self` state, oneway calls and references.
#[test]
fn blocking_server_and_client_without_any_runtime() {
    let calc = Calculator::default();
    let logged = calc.logged.clone();
    let (_server, url) = blocking_server_with(calc);
    let client = blocking::Node::new();
    let calc: CalculatorBlockingProxy = client.proxy(&url).unwrap();
    assert!(tokio::runtime::Handle::try_current().is_err(), "no runtime here");

    assert_eq!(calc.add(2, 3).unwrap(), 5);
    assert_eq!(calc.accumulate(10).unwrap(), 10);
    assert_eq!(calc.accumulate(5).unwrap(), 15);
    for n in 0..5 {
        calc.log(n.to_string()).unwrap();
    }
    eventually_blocking("five lines logged", || logged.lock().unwrap().len() == 5);
    let mut lines = logged.lock().unwrap().clone();
    lines.sort();
    assert_eq!(lines, ["0", "1", "2", "3", "4"]);

    // A reference comes back as an async proxy; wrapped, it is called the blocking way too.
    let cursor = CursorBlockingProxy::from_async(calc.cursor().unwrap().into_proxy(), client.runtime().clone());
    assert_eq!(cursor.advance().unwrap(), 1);
    assert_eq!(cursor.advance().unwrap(), 2);
}

/// The acceptance test: a blocking client calls a server running on an async runtime.
#[test]
fn blocking_client_calls_async_server() {
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().unwrap();
    let server = dopy::Node::new();
    server.publish("calc", Calculator::default()).unwrap();
    let addr = runtime.block_on(server.listen("tcp://127.0.0.1:0")).unwrap();

    let client = blocking::Node::new();
    let calc: CalculatorBlockingProxy = client.proxy(addr.object("calc")).unwrap();
    assert_eq!(calc.add(20, 22).unwrap(), 42);
    assert_eq!(calc.accumulate(7).unwrap(), 7);
    assert_eq!(calc.divide(9, 3).unwrap(), 3);
    let cursor = calc.cursor().unwrap();
    assert_eq!(runtime.block_on(cursor.advance()).unwrap(), 1, "and its reference, the async way");
}

/// The acceptance test, the other way round: an async client calls a blocking server.
#[test]
fn async_client_calls_blocking_server() {
    let (_server, url) = blocking_server();
    tokio_runtime().block_on(async {
        let calc: CalculatorProxy = dopy::Node::new().proxy(&url).await.unwrap();
        assert_eq!(calc.add(20, 22).await.unwrap(), 42);
        assert_eq!(calc.accumulate(7).await.unwrap(), 7);
        let err = calc.divide(1, 0).await.unwrap_err();
        assert_eq!(err.method_error(), Some(&DivideByZero(1)));
        assert_eq!(err.trace().unwrap().hops()[0].node, "blocking-server");
        let cursor = calc.cursor().await.unwrap();
        assert_eq!(cursor.advance().await.unwrap(), 1);
    });
}

/// The dynamic blocking handle: positional and named arguments, introspection, typed and
/// oneway calls, and a reference received as a `Value::Ref`.
#[test]
fn dynamic_blocking_calls() {
    let (_server, url) = blocking_server();
    let obj = blocking::Node::new().object(&url).unwrap();
    assert_eq!(obj.to_string(), url);
    assert_eq!(obj.call("add", [Value::from(2), Value::from(3)]).unwrap(), Value::Int(5));
    assert_eq!(obj.call_named("divide", [("b", Value::from(2)), ("a", Value::from(10))]).unwrap(), Value::Int(5));
    let interface = obj.methods().unwrap();
    assert_eq!(interface.method("add").unwrap().params.len(), 2);
    assert!(interface.method("log").unwrap().oneway);
    assert_eq!(obj.call_typed::<_, i64, DivideByZero>("divide", (10_i64, 5_i64)).unwrap(), 2);
    obj.call_oneway("log", ("one",)).unwrap();

    let Value::Ref(cursor) = obj.call("cursor", []).unwrap() else { panic!("expected a reference") };
    let cursor = blocking::DynObject::from_async(cursor, obj.runtime().clone());
    assert_eq!(cursor.call("advance", []).unwrap(), Value::UInt(1));

    // A typed proxy's dynamic side.
    let calc: CalculatorBlockingProxy = blocking::Node::new().proxy(&url).unwrap();
    assert_eq!(calc.object().call("add", [Value::from(1), Value::from(1)]).unwrap(), Value::Int(2));
}

/// Errors come back through blocking calls as through async ones: the method's own error
/// typed, a panic with its trace, unknown objects and methods, bad arguments.
#[test]
fn errors_come_back_through_blocking_calls() {
    let (server, url) = blocking_server();
    let client = blocking::Node::new();
    let calc: CalculatorBlockingProxy = client.proxy(&url).unwrap();

    let err = calc.divide(10, 0).unwrap_err();
    let CallError::Method { error, trace } = &err else { panic!("expected a method error, got {err}") };
    assert_eq!(*error, DivideByZero(10));
    assert_eq!(trace.message(), "cannot divide 10 by zero");

    let err = calc.explode("on purpose".into()).unwrap_err();
    assert!(matches!(err, CallError::Panic(_)), "{err}");
    assert!(err.to_string().contains("exploded: on purpose"), "{err}");
    assert_eq!(calc.add(1, 1).unwrap(), 2, "the server survived the panic");

    let obj = calc.object();
    assert!(matches!(obj.call("nope", []), Err(CallError::NoSuchMethod(_))));
    assert!(matches!(obj.call("add", [Value::from("two")]), Err(CallError::BadArguments(_))));
    let missing = client.object(url.replace("/calc", "/missing")).unwrap();
    assert!(matches!(missing.call("add", []), Err(CallError::NoSuchObject(_))));
    assert!(matches!(client.object("tcp://127.0.0.1:1/calc"), Err(Error::Connect { .. })));

    assert!(server.unpublish("calc"));
    assert!(matches!(calc.add(1, 1), Err(CallError::NoSuchObject(_))));
    assert!(matches!(server.publish("", Calculator::default()), Err(Error::InvalidAddress { .. })));
}

/// A per-proxy timeout works on blocking proxies: the call fails in about that time.
#[test]
fn blocking_calls_time_out() {
    let (_server, url) = blocking_server();
    let calc: CalculatorBlockingProxy = blocking::Node::new().proxy(&url).unwrap();
    let started = Instant::now();
    let err = calc.with_timeout(Duration::from_millis(100)).sleep(10_000).unwrap_err();
    assert!(matches!(err, CallError::DeadlineExceeded(_)), "{err}");
    assert!(started.elapsed() < Duration::from_secs(5));
    assert_eq!(calc.sleep(1).unwrap(), 1, "no default deadline");
}

/// Blocking calls made inside an async runtime fail at once with a clear error instead of
/// panicking or stalling the runtime; the async twin works there.
#[tokio::test]
async fn blocking_call_inside_an_async_runtime_returns_a_clear_error() {
    // Set up where blocking is fine.
    let (server, calc) = std::thread::spawn(|| {
        let (server, url) = blocking_server();
        let calc: CalculatorBlockingProxy = server.proxy(&url).unwrap();
        (server, calc)
    })
    .join()
    .unwrap();

    let err = calc.add(1, 2).unwrap_err();
    assert!(matches!(err, CallError::Blocking { .. }), "{err}");
    let message = err.to_string();
    assert!(message.starts_with("blocking call refused: `add` was called from inside an async runtime"), "{message}");
    assert!(message.contains("BlockingProxy::as_async"), "{message}");
    assert!(matches!(calc.divide(1, 0), Err(CallError::Blocking { .. })), "typed errors too");
    assert!(matches!(calc.object().call("add", []), Err(CallError::Blocking { .. })));
    assert!(matches!(server.listen("tcp://127.0.0.1:0"), Err(Error::Blocking { .. })));
    assert!(matches!(server.wait(), Err(Error::Blocking { .. })));
    assert!(matches!(server.runtime().block_on(async { 1 }), Err(Error::Blocking { .. })));

    // The async proxy inside works here.
    assert_eq!(calc.as_async().add(1, 2).await.unwrap(), 3);

    // `spawn_blocking` threads belong to the async runtime too.
    let c = calc.clone();
    let result = tokio::task::spawn_blocking(move || c.add(1, 2)).await.unwrap();
    assert!(matches!(result, Err(CallError::Blocking { .. })));
    drop((server, calc)); // dropping the blocking node here does not panic either
}

/// Also on a multi-threaded runtime, where blocking would be possible but stalls a worker.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn blocking_call_inside_a_multi_threaded_runtime_is_refused_too() {
    let (server, calc) = std::thread::spawn(|| {
        let (server, url) = blocking_server();
        let calc: CalculatorBlockingProxy = server.proxy(&url).unwrap();
        (server, calc)
    })
    .join()
    .unwrap();
    assert!(matches!(calc.add(1, 2), Err(CallError::Blocking { .. })));
    let c = calc.clone();
    let in_task = tokio::spawn(async move { c.add(1, 2) }).await.unwrap();
    assert!(matches!(in_task, Err(CallError::Blocking { .. })));
    drop(server);
}

/// Blocking proxies are `Clone + Send + Sync + Debug`, and many threads share one at once.
#[test]
fn blocking_proxies_are_shared_by_threads() {
    fn assert_proxy<T: Clone + Send + Sync + Debug + 'static>() {}
    assert_proxy::<CalculatorBlockingProxy>();
    assert_proxy::<blocking::DynObject>();
    assert_proxy::<blocking::Node>();

    let (_server, url) = blocking_server();
    let calc: CalculatorBlockingProxy = blocking::Node::new().proxy(&url).unwrap();
    assert!(format!("{calc:?}").starts_with("CalculatorBlockingProxy"), "{calc:?}");
    std::thread::scope(|s| {
        for t in 0..8 {
            let calc = &calc;
            s.spawn(move || {
                for i in 0..100 {
                    assert_eq!(calc.add(t, i).unwrap(), t + i);
                    calc.accumulate(1).unwrap();
                }
            });
        }
    });
    assert_eq!(calc.accumulate(0).unwrap(), 800);
}

/// A proxy keeps its runtime alive: it works after the node that made it is dropped.
#[test]
fn proxies_outlive_their_node() {
    let (_server, url) = blocking_server();
    let calc: CalculatorBlockingProxy = blocking::Node::new().proxy(&url).unwrap();
    assert_eq!(calc.add(1, 2).unwrap(), 3);
}

/// The methods of an object a blocking node serves may make blocking calls themselves; the
/// call chain carries over (a re-entrant call fails fast instead of deadlocking) and so does
/// the deadline.
#[test]
fn served_methods_make_blocking_calls() {
    let calc = Calculator::default();
    let sleeps_ended = calc.sleeps_ended.clone();
    let (_calc_server, calc_url) = blocking_server_with(calc);
    let server = blocking::Node::new();
    let url = server.listen("tcp://127.0.0.1:0").unwrap().object("relay").to_string();
    let outcomes = Arc::new(Mutex::new(Vec::new()));
    let relay = Relay { calc: server.proxy(&calc_url).unwrap(), me: OnceLock::new(), outcomes: outcomes.clone() };
    // A proxy to itself, over a connection to its own node.
    relay.me.set(server.proxy(&url).unwrap()).unwrap();
    server.publish("relay", relay).unwrap();

    let client = blocking::Node::new();
    let relay: RelayBlockingProxy = client.proxy(&url).unwrap();
    assert_eq!(relay.add_one(41).unwrap(), 42);
    assert_eq!(relay.reenter().unwrap(), "re-entrant");

    // Several at once: each blocking method hands its thread's other work over.
    std::thread::scope(|s| {
        for i in 0..6 {
            let relay = &relay;
            s.spawn(move || assert_eq!(relay.add_one(i).unwrap(), i + 1));
        }
    });

    // The client's deadline bounds the relay's own call.
    let started = Instant::now();
    match relay.with_timeout(Duration::from_millis(300)).sleep_via(10_000) {
        Err(CallError::DeadlineExceeded(_)) => {}
        // The relay's own call ends at the same instant, and its answer may arrive first.
        Ok(outcome) => assert_eq!(outcome, "deadline exceeded"),
        Err(e) => panic!("expected the deadline to pass, got {e}"),
    }
    eventually_blocking("the relay's call ending", || !outcomes.lock().unwrap().is_empty());
    assert_eq!(outcomes.lock().unwrap()[0], "deadline exceeded");
    eventually_blocking("the calculator's sleep stopping", || sleeps_ended.load(Ordering::SeqCst) == 1);
    assert!(started.elapsed() < Duration::from_secs(5));
}

/// A local object (`Remote::new`) called through a blocking proxy runs on the caller's
/// thread, and may make blocking calls too.
#[test]
fn local_objects_behind_blocking_proxies() {
    let (_calc_server, calc_url) = blocking_server();
    let node = blocking::Node::new();
    let relay = Relay { calc: node.proxy(&calc_url).unwrap(), me: OnceLock::new(), outcomes: Arc::default() };
    let relay = RelayBlockingProxy::from_async(Remote::new(relay).into_proxy(), node.runtime().clone());
    assert_eq!(relay.add_one(1).unwrap(), 2);
}

/// `wait` blocks until a stopper is used, here by a remote call; the node serves meanwhile.
#[test]
fn wait_returns_when_stopped() {
    let (server, url) = blocking_server();
    let stopper = server.stopper();
    server.publish("control", Control { stopper: stopper.clone() }).unwrap();
    let control_url = url.replace("/calc", "/control");
    let client = std::thread::spawn(move || {
        let node = blocking::Node::new();
        let calc: CalculatorBlockingProxy = node.proxy(&url).unwrap();
        assert_eq!(calc.add(1, 2).unwrap(), 3);
        let control: ControlBlockingProxy = node.proxy(&control_url).unwrap();
        control.quit().unwrap();
    });
    assert!(!stopper.is_stopped());
    server.wait().unwrap();
    assert!(stopper.is_stopped());
    client.join().unwrap();
    server.wait().unwrap(); // returns at once once stopped
}

/// The blocking twin calls the remote name, keeps `#[deprecated]` and leaves out `#[cfg]`-ed
/// methods, as the async proxy does.
#[test]
fn blocking_twin_follows_method_attributes() {
    use attributes::{Greeter, GreeterBlockingProxy};

    let server = blocking::Node::new();
    server.publish("greeter", Greeter).unwrap();
    let url = server.listen("memory://blocking-attributes").unwrap().object("greeter").to_string();
    let greeter: GreeterBlockingProxy = server.proxy(&url).unwrap();
    assert_eq!(greeter.greet("Ada".into()).unwrap(), "hello, Ada");
    #[allow(deprecated)]
    let old = greeter.old_greet().unwrap();
    assert_eq!(old, "hi");
    assert!(greeter.object().methods().unwrap().method("hello").is_some());
}

/// `shutdown` ends `wait` too, and the node stops serving.
#[test]
fn shutdown_ends_wait_and_serving() {
    let (server, url) = blocking_server();
    let calc: CalculatorBlockingProxy = blocking::Node::new().proxy(&url).unwrap();
    assert_eq!(calc.add(1, 2).unwrap(), 3);
    let waiter = {
        let server = server.clone();
        std::thread::spawn(move || server.wait())
    };
    std::thread::sleep(Duration::from_millis(50));
    assert!(!waiter.is_finished(), "wait returned before the shutdown");
    server.shutdown(Duration::from_secs(1)).unwrap();
    waiter.join().unwrap().unwrap();
    assert!(calc.add(1, 2).is_err(), "the connection was closed");
    assert!(server.listening().is_empty());
}

/// Listeners come and go while the node serves; serial objects work as with the async node.
#[test]
fn listeners_and_serial_objects() {
    let server = blocking::Node::new();
    server.publish_serial("calc", Calculator::default()).unwrap();
    let tcp = server.listen("tcp://127.0.0.1:0").unwrap();
    let memory = server.listen("memory://blocking-listeners").unwrap();
    assert_eq!(server.listening().len(), 2);

    let client = blocking::Node::new();
    let calc: CalculatorBlockingProxy = client.proxy(memory.object("calc")).unwrap();
    let sums: Vec<i64> = (1..=5).map(|x| calc.accumulate(x).unwrap()).collect();
    assert_eq!(sums, [1, 3, 6, 10, 15]);

    assert!(server.unlisten(&tcp));
    assert_eq!(server.listening(), [memory]);
    let err = blocking::Node::new().object(tcp.object("calc")).and_then(|o| Ok(o.call("add", [])?)).unwrap_err();
    assert!(matches!(err, Error::Connect { .. }), "{err}");
    assert_eq!(calc.accumulate(0).unwrap(), 15, "the other listener still serves");
}
