//! The registry behind every [`NameService`](super::NameService) of a name server: the
//! names, their leases, the watchers, and the database that keeps the names across restarts.
//!
//! Writes are serialized by one async lock (`writer`), held across the database commit: a
//! change is planned against the current state, committed, and only then applied to the state
//! in memory and announced to watchers. Readers (lookups, lists) never wait for a commit.
//!
//! Every registration is bounded in size and number ([`Limits`]), and every list, search and
//! watch snapshot is answered in pages of a bounded number of bytes, so that no set of
//! registrations can make an answer exceed a frame.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, Weak};
use std::time::Duration;

use dopy_core::DynObject;
use serde::{Deserialize, Serialize};
use tokio::sync::{mpsc, Notify};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::limits::{Limit, Limits};
use super::{Entry, Event, Lease, NamingError, Page, Removal, WatcherProxy};
use crate::persist::{Op, Store, StoreError, Table};

mod read;
mod record;

use record::{decode, encode, registrant, sizes, truncated, validate};

/// The table of names: name -> stored registration.
const NAMES: Table = Table::new("dopy.names");

/// The record format of a stored registration.
const FORMAT: u32 = 1;

/// The shortest lease granted; shorter requests are raised to it.
pub(crate) const MIN_LEASE: Duration = Duration::from_millis(50);

/// What one registration costs in a reply besides its name, address and tags: field names and
/// tags of its dynamic form, the two strings' lengths, the lease, and its reference.
pub(crate) const ENTRY_OVERHEAD: usize = 192;

/// What each tag costs in a reply besides its bytes (its value tag and length).
pub(crate) const STRING_OVERHEAD: usize = 8;

/// What a page's reply costs besides its registrations (the reply's header, the page's
/// fields, the cursor: a name).
pub(crate) fn page_overhead(limits: &Limits) -> usize {
    1024 + limits.name_bytes
}

/// The most bytes the registration `name` of `slot` takes in a reply, typed or dynamic.
pub(crate) fn entry_bytes(name: &str, slot: &Slot) -> usize {
    ENTRY_OVERHEAD
        + name.len()
        + slot.address.as_ref().map_or(0, String::len)
        + slot.tags.iter().map(|t| t.len() + STRING_OVERHEAD).sum::<usize>()
}

/// One registered name.
#[derive(Clone, Debug)]
pub(crate) struct Slot {
    address: Option<String>,
    /// The live reference, if registered by reference (gone after a restart until renewed).
    object: Option<DynObject>,
    /// Whether it was registered by reference (kept across restarts, unlike the reference).
    by_reference: bool,
    tags: BTreeSet<String>,
    lease: String,
    /// `None`: permanent.
    ttl: Option<Duration>,
    expires: Option<Instant>,
    /// Who holds the name, for [`Limit::NamesPerRegistrant`] (see [`registrant`]).
    registrant: String,
}

impl Slot {
    fn entry(&self, name: &str) -> Entry {
        Entry {
            name: name.to_owned(),
            address: self.address.clone(),
            object: self.live_object(),
            tags: self.tags.clone(),
            lease_ms: self.ttl.map(millis),
        }
    }

