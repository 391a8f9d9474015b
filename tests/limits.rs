// Over 600 lines because it holds one test per limit of docs/LIMITS.md, in the document's order, each at N and N+1.
//! Every limit of a node at N (holds) and N+1 (fails, alone): frame size, exported references,
//! value nesting, connections and handshakes at once, handshake, idle and heartbeat timeouts
//! (docs/LIMITS.md). Calls in flight are
//! tested in tests/modes.rs (`overload_at_n_plus_one_calls_in_flight`).
//!
//! Time limits are set to tens or hundreds of milliseconds, with wide margins on both sides,
//! so that a loaded machine does not make them flaky; nothing here measures speed.

mod support;

use std::sync::Mutex;
use std::time::{Duration, Instant};

use dopy::protocol::Message;
use dopy::{CallError, Connection, Endpoint, Error, Node, Remote, Value};
use support::eventually;
use support::harness::demo::{self, CalculatorProxy, Tally};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// The hello of an unauthenticated peer (PROTOCOL.md, section 1.1).
const HELLO: &[u8; 8] = b"DOPY\x01\0\0\0";

/// A memory cell, handed out and held by reference.
#[derive(Debug, Default)]
pub struct Cell {
    value: i64,
}

/// A memory cell.
#[dopy::remote]
impl Cell {
    /// The value held.
    pub fn get(&self) -> i64 {
        self.value
    }
}

/// Keeps the references it is given, hands out new ones, and measures values.
#[derive(Debug, Default)]
pub struct Keeper {
    held: Mutex<Vec<CellProxy>>,
}

/// Keeps references, makes cells, measures and builds nested values.
#[dopy::remote]
impl Keeper {
    /// Keeps `cell` until [`drop_all`](Keeper::drop_all); returns how many it holds.
    pub fn keep(&self, cell: CellProxy) -> usize {
        let mut held = self.held.lock().unwrap();
        held.push(cell);
        held.len()
    }

    /// Lets go of every reference kept.
    pub fn drop_all(&self) {
        self.held.lock().unwrap().clear();
    }

    /// A new cell holding `value`, by reference.
    pub fn make(&self, value: i64) -> Remote<Cell> {
        Remote::new(Cell { value })
    }

    /// How many levels deep `value` nests (1 for a scalar).
    pub fn depth(&self, value: Value) -> u64 {
        levels(&value) as u64
    }

    /// A value nested `levels` levels deep.
    pub fn nested(&self, levels: u64) -> Value {
        nested(levels as usize)
    }

    /// Adds two numbers.
    pub fn add(&self, a: i64, b: i64) -> i64 {
        a + b
    }
}

/// `Unit` in `levels - 1` options: `levels` levels in all.
fn nested(levels: usize) -> Value {
    (1..levels).fold(Value::Unit, |v, _| Value::Option(Some(Box::new(v))))
}

/// How deep a chain of options nests.
fn levels(value: &Value) -> usize {
    match value {
        Value::Option(Some(inner)) => 1 + levels(inner),
        _ => 1,
    }
}

/// Serves a [`Keeper`] as `keeper` over TCP from a node built by `builder`.
async fn serve_keeper(builder: dopy::NodeBuilder) -> (Node, Endpoint) {
    let node = builder.name("limits-server").build();
    node.publish("keeper", Keeper::default()).unwrap();
    let addr = node.listen("tcp://127.0.0.1:0").await.unwrap();
    (node, addr)
}

/// Serves DOPY's demo calculator as `calc` over TCP from a node built by `builder`.
async fn serve_calc(builder: dopy::NodeBuilder) -> (Node, Endpoint) {
    let node = builder.name("limits-server").build();
    node.publish("calc", demo::Calculator::default()).unwrap();
    let addr = node.listen("tcp://127.0.0.1:0").await.unwrap();
    (node, addr)
}

/// Opens a raw TCP connection to `addr` without a handshake.
async fn raw_tcp(addr: &Endpoint) -> TcpStream {
    let Endpoint::Tcp { host, port } = addr else { unreachable!("a tcp endpoint") };
    TcpStream::connect((host.as_str(), *port)).await.unwrap()
}

