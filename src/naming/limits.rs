//! The limits of a name server: how large a registration may be, how many there may be, how
//! many watches, and how large one page of a list is. Set with [`NameServerBuilder`].

use std::fmt;
use std::path::Path;

use serde::{Deserialize, Serialize};

use super::registry::Registry;
use super::NameServer;
use crate::persist::{Store, StoreError};

/// Default of [`NameServerBuilder::max_name_bytes`]: 256 bytes.
pub const DEFAULT_MAX_NAME_BYTES: usize = 256;
/// Default of [`NameServerBuilder::max_address_bytes`]: 512 bytes.
pub const DEFAULT_MAX_ADDRESS_BYTES: usize = 512;
/// Default of [`NameServerBuilder::max_tag_bytes`]: 128 bytes.
pub const DEFAULT_MAX_TAG_BYTES: usize = 128;
/// Default of [`NameServerBuilder::max_tags`]: 32 tags per registration.
pub const DEFAULT_MAX_TAGS: usize = 32;
/// Default of [`NameServerBuilder::max_names_per_registrant`]: 1,000 names.
pub const DEFAULT_MAX_NAMES_PER_REGISTRANT: usize = 1_000;
/// Default of [`NameServerBuilder::max_names`]: 10,000 names.
pub const DEFAULT_MAX_NAMES: usize = 10_000;
/// Default of [`NameServerBuilder::max_watches`]: 1,024 watches.
pub const DEFAULT_MAX_WATCHES: usize = 1_024;
/// Default of [`NameServerBuilder::watch_backlog`]: 1,024 events.
pub const DEFAULT_WATCH_BACKLOG: usize = 1_024;
/// Default of [`NameServerBuilder::page_bytes`]: 64 KiB.
pub const DEFAULT_PAGE_BYTES: usize = 64 * 1024;

/// The smallest page budget: one registration of the largest size the defaults allow fits.
const MIN_PAGE_BYTES: usize = 8 * 1024;

/// A limit of a name server, as [`NamingError::LimitReached`](super::NamingError::LimitReached)
/// names it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[non_exhaustive]
pub enum Limit {
    /// The length of a name, in bytes ([`NameServerBuilder::max_name_bytes`]).
    NameBytes,
    /// The length of an address, in bytes ([`NameServerBuilder::max_address_bytes`]).
    AddressBytes,
    /// The length of a tag, in bytes ([`NameServerBuilder::max_tag_bytes`]).
    TagBytes,
    /// The number of tags of one registration ([`NameServerBuilder::max_tags`]).
    Tags,
    /// The names one registrant holds ([`NameServerBuilder::max_names_per_registrant`]).
    NamesPerRegistrant,
    /// The names the name server holds ([`NameServerBuilder::max_names`]).
    Names,
    /// The watches the name server serves at once ([`NameServerBuilder::max_watches`]).
    Watches,
}

impl fmt::Display for Limit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Limit::NameBytes => "bytes in a name",
            Limit::AddressBytes => "bytes in an address",
            Limit::TagBytes => "bytes in a tag",
            Limit::Tags => "tags per registration",
            Limit::NamesPerRegistrant => "names per registrant",
            Limit::Names => "names in the name server",
            Limit::Watches => "watches at once",
        })
    }
}

/// The limits a registry enforces (see [`NameServerBuilder`]).
#[derive(Clone, Copy, Debug)]
pub(crate) struct Limits {
    pub(crate) name_bytes: usize,
    pub(crate) address_bytes: usize,
    pub(crate) tag_bytes: usize,
    pub(crate) tags: usize,
    pub(crate) names_per_registrant: usize,
    pub(crate) names: usize,
    pub(crate) watches: usize,
    pub(crate) watch_backlog: usize,
    pub(crate) page_bytes: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            name_bytes: DEFAULT_MAX_NAME_BYTES,
            address_bytes: DEFAULT_MAX_ADDRESS_BYTES,
            tag_bytes: DEFAULT_MAX_TAG_BYTES,
            tags: DEFAULT_MAX_TAGS,
            names_per_registrant: DEFAULT_MAX_NAMES_PER_REGISTRANT,
            names: DEFAULT_MAX_NAMES,
            watches: DEFAULT_MAX_WATCHES,
            watch_backlog: DEFAULT_WATCH_BACKLOG,
            page_bytes: DEFAULT_PAGE_BYTES,
        }
    }
}

impl Limits {
    /// The value of `limit`.
    pub(crate) fn of(&self, limit: Limit) -> usize {
        match limit {
            Limit::NameBytes => self.name_bytes,
            Limit::AddressBytes => self.address_bytes,
            Limit::TagBytes => self.tag_bytes,
            Limit::Tags => self.tags,
            Limit::NamesPerRegistrant => self.names_per_registrant,
            Limit::Names => self.names,
            Limit::Watches => self.watches,
        }
    }

    /// The most bytes one registration within these limits takes in a reply (see
    /// [`super::registry::entry_bytes`]).
    pub(crate) fn largest_entry(&self) -> usize {
        super::registry::ENTRY_OVERHEAD
            + self.name_bytes
            + self.address_bytes
            + self.tags * (self.tag_bytes + super::registry::STRING_OVERHEAD)
    }
}

