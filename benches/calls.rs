//! Call round trips over loopback TCP: a sequential typed `add`, a dynamic `add`, and 64 calls
//! in flight on one connection.
//!
//! ```sh
//! cargo bench --bench calls
//! ```

// criterion_group! generates undocumented items.
#![allow(missing_docs)]

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use dopy::{Node, Value};

/// The benchmark's object.
#[derive(Debug)]
pub struct Adder;

/// Adds.
#[dopy::remote]
impl Adder {
    /// Adds two numbers.
    pub fn add(&self, a: i64, b: i64) -> i64 {
        a + b
    }
}

fn calls(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let (_server, proxy, dynamic) = rt.block_on(async {
        let server = Node::new();
        server.publish("adder", Adder).unwrap();
        let addr = server.listen("tcp://127.0.0.1:0").await.unwrap();
        let client = Node::new();
        let proxy: AdderProxy = client.proxy(&format!("{addr}/adder")).await.unwrap();
        let dynamic = client.object(&format!("{addr}/adder")).await.unwrap();
        (server, proxy, dynamic)
    });

    let mut group = c.benchmark_group("tcp");
    group.throughput(Throughput::Elements(1));
    group.bench_function("typed add, sequential", |b| {
        b.to_async(&rt).iter(|| async { proxy.add(2, 3).await.unwrap() });
    });
    group.bench_function("dynamic add, sequential", |b| {
        b.to_async(&rt).iter(|| async { dynamic.call("add", [Value::Int(2), Value::Int(3)]).await.unwrap() });
    });
    group.throughput(Throughput::Elements(64));
    group.bench_function("typed add, 64 in flight", |b| {
        b.to_async(&rt).iter(|| async {
            let calls = (0..64).map(|i| proxy.add(i, 1));
            for r in futures_util::future::join_all(calls).await {
                r.unwrap();
            }
        });
    });
    group.finish();
}

criterion_group!(benches, calls);
criterion_main!(benches);
