//! Persistent objects on a real database file: state saved before each reply and restored at
//! startup, SIGKILL of a real server process at random points, versions and migrations, and
//! one database per store at a time.

// Test fixtures are not public API.
#![allow(missing_debug_implementations)]

mod support;
use support::services;

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use dopy::persist::{Origin, Store, StoreError};
use dopy::{CallError, Node, Value};
use serde::{Deserialize, Serialize};
use services::ChildProcess;
use support::temp_dir;

/// A ledger whose every change touches two fields and a list: a half-applied change would
/// break `a + b == 0` or `a == sum(entries)`.
#[derive(Debug, Default, Serialize, Deserialize)]
pub struct Ledger {
    entries: Vec<u64>,
    a: i64,
    b: i64,
}

/// A ledger.
#[dopy::remote]
impl Ledger {
    /// Records `id`; returns how many entries there are.
    pub async fn apply(&mut self, id: u64) -> usize {
        self.a += id as i64;
        // Another task may run here (and the process may be killed here).
        tokio::task::yield_now().await;
        self.b -= id as i64;
        self.entries.push(id);
        self.entries.len()
    }

    /// Changes the ledger, then panics before finishing.
    pub fn apply_then_panic(&mut self, id: u64) -> usize {
        self.a += id as i64;
        self.entries.push(id);
        panic!("the ledger caught fire halfway through");
    }

    /// The entries.
    pub fn entries(&self) -> Vec<u64> {
        self.entries.clone()
    }

    /// Whether the invariants hold.
    pub fn consistent(&self) -> bool {
        self.a + self.b == 0 && self.a == self.entries.iter().sum::<u64>() as i64
    }
}

/// Runs as a child process (this test binary run again by `sigkill_at_random_points_loses_no_acknowledged_change`):
/// a server with a persistent ledger in the database `DOPY_DB` names. Does nothing in a normal run.
#[test]
#[ignore = "the body of the child processes the other tests start"]
fn child_process() {
    services::run_child(|_role| async {
        let store = Store::open_default().unwrap();
        let node = Node::new();
        store.publish(&node, "ledger", Ledger::default).unwrap();
        let addr = node.listen("tcp://127.0.0.1:0").await.unwrap();
        services::ready(addr);
        Box::new((node, store)) as Box<dyn std::any::Any>
    });
}

/// A small deterministic generator, for random kill points that a failure can reproduce.
struct XorShift(u64);

impl XorShift {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n
    }
}

