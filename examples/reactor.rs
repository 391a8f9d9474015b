//! Single-threaded mode (DOPY's reactors): one thread serves remote calls on a `!Send` object
//! (`Rc<RefCell<..>>` state) in the same loop that reads lines from stdin and ticks a timer.
//! A client on another thread calls the object meanwhile.
//!
//! ```sh
//! cargo run --example reactor            # type lines: they become notes; ends after 10 ticks
//! ```

use std::cell::RefCell;
use std::io::BufRead;
use std::rc::Rc;
use std::time::Duration;

use dopy::{Error, Node};
use std::process::ExitCode;

/// The state the loop and the remote object share on this thread.
#[derive(Debug, Default)]
struct Board {
    ticks: u32,
    notes: Vec<String>,
}

/// A notice board with `!Send` state.
#[derive(Debug)]
pub struct BoardObject {
    board: Rc<RefCell<Board>>,
    thread: std::thread::ThreadId,
}

/// A notice board, served single-threaded.
#[dopy::remote(local)]
impl BoardObject {
    /// Ticks so far and the notes, in order.
    pub fn snapshot(&self) -> (u32, Vec<String>) {
        let b = self.board.borrow();
        (b.ticks, b.notes.clone())
    }

    /// Adds a note.
    pub fn post(&self, note: String) -> usize {
        let mut b = self.board.borrow_mut();
        b.notes.push(note);
        b.notes.len()
    }

    /// Whether the call runs on the thread that owns the board.
    pub fn on_owner_thread(&self) -> bool {
        std::thread::current().id() == self.thread
    }
}

fn check(what: &str, passed: bool) {
    println!("{what:<56} {}", if passed { "ok" } else { "FAILED" });
    assert!(passed, "{what}");
}

/// Another thread, another runtime: an ordinary multi-threaded client.
#[tokio::main]
async fn client(url: String) -> Result<(), Error> {
    let board = Node::new().object(&url).await?;
    check("a client calls the !Send object", board.call("post", ["hello from a client".into()]).await.is_ok());
    check("every call runs on the owner thread", board.call("on_owner_thread", []).await? == true.into());
    let before = board.call("snapshot", []).await?;
    tokio::time::sleep(Duration::from_millis(350)).await;
    let after = board.call("snapshot", []).await?;
    let ticks = |v: &dopy::Value| v.as_seq().and_then(|s| s[0].as_u64()).unwrap_or(0);
    check("the same loop keeps ticking while it serves", ticks(&after) > ticks(&before));
    Ok(())
}

/// Runs the example; a failure is printed as a person reads it (`{:#}`: with its remote trace),
/// not as a debug dump, and the exit code is 1.
#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    match run().await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run() -> Result<(), Error> {
    // Lines from stdin arrive through a channel, read by a plain thread (a blocking read cannot
    // be cancelled, and must not hold the runtime up at exit).
    let (lines_tx, mut lines) = tokio::sync::mpsc::unbounded_channel();
    std::thread::spawn(move || {
        for line in std::io::stdin().lock().lines().map_while(Result::ok) {
            if lines_tx.send(line).is_err() {
                break;
            }
        }
    });

    let local = tokio::task::LocalSet::new();
    local
        .run_until(async {
            let board = Rc::new(RefCell::new(Board::default()));
            let node = Node::new();
            let object = BoardObject { board: board.clone(), thread: std::thread::current().id() };
            let executor = node.publish_local("board", object)?;
            let addr = node.listen("tcp://127.0.0.1:0").await?;
            println!("serving a !Send board at {addr}/board on one thread\n");
            let client = std::thread::spawn(move || client(format!("{addr}/board")));

            let mut ticks = tokio::time::interval(Duration::from_millis(100));
            tokio::pin!(executor);
            // The reactor loop: remote calls, stdin lines and a timer, on one thread.
            loop {
                tokio::select! {
                    () = &mut executor => break,
                    Some(line) = lines.recv() => board.borrow_mut().notes.push(line),
                    _ = ticks.tick() => {
                        board.borrow_mut().ticks += 1;
                        if board.borrow().ticks >= 10 && client.is_finished() {
                            break;
                        }
                    }
                }
            }
            client.join().expect("the client thread")?;
            let b = board.borrow();
            println!("\n{} ticks; notes: {:?}", b.ticks, b.notes);
            Ok(())
        })
        .await
}
