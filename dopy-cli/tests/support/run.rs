//! Running the real `dopy` binary from a test, and what it printed.
#![allow(dead_code, unreachable_pub)] // Each test file uses some of these.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// The `dopy` binary.
pub const DOPY: &str = env!("CARGO_BIN_EXE_dopy");

/// What a run of `dopy` printed, how it exited and how long it took.
#[derive(Debug)]
pub struct Run {
    /// The exit code.
    pub code: Option<i32>,
    /// Standard output.
    pub stdout: String,
    /// Standard error.
    pub stderr: String,
    /// From start to exit.
    pub elapsed: Duration,
}

/// Runs `dopy ARGS...` with these environment variables to completion, without blocking the
/// runtime (the servers the test started keep serving meanwhile).
pub async fn dopy_env(args: &[&str], env: &[(&str, &str)]) -> Run {
    let args: Vec<String> = args.iter().map(|a| a.to_string()).collect();
    let env: Vec<(String, String)> = env.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
    tokio::task::spawn_blocking(move || {
        let started = Instant::now();
        let output = Command::new(DOPY).args(&args).envs(env).stdin(Stdio::null()).output().unwrap();
        Run {
            code: output.status.code(),
            stdout: String::from_utf8(output.stdout).unwrap(),
            stderr: String::from_utf8(output.stderr).unwrap(),
            elapsed: started.elapsed(),
        }
    })
    .await
    .unwrap()
}

/// Runs `dopy ARGS...` to completion.
pub async fn dopy(args: &[&str]) -> Run {
    dopy_env(args, &[]).await
}

/// A fresh, empty directory for one test (a [`tempfile::TempDir`]), removed when dropped.
#[derive(Debug)]
pub struct TempDir(tempfile::TempDir);

impl TempDir {
    /// Creates `dopy-cli-LABEL-XXXXXX` in the system's temporary directory.
    pub fn new(label: &str) -> TempDir {
        TempDir(tempfile::Builder::new().prefix(&format!("dopy-cli-{label}-")).tempdir().unwrap())
    }

    /// The directory.
    pub fn path(&self) -> &std::path::Path {
        self.0.path()
    }

    /// A path inside the directory, as a string.
    pub fn file(&self, name: &str) -> String {
        self.0.path().join(name).to_str().unwrap().to_owned()
    }
}
