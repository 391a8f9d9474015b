// Over 600 lines because it is the one test of SECURITY.md's threat model, one section per threat.
//! Security review (issue 9, point 6), over real sockets between real nodes: only published
//! `pub` remote methods are reachable; references are unguessable and scoped to the connection
//! they were exported on; without the shared secret a peer gets nothing but a failed
//! handshake, and no proof of the server's to guess the secret from; and the secret never shows
//! up in an error or a log line.
//!
//! See docs/SECURITY.md for the threat model these tests back.

// Test fixtures are not public API.
#![allow(missing_debug_implementations)]

#[path = "support/capture.rs"]
mod capture;

use std::collections::HashSet;
use std::error::Error as _;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use capture::Capture;
use dopy::protocol::{ObjectId, Target};
use dopy::transport::handshake::{self, Role, Secret, FLAG_AUTH, HELLO, HELLO_LEN, NONCE_LEN, PROOF_LEN};
use dopy::transport::TransportError;
use dopy::{CallError, Connection, DynObject, Endpoint, Error, Node, Remote, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// The shared secret of every guarded node here: distinctive, so a leak is easy to spot.
const SECRET: &str = "s3cret-7f1c-do-not-print";

/// Counts the calls that reached methods a peer must not be able to call.
#[derive(Clone, Default)]
pub struct Hits(Arc<AtomicUsize>);

impl Hits {
    fn hit(&self) -> u32 {
        self.0.fetch_add(1, Ordering::SeqCst) as u32 + 1
    }

    fn get(&self) -> usize {
        self.0.load(Ordering::SeqCst)
    }
}

/// An object whose impl mixes published methods with every kind of method that must stay local.
pub struct Vault {
    hits: Hits,
}

/// A vault: `peek` and `wire_name` are its only remote methods.
#[dopy::remote]
impl Vault {
    /// Published.
    pub fn peek(&self) -> u32 {
        7
    }

    /// Published under another name: the Rust name is not reachable.
    #[dopy(name = "wire_name")]
    pub fn rust_name(&self) -> u32 {
        self.hits.hit()
    }

    /// Not `pub`: local.
    fn private_wipe(&self) -> u32 {
        self.hits.hit()
    }

    /// `pub(crate)`: local.
    pub(crate) fn crate_wipe(&mut self) -> u32 {
        self.hits.hit()
    }

    /// `pub` but skipped: local.
    #[dopy(skip)]
    pub fn skipped_wipe(&self) -> u32 {
        self.hits.hit()
    }

    /// A constructor (no receiver), skipped: local.
    #[dopy(skip)]
    pub fn new(hits: Hits) -> Vault {
        Vault { hits }
    }
}

impl Vault {
    /// `pub`, in an impl block without `#[dopy::remote]`: local.
    pub fn other_impl_wipe(&self) -> u32 {
        self.hits.hit()
    }
}

/// A trait the vault implements outside its remote impl.
pub trait Admin {
    /// Must not be reachable.
    fn admin_wipe(&self) -> u32;
}

impl Admin for Vault {
    fn admin_wipe(&self) -> u32 {
        self.hits.hit()
    }
}

/// Method names a peer tries on `vault`: the local methods above, names of traits the object
/// implements (its own `Dispatch` included), and reserved or near-miss built-in names.
const HIDDEN_METHODS: &[&str] = &[
    "private_wipe",
    "crate_wipe",
    "skipped_wipe",
    "new",
    "other_impl_wipe",
    "admin_wipe",
    "rust_name",
    "dispatch",
    "dispatch_mut",
    "interface",
    "drop",
    "clone",
    "fmt",
    "dopy.call",
    "dopy.interface",
    "dopy.release",
    "dopy.methods.",
    "dopy.Methods",
    "DOPY.METHODS",
    "Peek",
    "peek ",
    "",
];

/// Starts a node listening on loopback TCP; returns it and its `tcp://host:port`.
async fn serve(node: Node) -> (Node, Endpoint) {
    let endpoint = node.listen("tcp://127.0.0.1:0").await.unwrap();
    (node, endpoint)
}

/// The connection a handle's calls travel on.
fn connection_of(object: &DynObject) -> Connection {
    object.connection().expect("a remote handle").clone()
}

/// Only the published `pub` methods of a published object answer: by name over the wire,
/// private, `pub(crate)`, `#[dopy(skip)]`, other-impl and trait methods, the Rust name of a
/// renamed method and every other `dopy.*` name get `NoSuchMethod` (dynamic and typed
/// calls alike), and none of those methods ran. `dopy.methods` lists exactly the published
/// methods. Objects that are not published (withdrawn, never published, or only known by type
/// name) get `NoSuchObject`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_published_pub_methods_are_reachable() {
    // The local methods exist and count: calling them in process moves the counter.
    let local = Hits::default();
    let mut vault = Vault::new(local.clone());
    let ran = [
        vault.private_wipe(),
        vault.crate_wipe(),
        vault.skipped_wipe(),
        vault.other_impl_wipe(),
        vault.admin_wipe(),
        vault.rust_name(),
    ];
    assert_eq!(ran, [1, 2, 3, 4, 5, 6]);

    let hits = Hits::default();
    let server = Node::builder().name("server").build();
    server.publish("vault", Vault::new(hits.clone())).unwrap();
    server.publish("retired", Vault::new(hits.clone())).unwrap();
    assert!(server.unpublish("retired"));
    let (_server, endpoint) = serve(server).await;
    let client = Node::new();
    let vault = client.object(&format!("{endpoint}/vault")).await.unwrap();

    assert_eq!(vault.call("peek", []).await.unwrap(), Value::from(7u32));
    let interface = vault.methods().await.unwrap();
    let listed: HashSet<&str> = interface.methods.iter().map(|m| m.name.as_ref()).collect();
    assert_eq!(listed, HashSet::from(["peek", "wire_name"]), "introspection shows only the published methods");

    for &name in HIDDEN_METHODS {
        let err = vault.call(name, []).await.unwrap_err();
        assert!(matches!(err, CallError::NoSuchMethod(_)), "dynamic call of `{name}`: {err:#}");
        let err = vault.call_named(name, [("x", Value::from(1u32))]).await.unwrap_err();
        assert!(matches!(err, CallError::NoSuchMethod(_)), "keyword call of `{name}`: {err:#}");
        let err = vault.call_typed::<_, u32, Value>(name, ()).await.unwrap_err();
        assert!(matches!(err, CallError::NoSuchMethod(_)), "typed call of `{name}`: {err:#}");
    }
    assert_eq!(hits.get(), 0, "a local method ran on behalf of a peer");
    assert_eq!(vault.call("wire_name", []).await.unwrap(), Value::from(1u32), "the renamed method answers");

    let conn = connection_of(&vault);
    for name in ["retired", "ghost", "Vault", "VaultProxy", "vault ", "", "dopy.methods", "dopy"] {
        let object = DynObject::new(conn.clone(), Target::Name(name.to_owned()));
        for method in ["peek", "dopy.methods", "private_wipe"] {
            let err = object.call(method, []).await.unwrap_err();
            assert!(matches!(err, CallError::NoSuchObject(_)), "`{method}` on unpublished `{name}`: {err:#}");
        }
    }
    assert_eq!(hits.get(), 1, "only the one published call ran");
}

