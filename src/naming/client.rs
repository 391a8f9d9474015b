//! The client side: [`Names`] (typed lookups, registrations with automatic lease renewal,
//! watches) and the [`Watcher`] callback object.

use std::fmt;
use std::future::{Future, IntoFuture};
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use dopy_core::{from_value, DynObject, Proxy};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use super::{Entry, Event, Lease, NameServiceProxy, NamingError, Page, Subscription, DEFAULT_NAME};
use crate::{Address, CallError, CallSite, Error, Node, Remote};
use dopy_core::{Fault, FaultKind};

/// The lease of a registration made with [`Names::register`], unless set with
/// [`Register::lease`]: 10 seconds. A registrant that dies disappears within that time.
pub const DEFAULT_LEASE: Duration = Duration::from_secs(10);

/// A client of a name service: typed lookups, registrations that renew themselves, watches.
///
/// Cheap to clone. The raw remote interface is [`service`](Names::service).
///
/// # Examples
///
/// ```
/// # #[derive(Default)] pub struct Calculator;
/// # #[dopy::remote] impl Calculator { /// Adds.
/// #     pub fn add(&self, a: i64, b: i64) -> i64 { a + b } }
/// use dopy::naming::{NameServer, Names};
///
/// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// // A name server (in memory here; `NameServer::open(path)` keeps the names in a file).
/// let name_server = dopy::Node::new();
/// NameServer::in_memory().publish(&name_server)?;
/// let names_at = name_server.listen("tcp://127.0.0.1:0").await?.to_string();
///
/// // A server registers its calculator; the registration renews itself until dropped.
/// let server = dopy::Node::new();
/// server.publish("calc", Calculator::default())?;
/// let addr = server.listen("tcp://127.0.0.1:0").await?;
/// let names = Names::connect(&server, &names_at).await?;
/// let registration = names.register("calc", &format!("{addr}/calc")).tag("math").await?;
///
/// // A client finds it by name.
/// let calc: CalculatorProxy = dopy::naming::lookup(&dopy::Node::new(), &names_at, "calc").await?;
/// assert_eq!(calc.add(2, 3).await?, 5);
/// # drop(registration); Ok(()) }
/// ```
#[derive(Clone)]
pub struct Names {
    node: Node,
    /// The name service's address, with its object name.
    address: String,
    service: NameServiceProxy,
}

impl fmt::Debug for Names {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Names").field("address", &self.address).finish_non_exhaustive()
    }
}

/// Converts an error of a call without a method error to the name service's error type.
fn typed_error(e: CallError) -> CallError<NamingError> {
    e.map_method(|v| {
        from_value(v.clone()).unwrap_or_else(|_| NamingError::Storage { reason: format!("unexpected error {v:?}") })
    })
}

/// The name service's own error, if `e` is one: for the functions that also connect, and so
/// return a [`dopy::Error`](Error) ([`lookup`], [`Names::lookup`]).
///
/// # Examples
///
/// ```no_run
/// # #[tokio::main(flavor = "current_thread")] async fn main() -> dopy::Result<()> {
/// use dopy::naming::{naming_error, NamingError};
///
/// let node = dopy::Node::new();
/// let found = dopy::naming::lookup::<dopy::DynObject>(&node, "tcp://names.example:9500", "calc").await;
/// if let Err(e) = &found {
///     assert!(matches!(naming_error(e), Some(NamingError::NotFound { .. })));
/// }
/// # Ok(()) }
/// ```
pub fn naming_error(e: &Error) -> Option<NamingError> {
    e.method_error().and_then(|v| from_value(v.clone()).ok())
}

/// The address of the name service at `address`: the address itself if it names an object,
/// else its endpoint's `naming` object.
fn service_address(address: &str) -> Result<String, Error> {
    let parsed: Address = address.parse()?;
    Ok(match parsed.object {
        Some(_) => parsed.to_string(),
        None => parsed.endpoint.object(DEFAULT_NAME).to_string(),
    })
}

