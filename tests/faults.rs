// Over 600 lines because it is the conformance matrix of one contract (a fault x a call shape x a side), which reads best whole.
//! Conformance under transport faults: plain calls, returned objects, callbacks and oneway calls
//! over a stream that drops, stalls, trickles one byte at a time or corrupts a byte, on either
//! side and at chosen points. Every call ends (an error within a second of the fault, or its
//! deadline), nothing leaks on either side, and the next connection works.

mod support;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Once};
use std::time::{Duration, Instant};

use dopy::{CallError, Error, Node, Remote};
use serde_bytes::ByteBuf;
use support::faulty::{self, Fault, Pair, When};
use support::hub::{Hub, HubProxy, Live, Sink};

/// A call still running after this has hung: the test fails.
const HANG: Duration = Duration::from_secs(15);

/// The promise: a call ends within this much of the fault (or of its deadline).
const PROMPT: Duration = Duration::from_secs(1);

/// [`World::script`] on a connection expected to carry everything / that may lose things.
const HEALTHY: bool = true;
const FAULTY: bool = false;

/// How long releases (which travel asynchronously) may take to settle, and a stream to be let
/// go after its connection ended (the library gives a stalled peer 1 s for its last words).
const SETTLE: Duration = Duration::from_secs(3);

/// Panics in the library's tasks (on the runtime's worker threads, not the tests' own
/// threads, where failed assertions panic), counted by a hook.
static PANICS: AtomicUsize = AtomicUsize::new(0);

fn count_panics() {
    static HOOK: Once = Once::new();
    HOOK.call_once(|| {
        let default = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if std::thread::current().name() == Some("tokio-runtime-worker") {
                PANICS.fetch_add(1, Ordering::SeqCst);
            }
            default(info);
        }));
    });
}

/// How a step of the script ended.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum End {
    /// With the right result.
    Correct,
    /// With a result, but not the right one (a corrupted argument).
    Wrong(String),
    /// With an error of this kind.
    Failed(&'static str),
}

fn kind<E>(e: &CallError<E>) -> &'static str {
    match e {
        CallError::Method { .. } => "method",
        CallError::Panic(_) => "panic",
        CallError::NoSuchObject(_) => "no such object",
        CallError::NoSuchMethod(_) => "no such method",
        CallError::BadArguments(_) => "bad arguments",
        CallError::Overloaded(_) => "overloaded",
        CallError::DeadlineExceeded(_) => "deadline exceeded",
        CallError::Cancelled(_) => "cancelled",
        CallError::Unauthorized(_) => "unauthorized",
        CallError::Protocol(_) => "protocol",
        CallError::Disconnected(_) => "disconnected",
        CallError::Codec(_) => "codec",
        _ => "other",
    }
}

fn end<T: PartialEq + std::fmt::Debug, E>(got: Result<T, CallError<E>>, want: T) -> End {
    match got {
        Ok(v) if v == want => End::Correct,
        Ok(v) => End::Wrong(format!("{v:?}")),
        Err(e) => End::Failed(kind(&e)),
    }
}

/// Runs one step, failing the test if it hangs or outlives its deadline by more than
/// [`PROMPT`]; returns how it ended.
async fn step<F: std::future::Future<Output = End>>(name: &str, deadline: Option<Duration>, f: F) -> End {
    let started = Instant::now();
    let Ok(end) = tokio::time::timeout(HANG, f).await else {
        panic!("`{name}` hung for {HANG:?}");
    };
    let took = started.elapsed();
    let bound = deadline.unwrap_or_default() + PROMPT;
    assert!(took <= bound, "`{name}` took {took:?} (bound {bound:?}), ended {end:?}");
    end
}

/// A server publishing a [`Hub`] and a client node, with drop counters on both sides.
struct World {
    server: Node,
    client: Node,
    tallies: Live,
    notes: Arc<AtomicUsize>,
    sinks: Live,
}

impl World {
    fn new() -> World {
        World::with(|b| b)
    }

