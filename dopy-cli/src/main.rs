//! The `dopy` command-line tool: inspect, call and ping dopy objects from a shell.
//!
//! Built only on dopy's public dynamic API ([`dopy::DynObject`], [`dopy::Value`] and
//! introspection). This file holds the command-line definitions and the dispatch; each
//! subcommand lives in a module of its own.

mod args;
mod call;
mod completions;
mod connect;
mod failure;
mod inspect;
mod names;
mod ping;
mod serve;

use std::io::{self, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, Subcommand};

use failure::{Code, Failure};

/// The top-level command line.
#[derive(Debug, Parser)]
#[command(
    name = "dopy",
    version,
    about = "Inspect, call and ping dopy objects",
    long_about = "Inspect, call and ping dopy objects.\n\n\
        Addresses are URLs: tcp://HOST:PORT names a node, tcp://HOST:PORT/OBJECT an object published there.",
    after_help = after_help(EXAMPLES)
)]
struct Cli {
    /// Print more: the server's backtrace of a remote panic.
    #[arg(short, long, global = true)]
    verbose: bool,

    #[command(subcommand)]
    command: Command,
}

const EXAMPLES: &str = "\
Examples (against the calculator `cargo run -p dopy-cli --example calc_server` serves):
  dopy inspect tcp://127.0.0.1:9600/calc
  dopy call tcp://127.0.0.1:9600/calc add 2 3
  dopy call tcp://127.0.0.1:9600/calc divide b=2 a=10
  dopy ping tcp://127.0.0.1:9600 -c 3
  dopy serve names --db names.redb                        # in another shell: a name server
  dopy names register calc tcp://127.0.0.1:9600/calc
  dopy names lookup calc
  mkdir -p ~/.local/share/bash-completion/completions
  dopy completions bash > ~/.local/share/bash-completion/completions/dopy

Connection options, for every subcommand that connects: --secret-env VAR or --secret-file FILE
for a node with a shared secret, --ca FILE for a tls:// node whose certificate your own CA
signed, --connect-timeout DURATION (10 s by default; the handshake included). -v prints the
server's backtrace of a remote panic, if it sent one.";

/// The text after a command's options: its examples, then the exit codes.
fn after_help(examples: &str) -> String {
    format!("{examples}\n\n{}", failure::EXIT_CODES)
}

/// The subcommands.
#[derive(Debug, Subcommand)]
enum Command {
    /// Show an object's methods: parameters and their types, results, errors, docs, oneway flags.
    #[command(after_help = after_help(inspect::EXAMPLES))]
    Inspect(InspectArgs),
    /// Call a method, with arguments parsed by the parameter types the object reports.
    #[command(after_help = after_help(call::EXAMPLES))]
    Call(CallArgs),
    /// Measure round-trip times to a node, like ping.
    #[command(after_help = after_help(ping::EXAMPLES))]
    Ping(PingArgs),
    /// Look up, list, register, remove and watch names in a name service.
    #[command(after_help = after_help(names::EXAMPLES))]
    Names(NamesArgs),
    /// Run a service: `dopy serve names` is a name server.
    Serve(ServeArgs),
    /// Print a shell completion script.
    #[command(after_help = completions::EXAMPLES)]
    Completions(CompletionsArgs),
}

/// `dopy names`.
#[derive(Debug, clap::Args)]
struct NamesArgs {
    /// The name service (default: $DOPY_NAMES, else tcp://127.0.0.1:9500).
    #[arg(long, global = true, value_name = "ADDRESS")]
    names: Option<String>,
    #[command(flatten)]
    connect: connect::ConnectOptions,
    #[command(subcommand)]
    command: NamesCommand,
}

