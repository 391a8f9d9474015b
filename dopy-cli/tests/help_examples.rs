//! Every example in `--help` and in the README's command-line section runs as written against
//! the documented server (calc_server's calculator), in order, through `sh`.
//!
//! Each block of examples runs in a fresh directory that is also `$HOME`, with `dopy` on the
//! `PATH`. The test serves the calculator itself, and gives every `127.0.0.1:PORT` or
//! `0.0.0.0:PORT` of the examples a free port of its own (the same one wherever the port
//! appears, and `$DOPY_NAMES` for 9500, the name service's default): that is the only change.
//! Commands that run until interrupted (servers, `--hold`, `watch`, `ping` without `-c`) are
//! started, must print their ready lines (a server: one per endpoint), and are stopped once the
//! block is done.

#[path = "support/calculator.rs"]
mod calculator;
#[path = "support/run.rs"]
mod run;

use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use calculator::Calculator;
use dopy::Node;
use run::{dopy, TempDir, DOPY};

/// The examples of `dopy ARGS --help`: the lines of its `Examples` section.
async fn help_examples(args: &[&str]) -> Vec<String> {
    let mut argv = args.to_vec();
    argv.push("--help");
    let run = dopy(&argv).await;
    assert_eq!(run.code, Some(0), "{run:?}");
    let section = run.stdout.split("\nExamples").nth(1).unwrap_or_else(|| panic!("no examples in {args:?}"));
    let lines: Vec<String> =
        section.lines().skip(1).take_while(|l| !l.trim().is_empty()).map(|l| l.trim().to_owned()).collect();
    assert!(!lines.is_empty(), "no examples in {args:?}");
    lines
}

/// The shell lines of the README's command-line section that use `dopy` (the `cargo` lines
/// build and serve; the test does both itself).
fn readme_examples() -> Vec<String> {
    let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../README.md")).unwrap();
    let section = readme.split("\n## Command-line tool\n").nth(1).expect("a command-line section");
    let block = section.split("```sh\n").nth(1).and_then(|b| b.split("\n```").next()).expect("a sh block");
    block.lines().filter(|l| !l.trim().is_empty() && !l.starts_with("cargo ")).map(str::to_owned).collect()
}

/// Whether an example runs until interrupted.
fn runs_until_interrupted(line: &str) -> bool {
    line.contains("dopy serve ")
        || line.contains(" --hold")
        || line.contains("dopy names watch")
        || (line.contains("dopy ping ") && !line.contains(" -c "))
}

