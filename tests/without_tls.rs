//! A build without the cargo feature `tls` refuses `tls://` endpoints with an error that names
//! the feature. Run with `cargo test -p dopy --no-default-features --test without_tls` (with the
//! default features this file holds no test: TLS itself is tested by `tests/tls.rs`).
#![cfg(not(feature = "tls"))]

use dopy::{Error, Node};

/// Asserts that `err` is an invalid-address error naming the cargo feature `tls`.
fn assert_names_the_feature(err: &Error) {
    assert!(matches!(err, Error::InvalidAddress { .. }), "{err:?}");
    let text = err.to_string();
    assert!(text.contains("cargo feature `tls`"), "{text}");
}

/// Connecting to, or getting an object at, a `tls://` address says that TLS needs the feature.
#[tokio::test]
async fn connecting_to_tls_without_the_feature_names_it() {
    let node = Node::new();
    let err = node.connect("tls://127.0.0.1:1").await.unwrap_err();
    assert_names_the_feature(&err);
    let err = node.object("tls://127.0.0.1:1/calc").await.unwrap_err();
    assert_names_the_feature(&err);
}

/// Listening on a `tls://` endpoint says that TLS needs the feature.
#[tokio::test]
async fn listening_on_tls_without_the_feature_names_it() {
    let err = Node::new().listen("tls://127.0.0.1:0").await.unwrap_err();
    assert_names_the_feature(&err);
}