/// The `dopy names` subcommands.
#[derive(Debug, Subcommand)]
enum NamesCommand {
    /// List the registered names, sorted: one line each (name, address, tags, lease).
    List {
        /// Only names starting with PREFIX.
        #[arg(default_value = "")]
        prefix: String,
        /// Only names with this tag (repeatable: all of them).
        #[arg(long = "tag", value_name = "TAG")]
        tags: Vec<String>,
        /// Print the entries as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Show a name's registration.
    Lookup {
        /// The name.
        name: String,
        /// Print the registration as JSON.
        #[arg(long, conflicts_with = "address")]
        json: bool,
        /// Print the address alone.
        #[arg(long)]
        address: bool,
    },
    /// Register a name for an object's address: until removed, for --lease, or --hold.
    Register {
        /// The name.
        name: String,
        /// The object, e.g. tcp://127.0.0.1:9600/calc.
        address: String,
        /// A metadata tag (repeatable).
        #[arg(long = "tag", value_name = "TAG")]
        tags: Vec<String>,
        /// Take the name over if it is registered elsewhere.
        #[arg(long)]
        replace: bool,
        /// Keep the registration while this command runs (renewing its lease); remove it on
        /// Ctrl-C or SIGTERM. If the command is killed, the name expires with its lease.
        #[arg(long)]
        hold: bool,
        /// The lease, in seconds or with a unit (with --hold: default 10s; without: the name
        /// expires after it).
        #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
        lease: Option<Duration>,
    },
    /// Remove a name.
    Remove {
        /// The name.
        name: String,
    },
    /// Print the names under PREFIX (`=`), then registrations (`+`) and removals (`-`) as they
    /// happen, until interrupted.
    Watch {
        /// Only names starting with PREFIX.
        #[arg(default_value = "")]
        prefix: String,
    },
}

/// `dopy serve`.
#[derive(Debug, clap::Args)]
struct ServeArgs {
    #[command(subcommand)]
    service: ServeCommand,
}

/// The services `dopy serve` runs.
#[derive(Debug, Subcommand)]
enum ServeCommand {
    /// A name server, its names kept in a database file.
    #[command(after_help = serve::EXAMPLES)]
    Names {
        /// The database file (created if missing).
        #[arg(long, value_name = "FILE", default_value = serve::DEFAULT_DB)]
        db: PathBuf,
        /// Serve the name service here (repeatable; default: $DOPY_NAMES, else
        /// tcp://127.0.0.1:9500, where `dopy names` looks for it).
        #[arg(long, value_name = "ENDPOINT")]
        listen: Vec<String>,
        /// Also serve it read-only here, without the secret (repeatable).
        #[arg(long, value_name = "ENDPOINT")]
        public: Vec<String>,
        /// Require peers of the --listen endpoints to know the shared secret held in this
        /// environment variable.
        #[arg(long, value_name = "VAR", conflicts_with = "secret_file")]
        secret_env: Option<String>,
        /// Require peers of the --listen endpoints to know the shared secret held in this file
        /// (its contents, less one trailing newline).
        #[arg(long, value_name = "FILE")]
        secret_file: Option<PathBuf>,
    },
}

/// `dopy inspect`.
#[derive(Debug, clap::Args)]
struct InspectArgs {
    /// The object, e.g. tcp://127.0.0.1:9600/calc.
    address: String,
    /// Show only this method.
    method: Option<String>,
    /// Print the interface as JSON (the `Interface` type's serde form).
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    connect: connect::ConnectOptions,
}

/// `dopy call`.
#[derive(Debug, clap::Args)]
struct CallArgs {
    /// The object, e.g. tcp://127.0.0.1:9600/calc.
    address: String,
    /// The method's remote name.
    method: String,
    /// Arguments: VALUE by position, or NAME=VALUE by parameter name.
    #[arg(value_name = "ARGS", allow_negative_numbers = true)]
    args: Vec<String>,
    /// Print the result as JSON.
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    connect: connect::ConnectOptions,
}

/// `dopy ping`.
#[derive(Debug, clap::Args)]
struct PingArgs {
    /// A node (tcp://HOST:PORT) or an object on it (tcp://HOST:PORT/OBJECT).
    address: String,
    /// Stop after COUNT pongs (default: until interrupted).
    #[arg(short = 'c', long, value_name = "COUNT", value_parser = clap::value_parser!(u64).range(1..))]
    count: Option<u64>,
    /// Wait INTERVAL between pings, in seconds (or with a unit: 200ms).
    #[arg(short = 'i', long, value_name = "INTERVAL", default_value = "1", value_parser = parse_duration)]
    interval: Duration,
    /// Count a ping as lost after TIMEOUT, in seconds (or with a unit: 500ms).
    #[arg(short = 'W', long, value_name = "TIMEOUT", default_value = "5", value_parser = parse_duration)]
    timeout: Duration,
    #[command(flatten)]
    connect: connect::ConnectOptions,
}

/// `dopy completions`.
#[derive(Debug, clap::Args)]
struct CompletionsArgs {
    /// The shell.
    shell: clap_complete::Shell,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(runtime) => runtime,
        Err(e) => return fail(Failure::new(Code::Other, format!("cannot start the async runtime: {e}")), false),
    };
    let verbose = cli.verbose;
    let result = runtime.block_on(async {
        match cli.command {
            Command::Inspect(a) => inspect::run(&a.address, a.method.as_deref(), a.json, &a.connect).await,
            Command::Call(a) => call::run(&a.address, &a.method, &a.args, a.json, &a.connect).await,
            Command::Ping(a) => ping::run(&a.address, a.count, a.interval, a.timeout, &a.connect).await,
            Command::Names(a) => run_names(a).await,
            Command::Serve(ServeArgs {
                service: ServeCommand::Names { db, listen, public, secret_env, secret_file },
            }) => {
                let secret = match (secret_env, secret_file) {
                    (Some(var), _) => Some(connect::secret_from_env(&var)),
                    (None, Some(path)) => Some(connect::secret_from_file(&path)),
                    (None, None) => None,
                };
                match secret.transpose() {
                    Ok(secret) => serve::names(serve::Serving { db: &db, listen, public: &public, secret }).await,
                    Err(failure) => Err(failure),
                }
            }
            Command::Completions(a) => completions::run(a.shell),
        }
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(failure) => fail(failure, verbose),
    }
}

async fn run_names(args: NamesArgs) -> Result<(), Failure> {
    let service = names::Service { address: args.names, connect: args.connect };
    match args.command {
        NamesCommand::List { prefix, tags, json } => names::list(&service, &prefix, &tags, json).await,
        NamesCommand::Lookup { name, json, address } => {
            let show = match (json, address) {
                (true, _) => names::Show::Json,
                (_, true) => names::Show::Address,
                _ => names::Show::Line,
            };
            names::lookup(&service, &name, show).await
        }
        NamesCommand::Register { name, address, tags, replace, hold, lease } => {
            let registering = names::Registering { name: &name, address: &address, tags: &tags, replace, hold, lease };
            names::register(&service, registering).await
        }
        NamesCommand::Remove { name } => names::remove(&service, &name).await,
        NamesCommand::Watch { prefix } => names::watch(&service, &prefix).await,
    }
}

/// Prints the failure on stderr; a remote backtrace only if `verbose`, else a hint that there is one.
fn fail(failure: Failure, verbose: bool) -> ExitCode {
    eprintln!("error: {failure}");
    match &failure.backtrace {
        Some(backtrace) if verbose => eprintln!("{backtrace}"),
        Some(_) => eprintln!("(the server sent a backtrace: run again with -v to see it)"),
        None => {}
    }
    failure.exit_code()
}

/// Writes `text` and a newline to stdout.
///
/// A closed pipe (`dopy ... | head`) ends the command quietly instead of panicking.
pub(crate) fn emit(text: impl std::fmt::Display) -> Result<(), Failure> {
    let mut out = io::stdout().lock();
    match writeln!(out, "{text}").and_then(|()| out.flush()) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::BrokenPipe => std::process::exit(0),
        Err(e) => Err(Failure::new(Code::Other, format!("cannot write to stdout: {e}"))),
    }
}