/// An object handed out by reference: counts its calls.
pub struct Item {
    calls: Hits,
}

/// An item.
#[dopy::remote]
impl Item {
    /// Counts the call.
    pub fn touch(&self) -> u32 {
        self.calls.hit()
    }
}

/// A factory of items, passed by reference.
pub struct Factory {
    calls: Hits,
    shared: Remote<Item>,
}

/// A factory.
#[dopy::remote]
impl Factory {
    /// A new item, by reference.
    pub fn make(&self) -> Remote<Item> {
        Remote::new(Item { calls: self.calls.clone() })
    }

    /// The one item every caller shares, by reference.
    pub fn shared(&self) -> Remote<Item> {
        self.shared.clone()
    }
}

/// The id a handle to a referenced object calls.
fn id_of(proxy: &ItemProxy) -> ObjectId {
    match proxy.object().target() {
        Some(Target::Id(id)) => *id,
        other => panic!("a reference should be called by id, not {other:?}"),
    }
}

/// Exported ids are 128 random bits: 256 of them are distinct, every one of their 16 bytes
/// takes many values (no counter, timestamp or constant part), every bit is set in about half
/// of them, and no two consecutive ones are close. Guessed ids (random, or next to a real one)
/// and the id of a reference exported on another connection get `NoSuchObject`; so do names
/// that are an exported object's id or type. The same object gets unrelated ids on two
/// connections.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exported_ids_are_random_and_scoped_to_their_connection() {
    let calls = Hits::default();
    let shared = Remote::new(Item { calls: calls.clone() });
    let server = Node::builder().name("server").build();
    server.publish("factory", Factory { calls: calls.clone(), shared }).unwrap();
    let (_server, endpoint) = serve(server).await;
    let address = format!("{endpoint}/factory");
    let a: FactoryProxy = Node::new().proxy(&address).await.unwrap();
    let b: FactoryProxy = Node::new().proxy(&address).await.unwrap();
    let (conn_a, conn_b) = (connection_of(a.object()), connection_of(b.object()));
    assert!(!conn_a.same(&conn_b), "two client nodes, two connections");

    const N: usize = 256;
    let mut items = Vec::with_capacity(N);
    for _ in 0..N {
        items.push(a.make().await.unwrap());
    }
    let ids: Vec<[u8; 16]> = items.iter().map(|i| id_of(i).0).collect();
    assert_eq!(ids.iter().collect::<HashSet<_>>().len(), N, "ids are distinct");
    for position in 0..16 {
        let values: HashSet<u8> = ids.iter().map(|id| id[position]).collect();
        // Uniform bytes give about 162 distinct values out of 256 draws; a counter or a
        // timestamp gives a handful in its high bytes.
        assert!(
            values.len() >= 120,
            "byte {position} takes only {} values; the first ids: {:02x?}",
            values.len(),
            &ids[..4]
        );
    }
    for bit in 0..128 {
        let ones = ids.iter().filter(|id| id[bit / 8] >> (bit % 8) & 1 == 1).count();
        // Mean 128, standard deviation 8: this window is eight deviations wide each side.
        assert!((64..=192).contains(&ones), "bit {bit} is set in {ones} of {N} ids");
    }
    for pair in ids.windows(2) {
        let (x, y) = (u128::from_be_bytes(pair[0]), u128::from_be_bytes(pair[1]));
        assert!(x.abs_diff(y) >= 1 << 96, "consecutive ids are close: {x:032x} {y:032x}");
    }

    // The real ids answer, on their own connection.
    assert_eq!(items[0].touch().await.unwrap(), 1);
    let before = calls.get();

    let real = ids[0];
    let mut neighbour = real;
    neighbour[15] = neighbour[15].wrapping_add(1);
    let guesses = [ObjectId::random(), ObjectId([0; 16]), ObjectId([0xff; 16]), ObjectId(neighbour)];
    for guess in guesses {
        let err = DynObject::new(conn_a.clone(), Target::Id(guess)).call("touch", []).await.unwrap_err();
        assert!(matches!(err, CallError::NoSuchObject(_)), "guessed id {guess}: {err:#}");
    }
    let stolen = DynObject::new(conn_b.clone(), Target::Id(ObjectId(real)));
    let err = stolen.call("touch", []).await.unwrap_err();
    assert!(matches!(err, CallError::NoSuchObject(_)), "id of connection A called on B: {err:#}");
    for name in [ObjectId(real).to_string(), format!("#{}", ObjectId(real)), "Item".to_owned()] {
        let err = DynObject::new(conn_a.clone(), Target::Name(name.clone())).call("touch", []).await.unwrap_err();
        assert!(matches!(err, CallError::NoSuchObject(_)), "exported object by name `{name}`: {err:#}");
    }
    assert_eq!(calls.get(), before, "a guessed or stolen id reached an object");

    // One object exported to two connections: two unrelated ids, neither valid on the other.
    let (on_a, on_b) = (a.shared().await.unwrap(), b.shared().await.unwrap());
    let (id_a, id_b) = (id_of(&on_a), id_of(&on_b));
    assert_ne!(id_a, id_b);
    for (conn, id) in [(&conn_a, id_b), (&conn_b, id_a)] {
        let err = DynObject::new(conn.clone(), Target::Id(id)).call("touch", []).await.unwrap_err();
        assert!(matches!(err, CallError::NoSuchObject(_)), "the other connection's id: {err:#}");
    }
    assert_eq!(calls.get(), before);
    on_a.touch().await.unwrap();
    on_b.touch().await.unwrap();
    assert_eq!(calls.get(), before + 2);
}