    /// A world whose two nodes are configured by `config`.
    fn with(config: impl Fn(dopy::NodeBuilder) -> dopy::NodeBuilder) -> World {
        count_panics();
        let hub = Hub::default();
        let (tallies, notes) = (hub.tallies.clone(), hub.notes.clone());
        let server = config(Node::builder().name("fault-server")).build();
        server.publish("hub", hub).unwrap();
        let client = config(Node::builder().name("fault-client")).build();
        World { server, client, tallies, notes, sinks: Live::default() }
    }

    async fn pair(&self) -> Pair {
        faulty::pair(&self.server, &self.client).await
    }

    /// Runs every kind of call once, in order, each with `deadline`; returns how each ended.
    /// A oneway call cannot tell of its loss: with `healthy`, the script also checks that the
    /// oneway calls arrived.
    async fn script(&self, pair: &Pair, deadline: Option<Duration>, healthy: bool) -> Vec<(&'static str, End)> {
        let mut hub: HubProxy = pair.proxy("hub");
        if let Some(d) = deadline {
            hub = hub.with_timeout(d);
        }
        let data = ByteBuf::from((0..200u8).collect::<Vec<u8>>());
        let mut out = Vec::new();
        out.push(("add", step("add", deadline, async { end(hub.add(0, 2, 3).await, 5) }).await));
        out.push(("echo", step("echo", deadline, async { end(hub.echo(0, data.clone()).await, data.clone()) }).await));
        let opened = step("open", deadline, async {
            match hub.open(0, 10).await {
                Ok(tally) => {
                    let tally = match deadline {
                        Some(d) => tally.with_timeout(d),
                        None => tally.into_proxy(),
                    };
                    end(tally.bump(1).await, 11)
                }
                Err(e) => End::Failed(kind(&e)),
            }
        });
        out.push(("returned object", opened.await));
        let sink = Remote::new(Sink::new(&self.sinks));
        let called = step("callback", deadline, async { end(hub.call_back(sink.proxy().clone(), 3, 0).await, 21) });
        out.push(("callback", called.await));
        drop(sink);
        let notes = self.notes.load(Ordering::SeqCst);
        let mut oneway = End::Correct;
        for _ in 0..3 {
            if let End::Failed(k) = step("oneway", deadline, async { end(hub.note("n".into()).await, ()) }).await {
                oneway = End::Failed(k);
            }
        }
        out.push(("oneway", oneway.clone()));
        out.push(("add after oneway", step("add", deadline, async { end(hub.add(0, 40, 2).await, 42) }).await));
        if healthy {
            // The notes were sent before the last call, on the same connection.
            let until = Instant::now() + SETTLE;
            while self.notes.load(Ordering::SeqCst) < notes + 3 && Instant::now() < until {
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            assert!(self.notes.load(Ordering::SeqCst) >= notes + 3, "oneway calls lost on a working connection");
        }
        out
    }

    /// Closes the pair from the client (a stalled server end is dropped too, as the network
    /// finally would) and checks that nothing is left on either side: connections closed,
    /// streams released, no exports, imports or objects alive.
    async fn assert_released(&self, pair: &Pair, what: &str) {
        pair.client.close();
        assert!(
            pair.client_faults.wait_released(SETTLE).await,
            "{what}: the client kept its stream after closing the connection"
        );
        if tokio::time::timeout(PROMPT, pair.server.closed()).await.is_err() {
            // The server can only learn of a stalled or black-holed peer from the network.
            pair.server_faults.strike(Fault::Drop);
        }
        let server_closed = tokio::time::timeout(PROMPT, pair.server.closed()).await;
        assert!(server_closed.is_ok(), "{what}: the server connection outlived its stream");
        assert!(pair.server_faults.wait_released(SETTLE).await, "{what}: the server kept its stream");
        for (side, conn) in [("client", &pair.client), ("server", &pair.server)] {
            assert_eq!(conn.exported_count(), 0, "{what}: {side} exports left");
            assert_eq!(conn.imported_count(), 0, "{what}: {side} imports left");
        }
        assert_eq!(self.tallies.settle(0, SETTLE).await, 0, "{what}: returned objects leaked on the server");
        assert_eq!(self.sinks.settle(0, SETTLE).await, 0, "{what}: callback objects leaked on the client");
    }

    /// A fresh connection to the same server works fully.
    async fn assert_next_connection_works(&self, what: &str) {
        let pair = self.pair().await;
        let ends = self.script(&pair, None, HEALTHY).await;
        assert!(ends.iter().all(|(_, e)| *e == End::Correct), "{what}: the next connection failed: {ends:?}");
        self.assert_released(&pair, what).await;
    }
}

/// The script's byte counts on a healthy connection: (written, read) by the client after the
/// handshake.
async fn script_size(world: &World) -> (u64, u64) {
    let pair = world.pair().await;
    let (w0, r0) = (pair.client_faults.written(), pair.client_faults.read());
    let ends = world.script(&pair, None, HEALTHY).await;
    assert!(ends.iter().all(|(_, e)| *e == End::Correct), "{ends:?}");
    let size = (pair.client_faults.written() - w0, pair.client_faults.read() - r0);
    world.assert_released(&pair, "healthy").await;
    size
}

/// Offsets `0..len` spread over about `runs` points (every offset when there are few).
fn offsets(len: u64, runs: u64) -> impl Iterator<Item = u64> {
    (0..len).step_by((len / runs).max(1) as usize)
}

/// A healthy faulty-transport connection carries every kind of call (the baseline the
/// fault tests compare to), and releases everything when closed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn healthy_connection_carries_every_kind_of_call() {
    let world = World::new();
    let (written, read) = script_size(&world).await;
    assert!(written > 200 && read > 200, "the script moved {written}/{read} bytes");
    assert_eq!(PANICS.load(Ordering::SeqCst), 0);
}

