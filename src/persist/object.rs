//! [`Persisted`]: the dispatch wrapper that saves an object's state after each `&mut self` call,
//! before the reply leaves.

use std::fmt;

use dopy_core::{Dispatch, Dispatched, Fault, FaultKind, Interface, Invocation, Reply};
use serde::de::DeserializeOwned;
use serde::Serialize;

use super::journal::Op;
use super::{record, Store, StoreError, OBJECTS};

/// A published object whose state is saved in a [`Store`].
///
/// Invariant, between calls: the state in memory is the state last committed to the database,
/// unless `dirty` is set. A `&mut self` call sets `dirty` while it runs and clears it once its
/// result is committed; if it never gets there (it panicked, was cancelled, or the commit
/// failed), the next call, whatever it is, first reloads the committed state. So no caller ever
/// sees a change that is not durable, nor half of one.
pub(crate) struct Persisted<T> {
    state: T,
    store: Store,
    name: String,
    version: u32,
    /// The record last committed, to skip commits of calls that changed nothing.
    last: Vec<u8>,
    dirty: bool,
}

impl<T> fmt::Debug for Persisted<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Persisted").field("name", &self.name).field("dirty", &self.dirty).finish_non_exhaustive()
    }
}

impl<T> Persisted<T> {
    /// Wraps a state whose record `last` is committed.
    pub(crate) fn new(state: T, store: Store, name: String, version: u32, last: Vec<u8>) -> Self {
        Persisted { state, store, name, version, last, dirty: false }
    }
}

impl<T> Drop for Persisted<T> {
    fn drop(&mut self) {
        self.store.release(&self.name);
    }
}

impl<T: Dispatch + Serialize + DeserializeOwned> Persisted<T> {
    /// Runs a call with exclusive access, then commits the new state.
    async fn run_mut(&mut self, call: Invocation) -> Reply {
        if self.dirty {
            self.reload().await.map_err(|e| self.fault(&e))?;
        }
        self.dirty = true;
        let ran = match self.state.dispatch_mut(call) {
            Dispatched::Ready(reply) => Ok(reply),
            Dispatched::Pending(running) => Ok(running.await),
            Dispatched::NotFound(call) | Dispatched::RequiresMut(call) => Err(Some(call)),
            _ => Err(None),
        };
        let reply = match ran {
            Ok(reply) => reply,
            Err(call) => {
                self.dirty = false;
                let interface = self.state.interface().name;
                let method = call.as_ref().map_or("?", |c| c.method());
                return Err(Box::new(Fault::new(
                    FaultKind::NoSuchMethod,
                    format!("`{}` ({interface}) has no remote method `{method}`", self.name),
                )));
            }
        };
        let bytes = self.encode().map_err(|e| self.fault(&e))?;
        if bytes != self.last {
            self.store
                .journal()
                .write(vec![Op::Put(OBJECTS, self.name.clone(), bytes.clone())])
                .wait()
                .await
                .map_err(|e| self.fault(&StoreError::Save { object: self.name.clone(), source: Box::new(e) }))?;
            self.last = bytes;
        }
        self.dirty = false;
        reply
    }

    fn encode(&self) -> Result<Vec<u8>, StoreError> {
        let encoded = record::state_value(&self.state)
            .and_then(|value| record::encode(self.version, std::any::type_name::<T>(), &value));
        encoded.map_err(|reason| StoreError::Encode { object: self.name.clone(), reason })
    }

    /// Puts the committed state back in memory.
    async fn reload(&mut self) -> Result<(), StoreError> {
        let bytes = self
            .store
            .journal()
            .read(OBJECTS, &self.name)
            .await?
            .ok_or_else(|| StoreError::Missing { object: self.name.clone() })?;
        let saved = record::decode(&bytes).map_err(|e| self.store.unreadable(&self.name, e))?;
        self.state = record::state(saved.state).map_err(|reason| StoreError::Incompatible {
            object: self.name.clone(),
            type_name: std::any::type_name::<T>(),
            version: saved.version,
            reason,
        })?;
        tracing::warn!(object = %self.name, "an interrupted call was rolled back to the last saved state");
        self.last = bytes;
        self.dirty = false;
        Ok(())
    }

    fn fault(&self, e: &StoreError) -> Box<Fault> {
        let mut fault = Fault::new(FaultKind::Method, e.to_string());
        fault.causes = dopy_core::causes!(e);
        Box::new(fault)
    }
}

impl<T: Dispatch + Serialize + DeserializeOwned> Dispatch for Persisted<T> {
    fn interface(&self) -> Interface {
        self.state.interface()
    }

    fn dispatch(&self, call: Invocation) -> Dispatched<'_> {
        if self.dirty {
            // A change was interrupted: reloading the saved state needs exclusive access.
            return Dispatched::RequiresMut(call);
        }
        self.state.dispatch(call)
    }

    fn dispatch_mut(&mut self, call: Invocation) -> Dispatched<'_> {
        Dispatched::Pending(Box::pin(self.run_mut(call)))
    }
}