/// Counts the calls that reach it.
pub struct Witness(Hits);

/// Counts its calls.
#[dopy::remote]
impl Witness {
    /// Adds two numbers, and counts the call.
    pub fn add(&self, a: i64, b: i64) -> i64 {
        self.0.hit();
        a + b
    }
}

/// A frame carrying `add(2, 3)` on `calc` (PROTOCOL.md, vector `call-typed`), then one carrying
/// `Ping { nonce: 9 }` (vector `ping`): either answered would be a frame back.
const CALL_AND_PING: &[u8] = &[
    20, 0, 0, 0, 0x00, 0x01, 0x00, 0x04, b'c', b'a', b'l', b'c', 0x03, b'a', b'd', b'd', 0x00, 0x00, 0x02, 0x04, 0x06,
    0x00, 0x00, 0x00, //
    2, 0, 0, 0, 0x04, 0x09,
];

/// A server with the secret, publishing a witness as `calc`; and its TCP address.
async fn guarded(witness: &Hits) -> (Node, String, (String, u16)) {
    let node = Node::builder().name("guarded").secret(SECRET).build();
    node.publish("calc", Witness(witness.clone())).unwrap();
    let endpoint = node.listen("tcp://127.0.0.1:0").await.unwrap();
    let Endpoint::Tcp { host, port } = endpoint.clone() else { unreachable!() };
    (node, endpoint.to_string(), (host, port))
}

