//! Concurrency, deadlines, cancellation, oneway calls, serial objects, overload and late replies.

// Test fixtures are not public API.
#![allow(missing_debug_implementations)]

mod support;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

use dopy::{CallError, Node, Value};
use support::eventually;

/// Records what happened to its calls.
#[derive(Default)]
pub struct Worker {
    /// Counts the `sleep` and `sleep_to_the_end` calls that have started on the server.
    began: Arc<AtomicUsize>,
    /// Set when a `sleep` call's future is dropped before it finishes (cancelled).
    stopped: Arc<AtomicUsize>,
    /// Set when a call ran to the end.
    finished: Arc<AtomicUsize>,
    barrier: Option<Arc<Barrier>>,
    recorded: Arc<std::sync::Mutex<Vec<u32>>>,
}

/// Notes a drop that happens before `done`.
struct StopFlag<'a> {
    stopped: &'a AtomicUsize,
    done: bool,
}

impl Drop for StopFlag<'_> {
    fn drop(&mut self) {
        if !self.done {
            self.stopped.fetch_add(1, Ordering::SeqCst);
        }
    }
}

/// A worker.
#[dopy::remote]
impl Worker {
    /// Sleeps; stopped at its next await when cancelled.
    pub async fn sleep(&self, millis: u64) -> u64 {
        self.began.fetch_add(1, Ordering::SeqCst);
        let mut flag = StopFlag { stopped: &self.stopped, done: false };
        tokio::time::sleep(Duration::from_millis(millis)).await;
        flag.done = true;
        self.finished.fetch_add(1, Ordering::SeqCst);
        millis
    }

    /// Sleeps, and is never stopped halfway.
    #[dopy(no_cancel)]
    pub async fn sleep_to_the_end(&self, millis: u64) -> u64 {
        self.began.fetch_add(1, Ordering::SeqCst);
        let mut flag = StopFlag { stopped: &self.stopped, done: false };
        tokio::time::sleep(Duration::from_millis(millis)).await;
        flag.done = true;
        self.finished.fetch_add(1, Ordering::SeqCst);
        millis
    }

    /// Calls `other.sleep(millis)`, optionally with its own shorter timeout, and says how it went.
    pub async fn relay(&self, other: WorkerProxy, millis: u64, own_timeout_ms: Option<u64>) -> String {
        let other = match own_timeout_ms {
            Some(t) => other.with_timeout(Duration::from_millis(t)),
            None => other,
        };
        match other.sleep(millis).await {
            Ok(v) => format!("ok {v}"),
            Err(CallError::DeadlineExceeded(_)) => "deadline exceeded".into(),
            Err(e) => format!("error {e}"),
        }
    }

    /// Blocks the thread until a second call arrives (only parallel calls can both pass).
    pub fn rendezvous(&self) -> bool {
        self.barrier.as_ref().map(|b| b.wait()).is_some()
    }

    /// Records a number; sends no reply.
    #[dopy(oneway)]
    pub fn record(&self, n: u32) {
        self.recorded.lock().unwrap().push(n);
    }

    /// Echoes.
    pub fn echo(&self, n: u32) -> u32 {
        n
    }
}

async fn serve(worker: Worker) -> (Node, String) {
    let node = Node::new();
    node.publish("worker", worker).unwrap();
    let addr = node.listen("tcp://127.0.0.1:0").await.unwrap();
    (node, format!("{addr}/worker"))
}

/// `&self` calls run in parallel on the multi-threaded runtime: two blocking calls meet at a
/// barrier, which only works if both run at once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shared_calls_run_in_parallel() {
    let worker = Worker { barrier: Some(Arc::new(Barrier::new(2))), ..Default::default() };
    let (_server, url) = serve(worker).await;
    let w: WorkerProxy = Node::new().proxy(&url).await.unwrap();
    let both = tokio::time::timeout(Duration::from_secs(5), futures_util::future::join(w.rendezvous(), w.rendezvous()));
    let (a, b) = both.await.expect("the calls ran in parallel");
    assert!(a.unwrap() && b.unwrap());
}

/// A per-proxy timeout: the call fails with `DeadlineExceeded` in about that time, and the
/// server stops the method at its next await.
#[tokio::test]
async fn timeout_fails_the_call_and_stops_the_method() {
    let worker = Worker::default();
    let (stopped, finished) = (worker.stopped.clone(), worker.finished.clone());
    let (_server, url) = serve(worker).await;
    let w: WorkerProxy = Node::new().proxy(&url).await.unwrap();
    let started = Instant::now();
    let err = w.with_timeout(Duration::from_millis(100)).sleep(10_000).await.unwrap_err();
    assert!(matches!(err, CallError::DeadlineExceeded(_)), "{err}");
    assert!(started.elapsed() < Duration::from_secs(5));
    eventually("the server method stopping", || stopped.load(Ordering::SeqCst) == 1).await;
    assert_eq!(finished.load(Ordering::SeqCst), 0);
    assert_eq!(w.sleep(1).await.unwrap(), 1, "no default deadline");
}

