//! The naming service: find objects by name, with leases that expire when their server dies,
//! tags, watches, and registrations kept in an embedded database across restarts.
//!
//! - [`NameServer`] keeps the names and serves them as an ordinary remote object,
//!   [`NameService`], published by convention as `naming` ([`DEFAULT_NAME`]); `dopy serve
//!   names` (the command-line tool) and the `dopy_names` example run a stand-alone one.
//! - [`Names`] is the client: [`lookup`] a name and get a typed proxy in one call, register a
//!   name ([`Names::register`] returns a [`Registration`] that renews its lease until dropped),
//!   list by prefix, search by tags, remove, and [`watch`](Names::watch).
//!
//! ```
//! # #[derive(Default)] pub struct Calculator;
//! # #[dopy::remote] impl Calculator { /// Adds.
//! #     pub fn add(&self, a: i64, b: i64) -> i64 { a + b } }
//! # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! use dopy::naming::{Event, NameServer, Names};
//!
//! let name_node = dopy::Node::new();
//! NameServer::in_memory().publish(&name_node)?;
//! let names_at = name_node.listen("tcp://127.0.0.1:0").await?.to_string();
//!
//! let server = dopy::Node::new();
//! server.publish("calc", Calculator::default())?;
//! let addr = server.listen("tcp://127.0.0.1:0").await?;
//!
//! let names = Names::connect(&dopy::Node::new(), &names_at).await?;
//! let mut watch = names.watch("").await?;
//!
//! let reg = Names::connect(&server, &names_at).await?.register("calc", &format!("{addr}/calc")).await?;
//! assert!(matches!(watch.next().await, Some(Event::Registered(e)) if e.name == "calc"));
//! let calc: CalculatorProxy = names.lookup("calc").await?;
//! assert_eq!(calc.add(1, 2).await?, 3);
//!
//! drop(reg); // removes the name
//! assert!(matches!(watch.next().await, Some(Event::Removed { name, .. }) if name == "calc"));
//! # Ok(()) }
//! ```
//!
//! # Leases
//!
//! A registration made through [`Names::register`] is a lease ([`DEFAULT_LEASE`], 10 s, unless
//! set with [`Register::lease`]) that the registering process renews every third of the lease
//! time. If that process dies, or is cut off, its names are removed when their lease runs out,
//! and watchers hear [`Removal::Expired`]. A registration with no lease (the raw
//! `register` method with `lease_ms` = `None`, or `dopy names register` without `--hold`)
//! stays until removed.
//!
//! # What is stored, and restarts
//!
//! A registration names an object by **address** (`tcp://HOST:PORT/OBJECT`: lookups connect
//! there directly), by **reference** (a live handle over the registrant's connection to the
//! name server: lookups reach it through the name server, which works where nothing can
//! connect to the registrant), or both. The database keeps, per name: the address, the tags,
//! the lease id and its length, and whether a reference was given. A live reference cannot
//! outlive the connection it came on, so it is not stored.
//!
//! When a name server restarts on its database, every registration comes back. Each one with a
//! lease gets one full lease time, counted from the restart, to be renewed: registrants that
//! are alive reconnect and renew within it (sending their reference again, if they gave one);
//! those that died meanwhile expire as usual. A registration by reference alone answers
//! lookups with [`NamingError::Unreachable`] until its registrant has renewed.
//!
//! # Who may change names
//!
//! By default, anyone who can connect to the name server may register and remove names. To
//! restrict changes, serve the registry twice from one process: the writable service on a
//! node that requires the shared secret ([`NodeBuilder::secret`]), and a read-only one
//! ([`NameServer::read_only`], which refuses changes with [`NamingError::ReadOnly`]) on an
//! open node:
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let names = dopy::naming::NameServer::in_memory();
//! let admin = dopy::Node::builder().secret("correct horse").build();
//! names.publish(&admin)?; // register, remove: peers that know the secret
//! admin.listen("tcp://127.0.0.1:0").await?;
//! let public = dopy::Node::new();
//! names.publish_read_only(&public)?; // lookup, list, search, watch: anyone
//! public.listen("tcp://127.0.0.1:0").await?;
//! # Ok(()) }
//! ```
//!
//! `dopy serve names --secret-env VAR --public ADDR` does this.
//!
//! [`NodeBuilder::secret`]: crate::NodeBuilder::secret

