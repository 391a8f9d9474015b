//! A chat room: clients join by passing a listener object *by reference*; messages fan out as
//! callbacks over each client's own connection (clients never listen on a port); a client that
//! leaves, or dies, stops receiving and its listener is released.
//!
//! ```sh
//! cargo run --example chat
//! ```

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use dopy::{CallError, Error, Node, Remote};
use std::process::ExitCode;

/// The room, published on the server.
#[derive(Debug, Default)]
pub struct Room {
    members: tokio::sync::Mutex<Vec<(String, MemberProxy)>>,
}

/// A chat room.
#[dopy::remote]
impl Room {
    /// Joins under `name`; `member` receives every message from now on. Returns the head count.
    pub async fn join(&self, name: String, member: MemberProxy) -> usize {
        let mut members = self.members.lock().await;
        members.push((name, member));
        members.len()
    }

    /// Leaves; the room drops its reference to the member's listener.
    pub async fn leave(&self, name: String) -> bool {
        let mut members = self.members.lock().await;
        let before = members.len();
        members.retain(|(n, _)| *n != name);
        members.len() < before
    }

    /// Sends `text` to everyone; members that cannot be reached any more are dropped.
    /// Returns how many received it.
    pub async fn say(&self, from: String, text: String) -> usize {
        let members = self.members.lock().await.clone();
        let sends = members.iter().map(|(_, m)| m.deliver(from.clone(), text.clone()));
        let results = futures_util::future::join_all(sends).await;
        let gone: Vec<String> = members
            .iter()
            .zip(&results)
            .filter(|(_, r)| matches!(r, Err(CallError::Disconnected(_) | CallError::NoSuchObject(_))))
            .map(|((n, _), _)| n.clone())
            .collect();
        if !gone.is_empty() {
            self.members.lock().await.retain(|(n, _)| !gone.contains(n));
        }
        results.iter().filter(|r| r.is_ok()).count()
    }

    /// Who is in the room.
    pub async fn members(&self) -> Vec<String> {
        self.members.lock().await.iter().map(|(n, _)| n.clone()).collect()
    }
}

/// A client's listener: lives on the client, called back by the room.
#[derive(Debug)]
pub struct Member {
    inbox: Arc<Mutex<Vec<String>>>,
    released: Arc<AtomicBool>,
}

impl Drop for Member {
    fn drop(&mut self) {
        self.released.store(true, Ordering::SeqCst);
    }
}

/// A room member's listener.
#[dopy::remote]
impl Member {
    /// Receives one message.
    pub fn deliver(&self, from: String, text: String) {
        self.inbox.lock().unwrap().push(format!("<{from}> {text}"));
    }
}

/// One chat client, with its own node (and so its own connection).
struct Client {
    name: String,
    room: RoomProxy,
    inbox: Arc<Mutex<Vec<String>>>,
    released: Arc<AtomicBool>,
}

impl Client {
    async fn join(url: &str, name: &str) -> Result<Client, Error> {
        let room: RoomProxy = Node::new().proxy(url).await?;
        let inbox = Arc::new(Mutex::new(Vec::new()));
        let released = Arc::new(AtomicBool::new(false));
        let member = Remote::new(Member { inbox: inbox.clone(), released: released.clone() });
        // Passed by reference: the room gets a live proxy; our `member` handle can go.
        room.join(name.to_owned(), member.into_proxy()).await?;
        Ok(Client { name: name.to_owned(), room, inbox, released })
    }

    async fn say(&self, text: &str) -> Result<usize, CallError> {
        self.room.say(self.name.clone(), text.to_owned()).await
    }

    fn inbox(&self) -> Vec<String> {
        self.inbox.lock().unwrap().clone()
    }
}

async fn eventually(what: &str, check: impl Fn() -> bool) {
    for _ in 0..200 {
        if check() {
            println!("{what:<52} ok");
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("{what}: did not happen");
}

/// Runs the example; a failure is printed as a person reads it (`{:#}`: with its remote trace),
/// not as a debug dump, and the exit code is 1.
#[tokio::main]
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
    let server = Node::builder().name("chat-server").build();
    server.publish("room", Room::default())?;
    let addr = server.listen("tcp://127.0.0.1:0").await?;
    let url = format!("{addr}/room");
    println!("room at {url}\n");

    let alice = Client::join(&url, "alice").await?;
    let bob = Client::join(&url, "bob").await?;
    let carol = Client::join(&url, "carol").await?;

    assert_eq!(alice.say("hello, all").await?, 3);
    eventually("a message fans out to every member", || bob.inbox() == ["<alice> hello, all"]).await;

    assert!(bob.room.leave("bob".into()).await?);
    eventually("a member that leaves is released on its client", || bob.released.load(Ordering::SeqCst)).await;
    assert_eq!(carol.say("bob left").await?, 2);
    eventually("and stops receiving", || bob.inbox().len() == 1 && alice.inbox().len() == 2).await;

    // Carol's process "dies": her connection closes without a goodbye from the room's view.
    let Client { room, released, .. } = carol;
    room.object().connection().expect("carol is connected").close();
    drop(room);
    eventually("a member that dies is released", || released.load(Ordering::SeqCst)).await;
    assert_eq!(alice.say("anyone?").await?, 1);
    assert_eq!(alice.room.members().await?, ["alice"]);
    println!("{:<52} ok", "the room forgets members that cannot be reached");

    println!("\nalice's inbox:");
    for line in alice.inbox() {
        println!("  {line}");
    }
    Ok(())
}
