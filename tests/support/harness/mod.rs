//! Shared by the transport tests: the demo objects of `dopy-serve`, a server reachable over each
//! transport, the conformance suite written once and run over every one, certificates and
//! process checks.
#![allow(dead_code, unreachable_pub, unused_macros)]

#[path = "../../../src/bin/dopy-serve/demo.rs"]
pub mod demo;

#[path = "../certs.rs"]
mod certs;
#[allow(unused_imports)] // `Certs` is named by the TLS tests only.
pub use certs::{certs, Certs};

use std::any::Any;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use dopy::{CallError, Endpoint, Node, NodeBuilder, Remote, Value};

use demo::{CalculatorProxy, DivideByZero};

/// The server's node name, as error traces show it.
pub const SERVER: &str = "conformance-server";

/// The `dopy-serve` binary built with these tests.
pub const DOPY_SERVE: &str = env!("CARGO_BIN_EXE_dopy-serve");

/// The shared secret of the authenticated variants.
pub const SECRET: &str = "conformance secret";

/// A name unique in this test process.
pub fn unique(label: &str) -> String {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    format!("{label}-{}-{}", std::process::id(), NEXT.fetch_add(1, Ordering::Relaxed))
}

/// Whether a process is still running (a zombie waiting to be reaped counts as ended).
pub fn process_running(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        // The state follows the command name in parentheses: `1234 (dopy-serve) S ...`.
        Ok(stat) => stat.rsplit_once(") ").is_some_and(|(_, rest)| !rest.starts_with('Z') && !rest.starts_with('X')),
        Err(_) => false,
    }
}

