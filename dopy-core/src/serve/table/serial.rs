//! Serial objects: one call at a time, in arrival order (an actor).
//!
//! A call takes a ticket when it arrives (synchronously, in the order the connection delivers
//! calls); it runs when the ticket comes up, and hands over to the next ticket when it ends —
//! or when it is cancelled, whether it ran or was still waiting.

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use tokio::sync::Notify;

/// The queue of a serial object.
#[derive(Debug, Default)]
pub(crate) struct Serial {
    next: AtomicU64,
    state: Mutex<State>,
    changed: Notify,
}

#[derive(Debug, Default)]
struct State {
    /// The ticket whose turn it is.
    serving: u64,
    /// Tickets given up before their turn (skipped when their turn comes).
    abandoned: BTreeSet<u64>,
}

/// A place in a serial object's queue; its turn ends when it is dropped.
#[derive(Debug)]
pub struct Ticket {
    queue: Arc<Serial>,
    number: u64,
}

impl Serial {
    /// Takes the next ticket.
    pub(crate) fn ticket(self: &Arc<Self>) -> Ticket {
        Ticket { queue: self.clone(), number: self.next.fetch_add(1, Ordering::Relaxed) }
    }
}

impl Ticket {
    /// Waits for this ticket's turn.
    pub(crate) async fn turn(&self) {
        loop {
            let changed = self.queue.changed.notified();
            tokio::pin!(changed);
            changed.as_mut().enable();
            if self.queue.state.lock().unwrap_or_else(|e| e.into_inner()).serving == self.number {
                return;
            }
            changed.await;
        }
    }
}

impl Drop for Ticket {
    fn drop(&mut self) {
        let mut state = self.queue.state.lock().unwrap_or_else(|e| e.into_inner());
        if state.serving == self.number {
            let State { serving, abandoned } = &mut *state;
            *serving += 1;
            while abandoned.remove(serving) {
                *serving += 1;
            }
        } else if self.number > state.serving {
            state.abandoned.insert(self.number);
        }
        drop(state);
        self.queue.changed.notify_waiters();
    }
}
