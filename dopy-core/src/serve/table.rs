//! [`ObjectTable`]: the objects a node serves, by name.

use rustc_hash::FxHashMap;
use std::any::Any;
use std::fmt;
use std::sync::{Arc, RwLock};

use crate::handle::{DynObject, Opaque, Via};
use crate::serve::chain::{self, Found, Hold, Holders, SharedGuard};

mod serial;

use crate::codec::Target;
use crate::codec::{Fault, FaultKind};
use crate::interface::Interface;
use crate::serve::dispatch::{Dispatch, Dispatched, Invocation, Reply};
use crate::serve::panic::{self, CatchUnwind};
use serial::Serial;
pub use serial::Ticket;

/// A served object: its lock, its interface (read once, at publication) and its label.
pub struct Entry {
    /// How the object is named in traces.
    label: String,
    /// The interface, cached so introspection never waits for a running `&mut self` call.
    interface: Interface,
    /// The object, behind its lock if it needs one.
    object: Held,
    /// A forwarder (a reference handed on): introspection is forwarded too.
    forwards: bool,
    /// The call chains holding the object, to refuse re-entrant calls that would deadlock.
    holders: Holders,
    /// For a serial object, the queue of calls.
    serial: Option<Arc<Serial>>,
    /// The methods that may run in the connection's reader (see [`Entry::inline`]).
    inline: Vec<&'static str>,
}

/// How an [`Entry`] holds its object.
enum Held {
    /// Behind a lock: `&self` calls share the read lock; `&mut self` calls take the write lock.
    Locked(Arc<tokio::sync::RwLock<dyn Dispatch>>),
    /// Not behind a lock: an object whose calls all have shared access
    /// ([`Dispatch::needs_exclusive`] is false) and that is not serial (a serial object's hold
    /// on a call chain is its read guard).
    Free(Arc<dyn Dispatch>),
}

/// An entry is what [`DynObject`] keeps opaque for a local object.
impl Opaque for Entry {
    fn name(&self) -> &str {
        self.label()
    }
}

/// Handles to local objects: made from, and turned back into, their entries.
impl DynObject {
    /// A handle that calls the object of `entry` directly.
    pub(crate) fn from_entry(entry: Arc<Entry>) -> Self {
        Self::from_via(Via::Local(entry))
    }

    /// The local object behind this handle, if it is local.
    pub(crate) fn local_entry(&self) -> Option<Arc<Entry>> {
        match &self.0.via {
            Via::Local(entry) => (entry.clone() as Arc<dyn Any + Send + Sync>).downcast().ok(),
            _ => None,
        }
    }
}

impl fmt::Debug for Entry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Entry").field("label", &self.label).field("interface", &self.interface.name).finish()
    }
}

impl Entry {
    /// Wraps an object for serving.
    pub fn new<T: Dispatch>(label: impl Into<String>, object: T) -> Self {
        Entry::build(label.into(), object, false)
    }

    fn build<T: Dispatch>(label: String, object: T, serial: bool) -> Self {
        let interface = object.interface();
        // Only methods the interface lists: a hand-written `Dispatch` cannot make anything else
        // inline, nor an `async fn` (whose future would be polled in the reader).
        let inline = object
            .inline_methods()
            .iter()
            .filter(|name| interface.methods.iter().any(|m| m.name == **name && !m.is_async))
            .copied()
            .collect();
        let object = if serial || object.needs_exclusive() {
            Held::Locked(Arc::new(tokio::sync::RwLock::new(object)))
        } else {
            Held::Free(Arc::new(object))
        };
        Entry {
            inline,
            label,
            interface,
            object,
            forwards: false,
            holders: Holders::default(),
            serial: serial.then(Arc::default),
        }
    }

    /// Wraps an object that takes one call at a time, in arrival order (an actor).
    pub fn serial<T: Dispatch>(label: impl Into<String>, object: T) -> Self {
        Entry::build(label.into(), object, true)
    }

    /// Whether the object takes one call at a time, in arrival order.
    pub fn is_serial(&self) -> bool {
        self.serial.is_some()
    }