/// Waits (up to 10 s) for a process to end; returns whether it did.
pub async fn process_ends(pid: u32) -> bool {
    for _ in 0..1000 {
        if !process_running(pid) {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    false
}

/// Bounds a future that must not hang (a test failure instead of a stuck test run).
pub async fn promptly<F: std::future::Future>(what: &str, f: F) -> F::Output {
    tokio::time::timeout(Duration::from_secs(20), f)
        .await
        .unwrap_or_else(|_| panic!("{what}: still waiting after 20 s"))
}

/// The demo objects served over one transport, and a client node set up to reach them.
pub struct Served {
    /// The client side.
    pub client: Node,
    /// Where the server is.
    pub endpoint: Endpoint,
    /// The server's node when it runs in this process; `None` for a child process.
    server: Option<Node>,
    /// Whatever must live as long as the server (a temporary directory, an sshd).
    keep: Vec<Box<dyn Any + Send + Sync>>,
}

impl Served {
    /// A server in a child process (started by the client on its first call).
    pub fn child(client: Node, endpoint: &str) -> Served {
        Served { client, endpoint: endpoint.parse().unwrap(), server: None, keep: Vec::new() }
    }

    /// Keeps `thing` alive as long as the server.
    pub fn keep(mut self, thing: impl Any + Send + Sync) -> Served {
        self.keep.push(Box::new(thing));
        self
    }

    /// The address of an object of the server.
    pub fn address(&self, object: &str) -> String {
        self.endpoint.object(object).to_string()
    }

    /// A typed proxy to `calc`.
    pub async fn calc(&self) -> CalculatorProxy {
        self.client.proxy(&self.address("calc")).await.unwrap()
    }

    /// Makes the server go away at once: drops the in-process node, or ends the child process
    /// (exit status 3) through its `process` object.
    pub async fn go_away(&mut self) {
        match self.server.take() {
            Some(node) => drop(node),
            None => {
                let process: demo::ProcessProxy = self.client.proxy(&self.address("process")).await.unwrap();
                process.exit(3).await.unwrap();
            }
        }
    }
}

/// Publishes the demo objects on a fresh server node built from `server` and listens on
/// `endpoint`.
pub async fn in_process(endpoint: &str, server: NodeBuilder, client: Node) -> Served {
    let node = server.name(SERVER).build();
    node.publish("calc", demo::Calculator::default()).unwrap();
    let endpoint = node.listen(endpoint).await.unwrap();
    Served { client, endpoint, server: Some(node), keep: Vec::new() }
}

/// The `exec:` command line running `dopy-serve` over its stdio, with `args` added.
pub fn serve_command(args: &str) -> String {
    format!("{DOPY_SERVE} --stdio --name {SERVER} --expose-process {args}")
}

// The transports of the conformance suite.

pub async fn tcp() -> Served {
    in_process("tcp://127.0.0.1:0", Node::builder(), Node::new()).await
}

pub async fn tls() -> Served {
    let certs = certs(&["localhost", "127.0.0.1"]);
    let client = Node::builder().tls_client(certs.client()).build();
    in_process("tls://127.0.0.1:0", Node::builder().tls_server(certs.server()), client).await
}

pub async fn unix() -> Served {
    let dir = super::temp_dir("unix");
    let endpoint = format!("unix:{}", dir.path().join("calc.sock").display());
    in_process(&endpoint, Node::builder(), Node::new()).await.keep(dir)
}

pub async fn memory() -> Served {
    in_process(&format!("memory://{}", unique("memory")), Node::builder(), Node::new()).await
}

pub async fn exec() -> Served {
    Served::child(Node::new(), &format!("exec:{}", serve_command("")))
}

pub async fn tcp_with_secret() -> Served {
    in_process("tcp://127.0.0.1:0", Node::builder().secret(SECRET), Node::builder().secret(SECRET).build()).await
}

pub async fn memory_with_secret() -> Served {
    let endpoint = format!("memory://{}", unique("memory-secret"));
    in_process(&endpoint, Node::builder().secret(SECRET), Node::builder().secret(SECRET).build()).await
}

pub async fn exec_with_secret() -> Served {
    // The child reads the secret from its environment, never from its command line.
    let command = format!("exec:env DOPY_TEST_SECRET='{SECRET}' {}", serve_command("--secret-env DOPY_TEST_SECRET"));
    Served::child(Node::builder().secret(SECRET).build(), &command)
}

/// The conformance suite: what every transport must do, written once.
pub mod suite {
    use super::*;

    pub async fn typed_and_dynamic_calls_share_one_object(s: &Served) {
        let calc = s.calc().await;
        assert_eq!(calc.add(2, 3).await.unwrap(), 5);
        assert_eq!(calc.accumulate(10).await.unwrap(), 10);
        let obj = s.client.object(&s.address("calc")).await.unwrap();
        assert_eq!(obj.call("add", [Value::from(2), Value::from(3)]).await.unwrap(), Value::Int(5));
        let v = obj.call_named("divide", [("b", Value::from(2)), ("a", Value::from(10))]).await.unwrap();
        assert_eq!(v, Value::Int(5));
        assert_eq!(obj.call("accumulate", [Value::from(5)]).await.unwrap(), Value::Int(15));
        assert_eq!(calc.total().await.unwrap(), 15);
        let interface = obj.methods().await.unwrap();
        assert_eq!(interface.method("slow_echo").unwrap().params.len(), 2);
    }

    pub async fn errors_come_back_with_the_server_trace(s: &Served) {
        let calc = s.calc().await;
        let err = calc.divide(7, 0).await.unwrap_err();
        assert_eq!(err.method_error(), Some(&DivideByZero(7)), "{err}");
        let hop = &err.trace().unwrap().hops()[0];
        assert_eq!((hop.node.as_str(), hop.object.as_str(), hop.method.as_str()), (SERVER, "calc", "divide"));
        let err = calc.crash().await.unwrap_err();
        assert!(matches!(err, CallError::Panic(_)), "{err}");
        assert!(err.to_string().contains("the calculator caught fire"), "{err}");
        let obj = s.client.object(&s.address("calc")).await.unwrap();
        let err = obj.call("add", [Value::from("two"), Value::from(3)]).await.unwrap_err();
        assert!(matches!(err, CallError::BadArguments(_)), "{err}");
        assert!(err.to_string().contains("argument `a`"), "{err}");
        let err = obj.call("nonexistent", []).await.unwrap_err();
        assert!(matches!(err, CallError::NoSuchMethod(_)), "{err}");
        let missing = s.client.object(&s.address("missing")).await.unwrap();
        let err = missing.call("add", [Value::from(1), Value::from(2)]).await.unwrap_err();
        assert!(matches!(err, CallError::NoSuchObject(_)), "{err}");
        // None of this hurt the server.
        assert_eq!(calc.add(1, 1).await.unwrap(), 2);
    }

    /// A `Value` of every kind, nested, as a user may pass one.
    pub fn every_kind_of_value() -> Value {
        let unit_variant = Value::Variant("V".into(), Box::new(Value::Unit));
        let newtype_variant = Value::Variant("W".into(), Box::new(Value::Int(-7)));
        Value::Map(vec![
            (Value::from("unit"), Value::Unit),
            (Value::from("bool"), Value::Bool(true)),
            (Value::from("int"), Value::Int(-3)),
            (Value::from("uint"), Value::UInt(u64::MAX)),
            (Value::from("int128"), Value::Int128(i128::MIN)),
            (Value::from("uint128"), Value::UInt128(u128::MAX)),
            (Value::from("float"), Value::Float(2.5)),
            (Value::from("char"), Value::Char('é')),
            (Value::from("string"), Value::from("a string longer than twenty-four bytes")),
            (Value::from("bytes"), Value::Bytes(vec![0, 255, 7])),
            (Value::from("none"), Value::Option(None)),
            (Value::from("some"), Value::Option(Some(Box::new(Value::Int(1))))),
            (Value::Int(9), Value::Seq(vec![unit_variant.clone(), newtype_variant.clone()])),
            (Value::from("variants"), Value::Seq(vec![unit_variant, newtype_variant])),
        ])
    }

    pub async fn values_travel_as_they_were_sent(s: &Served) {
        let calc = s.calc().await;
        let obj = s.client.object(&s.address("calc")).await.unwrap();
        let value = every_kind_of_value();
        let unit_variant = Value::Variant("V".into(), Box::new(Value::Unit));
        for v in [value, unit_variant, Value::Variant("W".into(), Box::new(Value::Int(-7)))] {
            // Typed: the proxy encodes the `Value` parameter and decodes the `Value` result.
            let (kind, back) = calc.describe(v.clone()).await.unwrap();
            assert_eq!((kind.as_str(), &back), (v.kind(), &v), "typed");
            // Dynamic: the same method, called with values.
            let dynamic = obj.call("describe", [v.clone()]).await.unwrap();
            assert_eq!(dynamic, Value::Seq(vec![Value::from(v.kind()), v.clone()]), "dynamic");
        }
    }

    pub async fn many_calls_in_flight_get_their_own_answers(s: &Served) {
        let calc = s.calc().await;
        let calls = (0..32i64).map(|i| {
            let calc = calc.clone();
            // Later calls wait less, so answers come back out of order.
            async move { (i, calc.slow_echo((32 - i) as u64 % 5, format!("call {i}")).await, calc.add(i, i).await) }
        });
        for (i, echo, sum) in futures_util::future::join_all(calls).await {
            assert_eq!(echo.unwrap(), format!("call {i}"));
            assert_eq!(sum.unwrap(), 2 * i);
        }
    }

    pub async fn exclusive_calls_lose_no_update(s: &Served) {
        let calc = s.calc().await;
        let calls = (0..100).map(|_| {
            let calc = calc.clone();
            tokio::spawn(async move { calc.accumulate(1).await.unwrap() })
        });
        let mut seen: Vec<i64> = futures_util::future::join_all(calls).await.into_iter().map(Result::unwrap).collect();
        seen.sort();
        assert_eq!(seen, (1..=100).collect::<Vec<_>>(), "each call saw the total its own update made");
        assert_eq!(calc.total().await.unwrap(), 100);
    }

    pub async fn references_and_callbacks_travel_over_the_connection(s: &Served) {
        let calc = s.calc().await;
        // A result by reference: the register stays on the server.
        let register = calc.register(41).await.unwrap();
        assert_eq!(register.get().await.unwrap(), 41);
        register.set(42).await.unwrap();
        assert_eq!(register.get().await.unwrap(), 42);
        // An argument by reference: the server calls the client's tally back.
        let tally = Remote::new(demo::Tally::default());
        assert_eq!(calc.count_to(4, tally.clone()).await.unwrap(), 10);
        assert_eq!(tally.take(0).await.unwrap(), 10, "the client's own object was called");
    }

    pub async fn calls_in_flight_fail_when_the_server_goes_away(s: &mut Served) {
        let calc = s.calc().await;
        let mut slow = std::pin::pin!(calc.slow_echo(60_000, "never".into()));
        // The first poll sends the slow call; frames are handled in order, so once the `add`
        // sent after it is answered, the slow call is in flight on the server.
        tokio::select! {
            biased;
            r = &mut slow => panic!("the slow call ended early: {r:?}"),
            r = calc.add(0, 0) => r.unwrap(),
        };
        s.go_away().await;
        let result = promptly("the call in flight", slow).await;
        assert!(matches!(result, Err(CallError::Disconnected(_))), "{result:?}");
        let after = calc.add(1, 1).await.unwrap_err();
        assert!(matches!(after, CallError::Disconnected(_)), "{after}");
    }
}

/// Runs the conformance suite over each named transport: `conformance!(tcp => harness::tcp(), ...)`.
macro_rules! conformance {
    ($($transport:ident => $start:expr),* $(,)?) => {$(
        mod $transport {
            use super::harness::suite;
            #[allow(unused_imports)]
            use super::*;

            /// Starts the server, or `None` when this machine cannot (the start says why).
            async fn start() -> Option<super::harness::Served> {
                $start.await.into()
            }

            /// Typed and dynamic callers reach the same object, with introspection.
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn typed_and_dynamic_calls_share_one_object() {
                let Some(s) = start().await else { return };
                suite::typed_and_dynamic_calls_share_one_object(&s).await;
            }

            /// Method errors, panics, bad arguments and unknown names come back as such, with the
            /// server's trace, and leave the server serving.
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn errors_come_back_with_the_server_trace() {
                let Some(s) = start().await else { return };
                suite::errors_come_back_with_the_server_trace(&s).await;
            }

            /// A `dopy::Value` parameter and result arrive as they were sent, typed and dynamic.
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn values_travel_as_they_were_sent() {
                let Some(s) = start().await else { return };
                suite::values_travel_as_they_were_sent(&s).await;
            }

            /// 32 calls in flight on one connection get their own answers, out of order.
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn many_calls_in_flight_get_their_own_answers() {
                let Some(s) = start().await else { return };
                suite::many_calls_in_flight_get_their_own_answers(&s).await;
            }

            /// 100 concurrent `&mut self` calls each see their own update: none is lost.
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn exclusive_calls_lose_no_update() {
                let Some(s) = start().await else { return };
                suite::exclusive_calls_lose_no_update(&s).await;
            }

            /// A result by reference and a callback argument work over this transport.
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn references_and_callbacks_travel_over_the_connection() {
                let Some(s) = start().await else { return };
                suite::references_and_callbacks_travel_over_the_connection(&s).await;
            }

            /// A call in flight fails with `Disconnected` when the server goes away.
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn calls_in_flight_fail_when_the_server_goes_away() {
                let Some(mut s) = start().await else { return };
                suite::calls_in_flight_fail_when_the_server_goes_away(&mut s).await;
            }
        }
    )*};
}
