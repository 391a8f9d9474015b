//! A stand-alone name server: the naming service, its names kept in a database file.
//!
//! Serves `naming` on the endpoint given (default `tcp://127.0.0.1:9500`) until Ctrl-C or end
//! of input, keeping the names in the database file given (default `dopy-names-example.redb`
//! in the system's temporary directory), so they survive a restart. On the way out it prints
//! the names it holds.
//!
//! ```sh
//! cargo run --example dopy_names -- tcp://127.0.0.1:9500 /tmp/names.redb
//! dopy names register calc tcp://127.0.0.1:9600/calc --tag math     # in another shell
//! dopy names list
//! ```
//!
//! `dopy serve names` (the command-line tool) is the same server with more options: a shared
//! secret for changes, read-only public endpoints.

use dopy::naming::NameServer;
use dopy::Node;
use std::process::ExitCode;
use tokio::io::AsyncReadExt;

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

async fn run() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let endpoint = args.next().unwrap_or_else(|| "tcp://127.0.0.1:9500".into());
    let db = args.next().map_or_else(|| std::env::temp_dir().join("dopy-names-example.redb"), Into::into);

    let names = NameServer::open(&db)?;
    let node = Node::builder().name("dopy-names").build();
    names.publish(&node)?;
    let addr = node.listen(&endpoint).await?;
    println!("name service at {addr}/naming, names kept in {} (Ctrl-C or end of input stops)", db.display());
    for entry in names.list("") {
        println!("  restored: {} -> {}", entry.name, entry.address.as_deref().unwrap_or("(by reference)"));
    }

    let mut stdin = tokio::io::stdin();
    let mut buf = [0u8; 64];
    let end_of_input = async { while stdin.read(&mut buf).await.is_ok_and(|n| n > 0) {} };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        () = end_of_input => {}
    }
    println!("stopping with {} name(s) registered", names.list("").len());
    Ok(())
}