    /// For a serial object, a place in its queue (take it when the call arrives); `None` for a
    /// concurrent object.
    pub fn ticket(&self) -> Option<Ticket> {
        self.serial.as_ref().map(Serial::ticket)
    }

    /// Wraps a handle to an object elsewhere, so that calls to it are forwarded.
    pub fn forwarder(label: impl Into<String>, object: crate::handle::DynObject) -> Self {
        Entry { forwards: true, ..Entry::new(label, object) }
    }

    /// Whether `method` must run to the end even if its caller cancels (`#[dopy(no_cancel)]`).
    pub fn no_cancel(&self, method: &str) -> bool {
        self.interface.methods.iter().any(|m| m.no_cancel && m.name == method)
    }

    /// Whether a call of `method` may run in the connection's reader, without a task of its
    /// own: the object says the method is short and never blocks ([`Dispatch::inline_methods`]).
    pub fn inline(&self, method: &str) -> bool {
        self.inline_name(method).is_some()
    }

    /// [`inline`](Entry::inline), returning the method's name as the object declared it: a
    /// `'static` name that a call can keep (for its error trace) without copying it.
    pub fn inline_name(&self, method: &str) -> Option<&'static str> {
        if self.forwards || self.serial.is_some() {
            return None;
        }
        self.inline.iter().copied().find(|m| *m == method)
    }

    /// [`call`](Entry::call) on a shared entry, as a future that owns it (`'static`).
    pub async fn call_owned(self: Arc<Self>, inv: Invocation, ticket: Option<Ticket>) -> Reply {
        self.call(inv, ticket).await
    }

    /// Whether this entry forwards calls to an object elsewhere.
    pub fn forwards(&self) -> bool {
        self.forwards
    }

    /// Runs one call on the object: shared access first, exclusive if the method needs it;
    /// panics become faults; re-entrant calls that would deadlock fail at once. A serial object
    /// runs the call when `ticket` (taken on arrival; a fresh one if `None`) comes up.
    pub async fn call(&self, inv: Invocation, ticket: Option<Ticket>) -> Reply {
        let object = match &self.object {
            // Every call has shared access, and no chain can hold the object exclusively: no
            // lock, no holds to record.
            Held::Free(object) => {
                return match panic::catch(|| object.dispatch(inv)) {
                    Err(fault) => Err(fault),
                    Ok(Dispatched::Ready(reply)) => reply,
                    Ok(Dispatched::Pending(fut)) => CatchUnwind::new(fut).await.unwrap_or_else(Err),
                    Ok(Dispatched::NotFound(inv)) => Err(self.no_such_method(&inv)),
                    // As the locked path answers a `RequiresMut` from `dispatch_mut`: the object
                    // serves no such call (a method's fault would promise the caller an error value).
                    Ok(Dispatched::RequiresMut(inv)) => Err(Box::new(Fault::new(
                        FaultKind::NoSuchMethod,
                        format!(
                            "`{}` on `{}` asked for exclusive access, which the object said none of its methods needs",
                            inv.method(),
                            self.label
                        ),
                    ))),
                };
            }
            Held::Locked(object) => object,
        };
        let chain = chain::current().unwrap_or(0);
        let ticket = ticket.or_else(|| self.ticket());
        let _turn = match &ticket {
            None => None,
            Some(ticket) => {
                // A serial object's calls wait for each other: coming back to it from a call of
                // the same chain would wait for itself.
                if let Found::Deadlock(_) | Found::Shared(_) = self.holders.check(chain, true) {
                    let why = "it is serial and busy with a call of this call chain";
                    return Err(self.reentrant(&inv, why));
                }
                ticket.turn().await;
                Some(())
            }
        };
        // Shared access first (one future for the whole call, not one per step: a call that
        // completes in its first poll moves its state once).
        let guard = match self.holders.check(chain, false) {
            Found::Deadlock(why) => return Err(self.reentrant(&inv, &why)),
            Found::Shared(guard) => guard,
            // Uncontended (the usual case), the lock is taken at once: no acquire future, no
            // waiter. Contended, the call queues as before (`try_read_owned` takes a permit only
            // where the first poll of `read_owned` would, so a queued writer still goes first).
            Found::Free => SharedGuard::new(match object.clone().try_read_owned() {
                Ok(guard) => guard,
                Err(_) => object.clone().read_owned().await,
            }),
        };
        let token = self.holders.hold(chain, Hold::Shared(guard.downgrade()));
        let inv = match panic::catch(|| guard.object().dispatch(inv)) {
            Err(fault) => return Err(fault),
            Ok(Dispatched::Ready(reply)) => return reply,
            Ok(Dispatched::Pending(fut)) => return CatchUnwind::new(fut).await.unwrap_or_else(Err),
            Ok(Dispatched::NotFound(inv)) => return Err(self.no_such_method(&inv)),
            Ok(Dispatched::RequiresMut(inv)) => inv,
        };
        drop(token);
        drop(guard);
        if let Found::Deadlock(why) = self.holders.check(chain, true) {
            return Err(self.reentrant(&inv, &why));
        }
        let mut guard = object.clone().write_owned().await;
        let _token = self.holders.hold(chain, Hold::Exclusive(inv.method().to_owned()));
        let reply = match panic::catch(|| guard.dispatch_mut(inv)) {
            Err(fault) => Err(fault),
            Ok(Dispatched::Ready(reply)) => reply,
            Ok(Dispatched::Pending(fut)) => CatchUnwind::new(fut).await.unwrap_or_else(Err),
            Ok(Dispatched::NotFound(inv) | Dispatched::RequiresMut(inv)) => Err(self.no_such_method(&inv)),
        };
        reply
    }

    fn reentrant(&self, inv: &Invocation, why: &str) -> Box<Fault> {
        Box::new(Fault::new(
            FaultKind::Reentrant,
            format!("re-entrant call to `{}` on `{}` would deadlock: {why}", inv.method(), self.label),
        ))
    }

    fn no_such_method(&self, inv: &Invocation) -> Box<Fault> {
        Box::new(Fault::new(
            FaultKind::NoSuchMethod,
            format!("`{}` ({}) has no remote method `{}`", self.label, self.interface.name, inv.method()),
        ))
    }

    /// How the object is named in traces.
    pub fn label(&self) -> &str {
        &self.label
    }

    /// The object's interface.
    pub fn interface(&self) -> &Interface {
        &self.interface
    }
}

