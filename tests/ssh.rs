//! A real ssh tunnel: sshd on a loopback port with generated keys, `ssh://` addresses to it.

// Skipped, saying so on stderr, only where no `sshd` is installed; `.ci/run` installs it and
// sets `DOPY_REQUIRE_SSHD=1`, which turns a missing sshd into a failure.

#[macro_use]
mod support;
use support::harness;

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Mutex, OnceLock};

use dopy::{Error, Node, Value};
use harness::{demo, process_ends, process_running, serve_command, Served, DOPY_SERVE};

/// An sshd serving this test process, with everything in its own temporary directory.
struct Sshd {
    /// The directory holding keys, config and logs (removed when sshd stops).
    dir: PathBuf,
    port: u16,
    user: String,
    /// The watchdog, a shell that started sshd: when this process ends, the watchdog's stdin
    /// closes and it stops sshd and removes the directory, so nothing outlives the tests.
    _watchdog: Mutex<std::process::Child>,
}

fn find_sshd() -> Option<PathBuf> {
    let dirs = std::env::var("PATH").unwrap_or_default();
    let dirs = dirs.split(':').map(PathBuf::from).chain(["/usr/sbin".into(), "/usr/local/sbin".into(), "/sbin".into()]);
    dirs.map(|d| d.join("sshd")).find(|p| p.is_file())
}

fn run(command: &mut Command) -> String {
    let out = command.output().unwrap_or_else(|e| panic!("{command:?}: {e}"));
    assert!(out.status.success(), "{command:?}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap().trim().to_owned()
}

fn keygen(path: &Path) {
    run(Command::new("ssh-keygen").args(["-q", "-t", "ed25519", "-N", "", "-C", "dopy-test", "-f"]).arg(path));
}

impl Sshd {
    /// The sshd of this test process, started on first use; `None` (and a note on stderr)
    /// where no sshd is installed.
    fn get() -> Option<&'static Sshd> {
        static SSHD: OnceLock<Option<Sshd>> = OnceLock::new();
        SSHD.get_or_init(|| find_sshd().map(|sshd| Sshd::start(&sshd))).as_ref().or_else(|| {
            assert!(std::env::var_os("DOPY_REQUIRE_SSHD").is_none(), "no sshd installed, and DOPY_REQUIRE_SSHD is set");
            // Straight to stderr: the test harness captures `eprintln!` of passing tests.
            let _ = writeln!(std::io::stderr(), "skipped: no sshd installed");
            None
        })
    }

    fn start(sshd: &Path) -> Sshd {
        // Kept past the process's statics: the watchdog below removes it once the tests end.
        let dir = tempfile::Builder::new().prefix("dopy-sshd-").tempdir().unwrap().keep();
        keygen(&dir.join("host_key"));
        keygen(&dir.join("client_key"));
        keygen(&dir.join("stranger_key"));
        std::fs::copy(dir.join("client_key.pub"), dir.join("authorized_keys")).unwrap();
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let host_key = std::fs::read_to_string(dir.join("host_key.pub")).unwrap();
        std::fs::write(dir.join("known_hosts"), format!("[127.0.0.1]:{port} {host_key}")).unwrap();
        let d = dir.display();
        let config = format!(
            "Port {port}\nListenAddress 127.0.0.1\nHostKey {d}/host_key\nPidFile {d}/sshd.pid\n\
             AuthorizedKeysFile {d}/authorized_keys\nStrictModes no\nUsePAM no\nPubkeyAuthentication yes\n\
             PasswordAuthentication no\nKbdInteractiveAuthentication no\nPermitRootLogin prohibit-password\n\
             PrintMotd no\nPrintLastLog no\nMaxStartups 100\nMaxSessions 100\nLogLevel ERROR\n"
        );
        std::fs::write(dir.join("sshd_config"), config).unwrap();
        // The privilege separation directory sshd insists on (a fresh machine may lack it).
        let _ = std::fs::create_dir_all("/run/sshd");
        let user = run(Command::new("id").arg("-un"));
        let script = r#"sshd="$1"; dir="$2"
"$sshd" -D -e -f "$dir/sshd_config" 2>"$dir/sshd.log" &
pid=$!
read -r _ignored
kill "$pid"; wait "$pid"; rm -rf "$dir""#;
        let mut watchdog = Command::new("sh")
            .args(["-c", script, "watchdog"])
            .arg(sshd)
            .arg(&dir)
            .stdin(Stdio::piped())
            .spawn()
            .unwrap();
        // Ready once it accepts connections.
        for _ in 0..500 {
            if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
                return Sshd { dir, port, user, _watchdog: Mutex::new(watchdog) };
            }
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        let log = std::fs::read_to_string(dir.join("sshd.log")).unwrap_or_default();
        drop(watchdog.stdin.take());
        let _ = watchdog.wait();
        panic!("sshd did not start on port {port}: {log}");
    }

    /// The `ssh://` address of `object` on this sshd, running `command` remotely, logging in
    /// with `key`.
    fn address(&self, object: &str, command: &str, key: &str) -> String {
        let encode = |s: &str| s.replace('%', "%25").replace(' ', "%20").replace('&', "%26").replace('#', "%23");
        let d = self.dir.display();
        format!(
            "ssh://{}@127.0.0.1:{}/{object}?cmd={}&o=IdentityFile={d}/{key}&o=UserKnownHostsFile={d}/known_hosts\
             &o=StrictHostKeyChecking=yes&o=IdentitiesOnly=yes",
            self.user,
            self.port,
            encode(command),
        )
    }

    /// A client node whose ssh ignores the user's own ssh configuration.
    fn client(&self) -> Node {
        Node::builder().ssh_args(["-F", "/dev/null"]).build()
    }
}