impl Names {
    /// Connects to the name service at `address`: `tcp://HOST:PORT/OBJECT`, or
    /// `tcp://HOST:PORT` for the service published there as `naming`.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidAddress`] or [`Error::Connect`].
    pub async fn connect(node: &Node, address: &str) -> Result<Names, Error> {
        let address = service_address(address)?;
        let service = node.proxy::<NameServiceProxy>(&address).await?;
        Ok(Names { node: node.clone(), address, service })
    }

    /// The name service's address.
    pub fn address(&self) -> &str {
        &self.address
    }

    /// The proxy to the name service, for its raw remote methods.
    pub fn service(&self) -> &NameServiceProxy {
        &self.service
    }

    /// Looks up `name` and returns a typed proxy to it (`CalculatorProxy`), or a [`DynObject`].
    ///
    /// The object is reached at its registered address if it has one (a direct connection);
    /// if that fails, or there is none, through the registered reference (calls are then
    /// forwarded by the name server).
    ///
    /// # Errors
    ///
    /// [`NamingError::NotFound`] for an unknown name (in [`CallError::Method`], inside
    /// [`Error::Call`]: read it with [`naming_error`](crate::naming::naming_error)), and any
    /// error of the calls or of connecting to the object.
    pub async fn lookup<P: Proxy>(&self, name: &str) -> Result<P, Error> {
        let entry = self.service.lookup(name.to_owned()).await?;
        entry.connect(&self.node).await
    }

    /// The registration of `name`: its address, reference, tags and lease.
    ///
    /// # Errors
    ///
    /// As [`lookup`](Names::lookup).
    pub async fn entry(&self, name: &str) -> Result<Entry, CallError<NamingError>> {
        self.service.lookup(name.to_owned()).await
    }

    /// The registrations whose name starts with `prefix`, sorted by name.
    ///
    /// Fetched page by page (`list_page`), so that no number of registrations makes one
    /// answer exceed a frame; from a name server without pages, in one answer.
    ///
    /// # Errors
    ///
    /// Any error of the calls.
    pub async fn list(&self, prefix: &str) -> Result<Vec<Entry>, CallError> {
        match self.pages(prefix, Vec::new()).await {
            Err(CallError::NoSuchMethod(_)) => self.service.list(prefix.to_owned()).await,
            other => other,
        }
    }