/// Settings of a name server: its limits. Start from [`NameServer::builder`], then open the
/// server with [`open`](NameServerBuilder::open), [`with_store`](NameServerBuilder::with_store)
/// or [`in_memory`](NameServerBuilder::in_memory).
///
/// The limits bound what any peer can make the name server keep (memory and database) and
/// answer: registrations past them are refused with
/// [`NamingError::LimitReached`](super::NamingError::LimitReached), which names the limit and
/// its value. With the defaults, the names take at most about 60 MB.
///
/// # Examples
///
/// ```
/// let names = dopy::naming::NameServer::builder().max_names(100).max_tags(4).in_memory();
/// # drop(names);
/// ```
#[derive(Clone, Debug, Default)]
pub struct NameServerBuilder {
    limits: Limits,
}

impl NameServerBuilder {
    /// Longest name, in bytes (default [`DEFAULT_MAX_NAME_BYTES`], at least 1).
    pub fn max_name_bytes(mut self, bytes: usize) -> Self {
        self.limits.name_bytes = bytes.max(1);
        self
    }

    /// Longest address, in bytes (default [`DEFAULT_MAX_ADDRESS_BYTES`], at least 16).
    pub fn max_address_bytes(mut self, bytes: usize) -> Self {
        self.limits.address_bytes = bytes.max(16);
        self
    }

    /// Longest tag, in bytes (default [`DEFAULT_MAX_TAG_BYTES`]).
    pub fn max_tag_bytes(mut self, bytes: usize) -> Self {
        self.limits.tag_bytes = bytes;
        self
    }

    /// Most tags of one registration (default [`DEFAULT_MAX_TAGS`]); a tag given twice counts
    /// once.
    pub fn max_tags(mut self, tags: usize) -> Self {
        self.limits.tags = tags;
        self
    }

    /// Most names one registrant holds at once (default [`DEFAULT_MAX_NAMES_PER_REGISTRANT`],
    /// at least 1).
    ///
    /// A registrant is the endpoint of the registered address (`tcp://HOST:PORT` of
    /// `tcp://HOST:PORT/OBJECT`: the process serving the objects), or, for a registration by
    /// reference alone, the connection the reference came over.
    pub fn max_names_per_registrant(mut self, names: usize) -> Self {
        self.limits.names_per_registrant = names.max(1);
        self
    }

    /// Most names the name server holds (default [`DEFAULT_MAX_NAMES`], at least 1).
    pub fn max_names(mut self, names: usize) -> Self {
        self.limits.names = names.max(1);
        self
    }

    /// Most watches served at once, over every client (default [`DEFAULT_MAX_WATCHES`]).
    pub fn max_watches(mut self, watches: usize) -> Self {
        self.limits.watches = watches;
        self
    }

    /// Most events waiting for one watcher (default [`DEFAULT_WATCH_BACKLOG`], at least 1).
    ///
    /// A watcher that falls further behind (it does not take its events as fast as names
    /// change) is dropped: its watch ends, as if the name server had gone away
    /// ([`Watch::next`](super::Watch::next) gives `None`). Queued events are shared by every
    /// watcher, so all of them together hold at most this many events' worth of entries.
    pub fn watch_backlog(mut self, events: usize) -> Self {
        self.limits.watch_backlog = events.max(1);
        self
    }

    /// Most bytes of registrations in one page of a list, search or watch (default
    /// [`DEFAULT_PAGE_BYTES`], at least 8 KiB and at least one registration of the largest
    /// size the limits allow).
    ///
    /// A page is also kept within the frame limit of the node the service is published on with
    /// [`NameServer::publish`], and within the one the client asks for; keep this below the
    /// node's `max_frame` when publishing [`NameServer::service`] yourself.
    pub fn page_bytes(mut self, bytes: usize) -> Self {
        self.limits.page_bytes = bytes;
        self
    }

    fn limits(&self) -> Limits {
        let mut limits = self.limits;
        limits.page_bytes = limits.page_bytes.max(MIN_PAGE_BYTES).max(limits.largest_entry());
        limits
    }

    /// A name server whose names are kept in the database file at `path` (created if needed)
    /// and restored from it.
    ///
    /// # Errors
    ///
    /// As [`NameServer::open`].
    pub fn open(self, path: impl AsRef<Path>) -> Result<NameServer, StoreError> {
        self.with_store(&Store::open(path)?)
    }

    /// A name server whose names are kept in `store` and restored from it.
    ///
    /// # Errors
    ///
    /// As [`NameServer::with_store`].
    pub fn with_store(self, store: &Store) -> Result<NameServer, StoreError> {
        Ok(NameServer { registry: Registry::open(store, self.limits())?, path: Some(store.path().to_owned()) })
    }

    /// A name server that keeps its names in memory only.
    pub fn in_memory(self) -> NameServer {
        NameServer { registry: Registry::in_memory(self.limits()), path: None }
    }
}
