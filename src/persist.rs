//! Persistent objects: state saved in an embedded database after every change, restored at
//! startup.
//!
//! Open a [`Store`] (one database file per node), then publish objects through it instead of
//! through [`Node::publish`]. After each `&mut self` call, the object's state is serialized and
//! committed to the database, durably, *before* the reply is sent: a caller that got its reply
//! knows the change survives a crash. When the program starts again, [`Store::publish`]
//! restores the saved state under the same name, so addresses such as
//! `tcp://host:9600/counter` keep working.
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! #[derive(Default, serde::Serialize, serde::Deserialize)]
//! pub struct Counter { hits: u64 }
//!
//! #[dopy::remote]
//! impl Counter {
//!     /// Counts one hit and returns the count.
//!     pub fn hit(&mut self) -> u64 { self.hits += 1; self.hits }
//! }
//!
//! # let dir = std::env::temp_dir().join(format!("dopy-persist-doc-{}", std::process::id()));
//! # std::fs::create_dir_all(&dir)?;
//! # let path = dir.join("counter.redb");
//! let store = dopy::persist::Store::open(&path)?;
//! let node = dopy::Node::new();
//! store.publish(&node, "counter", Counter::default)?; // restored if it was saved before
//! let addr = node.listen("tcp://127.0.0.1:0").await?;
//!
//! let counter: CounterProxy = dopy::Node::new().proxy(&format!("{addr}/counter")).await?;
//! assert_eq!(counter.hit().await?, 1); // committed before this reply arrived
//! # drop((node, store)); std::fs::remove_dir_all(&dir)?;
//! # Ok(()) }
//! ```
//!
//! # What is saved, and when
//!
//! - The whole state, after every `&mut self` call that changed it (a call that leaves the
//!   serialized state as it was commits nothing), including calls that return an error.
//!   Changes made through interior mutability in `&self` methods (a `Mutex`, an atomic) are
//!   **not** saved: mutate persistent state in `&mut self` methods.
//! - If a `&mut self` call panics, is cancelled, or its commit fails, its changes are rolled
//!   back: the next call finds the last committed state. The caller of a failed commit gets an
//!   error, never a success that would not survive a crash.
//! - Commits from every object of a store are batched (group commit): concurrent changes share
//!   one `fsync`.
//!
//! # Versions and migration
//!
//! The state is stored self-describing (as a [`Value`], struct fields by name), with the
//! version number given to [`Persistent::version`] (1 by default) and the type's name:
//!
//! - *Compatible* changes need nothing: a new field with `#[serde(default)]`, a removed field,
//!   a wider integer type.
//! - An *incompatible* change (a renamed field, a changed type) makes restoring fail with
//!   [`StoreError::Incompatible`], naming the object and the reason: the saved state is never
//!   silently replaced by a fresh one. Raise the version and give a migration, which receives
//!   the old version number and state and returns the new state:
//!
//! ```
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! # #[derive(Default, serde::Serialize, serde::Deserialize)] pub struct Counter { hits: Vec<u64> }
//! # #[dopy::remote] impl Counter { /// Hits.
//! #     pub fn hits(&self) -> usize { self.hits.len() } }
//! // Version 1 was `struct Counter { hits: u64 }`; version 2 keeps one entry per hit.
//! #[derive(serde::Deserialize)]
//! struct CounterV1 { hits: u64 }
//!
//! # let dir = std::env::temp_dir().join(format!("dopy-migrate-doc-{}", std::process::id()));
//! # std::fs::create_dir_all(&dir)?;
//! # let store = dopy::persist::Store::open(dir.join("db.redb"))?;
//! # let node = dopy::Node::new();
//! store
//!     .object("counter")
//!     .version(2)
//!     .migrate(|from, old| {
//!         assert_eq!(from, 1);
//!         let old: CounterV1 = dopy::from_value(old).map_err(|e| e.to_string())?;
//!         let hits: Vec<u64> = (1..=old.hits).collect();
//!         dopy::to_value(&Counter { hits }).map_err(|e| e.to_string())
//!     })
//!     .publish(&node, Counter::default)?;
//! # drop((node, store)); std::fs::remove_dir_all(&dir)?;
//! # Ok(()) }
//! ```
//!
//! A state saved by a *newer* version than the program's is refused
//! ([`StoreError::NewerVersion`]), so an old binary started by mistake never overwrites it.
//!
//! # The database file
//!
//! [`Store::open`] takes the path; [`Store::open_default`] uses the environment variable
//! `DOPY_DB`, or `dopy.redb` in the current directory ([`DEFAULT_PATH`]). A database file
//! belongs to one store at a time: opening one that another process, or another store of this
//! process, has open fails with [`StoreError::Locked`]. The naming service can share a node's
//! store ([`NameServer::with_store`](crate::naming::NameServer::with_store)).
//!
//! [`Node::publish`]: crate::Node::publish

