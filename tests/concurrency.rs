//! Many clients, many calls: multiplexing, exclusivity, and isolation of failures.

mod support;

use std::sync::atomic::Ordering;
use std::time::Duration;

use dopy::Node;
use support::{calc_proxy, start_server, start_server_with, Calculator};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// 64 calls in flight on one proxy all get their own answers (replies matched by id).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sixty_four_concurrent_calls_on_one_proxy() {
    let (_server, addr) = start_server().await;
    let calc = calc_proxy(&addr).await;
    let calls = (0..64i64).map(|i| {
        let calc = calc.clone();
        // Later calls sleep less, so replies come back out of order.
        async move { (i, calc.slow_echo((64 - i) as u64 % 7, format!("call {i}")).await, calc.add(i, i).await) }
    });
    for (i, echo, sum) in futures_util::future::join_all(calls).await {
        assert_eq!(echo.unwrap(), format!("call {i}"));
        assert_eq!(sum.unwrap(), 2 * i);
    }
}

/// 32 client connections at once, each with its own calls, all get correct answers.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn thirty_two_clients_at_once() {
    let (_server, addr) = start_server().await;
    let tasks = (0..32i64).map(|c| {
        let addr = addr.clone();
        tokio::spawn(async move {
            let calc = calc_proxy(&addr).await;
            for i in 0..20 {
                assert_eq!(calc.add(c, i).await.unwrap(), c + i);
            }
            dopy::Proxy::object(&calc).connection().unwrap().info().local.clone()
        })
    });
    let mut locals: Vec<String> = futures_util::future::join_all(tasks).await.into_iter().map(Result::unwrap).collect();
    locals.sort();
    locals.dedup();
    assert_eq!(locals.len(), 32, "each client has its own connection");
}

/// `&mut self` calls never overlap, even when 200 of them arrive at once from 4 clients.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exclusive_calls_never_overlap() {
    let calc = Calculator::default();
    let (overlaps, busy) = (calc.overlaps.clone(), calc.busy.clone());
    let (_server, addr) = start_server_with(calc).await;
    let mut tasks = Vec::new();
    for _ in 0..4 {
        let calc = calc_proxy(&addr).await;
        for _ in 0..50 {
            let calc = calc.clone();
            tasks.push(tokio::spawn(async move { calc.accumulate(1).await.unwrap() }));
        }
    }
    let mut seen: Vec<i64> = futures_util::future::join_all(tasks).await.into_iter().map(Result::unwrap).collect();
    seen.sort();
    assert_eq!(seen, (1..=200).collect::<Vec<_>>(), "each call saw a distinct total");
    assert_eq!(overlaps.load(Ordering::SeqCst), 0);
    assert_eq!(busy.load(Ordering::SeqCst), 0);
}

/// A client that disconnects in the middle of a call does not disturb the others.
#[tokio::test]
async fn client_disconnecting_mid_call_does_not_disturb_others() {
    let calc = Calculator::default();
    let echoes = calc.echoes.clone();
    let (_server, addr) = start_server_with(calc).await;
    let steady = calc_proxy(&addr).await;
    let quitter = calc_proxy(&addr).await;
    let pending = tokio::spawn(async move { quitter.slow_echo(200, "gone".into()).await });
    support::eventually("the call reaching the server", || echoes.load(Ordering::SeqCst) == 1).await;
    pending.abort(); // drops the proxy, and with it the connection
    let slow = steady.slow_echo(300, "still here".into());
    let quick = steady.add(20, 22);
    let (slow, quick) = tokio::join!(slow, quick);
    assert_eq!(slow.unwrap(), "still here");
    assert_eq!(quick.unwrap(), 42);
}

/// Opens a raw TCP connection and completes the handshake by hand.
async fn raw_connection(addr: &dopy::Endpoint) -> TcpStream {
    let dopy::Endpoint::Tcp { host, port } = addr else { unreachable!() };
    let mut s = TcpStream::connect((host.as_str(), *port)).await.unwrap();
    s.write_all(b"DOPY\x01\0\0\0").await.unwrap();
    let mut hello = [0u8; 8];
    s.read_exact(&mut hello).await.unwrap();
    assert_eq!(&hello, b"DOPY\x01\0\0\0");
    s
}

/// Reads until the peer closes; returns everything received.
async fn read_to_close(s: &mut TcpStream) -> Vec<u8> {
    let mut all = Vec::new();
    tokio::time::timeout(Duration::from_secs(5), s.read_to_end(&mut all)).await.expect("closed in time").unwrap();
    all
}

/// A malformed frame closes only that connection, after an `Abort` that says why.
#[tokio::test]
async fn malformed_frame_closes_only_that_connection() {
    let (_server, addr) = start_server().await;
    let calc = calc_proxy(&addr).await;
    let mut raw = raw_connection(&addr).await;
    raw.write_all(&[3, 0, 0, 0, 0xff, 0xff, 0xff]).await.unwrap();
    let got = read_to_close(&mut raw).await;
    let text = String::from_utf8_lossy(&got);
    assert!(text.contains("malformed frame"), "expected an Abort, got {got:?}");
    assert_eq!(calc.add(1, 1).await.unwrap(), 2);
}

/// A result too large to send comes back as an error for that call only.
#[tokio::test]
async fn oversized_result_fails_that_call_only() {
    // The call (about 1,900 bytes) fits; its result (about 2,400 bytes) does not.
    let server = Node::builder().max_frame(2100).build();
    server.publish("calc", Calculator::default()).unwrap();
    let addr = server.listen("tcp://127.0.0.1:0").await.unwrap();
    let calc = calc_proxy(&addr).await;
    let err = calc.word_count((0..400).map(|i| format!("w{i} ")).collect(), None).await.unwrap_err();
    assert!(err.to_string().contains("the reply could not be sent"), "{err}");
    assert_eq!(calc.add(2, 2).await.unwrap(), 4);
}
