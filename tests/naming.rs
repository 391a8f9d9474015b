// Over 600 lines because it is the one test file of the naming service's contract (docs/SERVICES.md), section by section.
//! The naming service: typed lookups, lists, tag searches, watches, leases that expire when a
//! real registrant process is killed, registrations by reference, durability across a
//! name-server restart on a real database file, and write access restricted by the secret.

// Test fixtures are not public API.
#![allow(missing_debug_implementations)]

mod support;
use support::services;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use dopy::naming::{Event, Limit, NameServer, NameServiceProxy, Names, NamingError, Removal, WatcherProxy};
use dopy::{CallError, DynObject, Node, Proxy, Remote, Value};
use services::ChildProcess;
use support::{temp_dir, Calculator, CalculatorProxy, Tracked};

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

/// The name service's error of a failed lookup (which also connects, so returns a `dopy::Error`).
fn lookup_error<T: std::fmt::Debug>(r: dopy::Result<T>) -> NamingError {
    match r {
        Err(e) => dopy::naming::naming_error(&e).unwrap_or_else(|| panic!("expected a naming error, got {e}")),
        Ok(other) => panic!("expected a naming error, got {other:?}"),
    }
}

/// The method's own error of a failed call.
fn naming_error<T: std::fmt::Debug>(r: Result<T, CallError<NamingError>>) -> NamingError {
    match r {
        Err(CallError::Method { error, .. }) => error,
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
    assert_eq!(lookup_error(err), NamingError::NotFound { name: "nobody".into() });
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
    assert_eq!(lookup_error(names.lookup::<DynObject>("calc").await), NamingError::NotFound { name: "calc".into() });
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
    let calc = Remote::new(Calculator { live: Some(Tracked::new(&live)), ..Calculator::default() });
    let registration = names.register_object("hidden", calc.proxy()).await.unwrap();
    drop(calc);

    let entry = Names::connect(&Node::new(), &names_at).await.unwrap().entry("hidden").await.unwrap();
    assert!(entry.address.is_none() && entry.object.is_some());
    drop(entry);
    let found: CalculatorProxy = dopy::naming::lookup(&Node::new(), &names_at, "hidden").await.unwrap();
    assert_eq!(found.add(20, 22).await.unwrap(), 42);
    drop(found);

    registration.release().await.unwrap();
    support::eventually("the object is released", || live.load(Ordering::SeqCst) == 0).await;
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
    support::eventually("the watcher hears of `b`", || *seen.lock().unwrap() == ["+b"]).await;
    assert_eq!(live.load(Ordering::SeqCst), 1, "the name service holds the watcher");
    drop(subscription);
    support::eventually("the watcher is released", || live.load(Ordering::SeqCst) == 0).await;
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
    let dir = temp_dir("names-restart");
    let db = dir.path().join("names.redb");
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
    assert!(format!("{err:#}").contains("unauthorized"), "{err:#}");
}

/// Serves `server` on a fresh node with the given frame limit; returns it and its address.
async fn serve_with_frame(server: &NameServer, max_frame: usize) -> (Node, String) {
    let node = Node::builder().name("names").max_frame(max_frame).build();
    server.publish(&node).unwrap();
    let addr = node.listen("tcp://127.0.0.1:0").await.unwrap();
    (node, addr.to_string())
}

/// The raw name service of a fresh client node.
async fn raw_service(names_at: &str) -> NameServiceProxy {
    Node::new().proxy(&format!("{names_at}/naming")).await.unwrap()
}

/// A permanent registration by address, through the raw interface.
async fn put(
    service: &NameServiceProxy,
    name: &str,
    address: &str,
    tags: &[String],
) -> Result<dopy::naming::Lease, CallError<NamingError>> {
    service.register(name.into(), Some(address.into()), None, tags.to_vec(), None, false).await
}

/// The limit a refused call names.
fn limit<T: std::fmt::Debug>(r: Result<T, CallError<NamingError>>) -> (Limit, u64) {
    match naming_error(r) {
        NamingError::LimitReached { limit, max } => (limit, max),
        other => panic!("expected a limit, got {other:?}"),
    }
}

/// The attack of issue 19: a registration with 90 tags of 100 KB is refused with a typed error
/// that names the limit, nothing is kept, and lists keep working.
#[tokio::test]
async fn a_registration_with_huge_tags_is_refused_with_the_limit() {
    let (_names, names_at) = name_server().await;
    let service = raw_service(&names_at).await;
    let huge: Vec<String> = (0..90).map(|i| format!("{i:02}{}", "x".repeat(100_000))).collect();
    let err = put(&service, "evil", "tcp://127.0.0.1:9/evil", &huge).await;
    let text = format!("{}", err.as_ref().unwrap_err());
    assert_eq!(limit(err), (Limit::TagBytes, dopy::naming::DEFAULT_MAX_TAG_BYTES as u64));
    assert!(text.contains("at most 128 bytes in a tag"), "{text}");
    let many: Vec<String> = (0..1000).map(|i| format!("t{i}")).collect();
    assert_eq!(limit(put(&service, "evil", "tcp://127.0.0.1:9/evil", &many).await), (Limit::Tags, 32));
    let names = Names::connect(&Node::new(), &names_at).await.unwrap();
    assert!(names.list("").await.unwrap().is_empty());
}

/// Each size limit holds at N and refuses N+1 with `LimitReached` naming it.
#[tokio::test]
async fn size_limits_at_n_and_n_plus_one() {
    let server =
        NameServer::builder().max_name_bytes(16).max_address_bytes(40).max_tag_bytes(8).max_tags(3).in_memory();
    let (_node, names_at) = serve_with_frame(&server, 16 * 1024 * 1024).await;
    let service = raw_service(&names_at).await;
    let at = "tcp://127.0.0.1:9/calc";

    put(&service, &"n".repeat(16), at, &[]).await.unwrap();
    assert_eq!(limit(put(&service, &"n".repeat(17), at, &[]).await), (Limit::NameBytes, 16));

    let address = |len: usize| format!("tcp://127.0.0.1:9/{}", "a".repeat(len - 18));
    assert_eq!(address(40).len(), 40);
    put(&service, "address", &address(40), &[]).await.unwrap();
    assert_eq!(limit(put(&service, "address2", &address(41), &[]).await), (Limit::AddressBytes, 40));

    put(&service, "tag", at, &["t".repeat(8)]).await.unwrap();
    assert_eq!(limit(put(&service, "tag2", at, &["t".repeat(9)]).await), (Limit::TagBytes, 8));

    let tags = |n: usize| (0..n).map(|i| format!("t{i}")).collect::<Vec<_>>();
    put(&service, "tags", at, &tags(3)).await.unwrap();
    assert_eq!(limit(put(&service, "tags2", at, &tags(4)).await), (Limit::Tags, 3));
    let mut repeated = tags(3);
    repeated.push("t0".into());
    put(&service, "tags3", at, &repeated).await.expect("a tag given twice counts once");

    let listed: Vec<String> = server.list("").into_iter().map(|e| e.name).collect();
    assert_eq!(listed, ["address", "n".repeat(16).as_str(), "tag", "tags", "tags3"]);
}

/// The names of one registrant (one endpoint) and of the whole server are capped: N holds,
/// N+1 is refused, taking an existing name over does not count, and removing one makes room.
#[tokio::test]
async fn name_counts_at_n_and_n_plus_one() {
    let server = NameServer::builder().max_names_per_registrant(2).max_names(4).in_memory();
    let (_node, names_at) = serve_with_frame(&server, 16 * 1024 * 1024).await;
    let service = raw_service(&names_at).await;

    put(&service, "a1", "tcp://127.0.0.1:1/x", &[]).await.unwrap();
    put(&service, "a2", "tcp://127.0.0.1:1/y", &[]).await.unwrap();
    assert_eq!(limit(put(&service, "a3", "tcp://127.0.0.1:1/z", &[]).await), (Limit::NamesPerRegistrant, 2));
    put(&service, "a1", "tcp://127.0.0.1:1/x", &[]).await.expect("registering its own name again");

    put(&service, "b1", "tcp://127.0.0.1:2/x", &[]).await.unwrap();
    put(&service, "c1", "tcp://127.0.0.1:3/x", &[]).await.unwrap();
    assert_eq!(limit(put(&service, "d1", "tcp://127.0.0.1:4/x", &[]).await), (Limit::Names, 4));
    service.register("c1".into(), Some("tcp://127.0.0.1:4/x".into()), None, vec![], None, true).await.unwrap();

    assert!(service.remove("a2".into()).await.unwrap());
    put(&service, "d1", "tcp://127.0.0.1:4/y", &[]).await.expect("room after a removal");
    assert_eq!(limit(put(&service, "a2", "tcp://127.0.0.1:1/y", &[]).await), (Limit::Names, 4));
}

/// Watches are capped: N holds, N+1 is refused, and ending one makes room.
#[tokio::test]
async fn watches_at_n_and_n_plus_one() {
    let server = NameServer::builder().max_watches(2).in_memory();
    let (_node, names_at) = serve_with_frame(&server, 16 * 1024 * 1024).await;
    let names = Names::connect(&Node::new(), &names_at).await.unwrap();
    let first = names.watch("").await.unwrap();
    let _second = names.watch("").await.unwrap();
    assert_eq!(limit(names.watch("").await), (Limit::Watches, 2));
    drop(first);
    let mut third = None;
    for _ in 0..200 {
        match names.watch("").await {
            Ok(watch) => {
                third = Some(watch);
                break;
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(10)).await,
        }
    }
    assert!(third.is_some(), "room after a watch ended");
}

/// With far more registrations than fit in a frame (a 16 KiB frame, ~300 KB of entries),
/// `list`, `search` and `watch` still give every one of them, typed and dynamic, while the
/// old single-answer `list` fails for its caller alone.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_registrations_beyond_a_frame_are_listed_searched_and_watched() {
    const FRAME: usize = 16 * 1024;
    const COUNT: usize = 240;
    let server = NameServer::in_memory();
    let (_node, names_at) = serve_with_frame(&server, FRAME).await;
    let client = Node::builder().max_frame(FRAME).build();
    let names = Names::connect(&client, &names_at).await.unwrap();
    for i in 0..COUNT {
        let mut tags: Vec<String> = (0..8).map(|t| format!("{t}{}", "x".repeat(120))).collect();
        tags.push(if i % 2 == 0 { "even".into() } else { "odd".into() });
        let name = format!("svc/{i:04}");
        put(names.service(), &name, &format!("tcp://127.0.0.1:{}/calc", 1000 + i % 5), &tags).await.unwrap();
    }
    let _other = put(names.service(), "zzz", "tcp://127.0.0.1:9/x", &[]).await.unwrap();

    let err = names.service().list(String::new()).await.unwrap_err();
    assert!(err.to_string().contains("exceeds the maximum frame size"), "{err}");

    let listed = names.list("svc/").await.unwrap();
    let expected: Vec<String> = (0..COUNT).map(|i| format!("svc/{i:04}")).collect();
    assert_eq!(listed.iter().map(|e| e.name.clone()).collect::<Vec<_>>(), expected);
    assert!(listed.iter().all(|e| e.tags.len() == 9));
    assert_eq!(names.list("").await.unwrap().len(), COUNT + 1);
    let even = names.search(["even"]).await.unwrap();
    assert_eq!(even.len(), COUNT / 2);
    assert!(even.iter().all(|e| e.tags.contains("even")));

    let mut watch = names.watch("svc/").await.unwrap();
    assert_eq!(watch.existing().iter().map(|e| e.name.clone()).collect::<Vec<_>>(), expected);
    put(names.service(), "svc/new", "tcp://127.0.0.1:9/x", &[]).await.unwrap();
    let Event::Registered(entry) = next(&mut watch).await else { panic!("expected a registration") };
    assert_eq!(entry.name, "svc/new");

    // A dynamic caller asking for pages as large as it likes gets them within the frame.
    let dynamic: DynObject = client.object(&format!("{names_at}/naming")).await.unwrap();
    let page = dynamic
        .call("list_page", [Value::from("svc/"), Value::Seq(vec![]), Value::Unit, Value::from(u64::MAX)])
        .await
        .unwrap();
    assert!(format!("{page:?}").contains("svc/0000"), "{page:?}");
}

