//! The future of a call on a connection: [`CallTo`].
//!
//! It is written by hand rather than as an `async fn` to keep it small. Every move of a call's
//! future copies it: into a task, a `FuturesUnordered`, a `join!`. An `async fn` keeps its
//! arguments, every local that lives across an await and the futures it awaits, each in a
//! place of its own. So the proxy method, `call_typed`, `invoke` and `call_to` together made
//! a future of 608 bytes for `add(i64, i64)`. This one holds the call's arguments until its
//! first poll, then only what waiting for the reply needs: the reply slot's guard, the slot
//! permit, the deadline's timer (boxed, only with a deadline) and the start time.
//!
//! The rare path (every slot taken, so the call waits for one) stays an `async fn`, boxed.

use std::future::Future;
use std::marker::PhantomData;
use std::pin::Pin;
use std::sync::atomic::Ordering;
use std::task::{ready, Context, Poll, Waker};
use std::time::{Duration, Instant};

use tokio::sync::{oneshot, OwnedSemaphorePermit};
use tokio::time::Sleep;

use super::{Awaited, Out, PendingGuard, Shared};
use crate::codec::session::DepthLimit;
use crate::codec::{flags, Args, CallRef, Fault, FaultKind, Outcome, Payload, Target};
use crate::error::CallSite;
use crate::handle::DynObject;
use crate::value::Value;
use crate::CallError as Error;

/// What a call yields: its outcome and the references the outcome carries.
pub(crate) type Returned = (Outcome, Vec<DynObject>);

/// An error made on this side of a call: none carries a method's own error value.
type Failure = Error<std::convert::Infallible>;

/// A call on a connection (see [`Connection::call_to`](crate::handle::Connection::call_to)):
/// nothing is sent before its first poll; dropping it after that cancels the call (`Cancel` is
/// sent).
pub(crate) struct CallTo<'a, E> {
    shared: &'a Shared,
    target: &'a Target,
    method: &'a str,
    state: State<'a>,
    _error: PhantomData<fn() -> E>,
}

