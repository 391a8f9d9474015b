//! The blocking [`Node`], its [`NodeBuilder`], and the [`Stopper`] that ends [`Node::wait`].

use std::fmt;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use super::runtime::{refused, Runtime};
use super::{BlockingProxy, DynObject};
use crate::{Dispatch, Endpoint, Error, IntoAddress, Proxy};

/// The number of worker threads of a blocking node's runtime, unless set otherwise.
const DEFAULT_WORKER_THREADS: usize = 2;

/// Settings of a blocking node; start from [`Node::builder`].
///
/// # Examples
///
/// ```
/// let node = dopy::blocking::Node::builder()
///     .settings(dopy::Node::builder().name("sensor").secret("open sesame"))
///     .worker_threads(4)
///     .build()?;
/// assert_eq!(node.name(), "sensor");
/// # Ok::<(), dopy::Error>(())
/// ```
#[derive(Debug)]
pub struct NodeBuilder {
    settings: crate::NodeBuilder,
    worker_threads: usize,
}

impl NodeBuilder {
    /// The settings of the node itself (name, secret, TLS, limits, ...), as for an async
    /// [`dopy::Node`](crate::Node).
    pub fn settings(mut self, settings: crate::NodeBuilder) -> Self {
        self.settings = settings;
        self
    }

    /// How many threads serve calls and drive connections (default 2; at least 1).
    ///
    /// The methods of published objects run on these threads; a method that blocks occupies
    /// one while it runs (a blocking call it makes hands the thread's other work over first).
    pub fn worker_threads(mut self, threads: usize) -> Self {
        self.worker_threads = threads.max(1);
        self
    }

    /// Starts the node's runtime and creates the node.
    ///
    /// # Errors
    ///
    /// [`Error::Io`] if the runtime's threads cannot be started.
    pub fn build(self) -> Result<Node, Error> {
        let runtime = Runtime::new(self.worker_threads)?;
        // Whatever the node sets up when created belongs to its runtime.
        let node = {
            let _context = runtime.handle().enter();
            self.settings.build()
        };
        Ok(Node { node, runtime, stop: CancellationToken::new() })
    }
}

/// A dopy node for programs without an async runtime: publishes objects, listens, and hands out
/// blocking proxies, all through plain blocking methods.
///
/// It wraps an async [`dopy::Node`](crate::Node) ([`async_node`](Node::async_node)) and owns
/// the small runtime ([`Runtime`]) that serves its objects and drives its connections in the
/// background, on threads named `dopy-blocking`. Listening and serving go on while the program's
/// own threads do other things; [`wait`](Node::wait) parks a thread until a [`Stopper`] says
/// so.
///
/// Cheap to clone; clones share everything. As with the async node, listeners and accepted
/// connections stop when the last clone is dropped; the runtime stops once no node or proxy
/// uses it any more.
///
/// # Examples
///
/// ```
/// #[derive(Default)]
/// struct Counter { n: u64 }
///
/// #[dopy::remote]
/// impl Counter {
///     /// Adds one and returns the new count.
///     pub fn bump(&mut self) -> u64 { self.n += 1; self.n }
/// }
///
/// // No `#[tokio::main]`, no `.await`.
/// let server = dopy::blocking::Node::new();
/// server.publish("counter", Counter::default())?;
/// let addr = server.listen("tcp://127.0.0.1:0")?;
///
/// let client = dopy::blocking::Node::new();
/// let counter: CounterBlockingProxy = client.proxy(&addr.object("counter").to_string())?;
/// assert_eq!(counter.bump()?, 1);
/// assert_eq!(counter.bump()?, 2);
/// # Ok::<(), dopy::Error>(())
/// ```
#[derive(Clone)]
pub struct Node {
    node: crate::Node,
    runtime: Runtime,
    /// Cancelled by [`Stopper::stop`]: ends [`Node::wait`].
    stop: CancellationToken,
}

impl fmt::Debug for Node {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Node").field("node", &self.node).field("runtime", &self.runtime).finish_non_exhaustive()
    }
}

impl Default for Node {
    fn default() -> Self {
        Node::new()
    }
}

