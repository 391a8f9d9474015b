//! The real `dopy` binary against a real server started in the test process.
//!
//! The server runs on the test's multi-threaded runtime; the binary runs in a blocking task, so
//! the server keeps serving while the test waits for the command.

#[path = "support/calculator.rs"]
mod calculator;

use std::time::Duration;

use assert_cmd::cargo::cargo_bin_cmd;
use calculator::Calculator;
use dopy::{Dispatch, Interface, Node};

/// What a run of `dopy` printed and how it exited.
#[derive(Debug)]
struct Run {
    code: Option<i32>,
    stdout: String,
    stderr: String,
}

/// Runs `dopy ARGS...` to completion without blocking the runtime.
async fn dopy(args: &[&str]) -> Run {
    let args: Vec<String> = args.iter().map(|a| a.to_string()).collect();
    tokio::task::spawn_blocking(move || {
        let output = cargo_bin_cmd!("dopy").args(&args).timeout(Duration::from_secs(60)).output().unwrap();
        Run {
            code: output.status.code(),
            stdout: String::from_utf8(output.stdout).unwrap(),
            stderr: String::from_utf8(output.stderr).unwrap(),
        }
    })
    .await
    .unwrap()
}

/// Starts a node serving a calculator as `calc` on 127.0.0.1:0; returns it and the object's address.
async fn start_server() -> (Node, String) {
    let node = Node::builder().name("cli-test-server").build();
    node.publish("calc", Calculator::default()).unwrap();
    let endpoint = node.listen("tcp://127.0.0.1:0").await.unwrap();
    (node, format!("{endpoint}/calc"))
}

/// An address where nothing listens: a port that was free a moment ago.
fn unreachable_address() -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    drop(listener);
    format!("tcp://127.0.0.1:{port}/calc")
}

/// `inspect` prints every method as a signature with its docs, and marks oneway methods.
#[tokio::test(flavor = "multi_thread")]
async fn inspect_prints_signatures_docs_and_oneway_flags() {
    let (_server, calc) = start_server().await;
    let run = dopy(&["inspect", &calc]).await;
    assert_eq!(run.code, Some(0), "{run:?}");
    for line in [
        "/// A calculator, DOPY's demo object.",
        "impl Calculator {",
        "    /// Adds two numbers.\n    fn add(&self, a: i64, b: i64) -> i64;",
        "    fn divide(&self, a: i64, b: i64) -> Result<i64, DivideByZero>;",
        "    fn centroid(&self, points: Vec<Point>) -> Point;",
        "    async fn repeat(&self, text: String, times: Option<u8>) -> String;",
        "    /// Records a line; no reply is sent.\n    #[dopy(oneway)]\n    fn log(&self, line: String);",
    ] {
        assert!(run.stdout.contains(line), "missing {line:?} in:\n{}", run.stdout);
    }
}

/// `inspect --json` prints the object's `Interface` in its serde form, exactly as the server has it.
#[tokio::test(flavor = "multi_thread")]
async fn inspect_json_is_the_interface() {
    let (_server, calc) = start_server().await;
    let run = dopy(&["inspect", &calc, "--json"]).await;
    assert_eq!(run.code, Some(0), "{run:?}");
    let printed: Interface = serde_json::from_str(&run.stdout).unwrap();
    assert_eq!(printed, Calculator::default().interface());

    let run = dopy(&["inspect", &calc, "divide", "--json"]).await;
    let printed: Interface = serde_json::from_str(&run.stdout).unwrap();
    assert_eq!(printed.methods.len(), 1);
    assert_eq!(printed.methods[0].error.as_deref(), Some("DivideByZero"));
}

/// The issue's examples: positional, keyword and JSON arguments print exactly these results.
#[tokio::test(flavor = "multi_thread")]
async fn call_with_positional_keyword_and_json_arguments() {
    let (_server, calc) = start_server().await;
    let run = dopy(&["call", &calc, "add", "2", "3"]).await;
    assert_eq!((run.code, run.stdout.as_str()), (Some(0), "5\n"), "{run:?}");
    let run = dopy(&["call", &calc, "divide", "b=2", "a=10"]).await;
    assert_eq!((run.code, run.stdout.as_str()), (Some(0), "5\n"), "{run:?}");

    let points = r#"[{"x":1,"y":1,"label":null,"tags":[]}]"#;
    let run = dopy(&["call", &calc, "centroid", points, "--json"]).await;
    assert_eq!((run.code, run.stdout.as_str()), (Some(0), "{\"x\":1.0,\"y\":1.0,\"label\":null,\"tags\":[]}\n"));
    let run = dopy(&["call", &calc, "centroid", points]).await;
    assert_eq!(run.stdout, "{\"x\": 1.0, \"y\": 1.0, \"label\": null, \"tags\": []}\n");
}