    /// The registrations that have every one of `tags`, sorted by name.
    ///
    /// Fetched page by page, as [`list`](Names::list) is.
    ///
    /// # Errors
    ///
    /// Any error of the calls.
    pub async fn search<I, S>(&self, tags: I) -> Result<Vec<Entry>, CallError>
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        let tags: Vec<String> = tags.into_iter().map(Into::into).collect();
        match self.pages("", tags.clone()).await {
            Err(CallError::NoSuchMethod(_)) => self.service.search(tags).await,
            other => other,
        }
    }

    /// Every page of `list_page(prefix, tags, ..)`.
    async fn pages(&self, prefix: &str, tags: Vec<String>) -> Result<Vec<Entry>, CallError> {
        let mut entries = Vec::new();
        let mut after = None;
        loop {
            let page = self.service.list_page(prefix.to_owned(), tags.clone(), after, self.max_reply()).await?;
            entries.extend(page.entries);
            match page.next {
                Some(next) => after = Some(next),
                None => return Ok(entries),
            }
        }
    }

    /// The largest reply this node accepts.
    fn max_reply(&self) -> u64 {
        u64::try_from(self.node.max_frame()).unwrap_or(u64::MAX)
    }

    /// Removes a name, whoever registered it. Returns whether it was registered.
    ///
    /// # Errors
    ///
    /// [`NamingError::ReadOnly`] from a read-only service; any error of the call.
    pub async fn remove(&self, name: &str) -> Result<bool, CallError<NamingError>> {
        self.service.remove(name.to_owned()).await
    }

    /// Starts registering `name` for the object at `address` (`tcp://HOST:PORT/OBJECT`); set
    /// options on the returned [`Register`], then `.await` it.
    pub fn register(&self, name: &str, address: &str) -> Register {
        Register::new(self.clone(), name, Some(address.to_owned()), None)
    }

    /// Starts registering `name` for an object by reference: a local object
    /// ([`Remote::new`]), or a proxy. Lookups reach it through the name server, over this
    /// node's connection to it: this works where nothing can connect to this node.
    pub fn register_object(&self, name: &str, object: &impl Proxy) -> Register {
        Register::new(self.clone(), name, None, Some(object.object().clone()))
    }

    /// Watches the names starting with `prefix`: returns the registrations there now, then
    /// every registration and removal, in order, until the [`Watch`] is dropped.
    ///
    /// The registrations there now are fetched page by page (`watch_paged`), so that no number
    /// of them makes one answer exceed a frame; each is as it was when its page was fetched,
    /// and the events that follow are the changes since.
    ///
    /// # Errors
    ///
    /// [`NamingError::LimitReached`] (in [`CallError::Method`](crate::CallError::Method)) if the name server serves as many
    /// watches as it allows; any error of the calls.
    pub async fn watch(&self, prefix: &str) -> Result<Watch, CallError<NamingError>> {
        let (events, queue) = mpsc::unbounded_channel();
        let watcher = Remote::new(Watcher { events });
        let (existing, subscription) = match self.service.watch_paged(prefix.to_owned(), watcher.proxy().clone()).await
        {
            Ok(subscription) => {
                let mut existing = Vec::new();
                loop {
                    let Page { entries, next } =
                        subscription.proxy().existing(self.max_reply()).await.map_err(typed_error)?;
                    existing.extend(entries);
                    if next.is_none() {
                        break (existing, subscription);
                    }
                }
            }
            // A name server without pages.
            Err(CallError::NoSuchMethod(_)) => self.service.watch(prefix.to_owned(), watcher.proxy().clone()).await?,
            Err(e) => return Err(e),
        };
        // Only the name service's handle keeps the watcher alive now: when it lets go (the
        // subscription ends, or the connection does), the queue closes.
        drop(watcher);
        Ok(Watch { existing, queue, _subscription: subscription })
    }
}

impl Entry {
    /// A proxy to the registered object: through its address if it has one (on `node`'s
    /// connection to that endpoint), else, or if the address cannot be reached, through the
    /// registered reference.
    ///
    /// # Errors
    ///
    /// [`Error::Connect`] if the address cannot be reached and there is no live reference;
    /// [`Error::InvalidAddress`] if there is neither.
    pub async fn connect<P: Proxy>(&self, node: &Node) -> Result<P, Error> {
        if let Some(address) = &self.address {
            // A name server is not trusted to make this node start a process (`exec:`).
            let dial = async {
                let parsed: Address = address.parse()?;
                super::dialable(&parsed)
                    .map_err(|reason| Error::InvalidAddress { address: address.clone(), reason })?;
                node.object(address).await
            };
            match dial.await {
                Ok(object) => return Ok(P::from_object(object)),
                Err(e) if self.object.is_none() => return Err(e),
                Err(e) => tracing::debug!(name = %self.name, error = %e, "address unreachable, using the reference"),
            }
        }
        match &self.object {
            Some(object) => Ok(P::from_object(object.clone())),
            None => Err(Error::InvalidAddress {
                address: self.name.clone(),
                reason: "the registration has neither an address nor a live reference".into(),
            }),
        }
    }
}

/// Looks up `name` in the name service at `names` (`tcp://HOST:PORT/naming`, or just
/// `tcp://HOST:PORT`) and returns a typed proxy (`CalculatorProxy`) or a [`DynObject`]: the
/// one-call form of [`Names::connect`] then [`Names::lookup`].
///
/// # Examples
///
/// ```no_run
/// # #[derive(Default)] pub struct Calculator;
/// # #[dopy::remote] impl Calculator { /// Adds.
/// #     pub fn add(&self, a: i64, b: i64) -> i64 { a + b } }
/// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let node = dopy::Node::new();
/// let calc: CalculatorProxy = dopy::naming::lookup(&node, "tcp://names.example:9500", "calc").await?;
/// let any: dopy::DynObject = dopy::naming::lookup(&node, "tcp://names.example:9500", "calc").await?;
/// # let _ = (calc, any); Ok(()) }
/// ```
///
/// # Errors
///
/// As [`Names::connect`] and [`Names::lookup`].
pub async fn lookup<P: Proxy>(node: &Node, names: &str, name: &str) -> Result<P, Error> {
    Names::connect(node, names).await?.lookup(name).await
}

