//! The naming service: typed lookups, lists, tag searches, watches, leases that expire when a
//! real registrant process is killed, registrations by reference, durability across a
//! name-server restart on a real database file, and write access restricted by the secret.

// Test fixtures are not public API.
#![allow(missing_debug_implementations)]

mod services;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use dopy::naming::{Event, NameServer, NameServiceProxy, Names, NamingError, Removal, WatcherProxy};
use dopy::{DynObject, Error, Node, Proxy, Remote, Value};
use services::{ChildProcess, TempDir};

/// A calculator to register.
#[derive(Default)]
pub struct Calculator {
    _live: Option<Tracked>,
}

/// A calculator.
#[dopy::remote]
impl Calculator {
    /// Adds two numbers.
    pub fn add(&self, a: i64, b: i64) -> i64 {
        a + b
    }
}

/// Decrements its counter when dropped.
pub struct Tracked(Arc<AtomicUsize>);

impl Tracked {
    fn new(count: &Arc<AtomicUsize>) -> Tracked {
        count.fetch_add(1, Ordering::SeqCst);
        Tracked(count.clone())
    }
}

impl Drop for Tracked {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

/// Starts a node serving an in-memory name server; returns it and its address.
async fn name_server() -> (Node, String) {
    let node = Node::builder().name("names").build();
    NameServer::in_memory().publish(&node).unwrap();
    let addr = node.listen("tcp://127.0.0.1:0").await.unwrap();
    (node, addr.to_string())
}

/// Starts a node serving a calculator as `calc`; returns it and the calculator's address.
async fn calculator() -> (Node, String) {
    let node = Node::builder().name("calc-server").build();
    node.publish("calc", Calculator::default()).unwrap();
    let addr = node.listen("tcp://127.0.0.1:0").await.unwrap();
    (node, format!("{addr}/calc"))
}

/// Waits (bounded) for the next event of a watch.
async fn next(watch: &mut dopy::naming::Watch) -> Event {
    tokio::time::timeout(Duration::from_secs(30), watch.next()).await.expect("an event in time").expect("an event")
}

/// The method's own error of a failed call.
fn naming_error<T: std::fmt::Debug>(r: Result<T, Error<NamingError>>) -> NamingError {
    match r {
        Err(Error::Method { error, .. }) => error,
        other => panic!("expected a naming error, got {other:?}"),
    }
}

/// Runs as a child process: a calculator server that registers itself, with a short lease, in
/// the name service `DOPY_TEST_NAMES` names. Does nothing in a normal run.
#[test]
#[ignore = "the body of the child processes the other tests start"]
fn child_process() {
    services::run_child(|_role| async {
        let names_at = std::env::var("DOPY_TEST_NAMES").unwrap();
        let (node, calc) = calculator().await;
        let names = Names::connect(&node, &names_at).await.unwrap();
        let registration = names.register("calc", &calc).tag("child").lease(Duration::from_millis(300)).await.unwrap();
        services::ready(std::process::id());
        Box::new((node, registration)) as Box<dyn std::any::Any>
    });
}

/// A lookup gives a typed proxy or a `DynObject` in one call, by the name service's endpoint
/// (its `naming` object) or full address.
#[tokio::test]
async fn lookup_returns_a_typed_proxy_or_a_dyn_object() {
    let (_names, names_at) = name_server().await;
    let (server, calc) = calculator().await;
    let _registration = Names::connect(&server, &names_at).await.unwrap().register("calc", &calc).await.unwrap();

    let client = Node::new();
    let typed: CalculatorProxy = dopy::naming::lookup(&client, &names_at, "calc").await.unwrap();
    assert_eq!(typed.add(2, 3).await.unwrap(), 5);
    let dynamic: DynObject = dopy::naming::lookup(&client, &format!("{names_at}/naming"), "calc").await.unwrap();
    assert_eq!(dynamic.call("add", [Value::from(4), Value::from(5)]).await.unwrap(), Value::Int(9));
    assert_eq!(dynamic.to_string(), calc, "reached directly at its address");

    let err = dopy::naming::lookup::<DynObject>(&client, &names_at, "nobody").await;
    assert_eq!(naming_error(err), NamingError::NotFound { name: "nobody".into() });
}

/// Names are listed by prefix and searched by tags, sorted by name; a removed name is gone.
#[tokio::test]
async fn names_are_listed_by_prefix_searched_by_tags_and_removed() {
    let (_names, names_at) = name_server().await;
    let (server, calc) = calculator().await;
    let names = Names::connect(&server, &names_at).await.unwrap();
    let _a = names.register("math/add", &calc).tags(["fast", "prod"]).await.unwrap();
    let _b = names.register("math/mul", &calc).tag("prod").await.unwrap();
    let _c = names.register("text/upper", &calc).tag("fast").await.unwrap();

    let listed: Vec<String> = names.list("math/").await.unwrap().into_iter().map(|e| e.name).collect();
    assert_eq!(listed, ["math/add", "math/mul"]);
    assert_eq!(names.list("").await.unwrap().len(), 3);
    let found: Vec<String> = names.search(["fast"]).await.unwrap().into_iter().map(|e| e.name).collect();
    assert_eq!(found, ["math/add", "text/upper"]);
    let both: Vec<String> = names.search(["fast", "prod"]).await.unwrap().into_iter().map(|e| e.name).collect();
    assert_eq!(both, ["math/add"]);
    let entry = names.entry("math/add").await.unwrap();
    assert_eq!(entry.address.as_deref(), Some(calc.as_str()));
    assert_eq!(entry.lease_ms, Some(10_000), "the default lease");

    assert!(names.remove("math/mul").await.unwrap());
    assert!(!names.remove("math/mul").await.unwrap());
    assert_eq!(names.list("math/").await.unwrap().len(), 1);
}

/// A registrant process killed with SIGKILL stops renewing: its name expires within the
/// lease, and watchers hear that it expired.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_registrant_expires_and_watchers_hear_it() {
    let (_names, names_at) = name_server().await;
    let names = Names::connect(&Node::new(), &names_at).await.unwrap();
    let mut watch = names.watch("").await.unwrap();
    assert!(watch.existing().is_empty());