/// Reads whatever the server sends until it closes the stream (a reset counts as closed);
/// panics if it keeps the stream open.
async fn until_closed(stream: &mut TcpStream) -> Vec<u8> {
    let mut got = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(10), stream.read_to_end(&mut got)).await;
    assert!(read.is_ok(), "the server kept the stream open after a failed handshake; got {got:02x?}");
    got
}

/// Asserts that `err` is a connection refused by authentication, as a user sees it.
fn assert_unauthorized(err: &Error, context: &str) {
    assert!(matches!(err, Error::Connect { .. }), "{context}: {err:#}");
    assert!(format!("{err:#}").contains("unauthorized"), "{context}: {err:#}");
    let transport = err.source().and_then(|s| s.downcast_ref::<TransportError>());
    assert!(transport.is_some_and(TransportError::is_unauthorized), "{context}: {err:?}");
}

/// With a shared secret set, a raw TCP peer that skips the hello, skips authentication, sends
/// a made-up proof, echoes the server's nonce back as a proof, replays a proof recorded from an
/// earlier good handshake, or speaks another version, then sends a call and a ping, gets no
/// frame back, the stream is closed, and the method never runs. A node with the wrong secret
/// is refused as unauthorized. The server keeps serving peers that know the secret.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_the_secret_a_peer_only_fails_the_handshake() {
    let witness = Hits::default();
    let (_server, endpoint, (host, port)) = guarded(&witness).await;
    let connect = || TcpStream::connect((host.as_str(), port));
    let secret = Secret::new(SECRET);
    let auth_hello = handshake::hello(FLAG_AUTH);
    // Everything an acceptor may send before it has checked the peer: its hello and nonce.
    let most = HELLO_LEN + NONCE_LEN;

    // A good handshake, done by hand, whose connector proof an eavesdropper records.
    let recorded_nonce = [5u8; NONCE_LEN];
    let recorded_proof = {
        let mut stream = connect().await.unwrap();
        stream.write_all(&auth_hello).await.unwrap();
        stream.write_all(&recorded_nonce).await.unwrap();
        let mut answer = [0u8; HELLO_LEN + NONCE_LEN];
        stream.read_exact(&mut answer).await.unwrap();
        let theirs: [u8; NONCE_LEN] = answer[HELLO_LEN..].try_into().unwrap();
        let recorded = handshake::proof(&secret, Role::Connector, &recorded_nonce, &theirs);
        stream.write_all(&recorded).await.unwrap();
        let mut server_proof = [0u8; PROOF_LEN];
        stream.read_exact(&mut server_proof).await.unwrap();
        assert_eq!(server_proof, handshake::proof(&secret, Role::Acceptor, &recorded_nonce, &theirs));
        recorded
    };

    let attempts: [(&str, Vec<u8>); 4] = [
        ("no hello at all", CALL_AND_PING.to_vec()),
        ("a hello without AUTH", [&HELLO[..], CALL_AND_PING].concat()),
        ("a made-up proof", [&auth_hello[..], &[7u8; NONCE_LEN], &[0u8; PROOF_LEN], CALL_AND_PING].concat()),
        ("a replayed proof", [&auth_hello[..], &recorded_nonce, &recorded_proof, CALL_AND_PING].concat()),
    ];
    for (what, bytes) in attempts {
        let mut stream = connect().await.unwrap();
        stream.write_all(&bytes).await.unwrap();
        let answer = until_closed(&mut stream).await;
        assert!(answer.len() <= most, "{what}: the server sent more than a handshake: {answer:02x?}");
    }

    // Reflection: the server proves nothing before we do, so there is no proof of its own to
    // send back; its nonce, echoed as a proof, and the call are refused without an answer.
    let mut stream = connect().await.unwrap();
    stream.write_all(&auth_hello).await.unwrap();
    stream.write_all(&[3u8; NONCE_LEN]).await.unwrap();
    let mut answer = [0u8; HELLO_LEN + NONCE_LEN];
    stream.read_exact(&mut answer).await.unwrap();
    stream.write_all(&answer[HELLO_LEN..]).await.unwrap();
    stream.write_all(CALL_AND_PING).await.unwrap();
    assert!(until_closed(&mut stream).await.is_empty(), "reflection: the server answered a reflected nonce");

    // Another protocol version with AUTH, then a proof-shaped blob and the call.
    let mut other_version = auth_hello;
    other_version[4] = 2;
    let mut stream = connect().await.unwrap();
    stream.write_all(&[&other_version[..], &[0u8; NONCE_LEN + PROOF_LEN], CALL_AND_PING].concat()).await.unwrap();
    let answer = until_closed(&mut stream).await;
    assert!(answer.len() <= most, "another version: {answer:02x?}");

    assert_eq!(witness.get(), 0, "a call ran without authentication");

    let address = format!("{endpoint}/calc");
    let err = Node::builder().secret("not the secret").build().object(&address).await.unwrap_err();
    assert_unauthorized(&err, "wrong secret");
    let err = Node::new().object(&address).await.unwrap_err();
    assert_unauthorized(&err, "no secret");
    assert_eq!(witness.get(), 0);

    let calc = Node::builder().secret(SECRET).build().object(&address).await.unwrap();
    assert_eq!(calc.call("add", [2.into(), 3.into()]).await.unwrap(), Value::from(5i64));
    assert_eq!(witness.get(), 1, "the right secret gets in");
}

