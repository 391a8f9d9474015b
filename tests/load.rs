//! Load and soak: many concurrent connections on loopback, and a long mixed workload (plain
//! calls, returned objects, callbacks, oneway calls, graceful and abrupt disconnects) that must
//! not grow memory or file descriptors, nor leak objects.
//!
//! Ignored by default; run them in release mode (docs/RELIABILITY.md):
//!
//! ```text
//! ulimit -n 4096 && cargo test --release -p dopy --test load -- --ignored --nocapture
//! DOPY_SOAK_SECS=10 cargo test --release -p dopy --test load soak -- --ignored --nocapture
//! ```

mod support;

use support::rss;

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use dopy::{CallError, Error, Node, Remote};
use support::hub::{Hub, HubProxy, Live, Sink};

const MIB: f64 = 1024.0 * 1024.0;

/// The figures are process-wide (memory, descriptors): the tests of this file run one at a time
/// even when the harness runs tests in parallel.
static ALONE: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// Open file descriptors of this process.
fn fds() -> usize {
    std::fs::read_dir("/proc/self/fd").unwrap().count()
}

/// The soft limit on open files.
fn fd_limit() -> u64 {
    let limits = std::fs::read_to_string("/proc/self/limits").unwrap();
    let line = limits.lines().find(|l| l.starts_with("Max open files")).unwrap();
    let soft = line.split_whitespace().nth(3).unwrap();
    soft.parse().unwrap_or(u64::MAX)
}

/// The descriptor count once it has not changed for `window` (connections closing settle; a
/// writer may take 1 s for its last words).
async fn fds_stable(window: Duration) -> usize {
    let mut last = fds();
    loop {
        tokio::time::sleep(window).await;
        let now = fds();
        if now == last {
            return now;
        }
        last = now;
    }
}

