//! ssh tunnels: runs a dopy server command on a remote host through the system `ssh` client
//! and speaks over the command's stdin/stdout (DOPY's `rsh host "dopyserver 2>err.out"`).
//!
//! The client runs as `ssh -T -e none -o BatchMode=yes ... -- HOST COMMAND`: no terminal (which
//! would mangle bytes), no escape character, and never a password prompt (a host that needs one
//! fails at once instead of hanging). Keys, agents, `~/.ssh/config` and known hosts work as for
//! any `ssh` command; further options come from the target. Everything ssh prints on stderr
//! (a refused key, `command not found`) ends up in the connection's error.

use std::io;

use tokio::process::Command;

use crate::{exec, RawStream};

/// The remote command run when a target names none.
pub const DEFAULT_COMMAND: &str = "dopy-serve --stdio";

/// Where and how to run the remote server.
///
/// # Examples
///
/// ```
/// use dopy_transport::ssh::SshTarget;
///
/// let mut target = SshTarget::new("build.example.org");
/// target.user = Some("alice".into());
/// target.options.push("IdentityFile=~/.ssh/dopy".into());
/// let args = target.arguments();
/// assert_eq!(&args[args.len() - 3..], ["--", "build.example.org", "dopy-serve --stdio"]);
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub struct SshTarget {
    /// The remote user (`ssh -l`); `None` for ssh's default.
    pub user: Option<String>,
    /// The remote host, as ssh understands it (a name, an address or a `~/.ssh/config` alias).
    pub host: String,
    /// The remote port (`ssh -p`); `None` for ssh's default.
    pub port: Option<u16>,
    /// The command the remote shell runs; `None` for [`DEFAULT_COMMAND`].
    pub command: Option<String>,
    /// ssh options, each passed as `-o OPTION` (`IdentityFile=/path`, `Port=2222`, ...).
    pub options: Vec<String>,
    /// Further raw arguments, placed before the destination (`-i`, `/path/to/key`, ...).
    pub extra_args: Vec<String>,
    /// The ssh client program (default `ssh`).
    pub program: String,
}

impl SshTarget {
    /// A target on `host` with every setting at its default.
    pub fn new(host: impl Into<String>) -> SshTarget {
        SshTarget {
            user: None,
            host: host.into(),
            port: None,
            command: None,
            options: Vec::new(),
            extra_args: Vec::new(),
            program: "ssh".into(),
        }
    }

    /// The remote command that will run.
    pub fn remote_command(&self) -> &str {
        self.command.as_deref().unwrap_or(DEFAULT_COMMAND)
    }

    /// The arguments given to the ssh client.
    pub fn arguments(&self) -> Vec<String> {
        let mut args: Vec<String> = ["-T", "-e", "none", "-o", "BatchMode=yes"].map(String::from).into();
        if let Some(port) = self.port {
            args.extend(["-p".into(), port.to_string()]);
        }
        if let Some(user) = &self.user {
            args.extend(["-l".into(), user.clone()]);
        }
        for option in &self.options {
            args.extend(["-o".into(), option.clone()]);
        }
        args.extend(self.extra_args.iter().cloned());
        args.extend(["--".into(), self.host.clone(), self.remote_command().to_owned()]);
        args
    }
}

/// Starts the remote server through ssh and returns a stream over its stdin/stdout.
///
/// The stream attaches the local ssh client process, as [`exec::spawn`] does.
///
/// # Errors
///
/// [`io::ErrorKind::InvalidInput`] for a host that ssh would take for an option; the operating
/// system's error if the ssh client cannot be started. A refused login or a missing remote
/// command shows up later, as the handshake's error, with ssh's stderr.
pub fn connect(target: &SshTarget) -> io::Result<RawStream> {
    if target.host.is_empty() || target.host.starts_with('-') {
        return Err(io::Error::new(io::ErrorKind::InvalidInput, format!("invalid ssh host `{}`", target.host)));
    }
    let mut command = Command::new(&target.program);
    command.args(target.arguments());
    let destination = match &target.user {
        Some(user) => format!("{user}@{}", target.host),
        None => target.host.clone(),
    };
    let label = match target.port {
        Some(port) => format!("ssh {destination}:{port} {}", target.remote_command()),
        None => format!("ssh {destination} {}", target.remote_command()),
    };
    exec::spawn_as(command, "ssh", label)
}