/// Opens a raw TCP connection and completes the handshake by hand.
async fn raw_connection(addr: &Endpoint) -> TcpStream {
    let mut s = raw_tcp(addr).await;
    s.write_all(HELLO).await.unwrap();
    let mut hello = [0u8; 8];
    s.read_exact(&mut hello).await.unwrap();
    assert_eq!(&hello, HELLO);
    s
}

/// Writes one message as a frame (u32 little-endian length, then the message).
async fn write_message(s: &mut TcpStream, msg: &Message) {
    let body = msg.encode().unwrap();
    s.write_all(&(body.len() as u32).to_le_bytes()).await.unwrap();
    s.write_all(&body).await.unwrap();
}

/// Reads one frame's message; `None` when the peer closed the stream.
async fn read_message(s: &mut TcpStream) -> Option<Message> {
    let mut len = [0u8; 4];
    s.read_exact(&mut len).await.ok()?;
    let mut body = vec![0u8; u32::from_le_bytes(len) as usize];
    s.read_exact(&mut body).await.ok()?;
    Some(Message::decode(&body).unwrap())
}

/// Reads until the peer closes (within 10 s); returns everything received.
async fn read_to_close(s: &mut TcpStream) -> Vec<u8> {
    let mut all = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), s.read_to_end(&mut all)).await.expect("closed in time").unwrap();
    all
}

/// An outgoing call of exactly `max_frame` bytes is sent and accepted; one byte more fails
/// that call alone, before anything is sent. An incoming frame one byte above the limit
/// closes that connection alone, with an `Abort` that says why.
#[tokio::test]
async fn frame_size_at_n_and_n_plus_one() {
    const N: usize = 1024;
    let (_server, addr) = serve_calc(Node::builder().max_frame(N)).await;
    let client = Node::builder().max_frame(N).build();
    let calc: CalculatorProxy = client.proxy(&format!("{addr}/calc")).await.unwrap();

    // How far 2,000 characters are over the limit tells the length that makes exactly N bytes.
    let err = calc.slow_echo(0, "x".repeat(2000)).await.unwrap_err();
    assert!(matches!(err, CallError::Codec(_)), "{err}");
    let text = err.to_string();
    let size: usize = text.split("message of ").nth(1).and_then(|t| t.split(' ').next()).unwrap().parse().unwrap();
    let fits = 2000 - (size - N);

    assert_eq!(calc.slow_echo(0, "x".repeat(fits)).await.unwrap().len(), fits, "exactly {N} bytes");
    let err = calc.slow_echo(0, "x".repeat(fits + 1)).await.unwrap_err();
    assert!(matches!(err, CallError::Codec(_)), "{err}");
    assert!(
        err.to_string().contains(&format!("message of {} bytes exceeds the maximum frame size of {N}", N + 1)),
        "{err}"
    );
    assert_eq!(calc.add(1, 2).await.unwrap(), 3, "the connection keeps working");

    // Incoming: N+1 announced by a raw peer.
    let mut raw = raw_connection(&addr).await;
    raw.write_all(&(N as u32 + 1).to_le_bytes()).await.unwrap();
    let got = read_to_close(&mut raw).await;
    assert!(String::from_utf8_lossy(&got).contains(&format!("frame of more than {N} bytes refused")), "{got:?}");
    assert_eq!(calc.slow_echo(0, "x".repeat(fits)).await.unwrap().len(), fits, "other connections do not notice");
}