/// A free port on 127.0.0.1, below Linux's ephemeral range (32768 and up): a port the kernel
/// hands out for port 0 may be taken as the source port of any test's client connection before
/// the example's server binds it (seen in CI: the server exited after its first line, and the
/// next example met "connection refused"). Ports here are handed out once per process.
fn free_port() -> u16 {
    use std::sync::atomic::{AtomicU16, Ordering};
    static NEXT: AtomicU16 = AtomicU16::new(0);
    let start = 20_000 + (std::process::id() % 1_000) as u16 * 12;
    loop {
        let port = start + NEXT.fetch_add(1, Ordering::Relaxed) % 12_000;
        if std::net::TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
}

/// The lines a command that runs until interrupted prints when it is ready: `dopy serve` one
/// per endpoint it listens on, the others one.
fn ready_lines(line: &str) -> usize {
    match line.contains("dopy serve ") {
        true => (line.matches("--listen ").count() + line.matches("--public ").count()).max(1),
        false => 1,
    }
}

/// Replaces each `127.0.0.1:PORT` and `0.0.0.0:PORT` with `127.0.0.1:` and the port `ports` maps
/// PORT to (a new free one the first time).
fn map_ports(line: &str, ports: &mut HashMap<u16, u16>) -> String {
    let mut out = String::new();
    let mut rest = line;
    while let Some((at, host)) =
        ["127.0.0.1:", "0.0.0.0:"].iter().filter_map(|h| rest.find(h).map(|i| (i, *h))).min_by_key(|(i, _)| *i)
    {
        let after = &rest[at + host.len()..];
        let digits = after.chars().take_while(char::is_ascii_digit).count();
        out += &rest[..at];
        match after[..digits].parse::<u16>() {
            Ok(port) => {
                let mapped = *ports.entry(port).or_insert_with(free_port);
                out += &format!("127.0.0.1:{mapped}");
            }
            Err(_) => out += &rest[at..at + host.len() + digits],
        }
        rest = &after[digits..];
    }
    out + rest
}

/// `sh -c LINE` in `dir` (also `$HOME`), with `dopy` on the `PATH`, in a process group of its own.
fn shell(line: &str, dir: &Path, names: &str) -> Command {
    let bin = Path::new(DOPY).parent().unwrap();
    let path = format!("{}:{}", bin.display(), std::env::var("PATH").unwrap_or_default());
    let mut command = Command::new("sh");
    command.arg("-c").arg(line).current_dir(dir).env("HOME", dir).env("PATH", path).env("DOPY_NAMES", names);
    command.env_remove("DOPY_DB").stdin(Stdio::null()).process_group(0);
    command
}

/// A command running until interrupted: stopped (its whole process group) when dropped.
struct Background(Child);

impl Drop for Background {
    fn drop(&mut self) {
        let _ = Command::new("kill").arg("-TERM").arg("--").arg(format!("-{}", self.0.id())).status();
        let _ = self.0.wait();
    }
}

/// Runs `lines` in order against a calculator served here; panics on the first that fails.
async fn run_examples(what: &str, lines: &[String]) {
    let server = Node::builder().name("calc_server").build();
    server.publish("calc", Calculator::default()).unwrap();
    let calc_port = match server.listen("tcp://127.0.0.1:0").await.unwrap() {
        dopy::Endpoint::Tcp { port, .. } => port,
        other => panic!("not tcp: {other}"),
    };
    let dir = TempDir::new("examples");
    let mut ports = HashMap::from([(9600, calc_port)]);
    let names = map_ports("tcp://127.0.0.1:9500", &mut ports);
    let mut background = Vec::new();
    for line in lines {
        let mapped = map_ports(line, &mut ports);
        let mut command = shell(&mapped, dir.path(), &names);
        if runs_until_interrupted(line) {
            let mut child = command.stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
            let stdout = child.stdout.take().unwrap();
            let (tx, rx) = mpsc::channel();
            let ready = ready_lines(line);
            std::thread::spawn(move || {
                // Every ready line, then the rest is read and dropped (the pipe never fills).
                let mut lines = BufReader::new(stdout).lines();
                let last = lines.by_ref().take(ready).last();
                let _ = tx.send(last);
                lines.for_each(drop);
            });
            let first = tokio::task::spawn_blocking(move || rx.recv_timeout(Duration::from_secs(60))).await.unwrap();
            let stopped = child.try_wait().unwrap().is_some_and(|s| !s.success());
            let mut stderr = child.stderr.take().unwrap();
            let child = Background(child);
            if !matches!(first, Ok(Some(Ok(_)))) || stopped {
                drop(child);
                let mut text = String::new();
                let _ = std::io::Read::read_to_string(&mut stderr, &mut text);
                panic!("{what}: `{line}` (run as `{mapped}`) did not print its ready lines, or failed: {text}");
            }
            background.push((child, stderr));
        } else {
            let output = tokio::task::spawn_blocking(move || command.output().unwrap()).await.unwrap();
            assert!(
                output.status.success(),
                "{what}: `{line}` (run as `{mapped}`) failed: {}\n{}{}",
                output.status,
                String::from_utf8_lossy(&output.stdout),
                String::from_utf8_lossy(&output.stderr)
            );
        }
    }
    drop(background);
}

/// `dopy --help`.
#[tokio::test(flavor = "multi_thread")]
async fn top_level_help_examples_run_as_written() {
    run_examples("dopy --help", &help_examples(&[]).await).await;
}

/// `dopy call --help`: its String example calls a method the calculator has.
#[tokio::test(flavor = "multi_thread")]
async fn call_help_examples_run_as_written() {
    run_examples("dopy call --help", &help_examples(&["call"]).await).await;
}

/// `dopy inspect --help` and `dopy ping --help`.
#[tokio::test(flavor = "multi_thread")]
async fn inspect_and_ping_help_examples_run_as_written() {
    run_examples("dopy inspect --help", &help_examples(&["inspect"]).await).await;
    run_examples("dopy ping --help", &help_examples(&["ping"]).await).await;
}

/// `dopy names --help`, in order: a name server, then registrations, lookups and a watch.
#[tokio::test(flavor = "multi_thread")]
async fn names_help_examples_run_as_written() {
    run_examples("dopy names --help", &help_examples(&["names"]).await).await;
}

/// `dopy serve names --help`: open, secret-protected and read-only name servers.
#[tokio::test(flavor = "multi_thread")]
async fn serve_names_help_examples_run_as_written() {
    run_examples("dopy serve names --help", &help_examples(&["serve", "names"]).await).await;
}

/// `dopy completions --help`, on a fresh account (the completion directories do not exist yet),
/// leaves a script where each shell looks for it.
#[tokio::test(flavor = "multi_thread")]
async fn completions_help_examples_install_on_a_fresh_home() {
    let lines = help_examples(&["completions"]).await;
    let dir = TempDir::new("completions-home");
    for line in &lines {
        let output = shell(line, dir.path(), "").output().unwrap();
        assert!(output.status.success(), "`{line}` failed: {}", String::from_utf8_lossy(&output.stderr));
    }
    for file in [".local/share/bash-completion/completions/dopy", ".zfunc/_dopy", ".config/fish/completions/dopy.fish"]
    {
        let script = std::fs::read_to_string(dir.path().join(file)).unwrap_or_default();
        assert!(script.contains("inspect"), "no script in ~/{file}");
    }
}

/// The README's command-line block.
#[tokio::test(flavor = "multi_thread")]
async fn readme_examples_run_as_written() {
    let lines = readme_examples();
    assert!(lines.iter().any(|l| l.starts_with("dopy call ")), "{lines:?}");
    run_examples("README.md", &lines).await;
}
