//! Catching panics of user methods, with their message and backtrace.
//!
//! A panic hook, installed once, records a backtrace for panics that happen while a dopy call is
//! being polled (and only those: other panics go to the hook that was there before).

use std::any::Any;
use std::backtrace::Backtrace;
use std::cell::{Cell, RefCell};
use std::future::Future;
use std::panic::{self, AssertUnwindSafe};
use std::pin::Pin;
use std::sync::Once;
use std::task::{Context, Poll};

use crate::message::{Fault, FaultKind};

thread_local! {
    static IN_CALL: Cell<bool> = const { Cell::new(false) };
    static LAST: RefCell<Option<(String, String)>> = const { RefCell::new(None) };
}

static HOOK: Once = Once::new();

/// Installs the panic hook (idempotent).
pub fn install_hook() {
    HOOK.call_once(|| {
        let previous = panic::take_hook();
        panic::set_hook(Box::new(move |info| {
            if IN_CALL.with(Cell::get) {
                let location = info.location().map(|l| l.to_string()).unwrap_or_default();
                let bt = Backtrace::force_capture().to_string();
                tracing::error!(target: "dopy::call", %location, "remote method panicked: {}", message(info.payload()));
                LAST.with(|l| *l.borrow_mut() = Some((location, bt)));
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
        fault.backtrace = Some(bt);
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
