//! The connection options every connecting subcommand takes: a shared secret (from an
//! environment variable or a file), TLS trust (`--ca`) and `--connect-timeout`, against real
//! secret-protected, TLS and silent servers.

#[path = "support/calculator.rs"]
mod calculator;
#[path = "../../tests/support/certs.rs"]
mod certs;
#[path = "support/run.rs"]
mod run;

use std::time::Duration;

use calculator::Calculator;
use dopy::naming::NameServer;
use dopy::Node;
use run::{dopy, dopy_env, TempDir};

const SECRET: &str = "open sesame";

/// A node requiring `SECRET`, serving a calculator as `calc`; returns it and the object's address.
async fn secret_server() -> (Node, String) {
    let node = Node::builder().name("secret-server").secret(SECRET).build();
    node.publish("calc", Calculator::default()).unwrap();
    let endpoint = node.listen("tcp://127.0.0.1:0").await.unwrap();
    (node, format!("{endpoint}/calc"))
}

/// `call`, `inspect` and `ping` reach a secret-protected node with the secret from an
/// environment variable or from a file; without it they fail with a hint naming the options.
#[tokio::test(flavor = "multi_thread")]
async fn call_inspect_and_ping_take_the_secret_from_env_or_file() {
    let (_server, calc) = secret_server().await;
    let dir = TempDir::new("secret");
    let secret_file = dir.file("secret");
    std::fs::write(&secret_file, format!("{SECRET}\n")).unwrap();
    let env = [("DOPY_TEST_SECRET", SECRET)];

    let run = dopy(&["call", &calc, "add", "2", "3"]).await;
    assert_eq!(run.code, Some(3), "{run:?}");
    assert!(run.stderr.contains("--secret-env VAR or --secret-file FILE"), "{}", run.stderr);

    for secret in [["--secret-env", "DOPY_TEST_SECRET"], ["--secret-file", &secret_file]] {
        let run = dopy_env(&["call", &calc, "add", "2", "3", secret[0], secret[1]], &env).await;
        assert_eq!((run.code, run.stdout.as_str()), (Some(0), "5\n"), "{secret:?}: {run:?}");
        let run = dopy_env(&["inspect", &calc, "add", secret[0], secret[1]], &env).await;
        assert_eq!(run.code, Some(0), "{secret:?}: {run:?}");
        assert!(run.stdout.contains("fn add(&self, a: i64, b: i64) -> i64;"), "{}", run.stdout);
        let run = dopy_env(&["ping", &calc, "-c", "1", secret[0], secret[1]], &env).await;
        assert_eq!(run.code, Some(0), "{secret:?}: {run:?}");
        assert!(run.stdout.contains("1 pongs received"), "{}", run.stdout);
    }

    std::fs::write(&secret_file, "another secret").unwrap();
    let run = dopy(&["call", &calc, "add", "2", "3", "--secret-file", &secret_file]).await;
    assert_eq!(run.code, Some(3), "{run:?}");
    assert!(run.stderr.contains("unauthorized") || run.stderr.contains("secret"), "{}", run.stderr);

    let missing = dir.file("no-such-file");
    let run = dopy(&["call", &calc, "add", "2", "3", "--secret-file", &missing]).await;
    assert_eq!(run.code, Some(2), "{run:?}");
    assert!(run.stderr.contains("cannot read the secret file"), "{}", run.stderr);
}

/// `dopy names` takes the same options: the secret from a file as from the environment.
#[tokio::test(flavor = "multi_thread")]
async fn names_take_the_secret_from_a_file() {
    let dir = TempDir::new("names-secret");
    let server = NameServer::open(dir.path().join("names.redb")).unwrap();
    let node = Node::builder().secret(SECRET).build();
    server.publish(&node).unwrap();
    let names = node.listen("tcp://127.0.0.1:0").await.unwrap().to_string();
    let secret_file = dir.file("secret");
    std::fs::write(&secret_file, SECRET).unwrap();
    let run = dopy(&["names", "--names", &names, "--secret-file", &secret_file, "register", "a", "tcp://h:1/a"]).await;
    assert_eq!(run.code, Some(0), "{run:?}");
    let run = dopy(&["names", "list", "--names", &names, "--secret-file", &secret_file]).await;
    assert_eq!(run.code, Some(0), "{run:?}");
    assert!(run.stdout.starts_with("a  tcp://h:1/a"), "{}", run.stdout);
}

