//! Shared-secret authentication: the right secret connects on every transport; a wrong or
//! missing one is refused as unauthorized in the handshake, before anything reaches an object.

mod support;
use support::harness;

use std::collections::HashMap;
use std::error::Error as _;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use dopy::transport::handshake::{self, Role, Secret, FLAG_AUTH, HELLO};
use dopy::transport::TransportError;
use dopy::{Error, Node};
use harness::{demo, unique, SECRET};
use support::temp_dir;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Asserts that `err` is a connection refused by authentication, as a user sees it.
fn assert_unauthorized(err: &Error, context: &str) {
    assert!(matches!(err, Error::Connect { .. }), "{context}: {err}");
    assert!(format!("{err:#}").contains("unauthorized"), "{context}: {err:#}");
    let transport = err.source().and_then(|s| s.downcast_ref::<TransportError>());
    assert!(transport.is_some_and(TransportError::is_unauthorized), "{context}: {err:?}");
}

/// A server with a secret, publishing a calculator whose total counts the calls that got in.
async fn guarded(endpoint: &str, server: dopy::NodeBuilder) -> (Node, dopy::Endpoint) {
    let node = server.secret(SECRET).build();
    node.publish("calc", demo::Calculator::default()).unwrap();
    let endpoint = node.listen(endpoint).await.unwrap();
    (node, endpoint)
}

/// The calculator's total, read by a client that knows the secret.
async fn total(endpoint: &dopy::Endpoint, client: dopy::NodeBuilder) -> i64 {
    let calc: demo::CalculatorProxy =
        client.secret(SECRET).build().proxy(&endpoint.object("calc").to_string()).await.unwrap();
    calc.total().await.unwrap()
}

/// On TCP, TLS, a Unix socket and in memory, a client with the wrong secret and one with none
/// are both refused as unauthorized, while the right secret gets in.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_or_missing_secret_is_refused_on_every_listening_transport() {
    let dir = temp_dir("auth");
    let certs = harness::certs(&["127.0.0.1"]);
    let endpoints = [
        "tcp://127.0.0.1:0".to_owned(),
        "tls://127.0.0.1:0".to_owned(),
        format!("unix:{}", dir.path().join("auth.sock").display()),
        format!("memory://{}", unique("auth")),
    ];
    for endpoint in endpoints {
        let client = || Node::builder().tls_client(certs.client());
        let (_server, bound) = guarded(&endpoint, Node::builder().tls_server(certs.server())).await;
        let address = bound.object("calc").to_string();
        let err = client().secret("not the secret").build().object(&address).await.unwrap_err();
        assert_unauthorized(&err, &format!("wrong secret on {endpoint}"));
        let err = client().build().object(&address).await.unwrap_err();
        assert_unauthorized(&err, &format!("no secret on {endpoint}"));
        assert_eq!(total(&bound, client()).await, 0, "{endpoint}");
    }
}

/// A child process with a secret refuses a client without it, and the other way round: a
/// client with a secret refuses a server that does not prove it (authentication is mutual).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn authentication_is_mutual_over_a_child_process() {
    let guarded_child = format!(
        "exec:env DOPY_TEST_SECRET='{SECRET}' {}#calc",
        harness::serve_command("--secret-env DOPY_TEST_SECRET")
    );
    let err = Node::new().object(&guarded_child).await.unwrap_err();
    assert_unauthorized(&err, "client without a secret");
    let err = Node::builder().secret("guess").build().object(&guarded_child).await.unwrap_err();
    assert_unauthorized(&err, "client with the wrong secret");
    let open_child = format!("exec:{}#calc", harness::serve_command(""));
    let err = Node::builder().secret(SECRET).build().object(&open_child).await.unwrap_err();
    assert_unauthorized(&err, "server without a secret");
    let obj = Node::builder().secret(SECRET).build().object(&guarded_child).await.unwrap();
    assert_eq!(obj.call("add", [1.into(), 2.into()]).await.unwrap(), 3.into());
}

/// Counts the calls that reach it.
#[derive(Debug)]
pub struct Witness(Arc<AtomicUsize>);

/// Counts its calls.
#[dopy::remote]
impl Witness {
    /// Adds two numbers, and counts the call.
    pub fn add(&self, a: i64, b: i64) -> i64 {
        self.0.fetch_add(1, Ordering::SeqCst);
        a + b
    }
}

