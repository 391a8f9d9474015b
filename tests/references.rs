//! Remote object references: factories, callbacks over the same connection, third-party
//! references, dynamic references, lifetimes (with drop counters) and re-entrancy.

// Test fixtures are not public API.
#![allow(missing_debug_implementations)]

use std::sync::{Arc, Mutex};
use std::time::Duration;

use dopy::{CallError, DynObject, Node, Remote, Value};

mod support;
use support::hub::Live;
use support::Tracked;

/// A cursor over `pos..end`, created by a factory and passed by reference.
pub struct Cursor {
    pos: u32,
    end: u32,
    _live: Tracked,
}

/// A cursor.
#[dopy::remote]
impl Cursor {
    /// The next position, if any.
    pub fn advance(&mut self) -> Option<u32> {
        (self.pos < self.end).then(|| {
            self.pos += 1;
            self.pos - 1
        })
    }
}

/// Receives events (a callback object on the client).
pub struct Listener {
    seen: Arc<Mutex<Vec<String>>>,
    _live: Tracked,
    _linger: Linger,
}

/// Takes its time to drop (an object whose `Drop` flushes something, say).
struct Linger(Duration);

impl Drop for Linger {
    fn drop(&mut self) {
        std::thread::sleep(self.0);
    }
}

/// A listener.
#[dopy::remote]
impl Listener {
    /// Records an event.
    pub fn notify(&self, event: String) {
        self.seen.lock().unwrap().push(event);
    }
}

/// A server object: a cursor factory and an event hub.
pub struct Store {
    cursors: Live,
    listeners: tokio::sync::Mutex<Vec<ListenerProxy>>,
}

/// A store.
#[dopy::remote]
impl Store {
    /// A new cursor over `0..end`, passed by reference.
    pub fn open_cursor(&self, end: u32) -> Remote<Cursor> {
        Remote::new(Cursor { pos: 0, end, _live: self.cursors.track() })
    }

    /// The same cursor, twice.
    pub fn twice(&self, end: u32) -> (Remote<Cursor>, Vec<Option<Remote<Cursor>>>) {
        let c = Remote::new(Cursor { pos: 0, end, _live: self.cursors.track() });
        (c.clone(), vec![Some(c), None])
    }

    /// Keeps a listener.
    pub async fn subscribe(&self, listener: ListenerProxy) -> usize {
        let mut l = self.listeners.lock().await;
        l.push(listener);
        l.len()
    }

    /// Calls every listener back; returns how many answered.
    pub async fn publish(&self, event: String) -> usize {
        let listeners = self.listeners.lock().await.clone();
        let mut ok = 0;
        for l in listeners {
            if l.notify(event.clone()).await.is_ok() {
                ok += 1;
            }
        }
        ok
    }

    /// Forgets every listener.
    pub async fn clear(&self) {
        self.listeners.lock().await.clear();
    }

    /// Hands the cursor it is given straight back.
    pub fn hand_back(&self, cursor: CursorProxy) -> CursorProxy {
        cursor
    }

    /// Reads the next value of a cursor it is given (from anywhere).
    pub async fn next_of(&self, cursor: CursorProxy) -> Option<u32> {
        cursor.advance().await.unwrap()
    }
}

fn store(cursors: &Live) -> Store {
    Store { cursors: cursors.clone(), listeners: Default::default() }
}

async fn serve(name: &str, obj: impl dopy::Dispatch) -> (Node, String) {
    let node = Node::builder().name(name).build();
    node.publish("store", obj).unwrap();
    let addr = node.listen("tcp://127.0.0.1:0").await.unwrap();
    (node, format!("{addr}/store"))
}

/// A factory method returns a new object by reference: it stays on the server, the caller gets
/// a live proxy, and the object is dropped when the caller's last proxy is.
#[tokio::test]
async fn factory_returns_a_live_proxy_and_the_object_dies_with_it() {
    let cursors = Live::default();
    let (_server, url) = serve("server", store(&cursors)).await;
    let store: StoreProxy = Node::new().proxy(&url).await.unwrap();
    let cursor = store.open_cursor(2).await.unwrap();
    assert_eq!(cursors.get(), 1);
    assert_eq!(cursor.advance().await.unwrap(), Some(0));
    assert_eq!(cursor.advance().await.unwrap(), Some(1));
    assert_eq!(cursor.advance().await.unwrap(), None);
    let clone = cursor.clone();
    drop(cursor);
    assert_eq!(clone.advance().await.unwrap(), None, "a clone keeps the object alive");
    drop(clone);
    cursors.settles_at(0).await;
}