    let child = ChildProcess::start("registrant", &[("DOPY_TEST_NAMES", &names_at)]).await;
    let Event::Registered(entry) = next(&mut watch).await else { panic!("expected a registration") };
    assert_eq!(entry.name, "calc");
    assert!(entry.tags.contains("child"));
    let calc: CalculatorProxy = names.lookup("calc").await.unwrap();
    assert_eq!(calc.add(1, 1).await.unwrap(), 2);

    child.kill().await;
    let Event::Removed { name, reason } = next(&mut watch).await else { panic!("expected a removal") };
    assert_eq!((name.as_str(), reason), ("calc", Removal::Expired));
    assert_eq!(naming_error(names.lookup::<DynObject>("calc").await), NamingError::NotFound { name: "calc".into() });
}

/// Dropping a registration removes the name at once (watchers hear it was released); a live
/// registrant keeps its name beyond the lease by renewing it.
#[tokio::test]
async fn a_registration_renews_until_dropped() {
    let (_names, names_at) = name_server().await;
    let (server, calc) = calculator().await;
    let names = Names::connect(&server, &names_at).await.unwrap();
    let mut watch = names.watch("calc").await.unwrap();
    // A lease long enough that a loaded machine (a renewal delayed by tens of milliseconds)
    // does not lose it, short enough that several pass.
    let registration = names.register("calc", &calc).lease(Duration::from_millis(250)).await.unwrap();
    assert!(matches!(next(&mut watch).await, Event::Registered(_)));
    let first_lease = registration.lease_id();
    // Several lease times pass; the name stays (and keeps its lease).
    tokio::time::sleep(Duration::from_millis(1200)).await;
    assert_eq!(names.entry("calc").await.unwrap().name, "calc");
    assert_eq!(registration.lease_id(), first_lease);

    drop(registration);
    let Event::Removed { reason, .. } = next(&mut watch).await else { panic!("expected a removal") };
    assert_eq!(reason, Removal::Released);
}