/// A raw client that skips or fakes authentication and sends a call right after its hello
/// reaches no object: the server closes the stream and the call never runs. The same call from
/// a raw client that follows PROTOCOL.md's authentication runs.
#[tokio::test]
async fn calls_sent_without_a_valid_proof_never_run() {
    let calls = Arc::new(AtomicUsize::new(0));
    let server = Node::builder().secret(SECRET).build();
    server.publish("calc", Witness(calls.clone())).unwrap();
    let dopy::Endpoint::Tcp { host, port } = server.listen("tcp://127.0.0.1:0").await.unwrap() else { unreachable!() };
    let connect = || tokio::net::TcpStream::connect((host.as_str(), port));
    // `add(2, 3)` on `calc`, framed (PROTOCOL.md, sections 1.3 and 3).
    let call = &vectors()["call-typed"];
    let frame = [&(call.len() as u32).to_le_bytes()[..], call].concat();
    let attempts: [Vec<u8>; 2] = [
        // No AUTH flag, straight to the call.
        [&HELLO[..], &frame].concat(),
        // AUTH, a nonce, a made-up proof, then the call.
        [&handshake::hello(FLAG_AUTH)[..], &[7u8; 32], &[0u8; 32], &frame].concat(),
    ];
    for bytes in attempts {
        let mut stream = connect().await.unwrap();
        stream.write_all(&bytes).await.unwrap();
        let mut answer = Vec::new();
        // The server answers with its hello (and nonce), then closes: never a proof, never a frame.
        let _ = harness::promptly("the server to close", stream.read_to_end(&mut answer)).await;
        assert!(answer.len() <= handshake::HELLO_LEN + handshake::NONCE_LEN, "{answer:02x?}");
    }
    assert_eq!(calls.load(Ordering::SeqCst), 0, "a call ran without authentication");

    // The same call, after the handshake done by hand as PROTOCOL.md describes it.
    let mut stream = connect().await.unwrap();
    let mut hello = [0u8; 8];
    stream.write_all(&handshake::hello(FLAG_AUTH)).await.unwrap();
    stream.read_exact(&mut hello).await.unwrap();
    assert_eq!(hello, handshake::hello(FLAG_AUTH));
    let (ours, mut theirs) = ([9u8; 32], [0u8; 32]);
    stream.write_all(&ours).await.unwrap();
    stream.read_exact(&mut theirs).await.unwrap();
    let secret = Secret::new(SECRET);
    stream.write_all(&handshake::proof(&secret, Role::Connector, &ours, &theirs)).await.unwrap();
    let mut proof = [0u8; 32];
    stream.read_exact(&mut proof).await.unwrap();
    assert_eq!(proof, handshake::proof(&secret, Role::Acceptor, &ours, &theirs), "the server knows the secret");
    stream.write_all(&frame).await.unwrap();
    let mut len = [0u8; 4];
    stream.read_exact(&mut len).await.unwrap();
    let mut reply = vec![0u8; u32::from_le_bytes(len) as usize];
    stream.read_exact(&mut reply).await.unwrap();
    assert_eq!(reply[..2], [0x01, 0x01], "a Return to call 1");
    assert_eq!(calls.load(Ordering::SeqCst), 1);
}

/// Reads the `vector NAME` / hex line pairs of PROTOCOL.md.
fn vectors() -> HashMap<String, Vec<u8>> {
    let text = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/PROTOCOL.md")).unwrap();
    let mut lines = text.lines();
    let mut out = HashMap::new();
    while let Some(line) = lines.next() {
        if let Some(name) = line.strip_prefix("vector ") {
            let bytes = lines.next().unwrap().split_whitespace().map(|b| u8::from_str_radix(b, 16).unwrap()).collect();
            out.insert(name.to_owned(), bytes);
        }
    }
    out
}

/// The authentication bytes of PROTOCOL.md (section 1.2) are what the implementation sends.
#[test]
fn authentication_vectors_match_the_implementation() {
    let v = vectors();
    assert_eq!(v["hello-auth"], handshake::hello(FLAG_AUTH));
    let secret = Secret::new("sesame");
    let (connector, acceptor) = ([1u8; 32], [2u8; 32]);
    assert_eq!(v["auth-proof-connector"], handshake::proof(&secret, Role::Connector, &connector, &acceptor));
    assert_eq!(v["auth-proof-acceptor"], handshake::proof(&secret, Role::Acceptor, &connector, &acceptor));
}
