//! The methods of a [`Connection`] handle (declared in `handle`), its weak form, and a raw
//! [`Request`].

use super::*;

impl fmt::Debug for Connection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let shared = self.shared();
        f.debug_struct("Connection")
            .field("endpoint", &self.endpoint())
            .field("link", &shared.info)
            .field("phase", &shared.life.phase())
            .finish()
    }
}

/// A weak handle: does not keep the connection open.
#[derive(Clone, Debug)]
pub struct WeakConnection {
    owner: Weak<CloseOnDrop>,
}

impl WeakConnection {
    /// The connection, if some handle still keeps it open and it has not ended.
    pub fn upgrade(&self) -> Option<Connection> {
        let owner = self.owner.upgrade()?;
        let conn = Connection { state: owner.0.clone(), owner: Some(owner) };
        (!conn.is_closed()).then_some(conn)
    }
}

impl Connection {
    /// The connection's state, which [`Connection`] holds opaque.
    pub(super) fn shared(&self) -> &Shared {
        let state: &dyn Any = &*self.state;
        state.downcast_ref().expect("a connection's state is the peer's")
    }

    /// Starts serving a link this side opened (connected, dialled, spawned): spawns its reader
    /// and writer tasks on the current tokio runtime. The connection closes when the last
    /// handle to it (and every proxy using it) is dropped.
    pub fn open(link: Link, host: Arc<Host>, endpoint: String) -> Connection {
        Connection::start(link, host, endpoint, true)
    }

    /// Starts serving a link the peer opened (accepted by a listener, a process serving its own
    /// stdio): spawns its reader and writer tasks on the current tokio runtime. The connection
    /// lives until the peer closes it, it is closed, or the node shuts down.
    pub fn accept(link: Link, host: Arc<Host>, endpoint: String) -> Connection {
        Connection::start(link, host, endpoint, false)
    }

    /// `owned`: whether dropping the last handle closes the connection.
    fn start(link: Link, host: Arc<Host>, endpoint: String, owned: bool) -> Connection {
        let LinkParts { reader, writer, info, attachment } = link.into_parts();
        let out = Outbox::new(writer);
        let shared = Arc::new(Shared {
            slots: Arc::new(tokio::sync::Semaphore::new(host.max_in_flight)),
            host,
            attachment,
            info,
            endpoint,
            out: out.clone(),
            next_id: AtomicU64::new(1),
            pending: Mutex::new(Calls::default()),
            refs: Mutex::new(RefTables::default()),
            owner: Mutex::new(Weak::new()),
            life: Arc::new(Lifecycle::default()),
            running: Mutex::new(IdMap::default()),
            serving: std::sync::atomic::AtomicUsize::new(0),
            late: AtomicU64::new(0),
            activity: AtomicU64::new(0),
        });
        let span = tracing::debug_span!("dopy.connection", link = %shared.info);
        tracing::debug!(parent: &span, "connection open");
        let writer = spawn_in(outbox::write_loop(WriterTask(out), shared.life.clone()), span.clone());
        spawn_in(read_loop(shared.clone(), reader, writer), span);
        let owner = owned.then(|| Arc::new(CloseOnDrop(shared.clone())));
        if let Some(o) = &owner {
            *lock(&shared.owner) = Arc::downgrade(o);
        }
        Connection { state: shared, owner: owner.map(|o| o as Arc<dyn Any + Send + Sync>) }
    }

    /// A weak handle to this connection (for caches); `None` for connections the peer opened.
    pub fn downgrade(&self) -> Option<WeakConnection> {
        let owner = self.owner.clone()?.downcast::<CloseOnDrop>().ok()?;
        Some(WeakConnection { owner: Arc::downgrade(&owner) })
    }

    /// A handle to the object the peer publishes under `name`, over this connection: for a
    /// connection made by hand (`Node::serve_stream`, a custom transport) or accepted from the
    /// peer (calling back the node that connected). Nothing is sent: a name the peer does not
    /// publish fails at the first call with `NoSuchObject`.
    pub fn object(&self, name: &str) -> DynObject {
        DynObject::new(self.clone(), Target::Name(name.to_owned()))
    }

    /// What the transport knows about the two ends.
    pub fn info(&self) -> &LinkInfo {
        &self.shared().info
    }

    /// Whether the connection has ended.
    pub fn is_closed(&self) -> bool {
        self.shared().life.is_ended()
    }

    /// Waits until the connection has ended: once this returns, every call pending on it has
    /// failed and every reference it held or exported has been released.
    pub async fn closed(&self) {
        self.shared().life.closed().await
    }

