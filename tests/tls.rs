//! TLS (`tls://`): the client verifies the server's certificate chain and name; certificates
//! are generated for each test.

mod support;
use support::harness;

use dopy::{Error, Node};
use harness::{certs, demo};

/// A TLS server with a fresh certificate for `names`; returns it, its endpoint and the certs.
async fn tls_server(names: &[&str]) -> (Node, dopy::Endpoint, harness::Certs) {
    let certs = certs(names);
    let node = Node::builder().tls_server(certs.server()).build();
    node.publish("calc", demo::Calculator::default()).unwrap();
    let endpoint = node.listen("tls://127.0.0.1:0").await.unwrap();
    (node, endpoint, certs)
}

/// A client that trusts the server's CA calls through TLS; the link says so.
#[tokio::test]
async fn trusted_certificate_connects_and_calls() {
    let (_server, endpoint, certs) = tls_server(&["127.0.0.1"]).await;
    let client = Node::builder().tls_client(certs.client()).build();
    let calc: demo::CalculatorProxy = client.proxy(&endpoint.object("calc").to_string()).await.unwrap();
    assert_eq!(calc.add(20, 22).await.unwrap(), 42);
    assert_eq!(dopy::Proxy::object(&calc).connection().unwrap().info().transport, "tls");
}

/// A certificate signed by a CA the client does not trust is refused, by the client's default
/// (system) roots as by explicitly configured other roots.
#[tokio::test]
async fn untrusted_certificate_is_refused() {
    let (_server, endpoint, _certs) = tls_server(&["127.0.0.1"]).await;
    let other = certs(&["127.0.0.1"]);
    for client in [Node::builder().tls_client(other.client()).build(), Node::new()] {
        let err = client.connect(&endpoint.to_string()).await.unwrap_err();
        assert!(matches!(err, Error::Connect { .. }), "{err}");
        let text = format!("{err:#}");
        assert!(text.contains("certificate") || text.contains("system certificate store"), "{text}");
    }
}

/// A trusted certificate that names another host is refused: `tls://127.0.0.1` needs a
/// certificate for 127.0.0.1, and `tls://localhost` one for localhost.
#[tokio::test]
async fn certificate_for_another_name_is_refused() {
    let (_server, endpoint, certs) = tls_server(&["localhost"]).await;
    let client = Node::builder().tls_client(certs.client()).build();
    let err = client.connect(&endpoint.to_string()).await.unwrap_err();
    assert!(format!("{err:#}").contains("certificate not valid for name"), "{err:#}");
    let dopy::Endpoint::Tls { port, .. } = endpoint else { unreachable!() };
    client.connect(&format!("tls://localhost:{port}")).await.unwrap();
}

/// Plain TCP to a TLS listener, and TLS to a plain TCP listener, fail with a connection error
/// rather than hanging or decoding garbage.
#[tokio::test]
async fn plain_and_tls_ends_do_not_mix() {
    let (_server, endpoint, certs) = tls_server(&["127.0.0.1"]).await;
    let dopy::Endpoint::Tls { port, .. } = endpoint else { unreachable!() };
    let err = Node::new().connect(&format!("tcp://127.0.0.1:{port}")).await.unwrap_err();
    assert!(format!("{err:#}").contains("is this a tls:// endpoint?"), "{err:#}");
    let plain = Node::new();
    let tcp = plain.listen("tcp://127.0.0.1:0").await.unwrap();
    let dopy::Endpoint::Tcp { port, .. } = tcp else { unreachable!() };
    let client = Node::builder().tls_client(certs.client()).build();
    let err = client.connect(&format!("tls://127.0.0.1:{port}")).await.unwrap_err();
    assert!(matches!(err, Error::Connect { .. }), "{err}");
    assert!(format!("{err:#}").contains("is this a tcp:// endpoint?"), "{err:#}");
}

/// TLS and a shared secret combine: TLS authenticates the server, the secret both ends.
#[tokio::test]
async fn tls_and_a_shared_secret_combine() {
    let certs = certs(&["127.0.0.1"]);
    let server = Node::builder().tls_server(certs.server()).secret("s3cret").build();
    server.publish("calc", demo::Calculator::default()).unwrap();
    let address = server.listen("tls://127.0.0.1:0").await.unwrap().object("calc").to_string();
    let err = Node::builder().tls_client(certs.client()).build().object(&address).await.unwrap_err();
    assert!(format!("{err:#}").contains("unauthorized"), "{err:#}");
    let client = Node::builder().tls_client(certs.client()).secret("s3cret").build();
    let calc: demo::CalculatorProxy = client.proxy(&address).await.unwrap();
    assert_eq!(calc.add(1, 2).await.unwrap(), 3);
}

/// Listening on `tls://` without a certificate says which setting is missing.
#[tokio::test]
async fn listening_on_tls_needs_a_certificate() {
    let err = Node::new().listen("tls://127.0.0.1:0").await.unwrap_err();
    assert!(matches!(err, Error::InvalidAddress { .. }), "{err}");
    assert!(err.to_string().contains("NodeBuilder::tls_server"), "{err}");
}
