//! The registry behind every [`NameService`](super::NameService) of a name server: the
//! names, their leases, the watchers, and the database that keeps the names across restarts.
//!
//! Writes are serialized by one async lock (`writer`), held across the database commit: a
//! change is planned against the current state, committed, and only then applied to the state
//! in memory and announced to watchers. Readers (lookups, lists) never wait for a commit.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, Weak};
use std::time::Duration;

use dopy_core::DynObject;
use serde::{Deserialize, Serialize};
use tokio::sync::{mpsc, Notify};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::{Entry, Event, Lease, NamingError, Removal, WatcherProxy};
use crate::persist::{Op, Store, StoreError, Table};

/// The table of names: name -> stored registration.
const NAMES: Table = Table::new("dopy.names");

/// The record format of a stored registration.
const FORMAT: u32 = 1;

/// The shortest lease granted; shorter requests are raised to it.
pub(crate) const MIN_LEASE: Duration = Duration::from_millis(50);

/// One registered name.
#[derive(Clone, Debug)]
struct Slot {
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
    events: mpsc::UnboundedSender<Event>,
}

#[derive(Default)]
struct State {
    names: BTreeMap<String, Slot>,
    /// Lease id -> name.
    leases: HashMap<String, String>,
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
    pub(crate) fn in_memory() -> Arc<Registry> {
        Arc::new(Registry::with_state(State::default(), None))
    }

    /// A registry kept in `store`, restored from it. Every restored lease gets one full lease
    /// time, counted from now, to be renewed.
    pub(crate) fn open(store: &Store) -> Result<Arc<Registry>, StoreError> {
        let mut state = State::default();
        let rows = store.read_all(NAMES)?;
        let now = Instant::now();
        for (name, bytes) in rows {
            let stored = decode(&bytes).map_err(|reason| StoreError::Unreadable { object: name.clone(), reason })?;
            let ttl = stored.ttl_ms.map(Duration::from_millis);
            state.leases.insert(stored.lease.clone(), name.clone());
            let slot = Slot {
                address: stored.address,
                object: None,
                by_reference: stored.by_reference,
                tags: stored.tags,
                lease: stored.lease,
                ttl,
                expires: ttl.map(|t| now + t),
            };
            state.names.insert(name, slot);
        }
        tracing::debug!(names = state.names.len(), path = %store.path().display(), "name registry restored");
        Ok(Arc::new(Registry::with_state(state, Some(store.clone()))))
    }

    fn with_state(state: State, store: Option<Store>) -> Registry {
        Registry {
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
        validate(&name, address.as_deref(), object.is_some())?;
        let _writer = self.writer.lock().await;
        if let Some(existing) = self.state().names.get(&name) {
            // The same address is the same service (restarted, say): it takes its name back.
            let same = address.is_some() && existing.address == address;
            if !replace && !same {
                return Err(NamingError::Taken { name, address: existing.address.clone() });
            }
        }
        let ttl = lease.map(|t| t.max(MIN_LEASE));
        let id = dopy_core::message::ObjectId::random().to_string();
        let slot = Slot {
            address,
            by_reference: object.is_some(),
            object,
            tags: tags.into_iter().collect(),
            lease: id.clone(),
            ttl,
            expires: ttl.map(|t| Instant::now() + t),
        };
        self.commit(vec![Change::Put(name, slot)]).await?;
        self.wake.notify_one();
        Ok(Lease { id, lease_ms: ttl.map(millis) })
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
                    if let Some(old) = state.names.insert(name.clone(), slot) {
                        state.leases.remove(&old.lease);
                        tracing::info!(%name, "name replaced");
                        state.announce(&name, Event::Removed { name: name.clone(), reason: Removal::Replaced });
                    }
                    tracing::info!(%name, address = ?entry.address, "name registered");
                    state.announce(&name, Event::Registered(entry));
                }
                Change::Remove(name, reason) => {
                    if let Some(old) = state.names.remove(&name) {
                        state.leases.remove(&old.lease);
                        tracing::info!(%name, ?reason, "name removed");
                        state.announce(&name, Event::Removed { name: name.clone(), reason });
                    }
                }
            }
        }
        Ok(())
    }

    pub(crate) fn lookup(&self, name: &str) -> Result<Entry, NamingError> {
        let state = self.state();
        let slot = state.names.get(name).ok_or_else(|| NamingError::NotFound { name: name.to_owned() })?;
        let entry = slot.entry(name);
        if entry.address.is_none() && entry.object.is_none() {
            return Err(NamingError::Unreachable { name: name.to_owned() });
        }
        Ok(entry)
    }

    pub(crate) fn list(&self, prefix: &str) -> Vec<Entry> {
        let state = self.state();
        state
            .names
            .range(prefix.to_owned()..)
            .take_while(|(n, _)| n.starts_with(prefix))
            .map(|(n, s)| s.entry(n))
            .collect()
    }

    pub(crate) fn search(&self, tags: &[String]) -> Vec<Entry> {
        let state = self.state();
        state.names.iter().filter(|(_, s)| tags.iter().all(|t| s.tags.contains(t))).map(|(n, s)| s.entry(n)).collect()
    }

    /// Adds a watcher of the names under `prefix`; returns its id and the names there now
    /// (taken together with adding it, so that no event falls in between).
    pub(crate) fn watch(self: &Arc<Self>, prefix: String, watcher: WatcherProxy) -> (u64, Vec<Entry>) {
        let (events, mut queue) = mpsc::unbounded_channel();
        let (id, existing) = {
            let mut state = self.state();
            state.next_watch += 1;
            let id = state.next_watch;
            let existing = state
                .names
                .range(prefix.clone()..)
                .take_while(|(n, _)| n.starts_with(&prefix))
                .map(|(n, s)| s.entry(n))
                .collect();
            state.watchers.push(Watching { id, prefix, events });
            (id, existing)
        };
        // One task per watcher calls it with its events in order; a slow watcher delays only
        // itself. A watcher that cannot be reached any more is dropped.
        let registry = Arc::downgrade(self);
        tokio::spawn(async move {
            while let Some(event) = queue.recv().await {
                if let Err(e) = watcher.event(event).await {
                    tracing::debug!(error = %e, "watcher gone");
                    break;
                }
            }
            if let Some(registry) = registry.upgrade() {
                registry.unwatch(id);
            }
        });
        (id, existing)
    }

    pub(crate) fn unwatch(&self, id: u64) {
        self.state().watchers.retain(|w| w.id != id);
    }
}