    /// Why the connection ended, once it has, as a message (see [`close_cause`](Connection::close_cause)).
    pub fn close_reason(&self) -> Option<String> {
        self.close_cause().map(|d| d.to_string())
    }

    /// Why the connection ended, once it has: who ended it and why.
    pub fn close_cause(&self) -> Option<Disconnected> {
        self.shared().life.reason()
    }

    /// Closes the connection in an orderly way (`Goodbye`); calls in flight fail with
    /// [`CallError::Disconnected`](crate::CallError::Disconnected).
    pub fn close(&self) {
        self.shared().close_with(Message::Goodbye, DisconnectCause::ClosedLocally);
    }

    /// Bytes queued for the peer and not yet taken by the transport (bounded by the node's
    /// backlog limit, `NodeBuilder::max_backlog`, plus one frame).
    pub fn backlog(&self) -> usize {
        self.shared().out.backlog()
    }

    /// How many objects this side currently exports to the peer (by reference).
    pub fn exported_count(&self) -> usize {
        lock(&self.shared().refs).exported()
    }

    /// How many objects of the peer this side currently holds references to.
    pub fn imported_count(&self) -> usize {
        lock(&self.shared().refs).imported()
    }

    /// How many of the peer's calls this side is serving right now.
    pub fn serving_count(&self) -> usize {
        self.shared().serving.load(Ordering::Acquire)
    }

    /// How many replies arrived for calls nobody waited for any more (cancelled or timed out):
    /// they are discarded, never delivered to another call.
    pub fn late_replies(&self) -> u64 {
        self.shared().late.load(Ordering::Relaxed)
    }

    /// Sends a `Ping` and waits for the `Pong`: the round-trip time of the connection.
    ///
    /// # Errors
    ///
    /// [`CallError::Disconnected`](crate::CallError::Disconnected) if the connection ends first.
    pub async fn ping(&self) -> Result<std::time::Duration, Error> {
        let shared = self.shared();
        let started = Instant::now();
        let nonce = shared.next_id.fetch_add(1, Ordering::Relaxed);
        let (frame, _) = shared.encode(Message::Ping { nonce }, Vec::new())?;
        let rx = shared.register(nonce, None)?;
        let guard = PendingGuard { shared, id: nonce, armed: false };
        shared.send(Out::Frame(frame))?;
        let answer = rx.await;
        drop(guard);
        match answer {
            Ok(_) => Ok(started.elapsed()),
            Err(reason) => Err(Error::Disconnected(reason)),
        }
    }

    /// Sends a call and waits for its outcome and the references the outcome carries.
    ///
    /// `refs` is the reference table of typed `args`. With a `deadline`, the time left travels
    /// with the call (and applies to the calls made while serving it); when it passes, the call
    /// is cancelled. Dropping the returned future cancels the call too (`Cancel` is sent).
    ///
    /// # Errors
    ///
    /// [`CallError::Codec`](crate::CallError::Codec) if the call exceeds the frame limit (nothing is sent; the connection
    /// stays usable), [`CallError::Overloaded`](crate::CallError::Overloaded) if no slot frees up in time,
    /// [`CallError::DeadlineExceeded`](crate::CallError::DeadlineExceeded), or [`CallError::Disconnected`](crate::CallError::Disconnected) if the connection ends first.
    pub async fn call<E>(&self, request: Request) -> Result<(Outcome, Vec<DynObject>), Error<E>> {
        let Request { target, method, args, refs, flags, deadline } = request;
        self.call_to(&target, &method, args, refs, flags, deadline).await
    }

    /// [`call`](Connection::call) with the target and method borrowed (from the handle that
    /// makes the call): they are encoded from there, never copied. A small future of its own
    /// ([`call::CallTo`]).
    pub(crate) fn call_to<'a, E>(
        &'a self,
        target: &'a Target,
        method: &'a str,
        args: Args,
        refs: Vec<DynObject>,
        call_flags: u32,
        deadline: Option<Instant>,
    ) -> call::CallTo<'a, E> {
        call::CallTo::new(self.shared(), target, method, args, refs, call_flags, deadline)
    }
}

/// A call to send: see [`Connection::call`].
#[derive(Debug)]
pub struct Request {
    /// The object called.
    pub target: Target,
    /// The method's remote name.
    pub method: String,
    /// The arguments.
    pub args: Args,
    /// The reference table of typed arguments.
    pub refs: Vec<DynObject>,
    /// A bit set of [`flags`].
    pub flags: u32,
    /// When the caller stops waiting.
    pub deadline: Option<Instant>,
}
