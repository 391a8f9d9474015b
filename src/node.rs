//! [`Node`]: DOPY's hub. Publishes objects, listens, connects, hands out proxies.

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use dopy_core::{Connection, Dispatch, Entry, Host, WeakConnection};
use dopy_core::{LocalDispatch, LocalExecutor};
use dopy_transport::LinkConfig;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use crate::{Endpoint, Error};

mod builder;
mod connect;
mod dial;
mod listen;

pub use builder::NodeBuilder;
use builder::Transports;

/// Why this build refuses `tls://` endpoints: TLS is compiled only with the cargo feature `tls`.
#[cfg(not(feature = "tls"))]
const NO_TLS: &str =
    "this build of dopy has no TLS: it needs the cargo feature `tls` of the `dopy` crate (on by default)";

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// A dopy node: the objects it publishes, the addresses it listens on, the connections it has.
///
/// Every connection is symmetric: a node that connects to another also serves its own
/// published objects to it. Cheap to clone; clones share everything. Listeners and accepted
/// connections stop when the last clone is dropped; connections this node opened live as long
/// as a proxy uses them.
///
/// # Examples
///
/// ```
/// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), dopy::Error> {
/// #[derive(Default)]
/// struct Counter { n: u64 }
///
/// #[dopy::remote]
/// impl Counter {
///     /// Adds one and returns the new count.
///     pub fn bump(&mut self) -> u64 { self.n += 1; self.n }
/// }
///
/// let server = dopy::Node::new();
/// server.publish("counter", Counter::default())?;
/// let addr = server.listen("tcp://127.0.0.1:0").await?;
///
/// let counter: CounterProxy = dopy::Node::new().proxy(&format!("{addr}/counter")).await?;
/// assert_eq!(counter.bump().await?, 1);
/// assert_eq!(counter.bump().await?, 2);
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct Node {
    inner: Arc<Inner>,
}

struct Inner {
    host: Arc<Host>,
    link: LinkConfig,
    transports: Transports,
    /// Connections this node opened, by endpoint, shared by every proxy to that endpoint.
    outgoing: Mutex<HashMap<Endpoint, WeakConnection>>,
    /// Connections this node opened for one user alone (`Node::connect_new`), closed on
    /// shutdown.
    dedicated: Mutex<Vec<WeakConnection>>,
    /// Connections peers opened to this node, closed when the node goes away.
    incoming: Mutex<Vec<Connection>>,
    /// Cancelled when the last `Node` clone is dropped, or on shutdown: stops the accept loops.
    stop: CancellationToken,
    /// The caps on accepted connections and on those still in their handshake.
    admission: listen::Admission,
    /// Each listener's own stop (a child of `stop`), to remove one while the others serve.
    listeners: Mutex<HashMap<Endpoint, CancellationToken>>,
    /// Cancelled when a shutdown has completed.
    shut_down: CancellationToken,
}

impl Drop for Inner {
    fn drop(&mut self) {
        self.stop.cancel();
        for conn in self.incoming.lock().unwrap_or_else(|e| e.into_inner()).drain(..) {
            conn.close();
        }
    }
}

impl fmt::Debug for Node {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Node").field("name", &self.inner.host.name).finish_non_exhaustive()
    }
}

impl Default for Node {
    fn default() -> Self {
        Node::new()
    }
}

impl Node {
    /// Creates a node with the default settings.
    pub fn new() -> Node {
        Node::builder().build()
    }

    /// The node's name, as it appears in error traces.
    pub fn name(&self) -> &str {
        &self.inner.host.name
    }

    /// The largest frame this node sends or accepts ([`NodeBuilder::max_frame`]).
    #[cfg(feature = "services")]
    pub(crate) fn max_frame(&self) -> usize {
        self.inner.host.max_frame
    }

    /// Makes an object reachable by name on every connection of this node.
    ///
    /// # Errors
    ///
    /// [`Error::NameTaken`] if an object is already published under `name`;
    /// [`Error::InvalidAddress`] if the name is empty or uses the reserved `dopy.` prefix.
    pub fn publish<T: Dispatch>(&self, name: &str, object: T) -> Result<(), Error> {
        self.publish_entry(name, Entry::new(name, object))
    }