/// Dropping a call's future sends `Cancel`: the method is stopped, unless it is `no_cancel`.
#[tokio::test]
async fn dropping_the_call_cancels_the_method_unless_no_cancel() {
    let worker = Worker::default();
    let (began, stopped, finished) = (worker.began.clone(), worker.stopped.clone(), worker.finished.clone());
    let (_server, url) = serve(worker).await;
    let w: WorkerProxy = Node::new().proxy(&url).await.unwrap();
    let call = tokio::spawn({
        let w = w.clone();
        async move { w.sleep(10_000).await }
    });
    eventually("the method starting", || began.load(Ordering::SeqCst) == 1).await;
    call.abort();
    eventually("the cancelled method stopping", || stopped.load(Ordering::SeqCst) == 1).await;

    let call = tokio::spawn({
        let w = w.clone();
        async move { w.sleep_to_the_end(200).await }
    });
    eventually("the no_cancel method starting", || began.load(Ordering::SeqCst) == 2).await;
    call.abort();
    eventually("the no_cancel method finishing", || finished.load(Ordering::SeqCst) == 1).await;
    assert_eq!(stopped.load(Ordering::SeqCst), 1, "the no_cancel method was not stopped");
    let iface = w.object().methods().await.unwrap();
    assert!(iface.method("sleep_to_the_end").unwrap().no_cancel);
    assert!(!iface.method("sleep").unwrap().no_cancel);
}

/// The time left travels with a call and bounds the calls made while serving it; a nested
/// call's own shorter timeout applies too.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deadlines_propagate_to_nested_calls() {
    let far = Worker::default();
    let far_stopped = far.stopped.clone();
    let (_far, far_url) = serve(far).await;
    let (_near, near_url) = serve(Worker::default()).await;
    let client = Node::new();
    let near: WorkerProxy = client.proxy(&near_url).await.unwrap();
    let far: WorkerProxy = client.proxy(&far_url).await.unwrap();

    // Nested shorter than its parent: the nested call fails first, the parent answers.
    let started = Instant::now();
    let r = near.with_timeout(Duration::from_secs(5)).relay(far.clone(), 10_000, Some(100)).await.unwrap();
    assert_eq!(r, "deadline exceeded");
    assert!(started.elapsed() < Duration::from_secs(4));

    // The parent's deadline bounds a nested call that set none.
    // Both ends share one deadline: either the caller's timer or the nested call's fires first.
    let started = Instant::now();
    match near.with_timeout(Duration::from_millis(200)).relay(far.clone(), 10_000, None).await {
        Err(CallError::DeadlineExceeded(_)) => {}
        Ok(r) => assert_eq!(r, "deadline exceeded"),
        Err(e) => panic!("expected the deadline to pass, got {e}"),
    }
    assert!(started.elapsed() < Duration::from_secs(4));
    eventually("both far calls stopping", || far_stopped.load(Ordering::SeqCst) == 2).await;

    // Enough time: everything completes.
    assert_eq!(near.with_timeout(Duration::from_secs(5)).relay(far, 10, None).await.unwrap(), "ok 10");
}

/// A reply that arrives after its caller gave up is discarded and counted, never delivered to
/// another call.
#[tokio::test]
async fn late_replies_are_discarded_and_counted() {
    let (_server, url) = serve(Worker::default()).await;
    let w: WorkerProxy = Node::new().proxy(&url).await.unwrap();
    let conn = w.object().connection().unwrap().clone();
    let err = w.with_timeout(Duration::from_millis(50)).sleep_to_the_end(200).await.unwrap_err();
    assert!(matches!(err, CallError::DeadlineExceeded(_)), "{err}");
    eventually("the late reply arriving", || conn.late_replies() == 1).await;
    for n in 0..20 {
        assert_eq!(w.echo(n).await.unwrap(), n);
    }
    assert_eq!(conn.late_replies(), 1);
}

/// A oneway call returns once written, runs on the server, sends no reply; introspection and
/// dynamic callers see it as oneway.
#[tokio::test]
async fn oneway_calls_send_no_reply() {
    let worker = Worker::default();
    let recorded = worker.recorded.clone();
    let (_server, url) = serve(worker).await;
    let w: WorkerProxy = Node::new().proxy(&url).await.unwrap();
    for n in 0..10 {
        w.record(n).await.unwrap();
    }
    eventually("ten records", || recorded.lock().unwrap().len() == 10).await;
    let conn = w.object().connection().unwrap();
    assert_eq!(conn.late_replies(), 0, "no replies were sent");
    let iface = w.object().methods().await.unwrap();
    assert!(iface.method("record").unwrap().oneway);
    assert_eq!(w.object().call("echo", [Value::from(3)]).await.unwrap(), Value::UInt(3));
}

/// Records the order in which its calls run.
#[derive(Default)]
pub struct Journal {
    order: std::sync::Mutex<Vec<u32>>,
}

