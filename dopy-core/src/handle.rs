//! Handles: [`DynObject`] (a reference to an object, local or remote) and [`Connection`] (a
//! handle to one live connection), as the layers below the peer see them.
//!
//! A [`Value`](crate::Value) can hold a reference (`Value::Ref`), a reference can reach its
//! object over a connection, and a connection's state holds values (replies, calls): the types
//! form a cycle. The modules must not, so this module declares the two handles low in the
//! layers with what they point to left opaque: a connection's state is the peer's
//! (`peer::Shared`), a local object's entry the object table's (`serve::Entry`). Those modules
//! implement the handles' behaviour (`impl Connection` in `peer`, calls on a `DynObject` in
//! `object`) and turn the opaque parts back into their own types with a checked downcast.
//!
//! Everything here is what any layer may ask of a handle: its name, equality, its timeout.

use std::any::Any;
use std::fmt;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use crate::id::Target;

/// What the opaque parts of a handle are: the peer's connection state or the object table's
/// entry, named by `name` (the endpoint, or the object's label) in messages.
pub(crate) trait Opaque: Any + Send + Sync {
    /// How the thing is named in messages and call sites.
    fn name(&self) -> &str;
}

/// A handle to a live connection; cheap to clone.
///
/// A connection this side opened closes when the last handle (and every proxy using it) is
/// dropped; one the peer opened lives until the peer closes it or the node shuts down.
#[derive(Clone)]
pub struct Connection {
    /// The connection's state (`peer::Shared`).
    pub(crate) state: Arc<dyn Opaque>,
    /// For a connection this side opened: what closes it when the last handle drops.
    pub(crate) owner: Option<Arc<dyn Any + Send + Sync>>,
}

impl Connection {
    /// Whether two handles are to the same connection.
    pub fn same(&self, other: &Connection) -> bool {
        Arc::ptr_eq(&self.state, &other.state)
    }

    /// How the other end was named when connecting (or its address, for accepted ones).
    pub fn endpoint(&self) -> &str {
        self.state.name()
    }
}

/// How calls on a [`DynObject`] reach the object.
#[derive(Clone)]
pub(crate) enum Via {
    /// Over a connection.
    Remote {
        conn: Connection,
        target: Target,
        /// Held by every handle to an object received by reference (`peer::Import`): when the
        /// last one drops, the peer is told to release the object.
        _import: Option<Arc<dyn Any + Send + Sync>>,
    },
    /// A local object, called directly (a `Remote` on the side that created it); its entry in
    /// the object table (`serve::Entry`).
    Local(Arc<dyn Opaque>),
    /// A placeholder left by a wire decode until the message's table is resolved.
    Unresolved(u32),
    /// A reference that cannot be called, and why.
    Dangling(Arc<str>),
}

/// A handle to an object, called by method name with [`Value`](crate::Value) arguments.
///
/// Every typed proxy wraps one (see [`Proxy::object`](crate::Proxy::object)), so any object can
/// also be called dynamically. A `DynObject` is also a *reference*: it can be passed as an
/// argument or returned as a result (also inside a `Value::Ref`), and the receiver gets a live
/// handle to the same object. Cheap to clone; clones share the connection.
///
/// A handle is one pointer (clones share what it holds), so that a `Value` holding one
/// (`Value::Ref`) is no larger than its other variants: every element of a `Value::Seq` and
/// every entry of a `Value::Map` has the size of the largest variant.
#[derive(Clone)]
pub struct DynObject(pub(crate) Arc<Handle>);

/// What a [`DynObject`] holds.
pub(crate) struct Handle {
    pub(crate) via: Via,
    /// The default time limit of calls made through this handle.
    pub(crate) timeout: Option<Duration>,
    /// Set once the object answered that it takes dynamic arguments only (a hand-written
    /// dispatcher): typed calls then send their arguments as values. A handle made by
    /// [`with_timeout`](DynObject::with_timeout) starts with the flag of the handle it was made
    /// from.
    pub(crate) dynamic_only: AtomicBool,
}

impl fmt::Debug for DynObject {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "DynObject({self})")
    }
}

impl fmt::Display for DynObject {
    /// `tcp://127.0.0.1:9600/calc`, `local:Cursor`, ...
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.0.via {
            Via::Remote { conn, target, .. } => write!(f, "{}/{target}", conn.endpoint()),
            Via::Local(entry) => write!(f, "local:{}", entry.name()),
            Via::Unresolved(i) => write!(f, "unresolved:{i}"),
            Via::Dangling(why) => write!(f, "dangling: {why}"),
        }
    }
}

impl PartialEq for DynObject {
    /// Two handles are equal when they reach the same object the same way.
    fn eq(&self, other: &Self) -> bool {
        self.same(other)
    }
}

impl DynObject {
    /// A handle to `target` over `conn`.
    pub fn new(conn: Connection, target: Target) -> Self {
        Self::from_via(Via::Remote { conn, target, _import: None })
    }

    pub(crate) fn from_via(via: Via) -> Self {
        DynObject(Arc::new(Handle { via, timeout: None, dynamic_only: AtomicBool::new(false) }))
    }

    pub(crate) fn unresolved(index: u32) -> Self {
        Self::from_via(Via::Unresolved(index))
    }

    pub(crate) fn dangling(why: String) -> Self {
        Self::from_via(Via::Dangling(why.into()))
    }

    /// A handle whose calls fail with `Error::DeadlineExceeded` (and are cancelled on the
    /// serving side) when no reply comes within `timeout`. The time left travels with each call
    /// and also limits the calls made while serving it. There is no default limit.
    pub fn with_timeout(&self, timeout: Duration) -> DynObject {
        DynObject(Arc::new(Handle {
            via: self.0.via.clone(),
            timeout: Some(timeout),
            dynamic_only: AtomicBool::new(self.0.dynamic_only.load(Ordering::Relaxed)),
        }))
    }

    /// The default time limit of calls made through this handle.
    pub fn timeout(&self) -> Option<Duration> {
        self.0.timeout
    }

    pub(crate) fn unresolved_index(&self) -> Option<u32> {
        match self.0.via {
            Via::Unresolved(i) => Some(i),
            _ => None,
        }
    }

    /// Whether two handles reach the same object the same way.
    pub fn same(&self, other: &DynObject) -> bool {
        match (&self.0.via, &other.0.via) {
            (Via::Remote { conn: a, target: ta, .. }, Via::Remote { conn: b, target: tb, .. }) => a.same(b) && ta == tb,
            (Via::Local(a), Via::Local(b)) => Arc::ptr_eq(a, b),
            (Via::Unresolved(a), Via::Unresolved(b)) => a == b,
            _ => false,
        }
    }

    /// The connection calls travel on (`None` for a local object).
    pub fn connection(&self) -> Option<&Connection> {
        match &self.0.via {
            Via::Remote { conn, .. } => Some(conn),
            _ => None,
        }
    }

    /// The object this handle calls, on its connection (`None` for a local object).
    pub fn target(&self) -> Option<&Target> {
        match &self.0.via {
            Via::Remote { target, .. } => Some(target),
            _ => None,
        }
    }
}
