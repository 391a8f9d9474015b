//! Errors come back typed, with the server-side trace, and never take the server down.

mod support;

use std::sync::atomic::Ordering;
use std::time::Duration;

use dopy::{CallError, DisconnectCause, Error, Node, Value};
use support::{calc_proxy, eventually, start_server, start_server_with, Calculator, DivideByZero};

/// The typed caller gets its own error type back, not a string, with where it happened.
#[tokio::test]
async fn method_error_comes_back_typed_with_its_trace() {
    let (_server, addr) = start_server().await;
    let calc = calc_proxy(&addr).await;
    let err = calc.divide(10, 0).await.unwrap_err();
    let CallError::Method { error, trace } = &err else { panic!("expected a method error, got {err}") };
    assert_eq!(*error, DivideByZero(10));
    assert_eq!(trace.message(), "cannot divide 10 by zero");
    assert_eq!(trace.hops().len(), 1);
    assert_eq!(trace.hops()[0].node, "test-server");
    assert_eq!(trace.hops()[0].object, "calc");
    assert_eq!(trace.hops()[0].method, "divide");
    assert_eq!(err.to_string(), "calc.divide failed: cannot divide 10 by zero");
    assert_eq!(calc.divide(10, 2).await.unwrap(), 5);
}

/// A dynamic caller gets the method's error as a `Value`.
#[tokio::test]
async fn dynamic_caller_gets_method_error_as_value() {
    let (_server, addr) = start_server().await;
    let obj = Node::new().object(&format!("{addr}/calc")).await.unwrap();
    let err = obj.call("divide", [Value::from(7), Value::from(0)]).await.unwrap_err();
    assert_eq!(err.method_error(), Some(&Value::Int(7)));
}

/// The cause chain of the method's error travels with it, and `{:#}` prints local and remote
/// parts, clearly divided.
#[tokio::test]
async fn alternate_display_prints_local_and_remote_parts() {
    let (_server, addr) = start_server().await;
    let calc = calc_proxy(&addr).await;
    let err = calc.load("config".into()).await.unwrap_err();
    assert_eq!(err.trace().unwrap().causes(), ["disk on fire"]);
    let full = format!("{err:#}");
    let local = full.find("--- local ---").expect(&full);
    let remote = full.find("--- remote ---").expect(&full);
    assert!(local < remote, "{full}");
    assert!(full.starts_with("calc.load failed: could not load `config`"), "{full}");
    assert!(full.contains(&format!("call: calc.load via {addr}")), "{full}");
    assert!(full.contains("at: node `test-server`, object `calc`, method `load`"), "{full}");
    assert!(full.contains("caused by: disk on fire"), "{full}");
}

/// A panic in a method is reported with its message and location (and no backtrace unless the
/// server opts in: tests/hostile.rs), and the server keeps serving.
#[tokio::test]
async fn panic_is_reported_and_the_server_keeps_serving() {
    let (_server, addr) = start_server().await;
    let calc = calc_proxy(&addr).await;
    for _ in 0..3 {
        let err = calc.explode("on purpose".into()).await.unwrap_err();
        let CallError::Panic(trace) = &err else { panic!("expected a panic error, got {err}") };
        assert!(trace.message().starts_with("exploded: on purpose (at "), "{}", trace.message());
        assert!(trace.message().contains("support/calculator.rs"), "{}", trace.message());
        assert_eq!(trace.backtrace(), None);
    }
    assert_eq!(calc.add(1, 2).await.unwrap(), 3);
    assert_eq!(calc_proxy(&addr).await.add(2, 2).await.unwrap(), 4);
}

