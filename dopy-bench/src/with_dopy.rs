//! dopy: the benchmark object, published on a node listening on loopback TCP.

use dopy::{Node, Remote};

use crate::data::Report;

/// The benchmark object: the same methods as the raw and tarpc servers.
#[derive(Debug)]
pub struct BenchObject {
    report: Report,
}

/// The benchmark's methods.
/// Every method is short and never blocks, so each is `#[dopy(inline)]`: served in the
/// connection's reader, as the raw server serves its calls.
#[dopy::remote]
impl BenchObject {
    /// `a + b`.
    #[dopy(inline)]
    pub fn add(&self, a: i64, b: i64) -> i64 {
        a + b
    }

    /// The same bytes back, as `Vec<u8>` (serialized byte by byte).
    #[dopy(inline)]
    pub fn echo_vec(&self, data: Vec<u8>) -> Vec<u8> {
        data
    }

    /// The same bytes back, as `dopy::Bytes` (the byte type for bulk data: one slice, received
    /// without a copy).
    #[dopy(inline)]
    pub fn echo_bytes(&self, data: dopy::Bytes) -> dopy::Bytes {
        data
    }

    /// A 10 KiB struct.
    #[dopy(inline)]
    pub fn report(&self) -> Report {
        self.report.clone()
    }

    /// A new object, passed by reference: each call exports one more object to the caller.
    pub fn export(&self) -> Remote<Leaf> {
        Remote::new(Leaf)
    }
}

/// The object [`BenchObject::export`] passes by reference.
#[derive(Debug)]
pub struct Leaf;

/// One method, so that the object is callable.
#[dopy::remote]
impl Leaf {
    /// Answers 1.
    pub fn ping(&self) -> u8 {
        1
    }
}

/// The name the benchmark object is published under.
pub const NAME: &str = "bench";

/// Starts a node serving [`BenchObject`] on a free loopback port; returns the node (which keeps
/// serving while it lives) and the object's address.
///
/// # Panics
///
/// If no loopback port can be bound.
pub async fn serve() -> (Node, String) {
    // The memory workload exports 100,000 objects on one connection (default limit 65,536).
    let node = Node::builder().max_exports(1 << 20).build();
    node.publish(NAME, BenchObject { report: Report::sample() }).expect("publish");
    let endpoint = node.listen("tcp://127.0.0.1:0").await.expect("listen");
    (node, format!("{endpoint}/{NAME}"))
}