    /// The reference, unless its connection has ended.
    fn live_object(&self) -> Option<DynObject> {
        self.object.clone().filter(|o| o.connection().is_none_or(|c| !c.is_closed()))
    }
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

/// A registration as the database keeps it (without the reference, which cannot be kept).
#[derive(Serialize, Deserialize)]
struct Stored {
    address: Option<String>,
    by_reference: bool,
    tags: BTreeSet<String>,
    lease: String,
    ttl_ms: Option<u64>,
}

/// A watcher: the events it wants go to the task that calls it.
struct Watching {
    id: u64,
    prefix: String,
    /// Shared by every watcher that hears the event: a backlog costs a pointer per event.
    events: mpsc::Sender<Arc<Event>>,
    /// How far the watcher has been given the names there were when it started.
    paged: Paged,
}

/// How far a watch has handed out the names under its prefix: it hears of changes to those
/// only, since the later pages show the others as they are then.
#[derive(Clone, Debug)]
enum Paged {
    /// No page yet.
    Nothing,
    /// The names up to and including this one.
    Upto(String),
    /// All of them.
    All,
}

impl Paged {
    fn covers(&self, name: &str) -> bool {
        match self {
            Paged::Nothing => false,
            Paged::Upto(last) => name <= last.as_str(),
            Paged::All => true,
        }
    }
}

#[derive(Default)]
struct State {
    names: BTreeMap<String, Slot>,
    /// Lease id -> name.
    leases: HashMap<String, String>,
    /// Registrant -> how many names it holds.
    held: HashMap<String, usize>,
    watchers: Vec<Watching>,
    next_watch: u64,
}

/// A planned change.
enum Change {
    Put(String, Slot),
    Remove(String, Removal),
}

/// What a registration asks for.
pub(crate) struct Request {
    pub(crate) name: String,
    pub(crate) address: Option<String>,
    pub(crate) object: Option<DynObject>,
    pub(crate) tags: Vec<String>,
    pub(crate) lease: Option<Duration>,
    pub(crate) replace: bool,
}

pub(crate) struct Registry {
    limits: Limits,
    state: Mutex<State>,
    /// Held from planning a change to applying it, across its commit.
    writer: tokio::sync::Mutex<()>,
    store: Option<Store>,
    /// Wakes the sweeper when a lease is added or changed.
    wake: Arc<Notify>,
    /// Stops the sweeper when the registry goes away.
    stop: CancellationToken,
    sweeper: OnceLock<()>,
}

impl Drop for Registry {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

impl Registry {
    /// A registry with no database: names last as long as the process.
    pub(crate) fn in_memory(limits: Limits) -> Arc<Registry> {
        Arc::new(Registry::with_state(State::default(), None, limits))
    }

    /// A registry kept in `store`, restored from it. Every restored lease gets one full lease
    /// time, counted from now, to be renewed.
    ///
    /// A stored registration that breaks the size limits (written by a version without them,
    /// or before they were lowered) is removed from the database, with a warning: restored, it
    /// could not be answered within a frame.
    pub(crate) fn open(store: &Store, limits: Limits) -> Result<Arc<Registry>, StoreError> {
        let mut state = State::default();
        let rows = store.read_all(NAMES)?;
        let now = Instant::now();
        let mut dropped = Vec::new();
        for (name, bytes) in rows {
            let stored = decode(&bytes).map_err(|reason| StoreError::Unreadable { object: name.clone(), reason })?;
            let tags: Vec<&str> = stored.tags.iter().map(String::as_str).collect();
            if let Err(e) = sizes(&name, stored.address.as_deref(), &tags, &limits) {
                tracing::warn!(name = %truncated(&name), error = %e, "stored name breaks the limits; removed");
                dropped.push(Op::Delete(NAMES, name));
                continue;
            }
            let ttl = stored.ttl_ms.map(Duration::from_millis);
            state.leases.insert(stored.lease.clone(), name.clone());
            let registrant = registrant(stored.address.as_deref(), None);
            *state.held.entry(registrant.clone()).or_default() += 1;
            let slot = Slot {
                address: stored.address,
                object: None,
                by_reference: stored.by_reference,
                tags: stored.tags,
                lease: stored.lease,
                ttl,
                expires: ttl.map(|t| now + t),
                registrant,
            };
            state.names.insert(name, slot);
        }
        if !dropped.is_empty() {
            crate::persist::write_now(store.database(), dropped).map_err(|e| store.db_error(e))?;
        }
        tracing::debug!(names = state.names.len(), path = %store.path().display(), "name registry restored");
        Ok(Arc::new(Registry::with_state(state, Some(store.clone()), limits)))
    }

