//! `#[dopy(inline)]` methods: served in the connection's reader when they can complete at once,
//! in a task of their own when they would wait; results, errors and panics as for any method.

// Test fixtures are not public API.
#![allow(missing_debug_implementations)]

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use dopy::{CallError, Node, Value};

/// A counter whose reads are inline.
#[derive(Default)]
pub struct Counter {
    n: AtomicU64,
    exclusive: u64,
    gate: Arc<Gate>,
}

/// Tells the test when `hold` has the object, and lets it go when the test says so.
pub struct Gate {
    /// Notified once `hold` runs (and so holds the object).
    held: tokio::sync::Notify,
    /// One permit ends one `hold`.
    release: tokio::sync::Semaphore,
}

impl Default for Gate {
    fn default() -> Self {
        Gate { held: tokio::sync::Notify::new(), release: tokio::sync::Semaphore::new(0) }
    }
}

impl Gate {
    /// Waits (bounded) until a `hold` call has the object.
    async fn held(&self) {
        bounded("hold taking the object", self.held.notified()).await;
    }

    /// Ends the `hold` call.
    fn release(&self) {
        self.release.add_permits(1);
    }
}

#[dopy::remote]
impl Counter {
    /// Adds `by` and returns the new count.
    #[dopy(inline)]
    pub fn add(&self, by: u64) -> u64 {
        self.n.fetch_add(by, Ordering::SeqCst) + by
    }

    /// Fails for an odd count.
    #[dopy(inline)]
    pub fn even(&self, n: u64) -> Result<u64, String> {
        if n.is_multiple_of(2) {
            Ok(n)
        } else {
            Err(format!("{n} is odd"))
        }
    }

    /// Panics.
    #[dopy(inline)]
    pub fn explode(&self) -> u64 {
        panic!("inline boom")
    }

    /// An inline method with exclusive access.
    #[dopy(inline)]
    pub fn bump(&mut self) -> u64 {
        self.exclusive += 1;
        self.exclusive
    }

    /// A text of `len` bytes (a reply larger than what a transport may take at once).
    #[dopy(inline)]
    pub fn pad(&self, len: u64) -> String {
        "x".repeat(len as usize)
    }

    /// Holds the object exclusively until the test releases it (not inline: it awaits).
    pub async fn hold(&mut self) -> u64 {
        self.gate.held.notify_one();
        self.gate.release.acquire().await.unwrap().forget();
        self.exclusive
    }
}

/// An object on the same connection that is not inline.
#[derive(Default)]
pub struct Echo;

#[dopy::remote]
impl Echo {
    /// The same text back.
    pub fn echo(&self, text: String) -> String {
        text
    }
}

async fn serve() -> (Node, String) {
    let (node, url, _gate) = serve_gated().await;
    (node, url)
}

/// [`serve`], with the gate of the counter's `hold`.
async fn serve_gated() -> (Node, String, Arc<Gate>) {
    let node = Node::new();
    let counter = Counter::default();
    let gate = counter.gate.clone();
    node.publish("counter", counter).unwrap();
    node.publish("echo", Echo).unwrap();
    let endpoint = node.listen("tcp://127.0.0.1:0").await.unwrap();
    (node, endpoint.to_string(), gate)
}

/// Within a generous bound: these tests assert behaviour, never speed.
async fn bounded<T>(what: &str, f: impl std::future::Future<Output = T>) -> T {
    tokio::time::timeout(Duration::from_secs(20), f).await.unwrap_or_else(|_| panic!("{what} hung"))
}

/// An object with only `&self` methods is served without a lock; one with a `&mut self`
/// method keeps it.
#[test]
fn only_objects_with_exclusive_methods_need_a_lock() {
    use dopy::Dispatch;
    assert!(!Echo.needs_exclusive());
    assert!(!Shared::default().needs_exclusive());
    assert!(Counter::default().needs_exclusive());
}

/// Served without a lock: inline and task calls, results, errors, panics, re-entrant calls.
#[derive(Default)]
pub struct Shared {
    n: AtomicU64,
}

#[dopy::remote]
impl Shared {
    /// Adds `by` and returns the new count.
    #[dopy(inline)]
    pub fn add(&self, by: u64) -> u64 {
        self.n.fetch_add(by, Ordering::SeqCst) + by
    }

    /// Panics.
    #[dopy(inline)]
    pub fn explode(&self) -> u64 {
        panic!("lock-free boom")
    }

