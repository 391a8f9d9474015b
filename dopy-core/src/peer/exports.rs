//! Reference bookkeeping of one connection: exports (with the peer's reference counts) and
//! imports (released when their last handle drops).
//!
//! Counting: each time this side sends a reference to one of its objects (`RefWire::Mine`), the
//! export's count goes up by one; the peer counts the references it received and, when its last
//! handle drops, sends `Release { count }`. The export goes when its count reaches zero, or when
//! the connection closes.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Weak};

use super::{lock, Shared};
use crate::codec::{Message, ObjectId, RefWire, Target, TargetIn};
use crate::handle::{DynObject, Via};
use crate::serve::table::Entry;

/// What makes two exports the same object (so that sending it twice reuses its id).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
enum Key {
    /// A local object, by the address of its entry.
    Local(usize),
    /// A reference to an object on another connection, by that connection and target.
    Remote(usize, Target),
}

struct Export {
    entry: Arc<Entry>,
    count: u64,
    key: Key,
}

/// Exports and imports of one connection.
#[derive(Default)]
pub(crate) struct RefTables {
    exports: HashMap<ObjectId, Export>,
    by_key: HashMap<Key, ObjectId>,
    imports: HashMap<ObjectId, Weak<Import>>,
}

impl RefTables {
    pub(crate) fn exported(&self) -> usize {
        self.exports.len()
    }

    pub(crate) fn imported(&self) -> usize {
        self.imports.values().filter(|w| w.strong_count() > 0).count()
    }

    pub(crate) fn exported_entry(&self, id: &ObjectId) -> Option<Arc<Entry>> {
        self.exports.get(id).map(|e| e.entry.clone())
    }

    /// Counts one more reference to an export, creating it if needed; `None` if that would
    /// make more than `limit` exports.
    fn export(&mut self, key: Key, limit: usize, make: impl FnOnce() -> Arc<Entry>) -> Option<ObjectId> {
        if let Some(id) = self.by_key.get(&key) {
            if let Some(e) = self.exports.get_mut(id) {
                e.count += 1;
                return Some(*id);
            }
        }
        if self.exports.len() >= limit {
            return None;
        }
        let id = ObjectId::random();
        self.by_key.insert(key.clone(), id);
        self.exports.insert(id, Export { entry: make(), count: 1, key });
        Some(id)
    }

    /// Takes back `count` references; returns the entry if the export is gone (to be dropped
    /// outside the lock).
    pub(crate) fn release(&mut self, id: ObjectId, count: u32) -> Option<Arc<Entry>> {
        let export = self.exports.get_mut(&id)?;
        export.count = export.count.saturating_sub(u64::from(count));
        if export.count > 0 {
            return None;
        }
        let export = self.exports.remove(&id)?;
        self.by_key.remove(&export.key);
        Some(export.entry)
    }

    /// Forgets everything (the connection ended); returns the entries to drop outside the lock.
    pub(crate) fn clear(&mut self) -> Vec<Arc<Entry>> {
        self.by_key.clear();
        self.imports.clear();
        self.exports.drain().map(|(_, e)| e.entry).collect()
    }
}

/// This side's hold on an object the peer exported: when the last handle drops, the peer is
/// told how many references it may release.
#[derive(Debug)]
pub struct Import {
    id: ObjectId,
    /// References received so far.
    count: AtomicU32,
    shared: Weak<Shared>,
}

impl Import {
    /// The object's id on the peer.
    pub fn id(&self) -> ObjectId {
        self.id
    }
}

impl std::fmt::Debug for Shared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Connection").field("endpoint", &self.endpoint).finish_non_exhaustive()
    }
}

impl Drop for Import {
    fn drop(&mut self) {
        let Some(shared) = self.shared.upgrade() else { return };
        {
            let mut refs = lock(&shared.refs);
            // A newer import of the same id may have replaced this one: leave it.
            if refs.imports.get(&self.id).is_some_and(|w| w.strong_count() == 0) {
                refs.imports.remove(&self.id);
            }
        }
        let count = *self.count.get_mut();
        if let Ok((frame, _)) = shared.encode::<crate::Value>(Message::Release { object: self.id, count }, Vec::new()) {
            let _ = shared.send::<crate::Value>(super::Out::Frame(frame));
        }
    }
}