/// A node exports at most N objects per connection: reference N+1 in a reply fails that call
/// alone with `Overloaded`; once the peer releases one, there is room again.
#[tokio::test]
async fn exported_references_in_replies_at_n_and_n_plus_one() {
    const N: usize = 3;
    let (_server, addr) = serve_keeper(Node::builder().max_exports(N)).await;
    let client = Node::new();
    let keeper: KeeperProxy = client.proxy(&format!("{addr}/keeper")).await.unwrap();
    let mut cells = Vec::new();
    for i in 0..N as i64 {
        cells.push(keeper.make(i).await.unwrap().into_proxy());
    }
    let conn = client.connect(&addr.to_string()).await.unwrap();
    assert_eq!(conn.imported_count(), N);

    let err = keeper.make(99).await.unwrap_err();
    assert!(matches!(err, CallError::Overloaded(_)), "{err}");
    assert!(err.to_string().contains(&format!("{N} objects are already exported on this connection")), "{err}");
    assert_eq!(keeper.add(2, 2).await.unwrap(), 4, "the connection keeps working");
    assert_eq!(cells[2].get().await.unwrap(), 2, "the references too");

    drop(cells.pop());
    let deadline = Instant::now() + Duration::from_secs(10);
    let again = loop {
        match keeper.make(7).await {
            Ok(cell) => break cell.into_proxy(),
            Err(CallError::Overloaded(_)) if Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(10)).await
            }
            Err(e) => panic!("no room after a release: {e}"),
        }
    };
    assert_eq!(again.get().await.unwrap(), 7);
}

/// A caller exports at most N objects per connection: a call passing reference N+1 fails
/// alone with `Overloaded` before it is sent; passing an object already exported again does
/// not count.
#[tokio::test]
async fn exported_references_in_calls_at_n_and_n_plus_one() {
    const N: usize = 2;
    let (_server, addr) = serve_keeper(Node::builder()).await;
    let client = Node::builder().max_exports(N).build();
    let keeper: KeeperProxy = client.proxy(&format!("{addr}/keeper")).await.unwrap();
    let conn = client.connect(&addr.to_string()).await.unwrap();
    let cells: Vec<Remote<Cell>> = (0..=N as i64).map(|value| Remote::new(Cell { value })).collect();
    for (i, cell) in cells.iter().take(N).enumerate() {
        assert_eq!(keeper.keep(cell.proxy().clone()).await.unwrap(), i + 1);
    }
    assert_eq!(conn.exported_count(), N);

    let err = keeper.keep(cells[N].proxy().clone()).await.unwrap_err();
    assert!(matches!(err, CallError::Overloaded(_)), "{err}");
    assert!(err.to_string().contains(&format!("{N} objects are already exported on this connection")), "{err}");
    assert_eq!(keeper.keep(cells[0].proxy().clone()).await.unwrap(), N + 1, "a second reference to an export");
    assert_eq!(conn.exported_count(), N);

    keeper.drop_all().await.unwrap();
    eventually("the server released every reference", || conn.exported_count() == 0).await;
    assert_eq!(keeper.keep(cells[N].proxy().clone()).await.unwrap(), 1, "room again");
}

/// A node configured for N levels of nesting takes a call whose argument nests N levels and
/// refuses one with N+1 (`BadArguments`), does not send a result with N+1, and fails a reply
/// with N+1 (`Protocol`); the connection serves on.
#[tokio::test]
async fn value_depth_at_n_and_n_plus_one() {
    const N: usize = 16;
    let (_server, addr) = serve_keeper(Node::builder().max_depth(N)).await;
    let client = Node::new();
    let keeper = client.object(&format!("{addr}/keeper")).await.unwrap();
    assert_eq!(keeper.call("depth", [nested(N)]).await.unwrap(), Value::UInt(N as u64));
    let err = keeper.call("depth", [nested(N + 1)]).await.unwrap_err();
    assert!(matches!(err, CallError::BadArguments(_)), "{err}");
    assert!(
        err.to_string().contains(&format!("value nesting exceeds {N} levels, the limit of node `limits-server`")),
        "{err}"
    );
    assert_eq!(keeper.call("add", [Value::Int(1), Value::Int(2)]).await.unwrap(), Value::Int(3), "still serving");
    // Nor does the server send a result it would refuse (small as it is).
    assert_eq!(keeper.call("nested", [Value::UInt(N as u64)]).await.unwrap(), nested(N));
    let err = keeper.call("nested", [Value::UInt(N as u64 + 1)]).await.unwrap_err();
    assert!(matches!(err, CallError::Protocol(_)), "{err}");
    assert!(err.to_string().contains("the reply could not be sent"), "{err}");
    assert!(err.to_string().contains(&format!("value nesting exceeds {N} levels")), "{err}");

    // Replies: the client's own limit.
    let (_server, addr) = serve_keeper(Node::builder()).await;
    let client = Node::builder().name("limits-client").max_depth(N).build();
    let keeper = client.object(&format!("{addr}/keeper")).await.unwrap();
    assert_eq!(keeper.call("nested", [Value::UInt(N as u64)]).await.unwrap(), nested(N));
    let err = keeper.call("nested", [Value::UInt(N as u64 + 1)]).await.unwrap_err();
    assert!(matches!(err, CallError::Protocol(_)), "{err}");
    assert!(err.to_string().contains(&format!("value nesting exceeds {N} levels")), "{err}");
    assert_eq!(keeper.call("add", [Value::Int(1), Value::Int(2)]).await.unwrap(), Value::Int(3), "still serving");
    // Nor does it send what it would refuse.
    let err = keeper.call("depth", [nested(N + 1)]).await.unwrap_err();
    assert!(matches!(err, CallError::Codec(_)), "{err}");
    assert!(err.to_string().contains(&format!("value nesting exceeds {N} levels")), "{err}");
}