type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send>>;

/// A registration being set up; `.await` it to register. From [`Names::register`] and
/// [`Names::register_object`].
#[must_use = "a registration does nothing until awaited"]
pub struct Register {
    names: Names,
    spec: Spec,
}

/// What to register, kept to register again if the lease is lost.
#[derive(Clone)]
struct Spec {
    name: String,
    address: Option<String>,
    object: Option<DynObject>,
    tags: Vec<String>,
    lease: Duration,
    replace: bool,
}

impl fmt::Debug for Register {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Register").field("name", &self.spec.name).finish_non_exhaustive()
    }
}

impl Register {
    fn new(names: Names, name: &str, address: Option<String>, object: Option<DynObject>) -> Self {
        let spec =
            Spec { name: name.to_owned(), address, object, tags: Vec::new(), lease: DEFAULT_LEASE, replace: false };
        Register { names, spec }
    }

    /// Adds a metadata tag (`search` finds registrations by tags).
    pub fn tag(mut self, tag: impl Into<String>) -> Self {
        self.spec.tags.push(tag.into());
        self
    }

    /// Adds metadata tags.
    pub fn tags<I, S>(mut self, tags: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.spec.tags.extend(tags.into_iter().map(Into::into));
        self
    }

    /// The lease time (default [`DEFAULT_LEASE`]): if this process dies, the name disappears
    /// within it. The lease is renewed every third of it.
    pub fn lease(mut self, lease: Duration) -> Self {
        self.spec.lease = lease;
        self
    }

    /// Takes the name over if another registrant has it (by default that is refused, unless
    /// the address is the same).
    pub fn replace(mut self) -> Self {
        self.spec.replace = true;
        self
    }

    /// Also gives an address for a registration by reference: lookups connect there directly
    /// when they can, and the name stays useful across a name-server restart.
    pub fn address(mut self, address: &str) -> Self {
        self.spec.address = Some(address.to_owned());
        self
    }
}

impl Spec {
    async fn register(&self, names: &Names) -> Result<Lease, CallError<NamingError>> {
        let Spec { name, address, object, tags, lease, replace } = self.clone();
        let lease_ms = Some(u64::try_from(lease.as_millis()).unwrap_or(u64::MAX));
        names.service.register(name, address, object, tags, lease_ms, replace).await
    }
}

impl IntoFuture for Register {
    type Output = Result<Registration, CallError<NamingError>>;
    type IntoFuture = BoxFuture<Self::Output>;

    fn into_future(self) -> Self::IntoFuture {
        Box::pin(async move {
            let Register { names, spec } = self;
            let lease = spec.register(&names).await?;
            let granted = lease.lease_ms.map_or(spec.lease, Duration::from_millis);
            let current = Arc::new(Mutex::new(lease.id));
            let stop = CancellationToken::new();
            let name = spec.name.clone();
            let task = tokio::spawn(renew(names, spec, granted, current.clone(), stop.clone()));
            Ok(Registration { name, lease: current, stop, task: Some(task) })
        })
    }
}

/// A registered name, kept alive by renewing its lease in the background. Dropping it removes
/// the name (so does [`release`](Registration::release), which waits for the answer).
///
/// If the name server restarts or the connection drops, renewal reconnects; if the lease was
/// lost meanwhile (it expired), the name is registered again.
#[must_use = "dropping a registration removes the name"]
pub struct Registration {
    name: String,
    lease: Arc<Mutex<String>>,
    stop: CancellationToken,
    task: Option<JoinHandle<Released>>,
}

/// What the renewal task ends with: the answer to its release, if it sent one.
type Released = Option<Result<bool, CallError<NamingError>>>;