/// The acceptor proves nothing to a peer that has not proved itself (PROTOCOL.md §1.2: the
/// connector proves first; the acceptor checks that proof before it writes its own). A peer
/// that can open a connection, knowing nothing, therefore gets no
/// `HMAC(secret, label || its nonce || the server's nonce)` to test guesses of the secret
/// against offline: silent, it receives the server's hello and nonce only; with a wrong proof,
/// the stream closes with nothing more.
#[tokio::test]
async fn the_server_reveals_no_proof_before_the_peer_proves_itself() {
    let (_server, _endpoint, (host, port)) = guarded(&Hits::default()).await;
    let dictionary = ["password", "sesame", "dopy", SECRET, "letmein"];
    let ours = [4u8; NONCE_LEN];
    // What an offline dictionary attack recovers from whatever the server sent.
    let attack = |got: &[u8]| {
        (got.len() >= HELLO_LEN + NONCE_LEN + PROOF_LEN)
            .then(|| {
                let theirs: [u8; NONCE_LEN] = got[HELLO_LEN..HELLO_LEN + NONCE_LEN].try_into().unwrap();
                let leaked = &got[HELLO_LEN + NONCE_LEN..HELLO_LEN + NONCE_LEN + PROOF_LEN];
                dictionary
                    .into_iter()
                    .find(|guess| handshake::proof(&Secret::new(guess), Role::Acceptor, &ours, &theirs) == leaked)
            })
            .flatten()
    };

    // Send no proof: just listen for a moment.
    let mut stream = TcpStream::connect((host.as_str(), port)).await.unwrap();
    stream.write_all(&handshake::hello(FLAG_AUTH)).await.unwrap();
    stream.write_all(&ours).await.unwrap();
    let mut got = Vec::new();
    let mut buf = [0u8; 128];
    while let Ok(Ok(n @ 1..)) = tokio::time::timeout(Duration::from_millis(500), stream.read(&mut buf)).await {
        got.extend_from_slice(&buf[..n]);
    }
    assert_eq!(got.len(), HELLO_LEN + NONCE_LEN, "the server sent {} bytes to a peer that proved nothing", got.len());

    // A wrong proof: the stream closes, and nothing derived from the secret came before.
    stream.write_all(&[0u8; PROOF_LEN]).await.unwrap();
    got.extend(until_closed(&mut stream).await);
    assert!(
        got.len() <= HELLO_LEN + NONCE_LEN,
        "the server sent {} bytes to a peer whose proof was wrong, its proof included; an offline \
         dictionary attack on it recovered the secret: {:?}",
        got.len(),
        attack(&got)
    );
}