mod journal;
mod object;
mod record;

use std::collections::HashSet;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use redb::Database;
use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::{Dispatch, Node, Value};
pub(crate) use journal::{write_now, Journal, Op, Table};
use object::Persisted;
use record::Unreadable;

/// The database file [`Store::open_default`] opens when `DOPY_DB` is not set: `dopy.redb`, in
/// the current directory.
pub const DEFAULT_PATH: &str = "dopy.redb";

/// The environment variable that names the database file of [`Store::open_default`].
pub const PATH_VARIABLE: &str = "DOPY_DB";

/// The table of persistent objects: object name -> record.
pub(crate) const OBJECTS: Table = Table::new("dopy.objects");

/// What can go wrong with a store.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// The database file is open elsewhere: in another process, or another store of this one.
    #[error(
        "the database `{}` is already open (by another process, or another store of this process): two nodes \
         cannot use one database file at once",
        path.display()
    )]
    Locked {
        /// The database file.
        path: PathBuf,
    },
    /// The database could not be opened, read or written.
    #[error("could not use the database `{}`", path.display())]
    Database {
        /// The database file.
        path: PathBuf,
        /// What the database reported.
        #[source]
        source: Arc<redb::Error>,
    },
    /// The store was closed while an operation was queued (the node is shutting down).
    #[error("the database `{}` is closed", path.display())]
    Closed {
        /// The database file.
        path: PathBuf,
    },
    /// The saved state does not fit the object's type (it changed incompatibly).
    #[error(
        "cannot restore `{object}`: its saved state (version {version}) does not fit `{type_name}`: {reason}; if the \
         type changed on purpose, raise the version and give a migration (`Persistent::version`, \
         `Persistent::migrate`)"
    )]
    Incompatible {
        /// The object's name.
        object: String,
        /// The type the state was read as.
        type_name: &'static str,
        /// The version of the saved state.
        version: u32,
        /// Why it does not fit, as serde says.
        reason: String,
    },
    /// The saved state is older than the object's version, and no migration was given.
    #[error(
        "cannot restore `{object}`: its saved state has version {saved} and this program expects version {current}; \
         give a migration from version {saved} (`Persistent::migrate`)"
    )]
    NoMigration {
        /// The object's name.
        object: String,
        /// The version saved.
        saved: u32,
        /// The version expected.
        current: u32,
    },
    /// The migration of an older saved state failed.
    #[error("cannot restore `{object}`: the migration from version {saved} to {current} failed: {reason}")]
    Migration {
        /// The object's name.
        object: String,
        /// The version saved.
        saved: u32,
        /// The version expected.
        current: u32,
        /// The migration's error.
        reason: String,
    },
    /// The saved state was written by a newer version of the program.
    #[error(
        "cannot restore `{object}`: its saved state has version {saved}, newer than this program's version \
         {current}; run the newer program, or migrate the state back"
    )]
    NewerVersion {
        /// The object's name.
        object: String,
        /// The version saved.
        saved: u32,
        /// The version expected.
        current: u32,
    },
    /// The saved record is unreadable: written by a newer dopy, or damaged.
    #[error("cannot restore `{object}`: its saved record is unreadable: {reason}")]
    Unreadable {
        /// The object's name.
        object: String,
        /// Why.
        reason: String,
    },
    /// The saved record disappeared while the object was published.
    #[error("the saved state of `{object}` is missing from the database")]
    Missing {
        /// The object's name.
        object: String,
    },
    /// The state could not be serialized.
    #[error("the state of `{object}` could not be saved: {reason}")]
    Encode {
        /// The object's name.
        object: String,
        /// Why.
        reason: String,
    },
    /// A change could not be committed (the call that made it failed and was rolled back).
    #[error("the state of `{object}` could not be saved; the call's changes were rolled back")]
    Save {
        /// The object's name.
        object: String,
        /// Why.
        #[source]
        source: Box<StoreError>,
    },
    /// The object is already published from this store (on this node or another).
    #[error("`{object}` is already published from this store")]
    InUse {
        /// The object's name.
        object: String,
    },
    /// The node refused the object (its name is taken, or invalid).
    #[error("could not publish `{object}`")]
    Publish {
        /// The object's name.
        object: String,
        /// The node's error.
        #[source]
        source: crate::Error,
    },
}