/// A database holding registrations that break the limits (written before there were any)
/// loses them when the name server opens it, and lists work again.
#[tokio::test]
async fn stored_registrations_beyond_the_limits_are_dropped_on_open() {
    let dir = temp_dir("names-limits");
    let db = dir.path().join("names.redb");
    let loose = NameServer::builder().max_tag_bytes(200_000).open(&db).unwrap();
    let (node, names_at) = serve_with_frame(&loose, 16 * 1024 * 1024).await;
    let service = raw_service(&names_at).await;
    put(&service, "big", "tcp://127.0.0.1:9/x", &["x".repeat(100_000)]).await.unwrap();
    put(&service, "small", "tcp://127.0.0.1:9/y", &["t".into()]).await.unwrap();
    drop((node, loose, service));

    let strict = reopen(&db).await;
    let listed: Vec<String> = strict.list("").into_iter().map(|e| e.name).collect();
    assert_eq!(listed, ["small"]);
    drop(strict);
    let again = reopen(&db).await;
    assert_eq!(again.list("").len(), 1, "removed from the database too");
}

/// While peers send the attack of issue 19 over and over, a new client connects, registers,
/// looks up and lists within 2 seconds each, and finds nothing of the attackers.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_is_served_within_two_seconds_during_the_attack() {
    let (_names, names_at) = name_server().await;
    let stop = tokio_util::sync::CancellationToken::new();
    let attempts = Arc::new(AtomicUsize::new(0));
    let mut attackers = Vec::new();
    for a in 0..2 {
        let (names_at, stop, attempts) = (names_at.clone(), stop.clone(), attempts.clone());
        attackers.push(tokio::spawn(async move {
            let service = raw_service(&names_at).await;
            let huge: Vec<String> = (0..90).map(|i| format!("{i:02}{}", "x".repeat(100_000))).collect();
            while !stop.is_cancelled() {
                let r = put(&service, &format!("evil{a}"), "tcp://127.0.0.1:9/evil", &huge).await;
                assert!(matches!(naming_error(r), NamingError::LimitReached { .. }));
                attempts.fetch_add(1, Ordering::SeqCst);
            }
        }));
    }
    support::eventually("the attack is under way", || attempts.load(Ordering::SeqCst) >= 2).await;

    let (_server, calc) = calculator().await;
    let within = |what: &'static str| {
        move |started: std::time::Instant| {
            let took = started.elapsed();
            assert!(took < Duration::from_secs(2), "{what} took {took:?}");
        }
    };
    let started = std::time::Instant::now();
    let node = Node::new();
    let names = Names::connect(&node, &names_at).await.unwrap();
    within("connecting")(started);
    let started = std::time::Instant::now();
    let _registration = names.register("calc", &calc).tag("good").await.unwrap();
    within("registering")(started);
    let started = std::time::Instant::now();
    let found: CalculatorProxy = names.lookup("calc").await.unwrap();
    assert_eq!(found.add(1, 2).await.unwrap(), 3);
    within("looking up")(started);
    let started = std::time::Instant::now();
    let listed: Vec<String> = names.list("").await.unwrap().into_iter().map(|e| e.name).collect();
    within("listing")(started);
    assert_eq!(listed, ["calc"]);

    stop.cancel();
    for attacker in attackers {
        attacker.await.unwrap();
    }
    assert!(attempts.load(Ordering::SeqCst) >= 2);
}