/// Where a [`CallTo`] is.
enum State<'a> {
    /// Not polled yet.
    Start { args: Args, refs: Vec<DynObject>, flags: u32, deadline: Option<Instant> },
    /// Sent; waiting for the reply.
    Waiting { guard: PendingGuard<'a>, _permit: OwnedSemaphorePermit, timer: Option<Pin<Box<Sleep>>>, started: Instant },
    /// A oneway call, queued; waiting until its frame is written to the transport.
    Written {
        written: oneshot::Receiver<()>,
        _permit: OwnedSemaphorePermit,
        timer: Option<Pin<Box<Sleep>>>,
        started: Instant,
    },
    /// Waiting for a free slot first (all were taken).
    Slow(Pin<Box<dyn Future<Output = Result<Returned, Failure>> + Send + 'a>>),
    /// Completed.
    Done,
}

impl<'a, E> CallTo<'a, E> {
    pub(super) fn new(
        shared: &'a Shared,
        target: &'a Target,
        method: &'a str,
        args: Args,
        refs: Vec<DynObject>,
        flags: u32,
        deadline: Option<Instant>,
    ) -> Self {
        CallTo { shared, target, method, state: State::Start { args, refs, flags, deadline }, _error: PhantomData }
    }

    fn poll_call(&mut self, cx: &mut Context<'_>) -> Poll<Result<Returned, Failure>> {
        let shared = self.shared;
        loop {
            match &mut self.state {
                State::Start { .. } => {
                    let State::Start { args, refs, flags, deadline } = std::mem::replace(&mut self.state, State::Done)
                    else {
                        unreachable!("the state was just seen")
                    };
                    let started = Instant::now();
                    // A free slot is taken without yielding, so that a call is sent when first
                    // polled (calls polled in order are sent in order).
                    let (target, method) = (self.target, self.method);
                    let call = Call { shared, target, method, args, refs, flags, deadline, started };
                    let Ok(permit) = shared.slots.clone().try_acquire_owned() else {
                        self.state = State::Slow(Box::pin(wait_for_slot(call)));
                        continue;
                    };
                    self.state = match send(call, permit, Some(cx.waker())) {
                        Ok(state) => state,
                        Err(e) => return Poll::Ready(Err(e)),
                    };
                    // The reply slot wakes this task: only a deadline's timer is left to poll.
                    if let State::Waiting { timer: None, .. } = self.state {
                        return Poll::Pending;
                    }
                }
                State::Waiting { guard, timer, started, .. } => {
                    if let Poll::Ready(delivery) = Pin::new(&mut Awaited { shared, id: guard.id }).poll(cx) {
                        tracing::debug!(
                            target: "dopy::call",
                            endpoint = %shared.endpoint,
                            method = self.method,
                            id = guard.id,
                            elapsed_us = started.elapsed().as_micros() as u64,
                            ok = matches!(delivery, Ok((Outcome::Ok(_), _))),
                            "call returned"
                        );
                        // The poll removed the slot: nothing is left for the guard to do.
                        if let State::Waiting { guard, .. } = std::mem::replace(&mut self.state, State::Done) {
                            std::mem::forget(guard);
                        }
                        return Poll::Ready(delivery.map_err(Error::Disconnected));
                    }
                    let waited = ready!(poll_timer(timer, *started, cx));
                    // Dropping the guard cancels the call.
                    self.state = State::Done;
                    let why = format!("no reply to `{}` within {waited:?}; the call was cancelled", self.method);
                    return Poll::Ready(Err(self.expired(why)));
                }
                State::Written { written, timer, started, .. } => {
                    if let Poll::Ready(written) = Pin::new(written).poll(cx) {
                        self.state = State::Done;
                        return Poll::Ready(match written {
                            Ok(()) => Ok((Outcome::Ok(Payload::Dynamic(Value::Unit)), Vec::new())),
                            Err(_) => Err(shared.disconnected()),
                        });
                    }
                    // A transport that takes nothing (a stalled peer) must not hold the caller
                    // past its deadline. The frame stays queued: it may still go out later.
                    let waited = ready!(poll_timer(timer, *started, cx));
                    self.state = State::Done;
                    let why = format!("oneway call `{}` not written to the transport within {waited:?}", self.method);
                    return Poll::Ready(Err(self.expired(why)));
                }
                State::Slow(rest) => {
                    let returned = ready!(rest.as_mut().poll(cx));
                    self.state = State::Done;
                    return Poll::Ready(returned);
                }
                State::Done => panic!("a call's future was polled after it completed"),
            }
        }
    }
}

impl<E> CallTo<'_, E> {
    /// The error of a call whose deadline passed.
    fn expired(&self, why: String) -> Failure {
        fault_here(self.shared, self.target, self.method, FaultKind::DeadlineExceeded, why)
    }
}

/// Ready, with how long the call has waited, once its deadline's timer fires (never without a
/// deadline).
fn poll_timer(timer: &mut Option<Pin<Box<Sleep>>>, started: Instant, cx: &mut Context<'_>) -> Poll<Duration> {
    match timer {
        Some(timer) => {
            ready!(timer.as_mut().poll(cx));
            Poll::Ready(started.elapsed())
        }
        None => Poll::Pending,
    }
}

impl<E> Future for CallTo<'_, E> {
    type Output = Result<Returned, Error<E>>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        self.get_mut().poll_call(cx).map(|r| r.map_err(|e| e.map_method(|never| match never {})))
    }
}

/// A fault made on this side, at the call's site.
fn fault_here(shared: &Shared, target: &Target, method: &str, kind: FaultKind, message: String) -> Failure {
    let site = CallSite { endpoint: shared.endpoint.clone(), object: target.to_string(), method: method.to_owned() };
    Error::from_fault(Fault::new(kind, message), site, |_| None)
}

/// The timer of a deadline, if any.
fn timer(deadline: Option<Instant>) -> Option<Pin<Box<Sleep>>> {
    deadline.map(|d| Box::pin(tokio::time::sleep_until(d.into())))
}

/// A call about to be sent: what [`send`] needs.
struct Call<'a, 'b> {
    shared: &'a Shared,
    target: &'b Target,
    method: &'b str,
    args: Args,
    refs: Vec<DynObject>,
    flags: u32,
    deadline: Option<Instant>,
    /// When the call was first polled.
    started: Instant,
}

