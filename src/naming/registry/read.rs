//! What reads the registry: lookups, lists and searches, the pages they are answered in, and
//! watches.

use std::ops::Bound;

use super::*;

impl Registry {
    pub(crate) fn lookup(&self, name: &str) -> Result<Entry, NamingError> {
        let state = self.state();
        let slot = state.names.get(name).ok_or_else(|| NamingError::NotFound { name: name.to_owned() })?;
        let entry = slot.entry(name);
        if entry.address.is_none() && entry.object.is_none() {
            return Err(NamingError::Unreachable { name: name.to_owned() });
        }
        Ok(entry)
    }

    /// Every registration under `prefix` (for the `list` method of old clients: the answer
    /// may exceed a frame, and then that call fails alone).
    pub(crate) fn list(&self, prefix: &str) -> Vec<Entry> {
        let state = self.state();
        state
            .names
            .range(prefix.to_owned()..)
            .take_while(|(n, _)| n.starts_with(prefix))
            .map(|(n, s)| s.entry(n))
            .collect()
    }

    /// Every registration having all of `tags` (for the `search` method of old clients).
    pub(crate) fn search(&self, tags: &[String]) -> Vec<Entry> {
        let state = self.state();
        state.names.iter().filter(|(_, s)| tags.iter().all(|t| s.tags.contains(t))).map(|(n, s)| s.entry(n)).collect()
    }

    /// The page budget for a reply of at most `max_bytes` (the caller's frame), on a service
    /// whose own frame is `frame`.
    pub(crate) fn budget(&self, max_bytes: u64, frame: usize) -> usize {
        let overhead = page_overhead(&self.limits);
        let max_bytes = usize::try_from(max_bytes).unwrap_or(usize::MAX);
        self.limits.page_bytes.min(frame.saturating_sub(overhead)).min(max_bytes.saturating_sub(overhead))
    }

    /// The registrations under `prefix` that have every one of `tags`, sorted by name, after
    /// the name `after`: as many as fit in `budget` bytes, and at least one.
    pub(crate) fn page(&self, prefix: &str, tags: &[String], after: Option<&str>, budget: usize) -> Page {
        page(&self.state(), prefix, tags, after, budget)
    }

    /// Adds a watcher of the names under `prefix`; returns its id and, unless `paged`, the
    /// names there now (taken together with adding it, so that no event falls in between). A
    /// `paged` watcher gets them from [`watch_page`](Registry::watch_page) instead, and hears of
    /// changes to the names it has been given only.
    ///
    /// # Errors
    ///
    /// [`NamingError::LimitReached`] when [`Limit::Watches`] watches are served already.
    pub(crate) fn watch(
        self: &Arc<Self>,
        prefix: String,
        watcher: WatcherProxy,
        paged: bool,
    ) -> Result<(u64, Vec<Entry>), NamingError> {
        let (events, mut queue) = mpsc::channel::<Arc<Event>>(self.limits.watch_backlog);
        let (id, existing) = {
            let mut state = self.state();
            if state.watchers.len() >= self.limits.watches {
                return Err(NamingError::LimitReached { limit: Limit::Watches, max: self.limits.watches as u64 });
            }
            state.next_watch += 1;
            let id = state.next_watch;
            let existing = if paged {
                Vec::new()
            } else {
                state
                    .names
                    .range(prefix.clone()..)
                    .take_while(|(n, _)| n.starts_with(&prefix))
                    .map(|(n, s)| s.entry(n))
                    .collect()
            };
            let paged = if paged { Paged::Nothing } else { Paged::All };
            state.watchers.push(Watching { id, prefix, events, paged });
            (id, existing)
        };
        // One task per watcher calls it with its events in order; a slow watcher delays only
        // itself. A watcher that cannot be reached any more is dropped.
        let registry = Arc::downgrade(self);
        tokio::spawn(async move {
            while let Some(event) = queue.recv().await {
                if let Err(e) = watcher.event(Event::clone(&event)).await {
                    tracing::debug!(error = %e, "watcher gone");
                    break;
                }
            }
            if let Some(registry) = registry.upgrade() {
                registry.unwatch(id);
            }
        });
        Ok((id, existing))
    }

    /// The next page of the names watcher `id` started with, in `budget` bytes; from then on it
    /// hears of changes to those too. `next` is `None` on the last page.
    pub(crate) fn watch_page(&self, id: u64, budget: usize) -> Page {
        let mut state = self.state();
        let Some(watching) = state.watchers.iter().find(|w| w.id == id) else { return Page::default() };
        let (prefix, after) = match &watching.paged {
            Paged::All => return Page::default(),
            Paged::Nothing => (watching.prefix.clone(), None),
            Paged::Upto(last) => (watching.prefix.clone(), Some(last.clone())),
        };
        let page = page(&state, &prefix, &[], after.as_deref(), budget);
        let paged = match (&page.next, page.entries.last()) {
            (Some(_), Some(last)) => Paged::Upto(last.name.clone()),
            _ => Paged::All,
        };
        if let Some(watching) = state.watchers.iter_mut().find(|w| w.id == id) {
            watching.paged = paged;
        }
        page
    }

    pub(crate) fn unwatch(&self, id: u64) {
        self.state().watchers.retain(|w| w.id != id);
    }
}

/// A page of the registrations under `prefix` having every one of `tags`, after `after`.
fn page(state: &State, prefix: &str, tags: &[String], after: Option<&str>, budget: usize) -> Page {
    let start = match after {
        Some(after) if after >= prefix => Bound::Excluded(after.to_owned()),
        _ => Bound::Included(prefix.to_owned()),
    };
    let mut entries = Vec::new();
    let mut used = 0;
    let mut next = None;
    let matching = state
        .names
        .range((start, Bound::Unbounded))
        .take_while(|(n, _)| n.starts_with(prefix))
        .filter(|(_, s)| tags.iter().all(|t| s.tags.contains(t)));
    for (name, slot) in matching {
        let size = entry_bytes(name, slot);
        if !entries.is_empty() && used + size > budget {
            next = entries.last().map(|e: &Entry| e.name.clone());
            break;
        }
        used += size;
        entries.push(slot.entry(name));
    }
    Page { entries, next }
}
