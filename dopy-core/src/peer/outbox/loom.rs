//! Model check of the outbox's lock protocol with [loom](https://docs.rs/loom): every
//! interleaving (up to a bound on preemptions) of producers pushing frames, a reader pushing a
//! batch and ending it, and the writer task draining the queue.
//!
//! Run it (a few seconds in release mode, after the build; its own target directory, since the
//! cfg rebuilds every crate; CI runs it from `.ci/run`):
//!
//! ```text
//! RUSTFLAGS="--cfg dopy_loom" cargo test -p dopy-core --lib outbox::loom --release --target-dir target/loom
//! ```
//!
//! `LOOM_MAX_PREEMPTIONS` overrides the bound set here (a larger one explores more, for longer).
//!
//! What runs is the outbox's own code ([`Outbox::push`], [`Outbox::push_small`],
//! [`Outbox::batch`], [`Outbox::end_batch`], and the writer task's [`Outbox::poll_write`]
//! polled by loom's `block_on`) on a real [`FrameWriter`] over an in-memory stream that takes
//! every write at once. Under `--cfg dopy_loom` the queue and write-half mutexes, the `woken`
//! and `deferred` flags, the backlog counter, the writer's `AtomicWaker` and the reader's
//! thread-local batch are loom's (`sync.rs`), so loom schedules around each of them, and
//! explores the weak-memory outcomes of the atomics. Not modelled: the tokio `Notify` of a
//! reader stalled on the backlog, and the `stalled` flag (no reader stalls here; they stay
//! std's and tokio's), the connection's end (`Lifecycle`, std's, used only to stop the writer once
//! everything is written), a transport that makes the writer wait, acknowledged frames, last
//! frames and write failures.
//!
//! Two of the shim's loom types differ from loom's own, each to keep loom's approximations from
//! hiding or inventing interleavings (`sync.rs` says why): `AtomicBool::store` is a swap, and a
//! `Mutex`'s unlock and `try_lock` touch a shared atomic so that loom runs a `try_lock` just
//! before an unlock.
//!
//! It can fail: without the writer task's `woken.store(false)` after it registers its waker,
//! or without the wake at the end of a batch that found the write half taken, a run ends in a
//! deadlock (the frames queued and the writer task waiting).
//!
//! Each model checks, in every interleaving explored:
//!
//! - no lost wakeup: once the pushers are done, the writer task writes whatever they left
//!   without being woken by anything else (a lost wakeup leaves every thread blocked, which
//!   loom reports as a deadlock);
//! - every frame pushed is on the wire exactly once, and each pusher's frames in the order it
//!   pushed them;
//! - the backlog is back to zero.

use std::pin::Pin;
use std::sync::{Arc, Mutex as StdMutex};
use std::task::{Context, Poll};

use loom::thread;
use tokio::io::AsyncWrite;
use tokio_util::codec::Decoder;

use super::{Lifecycle, Out, Outbox};
use crate::codec::{Encoded, Message, Small};
use dopy_transport::{frame, FrameWriter};

/// The preemptions explored per execution, unless `LOOM_MAX_PREEMPTIONS` says otherwise.
const PREEMPTIONS: usize = 2;

/// A byte stream that takes every write at once and keeps the bytes.
#[derive(Clone, Default)]
struct Wire(Arc<StdMutex<Vec<u8>>>);

impl Wire {
    fn len(&self) -> usize {
        self.0.lock().expect("not poisoned").len()
    }

    /// The payloads of the frames written so far.
    fn frames(&self) -> Vec<Vec<u8>> {
        let mut bytes = bytes::BytesMut::from(&self.0.lock().expect("not poisoned")[..]);
        let mut codec = frame::codec(1 << 20);
        let mut frames = Vec::new();
        while let Some(f) = codec.decode_eof(&mut bytes).expect("whole frames") {
            frames.push(f.to_vec());
        }
        frames
    }
}

impl AsyncWrite for Wire {
    fn poll_write(self: Pin<&mut Self>, _: &mut Context<'_>, buf: &[u8]) -> Poll<std::io::Result<usize>> {
        self.0.lock().expect("not poisoned").extend_from_slice(buf);
        Poll::Ready(Ok(buf.len()))
    }

    fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

/// How a frame is pushed.
#[derive(Clone, Copy, Debug)]
enum Push {
    /// [`Outbox::push_small`]: written in place into a run of small frames.
    Small,
    /// [`Outbox::push`] of a whole frame.
    Whole,
}

/// The payload of frame `seq` of pusher `who`, unique to both.
fn payload(who: u64, seq: u64, how: Push) -> Vec<u8> {
    let id = who * 100 + seq;
    match how {
        Push::Small => Small::TypedReturn { id, result: &[] }.encode().expect("a small frame").to_vec(),
        Push::Whole => Message::Pong { nonce: id }.encode().expect("a pong").to_vec(),
    }
}

/// Pushes frame `seq` of pusher `who`.
fn push(outbox: &Outbox, who: u64, seq: u64, how: Push) {
    let id = who * 100 + seq;
    match how {
        Push::Small => {
            let msg = Small::TypedReturn { id, result: &[] };
            outbox.push_small(&msg, msg.len()).expect("the writer is running");
        }
        Push::Whole => {
            let frame = Message::Pong { nonce: id }.encode().expect("a pong");
            assert!(outbox.push(Out::Frame(Encoded::Whole(frame))).is_ok(), "the writer is running");
        }
    }
}

/// A pusher: its frames, and how many it pushes per batch as the reader does
/// (`Outbox::batch`, then `Outbox::end_batch` after the batch's last frame), or 0: one by one,
/// each waking the writer task.
struct Pusher {
    frames: &'static [Push],
    batch: usize,
}

/// Runs the pushers and the writer task in every interleaving loom explores, and checks the
/// properties listed in the module docs.
fn check(pushers: &'static [Pusher]) {
    let mut model = loom::model::Builder::new();
    if model.preemption_bound.is_none() {
        model.preemption_bound = Some(PREEMPTIONS);
    }
    model.check(move || {
        let wire = Wire::default();
        let outbox = Outbox::new(FrameWriter::new(Box::new(wire.clone()), 1 << 20));
        let ended = Arc::new(Lifecycle::default());
        let total: usize = pushers
            .iter()
            .enumerate()
            .flat_map(|(who, p)| p.frames.iter().enumerate().map(move |(seq, &how)| (who, seq, how)))
            .map(|(who, seq, how)| frame::HEADER_LEN + payload(who as u64, seq as u64, how).len())
            .sum();

        let writer = {
            let (outbox, ended, wire) = (outbox.clone(), ended.clone(), wire.clone());
            thread::spawn(move || {
                loom::future::block_on(std::future::poll_fn(|cx| match outbox.poll_write(cx, &ended) {
                    // Closed: only once `ended` is set, with everything written.
                    Poll::Ready(()) => Poll::Ready(()),
                    Poll::Pending if wire.len() == total => Poll::Ready(()),
                    Poll::Pending => Poll::Pending,
                }));
            })
        };
        let threads: Vec<_> = pushers
            .iter()
            .enumerate()
            .map(|(who, pusher)| {
                let outbox = outbox.clone();
                thread::spawn(move || {
                    let mut seq = 0;
                    for frames in pusher.frames.chunks(pusher.batch.max(1)) {
                        let batch = (pusher.batch > 0).then(|| outbox.batch());
                        for &how in frames {
                            push(&outbox, who as u64, seq, how);
                            seq += 1;
                        }
                        if let Some(batch) = batch {
                            drop(batch);
                            outbox.end_batch();
                        }
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().expect("a pusher");
        }
        // The pushers are done. If something is still unwritten, the writer task alone can
        // write it, and must, with no other wake than the pushers': nothing more wakes it
        // (a lost wakeup is a deadlock). Else it may rightly wait for more: the end of the
        // connection stops it.
        if wire.len() == total {
            ended.end();
        }
        writer.join().expect("the writer");

        let frames = wire.frames();
        let mut seen = vec![0; pushers.len()];
        for f in &frames {
            let (who, seq) = pushers
                .iter()
                .enumerate()
                .find_map(|(who, p)| {
                    let seq = p
                        .frames
                        .iter()
                        .enumerate()
                        .position(|(seq, &how)| payload(who as u64, seq as u64, how) == *f)?;
                    Some((who, seq))
                })
                .expect("a frame that was pushed");
            assert_eq!(seen[who], seq, "pusher {who}'s frames in order, each once");
            seen[who] += 1;
        }
        let pushed: Vec<_> = pushers.iter().map(|p| p.frames.len()).collect();
        assert_eq!(seen, pushed, "every frame written");
        assert_eq!(outbox.backlog(), 0, "the backlog drained");
    });
}

/// Two producers (calls from two tasks) push frames of both kinds while the writer drains.
#[test]
fn producers_and_the_writer() {
    check(&[
        Pusher { frames: &[Push::Small, Push::Whole], batch: 0 },
        Pusher { frames: &[Push::Small, Push::Small], batch: 0 },
    ]);
}

/// The reader pushes a batch and ends it (writing it itself when the write path is idle) while
/// a producer pushes and the writer drains.
#[test]
fn a_reader_batch_among_producers() {
    check(&[
        Pusher { frames: &[Push::Small, Push::Whole], batch: 2 },
        Pusher { frames: &[Push::Small, Push::Small], batch: 0 },
    ]);
}

/// The reader ends a batch while the writer task may still be writing its previous one (the
/// end of a batch finds the write half taken and must leave the batch to the writer task).
#[test]
fn reader_batches_one_after_the_other() {
    check(&[Pusher { frames: &[Push::Small, Push::Whole, Push::Small], batch: 1 }]);
}
