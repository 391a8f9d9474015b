//! The workloads, generic over [`Client`]: each warms up, then measures.

use std::time::{Duration, Instant};

use futures_util::stream::{FuturesUnordered, StreamExt};

use crate::client::Client;
use crate::data::{Bulk, BULK_LEN};

/// Latency percentiles of a sequential workload.
#[derive(Clone, Copy, Debug)]
pub struct Latency {
    /// Median.
    pub p50: Duration,
    /// 99th percentile.
    pub p99: Duration,
}

fn percentiles(mut samples: Vec<Duration>) -> Latency {
    samples.sort_unstable();
    let at = |q: f64| samples[((samples.len() - 1) as f64 * q).round() as usize];
    Latency { p50: at(0.50), p99: at(0.99) }
}

/// `n` sequential `add` calls: the latency of one round trip.
pub async fn sequential<C: Client>(client: &C, n: usize) -> Latency {
    for i in 0..(n / 10).max(10) {
        std::hint::black_box(client.add(i as i64, 1).await);
    }
    let mut samples = Vec::with_capacity(n);
    for i in 0..n {
        let started = Instant::now();
        let sum = client.add(i as i64, 1).await;
        samples.push(started.elapsed());
        assert_eq!(sum, i as i64 + 1);
    }
    percentiles(samples)
}

/// `n` `add` calls on one connection with `depth` always in flight: calls per second.
pub async fn in_flight<C: Client>(client: &C, n: usize, depth: usize) -> f64 {
    let run = |n: usize| async move {
        let mut calls = FuturesUnordered::new();
        let mut next = 0;
        while next < depth.min(n) {
            calls.push(client.add(next as i64, 1));
            next += 1;
        }
        while let Some(sum) = calls.next().await {
            std::hint::black_box(sum);
            if next < n {
                calls.push(client.add(next as i64, 1));
                next += 1;
            }
        }
    };
    run((n / 10).max(depth)).await;
    let started = Instant::now();
    run(n).await;
    n as f64 / started.elapsed().as_secs_f64()
}

/// Longest an echo measurement runs: a contender that moves bytes one by one (`Vec<u8>` as
/// dynamic `Value`s) takes seconds per MiB, and its figure is clear long before `n` echoes.
const ECHO_BUDGET: Duration = Duration::from_secs(3);

/// `n` sequential echoes of a 1 MiB buffer (the buffer that comes back is sent again), or as
/// many as fit in [`ECHO_BUDGET`]: MiB/s of payload echoed.
pub async fn echo<C: Client>(client: &C, bulk: Bulk, n: usize) -> f64 {
    let mut buf = C::make_buf(BULK_LEN);
    let warming = Instant::now();
    for _ in 0..(n / 10).max(2) {
        buf = client.echo(bulk, buf).await;
        if warming.elapsed() > ECHO_BUDGET / 3 {
            break;
        }
    }
    let started = Instant::now();
    let mut done = 0;
    while done < n && (done == 0 || started.elapsed() < ECHO_BUDGET) {
        buf = client.echo(bulk, buf).await;
        done += 1;
    }
    let elapsed = started.elapsed();
    assert_eq!(C::buf_len(&buf), BULK_LEN);
    (done * BULK_LEN) as f64 / (1024.0 * 1024.0) / elapsed.as_secs_f64()
}

/// One task per client (each on its own connection), each making `per_client` sequential `add`
/// calls: calls per second, all clients together.
pub async fn fan_in<C: Client>(clients: &[C], per_client: usize) -> f64 {
    let run = |n: usize| {
        let tasks: Vec<_> = clients
            .iter()
            .cloned()
            .map(|c| {
                tokio::spawn(async move {
                    for i in 0..n {
                        std::hint::black_box(c.add(i as i64, 1).await);
                    }
                })
            })
            .collect();
        async move {
            for t in tasks {
                t.await.expect("fan-in task");
            }
        }
    };
    run((per_client / 10).max(2)).await;
    let started = Instant::now();
    run(per_client).await;
    (clients.len() * per_client) as f64 / started.elapsed().as_secs_f64()
}

/// `n` sequential calls returning the 10 KiB struct: the latency of one round trip.
pub async fn report<C: Client>(client: &C, n: usize) -> Latency {
    for _ in 0..(n / 10).max(10) {
        std::hint::black_box(client.report().await);
    }
    let mut samples = Vec::with_capacity(n);
    for _ in 0..n {
        let started = Instant::now();
        std::hint::black_box(client.report().await);
        samples.push(started.elapsed());
    }
    percentiles(samples)
}