/// The references of an encoded message, until its frame is queued.
///
/// `ids` are the exports whose counts the message raised (taken back if it is never sent).
/// `held` are the handles the message names: the last handle of an import may be among them
/// (an object of the peer's handed straight back to it), and dropping it sends a `Release`,
/// which must not overtake the message (PROTOCOL.md, "Releasing references"). They are dropped
/// once the frame is queued, behind it.
#[derive(Default)]
pub(super) struct Exported {
    pub(super) ids: Vec<ObjectId>,
    pub(super) held: Vec<DynObject>,
}

/// Why the references of a message could not be sent.
#[derive(Debug)]
pub(super) enum Unsent {
    /// Exporting them would pass the node's limit of exports per connection.
    Limit(String),
    /// A reference that cannot travel (a dangling one, say).
    Unsendable(String),
}

impl Shared {
    /// Turns the references a message carries into wire entries, exporting what needs it.
    /// Returns the entries and the ids whose counts went up; on failure, nothing is exported.
    pub(super) fn export_all(&self, objects: &[DynObject]) -> Result<(Vec<RefWire>, Vec<ObjectId>), Unsent> {
        let limit = self.host.max_exports;
        let mut wire = Vec::with_capacity(objects.len());
        let mut exported = Vec::new();
        let mut refs = lock(&self.refs);
        for obj in objects {
            let id = if let (Some(conn), Some(target)) = (obj.connection(), obj.target()) {
                if std::ptr::addr_eq(Arc::as_ptr(&conn.state), self) {
                    // The peer's own object going back to it.
                    wire.push(RefWire::Yours(target.clone()));
                    continue;
                }
                let key = Key::Remote(Arc::as_ptr(&conn.state) as *const () as usize, target.clone());
                refs.export(key, limit, || Arc::new(Entry::forwarder(obj.to_string(), obj.clone())))
            } else if let Some(entry) = obj.local_entry() {
                refs.export(Key::Local(Arc::as_ptr(&entry) as usize), limit, || entry)
            } else {
                drop(refs);
                self.unexport(&exported);
                return Err(Unsent::Unsendable(format!("cannot send the reference {obj}")));
            };
            let Some(id) = id else {
                drop(refs);
                self.unexport(&exported);
                return Err(Unsent::Limit(format!(
                    "{limit} objects are already exported on this connection (the limit of node `{}`); \
                     the reference {obj} was not sent",
                    self.host.name
                )));
            };
            exported.push(id);
            wire.push(RefWire::Mine(id));
        }
        Ok((wire, exported))
    }

    /// Undoes exports made for a message that was not sent.
    pub(super) fn unexport(&self, ids: &[ObjectId]) {
        let dropped: Vec<_> = {
            let mut refs = lock(&self.refs);
            ids.iter().filter_map(|id| refs.release(*id, 1)).collect()
        };
        drop(dropped);
    }

    /// Turns the wire entries of a received message into handles.
    pub(super) fn import_all(self: &Arc<Self>, wire: Vec<RefWire>) -> Vec<DynObject> {
        if wire.is_empty() {
            return Vec::new();
        }
        wire.into_iter().map(|w| self.import(w)).collect()
    }

    fn import(self: &Arc<Self>, wire: RefWire) -> DynObject {
        match wire {
            RefWire::Mine(id) => {
                let import = {
                    let mut refs = lock(&self.refs);
                    match refs.imports.get(&id).and_then(Weak::upgrade) {
                        Some(import) => {
                            import.count.fetch_add(1, Ordering::Relaxed);
                            import
                        }
                        None => {
                            let import =
                                Arc::new(Import { id, count: AtomicU32::new(1), shared: Arc::downgrade(self) });
                            refs.imports.insert(id, Arc::downgrade(&import));
                            import
                        }
                    }
                };
                DynObject::from_via(Via::Remote {
                    conn: self.connection(),
                    target: Target::Id(id),
                    _import: Some(import),
                })
            }
            RefWire::Yours(target) => match self.resolve_target(TargetIn::of(&target)) {
                Some(entry) => DynObject::from_entry(entry),
                None => DynObject::dangling(format!("object `{target}` is gone")),
            },
        }
    }
}