/// A connection dropped at any point of the script (on either side, while writing or
/// reading) fails the calls it interrupts with `Disconnected`, promptly, leaks nothing, and
/// the next connection works.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn drop_at_any_point_disconnects_promptly_and_leaks_nothing() {
    let world = World::new();
    let (written, read) = script_size(&world).await;
    let mut runs = 0;
    let mut interrupted = 0;
    for (side, client_side) in [("client", true), ("server", false)] {
        // What the client writes, the server reads.
        let (written, read) = if client_side { (written, read) } else { (read, written) };
        for (dir, len) in [("written", written), ("read", read)] {
            for at in offsets(len, 25) {
                let trigger = if dir == "written" { When::AfterWritten(at) } else { When::AfterRead(at) };
                let pair = world.pair().await;
                let faults = if client_side { &pair.client_faults } else { &pair.server_faults };
                faults.arm(Fault::Drop, trigger);
                let ends = world.script(&pair, None, FAULTY).await;
                let what = format!("drop on the {side} after {at} bytes {dir}");
                let first_failure = ends.iter().position(|(_, e)| *e != End::Correct);
                if let Some(i) = first_failure {
                    interrupted += 1;
                    for (name, e) in &ends[i..] {
                        assert_eq!(*e, End::Failed("disconnected"), "{what}: `{name}`: {ends:?}");
                    }
                }
                assert!(faults.fired(), "{what}: the fault never struck");
                world.assert_released(&pair, &what).await;
                runs += 1;
            }
        }
    }
    // On the Kth write of either side.
    for (side, client_side) in [("client", true), ("server", false)] {
        for k in 1..=6 {
            let pair = world.pair().await;
            let faults = if client_side { &pair.client_faults } else { &pair.server_faults };
            faults.arm(Fault::Drop, When::OnWrite(k));
            let ends = world.script(&pair, None, FAULTY).await;
            let what = format!("drop on the {side}'s write {k}");
            let first = ends.iter().position(|(_, e)| *e != End::Correct);
            let first = first.unwrap_or_else(|| panic!("{what}: no call noticed: {ends:?}"));
            for (name, e) in &ends[first..] {
                assert_eq!(*e, End::Failed("disconnected"), "{what}: `{name}`: {ends:?}");
            }
            world.assert_released(&pair, &what).await;
        }
    }
    assert!(interrupted >= runs / 2, "only {interrupted} of {runs} runs were interrupted");
    world.assert_next_connection_works("after drops").await;
    assert_eq!(PANICS.load(Ordering::SeqCst), 0);
}