    /// Makes an object reachable by name as a *serial* object (an actor): it takes one call at a
    /// time, in arrival order, so calls from one proxy run in the order they were sent.
    ///
    /// By default ([`publish`](Node::publish)) objects are concurrent: `&self` calls run in
    /// parallel and `&mut self` calls run alone.
    ///
    /// # Errors
    ///
    /// As [`publish`](Node::publish).
    pub fn publish_serial<T: Dispatch>(&self, name: &str, object: T) -> Result<(), Error> {
        self.publish_entry(name, Entry::serial(name, object))
    }

    /// Publishes a `!Send` object (one whose `impl` has `#[dopy::remote(local)]`: it may hold
    /// `Rc`s and `RefCell`s), served on the thread that runs the returned executor.
    ///
    /// Run the executor on the object's thread: `tokio::task::spawn_local(executor)` inside a
    /// `LocalSet`, or poll it in the program's own `select!` loop next to its other input
    /// channels (stdin, timers, sockets) — DOPY's reactors. With a single-threaded runtime,
    /// everything (connections, calls, the program's loop) runs on one thread. Calls wait until
    /// the executor runs; they fail with `NoSuchObject` once it is dropped.
    ///
    /// # Errors
    ///
    /// As [`publish`](Node::publish).
    ///
    /// # Examples
    ///
    /// ```
    /// use std::cell::RefCell;
    /// use std::rc::Rc;
    ///
    /// /// A counter with `!Send` state.
    /// pub struct Counter { n: Rc<RefCell<u64>> }
    ///
    /// #[dopy::remote(local)]
    /// impl Counter {
    ///     /// Adds one.
    ///     pub fn bump(&self) -> u64 { *self.n.borrow_mut() += 1; *self.n.borrow() }
    /// }
    ///
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), dopy::Error> {
    /// let local = tokio::task::LocalSet::new();
    /// local.run_until(async {
    ///     let node = dopy::Node::new();
    ///     let state = Rc::new(RefCell::new(0));
    ///     tokio::task::spawn_local(node.publish_local("counter", Counter { n: state.clone() })?);
    ///     let addr = node.listen("tcp://127.0.0.1:0").await?;
    ///     let counter = dopy::Node::new().object(&format!("{addr}/counter")).await?;
    ///     counter.call("bump", []).await?;
    ///     assert_eq!(*state.borrow(), 1);
    ///     Ok(())
    /// }).await
    /// # }
    /// ```
    pub fn publish_local<T: LocalDispatch>(&self, name: &str, object: T) -> Result<LocalExecutor, Error> {
        let (handle, executor) = dopy_core::local_object(object);
        self.publish_entry(name, Entry::new(name, handle))?;
        Ok(executor)
    }

    fn publish_entry(&self, name: &str, entry: Entry) -> Result<(), Error> {
        if name.is_empty() || name.starts_with(dopy_core::RESERVED_PREFIX) {
            return Err(Error::InvalidAddress {
                address: name.to_owned(),
                reason: "object names must be non-empty and must not start with `dopy.`".into(),
            });
        }
        if self.inner.host.table.publish(name, entry) {
            tracing::debug!(node = %self.name(), name, "published");
            Ok(())
        } else {
            Err(Error::NameTaken { name: name.to_owned() })
        }
    }

    /// Withdraws a published object; calls in progress finish. Returns whether it was published.
    pub fn unpublish(&self, name: &str) -> bool {
        self.inner.host.table.unpublish(name)
    }

    /// The names of the published objects, sorted.
    pub fn published(&self) -> Vec<String> {
        self.inner.host.table.names()
    }

    /// Listens on an endpoint and serves every published object there. Returns the bound
    /// endpoint.
    ///
    /// A node may listen on any number of endpoints at once (and serve its stdio too): every
    /// one serves the same objects. Listening stops when the last clone of the node is dropped.
    ///
    /// | endpoint | listens on |
    /// |---|---|
    /// | `tcp://HOST:PORT` | a TCP port (`127.0.0.1:0` picks a free one) |
    /// | `tls://HOST:PORT` | the same, with TLS (`NodeBuilder::tls_server` is required; cargo feature `tls`) |
    /// | `unix:PATH` | a Unix socket, created (replacing a stale one) and removed when done |
    /// | `memory://NAME` | in-process connections to `NAME` from any node of this process |
    ///
    /// # Examples
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), dopy::Error> {
    /// let node = dopy::Node::new();
    /// let tcp = node.listen("tcp://127.0.0.1:0").await?;
    /// let memory = node.listen("memory://doc-listen").await?;
    /// assert_eq!(memory.to_string(), "memory://doc-listen");
    /// dopy::Node::new().connect(&memory.to_string()).await?;
    /// # drop(tcp); Ok(()) }
    /// ```
    ///
    /// # Errors
    ///
    /// [`Error::InvalidAddress`] for a malformed endpoint or one that cannot be listened on
    /// (`exec:`, `ssh://`; `tls://` without a certificate, or in a build without the cargo
    /// feature `tls`), [`Error::Io`] if it cannot be bound.
    pub async fn listen(&self, endpoint: &str) -> Result<Endpoint, Error> {
        let endpoint: Endpoint = endpoint.parse()?;
        let (listener, bound) = listen::Listener::bind(&endpoint, &self.inner.transports).await?;
        let span = tracing::info_span!("dopy.listen", endpoint = %bound);
        tracing::info!(parent: &span, node = %self.name(), "listening");
        let stop = self.inner.stop.child_token();
        lock(&self.inner.listeners).insert(bound.clone(), stop.clone());
        tokio::spawn(listen::accept_loop(Arc::downgrade(&self.inner), listener, stop).instrument(span));
        Ok(bound)
    }

    /// Stops listening on one endpoint (as [`listen`](Node::listen) returned it); the node goes
    /// on serving its other listeners and the connections already open. Returns whether it was
    /// listening there.
    pub fn unlisten(&self, endpoint: &Endpoint) -> bool {
        match lock(&self.inner.listeners).remove(endpoint) {
            Some(stop) => {
                stop.cancel();
                true
            }
            None => false,
        }
    }

    /// The endpoints this node listens on.
    pub fn listening(&self) -> Vec<Endpoint> {
        lock(&self.inner.listeners).keys().cloned().collect()
    }

    /// Shuts the node down gracefully: stops accepting connections, refuses new calls (they get
    /// [`CallError::Cancelled`](crate::CallError::Cancelled), "shutting down"), lets the calls in flight finish for up to `grace`,
    /// then says `Goodbye` to every peer and closes every connection (calls still running after
    /// `grace` fail on their callers' side with [`CallError::Disconnected`](crate::CallError::Disconnected)). Returns when done; also
    /// wakes [`stopped`](Node::stopped).
    pub async fn shutdown(&self, grace: Duration) {
        let inner = &self.inner;
        tracing::info!(node = %self.name(), ?grace, "shutting down");
        inner.stop.cancel();
        lock(&inner.listeners).clear();
        inner.host.draining.store(true, std::sync::atomic::Ordering::Release);
        let incoming: Vec<Connection> = lock(&inner.incoming).clone();
        let deadline = tokio::time::Instant::now() + grace;
        while incoming.iter().any(|c| c.serving_count() > 0) && tokio::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        for conn in lock(&inner.incoming).drain(..) {
            conn.close();
        }
        let mut outgoing: Vec<Connection> = lock(&inner.outgoing).drain().filter_map(|(_, w)| w.upgrade()).collect();
        outgoing.extend(lock(&inner.dedicated).drain(..).filter_map(|w| w.upgrade()));
        for conn in outgoing {
            conn.close();
        }
        inner.shut_down.cancel();
        tracing::info!(node = %self.name(), "shut down");
    }

    /// Waits until the node has been shut down ([`shutdown`](Node::shutdown), or a signal with
    /// [`shutdown_on_signals`](Node::shutdown_on_signals)): the "main loop" of a server program.
    pub async fn stopped(&self) {
        self.inner.shut_down.cancelled().await
    }

    /// Shuts the node down (with `grace` for calls in flight) when the process receives SIGINT
    /// (Ctrl-C) or SIGTERM. Pair it with [`stopped`](Node::stopped).
    pub fn shutdown_on_signals(&self, grace: Duration) {
        let node = self.clone();
        tokio::spawn(async move {
            let interrupt = tokio::signal::ctrl_c();
            #[cfg(unix)]
            let terminate = async {
                match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                    Ok(mut s) => {
                        s.recv().await;
                    }
                    Err(_) => std::future::pending().await,
                }
            };
            #[cfg(not(unix))]
            let terminate = std::future::pending::<()>();
            tokio::select! {
                _ = interrupt => {}
                () = terminate => {}
                () = node.stopped() => return,
            }
            node.shutdown(grace).await;
        });
    }
}