/// A TLS node whose certificate a generated CA signed is reached with `--ca`; without it the
/// system's store does not trust it.
#[tokio::test(flavor = "multi_thread")]
async fn tls_node_is_trusted_through_the_ca_file() {
    let certs = certs::certs(&["127.0.0.1"]);
    let server = Node::builder().tls_server(certs.server()).build();
    server.publish("calc", Calculator::default()).unwrap();
    let calc = format!("{}/calc", server.listen("tls://127.0.0.1:0").await.unwrap());
    let dir = TempDir::new("tls");
    let ca = dir.file("ca.pem");
    std::fs::write(&ca, &certs.ca_pem).unwrap();

    let run = dopy(&["call", &calc, "add", "2", "3", "--ca", &ca]).await;
    assert_eq!((run.code, run.stdout.as_str()), (Some(0), "5\n"), "{run:?}");
    let run = dopy(&["ping", &calc, "-c", "1", "--ca", &ca]).await;
    assert_eq!(run.code, Some(0), "{run:?}");
    let run = dopy(&["call", &calc, "add", "2", "3"]).await;
    assert_eq!(run.code, Some(3), "{run:?}");

    let run = dopy(&["call", &calc, "add", "2", "3", "--ca", &dir.file("missing.pem")]).await;
    assert_eq!(run.code, Some(2), "{run:?}");
    assert!(run.stderr.contains("cannot read the CA file"), "{}", run.stderr);
}

/// `tls://` to a plain dopy port says what is likely wrong, as plain to TLS does.
#[tokio::test(flavor = "multi_thread")]
async fn tls_to_a_plain_port_hints_at_tcp() {
    let server = Node::new();
    server.publish("calc", Calculator::default()).unwrap();
    let port = server.listen("tcp://127.0.0.1:0").await.unwrap().to_string().rsplit(':').next().unwrap().to_owned();
    let certs = certs::certs(&["127.0.0.1"]);
    let dir = TempDir::new("tls-plain");
    let ca = dir.file("ca.pem");
    std::fs::write(&ca, &certs.ca_pem).unwrap();
    let run = dopy(&["call", &format!("tls://127.0.0.1:{port}/calc"), "add", "1", "2", "--ca", &ca]).await;
    assert_eq!(run.code, Some(3), "{run:?}");
    assert!(run.stderr.contains("is this a tcp:// endpoint?"), "{}", run.stderr);
}

/// A listener that accepts connections and never says anything; returns its address.
fn silent_listener() -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let address = format!("tcp://{}/calc", listener.local_addr().unwrap());
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for stream in listener.incoming() {
            held.push(stream);
        }
    });
    address
}

/// `--connect-timeout` bounds the whole set-up, handshake included: against a peer that
/// accepts and stays silent, 2 s fail after about 2 s, and 12 s wait past the handshake's own
/// 10 s default.
#[tokio::test(flavor = "multi_thread")]
async fn connect_timeout_bounds_the_handshake() {
    let silent = silent_listener();
    let short_args = ["inspect", &silent, "--connect-timeout", "2"];
    let long_args = ["call", &silent, "add", "1", "2", "--connect-timeout", "12"];
    let (short, long) = tokio::join!(dopy(&short_args), dopy(&long_args));
    assert_eq!(short.code, Some(3), "{short:?}");
    assert!(short.stderr.contains("no answer within 2s (the --connect-timeout)"), "{}", short.stderr);
    assert!(short.elapsed >= Duration::from_millis(1900) && short.elapsed < Duration::from_secs(8), "{short:?}");
    assert_eq!(long.code, Some(3), "{long:?}");
    assert!(long.stderr.contains("no answer within 12s"), "{}", long.stderr);
    assert!(long.elapsed >= Duration::from_millis(11_900), "{long:?}");
}
