//! Child processes: `exec:COMMAND ARGS...` runs a command and speaks over its stdin/stdout.
//!
//! The child is attached to the stream: dropping the connection closes the child's stdin (a
//! dopy server then exits by itself) and kills it if it has not exited shortly after, so no
//! child outlives its connection. The child's stderr is collected (the last 64 KiB are kept)
//! and, with its exit status, explains a failed handshake or a lost connection.

use std::collections::VecDeque;
use std::ffi::OsStr;
use std::fmt::Write as _;
use std::io;
use std::pin::Pin;
use std::process::{ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::AsyncReadExt;
use tokio::process::{Child, ChildStderr, Command};
use tokio::sync::watch;

use crate::{Attachment, LinkInfo, RawStream, Role};

/// How much of the child's stderr is kept (the end of it).
pub const STDERR_KEPT: usize = 64 * 1024;

/// How much of the kept stderr an error message shows (the end of it).
const STDERR_SHOWN: usize = 4 * 1024;

/// How long a dropped child may take to exit by itself before it is killed.
const EXIT_GRACE: Duration = Duration::from_secs(2);

/// How long to wait for a child's exit status once its stdout has ended.
const EXIT_WAIT: Duration = Duration::from_secs(2);

/// How long to wait for the rest of stderr once the child has exited.
const STDERR_WAIT: Duration = Duration::from_millis(500);

/// Runs a command and returns a stream over its stdin (to write) and stdout (to read).
///
/// stdin, stdout and stderr are replaced by pipes. The stream [attaches](RawStream::attachment)
/// the child: see the module docs for what that means.
///
/// # Examples
///
/// ```no_run
/// # #[tokio::main(flavor = "current_thread")] async fn main() -> std::io::Result<()> {
/// let mut command = tokio::process::Command::new("dopy-serve");
/// command.arg("--stdio");
/// let raw = dopy_transport::exec::spawn(command)?;
/// assert_eq!(raw.info.transport, "exec");
/// # Ok(()) }
/// ```
///
/// # Errors
///
/// The operating system's error if the command cannot be started (for instance, not found).
pub fn spawn(command: Command) -> io::Result<RawStream> {
    let label = command_line(command.as_std());
    spawn_as(command, "exec", label)
}

/// [`spawn`], naming the transport and the child as given (the ssh transport hides its options).
pub(crate) fn spawn_as(mut command: Command, transport: &'static str, label: String) -> io::Result<RawStream> {
    command.stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped()).kill_on_drop(true);
    let mut child = command.spawn().map_err(|e| io::Error::new(e.kind(), format!("could not run `{label}`: {e}")))?;
    let pid = child.id();
    let (Some(stdin), Some(stdout), Some(stderr)) = (child.stdin.take(), child.stdout.take(), child.stderr.take())
    else {
        return Err(io::Error::other("the child's stdio pipes are missing"));
    };
    let tail = Arc::new(StderrTail::default());
    let (done_tx, done_rx) = watch::channel(false);
    tokio::spawn(collect_stderr(stderr, tail.clone(), done_tx, pid));
    let peer = match pid {
        Some(pid) => format!("`{label}` (pid {pid})"),
        None => format!("`{label}`"),
    };
    tracing::debug!(child = %peer, "child started");
    let info = LinkInfo { transport, local: format!("pid {}", std::process::id()), peer: peer.clone() };
    let process = ChildProcess { peer, child: tokio::sync::Mutex::new(Some(child)), tail, stderr_done: done_rx };
    Ok(RawStream::new(Box::new(stdout), Box::new(stdin), info, Role::Connector).with_attachment(Box::new(process)))
}

/// The command line as a person would type it in a shell (for messages).
fn command_line(command: &std::process::Command) -> String {
    let words = std::iter::once(command.get_program()).chain(command.get_args());
    let quoted = words.map(OsStr::to_string_lossy).map(|word| {
        let plain = !word.is_empty() && word.chars().all(|c| c.is_ascii_alphanumeric() || "-_./=:,@%+".contains(c));
        if plain {
            word.into_owned()
        } else {
            format!("'{}'", word.replace('\'', r"'\''"))
        }
    });
    quoted.collect::<Vec<_>>().join(" ")
}

/// The end of a child's stderr: a bounded ring of bytes.
#[derive(Debug, Default)]
struct StderrTail {
    bytes: Mutex<VecDeque<u8>>,
}

impl StderrTail {
    fn push(&self, chunk: &[u8]) {
        let mut bytes = self.bytes.lock().unwrap_or_else(|e| e.into_inner());
        bytes.extend(chunk);
        let excess = bytes.len().saturating_sub(STDERR_KEPT);
        bytes.drain(..excess);
    }

