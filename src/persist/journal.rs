//! The journal: one thread that applies every write to the database, in the order the writes
//! were submitted, and commits them durably in batches (group commit).
//!
//! Submitting is synchronous and never blocks, so a caller can submit while holding its own
//! lock (the order of submissions is then the order of its changes); waiting for the commit is
//! asynchronous. A read submitted after some writes sees them (it waits for their commit).

use std::path::PathBuf;
use std::sync::mpsc;
use std::sync::Arc;
use std::thread::JoinHandle;

use redb::{Database, ReadableDatabase, TableDefinition};
use tokio::sync::oneshot;

use super::StoreError;

/// A table of the database: string keys, byte values.
pub(crate) type Table = TableDefinition<'static, &'static str, &'static [u8]>;

/// One change.
pub(crate) enum Op {
    /// Sets `key` to `value`.
    Put(Table, String, Vec<u8>),
    /// Removes `key`.
    Delete(Table, String),
}

/// Why a batch failed, shared by every write of the batch.
type Failure = Arc<redb::Error>;

/// Where the outcome of a write goes.
type Done = oneshot::Sender<Result<(), Failure>>;

enum Job {
    Write(Vec<Op>, Done),
    Read(Table, String, oneshot::Sender<Result<Option<Vec<u8>>, Failure>>),
}

/// Writes submitted in a batch, at most: one commit (one `fsync`) for all of them.
const MAX_BATCH: usize = 256;

/// The writer thread and the queue to it.
#[derive(Debug)]
pub(crate) struct Journal {
    /// `None` once dropped: closing the queue ends the thread.
    queue: Option<mpsc::Sender<Job>>,
    /// Joined on drop, so that the database file is closed (and unlocked) when the store is.
    thread: Option<JoinHandle<()>>,
    path: PathBuf,
}

/// The commit of submitted writes, to be awaited.
#[derive(Debug)]
pub(crate) struct Ack {
    done: Result<oneshot::Receiver<Result<(), Failure>>, StoreError>,
    path: PathBuf,
}

impl Ack {
    /// Waits until the writes are durable.
    pub(crate) async fn wait(self) -> Result<(), StoreError> {
        let path = self.path;
        match self.done?.await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(source)) => Err(StoreError::Database { path, source }),
            Err(_) => Err(StoreError::Closed { path }),
        }
    }
}

impl Journal {
    /// Starts the writer thread of `db`.
    pub(crate) fn start(db: Arc<Database>, path: PathBuf) -> std::io::Result<Journal> {
        let (queue, jobs) = mpsc::channel();
        let thread = std::thread::Builder::new().name("dopy-journal".into()).spawn(move || run(&db, &jobs))?;
        Ok(Journal { queue: Some(queue), thread: Some(thread), path })
    }

    fn submit(&self, job: Job) -> Result<(), StoreError> {
        let closed = || StoreError::Closed { path: self.path.clone() };
        self.queue.as_ref().ok_or_else(closed)?.send(job).map_err(|_| closed())
    }

    /// Submits writes now; the returned [`Ack`] completes when they are committed.
    pub(crate) fn write(&self, ops: Vec<Op>) -> Ack {
        let (tx, rx) = oneshot::channel();
        let done = self.submit(Job::Write(ops, tx)).map(|()| rx);
        Ack { done, path: self.path.clone() }
    }

    /// Reads `key` once every write submitted before is committed.
    pub(crate) async fn read(&self, table: Table, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        let (tx, rx) = oneshot::channel();
        self.submit(Job::Read(table, key.to_owned(), tx))?;
        match rx.await {
            Ok(Ok(value)) => Ok(value),
            Ok(Err(source)) => Err(StoreError::Database { path: self.path.clone(), source }),
            Err(_) => Err(StoreError::Closed { path: self.path.clone() }),
        }
    }
}

impl Drop for Journal {
    fn drop(&mut self) {
        self.queue = None;
        if let Some(thread) = self.thread.take() {
            // The thread finishes the jobs already queued, then ends.
            let _ = thread.join();
        }
    }
}

/// The writer thread: takes every job queued, commits the writes among them in one
/// transaction, answers, and starts over; a read first commits the writes queued before it.
fn run(db: &Database, jobs: &mpsc::Receiver<Job>) {
    while let Ok(first) = jobs.recv() {
        let mut writes = Vec::new();
        let mut next = Some(first);
        while let Some(job) = next.take() {
            match job {
                Job::Write(ops, done) => writes.push((ops, done)),
                Job::Read(table, key, done) => {
                    commit(db, std::mem::take(&mut writes));
                    let _ = done.send(read(db, table, &key).map_err(Arc::new));
                }
            }
            if writes.len() < MAX_BATCH {
                next = jobs.try_recv().ok();
            }
        }
        commit(db, writes);
    }
}

/// Applies a batch of writes in one transaction and tells every writer how it went.
fn commit(db: &Database, batch: Vec<(Vec<Op>, Done)>) {
    if batch.is_empty() {
        return;
    }
    let (ops, waiting): (Vec<Vec<Op>>, Vec<_>) = batch.into_iter().unzip();
    let outcome = apply(db, ops.into_iter().flatten()).map_err(Arc::new);
    for done in waiting {
        let _ = done.send(outcome.clone());
    }
}

fn apply(db: &Database, ops: impl Iterator<Item = Op>) -> Result<(), redb::Error> {
    let txn = db.begin_write()?;
    for op in ops {
        match op {
            Op::Put(table, key, value) => {
                txn.open_table(table)?.insert(key.as_str(), value.as_slice())?;
            }
            Op::Delete(table, key) => {
                txn.open_table(table)?.remove(key.as_str())?;
            }
        }
    }
    txn.commit()?;
    Ok(())
}

/// Reads one key in a fresh read transaction (a missing table reads as empty).
pub(crate) fn read(db: &Database, table: Table, key: &str) -> Result<Option<Vec<u8>>, redb::Error> {
    let txn = db.begin_read()?;
    let table = match txn.open_table(table) {
        Ok(table) => table,
        Err(redb::TableError::TableDoesNotExist(_)) => return Ok(None),
        Err(e) => return Err(e.into()),
    };
    Ok(table.get(key)?.map(|v| v.value().to_vec()))
}

/// Reads every entry of a table, in key order (a missing table reads as empty).
pub(crate) fn read_all(db: &Database, table: Table) -> Result<Vec<(String, Vec<u8>)>, redb::Error> {
    let txn = db.begin_read()?;
    let table = match txn.open_table(table) {
        Ok(table) => table,
        Err(redb::TableError::TableDoesNotExist(_)) => return Ok(Vec::new()),
        Err(e) => return Err(e.into()),
    };
    let mut entries = Vec::new();
    for entry in redb::ReadableTable::iter(&table)? {
        let (key, value) = entry?;
        entries.push((key.value().to_owned(), value.value().to_vec()));
    }
    Ok(entries)
}

/// Applies writes at once, in the calling thread (at startup, before anything is served).
pub(crate) fn write_now(db: &Database, ops: Vec<Op>) -> Result<(), redb::Error> {
    apply(db, ops.into_iter())
}