    /// Calls `add` on `me` (this object, by reference) while this call runs.
    pub async fn add_through(&self, me: SharedProxy, by: u64) -> Result<u64, String> {
        me.add(by).await.map_err(|e| format!("{e:#}"))
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_object_without_exclusive_methods_serves_every_kind_of_call() {
    let node = Node::new();
    node.publish("shared", Shared::default()).unwrap();
    let url = node.listen("tcp://127.0.0.1:0").await.unwrap();
    let shared: SharedProxy = Node::new().proxy(&format!("{url}/shared")).await.unwrap();
    let calls = (0..200).map(|_| shared.add(1));
    let results = bounded("200 pipelined calls", futures_util::future::join_all(calls)).await;
    assert!(results.iter().all(Result::is_ok));
    assert_eq!(shared.add(0).await.unwrap(), 200);
    let err = shared.explode().await.unwrap_err();
    assert!(matches!(err, CallError::Panic(_)) && format!("{err:#}").contains("lock-free boom"), "{err:#}");
    // Re-entrant: the call comes back to the object while it runs.
    assert_eq!(bounded("a re-entrant call", shared.add_through(shared.clone(), 5)).await.unwrap(), 205);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn inline_calls_give_the_same_results_errors_and_panics_as_any_call() {
    let (_server, url) = serve().await;
    let counter: CounterProxy = Node::new().proxy(&format!("{url}/counter")).await.unwrap();

    // Many calls in flight at once on one connection: every one answered, none lost.
    let calls = (0..500).map(|_| counter.add(1));
    let results = bounded("500 pipelined calls", futures_util::future::join_all(calls)).await;
    let mut results: Vec<u64> = results.into_iter().map(Result::unwrap).collect();
    results.sort_unstable();
    assert_eq!(results, (1..=500).collect::<Vec<_>>());

    assert_eq!(counter.even(4).await.unwrap(), 4);
    match counter.even(3).await.unwrap_err() {
        CallError::Method { error, .. } => assert_eq!(error, "3 is odd"),
        other => panic!("expected the method's error, got {other:#}"),
    }

    let err = counter.explode().await.unwrap_err();
    assert!(matches!(err, CallError::Panic(_)), "{err:#}");
    assert!(format!("{err:#}").contains("inline boom"), "{err:#}");
    // The panic did not take the connection's reader down.
    assert_eq!(counter.add(0).await.unwrap(), 500);
    assert_eq!(counter.bump().await.unwrap(), 1);
    assert_eq!(counter.bump().await.unwrap(), 2);

    // A dynamic caller reaches the same inline methods.
    let dynamic = Node::new().object(&format!("{url}/counter")).await.unwrap();
    assert_eq!(dynamic.call("add", [Value::UInt(5)]).await.unwrap(), Value::UInt(505));
}

/// An inline call that would wait (the object is held by a `&mut self` call) is served in a
/// task instead: it completes once the object is free, and meanwhile the connection serves
/// other calls.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_inline_call_that_would_wait_does_not_hold_the_connection() {
    let (_server, url, gate) = serve_gated().await;
    let node = Node::new();
    let counter: CounterProxy = node.proxy(&format!("{url}/counter")).await.unwrap();
    let echo: EchoProxy = node.proxy(&format!("{url}/echo")).await.unwrap();

    let hold = tokio::spawn({
        let counter = counter.clone();
        async move { counter.hold().await }
    });
    gate.held().await;
    let waiting = tokio::spawn({
        let counter = counter.clone();
        async move { counter.bump().await }
    });
    // Frames are read in order: once this echo is answered, the reader has seen the bump.
    assert_eq!(bounded("echo", echo.echo("after bump".into())).await.unwrap(), "after bump");
    assert!(!waiting.is_finished(), "bump ran while `hold` had the object");

    // The same connection still serves: the reader is not stuck behind the waiting call.
    let answered = Arc::new(AtomicU64::new(0));
    for i in 0..20 {
        assert_eq!(bounded("echo", echo.echo(format!("{i}"))).await.unwrap(), format!("{i}"));
        answered.fetch_add(1, Ordering::SeqCst);
    }
    assert!(!hold.is_finished(), "the echoes were answered while the object was held");

    gate.release();
    assert_eq!(bounded("hold", hold).await.unwrap().unwrap(), 0);
    assert_eq!(bounded("the waiting bump", waiting).await.unwrap().unwrap(), 1);
    assert_eq!(answered.load(Ordering::SeqCst), 20);
}

/// A fallen-back inline call keeps the caller's deadline.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_waiting_inline_call_honours_its_deadline() {
    let (_server, url, gate) = serve_gated().await;
    let counter: CounterProxy = Node::new().proxy(&format!("{url}/counter")).await.unwrap();
    let hold = tokio::spawn({
        let counter = counter.clone();
        async move { counter.hold().await }
    });
    gate.held().await;
    let err = bounded("bump with a deadline", counter.with_timeout(Duration::from_millis(200)).bump()).await;
    assert!(matches!(err, Err(CallError::DeadlineExceeded(_))), "{err:?}");
    // The caller cancelled the timed-out bump; frames are read in order, so once an echo sent
    // on the same connection after it is answered, the server has seen the cancel.
    let echo: EchoProxy = counter.object().connection().unwrap().proxy("echo");
    assert_eq!(bounded("echo", echo.echo("after the cancel".into())).await.unwrap(), "after the cancel");
    gate.release();
    assert_eq!(bounded("hold", hold).await.unwrap().unwrap(), 0, "the timed-out bump never ran");
    assert_eq!(counter.bump().await.unwrap(), 1);
}

/// The frames the connection's reader sends (replies of inline calls, pongs), which it may
/// write itself, and the frames of other tasks (replies of calls served in tasks), written by
/// the writer task, share one stream: every frame arrives whole, and the reader's frames keep
/// the order of the requests they answer.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn inline_replies_keep_their_order_among_frames_of_other_tasks() {
    use dopy::protocol::{Args, Call, Message, Outcome, Payload, Target};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    const ROUNDS: u64 = 300;
    let (_server, url) = serve().await;
    let mut s = tokio::net::TcpStream::connect(url.strip_prefix("tcp://").unwrap()).await.unwrap();
    s.write_all(&dopy::transport::handshake::HELLO).await.unwrap();
    let mut hello = [0u8; dopy::transport::handshake::HELLO_LEN];
    s.read_exact(&mut hello).await.unwrap();