/// A taken name is refused, unless the registration replaces it or comes from the same address
/// (the same service, restarted); the previous holder's watchers hear it was replaced.
#[tokio::test]
async fn a_taken_name_is_refused_unless_replaced_or_same_address() {
    let (_names, names_at) = name_server().await;
    let (server, calc) = calculator().await;
    let (_other, other_calc) = calculator().await;
    let names = Names::connect(&server, &names_at).await.unwrap();
    let _first = names.register("calc", &calc).await.unwrap();

    let err = naming_error(names.register("calc", &other_calc).await);
    assert!(matches!(&err, NamingError::Taken { address: Some(a), .. } if *a == calc), "{err}");
    assert!(err.to_string().contains("already registered"), "{err}");

    let mut watch = names.watch("calc").await.unwrap();
    let _same = names.register("calc", &calc).await.unwrap();
    assert!(matches!(next(&mut watch).await, Event::Removed { reason: Removal::Replaced, .. }));
    assert!(matches!(next(&mut watch).await, Event::Registered(_)));
    let _taken = names.register("calc", &other_calc).replace().await.unwrap();
    assert!(matches!(next(&mut watch).await, Event::Removed { reason: Removal::Replaced, .. }));
    assert_eq!(names.entry("calc").await.unwrap().address, Some(other_calc));
}

/// A client that does not listen registers its object by reference; another client looks it
/// up and calls it through the name server. Removing the name releases the object.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_registration_by_reference_is_reached_through_the_name_server() {
    let (_names, names_at) = name_server().await;
    let live = Arc::new(AtomicUsize::new(0));
    let behind_nat = Node::new();
    let names = Names::connect(&behind_nat, &names_at).await.unwrap();
    let calc = Remote::new(Calculator { _live: Some(Tracked::new(&live)) });
    let registration = names.register_object("hidden", calc.proxy()).await.unwrap();
    drop(calc);

    let entry = Names::connect(&Node::new(), &names_at).await.unwrap().entry("hidden").await.unwrap();
    assert!(entry.address.is_none() && entry.object.is_some());
    drop(entry);
    let found: CalculatorProxy = dopy::naming::lookup(&Node::new(), &names_at, "hidden").await.unwrap();
    assert_eq!(found.add(20, 22).await.unwrap(), 42);
    drop(found);

    registration.release().await.unwrap();
    services::eventually("the object is released", || live.load(Ordering::SeqCst) == 0).await;
}

/// Collects events (a watcher written by hand) and counts its live instances.
pub struct Recorder {
    seen: Arc<std::sync::Mutex<Vec<String>>>,
    _live: Tracked,
}

/// Records events.
#[dopy::remote]
impl Recorder {
    /// Records an event.
    pub fn event(&self, event: Event) -> Result<(), String> {
        let line = match event {
            Event::Registered(e) => format!("+{}", e.name),
            Event::Removed { name, .. } => format!("-{name}"),
            other => format!("{other:?}"),
        };
        self.seen.lock().unwrap().push(line);
        Ok(())
    }
}

/// Any object with an `event` method can watch through the raw service; dropping the
/// subscription makes the name service let go of the watcher.
#[tokio::test]
async fn dropping_a_subscription_releases_the_watcher() {
    let (_names, names_at) = name_server().await;
    let (server, calc) = calculator().await;
    let names = Names::connect(&server, &names_at).await.unwrap();
    let _before = names.register("a", &calc).await.unwrap();

    let live = Arc::new(AtomicUsize::new(0));
    let seen = Arc::new(std::sync::Mutex::new(Vec::new()));
    let client = Node::new();
    let service: NameServiceProxy = client.proxy(&format!("{names_at}/naming")).await.unwrap();
    let recorder = Remote::new(Recorder { seen: seen.clone(), _live: Tracked::new(&live) });
    let watcher = WatcherProxy::from_object(recorder.proxy().object().clone());
    let (existing, subscription) = service.watch(String::new(), watcher).await.unwrap();
    drop(recorder);
    assert_eq!(existing.len(), 1);

    let _b = names.register("b", &calc).await.unwrap();
    services::eventually("the watcher hears of `b`", || *seen.lock().unwrap() == ["+b"]).await;
    assert_eq!(live.load(Ordering::SeqCst), 1, "the name service holds the watcher");
    drop(subscription);
    services::eventually("the watcher is released", || live.load(Ordering::SeqCst) == 0).await;
}

/// A watch ends (`next` gives `None`) when the name server goes away.
#[tokio::test]
async fn a_watch_ends_when_the_name_server_goes_away() {
    let (node, names_at) = name_server().await;
    let mut watch = Names::connect(&Node::new(), &names_at).await.unwrap().watch("").await.unwrap();
    drop(node);
    let end = tokio::time::timeout(Duration::from_secs(30), watch.next()).await.expect("the watch ends in time");
    assert!(end.is_none(), "{end:?}");
}