impl Node {
    /// Creates a node with the default settings, starting its runtime.
    ///
    /// # Panics
    ///
    /// If the runtime's threads cannot be started; [`NodeBuilder::build`] returns that error
    /// instead.
    pub fn new() -> Node {
        Node::builder().build().expect("the threads of a blocking dopy node could not be started")
    }

    /// Starts configuring a node.
    pub fn builder() -> NodeBuilder {
        NodeBuilder { settings: crate::Node::builder(), worker_threads: DEFAULT_WORKER_THREADS }
    }

    /// The async node inside: for the parts of the API without a blocking twin, and for
    /// async code that shares this node's objects and connections.
    pub fn async_node(&self) -> &crate::Node {
        &self.node
    }

    /// The runtime that serves this node's objects and drives its connections.
    pub fn runtime(&self) -> &Runtime {
        &self.runtime
    }

    /// The node's name, as it appears in error traces.
    pub fn name(&self) -> &str {
        self.node.name()
    }

    /// Makes an object reachable by name on every connection of this node; its methods run on
    /// the node's threads. See [`dopy::Node::publish`](crate::Node::publish).
    ///
    /// # Errors
    ///
    /// As [`dopy::Node::publish`](crate::Node::publish).
    pub fn publish<T: Dispatch>(&self, name: &str, object: T) -> Result<(), Error> {
        let _context = self.runtime.handle().enter();
        self.node.publish(name, object)
    }

    /// Makes an object reachable by name as a *serial* object (an actor): one call at a time,
    /// in arrival order. See [`dopy::Node::publish_serial`](crate::Node::publish_serial).
    ///
    /// # Errors
    ///
    /// As [`dopy::Node::publish`](crate::Node::publish).
    pub fn publish_serial<T: Dispatch>(&self, name: &str, object: T) -> Result<(), Error> {
        let _context = self.runtime.handle().enter();
        self.node.publish_serial(name, object)
    }

    /// Withdraws a published object; calls in progress finish. Returns whether it was published.
    pub fn unpublish(&self, name: &str) -> bool {
        let _context = self.runtime.handle().enter();
        self.node.unpublish(name)
    }

    /// The names of the published objects, sorted.
    pub fn published(&self) -> Vec<String> {
        self.node.published()
    }

    /// Listens on an endpoint and serves every published object there, in the background.
    /// Returns the bound endpoint. See [`dopy::Node::listen`](crate::Node::listen).
    ///
    /// # Errors
    ///
    /// As [`dopy::Node::listen`](crate::Node::listen); [`Error::Blocking`] inside an async
    /// runtime.
    pub fn listen(&self, endpoint: &str) -> Result<Endpoint, Error> {
        self.block_on("listen", self.node.listen(endpoint))?
    }

    /// Stops listening on one endpoint (as [`listen`](Node::listen) returned it); the node goes
    /// on serving elsewhere. Returns whether it was listening there.
    pub fn unlisten(&self, endpoint: &Endpoint) -> bool {
        self.node.unlisten(endpoint)
    }

    /// The endpoints this node listens on.
    pub fn listening(&self) -> Vec<Endpoint> {
        self.node.listening()
    }

    /// A typed blocking proxy (`CalculatorBlockingProxy`) to the object an address names, as
    /// text or as an [`Address`](crate::Address) ([`IntoAddress`]); `dopy::blocking::DynObject`
    /// works too.
    ///
    /// # Errors
    ///
    /// As [`dopy::Node::proxy`](crate::Node::proxy); [`Error::Blocking`] inside an async
    /// runtime.
    pub fn proxy<P: BlockingProxy>(&self, address: impl IntoAddress) -> Result<P, Error> {
        let object = self.block_on("proxy", self.node.object(address))??;
        Ok(P::from_async(P::Async::from_object(object), self.runtime.clone()))
    }

    /// A dynamic blocking handle to the object an address names.
    ///
    /// # Errors
    ///
    /// As [`dopy::Node::object`](crate::Node::object); [`Error::Blocking`] inside an async
    /// runtime.
    pub fn object(&self, address: impl IntoAddress) -> Result<DynObject, Error> {
        self.proxy(address)
    }