    /// The last lines of stderr, indented, or `None` if it was silent.
    fn shown(&self) -> Option<String> {
        let bytes = self.bytes.lock().unwrap_or_else(|e| e.into_inner());
        let skip = bytes.len().saturating_sub(STDERR_SHOWN);
        let end: Vec<u8> = bytes.iter().skip(skip).copied().collect();
        let text = String::from_utf8_lossy(&end);
        let text = text.trim_end();
        if text.trim().is_empty() {
            return None;
        }
        let mut out = String::new();
        if skip > 0 {
            out.push_str("\n  | ...");
        }
        for line in text.lines() {
            let _ = write!(out, "\n  | {line}");
        }
        Some(out)
    }
}

/// Reads the child's stderr to its end, keeping the tail and logging it line by line.
async fn collect_stderr(mut stderr: ChildStderr, tail: Arc<StderrTail>, done: watch::Sender<bool>, pid: Option<u32>) {
    let mut buf = vec![0u8; 8 * 1024];
    loop {
        match stderr.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                tail.push(&buf[..n]);
                for line in String::from_utf8_lossy(&buf[..n]).lines() {
                    tracing::debug!(target: "dopy_transport::exec::stderr", pid, "{line}");
                }
            }
        }
    }
    let _ = done.send(true);
}

/// The child kept alive with its stream.
struct ChildProcess {
    /// How messages name the child: its command line and pid.
    peer: String,
    /// `None` once dropped; behind an async lock because waiting for the exit needs `&mut`.
    child: tokio::sync::Mutex<Option<Child>>,
    tail: Arc<StderrTail>,
    /// Becomes `true` when stderr has been read to its end.
    stderr_done: watch::Receiver<bool>,
}

impl ChildProcess {
    fn report(&self, status: Option<ExitStatus>) -> String {
        let mut out = match status {
            Some(status) => format!("child {} exited ({status})", self.peer),
            None => format!("child {} is still running", self.peer),
        };
        match self.tail.shown() {
            Some(stderr) => {
                let _ = write!(out, "; the end of its stderr:{stderr}");
            }
            None => out.push_str("; it wrote nothing to stderr"),
        }
        out
    }
}

impl Attachment for ChildProcess {
    fn on_close(&self) -> Pin<Box<dyn std::future::Future<Output = Option<String>> + Send + '_>> {
        Box::pin(async move {
            let status = match self.child.lock().await.as_mut() {
                Some(child) => tokio::time::timeout(EXIT_WAIT, child.wait()).await.ok().and_then(Result::ok),
                None => None,
            };
            if status.is_some() {
                // The child is gone; its stderr ends too, unless a grandchild still holds it.
                let mut done = self.stderr_done.clone();
                let _ = tokio::time::timeout(STDERR_WAIT, done.wait_for(|d| *d)).await;
            }
            Some(self.report(status))
        })
    }

    fn describe(&self) -> Option<String> {
        let status = match self.child.try_lock() {
            Ok(mut child) => child.as_mut().and_then(|c| c.try_wait().ok().flatten()),
            Err(_) => None,
        };
        Some(self.report(status))
    }
}

impl Drop for ChildProcess {
    fn drop(&mut self) {
        let Some(mut child) = self.child.get_mut().take() else { return };
        if matches!(child.try_wait(), Ok(Some(_))) {
            return;
        }
        // The connection is gone and the child's stdin closes with it: a dopy server exits
        // by itself. Give it a moment, then kill it. Without a runtime, `kill_on_drop` kills.
        let Ok(runtime) = tokio::runtime::Handle::try_current() else { return };
        let peer = std::mem::take(&mut self.peer);
        runtime.spawn(async move {
            if tokio::time::timeout(EXIT_GRACE, child.wait()).await.is_err() {
                tracing::debug!(child = %peer, "child did not exit after its connection closed: killing it");
                let _ = child.kill().await;
            }
        });
    }
}

impl std::fmt::Debug for ChildProcess {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ChildProcess").field("peer", &self.peer).finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stderr_keeps_only_its_end() {
        let tail = StderrTail::default();
        tail.push(&vec![b'x'; STDERR_KEPT]);
        tail.push(b"\nlast words\n");
        assert_eq!(tail.bytes.lock().unwrap().len(), STDERR_KEPT);
        let shown = tail.shown().unwrap();
        assert!(shown.starts_with("\n  | ...\n  | x"), "{shown}");
        assert!(shown.ends_with("\n  | last words"), "{shown}");
    }

    #[test]
    fn silent_stderr_shows_nothing() {
        let tail = StderrTail::default();
        tail.push(b"  \n");
        assert_eq!(tail.shown(), None);
    }

    #[tokio::test]
    async fn exit_status_and_stderr_explain_the_end() {
        let mut command = Command::new("sh");
        command.args(["-c", "echo going down >&2; exit 3"]);
        let raw = spawn(command).unwrap();
        let report = raw.attachment.as_ref().unwrap().on_close().await.unwrap();
        assert!(report.contains("exited (exit status: 3)"), "{report}");
        assert!(report.contains("| going down"), "{report}");
    }
}