/// Serves the name server on `endpoint` until the returned node is dropped.
async fn serve_names(server: &NameServer, endpoint: &str) -> Node {
    let node = Node::builder().name("names").build();
    server.publish(&node).unwrap();
    for _ in 0..500 {
        // The previous server's listener on this port closes in the background.
        if node.listen(endpoint).await.is_ok() {
            return node;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("cannot listen on {endpoint}");
}

/// Opens a name server on a database whose previous server is shutting down.
async fn reopen(path: &std::path::Path) -> NameServer {
    for _ in 0..500 {
        match NameServer::open(path) {
            Err(dopy::persist::StoreError::Locked { .. }) => tokio::time::sleep(Duration::from_millis(10)).await,
            other => return other.unwrap(),
        }
    }
    panic!("the database stayed locked");
}

/// A name server restarted on its database has every registration back; a registrant that is
/// alive reconnects and renews its lease, one that died meanwhile expires as usual, and a
/// registration with no lease stays.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn registrations_survive_a_name_server_restart() {
    let dir = TempDir::new("names-restart");
    let db = dir.join("names.redb");
    let server = NameServer::open(&db).unwrap();
    // A port to come back to after the restart.
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let names_at = format!("tcp://127.0.0.1:{port}");
    let node = serve_names(&server, &names_at).await;

    let (calc_node, calc) = calculator().await;
    let names = Names::connect(&calc_node, &names_at).await.unwrap();
    let _alive = names.register("alive", &calc).lease(Duration::from_millis(900)).tag("t").await.unwrap();
    // A registrant that dies: it registers, and never renews.
    let raw = names.service();
    raw.register("dead".into(), Some(calc.clone()), None, vec![], Some(2000), false).await.unwrap();
    raw.register("static".into(), Some(calc.clone()), None, vec![], None, false).await.unwrap();

    drop((node, server));
    let server = reopen(&db).await;
    let listed: Vec<String> = server.list("").into_iter().map(|e| e.name).collect();
    assert_eq!(listed, ["alive", "dead", "static"], "restored from the database");
    let node = serve_names(&server, &names_at).await;

    let watcher = Names::connect(&Node::new(), &names_at).await.unwrap();
    let mut watch = watcher.watch("").await.unwrap();
    let Event::Removed { name, reason } = next(&mut watch).await else { panic!("expected a removal") };
    assert_eq!((name.as_str(), reason), ("dead", Removal::Expired));
    let listed: Vec<String> = watcher.list("").await.unwrap().into_iter().map(|e| e.name).collect();
    assert_eq!(listed, ["alive", "static"], "the live registrant renewed; the permanent one stays");
    let calc: CalculatorProxy = watcher.lookup("alive").await.unwrap();
    assert_eq!(calc.add(1, 2).await.unwrap(), 3);
    drop(node);
}

/// With the writable service behind the shared secret and a read-only one open to all,
/// anyone may look up but only peers with the secret may register or remove.
#[tokio::test]
async fn only_peers_with_the_secret_may_change_names() {
    let server = NameServer::in_memory();
    let admin = Node::builder().secret("sesame").build();
    server.publish(&admin).unwrap();
    let admin_at = admin.listen("tcp://127.0.0.1:0").await.unwrap().to_string();
    let public = Node::new();
    server.publish_read_only(&public).unwrap();
    let public_at = public.listen("tcp://127.0.0.1:0").await.unwrap().to_string();

    let (_calc_node, calc) = calculator().await;
    let trusted = Names::connect(&Node::builder().secret("sesame").build(), &admin_at).await.unwrap();
    let _registration = trusted.register("calc", &calc).await.unwrap();

    let anyone = Names::connect(&Node::new(), &public_at).await.unwrap();
    let found: CalculatorProxy = anyone.lookup("calc").await.unwrap();
    assert_eq!(found.add(1, 2).await.unwrap(), 3);
    assert_eq!(naming_error(anyone.register("calc", &calc).replace().await), NamingError::ReadOnly);
    assert_eq!(naming_error(anyone.remove("calc").await), NamingError::ReadOnly);

    let err = Names::connect(&Node::new(), &admin_at).await.unwrap_err();
    assert!(err.to_string().contains("unauthorized"), "{err}");
}