    let call = |id: u64, target: &str, method: &str, args: Vec<u8>| {
        let target = Target::Name(target.into());
        let args = Args::Typed(args.into());
        Message::Call(Call {
            id,
            target,
            method: method.into(),
            refs: vec![],
            args,
            flags: 0,
            deadline: None,
            chain: 0,
        })
    };
    // All in one write: per round, an inline call, a call served in a task and a ping.
    let mut requests = Vec::new();
    for i in 0..ROUNDS {
        let frames = [
            call(3 * i + 1, "counter", "add", postcard::to_allocvec(&(1u64,)).unwrap()),
            call(3 * i + 2, "echo", "echo", postcard::to_allocvec(&(format!("{i}"),)).unwrap()),
            Message::Ping { nonce: 3 * i + 3 },
        ];
        for frame in frames.map(|m| m.encode().unwrap()) {
            requests.extend_from_slice(&(frame.len() as u32).to_le_bytes());
            requests.extend_from_slice(&frame);
        }
    }
    s.write_all(&requests).await.unwrap();

    let mut from_reader = Vec::new();
    let mut echoed = Vec::new();
    for _ in 0..3 * ROUNDS {
        let mut len = [0u8; 4];
        bounded("a reply", s.read_exact(&mut len)).await.unwrap();
        let mut frame = vec![0u8; u32::from_le_bytes(len) as usize];
        s.read_exact(&mut frame).await.unwrap();
        match Message::decode(&frame).unwrap() {
            Message::Return { id, outcome: Outcome::Ok(Payload::Typed(result)), .. } if id % 3 == 1 => {
                from_reader.push((id, postcard::from_bytes::<u64>(&result).unwrap()));
            }
            Message::Return { id, outcome: Outcome::Ok(Payload::Typed(result)), .. } if id % 3 == 2 => {
                echoed.push((id, postcard::from_bytes::<String>(&result).unwrap()));
            }
            Message::Pong { nonce } => from_reader.push((nonce, 0)),
            other => panic!("unexpected frame {other:?}"),
        }
    }
    // The inline calls ran in order (the count goes up by one each time), and their replies
    // and the pongs came back in the order of the requests.
    let expected: Vec<(u64, u64)> = (0..ROUNDS).flat_map(|i| [(3 * i + 1, i + 1), (3 * i + 3, 0)]).collect();
    assert_eq!(from_reader, expected);
    echoed.sort_unstable();
    assert_eq!(echoed, (0..ROUNDS).map(|i| (3 * i + 2, format!("{i}"))).collect::<Vec<_>>());
}

/// A reply the reader cannot write at once (the transport takes 64 bytes at a time, and only
/// as the peer reads) is finished by the writer task: every reply arrives whole, those of
/// calls served in tasks too.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replies_the_reader_cannot_write_at_once_still_arrive() {
    use dopy::transport::{LinkInfo, RawStream, Role};

    let raw = |stream: tokio::io::DuplexStream, role| {
        let (read, write) = tokio::io::split(stream);
        let info = LinkInfo { transport: "duplex", local: String::new(), peer: String::new() };
        RawStream::new(Box::new(read), Box::new(write), info, role)
    };
    let server = Node::new();
    server.publish("counter", Counter::default()).unwrap();
    server.publish("echo", Echo).unwrap();
    let client = Node::new();
    let (a, b) = tokio::io::duplex(64);
    let (served, dialled) =
        tokio::join!(server.serve_stream(raw(a, Role::Acceptor)), client.serve_stream(raw(b, Role::Connector)));
    let (_served, conn) = (served.unwrap(), dialled.unwrap());
    let counter: CounterProxy = conn.proxy("counter");
    let echo: EchoProxy = conn.proxy("echo");

    for round in 0..3u64 {
        let pads = (0..40).map(|i| counter.pad(10_000 + i));
        let echoes = (0..40).map(|i| echo.echo(format!("{round}.{i}")));
        let both =
            futures_util::future::join(futures_util::future::join_all(pads), futures_util::future::join_all(echoes));
        let (pads, echoes) = bounded("replies through a narrow transport", both).await;
        for (i, pad) in (0..).zip(pads) {
            assert_eq!(pad.unwrap(), "x".repeat(10_000 + i));
        }
        for (i, echoed) in echoes.into_iter().enumerate() {
            assert_eq!(echoed.unwrap(), format!("{round}.{i}"));
        }
        // A lone call after the burst: the write path is idle again.
        assert_eq!(bounded("a lone call", counter.pad(100)).await.unwrap().len(), 100);
    }
}