/// A watcher that takes each event only once its gate opens.
pub struct Stalled {
    gate: Arc<tokio::sync::Semaphore>,
    taken: Arc<AtomicUsize>,
    _live: Tracked,
}

/// Takes events slowly.
#[dopy::remote]
impl Stalled {
    /// Waits for the gate, then counts the event.
    pub async fn event(&self, _event: Event) -> Result<(), String> {
        self.gate.acquire().await.map_err(|e| e.to_string())?.forget();
        self.taken.fetch_add(1, Ordering::SeqCst);
        Ok(())
    }
}

/// A watcher that does not take its events is dropped once more than the backlog wait for it:
/// it gets at most the backlog (and the one in flight), and the other watchers hear everything.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_watcher_beyond_its_backlog_is_dropped() {
    const BACKLOG: usize = 4;
    let server = NameServer::builder().watch_backlog(BACKLOG).in_memory();
    let (_node, names_at) = serve_with_frame(&server, 16 * 1024 * 1024).await;
    let client = Node::new();
    let service: NameServiceProxy = client.proxy(&format!("{names_at}/naming")).await.unwrap();
    let (gate, taken, live) =
        (Arc::new(tokio::sync::Semaphore::new(0)), Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
    let stalled = Remote::new(Stalled { gate: gate.clone(), taken: taken.clone(), _live: Tracked::new(&live) });
    let watcher = WatcherProxy::from_object(stalled.proxy().object().clone());
    let (_, _subscription) = service.watch(String::new(), watcher).await.unwrap();
    drop(stalled);
    let names = Names::connect(&Node::new(), &names_at).await.unwrap();
    let mut healthy = names.watch("").await.unwrap();

    for i in 0..3 * BACKLOG {
        put(&service, &format!("n{i:02}"), "tcp://127.0.0.1:9/x", &[]).await.unwrap();
    }
    for i in 0..3 * BACKLOG {
        let Event::Registered(entry) = next(&mut healthy).await else { panic!("expected a registration") };
        assert_eq!(entry.name, format!("n{i:02}"));
    }
    gate.add_permits(100);
    support::eventually("the stalled watcher is released", || live.load(Ordering::SeqCst) == 0).await;
    let got = taken.load(Ordering::SeqCst);
    assert!((1..=BACKLOG + 1).contains(&got), "it took {got} events");
}