/// Calls of every kind in flight (a slow call, a slow echo, a returned object on its way, a
/// callback being served by the client) when the connection drops, on either side: each ends
/// with `Disconnected` within a second; a oneway call after it fails the same way; nothing
/// leaks; the next connection works.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn drop_with_calls_in_flight_disconnects_each_within_a_second() {
    let world = World::new();
    for client_side in [true, false] {
        let pair = world.pair().await;
        let in_flight = InFlight::start(&world, &pair, None).await;
        let faults = if client_side { &pair.client_faults } else { &pair.server_faults };
        faults.strike(Fault::Drop);
        let struck = Instant::now();
        let ends = in_flight.finish().await;
        let took = struck.elapsed();
        assert!(took <= PROMPT, "calls in flight ended {took:?} after the drop");
        for (name, e) in &ends {
            assert_eq!(*e, End::Failed("disconnected"), "`{name}` (drop on the client side: {client_side})");
        }
        let hub: HubProxy = pair.proxy("hub");
        let oneway = step("oneway after drop", None, async { end(hub.note("late".into()).await, ()) }).await;
        assert_eq!(oneway, End::Failed("disconnected"));
        drop(hub);
        world.assert_released(&pair, "drop in flight").await;
    }
    world.assert_next_connection_works("after drops in flight").await;
    assert_eq!(PANICS.load(Ordering::SeqCst), 0);
}