/// Where a published object's state came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Origin {
    /// Nothing was saved under the name: the state is new (and is now saved).
    Created,
    /// The saved state was restored.
    Restored,
    /// An older saved state was migrated (and the result saved).
    Migrated {
        /// The version migrated from.
        from: u32,
    },
}

/// A saved state, as [`Store::saved`] reads it.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub struct Saved {
    /// The version it was saved with.
    pub version: u32,
    /// The Rust type it was saved from (`std::any::type_name`), for messages.
    pub type_name: String,
    /// The state, self-describing.
    pub state: Value,
}

/// An embedded database file (redb) holding the state of persistent objects, and the naming
/// service's registrations.
///
/// Cheap to clone; the file is closed (and unlocked) when the last clone, and every object
/// published from it, is gone.
#[derive(Clone)]
pub struct Store {
    inner: Arc<Inner>,
}

struct Inner {
    db: Arc<Database>,
    path: PathBuf,
    journal: Journal,
    /// Names of the objects published from this store, so two never write the same record.
    live: Mutex<HashSet<String>>,
}

impl fmt::Debug for Store {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Store").field("path", &self.inner.path).finish_non_exhaustive()
    }
}

impl Store {
    /// Opens the database file at `path`, creating it if it does not exist (its directory must).
    ///
    /// After a crash, opening also repairs the file (redb keeps it consistent: what was committed
    /// is there, nothing else).
    ///
    /// # Errors
    ///
    /// [`StoreError::Locked`] if the file is open in another process or another store;
    /// [`StoreError::Database`] if it cannot be created or is not a redb database.
    pub fn open(path: impl AsRef<Path>) -> Result<Store, StoreError> {
        let path = path.as_ref().to_path_buf();
        let db = match Database::create(&path) {
            Ok(db) => Arc::new(db),
            Err(redb::DatabaseError::DatabaseAlreadyOpen | redb::DatabaseError::LockProtocolMismatch) => {
                return Err(StoreError::Locked { path })
            }
            Err(e) => return Err(StoreError::Database { path, source: Arc::new(e.into()) }),
        };
        let journal = Journal::start(db.clone(), path.clone())
            .map_err(|e| StoreError::Database { path: path.clone(), source: Arc::new(redb::Error::Io(e)) })?;
        tracing::debug!(path = %path.display(), "database open");
        Ok(Store { inner: Arc::new(Inner { db, path, journal, live: Mutex::new(HashSet::new()) }) })
    }

    /// Opens the database named by the environment variable `DOPY_DB`, or else `dopy.redb` in
    /// the current directory.
    ///
    /// # Errors
    ///
    /// As [`open`](Store::open).
    pub fn open_default() -> Result<Store, StoreError> {
        Store::open(Store::default_path())
    }