impl fmt::Debug for Registration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Registration").field("name", &self.name).finish_non_exhaustive()
    }
}

impl Registration {
    /// The registered name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The id of the current lease (it changes if the name had to be registered again).
    pub fn lease_id(&self) -> String {
        self.lease.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Stops renewing and removes the name; returns whether the name server still had it.
    ///
    /// # Errors
    ///
    /// Any error of the call (the name then disappears when its lease runs out).
    pub async fn release(mut self) -> Result<bool, CallError<NamingError>> {
        self.stop.cancel();
        let Some(task) = self.task.take() else { return Ok(false) };
        match task.await {
            Ok(Some(result)) => result,
            _ => Ok(false),
        }
    }
}

impl Drop for Registration {
    fn drop(&mut self) {
        // The renewal task releases the lease as it stops.
        self.stop.cancel();
    }
}

/// Renews the lease every third of its time until stopped, then releases it.
async fn renew(
    mut names: Names,
    spec: Spec,
    lease: Duration,
    current: Arc<Mutex<String>>,
    stop: CancellationToken,
) -> Released {
    let id = || current.lock().unwrap_or_else(|e| e.into_inner()).clone();
    let period = lease / 3;
    loop {
        tokio::select! {
            () = stop.cancelled() => {
                let released = tokio::time::timeout(lease, names.service.release(id())).await;
                return Some(released.unwrap_or_else(|_| {
                    let fault = Fault::new(FaultKind::DeadlineExceeded, format!("no answer within {lease:?}"));
                    let site = CallSite { endpoint: names.address.clone(), object: spec.name.clone(), method: "release".into() };
                    Err(CallError::from_fault(fault, site, |_| None))
                }));
            }
            () = tokio::time::sleep(period) => {}
        }
        match names.service.renew(id(), spec.object.clone()).await {
            Ok(()) => {}
            Err(CallError::Method { error: NamingError::UnknownLease { .. }, .. }) => {
                // The lease ran out (this process was stalled, or cut off): register again.
                match spec.register(&names).await {
                    Ok(lease) => {
                        tracing::info!(name = %spec.name, "lease lost; registered again");
                        *current.lock().unwrap_or_else(|e| e.into_inner()) = lease.id;
                    }
                    Err(e) => tracing::warn!(name = %spec.name, error = %e, "lease lost; cannot register again"),
                }
            }
            Err(e @ CallError::Disconnected(_)) => {
                tracing::debug!(name = %spec.name, error = %format_args!("{e:#}"), "name service unreachable; reconnecting");
                if let Ok(again) = Names::connect(&names.node, &names.address).await {
                    names = again;
                }
            }
            Err(e) => tracing::warn!(name = %spec.name, error = %e, "lease renewal failed"),
        }
    }
}

/// The events of a watch, from [`Names::watch`]. Dropping it ends the watch.
pub struct Watch {
    existing: Vec<Entry>,
    queue: mpsc::UnboundedReceiver<Event>,
    _subscription: Remote<Subscription>,
}

impl fmt::Debug for Watch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Watch").field("existing", &self.existing.len()).finish_non_exhaustive()
    }
}

impl Watch {
    /// The registrations under the prefix when the watch started.
    pub fn existing(&self) -> &[Entry] {
        &self.existing
    }

    /// The next event; `None` once the name service has gone away.
    pub async fn next(&mut self) -> Option<Event> {
        self.queue.recv().await
    }
}

/// Receives the events of a watch: the callback object [`Names::watch`] hands the name
/// service. Implement the same method (`event(Event)`) in any object to receive events
/// another way.
pub struct Watcher {
    events: mpsc::UnboundedSender<Event>,
}

impl fmt::Debug for Watcher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Watcher")
    }
}

/// Receives the events of a watch.
#[dopy::remote]
impl Watcher {
    /// Takes one event; fails once nobody listens any more (the name service then stops).
    pub fn event(&self, event: Event) -> Result<(), String> {
        self.events.send(event).map_err(|_| "the watch has ended".to_owned())
    }
}