/// A journal.
#[dopy::remote]
impl Journal {
    /// Notes `n` with shared access, yielding halfway (so concurrent calls would interleave).
    pub async fn note(&self, n: u32) {
        tokio::task::yield_now().await;
        self.order.lock().unwrap().push(n);
    }

    /// Notes `n` with exclusive access.
    pub async fn note_mut(&mut self, n: u32) {
        tokio::task::yield_now().await;
        self.order.get_mut().unwrap().push(n);
    }

    /// Everything noted, in order.
    pub fn order(&self) -> Vec<u32> {
        self.order.lock().unwrap().clone()
    }
}

/// A serial object runs 1,000 mixed `&self` and `&mut self` calls sent at once from one proxy
/// one at a time, in the order they were sent.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serial_object_runs_calls_in_the_order_sent() {
    let node = Node::new();
    node.publish_serial("journal", Journal::default()).unwrap();
    let addr = node.listen("tcp://127.0.0.1:0").await.unwrap();
    let j: JournalProxy = Node::new().proxy(&format!("{addr}/journal")).await.unwrap();
    let mut calls: Vec<_> = (0..1000u32)
        .map(|n| {
            let j = j.clone();
            Box::pin(futures_util::future::maybe_done(async move {
                if n % 3 == 0 {
                    j.note_mut(n).await
                } else {
                    j.note(n).await
                }
            }))
        })
        .collect();
    // Poll each call once, in order: that sends it (a reply may even be back already).
    for call in &mut calls {
        std::future::poll_fn(|cx| {
            let _ = std::future::Future::poll(call.as_mut(), cx);
            std::task::Poll::Ready(())
        })
        .await;
    }
    for mut call in calls {
        call.as_mut().await;
        call.as_mut().take_output().unwrap().unwrap();
    }
    assert_eq!(j.order().await.unwrap(), (0..1000).collect::<Vec<_>>());
}

/// Calls beyond a connection's N in flight wait for a free slot and then go out and complete
/// like any call (the caller's rare path: every slot taken when it was first polled).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn calls_beyond_n_in_flight_wait_for_a_slot_and_complete() {
    let (_server, url) = serve(Worker::default()).await;
    let client = Node::builder().max_in_flight(2).overload_wait(Duration::from_secs(20)).build();
    let w: WorkerProxy = client.proxy(&url).await.unwrap();
    let started = Instant::now();
    let calls = (0..6u64).map(|i| {
        let w = w.clone();
        async move { w.sleep(100 + i).await }
    });
    let all = futures_util::future::join_all(calls);
    let results = tokio::time::timeout(Duration::from_secs(15), all).await.expect("every call completes");
    for (i, r) in results.into_iter().enumerate() {
        assert_eq!(r.unwrap(), 100 + i as u64, "call {i}");
    }
    // Two at a time: the last pair could not start before two others had finished.
    assert!(started.elapsed() >= Duration::from_millis(300), "{:?}", started.elapsed());
    assert_eq!(w.echo(9).await.unwrap(), 9, "the slots are all back");
}

/// With at most N calls in flight on a connection, call N+1 waits (bounded) and then gets
/// `Overloaded`; a server refuses a peer's call N+1 at once; both recover.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn overload_at_n_plus_one_calls_in_flight() {
    let worker = Worker::default();
    let began = worker.began.clone();
    let (_server, url) = serve(worker).await;
    let client = Node::builder().max_in_flight(4).overload_wait(Duration::from_millis(100)).build();
    let w: WorkerProxy = client.proxy(&url).await.unwrap();
    let slow: Vec<_> = (0..4)
        .map(|_| {
            tokio::spawn({
                let w = w.clone();
                async move { w.sleep(500).await }
            })
        })
        .collect();
    eventually("four calls running on the server", || began.load(Ordering::SeqCst) == 4).await;
    let err = w.echo(5).await.unwrap_err();
    assert!(matches!(err, CallError::Overloaded(_)), "{err}");
    assert!(err.to_string().contains("4 calls already in flight"), "{err}");
    for s in slow {
        assert_eq!(s.await.unwrap().unwrap(), 500);
    }
    assert_eq!(w.echo(6).await.unwrap(), 6, "recovered");

    let server = Node::builder().max_in_flight(4).build();
    server.publish("worker", Worker::default()).unwrap();
    let addr = server.listen("tcp://127.0.0.1:0").await.unwrap();
    let w: WorkerProxy = Node::new().proxy(&format!("{addr}/worker")).await.unwrap();
    let calls = (0..5).map(|_| w.sleep(300));
    let results = futures_util::future::join_all(calls).await;
    let refused = results.iter().filter(|r| matches!(r, Err(CallError::Overloaded(_)))).count();
    assert_eq!(refused, 1, "{results:?}");
    assert_eq!(results.iter().filter(|r| r.is_ok()).count(), 4);
    assert_eq!(w.echo(7).await.unwrap(), 7, "recovered");
}