/// A server process is killed with SIGKILL at random points while clients make changes, then
/// restarted on the same database, 25 times: every change whose reply arrived is there, no
/// change is there that was never sent, and none is half-applied.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_at_random_points_loses_no_acknowledged_change() {
    let dir = temp_dir("crash");
    let db = dir.path().join("ledger.redb");
    let db_env = db.to_str().unwrap();
    let seed = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos() as u64 | 1;
    println!("seed {seed}");
    let mut random = XorShift(seed);
    let acked = Arc::new(Mutex::new(BTreeSet::new()));
    let mut sent = 0u64;
    let mut killed_with_calls_in_flight = 0;
    for round in 0..25 {
        let child = ChildProcess::start("ledger", &[("DOPY_DB", db_env)]).await;
        if round == 0 {
            let err = Store::open(&db).unwrap_err();
            assert!(matches!(err, StoreError::Locked { .. }), "{err}");
            assert!(err.to_string().contains("already open"), "{err}");
        }
        let client = Node::new();
        let ledger: LedgerProxy = client.proxy(&format!("{}/ledger", child.ready)).await.unwrap();

        // What survived the previous kill.
        let entries = ledger.entries().await.unwrap();
        let present: BTreeSet<u64> = entries.iter().copied().collect();
        assert_eq!(present.len(), entries.len(), "round {round}: no change applied twice");
        assert!(ledger.consistent().await.unwrap(), "round {round}: no change half-applied");
        let missing: Vec<_> = acked.lock().unwrap().difference(&present).copied().collect();
        assert!(missing.is_empty(), "round {round}: acknowledged changes lost: {missing:?}");
        assert!(present.iter().all(|id| *id < sent), "round {round}: a change that was never sent");
        let unacknowledged = present.difference(&acked.lock().unwrap()).count();
        println!(
            "round {round}: {} changes kept, {unacknowledged} of them committed but not acknowledged",
            present.len()
        );

        // Three clients make changes, pipelined, until the server dies.
        let mut tasks = Vec::new();
        for _ in 0..3 {
            let ledger = ledger.clone();
            let acked = acked.clone();
            let first = sent;
            sent += 1000;
            // Each task says whether the kill cut it off (a call in flight failed), rather than
            // it finishing its 1000 changes first.
            tasks.push(tokio::spawn(async move {
                for id in first..first + 1000 {
                    match ledger.apply(id).await {
                        Ok(_) => acked.lock().unwrap().insert(id),
                        Err(CallError::Disconnected(_)) => return true,
                        Err(e) => panic!("unexpected error: {e:#}"),
                    };
                }
                false
            }));
        }
        tokio::time::sleep(Duration::from_millis(random.below(40))).await;
        child.kill().await;
        for task in tasks {
            if task.await.unwrap() {
                killed_with_calls_in_flight += 1;
            }
        }
    }
    assert!(!acked.lock().unwrap().is_empty(), "some changes were acknowledged");
    assert!(killed_with_calls_in_flight > 0, "the server was killed while calls were in flight");
}

/// A restarted node finds the saved state under the same name, and addresses keep working.
#[tokio::test]
async fn state_is_restored_under_the_same_name_after_a_restart() {
    let dir = temp_dir("restart");
    let path = dir.path().join("db.redb");
    {
        let store = Store::open(&path).unwrap();
        let node = Node::new();
        assert_eq!(store.publish(&node, "ledger", Ledger::default).unwrap(), Origin::Created);
        let addr = node.listen("tcp://127.0.0.1:0").await.unwrap();
        let ledger: LedgerProxy = Node::new().proxy(&format!("{addr}/ledger")).await.unwrap();
        for id in [3, 1, 4] {
            ledger.apply(id).await.unwrap();
        }
        assert_eq!(store.names().unwrap(), ["ledger"]);
    }
    let store = reopen(&path).await;
    let node = Node::new();
    assert_eq!(store.publish(&node, "ledger", Ledger::default).unwrap(), Origin::Restored);
    let addr = node.listen("tcp://127.0.0.1:0").await.unwrap();
    let ledger: LedgerProxy = Node::new().proxy(&format!("{addr}/ledger")).await.unwrap();
    assert_eq!(ledger.entries().await.unwrap(), [3, 1, 4]);
    let saved = store.saved("ledger").unwrap().unwrap();
    assert_eq!(saved.version, 1);
    assert!(saved.type_name.ends_with("Ledger"), "{}", saved.type_name);
}

/// A `&mut self` call that panics halfway leaves nothing behind: the next caller, and the
/// database, see the state from before it.
#[tokio::test]
async fn a_panicking_change_is_rolled_back() {
    let dir = temp_dir("panic");
    let store = Store::open(dir.path().join("db.redb")).unwrap();
    let node = Node::new();
    store.publish(&node, "ledger", Ledger::default).unwrap();
    let addr = node.listen("tcp://127.0.0.1:0").await.unwrap();
    let ledger: LedgerProxy = Node::new().proxy(&format!("{addr}/ledger")).await.unwrap();
    ledger.apply(7).await.unwrap();
    let err = ledger.apply_then_panic(9).await.unwrap_err();
    assert!(matches!(err, CallError::Panic(_)), "{err:#}");
    assert_eq!(ledger.entries().await.unwrap(), [7], "the half-made change is gone");
    assert!(ledger.consistent().await.unwrap());
    ledger.apply(8).await.unwrap();
    let saved = store.saved("ledger").unwrap().unwrap();
    let entries = dopy::from_value::<Ledger>(saved.state).unwrap().entries;
    assert_eq!(entries, [7, 8]);
}