    /// Serves this node's objects over the process's own stdin/stdout until stdin closes: what
    /// a server started by an `exec:` or `ssh://` address does. See
    /// [`dopy::Node::serve_stdio`](crate::Node::serve_stdio).
    ///
    /// # Errors
    ///
    /// As [`dopy::Node::serve_stdio`](crate::Node::serve_stdio); [`Error::Blocking`] inside an
    /// async runtime.
    pub fn serve_stdio(&self) -> Result<(), Error> {
        self.block_on("serve_stdio", self.node.serve_stdio())?
    }

    /// Shuts the node down gracefully and returns when done: stops accepting connections,
    /// refuses new calls, lets the calls in flight finish for up to `grace`, then closes every
    /// connection. Ends [`wait`](Node::wait). See [`dopy::Node::shutdown`](crate::Node::shutdown).
    ///
    /// # Errors
    ///
    /// [`Error::Blocking`] inside an async runtime.
    pub fn shutdown(&self, grace: Duration) -> Result<(), Error> {
        self.block_on("shutdown", self.node.shutdown(grace))
    }

    /// Shuts the node down (with `grace` for calls in flight) when the process receives SIGINT
    /// (Ctrl-C) or SIGTERM, which also ends [`wait`](Node::wait).
    pub fn shutdown_on_signals(&self, grace: Duration) {
        let _context = self.runtime.handle().enter();
        self.node.shutdown_on_signals(grace);
    }

    /// A handle that ends [`wait`](Node::wait), from any thread (or from a method of a published
    /// object), without shutting the node down.
    pub fn stopper(&self) -> Stopper {
        Stopper { stop: self.stop.clone() }
    }

    /// Blocks the calling thread until a [`Stopper`] of this node is used or the node is shut
    /// down ([`shutdown`](Node::shutdown), or a signal after
    /// [`shutdown_on_signals`](Node::shutdown_on_signals)): the main loop of a server program with
    /// nothing else to do. The node serves in the background either way; after a `Stopper`, it
    /// goes on serving until it is shut down or dropped. Returns at once if it was stopped
    /// already.
    ///
    /// # Examples
    ///
    /// ```
    /// struct Service { stopper: dopy::blocking::Stopper }
    ///
    /// #[dopy::remote]
    /// impl Service {
    ///     /// Stops the server.
    ///     pub fn quit(&self) { self.stopper.stop() }
    /// }
    ///
    /// let server = dopy::blocking::Node::new();
    /// server.publish("service", Service { stopper: server.stopper() })?;
    /// let addr = server.listen("tcp://127.0.0.1:0")?;
    ///
    /// let client = std::thread::spawn(move || -> Result<(), dopy::Error> {
    ///     let node = dopy::blocking::Node::new();
    ///     let service: ServiceBlockingProxy = node.proxy(&addr.object("service").to_string())?;
    ///     Ok(service.quit()?)
    /// });
    /// server.wait()?; // returns once the client called `quit`
    /// client.join().unwrap()?;
    /// # Ok::<(), dopy::Error>(())
    /// ```
    ///
    /// # Errors
    ///
    /// [`Error::Blocking`] inside an async runtime.
    pub fn wait(&self) -> Result<(), Error> {
        self.block_on("wait", async {
            tokio::select! {
                () = self.stop.cancelled() => {}
                () = self.node.stopped() => {}
            }
        })
    }

    fn block_on<F: std::future::Future>(&self, call: &str, future: F) -> Result<F::Output, Error> {
        self.runtime.run(future).ok_or_else(|| {
            refused(&format!("blocking::Node::{call}"), "use the async node (`blocking::Node::async_node`) there")
        })
    }
}

/// Ends [`Node::wait`] on every thread waiting on its node; cheap to clone, `Send + Sync`.
#[derive(Clone, Debug)]
pub struct Stopper {
    stop: CancellationToken,
}

impl Stopper {
    /// Makes every [`Node::wait`] of the node return, now and from now on. The node keeps
    /// serving until it is dropped.
    pub fn stop(&self) {
        self.stop.cancel();
    }

    /// Whether [`stop`](Stopper::stop) was called.
    pub fn is_stopped(&self) -> bool {
        self.stop.is_cancelled()
    }
}
