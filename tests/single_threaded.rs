//! Single-threaded mode: `!Send` objects served on the thread that owns them, while that
//! thread's own loop also handles another input channel (DOPY's reactors).

// Test fixtures are not public API.
#![allow(missing_debug_implementations)]

use std::cell::RefCell;
use std::rc::Rc;
use std::time::Duration;

use dopy::{CallError, Node, Value};

/// A board with `!Send` state (shared with the loop through an `Rc`).
pub struct Board {
    notes: Rc<RefCell<Vec<String>>>,
    owner: std::thread::ThreadId,
    mutations: u32,
}

/// A board.
#[dopy::remote(local)]
impl Board {
    /// Adds a note.
    pub fn post(&self, note: String) {
        self.notes.borrow_mut().push(note);
    }

    /// The notes, in order.
    pub async fn notes(&self) -> Vec<String> {
        tokio::task::yield_now().await;
        self.notes.borrow().clone()
    }

    /// Counts exclusive calls.
    pub fn mutate(&mut self) -> u32 {
        self.mutations += 1;
        self.mutations
    }

    /// Whether the call runs on the owning thread.
    pub fn on_owner_thread(&self) -> bool {
        std::thread::current().id() == self.owner
    }
}

/// Runs a single-threaded server on its own thread: the loop serves `board` and appends the
/// lines of `lines` to the same `Rc` state, until `stop`.
fn spawn_server(
    mut lines: tokio::sync::mpsc::UnboundedReceiver<String>,
    mut stop: tokio::sync::oneshot::Receiver<()>,
) -> (String, std::thread::JoinHandle<()>) {
    let (addr_tx, addr_rx) = std::sync::mpsc::channel();
    let server = std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        let local = tokio::task::LocalSet::new();
        local.block_on(&rt, async move {
            let notes = Rc::new(RefCell::new(Vec::new()));
            let node = Node::new();
            let board = Board { notes: notes.clone(), owner: std::thread::current().id(), mutations: 0 };
            let executor = node.publish_local("board", board).unwrap();
            let addr = node.listen("tcp://127.0.0.1:0").await.unwrap();
            addr_tx.send(format!("{addr}/board")).unwrap();
            tokio::pin!(executor);
            loop {
                tokio::select! {
                    () = &mut executor => break,
                    Some(line) = lines.recv() => notes.borrow_mut().push(format!("stdin: {line}")),
                    _ = &mut stop => break,
                }
            }
        });
    });
    (addr_rx.recv().unwrap(), server)
}

/// A `!Send` object is called from another thread's client while its thread's loop feeds the
/// same state from a stdin-like channel; every call runs on the owning thread.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn not_send_object_is_served_while_the_loop_reads_a_channel() {
    let (lines_tx, lines) = tokio::sync::mpsc::unbounded_channel();
    let (stop_tx, stop) = tokio::sync::oneshot::channel();
    let (url, server) = spawn_server(lines, stop);
    let board = Node::new().object(&url).await.unwrap();

    board.call("post", [Value::from("first")]).await.unwrap();
    lines_tx.send("second".to_owned()).unwrap();
    let want = Value::Seq(vec![Value::from("first"), Value::from("stdin: second")]);
    let mut notes = Value::Unit;
    for _ in 0..200 {
        notes = board.call("notes", []).await.unwrap();
        if notes == want {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(notes, want);
    assert_eq!(board.call("on_owner_thread", []).await.unwrap(), Value::Bool(true));
    let calls = (0..50).map(|_| board.call("mutate", []));
    let mut counts: Vec<u64> =
        futures_util::future::join_all(calls).await.into_iter().map(|r| r.unwrap().as_u64().unwrap()).collect();
    counts.sort();
    assert_eq!(counts, (1..=50).collect::<Vec<_>>(), "exclusive calls one at a time");
    let iface = board.methods().await.unwrap();
    assert_eq!(iface.name, "Board");

    stop_tx.send(()).unwrap();
    tokio::task::spawn_blocking(move || server.join().unwrap()).await.unwrap();
}

/// Calls to a local object whose executor was dropped fail with `NoSuchObject`, promptly.
#[tokio::test]
async fn dropped_executor_gives_no_such_object() {
    let node = Node::new();
    let board = Board { notes: Rc::default(), owner: std::thread::current().id(), mutations: 0 };
    let executor = node.publish_local("board", board).unwrap();
    drop(executor);
    let addr = node.listen("tcp://127.0.0.1:0").await.unwrap();
    let obj = Node::new().object(&format!("{addr}/board")).await.unwrap();
    let err = obj.call("post", [Value::from("x")]).await.unwrap_err();
    assert!(matches!(err, CallError::NoSuchObject(_)), "{err}");
    assert!(err.to_string().contains("executor"), "{err}");
}