/// A peer that connects and sends nothing, or half a hello, is dropped once the handshake
/// timeout passes, not before; one that completes its hello within it is served, and stays.
#[tokio::test]
async fn handshake_timeout_at_n_and_n_plus_one() {
    let timeout = Duration::from_millis(800);
    let (_server, addr) = serve_keeper(Node::builder().handshake_timeout(timeout)).await;

    for sent in [&HELLO[..0], &HELLO[..4]] {
        let started = Instant::now();
        let mut raw = raw_tcp(&addr).await;
        raw.write_all(sent).await.unwrap();
        let got = read_to_close(&mut raw).await;
        assert!(started.elapsed() >= timeout, "dropped after {:?}, before the timeout", started.elapsed());
        assert!(got.len() <= HELLO.len(), "only the server's hello, if anything: {got:?}");
    }

    // Inside the timeout: half a hello, a pause, the rest.
    let mut raw = raw_tcp(&addr).await;
    raw.write_all(&HELLO[..4]).await.unwrap();
    tokio::time::sleep(timeout / 8).await;
    raw.write_all(&HELLO[4..]).await.unwrap();
    let mut hello = [0u8; 8];
    raw.read_exact(&mut hello).await.unwrap();
    assert_eq!(&hello, HELLO);
    tokio::time::sleep(timeout * 2).await;
    write_message(&mut raw, &Message::Ping { nonce: 7 }).await;
    assert_eq!(read_message(&mut raw).await, Some(Message::Pong { nonce: 7 }), "served past the timeout");

    // Dialing a server that never answers its hello fails once the timeout passes.
    let silent = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = silent.local_addr().unwrap().port();
    let accept = tokio::spawn(async move { silent.accept().await.map(|(s, _)| s) });
    let client = Node::builder().handshake_timeout(timeout).build();
    let started = Instant::now();
    let err = client.connect(&format!("tcp://127.0.0.1:{port}")).await.unwrap_err();
    assert!(matches!(err, Error::Connect { .. }), "{err}");
    assert!(started.elapsed() >= timeout, "gave up after {:?}", started.elapsed());
    drop(accept);
}

/// Collects what a `tracing` subscriber writes.
#[derive(Clone, Default)]
struct Log(std::sync::Arc<Mutex<Vec<u8>>>);

impl Log {
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
    }
}