/// Unknown objects and methods give their own error kinds, naming what was asked for.
#[tokio::test]
async fn no_such_object_and_no_such_method() {
    let (_server, addr) = start_server().await;
    let client = Node::new();
    let ghost = client.object(&format!("{addr}/ghost")).await.unwrap();
    let err = ghost.call("add", []).await.unwrap_err();
    assert!(matches!(err, CallError::NoSuchObject(_)), "{err}");
    assert!(err.to_string().contains("no object `ghost`"), "{err}");
    let obj = client.object(&format!("{addr}/calc")).await.unwrap();
    let err = obj.call("subtract", []).await.unwrap_err();
    assert!(matches!(err, CallError::NoSuchMethod(_)), "{err}");
    assert!(err.to_string().contains("no remote method `subtract`"), "{err}");
}

/// Missing, extra, unknown, duplicated and wrongly-typed arguments give `BadArguments`
/// naming the parameter.
#[tokio::test]
async fn bad_arguments_name_the_parameter() {
    let (_server, addr) = start_server().await;
    let obj = Node::new().object(&format!("{addr}/calc")).await.unwrap();
    let cases: Vec<(Result<Value, CallError>, &str)> = vec![
        (obj.call("add", [Value::from(1)]).await, "missing argument `b`"),
        (obj.call("add", [1.into(), 2.into(), 3.into()]).await, "expected 2 argument(s), got 3"),
        (obj.call("add", [Value::from("one"), Value::from(2)]).await, "argument `a`: invalid type: string \"one\""),
        (obj.call_named("add", [("a", Value::from(1)), ("c", Value::from(2))]).await, "unexpected argument `c`"),
        (obj.call_named("add", [("a", Value::from(1)), ("a", Value::from(2))]).await, "argument `a` given twice"),
        (obj.call("word_count", [Value::from(5)]).await, "argument `text`"),
    ];
    for (result, want) in cases {
        let err = result.unwrap_err();
        assert!(matches!(err, CallError::BadArguments(_)), "{err}");
        assert!(err.to_string().contains(want), "wanted `{want}` in: {err}");
    }
    assert_eq!(obj.call("add", [1.into(), 2.into()]).await.unwrap(), Value::Int(3));
}

/// A call in flight when the server goes away ends with `Disconnected`, promptly.
#[tokio::test]
async fn server_going_away_mid_call_gives_disconnected() {
    let calc = Calculator::default();
    let echoes = calc.echoes.clone();
    let (server, addr) = start_server_with(calc).await;
    let calc = calc_proxy(&addr).await;
    let call = tokio::spawn(async move { calc.slow_echo(10_000, "never".into()).await });
    eventually("the call reaching the server", || echoes.load(Ordering::SeqCst) == 1).await;
    drop(server);
    let result = tokio::time::timeout(Duration::from_secs(5), call).await.expect("no hang").unwrap();
    assert!(matches!(result, Err(CallError::Disconnected(_))), "{result:?}");
}

/// An address nobody listens on gives `Connect`, naming the endpoint.
#[tokio::test]
async fn unreachable_address_gives_connect_error() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    drop(listener);
    let err = Node::new().object(&format!("tcp://127.0.0.1:{port}/calc")).await.unwrap_err();
    assert!(matches!(err, Error::Connect { .. }), "{err}");
    assert!(err.to_string().contains(&format!("tcp://127.0.0.1:{port}")), "{err}");
    let err = Node::new().object("tcp://127.0.0.1/calc").await.unwrap_err();
    assert!(matches!(err, Error::InvalidAddress { .. }), "{err}");
}