/// A name server cannot make a client start a process: registering an `exec:` or `ssh://`
/// address is refused, and an entry carrying one (from a name server that is not honest) is
/// never dialled by the client that looks it up.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_name_server_entry_cannot_make_a_client_run_a_command() {
    let dir = tempfile::Builder::new().prefix("dopy-security-").tempdir().unwrap();
    let marker = dir.path().join("pwned");
    let server = Node::builder().name("names").build();
    dopy::naming::NameServer::in_memory().publish(&server).unwrap();
    let (_server, endpoint) = serve(server).await;
    let names_at = endpoint.to_string();

    let attacker = Node::new();
    let attacker_names = dopy::naming::Names::connect(&attacker, &names_at).await.unwrap();
    let evil = format!("exec:touch {}#calc", marker.display());
    for address in [evil.as_str(), "ssh://example.invalid?o=ProxyCommand=touch%20x#calc"] {
        let refused = attacker_names.register("calc", address).await;
        let err = refused.err().unwrap_or_else(|| panic!("registering `{address}` was accepted"));
        assert!(err.to_string().contains("would start a process"), "{err:#}");
    }
    // A real address still registers.
    let _registered = attacker_names.register("calc", &format!("{names_at}/calc")).await.unwrap();

    // An entry as a dishonest name server would send it.
    let entry: dopy::naming::Entry = serde_json::from_value(serde_json::json!({
        "name": "calc", "address": evil, "object": null, "tags": [], "lease_ms": null,
    }))
    .unwrap();
    let victim = Node::new();
    let dialled = entry.connect::<DynObject>(&victim).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let ran = marker.exists();
    assert!(!ran, "connecting to the entry ran `touch` on the client");
    let err = dialled.expect_err("an exec: entry gave a proxy");
    assert!(matches!(err, dopy::Error::InvalidAddress { .. }), "{err:#}");
}

/// The forms a leaked secret could take: the text, its bytes in hex, its bytes as `Debug`.
fn secret_forms() -> [String; 3] {
    let bytes = SECRET.as_bytes();
    [SECRET.to_owned(), bytes.iter().map(|b| format!("{b:02x}")).collect(), format!("{bytes:?}")]
}

/// Asserts that no form of the secret appears in `text`.
fn assert_no_secret(text: &str, context: &str) {
    for form in secret_forms() {
        assert!(!text.contains(&form), "{context}: the secret appears in\n{text}");
    }
}