/// A client that never listens passes its own object; the server calls it back over the same
/// connection.
#[tokio::test]
async fn callbacks_travel_over_the_same_connection() {
    let cursors = Live::default();
    let (_server, url) = serve("server", store(&cursors)).await;
    let client = Node::new();
    let store: StoreProxy = client.proxy(&url).await.unwrap();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let listeners = Live::default();
    let listener =
        Remote::new(Listener { seen: seen.clone(), _live: listeners.track(), _linger: Linger(Duration::ZERO) });
    assert_eq!(store.subscribe(listener.proxy().clone()).await.unwrap(), 1);
    drop(listener);
    assert_eq!(listeners.get(), 1, "the server's reference keeps the listener alive");
    assert_eq!(store.publish("hello".into()).await.unwrap(), 1);
    assert_eq!(store.publish("again".into()).await.unwrap(), 1);
    assert_eq!(*seen.lock().unwrap(), ["hello", "again"]);
    store.clear().await.unwrap();
    listeners.settles_at(0).await;
}

/// A reference received from node B is handed on to node C; C's calls reach the object on B
/// (forwarded through the node in the middle).
#[tokio::test]
async fn third_party_reference_reaches_the_original_object() {
    let cursors_b = Live::default();
    let (_b, url_b) = serve("b", store(&cursors_b)).await;
    let cursors_c = Live::default();
    let (_c, url_c) = serve("c", store(&cursors_c)).await;
    let middle = Node::new();
    let b: StoreProxy = middle.proxy(&url_b).await.unwrap();
    let c: StoreProxy = middle.proxy(&url_c).await.unwrap();
    let cursor = b.open_cursor(3).await.unwrap();
    assert_eq!(c.next_of(cursor.proxy().clone()).await.unwrap(), Some(0));
    assert_eq!(c.next_of(cursor.proxy().clone()).await.unwrap(), Some(1));
    assert_eq!(cursor.advance().await.unwrap(), Some(2), "both saw the same object");
    assert_eq!(cursors_c.get(), 0);
    drop(cursor);
    cursors_b.settles_at(0).await;
}

/// A reference that returns to its owner is the owner's own object again.
#[tokio::test]
async fn reference_sent_back_resolves_to_the_local_object() {
    let cursors = Live::default();
    let (_server, url) = serve("server", store(&cursors)).await;
    let store: StoreProxy = Node::new().proxy(&url).await.unwrap();
    let cursor = store.open_cursor(5).await.unwrap();
    assert_eq!(store.next_of(cursor.proxy().clone()).await.unwrap(), Some(0));
    assert_eq!(cursor.advance().await.unwrap(), Some(1));
}

/// A reference to the caller's own object, handed straight back by the server, is still live
/// on the caller: the server's release of it never overtakes the reply that carries it.
#[tokio::test]
async fn reference_handed_straight_back_is_live() {
    let cursors = Live::default();
    let (_server, url) = serve("server", store(&cursors)).await;
    let store: StoreProxy = Node::new().proxy(&url).await.unwrap();
    let mine = Live::default();
    for round in 0..20u32 {
        let cursor = Remote::new(Cursor { pos: round, end: 100, _live: mine.track() });
        let back = store.hand_back(cursor.proxy().clone()).await.unwrap();
        assert_eq!(back.advance().await.unwrap(), Some(round), "round {round}");
        assert_eq!(cursor.advance().await.unwrap(), Some(round + 1), "the same object, round {round}");
        // Also when the caller keeps no handle of its own.
        let back = store.hand_back(Remote::new(Cursor { pos: 7, end: 9, _live: mine.track() }).proxy().clone());
        assert_eq!(back.await.unwrap().advance().await.unwrap(), Some(7), "round {round}");
    }
    mine.settles_at(0).await;
}

/// Dynamic callers see references as `Value::Ref` and call them like any `DynObject`.
#[tokio::test]
async fn dynamic_callers_get_and_pass_references_as_values() {
    let cursors = Live::default();
    let (_server, url) = serve("server", store(&cursors)).await;
    let store = Node::new().object(&url).await.unwrap();
    let Value::Ref(cursor) = store.call("open_cursor", [Value::from(3)]).await.unwrap() else {
        panic!("expected a reference");
    };
    assert_eq!(cursor.call("advance", []).await.unwrap(), Value::Option(Some(Box::new(Value::UInt(0)))));
    let v = store.call("next_of", [Value::Ref(cursor.clone())]).await.unwrap();
    assert_eq!(v, Value::Option(Some(Box::new(Value::UInt(1)))));
    assert_eq!(cursor.methods().await.unwrap().name, "Cursor");
    drop(cursor);
    cursors.settles_at(0).await;
}