    fn with_state(state: State, store: Option<Store>, limits: Limits) -> Registry {
        Registry {
            limits,
            state: Mutex::new(state),
            writer: tokio::sync::Mutex::new(()),
            store,
            wake: Arc::new(Notify::new()),
            stop: CancellationToken::new(),
            sweeper: OnceLock::new(),
        }
    }

    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Starts the task that expires leases, once, if a tokio runtime is at hand.
    pub(crate) fn start(self: &Arc<Self>) {
        if self.sweeper.get().is_some() || tokio::runtime::Handle::try_current().is_err() {
            return;
        }
        if self.sweeper.set(()).is_ok() {
            tokio::spawn(sweep(Arc::downgrade(self), self.wake.clone(), self.stop.clone()));
        }
    }

    pub(crate) async fn register(&self, request: Request) -> Result<Lease, NamingError> {
        let Request { name, address, object, tags, lease, replace } = request;
        let tags: Vec<&str> = tags.iter().map(String::as_str).collect();
        sizes(&name, address.as_deref(), &tags, &self.limits)?;
        validate(&name, address.as_deref(), object.is_some())?;
        let tags: BTreeSet<String> = tags.into_iter().map(str::to_owned).collect();
        let registrant = registrant(address.as_deref(), object.as_ref());
        let _writer = self.writer.lock().await;
        self.admit(&name, address.as_ref(), &registrant, replace)?;
        let ttl = lease.map(|t| t.max(MIN_LEASE));
        let id = dopy_core::ObjectId::random().to_string();
        let slot = Slot {
            address,
            by_reference: object.is_some(),
            object,
            tags,
            lease: id.clone(),
            ttl,
            expires: ttl.map(|t| Instant::now() + t),
            registrant,
        };
        self.commit(vec![Change::Put(name, slot)]).await?;
        self.wake.notify_one();
        Ok(Lease { id, lease_ms: ttl.map(millis) })
    }

    /// Whether `registrant` may take `name` now: it is free (or `replace`, or the same
    /// address), and neither the name server nor the registrant is full.
    fn admit(&self, name: &str, address: Option<&String>, registrant: &str, replace: bool) -> Result<(), NamingError> {
        let state = self.state();
        let existing = state.names.get(name);
        if let Some(existing) = existing {
            // The same address is the same service (restarted, say): it takes its name back.
            let same = address.is_some() && existing.address.as_ref() == address;
            if !replace && !same {
                return Err(NamingError::Taken { name: name.to_owned(), address: existing.address.clone() });
            }
        }
        let limit = |limit: Limit| NamingError::LimitReached { limit, max: self.limits.of(limit) as u64 };
        if existing.is_none() && state.names.len() >= self.limits.names {
            return Err(limit(Limit::Names));
        }
        let already = existing.is_some_and(|e| e.registrant == registrant);
        if !already && state.held.get(registrant).copied().unwrap_or(0) >= self.limits.names_per_registrant {
            return Err(limit(Limit::NamesPerRegistrant));
        }
        Ok(())
    }

    pub(crate) async fn renew(&self, lease: &str, object: Option<DynObject>) -> Result<(), NamingError> {
        let _writer = self.writer.lock().await;
        let mut state = self.state();
        let unknown = || NamingError::UnknownLease { lease: lease.to_owned() };
        let name = state.leases.get(lease).cloned().ok_or_else(unknown)?;
        let slot = state.names.get_mut(&name).ok_or_else(unknown)?;
        slot.expires = slot.ttl.map(|t| Instant::now() + t);
        if object.is_some() {
            slot.object = object;
        }
        Ok(())
    }

    pub(crate) async fn release(&self, lease: &str) -> Result<bool, NamingError> {
        let _writer = self.writer.lock().await;
        let Some(name) = self.state().leases.get(lease).cloned() else { return Ok(false) };
        self.commit(vec![Change::Remove(name, Removal::Released)]).await?;
        Ok(true)
    }

    pub(crate) async fn remove(&self, name: &str) -> Result<bool, NamingError> {
        let _writer = self.writer.lock().await;
        if !self.state().names.contains_key(name) {
            return Ok(false);
        }
        self.commit(vec![Change::Remove(name.to_owned(), Removal::Removed)]).await?;
        Ok(true)
    }