/// Asserts that no rendering of `err`, nor of any error in its source chain, shows the secret.
fn assert_error_keeps_secret(err: &(dyn std::error::Error + 'static), context: &str) {
    assert_no_secret(&format!("{err}"), context);
    assert_no_secret(&format!("{err:#}"), context);
    assert_no_secret(&format!("{err:?}"), context);
    assert_no_secret(&format!("{err:#?}"), context);
    let mut source = err.source();
    while let Some(s) = source {
        assert_no_secret(&format!("{s} {s:#} {s:?}"), context);
        source = s.source();
    }
}

/// Errors never carry the secret: not from a wrong secret (either side), a missing one, a
/// handshake timeout (either side), nor a failing, panicking, missing or badly called method on
/// an authenticated connection; not in `{}`, `{:#}`, `{:?}` or any source; and not in anything
/// logged at trace level meanwhile, nor in the `Debug` of the nodes and builders that hold it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_secret_never_appears_in_errors_or_logs() {
    let capture = Capture::default();
    let writer = capture.clone();
    tracing_subscriber::fmt()
        .with_env_filter("dopy=trace,dopy_core=trace,dopy_transport=trace")
        .with_writer(move || writer.clone())
        .with_ansi(false)
        .init();

    let short = Duration::from_millis(300);
    let builder = Node::builder().name("server").secret(SECRET).handshake_timeout(short);
    assert_no_secret(&format!("{builder:?}"), "NodeBuilder's Debug");
    let server = builder.build();
    assert_no_secret(&format!("{server:?}"), "Node's Debug");
    server.publish("calc", Failing).unwrap();
    let (server, endpoint) = serve(server).await;
    let address = format!("{endpoint}/calc");
    let open_server = Node::builder().name("open").build();
    open_server.publish("calc", Failing).unwrap();
    let (_open_server, open_endpoint) = serve(open_server).await;

    // Wrong secret, no secret, and a secret the server does not expect.
    let wrong = format!("{SECRET}-but-wrong");
    let err = Node::builder().secret(&wrong).build().object(&address).await.unwrap_err();
    assert_unauthorized(&err, "wrong secret");
    assert_error_keeps_secret(&err, "wrong secret");
    let err = Node::new().object(&address).await.unwrap_err();
    assert_unauthorized(&err, "no secret");
    assert_error_keeps_secret(&err, "no secret");
    let err = Node::builder().secret(SECRET).build().object(&format!("{open_endpoint}/calc")).await.unwrap_err();
    assert_unauthorized(&err, "a server without the secret");
    assert_error_keeps_secret(&err, "a server without the secret");

    // The client times out: a listener that accepts and says nothing.
    let silent = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let silent_port = silent.local_addr().unwrap().port();
    let hold = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((stream, _)) = silent.accept().await {
            held.push(stream);
        }
    });
    let client = Node::builder().secret(SECRET).handshake_timeout(short).build();
    let err = client.object(&format!("tcp://127.0.0.1:{silent_port}/calc")).await.unwrap_err();
    assert!(format!("{err:#}").contains("handshake"), "{err:#}");
    assert_error_keeps_secret(&err, "client handshake timeout");
    hold.abort();

    // The server times out: a peer that connects and says nothing.
    let Endpoint::Tcp { host, port } = &endpoint else { unreachable!() };
    let mut mute = TcpStream::connect((host.as_str(), *port)).await.unwrap();
    let answer = until_closed(&mut mute).await;
    assert_eq!(answer, handshake::hello(FLAG_AUTH), "the server's hello, then it hangs up");

    // Failures on an authenticated connection.
    let calc = Node::builder().secret(SECRET).build().object(&address).await.unwrap();
    let failures = [
        ("fail", vec![Value::from(SECRET.len() as u64)]),
        ("explode", vec![]),
        ("no_such_method", vec![]),
        ("fail", vec![Value::from("not a number")]),
    ];
    for (method, args) in failures {
        let err = calc.call(method, args).await.unwrap_err();
        assert_error_keeps_secret(&err, method);
    }
    let err = DynObject::new(connection_of(&calc), Target::Name("nobody".into())).call("fail", []).await.unwrap_err();
    assert!(matches!(err, CallError::NoSuchObject(_)), "{err:#}");
    assert_error_keeps_secret(&err, "no such object");
    drop(calc);
    drop(server);
    tokio::time::sleep(Duration::from_millis(300)).await;

    let log = String::from_utf8(capture.0.lock().unwrap().clone()).unwrap();
    // The capture saw the failures it checks (so the check below is not vacuous).
    for want in ["handshake failed", "unauthorized", "no handshake from the peer", "call served", "explode"] {
        assert!(log.contains(want), "missing `{want}` in the trace:\n{log}");
    }
    assert_no_secret(&log, "the trace");
}

/// Fails in every way a method can.
pub struct Failing;

/// Fails.
#[dopy::remote]
impl Failing {
    /// Returns its own error.
    pub fn fail(&self, code: u64) -> Result<u64, String> {
        Err(format!("failed with code {code}"))
    }

    /// Panics.
    pub fn explode(&self) -> u64 {
        panic!("exploded on purpose")
    }
}
