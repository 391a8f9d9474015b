//! The workloads, generic over [`Client`]: each warms up, then measures.
//!
//! A workload returns what it measured in a form that adds up over the rounds a run is split
//! into (see `--rounds`): the samples of a latency workload, the work and the time of a
//! throughput workload.

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

impl Latency {
    /// The percentiles of `samples` (of every round together); `None` without a sample.
    pub fn of(mut samples: Vec<Duration>) -> Option<Latency> {
        if samples.is_empty() {
            return None;
        }
        samples.sort_unstable();
        let at = |q: f64| samples[((samples.len() - 1) as f64 * q).round() as usize];
        Some(Latency { p50: at(0.50), p99: at(0.99) })
    }
}

/// Work done by a throughput workload (calls, or MiB) and the time it took.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Done {
    /// Calls made, or MiB echoed.
    pub units: f64,
    /// Seconds the measured part took.
    pub secs: f64,
}

impl Done {
    /// The rate of several rounds together: all the work over all the time.
    pub fn rate(rounds: &[Done]) -> Option<f64> {
        let (units, secs) = rounds.iter().fold((0.0, 0.0), |(u, s), d| (u + d.units, s + d.secs));
        (secs > 0.0).then(|| units / secs)
    }
}

/// `n` sequential `add` calls: the time of each round trip.
pub async fn sequential<C: Client>(client: &C, n: usize) -> Vec<Duration> {
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
    samples
}

/// `n` `add` calls on one connection with `depth` always in flight.
pub async fn in_flight<C: Client>(client: &C, n: usize, depth: usize) -> Done {
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
    Done { units: n as f64, secs: started.elapsed().as_secs_f64() }
}

/// Longest the echo measurements of one run take, all rounds together: a contender that moves
/// bytes one by one (`Vec<u8>` as dynamic `Value`s) takes seconds per MiB, and its figure is
/// clear long before `n` echoes.
pub const ECHO_BUDGET: Duration = Duration::from_secs(3);

/// `n` sequential echoes of a 1 MiB buffer (the buffer that comes back is sent again), or as
/// many as fit in `budget`: MiB of payload echoed.
pub async fn echo<C: Client>(client: &C, bulk: Bulk, n: usize, budget: Duration) -> Done {
    let mut buf = C::make_buf(BULK_LEN);
    let warming = Instant::now();
    for _ in 0..(n / 10).max(2) {
        buf = client.echo(bulk, buf).await;
        if warming.elapsed() > budget / 3 {
            break;
        }
    }
    let started = Instant::now();
    let mut done = 0;
    while done < n && (done == 0 || started.elapsed() < budget) {
        buf = client.echo(bulk, buf).await;
        done += 1;
    }
    let secs = started.elapsed().as_secs_f64();
    assert_eq!(C::buf_len(&buf), BULK_LEN);
    Done { units: (done * BULK_LEN) as f64 / (1024.0 * 1024.0), secs }
}

/// One task per client (each on its own connection), each making `per_client` sequential `add`
/// calls: the calls of all clients together.
pub async fn fan_in<C: Client>(clients: &[C], per_client: usize) -> Done {
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
    Done { units: (clients.len() * per_client) as f64, secs: started.elapsed().as_secs_f64() }
}

/// `n` sequential calls returning the 10 KiB struct: the time of each round trip.
pub async fn report<C: Client>(client: &C, n: usize) -> Vec<Duration> {
    for _ in 0..(n / 10).max(10) {
        std::hint::black_box(client.report().await);
    }
    let mut samples = Vec::with_capacity(n);
    for _ in 0..n {
        let started = Instant::now();
        std::hint::black_box(client.report().await);
        samples.push(started.elapsed());
    }
    samples
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Rounds add up as one long run would: all the work over all the time, not a mean of the
    /// rounds' rates (a slow round weighs by its length).
    #[test]
    fn rounds_add_up_to_one_rate() {
        let rounds = [Done { units: 100.0, secs: 1.0 }, Done { units: 100.0, secs: 3.0 }];
        assert_eq!(Done::rate(&rounds), Some(50.0));
        assert_eq!(Done::rate(&[]), None);
    }

    /// Percentiles are taken over the samples of every round together.
    #[test]
    fn percentiles_of_all_samples() {
        let us = |n: u64| Duration::from_micros(n);
        let samples: Vec<Duration> = [vec![us(30); 50], (1..=51).map(us).collect()].concat();
        let l = Latency::of(samples).unwrap();
        assert_eq!(l.p50, us(30));
        assert_eq!(l.p99, us(50));
        assert!(Latency::of(Vec::new()).is_none());
    }
}
