//! Shared by the naming and persistence tests: child processes (this test binary run again
//! in a given role) to kill with SIGKILL.
#![allow(dead_code, unreachable_pub)]

use std::process::Stdio;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

/// The environment variable that tells a child process its role.
pub const ROLE: &str = "DOPY_TEST_CHILD_ROLE";

/// The line prefix a child prints once it is ready, followed by what the parent needs.
pub const READY: &str = "READY ";

/// A child process: this test binary, running the ignored test `child` in a role.
#[derive(Debug)]
pub struct ChildProcess {
    child: Child,
    /// What the child printed after [`READY`].
    pub ready: String,
}

impl ChildProcess {
    /// Starts this test binary's `child_process` test in `role`, with extra environment
    /// variables, and waits (bounded) until it says it is ready.
    pub async fn start(role: &str, env: &[(&str, &str)]) -> ChildProcess {
        let exe = std::env::current_exe().unwrap();
        let mut command = Command::new(exe);
        command
            .args(["--exact", "child_process", "--ignored", "--nocapture", "--test-threads=1", "--quiet"])
            .env(ROLE, role)
            .envs(env.iter().copied())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true);
        let mut child = command.spawn().unwrap();
        let stdout = child.stdout.take().unwrap();
        let mut lines = BufReader::new(stdout).lines();
        let ready = tokio::time::timeout(Duration::from_secs(30), async {
            while let Some(line) = lines.next_line().await.unwrap() {
                if let Some(rest) = line.strip_prefix(READY) {
                    return rest.to_owned();
                }
            }
            panic!("the child process ended before it was ready");
        })
        .await
        .expect("the child process got ready in time");
        ChildProcess { child, ready }
    }

    /// The child's process id.
    pub fn pid(&self) -> u32 {
        self.child.id().unwrap()
    }

    /// Kills the child with SIGKILL and reaps it.
    pub async fn kill(mut self) {
        self.child.kill().await.unwrap();
    }
}

/// In a child process, runs `serve` for the role the parent gave (if any) on a fresh runtime,
/// then waits until stdin closes (the parent went away) or the process is killed.
///
/// Returns at once in a normal test run, where no role is set.
pub fn run_child<F, Fut>(serve: F)
where
    F: FnOnce(String) -> Fut,
    Fut: std::future::Future<Output = Box<dyn std::any::Any>>,
{
    let Ok(role) = std::env::var(ROLE) else { return };
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().unwrap();
    runtime.block_on(async move {
        let _keep = serve(role).await;
        let mut stdin = BufReader::new(tokio::io::stdin()).lines();
        while let Ok(Some(_)) = stdin.next_line().await {}
    });
    std::process::exit(0);
}

/// Prints the ready line for the parent.
pub fn ready(what: impl std::fmt::Display) {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    writeln!(out, "{READY}{what}").unwrap();
    out.flush().unwrap();
}