mod client;
mod limits;
mod registry;
mod service;

use std::collections::BTreeSet;
use std::fmt;
use std::path::Path;
use std::sync::Arc;

use dopy_core::DynObject;
use serde::{Deserialize, Serialize};

/// Whether a registered address may be dialled by whoever looks it up: only transports that
/// connect to something, never ones that start a process on the client (`exec:`, `ssh://`,
/// whose command and options would come from the registrant).
pub(crate) fn dialable(address: &crate::Address) -> Result<(), String> {
    use crate::Endpoint;
    match address.endpoint {
        Endpoint::Tcp { .. } | Endpoint::Tls { .. } | Endpoint::Unix { .. } | Endpoint::Memory { .. } => Ok(()),
        _ => Err(format!(
            "`{}` would start a process on whoever looks the name up: register tcp://, tls://, unix: or \
             memory:// addresses (or an object reference)",
            address.endpoint
        )),
    }
}

pub use client::{lookup, naming_error, Names, Register, Registration, Watch, Watcher, WatcherProxy, DEFAULT_LEASE};
pub use limits::{
    Limit, NameServerBuilder, DEFAULT_MAX_ADDRESS_BYTES, DEFAULT_MAX_NAMES, DEFAULT_MAX_NAMES_PER_REGISTRANT,
    DEFAULT_MAX_NAME_BYTES, DEFAULT_MAX_TAGS, DEFAULT_MAX_TAG_BYTES, DEFAULT_MAX_WATCHES, DEFAULT_PAGE_BYTES,
    DEFAULT_WATCH_BACKLOG,
};
use registry::Registry;
pub use service::{NameService, NameServiceProxy, Subscription, SubscriptionProxy};

use crate::persist::{Store, StoreError};
use crate::{Error, Node};

/// The name under which a node publishes its name service by convention: `naming`.
pub const DEFAULT_NAME: &str = "naming";

/// A registered name, as lookups, lists and watches return it.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Entry {
    /// The name.
    pub name: String,
    /// Where the object is (`tcp://HOST:PORT/OBJECT`), if registered by address.
    pub address: Option<String>,
    /// A live reference to the object, if registered by reference and still reachable.
    pub object: Option<DynObject>,
    /// Metadata tags.
    pub tags: BTreeSet<String>,
    /// The lease time in milliseconds; `None` for a registration that stays until removed.
    pub lease_ms: Option<u64>,
}

/// One page of registrations, from [`NameService::list_page`] or
/// [`Subscription::existing`]: sorted by name, as many as fit in the page's bytes.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Page {
    /// The registrations.
    pub entries: Vec<Entry>,
    /// Where the next page starts (pass it as `after`): the last name of this page, or `None`
    /// if this is the last page.
    pub next: Option<String>,
}

/// A lease granted by [`NameService::register`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Lease {
    /// The lease id: renews and releases it (keep it to yourself).
    pub id: String,
    /// The lease time granted, in milliseconds (at least 50); `None` for no lease.
    pub lease_ms: Option<u64>,
}

/// A change a watcher hears of.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[non_exhaustive]
pub enum Event {
    /// A name was registered (or registered again).
    Registered(Entry),
    /// A name was removed.
    Removed {
        /// The name.
        name: String,
        /// Why.
        reason: Removal,
    },
}

/// Why a name was removed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub enum Removal {
    /// Removed by `remove`.
    Removed,
    /// Its registrant released it (dropped its [`Registration`]).
    Released,
    /// Its lease ran out: the registrant died or was cut off.
    Expired,
    /// Another registration took the name over (a `Registered` event follows).
    Replaced,
}

