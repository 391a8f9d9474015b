//! `dopy ping`: round-trip times of a connection, like ping.

use std::time::{Duration, Instant};

use crate::connect::ConnectOptions;
use crate::failure::{Code, Failure};

/// Examples for `dopy ping --help`.
pub(crate) const EXAMPLES: &str = "\
Examples (against the calculator `cargo run -p dopy-cli --example calc_server` serves):
  dopy ping tcp://127.0.0.1:9600                 # until Ctrl-C, then statistics
  dopy ping tcp://127.0.0.1:9600/calc -c 3       # an object's address pings its node
  dopy ping tcp://127.0.0.1:9600 -c 10 -i 200ms  # ten pings, 200 ms apart

Each ping is a protocol-level Ping answered by the node's Pong on one connection; the time
to connect (transport and handshake) is printed first. Exits with 0 if any pong came back.";

/// Pings the node at `address` `count` times (forever if `None`), `interval` apart.
pub(crate) async fn run(
    address: &str,
    count: Option<u64>,
    interval: Duration,
    timeout: Duration,
    options: &ConnectOptions,
) -> Result<(), Failure> {
    let node = options.node("dopy-cli")?;
    let started = Instant::now();
    let conn = crate::connect::connection(&node, address, options.connect_timeout).await?;
    let endpoint = conn.endpoint().to_owned();
    crate::emit(format_args!("PING {address}: connected in {}", millis(started.elapsed())))?;

    let interrupted = interrupted();
    tokio::pin!(interrupted);
    let mut stats = Stats::default();
    for seq in 1.. {
        let outcome = tokio::select! {
            outcome = tokio::time::timeout(timeout, conn.ping()) => outcome,
            () = &mut interrupted => break,
        };
        stats.sent += 1;
        match outcome {
            Ok(Ok(rtt)) => {
                stats.record(rtt);
                crate::emit(format_args!("pong from {endpoint}: seq={seq} time={}", millis(rtt)))?;
            }
            Ok(Err(e)) => {
                crate::emit(stats.summary(address))?;
                return Err(e.into());
            }
            Err(_) => crate::emit(format_args!("no pong for seq={seq} within {}", crate::seconds(timeout)))?,
        }
        if count.is_some_and(|c| seq >= c) {
            break;
        }
        tokio::select! {
            () = tokio::time::sleep(interval) => {}
            () = &mut interrupted => break,
        }
    }
    crate::emit(stats.summary(address))?;
    if stats.received == 0 {
        return Err(Failure::new(Code::Connection, format!("no pong from {address}")));
    }
    Ok(())
}

/// Completes on Ctrl-C; never, if the signal cannot be watched.
async fn interrupted() {
    if tokio::signal::ctrl_c().await.is_err() {
        std::future::pending::<()>().await;
    }
}

/// Round-trip statistics.
#[derive(Debug, Default)]
struct Stats {
    sent: u64,
    received: u64,
    min: Option<Duration>,
    max: Duration,
    total: Duration,
}

impl Stats {
    fn record(&mut self, rtt: Duration) {
        self.received += 1;
        self.min = Some(self.min.map_or(rtt, |m| m.min(rtt)));
        self.max = self.max.max(rtt);
        self.total += rtt;
    }

    fn summary(&self, address: &str) -> String {
        let lost = ((self.sent - self.received) * 100).checked_div(self.sent).unwrap_or(0);
        let mut out = format!(
            "--- {address} ping statistics ---\n{} pings sent, {} pongs received, {lost}% lost",
            self.sent, self.received
        );
        if let (Some(min), Ok(n)) = (self.min, u32::try_from(self.received)) {
            let avg = self.total / n;
            let ms = |d: Duration| format!("{:.3}", d.as_secs_f64() * 1e3);
            out += &format!("\nround-trip min/avg/max = {}/{}/{} ms", ms(min), ms(avg), ms(self.max));
        }
        out
    }
}

fn millis(d: Duration) -> String {
    format!("{:.3} ms", d.as_secs_f64() * 1e3)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statistics_count_losses_and_round_trips() {
        let mut stats = Stats { sent: 3, ..Stats::default() };
        stats.record(Duration::from_micros(100));
        stats.record(Duration::from_micros(300));
        let want = "--- tcp://h:1 ping statistics ---\n3 pings sent, 2 pongs received, 33% lost\n\
                    round-trip min/avg/max = 0.100/0.200/0.300 ms";
        assert_eq!(stats.summary("tcp://h:1"), want);
        assert!(!Stats { sent: 1, ..Stats::default() }.summary("x").contains("round-trip"));
    }
}