/// Version 1 of a counter.
#[derive(Debug, Default, Serialize, Deserialize)]
pub struct CounterV1 {
    hits: u64,
}

/// A counter, version 1.
#[dopy::remote]
impl CounterV1 {
    /// Counts a hit.
    pub fn hit(&mut self) -> u64 {
        self.hits += 1;
        self.hits
    }
}

/// Version 2 of the counter: `hits` changed type, incompatibly.
#[derive(Debug, Default, Serialize, Deserialize)]
pub struct CounterV2 {
    hits: Vec<String>,
}

/// A counter, version 2.
#[dopy::remote]
impl CounterV2 {
    /// The hits.
    pub fn hits(&self) -> Vec<String> {
        self.hits.clone()
    }
}

/// Version 1 with a compatible change: a new field with a default.
#[derive(Debug, Default, Serialize, Deserialize)]
pub struct CounterV1b {
    hits: u64,
    #[serde(default)]
    label: String,
}

/// A counter, version 1 with a label.
#[dopy::remote]
impl CounterV1b {
    /// The hits and the label.
    pub fn show(&self) -> (u64, String) {
        (self.hits, self.label.clone())
    }
}

/// Saves a version-1 counter with `hits` hits in a new database; returns the database's path.
async fn saved_counter(dir: &tempfile::TempDir, hits: u64) -> std::path::PathBuf {
    let path = dir.path().join("counter.redb");
    let store = Store::open(&path).unwrap();
    let node = Node::new();
    store.publish(&node, "counter", CounterV1::default).unwrap();
    let addr = node.listen("tcp://127.0.0.1:0").await.unwrap();
    let counter: CounterV1Proxy = Node::new().proxy(&format!("{addr}/counter")).await.unwrap();
    for _ in 0..hits {
        counter.hit().await.unwrap();
    }
    path
}

/// Reopens a database whose previous store is shutting down (its node's connections are still
/// closing in the background).
async fn reopen(path: &std::path::Path) -> Store {
    for _ in 0..500 {
        match Store::open(path) {
            Err(StoreError::Locked { .. }) => tokio::time::sleep(Duration::from_millis(10)).await,
            other => return other.unwrap(),
        }
    }
    panic!("the database stayed locked");
}

/// A state type changed incompatibly is refused at restore with an error naming the object and
/// the reason, and the saved state is left as it was (never reset).
#[tokio::test]
async fn an_incompatible_state_is_refused_naming_the_object() {
    let dir = temp_dir("incompatible");
    let path = saved_counter(&dir, 2).await;
    let store = reopen(&path).await;
    let node = Node::new();
    let err = store.publish(&node, "counter", CounterV2::default).unwrap_err();
    assert!(matches!(err, StoreError::Incompatible { .. }), "{err}");
    let message = err.to_string();
    assert!(message.contains("cannot restore `counter`"), "{message}");
    assert!(message.contains("CounterV2"), "{message}");
    assert!(message.contains("raise the version and give a migration"), "{message}");
    assert!(node.published().is_empty(), "nothing was published");
    let saved = store.saved("counter").unwrap().unwrap();
    assert_eq!(saved.state, Value::Map(vec![(Value::from("hits"), Value::UInt(2))]), "the saved state is intact");
}

/// A compatible change (a new field with a default) restores without a migration.
#[tokio::test]
async fn a_compatible_change_needs_no_migration() {
    let dir = temp_dir("compatible");
    let path = saved_counter(&dir, 3).await;
    let store = reopen(&path).await;
    let node = Node::new();
    assert_eq!(store.publish(&node, "counter", CounterV1b::default).unwrap(), Origin::Restored);
    let addr = node.listen("tcp://127.0.0.1:0").await.unwrap();
    let counter: CounterV1bProxy = Node::new().proxy(&format!("{addr}/counter")).await.unwrap();
    assert_eq!(counter.show().await.unwrap(), (3, String::new()));
}