/// The name service's own errors (in [`CallError::Method`](crate::CallError::Method)).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[non_exhaustive]
pub enum NamingError {
    /// No such name.
    #[error("no name `{name}` is registered")]
    NotFound {
        /// The name looked up.
        name: String,
    },
    /// The name is registered by another registrant.
    #[error("the name `{name}` is already registered{}; replace it explicitly to take it over", at(address))]
    Taken {
        /// The name.
        name: String,
        /// The address it is registered with, if any.
        address: Option<String>,
    },
    /// The lease is unknown: it ran out, or was released.
    #[error("the lease `{lease}` is unknown: it ran out or was released")]
    UnknownLease {
        /// The lease id.
        lease: String,
    },
    /// This service is read-only.
    #[error("this name service is read-only: registering and removing names needs the writable service")]
    ReadOnly,
    /// The registration is malformed.
    #[error("cannot register `{name}`: {reason}")]
    Invalid {
        /// The name.
        name: String,
        /// What is wrong.
        reason: String,
    },
    /// The name is registered by reference only, and the reference is gone.
    #[error(
        "`{name}` is registered by reference only, and the reference is gone (its registrant disconnected, or the \
         name server restarted); it comes back when the registrant renews its lease"
    )]
    Unreachable {
        /// The name.
        name: String,
    },
    /// A limit of the name server was reached: the registration (or watch) was refused.
    #[error("refused: the name server allows at most {max} {limit}")]
    LimitReached {
        /// Which limit.
        limit: Limit,
        /// Its value on this name server.
        max: u64,
    },
    /// The change could not be saved in the name server's database (and was not made).
    #[error("the name server could not save the change: {reason}")]
    Storage {
        /// Why.
        reason: String,
    },
}

fn at(address: &Option<String>) -> String {
    address.as_ref().map(|a| format!(" (to {a})")).unwrap_or_default()
}

/// A name server: the registry of names that [`NameService`] objects serve.
///
/// Cheap to clone; clones share the registry. Publish it on any number of nodes, writable or
/// read-only.
#[derive(Clone)]
pub struct NameServer {
    registry: Arc<Registry>,
    path: Option<std::path::PathBuf>,
}

/// The largest frame a service not published with [`NameServer::publish`] is assumed to have:
/// the nodes' default.
const DEFAULT_FRAME: usize = 16 * 1024 * 1024;

impl fmt::Debug for NameServer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NameServer").field("path", &self.path).finish_non_exhaustive()
    }
}

impl NameServer {
    /// Settings (the limits) for a name server; the constructors below use the defaults.
    pub fn builder() -> NameServerBuilder {
        NameServerBuilder::default()
    }

    /// A name server whose names are kept in the database file at `path` (created if needed)
    /// and restored from it.
    ///
    /// # Errors
    ///
    /// As [`Store::open`] ([`StoreError::Locked`] if another process has the file open), or
    /// [`StoreError::Unreadable`] if a stored registration cannot be read.
    pub fn open(path: impl AsRef<Path>) -> Result<NameServer, StoreError> {
        NameServer::builder().open(path)
    }

    /// A name server whose names are kept in `store` (shared, say, with the node's persistent
    /// objects) and restored from it.
    ///
    /// # Errors
    ///
    /// [`StoreError::Database`], or [`StoreError::Unreadable`] if a stored registration cannot
    /// be read.
    pub fn with_store(store: &Store) -> Result<NameServer, StoreError> {
        NameServer::builder().with_store(store)
    }

    /// A name server that keeps its names in memory only: they last as long as the process.
    pub fn in_memory() -> NameServer {
        NameServer::builder().in_memory()
    }

    /// The writable service, to publish on a node (whose `max_frame` is at least the
    /// [page size](NameServerBuilder::page_bytes)).
    pub fn service(&self) -> NameService {
        NameService::new(self.registry.clone(), true, DEFAULT_FRAME)
    }

    /// A read-only service: lookups, lists, searches and watches; changes are refused with
    /// [`NamingError::ReadOnly`].
    pub fn read_only(&self) -> NameService {
        NameService::new(self.registry.clone(), false, DEFAULT_FRAME)
    }

    /// Publishes the writable service on `node` as `naming`; its pages fit in the node's
    /// frames.
    ///
    /// # Errors
    ///
    /// As [`Node::publish`].
    pub fn publish(&self, node: &Node) -> Result<(), Error> {
        node.publish(DEFAULT_NAME, NameService::new(self.registry.clone(), true, node.max_frame()))
    }

    /// Publishes a read-only service on `node` as `naming`; its pages fit in the node's frames.
    ///
    /// # Errors
    ///
    /// As [`Node::publish`].
    pub fn publish_read_only(&self, node: &Node) -> Result<(), Error> {
        node.publish(DEFAULT_NAME, NameService::new(self.registry.clone(), false, node.max_frame()))
    }

    /// The registrations whose name starts with `prefix`, as this server has them now.
    pub fn list(&self, prefix: &str) -> Vec<Entry> {
        self.registry.list(prefix)
    }
}