/// Calls of every kind in flight at once, held on the server (and one callback held on the
/// client) until a fault strikes.
struct InFlight {
    tasks: Vec<(&'static str, tokio::task::JoinHandle<End>)>,
}

impl InFlight {
    /// Starts the calls (each with `deadline`) and waits until the server serves all four and
    /// the client serves the callback.
    async fn start(world: &World, pair: &Pair, deadline: Option<Duration>) -> InFlight {
        let mut hub: HubProxy = pair.proxy("hub");
        if let Some(d) = deadline {
            hub = hub.with_timeout(d);
        }
        let mut tasks = Vec::new();
        let h = hub.clone();
        tasks.push(("slow add", tokio::spawn(async move { end(h.add(60_000, 1, 2).await, 3) })));
        let h = hub.clone();
        let data = ByteBuf::from(vec![7u8; 4096]);
        tasks.push(("slow echo", tokio::spawn(async move { end(h.echo(60_000, data.clone()).await, data) })));
        let h = hub.clone();
        tasks.push((
            "returned object",
            tokio::spawn(async move {
                match h.open(60_000, 1).await {
                    Ok(t) => end(t.bump(1).await, 2),
                    Err(e) => End::Failed(kind(&e)),
                }
            }),
        ));
        let mut sink = Sink::new(&world.sinks);
        sink.delay = Duration::from_secs(60);
        let sink = Remote::new(sink);
        let h = hub.clone();
        tasks.push((
            "callback",
            tokio::spawn(async move {
                let r = h.call_back(sink.proxy().clone(), 1, 0).await;
                drop(sink);
                end(r, 7)
            }),
        ));
        let until = Instant::now() + HANG;
        while (pair.server.serving_count() < 4 || pair.client.serving_count() < 1) && Instant::now() < until {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        assert_eq!((pair.server.serving_count(), pair.client.serving_count()), (4, 1), "calls in flight");
        InFlight { tasks }
    }

    /// Waits for every call to end (failing the test if one hangs).
    async fn finish(self) -> Vec<(&'static str, End)> {
        let mut out = Vec::new();
        for (name, task) in self.tasks {
            match tokio::time::timeout(HANG, task).await {
                Ok(end) => out.push((name, end.unwrap())),
                Err(_) => panic!("`{name}` hung for {HANG:?}"),
            }
        }
        out
    }
}

/// Regression: a call passing a reference on a connection that has already ended fails with
/// `Disconnected` and does not leave the reference exported (held alive) on the dead
/// connection.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn call_with_a_reference_on_an_ended_connection_exports_nothing() {
    let world = World::new();
    let pair = world.pair().await;
    let hub: HubProxy = pair.proxy("hub");
    pair.client_faults.strike(Fault::Drop);
    // Once `closed` returns, the end is complete: its pending calls failed, its tables cleared.
    pair.client.closed().await;
    let sink = Remote::new(Sink::new(&world.sinks));
    let e = step("callback", None, async { end(hub.call_back(sink.proxy().clone(), 1, 0).await, 7) }).await;
    assert_eq!(e, End::Failed("disconnected"));
    drop(sink);
    assert_eq!(pair.client.exported_count(), 0, "the sink stays exported on the dead connection");
    assert_eq!(world.sinks.settle(0, SETTLE).await, 0, "the sink is kept alive");
}

/// Regression: when a connection ends, the calls the peer had made and that are still being
/// served are stopped (as a `Cancel` would), so what they hold (here a returned object not yet
/// returned) is released at once instead of when they finish.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_ended_connection_stops_the_calls_it_was_serving() {
    let world = World::new();
    let pair = world.pair().await;
    let hub: HubProxy = pair.proxy("hub");
    let call = tokio::spawn(async move { hub.open(60_000, 0).await.map(drop) });
    while world.tallies.get() == 0 {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    pair.client_faults.strike(Fault::Drop);
    let ended = tokio::time::timeout(HANG, call).await.expect("hung").unwrap();
    assert!(matches!(ended, Err(CallError::Disconnected(_))), "{ended:?}");
    assert_eq!(world.tallies.settle(0, PROMPT).await, 0, "the served call still holds its object");
    // The stopped call's task leaves the count just after it drops what it held.
    let deadline = std::time::Instant::now() + PROMPT;
    while pair.server.serving_count() != 0 && std::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    assert_eq!(pair.server.serving_count(), 0, "the stopped call is still counted as served");
}

/// A connection that stalls (nothing delivered, nothing closed) with calls of every kind in
/// flight: each ends with `DeadlineExceeded` at its deadline, as does a oneway call made
/// afterwards that the stalled stream does not take; closing the stalled connection releases everything on both sides; the next
/// connection works.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stall_with_calls_in_flight_ends_each_at_its_deadline() {
    let world = World::new();
    let deadline = Duration::from_millis(1500);
    for client_side in [true, false] {
        let pair = world.pair().await;
        let started = Instant::now();
        let in_flight = InFlight::start(&world, &pair, Some(deadline)).await;
        let faults = if client_side { &pair.client_faults } else { &pair.server_faults };
        faults.strike(Fault::Stall);
        let ends = in_flight.finish().await;
        let took = started.elapsed();
        assert!(took <= deadline + PROMPT, "calls in flight ended {took:?} after they started");
        for (name, e) in &ends {
            assert_eq!(*e, End::Failed("deadline exceeded"), "`{name}` (stall on the client side: {client_side})");
        }
        let hub: HubProxy = pair.proxy("hub");
        let short = Duration::from_millis(300);
        let hub = hub.with_timeout(short);
        let oneway = step("oneway after stall", Some(short), async { end(hub.note("late".into()).await, ()) }).await;
        // A oneway call returns once its transport took it: a stalled local stream takes nothing
        // (the deadline ends the call); the kernel takes it for a peer that stalled.
        let expected = if client_side { End::Failed("deadline exceeded") } else { End::Correct };
        assert_eq!(oneway, expected, "a oneway call on a connection stalled (on the client side: {client_side})");
        drop(hub);
        world.assert_released(&pair, "stall in flight").await;
    }
    world.assert_next_connection_works("after stalls").await;
    assert_eq!(PANICS.load(Ordering::SeqCst), 0);
}

