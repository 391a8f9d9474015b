//! Catching panics of user methods, with their message, location and (on request) backtrace.
//!
//! A panic hook, installed once, records where a panic happened while a dopy call was being
//! polled (and only those: other panics go to the hook that was there before). The fault a
//! peer gets says what panicked and where (`file:line:column`), and nothing more: a backtrace
//! tells the peer about the server's build and file system, and capturing one costs
//! milliseconds, which any peer that can make a method panic could make the server spend at
//! will. So a backtrace is captured only if a node of the process asked to send them
//! ([`capture_backtraces`], `NodeBuilder::panic_backtraces`), or for the server's own log when
//! `RUST_BACKTRACE` / `RUST_LIB_BACKTRACE` ask for one (the standard library's rule).

use std::any::Any;
use std::backtrace::{Backtrace, BacktraceStatus};
use std::cell::{Cell, RefCell};
use std::future::Future;
use std::panic::{self, AssertUnwindSafe};
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Once, OnceLock};
use std::task::{Context, Poll};

use crate::codec::{Fault, FaultKind};

thread_local! {
    static IN_CALL: Cell<bool> = const { Cell::new(false) };
    /// The location of the last panic in a call on this thread, and its backtrace if one is
    /// to be sent.
    static LAST: RefCell<Option<(String, Option<String>)>> = const { RefCell::new(None) };
}

static HOOK: Once = Once::new();

/// Whether some node of this process sends backtraces to its peers: set by
/// [`capture_backtraces`], never unset.
static SEND: AtomicBool = AtomicBool::new(false);

/// Makes the panics of methods capture a backtrace, for the nodes that send them to their
/// peers (`Host::panic_backtraces`). Once called, every panic in a method of any node of the
/// process costs a capture (milliseconds); only the nodes that opted in send it.
pub fn capture_backtraces() {
    SEND.store(true, Ordering::Relaxed);
}

/// Whether the environment asks for backtraces in the server's own log (`RUST_BACKTRACE` or
/// `RUST_LIB_BACKTRACE`, as the standard library reads them; read once).
fn logged() -> bool {
    static LOGGED: OnceLock<bool> = OnceLock::new();
    *LOGGED.get_or_init(|| Backtrace::capture().status() == BacktraceStatus::Captured)
}

/// Installs the panic hook (idempotent).
pub fn install_hook() {
    HOOK.call_once(|| {
        let previous = panic::take_hook();
        panic::set_hook(Box::new(move |info| {
            if IN_CALL.with(Cell::get) {
                let location = info.location().map(|l| l.to_string()).unwrap_or_default();
                let send = SEND.load(Ordering::Relaxed);
                let bt = (send || logged()).then(|| Backtrace::force_capture().to_string());
                let what = message(info.payload());
                match bt.as_deref().filter(|_| logged()) {
                    Some(bt) => {
                        tracing::error!(target: "dopy::call", %location, "remote method panicked: {what}\n{bt}")
                    }
                    None => tracing::error!(target: "dopy::call", %location, "remote method panicked: {what}"),
                }
                LAST.with(|l| *l.borrow_mut() = Some((location, bt.filter(|_| send))));
            } else {
                previous(info);
            }
        }));
    });
}

fn message(payload: &(dyn Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_owned()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "panic with a non-string payload".to_owned()
    }
}

/// Turns a caught panic payload into a [`FaultKind::Panic`] fault.
pub fn fault(payload: Box<dyn Any + Send>) -> Box<Fault> {
    let mut fault = Fault::new(FaultKind::Panic, message(&*payload));
    if let Some((location, bt)) = LAST.with(|l| l.borrow_mut().take()) {
        if !location.is_empty() {
            fault.message = format!("{} (at {location})", fault.message);
        }
        fault.backtrace = bt;
    }
    Box::new(fault)
}

struct Flag(bool);

impl Flag {
    fn set() -> Flag {
        Flag(IN_CALL.with(|c| c.replace(true)))
    }
}

impl Drop for Flag {
    fn drop(&mut self) {
        IN_CALL.with(|c| c.set(self.0));
    }
}

/// Runs `f`, catching a panic.
pub fn catch<R>(f: impl FnOnce() -> R) -> Result<R, Box<Fault>> {
    let _flag = Flag::set();
    panic::catch_unwind(AssertUnwindSafe(f)).map_err(fault)
}

/// A future that turns a panic during any poll into an error.
pub struct CatchUnwind<F: ?Sized> {
    inner: Pin<Box<F>>,
}

impl<F: ?Sized> std::fmt::Debug for CatchUnwind<F> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("CatchUnwind")
    }
}

impl<F: Future + ?Sized> CatchUnwind<F> {
    /// Wraps a boxed future.
    pub fn new(inner: Pin<Box<F>>) -> Self {
        CatchUnwind { inner }
    }
}

impl<F: Future + ?Sized> Future for CatchUnwind<F> {
    type Output = Result<F::Output, Box<Fault>>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let inner = self.inner.as_mut();
        match catch(move || inner.poll(cx)) {
            Ok(Poll::Pending) => Poll::Pending,
            Ok(Poll::Ready(v)) => Poll::Ready(Ok(v)),
            Err(f) => Poll::Ready(Err(f)),
        }
    }
}