    /// The file [`open_default`](Store::open_default) opens.
    pub fn default_path() -> PathBuf {
        std::env::var_os(PATH_VARIABLE).map(PathBuf::from).unwrap_or_else(|| PathBuf::from(DEFAULT_PATH))
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.inner.path
    }

    /// Publishes `name` on `node` as a persistent object: restored from its saved state if there
    /// is one, else made by `init` (and saved). Shorthand for
    /// `store.object(name).publish(node, init)`, with version 1.
    ///
    /// Reads and writes the database in the calling thread: call it at startup.
    ///
    /// # Errors
    ///
    /// [`StoreError::Incompatible`] (and the other restore errors) if the saved state cannot be
    /// restored; [`StoreError::Publish`] if the node refuses the name; [`StoreError::InUse`] if
    /// this store already publishes it.
    pub fn publish<T, F>(&self, node: &Node, name: &str, init: F) -> Result<Origin, StoreError>
    where
        T: Dispatch + Serialize + DeserializeOwned,
        F: FnOnce() -> T,
    {
        self.object(name).publish(node, init)
    }

    /// Starts publishing `name` with options: a version and a migration.
    pub fn object(&self, name: &str) -> Persistent<'_> {
        Persistent { store: self, name: name.to_owned(), version: 1, migrate: None }
    }

    /// The saved state of an object, if any (whether it is published or not).
    ///
    /// # Errors
    ///
    /// [`StoreError::Database`] or [`StoreError::Unreadable`].
    pub fn saved(&self, name: &str) -> Result<Option<Saved>, StoreError> {
        let bytes = journal::read(&self.inner.db, OBJECTS, name).map_err(|e| self.db_error(e))?;
        bytes.map(|b| record::decode(&b).map_err(|e| self.unreadable(name, e))).transpose()
    }

    /// The names of the objects with a saved state, sorted.
    ///
    /// # Errors
    ///
    /// [`StoreError::Database`].
    pub fn names(&self) -> Result<Vec<String>, StoreError> {
        let entries = journal::read_all(&self.inner.db, OBJECTS).map_err(|e| self.db_error(e))?;
        Ok(entries.into_iter().map(|(name, _)| name).collect())
    }

    /// Forgets the saved state of an object that is not published; returns whether there was
    /// one.
    ///
    /// # Errors
    ///
    /// [`StoreError::InUse`] if the object is published from this store.
    pub fn remove(&self, name: &str) -> Result<bool, StoreError> {
        if self.live().contains(name) {
            return Err(StoreError::InUse { object: name.to_owned() });
        }
        let existed = self.saved(name).ok().flatten().is_some();
        journal::write_now(&self.inner.db, vec![Op::Delete(OBJECTS, name.to_owned())]).map_err(|e| self.db_error(e))?;
        Ok(existed)
    }

    /// Every entry of a table, in key order.
    pub(crate) fn read_all(&self, table: Table) -> Result<Vec<(String, Vec<u8>)>, StoreError> {
        journal::read_all(&self.inner.db, table).map_err(|e| self.db_error(e))
    }

    pub(crate) fn journal(&self) -> &Journal {
        &self.inner.journal
    }

    pub(crate) fn database(&self) -> &Database {
        &self.inner.db
    }

    pub(crate) fn db_error(&self, e: impl Into<redb::Error>) -> StoreError {
        StoreError::Database { path: self.inner.path.clone(), source: Arc::new(e.into()) }
    }

    fn unreadable(&self, name: &str, e: Unreadable) -> StoreError {
        let reason = match e {
            Unreadable::NewerFormat(n) => format!("it is in format {n}, written by a newer version of dopy"),
            Unreadable::Corrupt(why) => why,
        };
        StoreError::Unreadable { object: name.to_owned(), reason }
    }

    fn live(&self) -> std::sync::MutexGuard<'_, HashSet<String>> {
        self.inner.live.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Called when a published object goes away.
    fn release(&self, name: &str) {
        self.live().remove(name);
    }
}