/// The same reference sent twice, and inside two values, is counted right: the object lives
/// until the last handle goes.
#[tokio::test]
async fn the_same_reference_twice_is_counted_right() {
    let cursors = Live::default();
    let (_server, url) = serve("server", store(&cursors)).await;
    let store: StoreProxy = Node::new().proxy(&url).await.unwrap();
    let (a, mut more) = store.twice(10).await.unwrap();
    let b = more.remove(0).unwrap();
    assert!(more[0].is_none());
    assert_eq!(a.object(), b.object(), "one object, one id");
    drop(a);
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert_eq!(b.advance().await.unwrap(), Some(0), "still alive through the other handle");
    drop(b);
    cursors.settles_at(0).await;
}

/// 10,000 create/drop cycles leave nothing behind on either side.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_leak_after_ten_thousand_cycles() {
    let cursors = Live::default();
    let (_server, url) = serve("server", store(&cursors)).await;
    let store: StoreProxy = Node::new().proxy(&url).await.unwrap();
    let conn = store.object().connection().unwrap().clone();
    for i in 0..10_000u32 {
        let c = store.open_cursor(i).await.unwrap();
        drop(c);
    }
    cursors.settles_at(0).await;
    assert_eq!(conn.imported_count(), 0);
}

/// A closed connection releases everything it held, at once; named objects stay published.
#[tokio::test]
async fn closed_connection_releases_everything() {
    let cursors = Live::default();
    let (server, url) = serve("server", store(&cursors)).await;
    let store: StoreProxy = Node::new().proxy(&url).await.unwrap();
    let mut held = Vec::new();
    for _ in 0..5 {
        held.push(store.open_cursor(1).await.unwrap());
    }
    assert_eq!(cursors.get(), 5);
    store.object().connection().unwrap().close();
    cursors.settles_at(0).await;
    let err = held[0].advance().await.unwrap_err();
    assert!(matches!(err, CallError::Disconnected(_)), "{err}");
    let again: StoreProxy = Node::new().proxy(&url).await.unwrap();
    assert!(again.open_cursor(1).await.is_ok(), "the named object is still published");
    assert_eq!(server.published(), ["store"]);
}

/// When `closed()` returns, everything the connection held is released: a callback object
/// the client exported has been dropped, even one whose drop takes a while. (The server ends
/// the connection, so the client's side ends on its reader, not on the task that waits.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn closed_returns_once_every_reference_is_released() {
    let cursors = Live::default();
    let server = Node::new();
    server.publish("store", store(&cursors)).unwrap();
    let client = Node::new();
    let pair = support::faulty::pair(&server, &client).await;
    let store: StoreProxy = pair.proxy("store");
    let listeners = Live::default();
    let slow = Linger(Duration::from_millis(300));
    let listener = Remote::new(Listener { seen: Arc::default(), _live: listeners.track(), _linger: slow });
    assert_eq!(store.subscribe(listener.into_proxy()).await.unwrap(), 1);
    assert_eq!((pair.client.exported_count(), listeners.get()), (1, 1), "held by the client's exports only");

    pair.server.close();
    pair.client.closed().await;
    assert_eq!(pair.client.exported_count(), 0, "exports left when closed() returned");
    assert_eq!(listeners.get(), 0, "the exported listener was not dropped when closed() returned");
}

/// Calling a released or unknown reference gives `NoSuchObject` at once.
#[tokio::test]
async fn released_or_unknown_reference_gives_no_such_object() {
    let cursors = Live::default();
    let (_server, url) = serve("server", store(&cursors)).await;
    let store: StoreProxy = Node::new().proxy(&url).await.unwrap();
    let conn = store.object().connection().unwrap().clone();
    let cursor = store.open_cursor(1).await.unwrap();
    let target = cursor.object().target().unwrap().clone();
    drop(cursor);
    cursors.settles_at(0).await;
    let stale = DynObject::new(conn.clone(), target);
    let err = stale.call("advance", []).await.unwrap_err();
    assert!(matches!(err, CallError::NoSuchObject(_)), "{err}");
    assert!(err.to_string().contains("released"), "{err}");
    let unknown = DynObject::new(conn, dopy::protocol::Target::Id(dopy::protocol::ObjectId::random()));
    assert!(matches!(unknown.call("advance", []).await.unwrap_err(), CallError::NoSuchObject(_)));
}

/// Calls back and forth on one object, A → B → A: fails fast with `Reentrant` when it would
/// deadlock on a `&mut self` hold, runs when both are `&self`.
pub struct Pinger {
    peer: tokio::sync::Mutex<Option<PingerProxy>>,
}

/// Two of these call each other.
#[dopy::remote]
impl Pinger {
    /// Remembers the other side.
    pub async fn meet(&self, peer: PingerProxy) {
        *self.peer.lock().await = Some(peer);
    }

