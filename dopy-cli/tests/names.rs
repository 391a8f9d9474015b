//! `dopy names` and `dopy serve names` as real processes: a name server killed with SIGKILL
//! and restarted on its database, a held registration whose command is killed, read-only and
//! secret-protected endpoints, and one database per server.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::{mpsc, Arc, Mutex};
use std::time::Duration;

use dopy::naming::{Event, NameServer, Names, Removal};
use dopy::Node;

#[path = "support/run.rs"]
mod run;
use run::{dopy_env as dopy, TempDir, DOPY};

/// A long-running `dopy` process, killed with SIGKILL when dropped.
#[derive(Debug)]
struct Running {
    child: Child,
    /// The lines it printed first.
    lines: Vec<String>,
    /// The lines it prints next, as a thread reads them.
    more: Arc<Mutex<mpsc::Receiver<String>>>,
}

impl Running {
    /// Starts `dopy ARGS...` and waits (bounded) until it has printed `lines` lines.
    async fn start(args: &[&str], env: &[(&str, &str)], lines: usize) -> Running {
        let mut command = Command::new(DOPY);
        command.args(args).envs(env.iter().copied()).stdin(Stdio::null()).stdout(Stdio::piped());
        let mut child = command.spawn().unwrap();
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { return };
                if tx.send(line).is_err() {
                    return;
                }
            }
        });
        let mut running = Running { child, lines: Vec::new(), more: Arc::new(Mutex::new(rx)) };
        for _ in 0..lines {
            let line = running.next_line().await;
            running.lines.push(line);
        }
        running
    }

    /// The next line it prints (waiting at most 60 s).
    async fn next_line(&self) -> String {
        let more = self.more.clone();
        let line = tokio::task::spawn_blocking(move || more.lock().unwrap().recv_timeout(Duration::from_secs(60)));
        line.await.unwrap().expect("a line in time")
    }

    /// The endpoint in a line `serving names on ENDPOINT (...)`.
    fn endpoint(&self, line: usize) -> String {
        let rest = self.lines[line].strip_prefix("serving names on ").expect("a serving line");
        rest.split(' ').next().unwrap().to_owned()
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts `dopy serve names` on a free port with the database `db`.
async fn serve(db: &str) -> (Running, String) {
    let server = Running::start(&["serve", "names", "--db", db, "--listen", "tcp://127.0.0.1:0"], &[], 1).await;
    let endpoint = server.endpoint(0);
    (server, endpoint)
}

/// Registering, looking up, listing (by prefix, by tag, as JSON) and removing names, with the
/// documented exit codes.
#[tokio::test(flavor = "multi_thread")]
async fn names_are_registered_looked_up_listed_and_removed() {
    let dir = TempDir::new("basics");
    let (_server, names) = serve(&dir.file("names.redb")).await;
    let run = |args: &[&str]| {
        let args: Vec<String> = ["names", "--names", &names].iter().chain(args).map(|s| s.to_string()).collect();
        async move { dopy(&args.iter().map(String::as_str).collect::<Vec<_>>(), &[]).await }
    };

    let r = run(&["register", "math/calc", "tcp://127.0.0.1:9600/calc", "--tag", "math"]).await;
    assert_eq!(r.code, Some(0), "{r:?}");
    assert_eq!(r.stdout, "registered math/calc -> tcp://127.0.0.1:9600/calc (until removed)\n");
    let r = run(&["register", "text", "tcp://127.0.0.1:9601/text", "--lease", "3600"]).await;
    assert!(r.stdout.contains("for 3600s, not renewed"), "{r:?}");

    let r = run(&["list"]).await;
    assert_eq!(r.stdout, "math/calc  tcp://127.0.0.1:9600/calc  tags=math  permanent\ntext       tcp://127.0.0.1:9601/text  lease=3600s\n");
    let r = run(&["list", "math/"]).await;
    assert_eq!(r.stdout.lines().count(), 1, "{r:?}");
    let r = run(&["list", "--tag", "math", "--json"]).await;
    let listed: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
    assert_eq!(listed[0]["name"], "math/calc");
    assert_eq!(listed.as_array().unwrap().len(), 1);
    let r = run(&["lookup", "math/calc", "--address"]).await;
    assert_eq!(r.stdout, "tcp://127.0.0.1:9600/calc\n");

    let r = run(&["register", "text", "tcp://127.0.0.1:9700/other"]).await;
    assert_eq!(r.code, Some(4), "a taken name: {r:?}");
    assert!(r.stderr.contains("already registered"), "{r:?}");
    let r = run(&["register", "text", "tcp://127.0.0.1:9700/other", "--replace"]).await;
    assert_eq!(r.code, Some(0), "{r:?}");

    let r = run(&["remove", "text"]).await;
    assert_eq!((r.code, r.stdout.as_str()), (Some(0), "removed text\n"));
    let r = run(&["remove", "text"]).await;
    assert_eq!(r.code, Some(4), "{r:?}");
    let r = run(&["lookup", "text"]).await;
    assert_eq!(r.code, Some(4), "{r:?}");
    assert!(r.stderr.contains("no name `text` is registered"), "{r:?}");
    let r = run(&["register", "bad", "tcp://127.0.0.1:9600"]).await;
    assert!(r.stderr.contains("the address names no object"), "{r:?}");
}

/// A name server killed with SIGKILL and started again on its database still has every name.
#[tokio::test(flavor = "multi_thread")]
async fn names_survive_a_killed_name_server() {
    let dir = TempDir::new("restart");
    let (server, names) = serve(&dir.file("names.redb")).await;
    let r = dopy(&["names", "--names", &names, "register", "calc", "tcp://127.0.0.1:9600/calc"], &[]).await;
    assert_eq!(r.code, Some(0), "{r:?}");
    drop(server); // SIGKILL

    let (_server, names) = serve(&dir.file("names.redb")).await;
    let r = dopy(&["names", "lookup", "calc"], &[("DOPY_NAMES", &names)]).await;
    assert_eq!(r.stdout, "calc  tcp://127.0.0.1:9600/calc  permanent\n", "{r:?}");
}

/// `register --hold` keeps the name while the command runs; killed with SIGKILL, it stops
/// renewing and the name expires with its lease (watchers hear it).
#[tokio::test(flavor = "multi_thread")]
async fn a_held_registration_expires_when_its_command_is_killed() {
    let node = Node::new();
    NameServer::in_memory().publish(&node).unwrap();
    let names_at = node.listen("tcp://127.0.0.1:0").await.unwrap().to_string();
    let names = Names::connect(&Node::new(), &names_at).await.unwrap();
    let mut watch = names.watch("").await.unwrap();

    let args = ["names", "register", "calc", "tcp://127.0.0.1:9600/calc", "--hold", "--lease", "300ms"];
    let held = Running::start(&args, &[("DOPY_NAMES", &names_at)], 1).await;
    assert!(held.lines[0].starts_with("registered calc"), "{:?}", held.lines);
    let event = tokio::time::timeout(Duration::from_secs(30), watch.next()).await.unwrap().unwrap();
    assert!(matches!(event, Event::Registered(ref e) if e.name == "calc"), "{event:?}");
    drop(held); // SIGKILL
    let event = tokio::time::timeout(Duration::from_secs(30), watch.next()).await.unwrap().unwrap();
    assert!(matches!(event, Event::Removed { reason: Removal::Expired, .. }), "{event:?}");
}

/// With --secret-env, the --listen endpoints need the secret and the --public ones are
/// read-only: anyone may look up, only peers with the secret may register.
#[tokio::test(flavor = "multi_thread")]
async fn public_endpoints_are_read_only_and_changes_need_the_secret() {
    let dir = TempDir::new("secret");
    let env = [("NAMES_SECRET", "sesame")];
    let args = ["serve", "names", "--db", &dir.file("names.redb"), "--secret-env", "NAMES_SECRET"];
    let args = [&args[..], &["--listen", "tcp://127.0.0.1:0", "--public", "tcp://127.0.0.1:0"]].concat();
    let server = Running::start(&args, &env, 2).await;
    assert!(server.lines[0].ends_with("(writable)") && server.lines[1].ends_with("(read-only)"), "{:?}", server.lines);
    let (admin, public) = (server.endpoint(0), server.endpoint(1));
    let register = ["names", "register", "calc", "tcp://127.0.0.1:9600/calc"];

    let r = dopy(&[&register[..], &["--names", &public]].concat(), &[]).await;
    assert_eq!(r.code, Some(4), "{r:?}");
    assert!(r.stderr.contains("read-only"), "{r:?}");
    let r = dopy(&[&register[..], &["--names", &admin]].concat(), &[]).await;
    assert_eq!(r.code, Some(3), "no secret: {r:?}");
    assert!(r.stderr.contains("unauthorized"), "{r:?}");
    let r = dopy(&[&register[..], &["--names", &admin, "--secret-env", "NAMES_SECRET"]].concat(), &env).await;
    assert_eq!(r.code, Some(0), "{r:?}");
    let r = dopy(&["names", "--names", &public, "lookup", "calc", "--address"], &[]).await;
    assert_eq!(r.stdout, "tcp://127.0.0.1:9600/calc\n", "{r:?}");
}

/// `watch` prints the names there (`=`), then registrations (`+`) and removals (`-`) as they
/// happen.
#[tokio::test(flavor = "multi_thread")]
async fn watch_prints_registrations_and_removals() {
    let dir = TempDir::new("watch");
    let (_server, names) = serve(&dir.file("names.redb")).await;
    let register = ["names", "--names", &names, "register"];
    let r = dopy(&[&register[..], &["a/one", "tcp://127.0.0.1:9600/one"]].concat(), &[]).await;
    assert_eq!(r.code, Some(0), "{r:?}");
    let watch = Running::start(&["names", "--names", &names, "watch", "a/"], &[], 1).await;
    assert_eq!(watch.lines[0], "= a/one  tcp://127.0.0.1:9600/one  permanent");

    dopy(&[&register[..], &["b/other", "tcp://127.0.0.1:9600/other"]].concat(), &[]).await;
    dopy(&[&register[..], &["a/two", "tcp://127.0.0.1:9600/two", "--tag", "x"]].concat(), &[]).await;
    assert_eq!(watch.next_line().await, "+ a/two  tcp://127.0.0.1:9600/two  tags=x  permanent");
    dopy(&["names", "--names", &names, "remove", "a/one"], &[]).await;
    assert_eq!(watch.next_line().await, "- a/one (removed)");
}

/// A second name server on a database in use is refused with a clear error.
#[tokio::test(flavor = "multi_thread")]
async fn a_database_in_use_is_refused() {
    let dir = TempDir::new("locked");
    let (_server, _) = serve(&dir.file("names.redb")).await;
    let r = dopy(&["serve", "names", "--db", &dir.file("names.redb"), "--listen", "tcp://127.0.0.1:0"], &[]).await;
    assert_eq!(r.code, Some(1), "{r:?}");
    assert!(r.stderr.contains("is already open"), "{r:?}");
    assert!(dir.path().join("names.redb").exists());
}
