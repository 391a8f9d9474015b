//! One node, many transports: TCP, a Unix socket and an in-process pipe served at once, with a
//! shared secret; then the same object in a child process reached with `exec:` (the child is
//! this very program, serving its stdio), and what an `ssh://` address to it would look like.
//!
//! ```sh
//! cargo run --example transports
//! ```

use dopy::{Node, Value};
use std::process::ExitCode;

/// A counter shared by every client, whichever transport it came by.
#[derive(Debug, Default)]
pub struct Counter {
    n: i64,
}

/// A counter.
#[dopy::remote]
impl Counter {
    /// Adds `by` and returns the new count.
    pub fn bump(&mut self, by: i64) -> i64 {
        self.n += by;
        self.n
    }

    /// The id of the process serving the counter.
    pub fn pid(&self) -> u32 {
        std::process::id()
    }
}

const SECRET: &str = "example secret";

/// The child's side: serve a fresh counter over stdin/stdout until the parent goes away.
async fn child() -> Result<(), dopy::Error> {
    let node = Node::builder().name("child").secret(SECRET).build();
    node.publish("counter", Counter::default())?;
    node.serve_stdio().await
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

async fn run() -> Result<(), dopy::Error> {
    if std::env::args().nth(1).as_deref() == Some("--child") {
        return child().await;
    }

    // A server listening on three transports at once, all requiring the secret.
    let server = Node::builder().name("server").secret(SECRET).build();
    server.publish("counter", Counter::default())?;
    let socket = std::env::temp_dir().join(format!("dopy-example-{}.sock", std::process::id()));
    let endpoints = [
        server.listen("tcp://127.0.0.1:0").await?,
        server.listen(&format!("unix:{}", socket.display())).await?,
        server.listen("memory://example").await?,
    ];

    let client = Node::builder().secret(SECRET).build();
    for endpoint in &endpoints {
        let address = endpoint.object("counter");
        let counter: CounterProxy = client.proxy(&address.to_string()).await?;
        println!("{:<48} bump -> {}", address.to_string(), counter.bump(1).await?);
    }
    let stranger = Node::new().object(endpoints[0].object("counter")).await;
    println!(
        "{:<48} {}",
        "without the secret",
        stranger.map(|_| "accepted?!".to_owned()).unwrap_or_else(|e| e.to_string())
    );

    // The same object type in a child process: this program, run with `--child`.
    let me = std::env::current_exe()?;
    let address = format!("exec:'{}' --child#counter", me.display());
    let counter = client.object(&address).await?;
    let pid = counter.call("pid", []).await?;
    println!(
        "{:<48} bump -> {} (served by pid {pid})",
        "exec:<this program> --child#counter",
        counter.call("bump", [Value::from(5)]).await?
    );

    // Through ssh it would be the same, with the child started on another host:
    let ssh = format!("ssh://alice@build-host/counter?cmd={}%20--child", me.display());
    println!("{:<48} (not run here: needs an ssh server)", ssh.parse::<dopy::Address>()?.to_string());

    // Dropping the last handle ends the child.
    drop(counter);
    println!("\ndone: the child exits as its connection closes");
    Ok(())
}
