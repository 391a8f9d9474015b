//! `tracing` events for connections and calls, on both sides, visible once a subscriber is
//! installed.

#[path = "support/capture.rs"]
mod capture;
mod support;

use capture::Capture;
use support::{calc_proxy, eventually, start_server};

/// Connection open, handshake and close (with its reason), and every call (object, method,
/// duration, outcome) are traced on the serving and the calling side.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_and_calls_are_traced() {
    let capture = Capture::default();
    let writer = capture.clone();
    tracing_subscriber::fmt()
        .with_env_filter("dopy=debug,dopy_core=debug,dopy_transport=debug")
        .with_writer(move || writer.clone())
        .with_ansi(false)
        .init();

    let (_server, addr) = start_server().await;
    let calc = calc_proxy(&addr).await;
    assert_eq!(calc.add(1, 2).await.unwrap(), 3);
    calc.divide(1, 0).await.unwrap_err();
    drop(calc);

    let log = || String::from_utf8(capture.0.lock().unwrap().clone()).unwrap();
    // The close is traced once both sides have seen it: the last of these lines to appear.
    eventually("the connection's close traced", || log().contains("reason=the peer said goodbye")).await;
    let log = log();
    for want in [
        "listening",
        "handshake complete",
        "connection open",
        "call served",
        "object=\"calc\"",
        "method=\"add\"",
        "elapsed_us=",
        "ok=true",
        "ok=false",
        "call returned",
        "connection closed",
        "reason=the peer said goodbye",
    ] {
        assert!(log.contains(want), "missing `{want}` in the trace:\n{log}");
    }
}