/// With heartbeats, a stall needs no deadline: calls of every kind in flight (with none) end
/// with `Disconnected` once the heartbeat timeout has passed, and both sides end the connection
/// by themselves and release everything.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stall_is_ended_by_heartbeats_without_deadlines() {
    let timeout = Duration::from_millis(1000);
    let world = World::with(|b| b.heartbeat(Duration::from_millis(200), timeout));
    for client_side in [true, false] {
        let pair = world.pair().await;
        let in_flight = InFlight::start(&world, &pair, None).await;
        let faults = if client_side { &pair.client_faults } else { &pair.server_faults };
        faults.strike(Fault::Stall);
        let struck = Instant::now();
        let ends = in_flight.finish().await;
        let took = struck.elapsed();
        assert!(took <= timeout + PROMPT, "calls in flight ended {took:?} after the stall");
        for (name, e) in &ends {
            assert_eq!(*e, End::Failed("disconnected"), "`{name}` (stall on the client side: {client_side})");
        }
        for (side, conn) in [("client", &pair.client), ("server", &pair.server)] {
            let closed = tokio::time::timeout(timeout + PROMPT, conn.closed()).await;
            assert!(closed.is_ok(), "the {side} did not notice the stall");
            let reason = conn.close_reason().unwrap_or_default();
            assert!(reason.contains("heartbeat timeout"), "{side}: {reason}");
        }
        assert!(pair.client_faults.wait_released(SETTLE).await, "the client kept its stream");
        assert!(pair.server_faults.wait_released(SETTLE).await, "the server kept its stream");
        world.assert_released(&pair, "stall with heartbeats").await;
    }
    world.assert_next_connection_works("after stalls").await;
    assert_eq!(PANICS.load(Ordering::SeqCst), 0);
}

/// A stall at chosen points of the script (either side, while writing or reading): every
/// later call ends at its deadline, none hangs, nothing leaks once the connection is closed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stall_at_chosen_points_ends_calls_at_their_deadlines() {
    let world = World::new();
    let (written, read) = script_size(&world).await;
    let deadline = Duration::from_millis(250);
    for (side, client_side) in [("client", true), ("server", false)] {
        let (written, read) = if client_side { (written, read) } else { (read, written) };
        for (dir, len) in [("written", written), ("read", read)] {
            for at in [1, len / 3, 2 * len / 3] {
                let trigger = if dir == "written" { When::AfterWritten(at) } else { When::AfterRead(at) };
                let pair = world.pair().await;
                let faults = if client_side { &pair.client_faults } else { &pair.server_faults };
                faults.arm(Fault::Stall, trigger);
                let ends = world.script(&pair, Some(deadline), FAULTY).await;
                let what = format!("stall on the {side} after {at} bytes {dir}");
                assert!(faults.fired(), "{what}: the fault never struck");
                let first = ends.iter().position(|(_, e)| *e != End::Correct);
                let first = first.unwrap_or_else(|| panic!("{what}: no call noticed: {ends:?}"));
                for (name, e) in &ends[first..] {
                    // A oneway call returns once its transport took it (see above).
                    let taken = *name == "oneway" && *e == End::Correct;
                    assert!(taken || *e == End::Failed("deadline exceeded"), "{what}: `{name}`: {ends:?}");
                }
                world.assert_released(&pair, &what).await;
            }
        }
    }
    world.assert_next_connection_works("after stalls").await;
    assert_eq!(PANICS.load(Ordering::SeqCst), 0);
}