/// Parses `1.5` (seconds), `500ms` or `2s`.
pub(crate) fn parse_duration(text: &str) -> Result<Duration, String> {
    let (number, scale) = match (text.strip_suffix("ms"), text.strip_suffix('s')) {
        (Some(ms), _) => (ms, 1e-3),
        (None, Some(s)) => (s, 1.0),
        (None, None) => (text, 1.0),
    };
    let value: f64 = number.trim().parse().map_err(|_| format!("`{text}` is not a duration (e.g. 1.5, 500ms, 2s)"))?;
    Duration::try_from_secs_f64(value * scale).map_err(|_| format!("`{text}` is not a duration (e.g. 1.5, 500ms, 2s)"))
}

/// Formats a duration in seconds for messages: `10s`, `0.5s`.
pub(crate) fn seconds(d: Duration) -> String {
    format!("{}s", d.as_secs_f64())
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    use super::*;

    #[test]
    fn command_line_definition_is_valid() {
        Cli::command().debug_assert();
    }

    #[test]
    fn durations_take_seconds_or_a_unit() {
        assert_eq!(parse_duration("1.5"), Ok(Duration::from_millis(1500)));
        assert_eq!(parse_duration("200ms"), Ok(Duration::from_millis(200)));
        assert_eq!(parse_duration("2s"), Ok(Duration::from_secs(2)));
        assert!(parse_duration("-1").is_err());
        assert!(parse_duration("soon").is_err());
    }

    #[test]
    fn negative_numbers_are_arguments_not_options() {
        let cli = Cli::try_parse_from(["dopy", "call", "tcp://h:1/o", "add", "-1", "2", "--json"]).unwrap();
        let Command::Call(call) = cli.command else { panic!("not a call") };
        assert_eq!(call.args, ["-1", "2"]);
        assert!(call.json);
    }
}