/// Waits (up to 10 s) until the descriptor count is at most `n`; returns the count then.
async fn fds_settle(n: usize) -> usize {
    let until = Instant::now() + Duration::from_secs(10);
    while fds() > n && Instant::now() < until {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    fds()
}

/// A server publishing a [`Hub`] as `hub` on loopback.
async fn start_hub() -> (Node, String, Hub2) {
    let hub = Hub::default();
    let counters = Hub2 { tallies: hub.tallies.clone(), notes: hub.notes.clone() };
    // All 1,000 clients dial at once: admit them all to the handshake (the default cap of 64
    // handshakes at once would refuse most of the burst, by design).
    let node = Node::builder().name("load-server").max_in_flight(4096).build();
    node.publish("hub", hub).unwrap();
    let addr = node.listen("tcp://127.0.0.1:0").await.unwrap();
    (node, format!("{addr}/hub"), counters)
}

/// The hub's counters, kept by the test.
struct Hub2 {
    tallies: Live,
    notes: Arc<AtomicUsize>,
}

/// 1,000 client connections open at once, each making 100 calls: every call succeeds, and
/// once they are closed, memory and descriptors come back down.
#[tokio::test(flavor = "multi_thread")]
#[ignore = "load test: run with --release --ignored (docs/RELIABILITY.md)"]
async fn thousand_connections_hundred_calls_each() {
    const CONNECTIONS: usize = 1000;
    const CALLS: usize = 100;
    let _alone = ALONE.lock().await;
    let limit = fd_limit();
    assert!(limit >= 2 * CONNECTIONS as u64 + 200, "open-file limit {limit}: run under `ulimit -n 4096`");
    let (server, address, _) = start_hub().await;
    // Warm up (runtime threads, allocator arenas) before the baseline.
    let warm: HubProxy = Node::new().proxy(&address).await.unwrap();
    assert_eq!(warm.add(0, 1, 2).await.unwrap(), 3);
    drop(warm);
    let fds_before = fds_stable(Duration::from_millis(300)).await;
    let rss_before = rss();

    let started = Instant::now();
    let mut clients = Vec::with_capacity(CONNECTIONS);
    for _ in 0..CONNECTIONS {
        let address = address.clone();
        clients.push(tokio::spawn(async move {
            let node = Node::new();
            let hub: HubProxy = node.proxy(&address).await?;
            hub.add(0, 0, 0).await?;
            Ok::<_, Error>((node, hub))
        }));
    }
    let mut connected = Vec::with_capacity(CONNECTIONS);
    for c in clients {
        connected.push(c.await.unwrap().expect("connect"));
    }
    let connect_time = started.elapsed();
    let fds_open = fds();
    assert!(fds_open >= fds_before + 2 * CONNECTIONS, "{fds_open} descriptors with {CONNECTIONS} connections open");

    let errors = Arc::new(AtomicU64::new(0));
    let calls_started = Instant::now();
    let mut tasks = Vec::with_capacity(CONNECTIONS);
    for (i, (node, hub)) in connected.into_iter().enumerate() {
        let errors = errors.clone();
        tasks.push(tokio::spawn(async move {
            for j in 0..CALLS as i64 {
                match hub.add(0, i as i64, j).await {
                    Ok(sum) if sum == i as i64 + j => {}
                    _ => {
                        errors.fetch_add(1, Ordering::Relaxed);
                    }
                }
            }
            (node, hub)
        }));
    }
    let mut done = Vec::with_capacity(CONNECTIONS);
    for t in tasks {
        done.push(t.await.unwrap());
    }
    let call_time = calls_started.elapsed();
    let rss_peak = rss();
    drop(done);
    let fds_after = fds_settle(fds_before).await;
    let rss_after = rss();
    let total = CONNECTIONS * CALLS;
    println!(
        "load: {CONNECTIONS} connections opened in {connect_time:.2?}; {total} calls in {call_time:.2?} \
         ({:.0} calls/s); RSS before {:.1} MiB, with all open {:.1} MiB, after closing {:.1} MiB; \
         descriptors before {fds_before}, open {fds_open}, after {fds_after}",
        total as f64 / call_time.as_secs_f64(),
        rss_before as f64 / MIB,
        rss_peak as f64 / MIB,
        rss_after as f64 / MIB,
    );
    assert_eq!(errors.load(Ordering::Relaxed), 0, "calls failed");
    assert_eq!(fds_after, fds_before, "descriptors left after closing every connection");
    let growth = rss_after.saturating_sub(rss_before) as f64 / MIB;
    assert!(growth < 64.0, "RSS grew by {growth:.1} MiB after all connections closed");
    drop(server);
}

/// A deterministic pseudo-random sequence (xorshift), to vary the soak's sessions.
struct Dice(u64);

impl Dice {
    fn roll(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n
    }
}

/// What the soak's sessions did.
#[derive(Default)]
struct Counts {
    sessions: AtomicU64,
    calls: AtomicU64,
    abrupt: AtomicU64,
    /// Errors where none was expected.
    unexpected: AtomicU64,
}

/// One client session: a fresh node and connection, a mix of every kind of call, then a
/// graceful close or an abrupt one with calls in flight (which must end `Disconnected`,
/// promptly).
async fn session(address: &str, dice: &mut Dice, sinks: &Live, counts: &Counts) {
    let fail = |what: &str, e: &dyn std::fmt::Display| {
        eprintln!("soak: {what}: {e}");
        counts.unexpected.fetch_add(1, Ordering::Relaxed);
    };
    let node = Node::new();
    let hub: HubProxy = match node.proxy(address).await {
        Ok(h) => h,
        Err(e) => return fail("connect", &e),
    };
    let mut calls = 0;
    for _ in 0..1 + dice.roll(20) {
        match dice.roll(4) {
            0 => match hub.add(0, 20, 22).await {
                Ok(42) => {}
                Ok(n) => fail("add", &n),
                Err(e) => fail("add", &e),
            },
            1 => match hub.open(0, 1).await {
                Ok(tally) => {
                    for k in 0..1 + dice.roll(4) {
                        match tally.bump(1).await {
                            Ok(n) if n == k + 2 => {}
                            Ok(n) => fail("bump", &n),
                            Err(e) => fail("bump", &e),
                        }
                        calls += 1;
                    }
                }
                Err(e) => fail("open", &e),
            },
            2 => {
                let sink = Remote::new(Sink::new(sinks));
                match hub.call_back(sink.proxy().clone(), 1 + dice.roll(3) as u32, 0).await {
                    Ok(_) => {}
                    Err(e) => fail("call_back", &e),
                }
            }
            _ => {
                if let Err(e) = hub.note("soak".into()).await {
                    fail("note", &e);
                }
            }
        }
        calls += 1;
    }
    let conn = hub.object().connection().unwrap().clone();
    if dice.roll(3) == 0 {
        // Abrupt: close with a slow call and a callback in flight.
        counts.abrupt.fetch_add(1, Ordering::Relaxed);
        let slow = tokio::spawn({
            let hub = hub.clone();
            async move { hub.add(60_000, 1, 1).await }
        });
        let mut slow_sink = Sink::new(sinks);
        slow_sink.delay = Duration::from_secs(60);
        let sink = Remote::new(slow_sink);
        let back = tokio::spawn({
            let hub = hub.clone();
            let sink = sink.proxy().clone();
            async move { hub.call_back(sink, 1, 0).await }
        });
        drop(sink);
        let until = Instant::now() + Duration::from_secs(10);
        while conn.serving_count() == 0 && Instant::now() < until {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        if conn.serving_count() == 0 {
            fail("callback", &"never arrived");
        }
        conn.close();
        let closed = Instant::now();
        let wait = Duration::from_secs(10);
        let slow = tokio::time::timeout(wait, slow).await.map(|r| r.unwrap());
        let slow_ok = matches!(slow, Ok(Err(CallError::Disconnected(_))));
        let back = tokio::time::timeout(wait, back).await.map(|r| r.unwrap());
        let back_ok = matches!(back, Ok(Err(CallError::Disconnected(_))));
        if !slow_ok || !back_ok || closed.elapsed() > Duration::from_secs(2) {
            fail("abrupt close", &format!("{slow:?} / {back:?} after {:?}", closed.elapsed()));
        }
        calls += 2;
    } else {
        drop(hub);
    }
    drop(node);
    // This side's tables are empty once the connection has ended.
    let until = Instant::now() + Duration::from_secs(5);
    while (conn.exported_count() > 0 || conn.imported_count() > 0) && Instant::now() < until {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    if conn.exported_count() > 0 || conn.imported_count() > 0 {
        fail("leak", &format!("{} exports and {} imports left", conn.exported_count(), conn.imported_count()));
    }
    counts.sessions.fetch_add(1, Ordering::Relaxed);
    counts.calls.fetch_add(calls, Ordering::Relaxed);
}

/// Runs `workers` concurrent session loops until `until`.
async fn run_sessions(address: &str, workers: u64, until: Instant, sinks: &Live, counts: &Arc<Counts>) {
    let mut tasks = Vec::new();
    for w in 0..workers {
        let (address, sinks, counts) = (address.to_owned(), sinks.clone(), counts.clone());
        tasks.push(tokio::spawn(async move {
            let mut dice = Dice(0x9E37_79B9_7F4A_7C15 ^ (w + 1).wrapping_mul(0x2545_F491_4F6C_DD1D));
            while Instant::now() < until {
                session(&address, &mut dice, &sinks, &counts).await;
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
}

/// Quiescent figures: every session ended, every object released.
async fn checkpoint(fds_baseline: usize, tallies: &Live, sinks: &Live) -> (u64, usize) {
    let settle = Duration::from_secs(10);
    assert_eq!(tallies.settle(0, settle).await, 0, "returned objects leaked on the server");
    assert_eq!(sinks.settle(0, settle).await, 0, "callback objects leaked on the clients");
    fds_settle(fds_baseline).await;
    // The baseline may include another test's runtime since gone: wait for quiescence too.
    let fds = fds_stable(Duration::from_millis(1500)).await;
    (rss(), fds)
}

/// A soak of `DOPY_SOAK_SECS` seconds (default 300) of mixed sessions: no unexpected error, no
/// leaked object, export or import, and neither memory nor descriptors grow between an early
/// checkpoint and the end.
#[tokio::test(flavor = "multi_thread")]
#[ignore = "soak test: run with --release --ignored, DOPY_SOAK_SECS to set its length (docs/RELIABILITY.md)"]
async fn soak_mixed_calls_references_and_disconnects() {
    const WORKERS: u64 = 32;
    let _alone = ALONE.lock().await;
    let secs: u64 = std::env::var("DOPY_SOAK_SECS").ok().and_then(|s| s.parse().ok()).unwrap_or(300);
    let (server, address, hub) = start_hub().await;
    let sinks = Live::default();
    let counts = Arc::new(Counts::default());
    let fds_baseline = fds();
    let started = Instant::now();

    // Warm-up: a tenth of the time (at least 2 s), then the early checkpoint.
    let warmup = Duration::from_secs(secs / 10).max(Duration::from_secs(2));
    run_sessions(&address, WORKERS, started + warmup, &sinks, &counts).await;
    let (rss_early, fds_early) = checkpoint(fds_baseline, &hub.tallies, &sinks).await;
    let calls_early = counts.calls.load(Ordering::Relaxed);

    run_sessions(&address, WORKERS, started + Duration::from_secs(secs), &sinks, &counts).await;
    let (rss_end, fds_end) = checkpoint(fds_baseline, &hub.tallies, &sinks).await;
    let elapsed = started.elapsed();

    let calls = counts.calls.load(Ordering::Relaxed);
    let sessions = counts.sessions.load(Ordering::Relaxed);
    println!(
        "soak: {elapsed:.0?}, {sessions} sessions ({} closed abruptly), {calls} calls ({:.0}/s), {} notes; \
         RSS early {:.1} MiB ({calls_early} calls in), end {:.1} MiB; descriptors baseline {fds_baseline}, \
         early {fds_early}, end {fds_end}",
        counts.abrupt.load(Ordering::Relaxed),
        calls as f64 / elapsed.as_secs_f64(),
        hub.notes.load(Ordering::Relaxed),
        rss_early as f64 / MIB,
        rss_end as f64 / MIB,
    );
    assert_eq!(counts.unexpected.load(Ordering::Relaxed), 0, "unexpected errors (see stderr)");
    assert!(counts.abrupt.load(Ordering::Relaxed) > 0 && sessions > WORKERS, "the soak hardly ran");
    assert!(fds_end <= fds_early, "descriptors grew from {fds_early} to {fds_end}");
    let growth = rss_end.saturating_sub(rss_early) as f64 / MIB;
    assert!(growth < 16.0, "RSS grew by {growth:.1} MiB between the early checkpoint and the end");
    drop(server);
}
