//! Running and stopping: graceful shutdown with calls in flight, removing one listener.

#[path = "support/wait.rs"]
mod wait;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use dopy::{CallError, Endpoint, Error, Node};
use wait::{eventually, PATIENCE};

/// Sleeps.
#[derive(Debug, Default)]
pub struct Sleeper {
    /// Counts the `sleep` calls that have started.
    began: Arc<AtomicUsize>,
}

/// A sleeper.
#[dopy::remote]
impl Sleeper {
    /// Sleeps, then answers.
    pub async fn sleep(&self, millis: u64) -> u64 {
        self.began.fetch_add(1, Ordering::SeqCst);
        tokio::time::sleep(Duration::from_millis(millis)).await;
        millis
    }
}

/// Serves a sleeper as `sleeper` on 127.0.0.1:0; returns the node, its endpoint and the
/// sleeper's count of started calls.
async fn serve() -> (Node, Endpoint, Arc<AtomicUsize>) {
    let node = Node::new();
    let sleeper = Sleeper::default();
    let began = sleeper.began.clone();
    node.publish("sleeper", sleeper).unwrap();
    let addr = node.listen("tcp://127.0.0.1:0").await.unwrap();
    (node, addr, began)
}

/// A graceful shutdown during 100 calls in flight: calls that finish within the grace period
/// complete, the rest fail with a clear error, new calls and connections are refused, and
/// `stopped()` returns.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn graceful_shutdown_with_a_hundred_calls_in_flight() {
    let (server, addr, began) = serve().await;
    let url = format!("{addr}/sleeper");
    let s: SleeperProxy = Node::new().proxy(&url).await.unwrap();
    // Half finish within the grace period, half do not.
    let calls: Vec<_> = (0..100u64)
        .map(|i| {
            tokio::spawn({
                let s = s.clone();
                async move { s.sleep(if i % 2 == 0 { 50 } else { 5_000 }).await }
            })
        })
        .collect();
    eventually("a hundred calls running on the server", || began.load(Ordering::SeqCst) == 100).await;
    let stopped = tokio::spawn({
        let server = server.clone();
        async move { server.stopped().await }
    });
    server.shutdown(Duration::from_millis(300)).await;
    tokio::time::timeout(Duration::from_secs(2), stopped).await.expect("stopped() returns").unwrap();

    let (mut completed, mut failed) = (0, 0);
    for call in calls {
        match tokio::time::timeout(Duration::from_secs(5), call).await.expect("no call hangs").unwrap() {
            Ok(50) => completed += 1,
            Err(CallError::Disconnected(reason)) => {
                assert!(matches!(reason.cause(), dopy::DisconnectCause::Goodbye), "{reason}");
                assert!(reason.to_string().contains("goodbye"), "{reason}");
                failed += 1;
            }
            other => panic!("unexpected outcome {other:?}"),
        }
    }
    assert_eq!((completed, failed), (50, 50));
    let err = Node::new().object(&url).await.unwrap_err();
    assert!(matches!(err, Error::Connect { .. }), "no new connections: {err}");
}

/// Calls that arrive during the grace period are refused with a clear error while the calls
/// already running finish.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn calls_arriving_during_shutdown_are_refused() {
    let (server, addr, began) = serve().await;
    let s: SleeperProxy = Node::new().proxy(&format!("{addr}/sleeper")).await.unwrap();
    let running = tokio::spawn({
        let s = s.clone();
        async move { s.sleep(300).await }
    });
    eventually("the first call running on the server", || began.load(Ordering::SeqCst) == 1).await;
    let shutdown = tokio::spawn({
        let server = server.clone();
        async move { server.shutdown(Duration::from_secs(2)).await }
    });
    // The shutdown's first step closes the listeners; the node drains from then on.
    eventually("the shutdown under way", || server.listening().is_empty()).await;
    let err = s.sleep(1).await.unwrap_err();
    assert!(matches!(err, CallError::Cancelled(_)), "{err}");
    assert!(err.to_string().contains("shutting down"), "{err}");
    assert_eq!(running.await.unwrap().unwrap(), 300);
    shutdown.await.unwrap();
}

/// One listener can be removed while the node keeps serving the others and the connections
/// already open.
#[tokio::test]
async fn a_listener_can_be_removed_while_the_others_serve() {
    let (node, first, _) = serve().await;
    let second = node.listen("tcp://127.0.0.1:0").await.unwrap();
    let through_first: SleeperProxy = Node::new().proxy(&format!("{first}/sleeper")).await.unwrap();
    assert!(node.unlisten(&first));
    assert!(!node.unlisten(&first));
    assert_eq!(node.listening(), std::slice::from_ref(&second));
    // The listener stops at its next turn: connecting fails from then on.
    let err = tokio::time::timeout(PATIENCE, async {
        loop {
            match Node::new().object(&format!("{first}/sleeper")).await {
                Err(err) => break err,
                Ok(_) => tokio::task::yield_now().await,
            }
        }
    })
    .await
    .expect("the listener stopped");
    assert!(matches!(err, Error::Connect { .. }), "{err}");
    let through_second: SleeperProxy = Node::new().proxy(&format!("{second}/sleeper")).await.unwrap();
    assert_eq!(through_second.sleep(1).await.unwrap(), 1);
    assert_eq!(through_first.sleep(1).await.unwrap(), 1, "open connections keep working");
}