    /// Calls the peer's `pong`, which calls back our `shared_echo` (`&self` all the way).
    pub async fn ping_shared(&self, n: u32) -> Result<u32, String> {
        let peer = self.peer.lock().await.clone().ok_or("no peer")?;
        peer.pong(n).await.map_err(|e| e.to_string())
    }

    /// Calls the peer's `pong_mut` while holding this object exclusively.
    pub async fn ping_exclusive(&mut self, n: u32) -> Result<u32, String> {
        let peer = self.peer.get_mut().clone().ok_or("no peer")?;
        peer.pong(n).await.map_err(|e| format!("{e:#}"))
    }

    /// Calls back the caller's `shared_echo`, or `exclusive_echo` for odd numbers.
    pub async fn pong(&self, n: u32) -> Result<u32, String> {
        let peer = self.peer.lock().await.clone().ok_or("no peer")?;
        let r = if n.is_multiple_of(2) { peer.shared_echo(n).await } else { peer.exclusive_echo(n).await };
        r.map_err(|e| format!("{e:#}"))
    }

    /// Echoes (`&self`).
    pub fn shared_echo(&self, n: u32) -> u32 {
        n
    }

    /// Echoes (`&mut self`).
    pub fn exclusive_echo(&mut self, n: u32) -> u32 {
        n
    }
}

/// A → B → A: `&self` re-entry runs; re-entry into an object held `&mut self` (or asking
/// `&mut self` of one held `&self`) fails fast, saying why, and never deadlocks.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reentrant_calls_run_or_fail_fast() {
    let (_b, url) = serve("b", Pinger { peer: Default::default() }).await;
    let client = Node::new();
    let b: PingerProxy = client.proxy(&url).await.unwrap();
    let a = Remote::new(Pinger { peer: Default::default() });
    a.meet(b.clone()).await.unwrap();
    b.meet(a.proxy().clone()).await.unwrap();

    // a.ping_shared (a: &self) -> b.pong (b: &self) -> a.shared_echo (&self): runs.
    assert_eq!(within(a.ping_shared(2)).await.unwrap(), 2);
    // a.ping_shared (a: &self) -> b.pong -> a.exclusive_echo (&mut self): fails fast.
    let r = method_error(within(a.ping_shared(3)).await);
    assert!(r.contains("re-entrant call to `exclusive_echo`") && r.contains("would deadlock"), "{r}");
    // a.ping_exclusive (a: &mut self) -> b.pong -> a.shared_echo (&self): fails fast.
    let r = method_error(within(a.ping_exclusive(4)).await);
    assert!(r.contains("holds the object exclusively in `ping_exclusive`"), "{r}");
    // Across the network both ways: b.ping_exclusive (b: &mut self) -> a.pong -> b.shared_echo.
    let r = method_error(within(b.ping_exclusive(6)).await);
    assert!(r.contains("re-entrant call to `shared_echo`"), "{r}");
    // Unrelated calls still work afterwards.
    assert_eq!(b.shared_echo(7).await.unwrap(), 7);
    assert_eq!(a.exclusive_echo(8).await.unwrap(), 8);
}

/// Awaits a call, failing the test if it takes more than 5 s (a deadlock).
async fn within<F: std::future::Future>(f: F) -> F::Output {
    tokio::time::timeout(Duration::from_secs(5), f).await.expect("no deadlock")
}

/// The method's own error message of a failed call.
fn method_error<T: std::fmt::Debug>(r: Result<T, CallError<String>>) -> String {
    match r {
        Err(CallError::Method { error, .. }) => error,
        other => panic!("expected a method error, got {other:?}"),
    }
}

/// A published object with a drop counter.
pub struct Named {
    _live: Tracked,
}

/// A named object.
#[dopy::remote]
impl Named {
    /// Answers.
    pub fn hello(&self) -> String {
        "hello".into()
    }
}

/// Named published objects are not reference-counted: they outlive their clients' connections
/// and go when unpublished.
#[tokio::test]
async fn named_objects_live_until_unpublished() {
    let live = Live::default();
    let (server, url) = serve("server", Named { _live: live.track() }).await;
    for _ in 0..3 {
        let obj = Node::new().object(&url).await.unwrap();
        assert_eq!(obj.call("hello", []).await.unwrap(), Value::from("hello"));
        obj.connection().unwrap().close();
    }
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert_eq!(live.get(), 1);
    assert!(server.unpublish("store"));
    live.settles_at(0).await;
    let err = Node::new().object(&url).await.unwrap().call("hello", []).await.unwrap_err();
    assert!(matches!(err, CallError::NoSuchObject(_)), "{err}");
}