/// Arguments follow the parameter types: text for strings, `null` and omission for options,
/// variant names or JSON for enums, negative numbers, and positional before keyword.
#[tokio::test(flavor = "multi_thread")]
async fn call_arguments_follow_the_parameter_types() {
    let (_server, calc) = start_server().await;
    let cases: &[(&[&str], &str)] = &[
        (&["repeat", "42"], "\"42\""),
        (&["repeat", "\"quoted\""], "\"quoted\""),
        (&["repeat", "ab", "3"], "\"ababab\""),
        (&["repeat", "ab", "times=2"], "\"abab\""),
        (&["repeat", "text=x=y", "times=null"], "\"x=y\""),
        (&["area", "Empty"], "0.0"),
        (&["area", r#"{"Rect":[2,3]}"#], "6.0"),
        (&["add", "-2", "-3"], "-5"),
        (&["add", "--json", "--", "-2", "3"], "1"),
        (&["log", "hello"], "()"),
    ];
    for (args, want) in cases {
        let mut argv = vec!["call", calc.as_str()];
        argv.extend_from_slice(args);
        let run = dopy(&argv).await;
        assert_eq!((run.code, run.stdout.trim_end()), (Some(0), *want), "{args:?}: {run:?}");
    }
}

/// The method's own error exits with 4 and prints the remote trace on stderr.
#[tokio::test(flavor = "multi_thread")]
async fn method_error_prints_the_remote_trace() {
    let (_server, calc) = start_server().await;
    let run = dopy(&["call", &calc, "divide", "1", "0"]).await;
    assert_eq!(run.code, Some(4), "{run:?}");
    assert_eq!(run.stdout, "");
    for part in ["calc.divide failed", "--- remote ---", "cannot divide 1 by zero", "cli-test-server"] {
        assert!(run.stderr.contains(part), "missing {part:?} in:\n{}", run.stderr);
    }
}

/// Bad arguments exit with 5 and name the parameter, whether caught locally or by the server.
#[tokio::test(flavor = "multi_thread")]
async fn bad_arguments_name_the_parameter() {
    let (_server, calc) = start_server().await;
    let cases: &[(&[&str], &str)] = &[
        (&["add", "1", "two"], "bad argument `b` of `add` (`i64`)"),
        (&["repeat", "x", "300"], "bad argument `times` of `repeat`"),
        (&["centroid", r#"[{"x":1"#], "invalid JSON"),
        (&["add", "1", "2", "3"], "`add` takes 2 arguments (a, b), 3 given"),
        (&["add", "1", "a=2"], "argument `a` of `add` is given twice"),
        // Caught by the server: a missing argument.
        (&["add", "1"], "`b`"),
    ];
    for (args, want) in cases {
        let mut argv = vec!["call", calc.as_str()];
        argv.extend_from_slice(args);
        let run = dopy(&argv).await;
        assert_eq!(run.code, Some(5), "{args:?}: {run:?}");
        assert!(run.stderr.contains(want), "{args:?}: missing {want:?} in:\n{}", run.stderr);
        assert!(run.stderr.contains("\nsignature: "), "{args:?}: no signature in:\n{}", run.stderr);
    }
}

/// An unknown method or object is a remote error (4); the methods there are listed.
#[tokio::test(flavor = "multi_thread")]
async fn unknown_method_or_object_is_a_remote_error() {
    let (_server, calc) = start_server().await;
    let run = dopy(&["call", &calc, "frobnicate", "1"]).await;
    assert_eq!(run.code, Some(4), "{run:?}");
    assert!(run.stderr.contains("no such method") && run.stderr.contains("`frobnicate`"), "{}", run.stderr);
    assert!(run.stderr.contains("methods of Calculator: add, divide, centroid"), "{}", run.stderr);

    let run = dopy(&["inspect", &calc, "frobnicate"]).await;
    assert_eq!(run.code, Some(4), "{run:?}");

    let nobody = calc.replace("/calc", "/nobody");
    let endpoint = calc.trim_end_matches("/calc");
    for args in [vec!["call", &nobody, "add", "1", "2"], vec!["inspect", &nobody]] {
        let run = dopy(&args).await;
        assert_eq!(run.code, Some(4), "{run:?}");
        let want = format!("error: no object `nobody` at {endpoint}\n");
        assert!(run.stderr.starts_with(&want), "{args:?}: want {want:?} in:\n{}", run.stderr);
        // The CLI's own introspection call is not the user's business.
        assert!(!run.stderr.contains("dopy.methods"), "{args:?}: {}", run.stderr);
    }
}

/// An object whose method panics.
#[derive(Debug, Default)]
struct Fragile;

#[allow(unreachable_pub)] // `#[dopy::remote]` methods are `pub`; the test crate is private.
#[dopy::remote]
impl Fragile {
    /// Panics.
    pub fn explode(&self) {
        panic!("boom");
    }
}

/// A panic in the remote method prints its message and location; the server's backtrace only
/// with `-v`.
#[tokio::test(flavor = "multi_thread")]
async fn remote_panic_prints_message_and_location_and_the_backtrace_only_with_verbose() {
    let (server, calc) = start_server().await;
    server.publish("fragile", Fragile).unwrap();
    let fragile = calc.replace("/calc", "/fragile");

    let run = dopy(&["call", &fragile, "explode"]).await;
    assert_eq!(run.code, Some(4), "{run:?}");
    assert!(run.stderr.contains("panic in fragile.explode: boom (at dopy-cli/tests/cli.rs:"), "{}", run.stderr);
    assert!(!run.stderr.contains("\n  backtrace:") && run.stderr.lines().count() < 12, "{}", run.stderr);

    // Whether the server sends a backtrace is its choice; if it does, the default output says
    // so and -v prints it after the same message.
    let sent = run.stderr.contains("run again with -v");
    let verbose = dopy(&["call", &fragile, "explode", "-v"]).await;
    assert_eq!(verbose.code, Some(4), "{verbose:?}");
    assert!(verbose.stderr.starts_with(run.stderr.lines().next().unwrap()), "{}", verbose.stderr);
    assert_eq!(verbose.stderr.contains("--- remote backtrace ---\n  "), sent, "{}", verbose.stderr);
    assert!(!verbose.stderr.contains("run again with -v"), "{}", verbose.stderr);
}

/// An address nobody listens on is a connection failure (3); a malformed one a usage error (2).
#[tokio::test(flavor = "multi_thread")]
async fn unreachable_address_is_a_connection_failure() {
    let nowhere = unreachable_address();
    for args in [vec!["call", &nowhere, "add", "1", "2"], vec!["inspect", &nowhere], vec!["ping", &nowhere]] {
        let run = dopy(&args).await;
        assert_eq!(run.code, Some(3), "{args:?}: {run:?}");
        assert!(run.stderr.starts_with("error: could not connect to tcp://127.0.0.1:"), "{}", run.stderr);
    }
    let run = dopy(&["call", "localhost:9600/calc", "add", "1", "2"]).await;
    assert_eq!(run.code, Some(2), "{run:?}");
    assert!(run.stderr.contains("invalid address"), "{}", run.stderr);
    let run = dopy(&["call"]).await;
    assert_eq!(run.code, Some(2), "{run:?}");
}

/// `ping` prints one round-trip time per pong and statistics, to a node or an object's node.
#[tokio::test(flavor = "multi_thread")]
async fn ping_prints_round_trip_times() {
    let (_server, calc) = start_server().await;
    let endpoint = calc.trim_end_matches("/calc").to_owned();
    for address in [&endpoint, &calc] {
        let run = dopy(&["ping", address, "-c", "3", "-i", "10ms"]).await;
        assert_eq!(run.code, Some(0), "{run:?}");
        let pongs: Vec<&str> = run.stdout.lines().filter(|l| l.starts_with("pong from ")).collect();
        assert_eq!(pongs.len(), 3, "{}", run.stdout);
        assert!(pongs[2].contains("seq=3 time=") && pongs[2].ends_with(" ms"), "{}", run.stdout);
        assert!(run.stdout.contains("3 pings sent, 3 pongs received, 0% lost"), "{}", run.stdout);
    }
}

/// Every subcommand's `--help` has examples and the exit codes.
#[tokio::test(flavor = "multi_thread")]
async fn help_shows_examples_and_exit_codes() {
    for command in ["inspect", "call", "ping"] {
        let run = dopy(&[command, "--help"]).await;
        assert_eq!(run.code, Some(0));
        assert!(run.stdout.contains("\nExamples") && run.stdout.contains(&format!("\n  dopy {command} ")), "{command}");
        assert!(run.stdout.contains("5  bad arguments"), "{command}: {}", run.stdout);
    }
    let run = dopy(&["completions", "--help"]).await;
    assert!(run.stdout.contains("dopy completions bash"), "{}", run.stdout);
}

/// `completions` prints a script for each shell.
#[tokio::test(flavor = "multi_thread")]
async fn completions_print_a_script_per_shell() {
    for shell in ["bash", "zsh", "fish"] {
        let run = dopy(&["completions", shell]).await;
        assert_eq!(run.code, Some(0), "{shell}: {run:?}");
        assert!(run.stdout.contains("inspect") && run.stdout.contains("ping"), "{shell}");
    }
}