/// The objects a node serves by name.
#[derive(Debug, Default)]
pub struct ObjectTable {
    /// Hashed with `FxHash` instead of SipHash: every call looks its target up by name, and
    /// SipHash costs more than the lookup's lock. Not keyed, which is safe here: only the server
    /// publishes names, so a peer can choose what it looks up but not what collides.
    named: RwLock<FxHashMap<String, Arc<Entry>>>,
}

impl ObjectTable {
    /// Creates an empty table.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds an object under a name; returns `false` (and changes nothing) if the name is taken.
    pub fn publish(&self, name: &str, entry: Entry) -> bool {
        let mut named = self.named.write().unwrap_or_else(|e| e.into_inner());
        if named.contains_key(name) {
            return false;
        }
        named.insert(name.to_owned(), Arc::new(entry));
        true
    }

    /// Removes a published object; calls in progress finish. Returns whether it existed.
    pub fn unpublish(&self, name: &str) -> bool {
        self.named.write().unwrap_or_else(|e| e.into_inner()).remove(name).is_some()
    }

    /// Finds the object a call is for.
    pub fn resolve(&self, target: &Target) -> Option<Arc<Entry>> {
        match target {
            Target::Name(name) => self.get(name),
            Target::Id(_) => None,
        }
    }

    /// Finds the object published under `name`.
    pub fn get(&self, name: &str) -> Option<Arc<Entry>> {
        self.named.read().unwrap_or_else(|e| e.into_inner()).get(name).cloned()
    }

    /// The published names, sorted.
    pub fn names(&self) -> Vec<String> {
        let mut names: Vec<String> = self.named.read().unwrap_or_else(|e| e.into_inner()).keys().cloned().collect();
        names.sort();
        names
    }
}
