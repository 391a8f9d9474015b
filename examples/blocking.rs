//! The blocking API: a program with no async runtime serves objects and calls them.
//!
//! Three scenes in one process, each check followed by `ok`, with no `#[tokio::main]` and no
//! `.await` in the blocking parts:
//!
//! 1. a blocking server and blocking clients: the main thread publishes a counter, listens and
//!    waits (`blocking::Node::wait`) while four client threads share one
//!    `CounterBlockingProxy`; the last call tells the server to stop waiting;
//! 2. a blocking client calling an async server (on a tokio runtime built by hand);
//! 3. an async client calling a blocking server.
//!
//! ```sh
//! cargo run --example blocking
//! ```

use std::thread;

use dopy::blocking::{self, BlockingProxy};
use dopy::{Error, Value};
use std::process::ExitCode;

/// A counter that can also end its server's `wait`.
#[derive(Debug)]
pub struct Counter {
    count: u64,
    stopper: Option<blocking::Stopper>,
}

#[dopy::remote]
impl Counter {
    /// Adds `n` and returns the new count.
    pub fn bump(&mut self, n: u64) -> u64 {
        self.count += n;
        self.count
    }

    /// Makes the server's `wait` return (the node keeps serving until it is dropped).
    pub fn stop_server(&self) {
        if let Some(stopper) = &self.stopper {
            stopper.stop();
        }
    }
}

fn check(what: &str, passed: bool) {
    println!("{what:<52} {}", if passed { "ok" } else { "FAILED" });
    assert!(passed, "{what} failed");
}

/// Scene 1: blocking on both sides.
fn blocking_server_and_clients() -> Result<(), Error> {
    let server = blocking::Node::new();
    server.publish("counter", Counter { count: 0, stopper: Some(server.stopper()) })?;
    let address = server.listen("tcp://127.0.0.1:0")?.object("counter").to_string();

    let clients = thread::spawn(move || -> Result<u64, Error> {
        let node = blocking::Node::new();
        let counter: CounterBlockingProxy = node.proxy(&address)?;
        // One proxy, shared by four threads (`Send + Sync`); clones would do as well.
        thread::scope(|s| {
            let workers: Vec<_> =
                (0..4).map(|_| s.spawn(|| (0..25).try_for_each(|_| counter.bump(1).map(drop)))).collect();
            workers.into_iter().try_for_each(|w| w.join().expect("a client thread panicked"))
        })?;
        let total = counter.bump(0)?;
        // The dynamic handle, blocking too.
        let dynamic = node.object(&address)?;
        check("blocking dynamic call", dynamic.call("bump", [Value::from(0)])? == Value::UInt(total));
        counter.stop_server()?;
        Ok(total)
    });

    server.wait()?; // the main thread has nothing else to do until a client says so
    check("blocking server: wait() returned when asked", true);
    let total = clients.join().expect("the client thread panicked")?;
    check("blocking clients: 4 threads x 25 bumps", total == 100);
    Ok(())
}

/// Scene 2: a blocking client calling an async server.
fn blocking_client_async_server(runtime: &tokio::runtime::Runtime) -> Result<(), Error> {
    let server = dopy::Node::new();
    server.publish("counter", Counter { count: 0, stopper: None })?;
    let endpoint = runtime.block_on(server.listen("tcp://127.0.0.1:0"))?;

    let client = blocking::Node::new();
    let counter: CounterBlockingProxy = client.proxy(endpoint.object("counter"))?;
    check("blocking client -> async server", counter.bump(2)? == 2 && counter.bump(3)? == 5);

    // The async proxy inside works on the async side.
    let async_counter = counter.as_async().clone();
    check("same object, async proxy", runtime.block_on(async_counter.bump(1))? == 6);
    Ok(())
}

/// Scene 3: an async client calling a blocking server.
fn async_client_blocking_server(runtime: &tokio::runtime::Runtime) -> Result<(), Error> {
    let server = blocking::Node::new();
    server.publish("counter", Counter { count: 0, stopper: None })?;
    let address = server.listen("tcp://127.0.0.1:0")?.object("counter").to_string();

    runtime.block_on(async {
        let counter: CounterProxy = dopy::Node::new().proxy(&address).await?;
        check("async client -> blocking server", counter.bump(4).await? == 4);

        // Inside the async runtime, blocking calls refuse instead of stalling it.
        let blocking_counter: CounterBlockingProxy =
            CounterBlockingProxy::from_async(counter, server.runtime().clone());
        let refused = blocking_counter.bump(1);
        check(
            "blocking call inside async code: dopy::CallError::Blocking",
            matches!(refused, Err(dopy::CallError::Blocking { .. })),
        );
        Ok(())
    })
}

/// Runs the example; a failure is printed as a person reads it (`{:#}`: with its remote trace),
/// not as a debug dump, and the exit code is 1.
fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn run() -> Result<(), Error> {
    blocking_server_and_clients()?;
    // The async side of scenes 2 and 3 runs on a runtime of its own, built without a macro.
    let runtime = tokio::runtime::Runtime::new()?;
    blocking_client_async_server(&runtime)?;
    async_client_blocking_server(&runtime)?;
    Ok(())
}