/// The messages of `err` and of each error in its `source()` chain, outermost first, after
/// checking that no level repeats the message of a cause below it (a reporter such as `anyhow`
/// prints every level, so a repeated cause would be shown twice).
fn chain_shown_once(err: &(dyn std::error::Error + 'static)) -> Vec<String> {
    let mut chain = Vec::new();
    let mut next = Some(err);
    while let Some(e) = next {
        chain.push(e.to_string());
        next = e.source();
    }
    for (i, outer) in chain.iter().enumerate() {
        for inner in &chain[i + 1..] {
            assert!(!outer.contains(inner.as_str()), "`{outer}` repeats its cause `{inner}`: {chain:#?}");
        }
    }
    chain
}

/// Connection, handshake and i/o errors show each cause once: in an error's message or as its
/// `source()`, never both; `{:#}` still prints the whole chain.
#[tokio::test]
async fn each_cause_is_shown_once_and_alternate_display_shows_them_all() {
    let server = Node::builder().secret("the secret").build();
    let bound = server.listen("tcp://127.0.0.1:0").await.unwrap();
    let refused =
        Node::builder().secret("a guess").build().object(&bound.object("calc").to_string()).await.unwrap_err();
    let child = Node::new().object("exec:sh -c 'echo \"fatal: no config\" >&2; exit 2'#calc").await.unwrap_err();
    let taken = Node::new().listen(&bound.to_string()).await.unwrap_err();
    for (err, expected) in [
        (&refused, &["could not connect to tcp://", "unauthorized", "secrets the same"][..]),
        (
            &child,
            &["could not connect to exec:", "exited (exit status: 2)", "closed the connection during the handshake"],
        ),
        (&taken, &["cannot listen on tcp://"]),
    ] {
        // The child may exit before the hello is written to it: a broken pipe then reads as the
        // end it is, "closed the connection during the handshake" (dopy-transport's handshake).
        let chain = chain_shown_once(err);
        assert_eq!(chain.len(), expected.len(), "{chain:#?}");
        for (level, want) in chain.iter().zip(expected) {
            assert!(level.contains(want), "wanted `{want}` in `{level}`");
        }
        let full = format!("{err:#}");
        for level in chain_shown_once(err).iter() {
            assert_eq!(full.matches(level.as_str()).count(), 1, "`{level}` once in: {full}");
        }
    }
    assert!(refused.is_unauthorized());

    let transport = dopy::transport::TransportError::from(std::io::Error::other("broken pipe"));
    assert_eq!(chain_shown_once(&transport), ["transport i/o failed", "broken pipe"]);
}

/// One `?` takes a node's error (connecting), a typed call's (with the method's own error
/// type) and a dynamic call's into a `dopy::Result`; the method's error stays readable.
#[tokio::test]
async fn one_question_mark_takes_node_typed_and_dynamic_errors() {
    let (_server, addr) = start_server().await;
    async fn run(address: &str, divisor: i64) -> dopy::Result<i64> {
        let calc: support::CalculatorProxy = Node::new().proxy(address).await?;
        let quotient = calc.divide(12, divisor).await?; // CallError<DivideByZero>
        let sum = calc.object().call("add", [Value::from(quotient), Value::from(1)]).await?; // CallError
        match sum {
            Value::Int(n) => Ok(n),
            other => panic!("not an integer: {other:?}"),
        }
    }
    let calc = format!("{addr}/calc");
    assert_eq!(run(&calc, 4).await.unwrap(), 4);
    let err = run(&calc, 0).await.unwrap_err();
    assert!(matches!(&err, Error::Call(CallError::Method { .. })), "{err}");
    assert_eq!(err.method_error(), Some(&Value::Int(12)));
    assert_eq!(err.to_string(), "calc.divide failed: cannot divide 12 by zero");
    assert_eq!(err.trace().unwrap().hops()[0].method, "divide");
    let err = run("tcp://127.0.0.1:1/calc", 4).await.unwrap_err();
    assert!(matches!(err, Error::Connect { .. }), "{err}");
    let err = run(&format!("{addr}/nobody"), 4).await.unwrap_err();
    assert!(matches!(err, Error::Call(CallError::NoSuchObject(_))), "{err}");
}

/// The typed causes of a call's local failures (encoding, protocol, disconnection) are shown
/// once each too, and can be inspected.
#[test]
fn typed_causes_are_shown_once() {
    use dopy::transport::FrameError;
    use dopy::{CodecError, DisconnectCause, Disconnected, ProtocolError};

    /// An error with a cause of its own, to see that the whole chain is kept.
    #[derive(Debug, thiserror::Error)]
    #[error("the socket broke")]
    struct Broke(#[source] std::io::Error);

    let io = std::io::Error::other(Broke(std::io::Error::other("cable unplugged")));
    let cause = DisconnectCause::Transport(FrameError::Io(io));
    let gone: CallError = CallError::Disconnected(Disconnected::with_detail(cause, Some("exited (code 1)".into())));
    let chain = chain_shown_once(&gone);
    assert_eq!(
        chain,
        [
            "disconnected: could not read a frame from the transport: the socket broke; exited (code 1)",
            "cable unplugged",
        ]
    );
    let CallError::Disconnected(d) = &gone else { unreachable!() };
    assert!(matches!(d.cause(), DisconnectCause::Transport(FrameError::Io(_))));
    assert_eq!(d.detail(), Some("exited (code 1)"));
    let DisconnectCause::Transport(frame) = d.cause() else { unreachable!() };
    assert_eq!(std::error::Error::source(frame).unwrap().to_string(), "the socket broke", "the i/o error, typed");
    assert_eq!(chain_shown_once(d.cause())[1..], chain_shown_once(d)[1..], "the same causes: {d}");

    let value_error = dopy::from_value::<i64>(Value::from("x")).unwrap_err();
    let text = value_error.to_string();
    let codec: CallError =
        CallError::Codec(CodecError::with_source("the result of `add` could not be decoded", value_error));
    assert_eq!(chain_shown_once(&codec), [format!("encoding error: the result of `add` could not be decoded: {text}")]);
    let CallError::Codec(inner) = &codec else { unreachable!() };
    assert_eq!(inner.what(), Some("the result of `add` could not be decoded"));
    assert_eq!(chain_shown_once(inner), ["the result of `add` could not be decoded".to_owned(), text.clone()]);
    assert_eq!(std::error::Error::source(inner).unwrap().to_string(), text, "the decoder's error");
    let facade = Error::from(codec);
    assert_eq!(chain_shown_once(&facade).len(), 1, "{facade:#}");

    let aborted = Disconnected::new(DisconnectCause::Protocol(ProtocolError::Frame(FrameError::TooLarge { max: 8 })));
    assert_eq!(chain_shown_once(&aborted), ["protocol error: frame of more than 8 bytes refused"]);
    let said = Disconnected::new(DisconnectCause::Aborted { reason: "heartbeat timeout".into() });
    assert_eq!(said.to_string(), "the peer aborted the connection: heartbeat timeout");
    let closed = CallError::<Value>::Disconnected(DisconnectCause::ClosedLocally.into());
    assert_eq!(closed.to_string(), "disconnected: closed locally");
}

/// The cause of a disconnection says who ended the connection and why.
#[tokio::test]
async fn disconnected_says_who_ended_the_connection() {
    let (server, addr) = start_server().await;
    let calc = calc_proxy(&addr).await;
    let conn = calc.object().connection().expect("a remote proxy").clone();
    server.shutdown(Duration::from_millis(100)).await;
    conn.closed().await;
    assert!(matches!(conn.close_cause().unwrap().cause(), DisconnectCause::Goodbye), "{:?}", conn.close_reason());
    let err = calc.add(1, 2).await.unwrap_err();
    let CallError::Disconnected(why) = &err else { panic!("expected Disconnected, got {err}") };
    assert!(matches!(why.cause(), DisconnectCause::Goodbye), "{err}");
    assert_eq!(err.to_string(), "disconnected: the peer said goodbye");

    let (_server, addr) = start_server().await;
    let calc = calc_proxy(&addr).await;
    let conn = calc.object().connection().expect("a remote proxy").clone();
    conn.close();
    let err = calc.add(1, 2).await.unwrap_err();
    let CallError::Disconnected(why) = &err else { panic!("expected Disconnected, got {err}") };
    assert!(matches!(why.cause(), DisconnectCause::ClosedLocally), "{err}");
}
