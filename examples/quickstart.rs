//! A server and a client in one process: DOPY's demo checks, each followed by `ok`.
//!
//! Shows publishing an object, calling it through the generated typed proxy and dynamically
//! (positional and keyword arguments), typed errors with the server-side trace, panics, and
//! introspection.
//!
//! ```sh
//! cargo run --example quickstart
//! ```

use dopy::{CallError, Error, Node, Value};
use serde::{Deserialize, Serialize};
use std::process::ExitCode;

/// DOPY's demo object.
#[derive(Debug, Default)]
pub struct Calculator {
    total: i64,
}

/// Division by zero, the method's own error type.
#[derive(Debug, Serialize, Deserialize, thiserror::Error)]
#[error("cannot divide {0} by zero")]
pub struct DivideByZero(pub i64);

/// A calculator that keeps a running total.
#[dopy::remote]
impl Calculator {
    /// Adds two numbers.
    pub fn add(&self, a: i64, b: i64) -> i64 {
        a + b
    }

    /// Adds to the running total and returns it.
    pub async fn accumulate(&mut self, x: i64) -> i64 {
        self.total += x;
        self.total
    }

    /// Divides `a` by `b`.
    pub fn divide(&self, a: i64, b: i64) -> Result<i64, DivideByZero> {
        if b == 0 {
            Err(DivideByZero(a))
        } else {
            Ok(a / b)
        }
    }

    /// Panics, to show that the server survives.
    pub fn crash(&self) -> i64 {
        panic!("the calculator caught fire")
    }
}

fn check(what: &str, passed: bool) {
    println!("{what:<40} {}", if passed { "ok" } else { "FAILED" });
    assert!(passed, "{what} failed");
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
    // Server side: publish and listen on a free port.
    let server = Node::builder().name("quickstart-server").build();
    server.publish("calc", Calculator::default())?;
    let addr = server.listen("tcp://127.0.0.1:0").await?;
    println!("serving `calc` at {addr}/calc\n");

    // Client side: a typed proxy and a dynamic handle.
    let client = Node::new();
    let calc: CalculatorProxy = client.proxy(&format!("{addr}/calc")).await?;
    let obj = client.object(&format!("{addr}/calc")).await?;

    check("basic invocation", calc.add(2, 3).await? == 5);
    check("state kept between calls", {
        calc.accumulate(10).await?;
        calc.accumulate(5).await? == 15
    });
    check("dynamic invocation", obj.call("add", [Value::from(2), Value::from(3)]).await? == Value::Int(5));
    check(
        "keyword parameters",
        obj.call_named("divide", [("b", Value::from(2)), ("a", Value::from(10))]).await? == Value::Int(5),
    );

    let err = calc.divide(1, 0).await.unwrap_err();
    check("exceptions: the typed error comes back", matches!(err.method_error(), Some(DivideByZero(1))));
    println!("\n{err:#}\n");

    let err = calc.crash().await.unwrap_err();
    check("exceptions: a panic is reported", matches!(err, CallError::Panic(_)));
    check("the server survives a panic", calc.add(1, 1).await? == 2);

    let err = obj.call("add", [Value::from("two")]).await.unwrap_err();
    check("bad arguments name the parameter", err.to_string().contains("argument `a`"));

    let iface = obj.methods().await?;
    check("introspection", iface.method("divide").is_some_and(|m| m.error.as_deref() == Some("DivideByZero")));
    println!("\n{iface}");
    Ok(())
}
