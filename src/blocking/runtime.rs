//! [`Runtime`]: the tokio runtime behind blocking nodes and proxies, and the rule that decides
//! where a blocking call may block.

use std::cell::Cell;
use std::fmt;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use tokio::runtime::{Handle, RuntimeFlavor};

use crate::{CallError, Error};

/// The name of the threads of a blocking node's runtime.
pub(crate) const THREAD_NAME: &str = "dopy-blocking";

/// How long dropping the last handle to a runtime waits for its threads to finish, when it may
/// wait at all.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(1);

thread_local! {
    /// Whether this thread may block on a dopy call although a tokio runtime is current. True on
    /// the threads of a blocking node's runtime (the methods of the objects it serves may make
    /// blocking calls), and on a caller's thread while it blocks on a call (an object called
    /// directly, in the same process, may make blocking calls too). False on the threads of
    /// the program's own async runtimes, whose threads must not block.
    static MAY_BLOCK: Cell<bool> = const { Cell::new(false) };
}

/// The tokio runtime that a [`blocking::Node`](super::Node) and its proxies run on: a small
/// multi-threaded runtime whose threads are named `dopy-blocking`, started by the node.
///
/// Cheap to clone; it stops when the last node, proxy and clone using it is dropped.
#[derive(Clone)]
pub struct Runtime {
    shared: Arc<Shared>,
}

struct Shared {
    /// `None` only while being dropped.
    runtime: Option<tokio::runtime::Runtime>,
    /// The handle of `runtime`, kept apart so that it needs no unwrapping.
    handle: Handle,
    worker_threads: usize,
}

impl Drop for Shared {
    fn drop(&mut self) {
        let Some(runtime) = self.runtime.take() else { return };
        if Handle::try_current().is_ok() {
            // The last handle may go on one of the runtime's own threads, or in an async
            // context: waiting is not allowed there.
            runtime.shutdown_background();
        } else {
            runtime.shutdown_timeout(SHUTDOWN_GRACE);
        }
    }
}

impl fmt::Debug for Runtime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Runtime")
            .field("threads", &THREAD_NAME)
            .field("worker_threads", &self.shared.worker_threads)
            .finish()
    }
}

impl Runtime {
    /// Starts a runtime with `worker_threads` worker threads.
    pub(crate) fn new(worker_threads: usize) -> std::io::Result<Runtime> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(worker_threads)
            .thread_name(THREAD_NAME)
            .on_thread_start(|| MAY_BLOCK.set(true))
            .enable_all()
            .build()?;
        let handle = runtime.handle().clone();
        Ok(Runtime { shared: Arc::new(Shared { runtime: Some(runtime), handle, worker_threads }) })
    }

    /// The tokio handle, to spawn on the runtime or enter its context.
    pub(crate) fn handle(&self) -> &Handle {
        &self.shared.handle
    }

    /// Runs a future on this runtime to completion, blocking the calling thread: for the parts
    /// of dopy's API that exist in async form only.
    ///
    /// # Examples
    ///
    /// ```
    /// let node = dopy::blocking::Node::new();
    /// let endpoint = node.listen("tcp://127.0.0.1:0")?;
    /// // `Node::connect` has no blocking twin: run the async one.
    /// let client = dopy::blocking::Node::new();
    /// let conn = client.runtime().block_on(client.async_node().connect(&endpoint.to_string()))??;
    /// assert!(!conn.is_closed());
    /// # Ok::<(), dopy::Error>(())
    /// ```
    ///
    /// # Errors
    ///
    /// [`Error::Blocking`] when called from inside an async runtime (see the
    /// [module docs](super#where-blocking-calls-may-be-made)).
    pub fn block_on<F: Future>(&self, future: F) -> Result<F::Output, Error> {
        self.run(future).ok_or_else(|| refused("blocking::Runtime::block_on", "`.await` the future instead"))
    }

    /// Runs `future` to completion on this runtime, blocking the calling thread, or returns
    /// `None` without polling it when this thread must not block.
    pub(crate) fn run<F: Future>(&self, future: F) -> Option<F::Output> {
        let Ok(current) = Handle::try_current() else {
            // A plain thread: the usual case.
            return Some(self.block_here(future));
        };
        // A thread that may block, in a runtime where `block_in_place` can hand its work over
        // to another thread; anywhere else, blocking would stall an async runtime (or panic).
        if !MAY_BLOCK.get() || current.runtime_flavor() != RuntimeFlavor::MultiThread {
            return None;
        }
        Some(tokio::task::block_in_place(|| self.block_here(future)))
    }

    fn block_here<F: Future>(&self, future: F) -> F::Output {
        /// Restores the thread's flag, also when the future panics.
        struct Restore(bool);

        impl Drop for Restore {
            fn drop(&mut self) {
                MAY_BLOCK.set(self.0);
            }
        }

        let _restore = Restore(MAY_BLOCK.replace(true));
        self.shared.handle.block_on(future)
    }
}

/// Runs a call made through a blocking proxy: what the methods of generated blocking proxies
/// call (`::dopy::__private::blocking_call`).
///
/// # Errors
///
/// The call's own errors, or [`CallError::Blocking`] when the calling thread must not block.
pub fn blocking_call<T, E, F>(runtime: &Runtime, method: &str, call: F) -> Result<T, CallError<E>>
where
    F: Future<Output = Result<T, CallError<E>>>,
{
    runtime.run(call).unwrap_or_else(|| {
        let reason = refusal(method, "use the async proxy (`BlockingProxy::as_async`) and `.await` the call");
        Err(CallError::Blocking { reason })
    })
}

/// The error of a blocking operation (not a call) made where the thread must not block.
pub(crate) fn refused(call: &str, instead: &str) -> Error {
    Error::Blocking { reason: refusal(call, instead) }
}

/// Why a blocking operation was refused: `call` would block an async runtime's thread.
fn refusal(call: &str, instead: &str) -> String {
    format!("`{call}` was called from inside an async runtime, whose thread it would block; {instead}")
}