    /// Removes the names whose lease has run out; returns when the next one runs out.
    async fn expire(&self) -> Option<Instant> {
        let _writer = self.writer.lock().await;
        let now = Instant::now();
        let expired: Vec<Change> = self
            .state()
            .names
            .iter()
            .filter(|(_, slot)| slot.expires.is_some_and(|e| e <= now))
            .map(|(name, _)| Change::Remove(name.clone(), Removal::Expired))
            .collect();
        if !expired.is_empty() {
            if let Err(e) = self.commit(expired).await {
                tracing::error!(error = %e, "expired names could not be removed from the database");
            }
        }
        self.state().names.values().filter_map(|s| s.expires).min()
    }

    /// Commits changes to the database (if any), then applies them and tells the watchers.
    async fn commit(&self, changes: Vec<Change>) -> Result<(), NamingError> {
        if let Some(store) = &self.store {
            let ops = changes
                .iter()
                .map(|change| match change {
                    Change::Put(name, slot) => Op::Put(NAMES, name.clone(), encode(slot)),
                    Change::Remove(name, _) => Op::Delete(NAMES, name.clone()),
                })
                .collect();
            store.journal().write(ops).wait().await.map_err(|e| {
                let mut reason = e.to_string();
                let mut source = std::error::Error::source(&e);
                while let Some(cause) = source {
                    reason = format!("{reason}: {cause}");
                    source = cause.source();
                }
                NamingError::Storage { reason }
            })?;
        }
        let mut state = self.state();
        for change in changes {
            match change {
                Change::Put(name, slot) => {
                    let entry = slot.entry(&name);
                    state.leases.insert(slot.lease.clone(), name.clone());
                    *state.held.entry(slot.registrant.clone()).or_default() += 1;
                    if let Some(old) = state.names.insert(name.clone(), slot) {
                        state.leases.remove(&old.lease);
                        state.release(&old.registrant);
                        tracing::info!(%name, "name replaced");
                        state.announce(&name, Event::Removed { name: name.clone(), reason: Removal::Replaced });
                    }
                    tracing::info!(%name, address = ?entry.address, "name registered");
                    state.announce(&name, Event::Registered(entry));
                }
                Change::Remove(name, reason) => {
                    if let Some(old) = state.names.remove(&name) {
                        state.leases.remove(&old.lease);
                        state.release(&old.registrant);
                        tracing::info!(%name, ?reason, "name removed");
                        state.announce(&name, Event::Removed { name: name.clone(), reason });
                    }
                }
            }
        }
        Ok(())
    }
}

impl State {
    /// Queues `event` for the watchers of `name`; drops those that fell too far behind.
    fn announce(&mut self, name: &str, event: Event) {
        let event = Arc::new(event);
        self.watchers.retain(|w| {
            if !name.starts_with(&w.prefix) || !w.paged.covers(name) {
                return true;
            }
            match w.events.try_send(event.clone()) {
                Ok(()) => true,
                Err(mpsc::error::TrySendError::Full(_)) => {
                    tracing::warn!(watch = w.id, "a watcher fell too far behind; its watch ends");
                    false
                }
                Err(mpsc::error::TrySendError::Closed(_)) => false,
            }
        });
    }

    /// One name fewer for `registrant`.
    fn release(&mut self, registrant: &str) {
        if let Some(held) = self.held.get_mut(registrant) {
            *held -= 1;
            if *held == 0 {
                self.held.remove(registrant);
            }
        }
    }
}

/// Expires leases until the registry goes away.
async fn sweep(registry: Weak<Registry>, wake: Arc<Notify>, stop: CancellationToken) {
    loop {
        let next = match registry.upgrade() {
            Some(registry) => registry.expire().await,
            None => return,
        };
        // A lease may be renewed meanwhile: the sweep then finds nothing and looks again.
        let sleep = async {
            match next {
                Some(at) => tokio::time::sleep_until(at).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            () = sleep => {}
            () = wake.notified() => {}
            () = stop.cancelled() => return,
        }
    }
}
