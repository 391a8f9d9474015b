//! A calculator server to try the `dopy` command-line tool on.
//!
//! Serves `calc` (the calculator the CLI tests use) until Ctrl-C or end of input:
//!
//! ```sh
//! cargo run -p dopy-cli --example calc_server -- tcp://127.0.0.1:9600
//! dopy inspect tcp://127.0.0.1:9600/calc          # in another shell
//! ```

#[path = "../tests/support/calculator.rs"]
mod calculator;

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

async fn run() -> Result<(), dopy::Error> {
    let endpoint = std::env::args().nth(1).unwrap_or_else(|| "tcp://127.0.0.1:9600".into());
    let node = dopy::Node::new();
    node.publish("calc", calculator::Calculator::default())?;
    let addr = node.listen(&endpoint).await?;
    println!("serving {addr}/calc (Ctrl-C or end of input stops)");
    let mut stdin = tokio::io::stdin();
    let mut buf = [0u8; 64];
    let end_of_input = async { while stdin.read(&mut buf).await.is_ok_and(|n| n > 0) {} };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        () = end_of_input => {}
    }
    Ok(())
}
