//! A server object that exercises every kind of traffic (plain calls, returned objects,
//! callbacks, oneway calls), with drop counters on everything passed by reference.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use dopy::Remote;

use super::wait::{eventually, holds_within};
use super::Tracked;

/// Counts live objects of a kind: created minus dropped.
#[derive(Clone, Debug, Default)]
pub struct Live(Arc<AtomicUsize>);

impl Live {
    /// A token counted until it is dropped.
    pub fn track(&self) -> Tracked {
        Tracked::new(&self.0)
    }

    /// How many are alive.
    pub fn get(&self) -> usize {
        self.0.load(Ordering::SeqCst)
    }

    /// Waits (up to `limit`) until the count is `n`, as releases travel asynchronously; returns
    /// the count then.
    pub async fn settle(&self, n: usize, limit: Duration) -> usize {
        holds_within(limit, || self.get() == n).await;
        self.get()
    }

    /// Waits (bounded, [`eventually`]) until the count is `n`, as releases travel
    /// asynchronously; panics if it does not get there.
    pub async fn settles_at(&self, n: usize) {
        eventually(&format!("{n} live objects (now {})", self.get()), || self.get() == n).await;
    }
}

/// A counter handed out by reference.
#[derive(Debug)]
pub struct Tally {
    n: u64,
    _live: Tracked,
}

/// A tally.
#[dopy::remote]
impl Tally {
    /// Adds `by` and returns the new value.
    pub fn bump(&mut self, by: u64) -> u64 {
        self.n = self.n.wrapping_add(by);
        self.n
    }
}

/// A callback object, on the client.
#[derive(Debug)]
pub struct Sink {
    /// Events received.
    pub seen: Arc<AtomicUsize>,
    /// How long each event takes to handle.
    pub delay: Duration,
    _live: Tracked,
}

impl Sink {
    /// A sink counted by `live`.
    pub fn new(live: &Live) -> Sink {
        Sink { seen: Arc::default(), delay: Duration::ZERO, _live: live.track() }
    }
}

/// A sink.
#[dopy::remote]
impl Sink {
    /// Receives an event; returns its length.
    pub async fn event(&self, text: String) -> usize {
        if !self.delay.is_zero() {
            tokio::time::sleep(self.delay).await;
        }
        self.seen.fetch_add(1, Ordering::SeqCst);
        text.len()
    }
}

/// The server object.
#[derive(Debug, Default)]
pub struct Hub {
    /// Tallies alive (server side).
    pub tallies: Live,
    /// Oneway notes received.
    pub notes: Arc<AtomicUsize>,
}

/// A hub.
#[dopy::remote]
impl Hub {
    /// Adds two numbers after `millis` ms.
    pub async fn add(&self, millis: u64, a: i64, b: i64) -> i64 {
        if millis > 0 {
            tokio::time::sleep(Duration::from_millis(millis)).await;
        }
        a.wrapping_add(b)
    }

    /// Echoes bytes after `millis` ms.
    pub async fn echo(&self, millis: u64, data: serde_bytes::ByteBuf) -> serde_bytes::ByteBuf {
        if millis > 0 {
            tokio::time::sleep(Duration::from_millis(millis)).await;
        }
        data
    }

    /// A new tally starting at `start`, returned by reference after `millis` ms.
    pub async fn open(&self, millis: u64, start: u64) -> Remote<Tally> {
        let tally = Remote::new(Tally { n: start, _live: self.tallies.track() });
        if millis > 0 {
            tokio::time::sleep(Duration::from_millis(millis)).await;
        }
        tally
    }

    /// Calls `sink` back `times` times, `millis` ms apart; returns the sum of its answers.
    pub async fn call_back(&self, sink: SinkProxy, times: u32, millis: u64) -> Result<u64, String> {
        let mut sum = 0;
        for i in 0..times {
            if millis > 0 {
                tokio::time::sleep(Duration::from_millis(millis)).await;
            }
            let len = sink.event(format!("event {i}")).await.map_err(|e| e.to_string())?;
            sum += len as u64;
        }
        Ok(sum)
    }

    /// Records a note; no reply.
    #[dopy(oneway)]
    pub fn note(&self, _text: String) {
        self.notes.fetch_add(1, Ordering::SeqCst);
    }

    /// How many notes arrived.
    pub fn notes(&self) -> usize {
        self.notes.load(Ordering::SeqCst)
    }
}
