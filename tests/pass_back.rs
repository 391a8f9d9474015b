//! What the API makes direct: a `Remote<T>` returned by one method passed back to a method
//! taking the object, by value or by reference; a proxy's `object()` and `with_timeout()`
//! without importing the `Proxy` trait; proxies on connections of their own.

// Test fixtures are not public API.
#![allow(missing_debug_implementations)]

use std::time::Duration;

use dopy::{CallError, Node, Remote};

/// A cursor over `pos..end`, passed by reference.
pub struct Cursor {
    pos: u32,
    end: u32,
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

/// Opens cursors and reads them.
pub struct Library;

/// A library.
#[dopy::remote]
impl Library {
    /// A new cursor over `0..end`, passed by reference.
    pub fn open(&self, end: u32) -> Remote<Cursor> {
        Remote::new(Cursor { pos: 0, end })
    }

    /// Reads the next value of a cursor it is given.
    pub async fn next_of(&self, cursor: CursorProxy) -> Option<u32> {
        cursor.advance().await.unwrap()
    }

    /// Sleeps, then answers.
    pub async fn nap(&self, millis: u64) -> u64 {
        tokio::time::sleep(Duration::from_millis(millis)).await;
        millis
    }
}

async fn library() -> (Node, String) {
    let node = Node::new();
    node.publish("library", Library).unwrap();
    let addr = node.listen("tcp://127.0.0.1:0").await.unwrap();
    (node, addr.object("library").to_string())
}

/// A `Remote<Cursor>` returned by the server goes back to a method taking a `CursorProxy` as
/// it is, by reference and then by value, and stays the same object.
#[tokio::test]
async fn a_returned_remote_passes_back_by_reference_and_by_value() {
    let (_server, url) = library().await;
    let library: LibraryProxy = Node::new().proxy(&url).await.unwrap();
    let cursor: Remote<Cursor> = library.open(3).await.unwrap();
    assert_eq!(library.next_of(&cursor).await.unwrap(), Some(0));
    assert_eq!(cursor.advance().await.unwrap(), Some(1), "the server advanced the same cursor");
    assert_eq!(library.next_of(cursor).await.unwrap(), Some(2));
}

/// A client's own `Remote`, and a plain proxy, pass the same way.
#[tokio::test]
async fn a_local_remote_and_a_proxy_pass_as_well() {
    let (_server, url) = library().await;
    let library: LibraryProxy = Node::new().proxy(&url).await.unwrap();
    let mine = Remote::new(Cursor { pos: 10, end: 12 });
    assert_eq!(library.next_of(&mine).await.unwrap(), Some(10));
    let proxy: CursorProxy = mine.into_proxy();
    assert_eq!(library.next_of(proxy.clone()).await.unwrap(), Some(11));
    assert_eq!(library.next_of(proxy).await.unwrap(), None);
}

/// The blocking proxy takes the `Remote` as it is too.
#[test]
fn the_blocking_proxy_takes_a_remote_as_it_is() {
    let server = dopy::blocking::Node::new();
    server.publish("library", Library).unwrap();
    let url = server.listen("tcp://127.0.0.1:0").unwrap().object("library");
    let library: LibraryBlockingProxy = dopy::blocking::Node::new().proxy(url).unwrap();
    let cursor = library.open(2).unwrap();
    assert_eq!(library.next_of(&cursor).unwrap(), Some(0));
    assert_eq!(library.next_of(cursor).unwrap(), Some(1));
}

/// `object()` and `with_timeout()` are the proxy's own methods: no trait to import.
#[tokio::test]
async fn object_and_with_timeout_need_no_import() {
    let (_server, url) = library().await;
    let library: LibraryProxy = Node::new().proxy(&url).await.unwrap();
    assert!(library.object().connection().is_some());
    let hurried = library.with_timeout(Duration::from_millis(50));
    let err = hurried.nap(5_000).await.unwrap_err();
    assert!(matches!(err, CallError::DeadlineExceeded(_)), "{err:#}");
    assert_eq!(library.nap(1).await.unwrap(), 1, "the original proxy has no deadline");
}

/// `proxy` shares one connection per endpoint; `proxy_on_new_connection` gives each proxy a
/// connection of its own, and all of them work.
#[tokio::test]
async fn proxies_on_new_connections_do_not_share() {
    let (_server, url) = library().await;
    let client = Node::new();
    let shared_a: LibraryProxy = client.proxy(&url).await.unwrap();
    let shared_b: LibraryProxy = client.proxy(&url).await.unwrap();
    let local_end = |p: &LibraryProxy| p.object().connection().unwrap().info().local.clone();
    assert_eq!(local_end(&shared_a), local_end(&shared_b));

    let mut own = Vec::new();
    for _ in 0..3 {
        own.push(client.proxy_on_new_connection::<LibraryProxy>(url.as_str()).await.unwrap());
    }
    let mut ends: Vec<String> = own.iter().map(local_end).collect();
    ends.push(local_end(&shared_a));
    ends.sort();
    ends.dedup();
    assert_eq!(ends.len(), 4, "each new connection is its own socket: {ends:?}");
    for (n, library) in (1..).zip(&own) {
        assert_eq!(library.nap(n).await.unwrap(), n);
    }
    let conn = client.connect_new(&url[..url.rfind('/').unwrap()]).await.unwrap();
    assert_ne!(conn.info().local, local_end(&shared_a));
    drop(client);
    assert_eq!(own[0].nap(1).await.unwrap(), 1, "a proxy outlives its node");
}
