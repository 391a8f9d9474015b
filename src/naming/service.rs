//! [`NameService`]: the remote object a name server publishes (conventionally as `naming`).

use std::fmt;
use std::sync::{Arc, Weak};
use std::time::Duration;

use dopy_core::DynObject;

use super::registry::{Registry, Request};
use super::{Entry, Lease, NamingError, Page, WatcherProxy};
use crate::Remote;

/// The name service: names -> objects, with leases, tags and watchers.
///
/// An ordinary remote object: any node can serve one ([`NameServer::publish`]), and any client
/// can call it with [`NameServiceProxy`], a [`DynObject`] or the `dopy` command-line tool. The
/// typed client [`Names`] wraps the proxy with conveniences (typed lookups, lease renewal).
///
/// A read-only service ([`NameServer::read_only`]) answers lookups, lists, searches and
/// watches, and refuses changes with [`NamingError::ReadOnly`].
///
/// [`NameServer::publish`]: super::NameServer::publish
/// [`NameServer::read_only`]: super::NameServer::read_only
/// [`Names`]: super::Names
pub struct NameService {
    registry: Arc<Registry>,
    writable: bool,
    /// The frame limit of the node it is published on: its pages fit in it.
    frame: usize,
}

impl fmt::Debug for NameService {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NameService").field("writable", &self.writable).finish_non_exhaustive()
    }
}

impl NameService {
    pub(crate) fn new(registry: Arc<Registry>, writable: bool, frame: usize) -> Self {
        registry.start();
        NameService { registry, writable, frame }
    }

    fn writable(&self) -> Result<&Registry, NamingError> {
        self.registry.start();
        if self.writable {
            Ok(&self.registry)
        } else {
            Err(NamingError::ReadOnly)
        }
    }
}

/// Names -> objects, with leases, tags and watchers.
#[dopy::remote]
impl NameService {
    /// Registers `name` for an object, reachable at `address` (`tcp://HOST:PORT/OBJECT`), by
    /// the reference `object`, or both; with metadata `tags`; for a lease of `lease_ms`
    /// milliseconds (renew it with `renew` before it runs out) or, with no lease, until
    /// removed. A name already registered is refused unless `replace` is set or the address is
    /// the same. Returns the lease.
    pub async fn register(
        &self,
        name: String,
        address: Option<String>,
        object: Option<DynObject>,
        tags: Vec<String>,
        lease_ms: Option<u64>,
        replace: bool,
    ) -> Result<Lease, NamingError> {
        let lease = lease_ms.map(Duration::from_millis);
        self.writable()?.register(Request { name, address, object, tags, lease, replace }).await
    }

    /// Renews a lease for another lease time; `object`, if given, replaces the registered
    /// reference (a registrant that reconnected sends it again).
    pub async fn renew(&self, lease: String, object: Option<DynObject>) -> Result<(), NamingError> {
        self.writable()?.renew(&lease, object).await
    }

    /// Ends a lease: its name is removed. Returns whether the lease was known.
    pub async fn release(&self, lease: String) -> Result<bool, NamingError> {
        self.writable()?.release(&lease).await
    }

    /// Removes a name, whoever registered it. Returns whether it was registered.
    pub async fn remove(&self, name: String) -> Result<bool, NamingError> {
        self.writable()?.remove(&name).await
    }

    /// The registration of `name`.
    pub fn lookup(&self, name: String) -> Result<Entry, NamingError> {
        self.registry.start();
        self.registry.lookup(&name)
    }

    /// The registrations whose name starts with `prefix` (all of them for ""), sorted by name,
    /// in one answer: it fails (for this call only) once they exceed a frame. Use `list_page`.
    pub fn list(&self, prefix: String) -> Vec<Entry> {
        self.registry.start();
        self.registry.list(&prefix)
    }

    /// The registrations that have every one of `tags`, sorted by name, in one answer: it
    /// fails (for this call only) once they exceed a frame. Use `list_page`.
    pub fn search(&self, tags: Vec<String>) -> Vec<Entry> {
        self.registry.start();
        self.registry.search(&tags)
    }

    /// One page of the registrations whose name starts with `prefix` and that have every one
    /// of `tags`, sorted by name, starting after the name `after` (from the start for `None`):
    /// as many as fit in a reply of `max_bytes` (and in the name server's page size and
    /// frame), at least one. Pass the page's `next` as `after` for the next page; `next` is
    /// `None` on the last one.
    pub fn list_page(&self, prefix: String, tags: Vec<String>, after: Option<String>, max_bytes: u64) -> Page {
        self.registry.start();
        self.registry.page(&prefix, &tags, after.as_deref(), self.registry.budget(max_bytes, self.frame))
    }

    /// Calls `watcher.event` for every registration and removal of a name starting with
    /// `prefix`, in order, until the returned subscription is dropped (or the watcher cannot be
    /// reached). Also returns the registrations under `prefix` now, in one answer: it fails
    /// (for this call only) once they exceed a frame. Use `watch_paged`.
    pub fn watch(
        &self,
        prefix: String,
        watcher: WatcherProxy,
    ) -> Result<(Vec<Entry>, Remote<Subscription>), NamingError> {
        self.registry.start();
        let (id, existing) = self.registry.watch(prefix, watcher, false)?;
        Ok((existing, self.subscription(id)))
    }

    /// Starts watching the names starting with `prefix`, as `watch` does, without the names
    /// there now: fetch them page by page with the subscription's `existing`. Until a name has
    /// been handed out in a page, the watcher hears of no change to it (the page shows it as
    /// it is then); after, it hears of every change.
    pub fn watch_paged(&self, prefix: String, watcher: WatcherProxy) -> Result<Remote<Subscription>, NamingError> {
        self.registry.start();
        let (id, _) = self.registry.watch(prefix, watcher, true)?;
        Ok(self.subscription(id))
    }
}

impl NameService {
    fn subscription(&self, id: u64) -> Remote<Subscription> {
        Remote::new(Subscription { registry: Arc::downgrade(&self.registry), id, frame: self.frame })
    }
}

/// A watch of a name service: events flow until it is dropped (by every holder).
pub struct Subscription {
    registry: Weak<Registry>,
    id: u64,
    /// The frame limit of the service's node.
    frame: usize,
}

impl fmt::Debug for Subscription {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Subscription").field("id", &self.id).finish()
    }
}

impl Drop for Subscription {
    fn drop(&mut self) {
        if let Some(registry) = self.registry.upgrade() {
            registry.unwatch(self.id);
        }
    }
}

/// A watch of a name service.
#[dopy::remote]
impl Subscription {
    /// Stops the events now (dropping the last reference does too).
    pub fn cancel(&self) {
        if let Some(registry) = self.registry.upgrade() {
            registry.unwatch(self.id);
        }
    }

    /// The next page of the registrations under the watched prefix when the watch started
    /// (`watch_paged`), in a reply of at most `max_bytes`; `next` is `None` on the last page
    /// (and the page empty after it, or for a watch from `watch`).
    pub fn existing(&self, max_bytes: u64) -> Page {
        match self.registry.upgrade() {
            Some(registry) => registry.watch_page(self.id, registry.budget(max_bytes, self.frame)),
            None => Page::default(),
        }
    }
}
