//! Every transport passes the same conformance suite, and one node serves on several at once.

#[macro_use]
mod support;
use support::harness;

use dopy::{Node, Value};
use harness::demo;
use support::temp_dir;

conformance! {
    tcp => harness::tcp(),
    tls => harness::tls(),
    unix => harness::unix(),
    memory => harness::memory(),
    exec => harness::exec(),
    tcp_with_secret => harness::tcp_with_secret(),
    memory_with_secret => harness::memory_with_secret(),
    exec_with_secret => harness::exec_with_secret(),
}

/// One node listening on TCP, a Unix socket and in memory at once serves the same object on
/// all three: updates made through one are seen through the others.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_node_serves_the_same_objects_on_several_transports() {
    let dir = temp_dir("several");
    let server = Node::new();
    server.publish("calc", demo::Calculator::default()).unwrap();
    let endpoints = [
        server.listen("tcp://127.0.0.1:0").await.unwrap(),
        server.listen(&format!("unix:{}", dir.path().join("s.sock").display())).await.unwrap(),
        server.listen(&format!("memory://{}", harness::unique("several"))).await.unwrap(),
    ];
    let client = Node::new();
    for (i, endpoint) in endpoints.iter().enumerate() {
        let obj = client.object(&endpoint.object("calc").to_string()).await.unwrap();
        assert_eq!(obj.call("accumulate", [Value::from(1)]).await.unwrap(), Value::Int(i as i64 + 1), "{endpoint}");
        assert_eq!(obj.connection().unwrap().info().transport, endpoint.scheme());
    }
}

/// The socket file of a Unix listener disappears when its node is dropped, and the path can be
/// listened on again.
#[tokio::test]
async fn unix_socket_file_is_removed_with_its_node() {
    let dir = temp_dir("unix-cleanup");
    let path = dir.path().join("app.sock");
    let endpoint = format!("unix:{}", path.display());
    let node = Node::new();
    node.listen(&endpoint).await.unwrap();
    assert!(path.exists());
    let err = Node::new().listen(&endpoint).await.unwrap_err();
    assert!(err.to_string().contains("cannot listen on"), "{err}");
    drop(node);
    harness::promptly("socket file removal", async {
        while path.exists() {
            tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        }
    })
    .await;
    Node::new().listen(&endpoint).await.unwrap();
}

/// An in-process name is taken while its node listens; connecting to an unknown one is refused
/// with the name in the error.
#[tokio::test]
async fn memory_names_are_unique_and_unknown_ones_refused() {
    let name = harness::unique("taken");
    let node = Node::new();
    node.listen(&format!("memory://{name}")).await.unwrap();
    let err = Node::new().listen(&format!("memory://{name}")).await.unwrap_err();
    assert!(err.to_string().contains("already exists"), "{err}");
    let err = Node::new().object("memory://nobody-listens-here/calc").await.unwrap_err();
    assert!(matches!(err, dopy::Error::Connect { .. }), "{err}");
    assert!(format!("{err:#}").contains("no in-process listener named `nobody-listens-here`"), "{err:#}");
}

/// Connect-only transports cannot be listened on, and say what to do instead.
#[tokio::test]
async fn exec_and_ssh_endpoints_cannot_be_listened_on() {
    for endpoint in ["exec:dopy-serve", "ssh://host"] {
        let err = Node::new().listen(endpoint).await.unwrap_err();
        assert!(matches!(err, dopy::Error::InvalidAddress { .. }), "{err}");
        assert!(err.to_string().contains("serve_stdio"), "{err}");
    }
}

/// An address without an object says how this transport names one.
#[tokio::test]
async fn missing_object_name_shows_the_form_for_the_transport() {
    let err = Node::new().object("unix:/run/app.sock").await.unwrap_err();
    assert!(err.to_string().contains("`unix:/run/app.sock#calc`"), "{err}");
}