/// Encodes and queues a call that has its slot: the state that waits for its reply (its slot
/// wakes `waker`, if given), or for its frame to be written (a oneway call).
fn send<'a>(call: Call<'a, '_>, permit: OwnedSemaphorePermit, waker: Option<&Waker>) -> Result<State<'a>, Failure> {
    let Call { shared, target, method, args, refs, flags: call_flags, deadline, started } = call;
    let remaining = match deadline {
        None => None,
        Some(d) => match d.checked_duration_since(Instant::now()) {
            Some(left) if !left.is_zero() => Some(u64::try_from(left.as_micros()).unwrap_or(u64::MAX).max(1)),
            _ => {
                return Err(fault_here(
                    shared,
                    target,
                    method,
                    FaultKind::DeadlineExceeded,
                    format!("the deadline of `{method}` passed before it was sent"),
                ))
            }
        },
    };
    let id = shared.next_id.fetch_add(1, Ordering::Relaxed);
    shared.activity.fetch_add(1, Ordering::Relaxed);
    // Encoded from the caller's target and method: no copies.
    let mut msg = CallRef {
        id,
        target,
        method,
        refs: Vec::new(),
        args: &args,
        flags: call_flags,
        deadline: remaining,
        chain: crate::serve::chain::for_outgoing_call(),
    };
    // The common call (small arguments, no references, a reply awaited) is written in place,
    // behind the reply slot it needs.
    if refs.is_empty() && call_flags & flags::ONEWAY == 0 {
        let max_depth = shared.host.max_depth;
        let small = msg.small(max_depth).map(|m| (m.len(), m));
        if let Some((len, small)) = small.filter(|(len, _)| *len <= shared.host.max_frame) {
            let (rx, awaited) = shared.register_counted(id, waker)?;
            let mut guard = PendingGuard { shared, id: rx.id, armed: true };
            // Alone in flight, the call is written at once; among others, by the writer task,
            // which gathers the frames queued meanwhile into one write.
            let send =
                || if awaited == 1 { shared.send_small_now(&small, len) } else { shared.send_small(&small, len) };
            let sent = if let Args::Typed(_) = args {
                send()
            } else {
                // Values are written with the node's nesting limit, as `small` measured them.
                let _limit = DepthLimit::set(max_depth);
                send()
            };
            if let Err(e) = sent {
                // Nothing went out: the slot goes, with no `Cancel` for the peer.
                guard.armed = false;
                return Err(e);
            }
            return Ok(State::Waiting { guard, _permit: permit, timer: timer(deadline), started });
        }
    }
    let (frame, exported) = shared.encode_mut(&mut msg, refs)?;
    drop(args);
    if call_flags & flags::ONEWAY != 0 {
        let (ack, written) = oneshot::channel();
        if shared.send::<std::convert::Infallible>(Out::Acked(frame, ack)).is_err() {
            shared.unexport(&exported.ids);
            return Err(shared.disconnected());
        }
        drop(exported.held);
        return Ok(State::Written { written, _permit: permit, timer: timer(deadline), started });
    }
    // The connection has ended: the references exported for this call go too.
    let rx = shared.register(id, waker).inspect_err(|_| shared.unexport(&exported.ids))?;
    // If the future is dropped before the reply arrives: forget the slot, tell the peer.
    let guard = PendingGuard { shared, id: rx.id, armed: true };
    shared.send_or_unexport(frame, exported)?;
    Ok(State::Waiting { guard, _permit: permit, timer: timer(deadline), started })
}

/// A call that found every slot taken: waits for one (up to the node's `overload_wait`, or
/// the deadline), then goes on as any call.
async fn wait_for_slot(call: Call<'_, '_>) -> Result<Returned, Failure> {
    let Call { shared, target, method, deadline, started, .. } = call;
    let wait = match deadline {
        Some(d) => shared.host.overload_wait.min(d.saturating_duration_since(started)),
        None => shared.host.overload_wait,
    };
    let Ok(Ok(permit)) = tokio::time::timeout(wait, shared.slots.clone().acquire_owned()).await else {
        if deadline.is_some_and(|d| Instant::now() >= d) {
            return Err(fault_here(
                shared,
                target,
                method,
                FaultKind::DeadlineExceeded,
                format!("no slot for `{method}` before the deadline"),
            ));
        }
        return Err(fault_here(
            shared,
            target,
            method,
            FaultKind::Overloaded,
            format!(
                "{} calls already in flight on this connection; none finished within {wait:?}",
                shared.host.max_in_flight
            ),
        ));
    };
    let state = send(call, permit, None)?;
    CallTo::<std::convert::Infallible> { shared, target, method, state, _error: PhantomData }.await
}