impl std::io::Write for Log {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Pings over a raw connection and checks the answer.
async fn ping(s: &mut TcpStream, nonce: u64) {
    write_message(s, &Message::Ping { nonce }).await;
    assert_eq!(read_message(s).await, Some(Message::Pong { nonce }), "ping {nonce}");
}

/// A raw connection whose handshake the server answers, retried (for up to 20 s) while the
/// server refuses new connections.
async fn admitted(addr: &Endpoint) -> TcpStream {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let mut s = raw_tcp(addr).await;
        s.write_all(HELLO).await.unwrap();
        let mut hello = [0u8; 8];
        if s.read_exact(&mut hello).await.is_ok() {
            assert_eq!(&hello, HELLO);
            return s;
        }
        assert!(Instant::now() < deadline, "no connection admitted within 20 s");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// At most `max_connections` accepted connections are alive at once: N are served; the N+1th
/// is closed at once (long before the handshake timeout), before the handshake and with
/// nothing sent, and a node dialing then fails with `Error::Connect`, while the N keep
/// working; once one of them closes, a new connection is served again.
#[tokio::test]
async fn connections_at_n_and_n_plus_one() {
    const N: usize = 3;
    // The refusal is logged (the test runtime is single-threaded: the accept loop logs here).
    let log = Log::default();
    let writer = log.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_env_filter("dopy=warn")
        .with_writer(move || writer.clone())
        .with_ansi(false)
        .finish();
    let _logging = tracing::subscriber::set_default(subscriber);
    // A handshake timeout far beyond `read_to_close`'s 10 s: a refusal cannot be a timeout.
    let builder = Node::builder().max_connections(N).handshake_timeout(Duration::from_secs(60));
    let (_server, addr) = serve_calc(builder).await;
    let mut open = Vec::new();
    for i in 0..N {
        let mut s = raw_connection(&addr).await;
        ping(&mut s, i as u64).await;
        open.push(s);
    }

    let mut refused = raw_tcp(&addr).await;
    assert!(read_to_close(&mut refused).await.is_empty(), "connection N+1 was sent something");
    let err = Node::new().connect(&addr.to_string()).await.unwrap_err();
    assert!(matches!(err, Error::Connect { .. }), "{err:#}");
    for (i, s) in open.iter_mut().enumerate() {
        ping(s, 10 + i as u64).await;
    }
    let logged = log.text();
    assert!(
        logged.contains("WARN")
            && logged.contains("connection refused before the handshake: 3 connections already open"),
        "{logged}"
    );

    // One closes: room for one more, and one only.
    drop(open.pop());
    let mut again = admitted(&addr).await;
    ping(&mut again, 20).await;
    let mut refused = raw_tcp(&addr).await;
    assert!(read_to_close(&mut refused).await.is_empty(), "connection N+1 was sent something");
    for (i, s) in open.iter_mut().enumerate() {
        ping(s, 30 + i as u64).await;
    }
}

/// At most `max_handshakes` accepted connections are in their handshake at once, counting
/// those whose peer has spoken: N peers that send half a hello and stall are held; when the
/// N+1th starts its handshake, the oldest of them that has stalled for a second is closed (it
/// got the server's hello and nothing more) and the others stay, and a real client gets in at
/// once. Silent connections do
/// not take a handshake slot, and a connection past its handshake holds none.
#[tokio::test]
async fn handshakes_at_n_and_n_plus_one() {
    const N: usize = 2;
    let timeout = Duration::from_secs(60);
    let builder = Node::builder().max_handshakes(N).handshake_timeout(timeout).first_byte_timeout(timeout);
    let (_server, addr) = serve_calc(builder).await;
    // Past its handshake, a connection holds no handshake slot.
    let mut served = raw_connection(&addr).await;
    ping(&mut served, 1).await;
    // Silent ones take no handshake slot either.
    let silent: Vec<TcpStream> = futures_util::future::join_all((0..2 * N).map(|_| raw_tcp(&addr))).await;

    let mut stalled = Vec::new();
    for _ in 0..N {
        let mut s = raw_tcp(&addr).await;
        s.write_all(&HELLO[..4]).await.unwrap();
        read_hello(&mut s).await;
        stalled.push(s);
    }
    // N in their handshake: each still open (nothing more comes, and no close).
    for s in &mut stalled {
        let mut byte = [0u8; 1];
        let early = tokio::time::timeout(Duration::from_millis(300), s.read(&mut byte)).await;
        assert!(early.is_err(), "one of N stalled handshakes was answered or closed: {early:?}");
    }

    // A real client is served at once, slots full or not.
    let calc =
        tokio::time::timeout(Duration::from_secs(2), Node::new().proxy::<CalculatorProxy>(&format!("{addr}/calc")))
            .await
            .expect("a real client got in at once")
            .unwrap();
    assert_eq!(calc.add(4, 5).await.unwrap(), 9);

    // Once they have stalled for a second (the attack), N+1 stalls too: the oldest stalled one
    // is closed, with nothing more sent, and the others stay.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let mut newest = raw_tcp(&addr).await;
    newest.write_all(&HELLO[..4]).await.unwrap();
    read_hello(&mut newest).await;
    let mut oldest = stalled.remove(0);
    assert!(read_to_close(&mut oldest).await.is_empty(), "the shed handshake was sent more than the hello");
    let mut byte = [0u8; 1];
    let kept = tokio::time::timeout(Duration::from_millis(300), stalled[0].read(&mut byte)).await;
    assert!(kept.is_err(), "a younger stalled handshake was closed too: {kept:?}");
    // The newcomer finishes its hello and is served; so is the connection from before.
    newest.write_all(&HELLO[4..]).await.unwrap();
    ping(&mut newest, 2).await;
    ping(&mut served, 3).await;
    drop(silent);
}

/// A peer that sends nothing is closed when the first-byte timeout passes, not before, with
/// nothing sent; one whose first byte comes within it has the rest of the handshake timeout
/// to finish its hello, and is served.
#[tokio::test]
async fn first_byte_timeout_at_n_and_n_plus_one() {
    let first_byte = Duration::from_millis(800);
    let builder = Node::builder().first_byte_timeout(first_byte).handshake_timeout(Duration::from_secs(10));
    let (_server, addr) = serve_calc(builder).await;

    let started = Instant::now();
    let mut mute = raw_tcp(&addr).await;
    let got = read_to_close(&mut mute).await;
    assert!(started.elapsed() >= first_byte, "closed after {:?}, before the timeout", started.elapsed());
    assert!(started.elapsed() < Duration::from_secs(5), "closed only after {:?}", started.elapsed());
    assert!(got.len() <= HELLO.len(), "only the server's hello, if anything: {got:?}");

    // A first byte within the timeout, the rest of the hello after it has passed.
    let mut slow = raw_tcp(&addr).await;
    tokio::time::sleep(first_byte / 2).await;
    slow.write_all(&HELLO[..1]).await.unwrap();
    read_hello(&mut slow).await;
    tokio::time::sleep(first_byte * 2).await;
    slow.write_all(&HELLO[1..]).await.unwrap();
    ping(&mut slow, 1).await;
}

/// Reads the server's hello (within 10 s).
async fn read_hello(s: &mut TcpStream) {
    let mut hello = [0u8; 8];
    tokio::time::timeout(Duration::from_secs(10), s.read_exact(&mut hello)).await.expect("hello in time").unwrap();
    assert_eq!(&hello, HELLO);
}

/// A connection with no call in flight and no reference held either way is closed with
/// `Goodbye` once idle for the idle timeout; calls, a long call and held references all keep
/// it open past the timeout.
#[tokio::test]
async fn idle_timeout_at_n_and_n_plus_one() {
    let idle = Duration::from_millis(600);
    let (_server, addr) = serve_calc(Node::builder().idle_timeout(idle)).await;
    let client = Node::new();
    let conn: Connection = client.connect(&addr.to_string()).await.unwrap();
    let calc: CalculatorProxy = client.proxy(&format!("{addr}/calc")).await.unwrap();

    // Calls a quarter of the timeout apart, for three timeouts.
    for i in 0..12 {
        assert_eq!(calc.add(i, 1).await.unwrap(), i + 1);
        tokio::time::sleep(idle / 4).await;
    }
    // One call that lasts three timeouts.
    assert_eq!(calc.slow_echo(3 * idle.as_millis() as u64, "long".into()).await.unwrap(), "long");
    // A reference held for three timeouts.
    let register = calc.register(5).await.unwrap().into_proxy();
    tokio::time::sleep(idle * 3).await;
    assert_eq!(register.get().await.unwrap(), 5);
    assert!(!conn.is_closed(), "closed while in use: {:?}", conn.close_reason());

    drop(register);
    let started = Instant::now();
    tokio::time::timeout(Duration::from_secs(10), conn.closed()).await.expect("closed when idle");
    assert!(started.elapsed() >= idle, "closed {:?} after the last use", started.elapsed());
    assert_eq!(conn.close_reason().as_deref(), Some("the peer said goodbye"));
    let again: CalculatorProxy = client.proxy(&format!("{addr}/calc")).await.unwrap();
    assert_eq!(again.add(1, 1).await.unwrap(), 2, "a new proxy reconnects");
}

/// A peer that answers pings is kept past many heartbeat timeouts without a call; once it
/// stops answering (while its socket stays open), it is closed with an `Abort` that says
/// "heartbeat timeout", after pings.
#[tokio::test]
async fn heartbeat_timeout_at_n_and_n_plus_one() {
    let timeout = Duration::from_secs(1);
    let (_server, addr) = serve_keeper(Node::builder().heartbeat(timeout / 4, timeout)).await;
    let mut raw = raw_connection(&addr).await;

    // Answer every ping for three timeouts.
    let until = Instant::now() + timeout * 3;
    let mut pings = 0;
    while Instant::now() < until {
        match read_message(&mut raw).await {
            Some(Message::Ping { nonce }) => {
                pings += 1;
                write_message(&mut raw, &Message::Pong { nonce }).await;
            }
            other => panic!("expected a ping, got {other:?}"),
        }
    }
    assert!(pings >= 2, "{pings} pings");
    write_message(&mut raw, &Message::Ping { nonce: 1 }).await;
    loop {
        match read_message(&mut raw).await {
            Some(Message::Ping { .. }) => continue,
            got => break assert_eq!(got, Some(Message::Pong { nonce: 1 }), "still served"),
        }
    }

    // Now silence: the server gives up on this peer.
    let started = Instant::now();
    let got = read_to_close(&mut raw).await;
    assert!(started.elapsed() >= timeout, "closed after {:?}", started.elapsed());
    assert!(String::from_utf8_lossy(&got).contains("heartbeat timeout"), "{got:?}");
}

/// Kills the child process when dropped, stopped or not.
struct Child(std::process::Child);

impl Drop for Child {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Sends a signal to a process with `kill(1)`.
fn signal(child: &Child, name: &str) {
    let status = std::process::Command::new("kill").args([name, &child.0.id().to_string()]).status().unwrap();
    assert!(status.success(), "kill {name}");
}

/// A server process that is paused (SIGSTOP: its socket stays open, nothing answers) is
/// detected by heartbeats: the connection closes saying so, the call in flight fails with
/// `Disconnected`, and the reference the server held is released.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn heartbeat_detects_a_paused_server_process() {
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_dopy-serve"))
        .args(["--listen", "tcp://127.0.0.1:0"])
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = tokio::process::ChildStderr::from_std(child.stderr.take().unwrap()).unwrap();
    let child = Child(child);
    // Kept open to the end: the server may log more.
    let mut stderr = tokio::io::BufReader::new(stderr);
    let mut line = String::new();
    stderr.read_line(&mut line).await.unwrap();
    let url = line.trim().rsplit(' ').next().unwrap().to_owned();
    assert!(url.starts_with("tcp://"), "{line}");

    let timeout = Duration::from_secs(1);
    let client = Node::builder().heartbeat(timeout / 4, timeout).build();
    let calc: CalculatorProxy = client.proxy(&url).await.unwrap();
    let conn = dopy::Proxy::object(&calc).connection().unwrap().clone();

    // Alive but silent for three timeouts: kept.
    tokio::time::sleep(timeout * 3).await;
    assert_eq!(calc.add(2, 3).await.unwrap(), 5);

    // A call in flight that holds a reference to the client's own object, then the pause.
    let counting = tokio::spawn({
        let calc = calc.clone();
        async move { calc.count_to(i64::MAX, Remote::new(Tally::default())).await }
    });
    eventually("the server holds the tally", || conn.exported_count() == 1).await;
    signal(&child, "-STOP");

    let result = tokio::time::timeout(Duration::from_secs(10), counting).await.expect("noticed in time").unwrap();
    let err = result.unwrap_err();
    assert!(matches!(err, CallError::Disconnected(_)), "{err}");
    assert!(err.to_string().contains("heartbeat timeout"), "{err}");
    assert!(conn.is_closed());
    assert!(conn.close_reason().unwrap().contains("heartbeat timeout"), "{:?}", conn.close_reason());
    assert_eq!(conn.exported_count(), 0, "the server's reference is released");
    drop(child);
    drop(stderr);
}