/// Delivered one byte at a time, both ways and from the first byte of the handshake, every
/// kind of call still works with full results, concurrent calls included.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_byte_at_a_time_delivers_full_results() {
    let world = World::new();
    let pair = faulty::pair_with(&world.server, &world.client, |c, s| {
        c.strike(Fault::Trickle);
        s.strike(Fault::Trickle);
    })
    .await;
    let ends = world.script(&pair, None, HEALTHY).await;
    assert!(ends.iter().all(|(_, e)| *e == End::Correct), "{ends:?}");
    let hub: HubProxy = pair.proxy("hub");
    let big = ByteBuf::from((0..16 * 1024).map(|i| (i % 251) as u8).collect::<Vec<u8>>());
    let mut calls = Vec::new();
    for i in 0..16i64 {
        let (hub, big) = (hub.clone(), big.clone());
        calls.push(tokio::spawn(async move {
            if i % 4 == 0 {
                end(hub.echo(0, big.clone()).await, big)
            } else {
                end(hub.add(0, i, i).await, 2 * i)
            }
        }));
    }
    for call in calls {
        let e = tokio::time::timeout(HANG, call).await.expect("hung").unwrap();
        assert_eq!(e, End::Correct);
    }
    let (w, r) = (pair.client_faults.written(), pair.client_faults.read());
    assert!(w > 4 * 16 * 1024 && r > 4 * 16 * 1024, "moved {w}/{r} bytes");
    drop(hub);
    world.assert_released(&pair, "trickle").await;
    assert_eq!(PANICS.load(Ordering::SeqCst), 0);
}

/// A corrupted length prefix (a frame announced as ~4 GiB) is a protocol error: the server
/// closes the connection and the caller's call ends with `Disconnected` saying why.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn corrupted_length_prefix_is_a_protocol_error() {
    let world = World::new();
    // Byte 3 is the high byte of the first frame's little-endian length; byte 4 its first
    // payload byte (the message's variant).
    for (at, says) in [(3, "protocol error"), (4, "protocol error: malformed frame")] {
        let pair = world.pair().await;
        pair.client_faults.arm(Fault::Corrupt, When::AfterWritten(at));
        let hub: HubProxy = pair.proxy("hub");
        let got = tokio::time::timeout(HANG, hub.add(0, 1, 2)).await.expect("hung");
        match got {
            Err(CallError::Disconnected(reason)) => assert!(reason.to_string().contains(says), "byte {at}: {reason}"),
            other => panic!("byte {at}: {other:?}"),
        }
        assert_eq!(pair.client_faults.corrupted(), 1);
        assert!(pair.server.close_reason().unwrap_or_default().contains(says), "{:?}", pair.server.close_reason());
        drop(hub);
        world.assert_released(&pair, "corrupted frame").await;
    }
    world.assert_next_connection_works("after corruption").await;
}

/// One byte corrupted at any point of the script, either way: no panic, no hang (calls end
/// by their deadline at worst, as the protocol has no checksum of its own and a corrupted
/// call id leaves a reply unmatched), every error is one a caller can act on, nothing leaks
/// once the connection is closed, and the next connection works.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn corrupted_byte_anywhere_ends_in_a_clear_error_or_result() {
    const CLEAR: [&str; 8] = [
        "disconnected",
        "deadline exceeded",
        "codec",
        "protocol",
        "bad arguments",
        "no such object",
        "no such method",
        "method",
    ];
    let world = World::new();
    let (written, read) = script_size(&world).await;
    let deadline = Duration::from_millis(500);
    let mut tally = std::collections::BTreeMap::<String, usize>::new();
    let mut runs = 0;
    for (dir, len) in [("written", written), ("read", read)] {
        for at in offsets(len, 80) {
            let trigger = if dir == "written" { When::AfterWritten(at) } else { When::AfterRead(at) };
            let pair = world.pair().await;
            pair.client_faults.arm(Fault::Corrupt, trigger);
            let ends = world.script(&pair, Some(deadline), FAULTY).await;
            let what = format!("byte {at} {dir} by the client corrupted");
            assert_eq!(pair.client_faults.corrupted(), 1, "{what}");
            for (name, e) in &ends {
                let key = match e {
                    End::Correct => "correct".to_owned(),
                    End::Wrong(_) => "wrong result".to_owned(),
                    End::Failed(k) => {
                        assert!(CLEAR.contains(k), "{what}: `{name}` ended with a {k} error: {ends:?}");
                        k.to_string()
                    }
                };
                *tally.entry(key).or_default() += 1;
            }
            world.assert_released(&pair, &what).await;
            runs += 1;
        }
    }
    println!("{runs} runs, step outcomes: {tally:?}");
    let failed: usize =
        tally.iter().filter(|(k, _)| !["correct", "wrong result"].contains(&k.as_str())).map(|(_, n)| n).sum();
    assert!(failed >= runs, "corruption was hardly noticed: {tally:?}");
    world.assert_next_connection_works("after corruption").await;
    assert_eq!(PANICS.load(Ordering::SeqCst), 0);
}