/// A migration: from the saved version and state to the current state.
type Migration<'a> = Box<dyn FnOnce(u32, Value) -> Result<Value, String> + 'a>;

/// Options for publishing a persistent object; from [`Store::object`].
pub struct Persistent<'a> {
    store: &'a Store,
    name: String,
    version: u32,
    migrate: Option<Migration<'a>>,
}

impl fmt::Debug for Persistent<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Persistent").field("name", &self.name).field("version", &self.version).finish_non_exhaustive()
    }
}

impl<'a> Persistent<'a> {
    /// The version of the state's type (default 1). Raise it when the type changes
    /// incompatibly, and give a [`migrate`](Persistent::migrate) function.
    pub fn version(mut self, version: u32) -> Self {
        self.version = version;
        self
    }

    /// How to turn a state saved by an older version into the current one: called with the
    /// saved version and state, returns the state to restore (or why it cannot).
    pub fn migrate(mut self, migrate: impl FnOnce(u32, Value) -> Result<Value, String> + 'a) -> Self {
        self.migrate = Some(Box::new(migrate));
        self
    }

    /// Publishes the object on `node`, restored from its saved state if there is one, else
    /// made by `init` (and saved).
    ///
    /// Reads and writes the database in the calling thread: call it at startup.
    ///
    /// # Errors
    ///
    /// See [`Store::publish`].
    pub fn publish<T, F>(self, node: &Node, init: F) -> Result<Origin, StoreError>
    where
        T: Dispatch + Serialize + DeserializeOwned,
        F: FnOnce() -> T,
    {
        let Persistent { store, name, version, migrate } = self;
        if node.published().contains(&name) {
            let source = crate::Error::NameTaken { name: name.clone() };
            return Err(StoreError::Publish { object: name, source });
        }
        let mut live = store.live();
        if live.contains(&name) {
            return Err(StoreError::InUse { object: name });
        }
        let type_name = std::any::type_name::<T>();
        let incompatible =
            |version, reason| StoreError::Incompatible { object: name.clone(), type_name, version, reason };
        let (state, origin) = match store.saved(&name)? {
            None => (init(), Origin::Created),
            Some(saved) if saved.version == version => {
                let state = record::state(saved.state).map_err(|reason| incompatible(saved.version, reason))?;
                (state, Origin::Restored)
            }
            Some(saved) if saved.version > version => {
                return Err(StoreError::NewerVersion { object: name, saved: saved.version, current: version });
            }
            Some(saved) => {
                let Some(migrate) = migrate else {
                    return Err(StoreError::NoMigration { object: name, saved: saved.version, current: version });
                };
                let migrated = migrate(saved.version, saved.state).map_err(|reason| StoreError::Migration {
                    object: name.clone(),
                    saved: saved.version,
                    current: version,
                    reason,
                })?;
                let state = record::state(migrated).map_err(|reason| StoreError::Migration {
                    object: name.clone(),
                    saved: saved.version,
                    current: version,
                    reason: format!("the migrated state does not fit `{type_name}`: {reason}"),
                })?;
                (state, Origin::Migrated { from: saved.version })
            }
        };
        let bytes = record::state_value(&state)
            .and_then(|value| record::encode(version, type_name, &value))
            .map_err(|reason| StoreError::Encode { object: name.clone(), reason })?;
        if origin != Origin::Restored {
            journal::write_now(store.database(), vec![Op::Put(OBJECTS, name.clone(), bytes.clone())])
                .map_err(|e| store.db_error(e))?;
        }
        let object = Persisted::new(state, store.clone(), name.clone(), version, bytes);
        live.insert(name.clone());
        drop(live);
        if let Err(source) = node.publish(&name, object) {
            // Dropping the refused object released the name already.
            return Err(StoreError::Publish { object: name, source });
        }
        tracing::debug!(object = %name, ?origin, path = %store.path().display(), "persistent object published");
        Ok(origin)
    }
}
