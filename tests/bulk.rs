//! Bulk data with `dopy::Bytes` over a real TCP connection: large buffers as arguments and
//! results arrive intact, whether they travel uncopied (the common case), beside an object
//! reference in either direction (the message is then written whole), inside other values, or to a dynamic
//! caller.

use dopy::{Bytes, Node, Remote, Value};

/// A block of `len` bytes whose content depends on `seed` and on each byte's position.
fn block(len: usize, seed: u8) -> Bytes {
    Bytes::from((0..len).map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed)).collect::<Vec<_>>())
}

/// A stored blob, handed out by reference.
#[derive(Debug)]
pub struct Blob {
    data: Bytes,
}

#[dopy::remote]
impl Blob {
    /// The blob's size.
    pub fn size(&self) -> u64 {
        self.data.len() as u64
    }
}

/// Moves bytes around.
#[derive(Debug, Default)]
pub struct Store;

#[dopy::remote]
impl Store {
    /// The same bytes back.
    pub fn echo(&self, data: Bytes) -> Bytes {
        data
    }

    /// The buffers one after the other, with a label and their count.
    pub fn concat(&self, label: String, parts: Vec<Bytes>) -> (String, Bytes, u32) {
        let mut out = Vec::new();
        parts.iter().for_each(|p| out.extend_from_slice(p));
        (label, Bytes::from(out), parts.len() as u32)
    }

    /// The bytes back, with a reference to a blob holding them (a result with references).
    pub fn keep(&self, data: Bytes) -> (Bytes, Remote<Blob>) {
        (data.clone(), Remote::new(Blob { data }))
    }

    /// The bytes back, with the size of the caller's blob, asked of it (arguments with
    /// references).
    pub async fn weigh(&self, data: Bytes, blob: BlobProxy) -> (Bytes, u64) {
        let size = blob.size().await.expect("the caller's blob answers");
        (data, size)
    }
}

async fn serve() -> (Node, String) {
    let node = Node::new();
    node.publish("store", Store).unwrap();
    let addr = node.listen("tcp://127.0.0.1:0").await.unwrap();
    (node, format!("{addr}/store"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn large_buffers_arrive_intact_every_way_they_travel() {
    let (_server, url) = serve().await;
    let client = Node::new();
    let store: StoreProxy = client.proxy(&url).await.unwrap();

    // Sizes around the sharing threshold (4 KiB) and well above the link's copy limit.
    for (i, len) in [0, 100, 4095, 4096, 4097, 70_000, 1 << 20].into_iter().enumerate() {
        let data = block(len, i as u8);
        assert_eq!(store.echo(data.clone()).await.unwrap(), data, "echo of {len} bytes");
    }

    // Several large buffers and small ones mixed, in both directions.
    let parts = vec![block(10_000, 1), block(10, 2), block(300_000, 3), block(5_000, 4)];
    let expected: Vec<u8> = parts.iter().flat_map(|p| p.iter().copied()).collect();
    let (label, joined, count) = store.concat("mixed".into(), parts).await.unwrap();
    assert_eq!((label.as_str(), &joined[..], count), ("mixed", &expected[..], 4));

    // Beside a reference: the reply carries a reference table and is written whole.
    let data = block(200_000, 9);
    let (back, blob) = store.keep(data.clone()).await.unwrap();
    assert_eq!(back, data);
    assert_eq!(blob.into_proxy().size().await.unwrap(), 200_000);

    // Arguments beside a reference (the caller's own object, called back): the call carries
    // a reference table and is written whole.
    let data = block(150_000, 7);
    let mine = Remote::new(Blob { data: block(12_345, 8) });
    let (back, size) = store.weigh(data.clone(), mine.into_proxy()).await.unwrap();
    assert_eq!((back, size), (data, 12_345));

    // A dynamic caller sends and receives `Value::Bytes`.
    let object = client.object(&url).await.unwrap();
    let data = block(100_000, 5);
    let back = object.call("echo", vec![Value::Bytes(data.to_vec())]).await.unwrap();
    assert_eq!(back, Value::Bytes(data.to_vec()));
}

/// In the same process, a handle that calls the object directly (no connection): arguments
/// and results in parts are decoded all the same.
#[tokio::test]
async fn large_buffers_reach_an_object_in_the_same_process() {
    use dopy::Proxy;
    let store = StoreProxy::from_object(dopy::DynObject::in_process(Store));
    let data = block(50_000, 7);
    assert_eq!(store.echo(data.clone()).await.unwrap(), data);
    let (label, joined, count) = store.concat("local".into(), vec![data.clone(), block(3, 1)]).await.unwrap();
    assert_eq!((label.as_str(), joined.len(), count), ("local", 50_003, 2));
}
