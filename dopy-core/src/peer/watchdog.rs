//! The watchdog: heartbeats and the idle timeout, checked a few times per period by the
//! reader.

use super::*;

/// Watches a connection's signs of life and use, for its reader: sends a `Ping` after
/// [`Heartbeat::interval`] of silence, closes the connection after [`Heartbeat::timeout`] of
/// silence (the peer is gone) or after [`Host::idle_timeout`] without use.
///
/// It wakes a few times per period and compares counters: the frames the reader received, the
/// calls made either way; the hot path reads no clock and takes no lock for it.
pub(super) struct Watchdog {
    heartbeat: Option<Heartbeat>,
    idle_timeout: Option<Duration>,
    /// The time between checks.
    tick: Duration,
    ticks: tokio::time::Interval,
    /// The counters at the last check (`u64::MAX` before the first).
    received: u64,
    activity: u64,
    alive_at: Instant,
    used_at: Instant,
    pinged_at: Option<Instant>,
    ticked_at: Instant,
    /// Whether the last tick came late and was skipped.
    waited: bool,
}

impl Watchdog {
    /// The watchdog of a connection of `host`; `None` when it has neither heartbeat nor idle
    /// timeout.
    pub(super) fn new(host: &Host) -> Option<Watchdog> {
        let (heartbeat, idle_timeout) = (host.heartbeat, host.idle_timeout);
        let periods = [heartbeat.map(|h| h.interval), heartbeat.map(|h| h.timeout), idle_timeout];
        let shortest = periods.into_iter().flatten().min()?;
        // A sign of life is noticed at most one tick late.
        let tick = (shortest / 4).max(Duration::from_millis(1));
        let mut ticks = tokio::time::interval(tick);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let now = Instant::now();
        Some(Watchdog {
            heartbeat,
            idle_timeout,
            tick,
            ticks,
            received: u64::MAX,
            activity: u64::MAX,
            alive_at: now,
            used_at: now,
            pinged_at: None,
            ticked_at: now,
            waited: false,
        })
    }

    /// Waits for the next check (for ever without a watchdog).
    pub(super) async fn tick(watchdog: &mut Option<Watchdog>) {
        match watchdog {
            Some(w) => {
                w.ticks.tick().await;
            }
            None => std::future::pending().await,
        }
    }

    /// Checks the connection, `received` frames having arrived so far; closes it if the peer is
    /// gone or the connection idle.
    pub(super) fn check(&mut self, shared: &Arc<Shared>, received: u64) {
        let now = Instant::now();
        if received != self.received {
            self.received = received;
            self.alive_at = now;
        }
        // A tick this late means this process did not run (suspended, starved): what arrived
        // meanwhile may still wait to be read, so decide nothing before the reader has had a
        // tick to catch up (once: a runtime always late must still notice a dead peer).
        let stalled = now.duration_since(self.ticked_at) > self.tick * 2 && !self.waited;
        self.ticked_at = now;
        self.waited = stalled;
        if stalled {
            return;
        }
        if let Some(Heartbeat { interval, timeout }) = self.heartbeat {
            let silent = now.duration_since(self.alive_at);
            if silent >= timeout {
                let reason = DisconnectCause::HeartbeatTimeout { silent, timeout };
                tracing::info!(%reason, "peer gone");
                shared.close_with(Message::Abort { reason: reason.to_string() }, reason);
                return;
            }
            let since_ping = self.pinged_at.map_or(Duration::MAX, |at| now.duration_since(at));
            if silent >= interval && since_ping >= interval {
                self.pinged_at = Some(now);
                let nonce = shared.next_id.fetch_add(1, Ordering::Relaxed);
                if let Ok((frame, _)) = shared.encode::<Value>(Message::Ping { nonce }, Vec::new()) {
                    let _ = shared.send::<Value>(Out::Frame(frame));
                }
            }
        }
        if let Some(idle) = self.idle_timeout {
            let calls = shared.activity.load(Ordering::Relaxed);
            if calls != self.activity || !shared.is_idle() {
                self.activity = calls;
                self.used_at = now;
            } else if now.duration_since(self.used_at) >= idle {
                let reason = DisconnectCause::IdleTimeout { idle };
                tracing::debug!(%reason, "closing an idle connection");
                shared.close_with(Message::Goodbye, reason);
            }
        }
    }
}
