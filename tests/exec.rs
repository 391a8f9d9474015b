//! Child-process servers (`exec:`): banners, stderr, exit statuses, and no orphans.

#[macro_use]
mod support;
use support::harness;

use std::process::Stdio;

use dopy::{CallError, Error, Node};
use harness::demo::ProcessProxy;
use harness::{process_ends, process_running, promptly, serve_command, DOPY_SERVE};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// The pid in a child link's peer name: "`COMMAND` (pid N)".
fn child_pid(conn: &dopy::Connection) -> u32 {
    let peer = &conn.info().peer;
    let pid = peer.rsplit_once("(pid ").and_then(|(_, p)| p.strip_suffix(')')).expect(peer);
    pid.parse().unwrap()
}

/// A child that prints a banner before the handshake fails the connection at once, with the
/// banner in the error, not after the handshake timeout and not as a garbage decode.
#[tokio::test]
async fn banner_before_the_handshake_fails_at_once_showing_it() {
    let client = Node::builder().handshake_timeout(std::time::Duration::from_secs(60)).build();
    let address = format!("exec:sh -c 'echo \"Welcome to gateway-7!\"; exec {DOPY_SERVE} --stdio'#calc");
    let err = promptly("the banner error", client.object(&address)).await.unwrap_err();
    assert!(matches!(err, Error::Connect { .. }), "{err}");
    let text = format!("{err:#}");
    assert!(text.contains("does not speak dopy"), "{text}");
    assert!(text.contains(r#"received "Welcome to gateway-7!\n"#), "{text}");
}

/// A child that exits before the handshake explains why: its exit status and the end of its
/// stderr are in the connection error.
#[tokio::test]
async fn child_exiting_before_the_handshake_shows_its_status_and_stderr() {
    let address = "exec:sh -c 'echo \"fatal: no config at /etc/app.toml\" >&2; exit 2'#calc";
    let err = Node::new().object(address).await.unwrap_err();
    assert!(matches!(err, Error::Connect { .. }), "{err}");
    let text = format!("{err:#}");
    assert!(text.contains("exited (exit status: 2)"), "{text}");
    assert!(text.contains("| fatal: no config at /etc/app.toml"), "{text}");
}

/// A command that cannot be started is named in the error.
#[tokio::test]
async fn missing_command_is_named_in_the_error() {
    let err = Node::new().object("exec:/nonexistent/dopy-serve --stdio#calc").await.unwrap_err();
    assert!(matches!(err, Error::Connect { .. }), "{err}");
    assert!(format!("{err:#}").contains("could not run `/nonexistent/dopy-serve --stdio`"), "{err:#}");
}

/// When the child dies, the call in flight fails with `Disconnected`, whose reason holds the
/// exit status and what the child wrote to stderr last.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn child_death_reports_exit_status_and_stderr_in_disconnected() {
    let client = Node::new();
    let address = |obj: &str| format!("exec:{}#{obj}", serve_command(""));
    let process: ProcessProxy = client.proxy(&address("process")).await.unwrap();
    let calc: harness::demo::CalculatorProxy = client.proxy(&address("calc")).await.unwrap();
    process.eprint("about to fall over".into()).await.unwrap();
    let mut slow = std::pin::pin!(calc.slow_echo(60_000, "never".into()));
    tokio::select! {
        biased;
        r = &mut slow => panic!("ended early: {r:?}"),
        r = calc.add(1, 2) => assert_eq!(r.unwrap(), 3),
    }
    process.exit(7).await.unwrap();
    let err = promptly("the call in flight", slow).await.unwrap_err();
    let CallError::Disconnected(reason) = &err else { panic!("expected Disconnected, got {err}") };
    // What the transport adds to the cause: the child's exit status and last words.
    let detail = reason.detail().unwrap_or_default();
    assert!(detail.contains("exited (exit status: 7)"), "{reason}");
    assert!(detail.contains("| about to fall over"), "{reason}");
    assert!(reason.to_string().contains("exited (exit status: 7)"), "{reason}");
}

/// Dropping the last handle to a child connection ends the child: no orphan is left.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dropping_the_last_handle_ends_the_child() {
    let client = Node::new();
    let process: ProcessProxy = client.proxy(&format!("exec:{}#process", serve_command(""))).await.unwrap();
    let pid = process.pid().await.unwrap();
    assert!(process_running(pid));
    let calc: harness::demo::CalculatorProxy = client.proxy(&format!("exec:{}#calc", serve_command(""))).await.unwrap();
    drop(process);
    assert_eq!(calc.add(2, 2).await.unwrap(), 4, "another handle keeps the child");
    assert!(process_running(pid));
    drop((calc, client));
    assert!(process_ends(pid).await, "child {pid} still running after its last handle was dropped");
}

/// A child that ignores the end of its stdin is killed once its connection is dropped.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn child_ignoring_end_of_input_is_killed_when_dropped() {
    // The shell serves, then (stdin closed) becomes a `sleep` that would outlive the client.
    let address = format!("exec:sh -c '{}; exec sleep 600'#calc", serve_command(""));
    let client = Node::new();
    let obj = client.object(&address).await.unwrap();
    assert_eq!(obj.call("add", [1.into(), 1.into()]).await.unwrap(), 2.into());
    let pid = child_pid(obj.connection().unwrap());
    drop((obj, client));
    assert!(process_ends(pid).await, "child {pid} still running after its connection was dropped");
}

/// `dopy-serve --stdio` (`Node::serve_stdio`) writes nothing to stdout but the protocol and
/// returns, exiting with success, when its stdin closes.
#[tokio::test]
async fn stdio_server_writes_only_protocol_to_stdout_and_ends_with_stdin() {
    let mut child = tokio::process::Command::new(DOPY_SERVE)
        .arg("--stdio")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    stdin.write_all(&dopy::transport::handshake::HELLO).await.unwrap();
    drop(stdin);
    let mut stdout = Vec::new();
    child.stdout.take().unwrap().read_to_end(&mut stdout).await.unwrap();
    let status = promptly("dopy-serve to exit", child.wait()).await.unwrap();
    assert!(status.success(), "{status}");
    assert_eq!(stdout, dopy::transport::handshake::HELLO);
}