/// A byte of the handshake corrupted, either way: both sides end the handshake within its
/// timeout (an error naming the cause, or a connection that then works or ends), never hang,
/// and release their streams.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn corrupted_handshake_fails_cleanly() {
    let timeout = Duration::from_secs(2);
    let server = Node::builder().name("hs-server").handshake_timeout(timeout).build();
    server.publish("hub", Hub::default()).unwrap();
    let client = Node::builder().name("hs-client").handshake_timeout(timeout).build();
    // The handshake's size, from a healthy one.
    let (s, c, _, cf) = faulty::handshake(&server, &client, |_, _| {}).await;
    let (hs_written, hs_read) = (cf.written(), cf.read());
    assert!(hs_written > 0 && hs_read > 0);
    c.unwrap().close();
    s.unwrap().closed().await;
    let mut refused = 0;
    let mut unnoticed = Vec::new();
    for (dir, len) in [("written", hs_written), ("read", hs_read)] {
        for at in 0..len {
            let trigger = if dir == "written" { When::AfterWritten(at) } else { When::AfterRead(at) };
            let started = Instant::now();
            let (s, c, sf, cf) =
                tokio::time::timeout(HANG, faulty::handshake(&server, &client, |c, _| c.arm(Fault::Corrupt, trigger)))
                    .await
                    .expect("the handshake hung");
            let took = started.elapsed();
            let what = format!("handshake byte {at} {dir} by the client corrupted");
            assert!(took <= timeout + PROMPT, "{what}: took {took:?}");
            for e in [s.as_ref().err(), c.as_ref().err()].into_iter().flatten() {
                assert!(matches!(e, Error::Connect { .. }), "{what}: {e:?}");
            }
            if s.is_err() || c.is_err() {
                refused += 1;
            }
            match (s, c) {
                (Ok(s), Ok(c)) => {
                    // The corruption went unnoticed by the handshake: the connection works or ends.
                    unnoticed.push(format!("{dir} {at}"));
                    let hub: HubProxy = c.proxy("hub");
                    let r = step("add", Some(timeout), async { end(hub.with_timeout(timeout).add(0, 1, 2).await, 3) })
                        .await;
                    assert!(matches!(r, End::Correct | End::Failed(_)), "{what}: {r:?}");
                    c.close();
                    s.close();
                }
                (s, c) => {
                    for conn in [s.ok(), c.ok()].into_iter().flatten() {
                        let closed = tokio::time::timeout(timeout + PROMPT, conn.closed()).await;
                        assert!(closed.is_ok(), "{what}: the other side's connection stays open");
                    }
                }
            }
            assert!(cf.wait_released(timeout + PROMPT).await, "{what}: the client kept its stream");
            assert!(sf.wait_released(timeout + PROMPT).await, "{what}: the server kept its stream");
        }
    }
    println!("{refused} of {} corrupted handshakes refused; unnoticed: {unnoticed:?}", hs_written + hs_read);
    assert!(refused > 0);
    assert_eq!(PANICS.load(Ordering::SeqCst), 0);
}