/// The demo objects served by `dopy-serve` run remotely through the test's sshd.
async fn ssh() -> Option<Served> {
    let sshd = Sshd::get()?;
    Some(Served::child(sshd.client(), &sshd.address("", &serve_command(""), "client_key")))
}

conformance! {
    over_ssh => ssh(),
}

/// Typed and dynamic calls go through a real ssh tunnel to the remote `dopy-serve`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn typed_and_dynamic_calls_through_ssh() {
    let Some(sshd) = Sshd::get() else { return };
    let address = sshd.address("calc", &format!("{DOPY_SERVE} --stdio"), "client_key");
    let client = sshd.client();
    let calc: demo::CalculatorProxy = client.proxy(&address).await.unwrap();
    assert_eq!(calc.add(40, 2).await.unwrap(), 42);
    let obj = client.object(&address).await.unwrap();
    assert_eq!(obj.call_named("divide", [("a", Value::from(9)), ("b", Value::from(3))]).await.unwrap(), Value::Int(3));
    let conn = obj.connection().unwrap();
    assert_eq!(conn.info().transport, "ssh");
    assert!(conn.info().peer.contains(&format!("ssh {}@127.0.0.1:{}", sshd.user, sshd.port)), "{}", conn.info());
}

/// Dropping the last handle ends the remote server too: nothing is left running on the host.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dropping_the_connection_ends_the_remote_server() {
    let Some(sshd) = Sshd::get() else { return };
    let client = sshd.client();
    let process: demo::ProcessProxy =
        client.proxy(&sshd.address("process", &serve_command(""), "client_key")).await.unwrap();
    let pid = process.pid().await.unwrap();
    assert!(process_running(pid));
    drop((process, client));
    assert!(process_ends(pid).await, "remote dopy-serve {pid} still running");
}

/// A key the server does not accept fails at once (no password prompt), with ssh's complaint.
#[tokio::test]
async fn refused_key_fails_at_once_with_ssh_stderr() {
    let Some(sshd) = Sshd::get() else { return };
    let address = sshd.address("calc", &serve_command(""), "stranger_key");
    let err = harness::promptly("the refusal", sshd.client().object(&address)).await.unwrap_err();
    assert!(matches!(err, Error::Connect { .. }), "{err}");
    let text = format!("{err:#}");
    assert!(text.contains("Permission denied"), "{text}");
    assert!(text.contains("exit status: 255"), "{text}");
}

/// A remote command that does not exist shows the remote shell's complaint and exit status.
#[tokio::test]
async fn missing_remote_command_shows_the_remote_error() {
    let Some(sshd) = Sshd::get() else { return };
    let address = sshd.address("calc", "/nonexistent/dopy-serve --stdio", "client_key");
    let err = sshd.client().object(&address).await.unwrap_err();
    let text = format!("{err:#}");
    assert!(text.contains("exit status: 127"), "{text}");
    assert!(text.contains("/nonexistent/dopy-serve"), "{text}");
}

/// A login script that prints to stdout (a banner) is caught at the handshake and shown.
#[tokio::test]
async fn remote_banner_on_stdout_is_shown() {
    let Some(sshd) = Sshd::get() else { return };
    let command = format!("echo Last login: yesterday; exec {}", serve_command(""));
    let err = sshd.client().object(&sshd.address("calc", &command, "client_key")).await.unwrap_err();
    assert!(format!("{err:#}").contains(r#"received "Last login: yesterday\n"#), "{err:#}");
}