/// Raising the version asks for a migration; the migration turns the old state into the new
/// one, which is saved with the new version; an older program then refuses the newer state.
#[tokio::test]
async fn a_new_version_migrates_and_an_old_program_refuses_it() {
    let dir = temp_dir("migrate");
    let path = saved_counter(&dir, 2).await;
    let store = reopen(&path).await;
    let node = Node::new();

    let err = store.object("counter").version(2).publish(&node, CounterV2::default).unwrap_err();
    assert!(matches!(err, StoreError::NoMigration { saved: 1, current: 2, .. }), "{err}");
    assert!(err.to_string().contains("give a migration from version 1"), "{err}");

    let err = store
        .object("counter")
        .version(2)
        .migrate(|_, _| Err("not today".into()))
        .publish(&node, CounterV2::default)
        .unwrap_err();
    assert!(err.to_string().contains("not today"), "{err}");

    let origin = store
        .object("counter")
        .version(2)
        .migrate(|from, old| {
            assert_eq!(from, 1);
            let old: CounterV1 = dopy::from_value(old).map_err(|e| e.to_string())?;
            let hits = (1..=old.hits).map(|i| format!("hit {i}")).collect();
            dopy::to_value(&CounterV2 { hits }).map_err(|e| e.to_string())
        })
        .publish(&node, CounterV2::default)
        .unwrap();
    assert_eq!(origin, Origin::Migrated { from: 1 });
    let addr = node.listen("tcp://127.0.0.1:0").await.unwrap();
    let counter: CounterV2Proxy = Node::new().proxy(&format!("{addr}/counter")).await.unwrap();
    assert_eq!(counter.hits().await.unwrap(), ["hit 1", "hit 2"]);
    assert_eq!(store.saved("counter").unwrap().unwrap().version, 2);

    drop(counter);
    assert!(node.unpublish("counter"));
    let old_program = Node::new();
    let err = loop {
        // The unpublished object goes away once the call that used it last has finished.
        match store.publish(&old_program, "counter", CounterV1::default) {
            Err(StoreError::InUse { .. }) => tokio::time::sleep(Duration::from_millis(10)).await,
            other => break other.unwrap_err(),
        }
    };
    assert!(matches!(err, StoreError::NewerVersion { saved: 2, current: 1, .. }), "{err}");
}

/// One database file, one store: a second store of the same file is refused with a clear
/// error, in the same process (and in another one: see the crash test); once the first is
/// gone, the file opens again.
#[tokio::test]
async fn a_database_file_is_used_by_one_store_at_a_time() {
    let dir = temp_dir("locked");
    let path = dir.path().join("db.redb");
    let first = Store::open(&path).unwrap();
    let err = Store::open(&path).unwrap_err();
    assert!(matches!(err, StoreError::Locked { .. }), "{err}");
    assert!(err.to_string().contains("two nodes cannot use one database file at once"), "{err}");
    assert!(dopy::naming::NameServer::open(&path).is_err(), "the name server is refused too");
    drop(first);
    Store::open(&path).unwrap();
}

/// The same store cannot publish one object twice (on two nodes), which would make them
/// overwrite each other's state.
#[tokio::test]
async fn one_store_publishes_an_object_once() {
    let dir = temp_dir("twice");
    let store = Store::open(dir.path().join("db.redb")).unwrap();
    let (one, two) = (Node::new(), Node::new());
    store.publish(&one, "ledger", Ledger::default).unwrap();
    let err = store.publish(&two, "ledger", Ledger::default).unwrap_err();
    assert!(matches!(err, StoreError::InUse { .. }), "{err}");
}