impl State {
    fn announce(&mut self, name: &str, event: Event) {
        self.watchers.retain(|w| !name.starts_with(&w.prefix) || w.events.send(event.clone()).is_ok());
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

fn validate(name: &str, address: Option<&str>, by_reference: bool) -> Result<(), NamingError> {
    let invalid = |reason: &str| NamingError::Invalid { name: name.to_owned(), reason: reason.to_owned() };
    if name.is_empty() || name.chars().any(char::is_control) {
        return Err(invalid("a name must be non-empty, without control characters"));
    }
    match address {
        None if !by_reference => return Err(invalid("give an address, an object reference, or both")),
        None => {}
        Some(address) => match address.parse::<crate::Address>() {
            Ok(parsed) => {
                super::dialable(&parsed).map_err(|e| invalid(&e))?;
                if parsed.object.is_none() {
                    return Err(invalid("the address names no object (expected e.g. tcp://HOST:PORT/OBJECT)"));
                }
            }
            Err(e) => return Err(invalid(&e.to_string())),
        },
    }
    Ok(())
}

fn encode(slot: &Slot) -> Vec<u8> {
    let stored = Stored {
        address: slot.address.clone(),
        by_reference: slot.by_reference,
        tags: slot.tags.clone(),
        lease: slot.lease.clone(),
        ttl_ms: slot.ttl.map(millis),
    };
    let mut bytes = postcard::to_allocvec(&FORMAT).unwrap_or_default();
    // Strings, options and sets of strings: encoding cannot fail.
    bytes.extend(postcard::to_allocvec(&stored).unwrap_or_default());
    bytes
}

fn decode(bytes: &[u8]) -> Result<Stored, String> {
    let (format, rest) = postcard::take_from_bytes::<u32>(bytes).map_err(|e| e.to_string())?;
    if format != FORMAT {
        return Err(format!("it is in format {format}, written by a newer version of dopy"));
    }
    postcard::from_bytes(rest).map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stored_registration_round_trips() {
        let slot = Slot {
            address: Some("tcp://127.0.0.1:1/calc".into()),
            object: None,
            by_reference: true,
            tags: ["a".to_owned(), "b".to_owned()].into(),
            lease: "0123".into(),
            ttl: Some(Duration::from_millis(1500)),
            expires: None,
        };
        let stored = decode(&encode(&slot)).unwrap();
        assert_eq!(stored.address, slot.address);
        assert!(stored.by_reference);
        assert_eq!(stored.tags, slot.tags);
        assert_eq!((stored.lease.as_str(), stored.ttl_ms), ("0123", Some(1500)));
    }

    #[test]
    fn registrations_are_validated() {
        assert!(validate("calc", Some("tcp://127.0.0.1:9600/calc"), false).is_ok());
        assert!(validate("calc", None, true).is_ok());
        assert!(matches!(validate("", None, true), Err(NamingError::Invalid { .. })));
        assert!(matches!(validate("calc", None, false), Err(NamingError::Invalid { .. })));
        assert!(matches!(validate("calc", Some("tcp://127.0.0.1:9600"), false), Err(NamingError::Invalid { .. })));
        assert!(matches!(validate("calc", Some("nonsense"), false), Err(NamingError::Invalid { .. })));
    }
}
