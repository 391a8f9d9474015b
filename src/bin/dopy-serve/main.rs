//! `dopy-serve`: a dopy server for `exec:` and `ssh://` addresses, and a demo.
//!
//! Publishes DOPY's demo calculator as `calc` and serves it over its own stdin/stdout (what a
//! client that runs it with `exec:` or through `ssh://` expects), on listening endpoints, or
//! both. Logs and errors go to stderr only: stdout carries the protocol.
//!
//! ```sh
//! cargo install --path . --bin dopy-serve     # on the remote host, for ssh://HOST/calc
//! dopy-serve --listen tcp://127.0.0.1:9600 --listen unix:/tmp/dopy.sock
//! ```

mod demo;

use std::process::ExitCode;

use dopy::Node;

const USAGE: &str = "\
usage: dopy-serve [--stdio] [--listen ENDPOINT]... [--name NAME] [--secret-env VAR] [--expose-process]

Serves DOPY's demo calculator as `calc`.

  --stdio            serve over stdin/stdout until stdin closes (the default without --listen)
  --listen ENDPOINT  also listen on tcp://HOST:PORT, unix:PATH or memory://NAME (repeatable)
  --name NAME        the node's name in error traces (default: dopy-serve)
  --secret-env VAR   require peers to know the shared secret held in environment variable VAR
  --expose-process   also publish `process` (pid, eprint, exit), to watch the server's lifetime
";

/// The parsed command line.
#[derive(Debug, Default)]
struct Options {
    stdio: bool,
    listen: Vec<String>,
    name: Option<String>,
    secret_env: Option<String>,
    expose_process: bool,
}

fn parse(mut args: impl Iterator<Item = String>) -> Result<Options, String> {
    let mut options = Options::default();
    while let Some(arg) = args.next() {
        let mut value = |flag: &str| args.next().ok_or_else(|| format!("{flag} needs a value"));
        match arg.as_str() {
            "--stdio" => options.stdio = true,
            "--listen" => options.listen.push(value("--listen")?),
            "--name" => options.name = Some(value("--name")?),
            "--secret-env" => options.secret_env = Some(value("--secret-env")?),
            "--expose-process" => options.expose_process = true,
            other => return Err(format!("unknown argument `{other}`")),
        }
    }
    options.stdio |= options.listen.is_empty();
    Ok(options)
}

async fn serve(options: Options) -> Result<(), String> {
    let mut builder = Node::builder().name(options.name.as_deref().unwrap_or("dopy-serve"));
    if let Some(var) = &options.secret_env {
        let secret = std::env::var(var).map_err(|_| format!("the environment variable `{var}` is not set"))?;
        builder = builder.secret(secret);
    }
    let node = builder.build();
    node.publish("calc", demo::Calculator::default()).map_err(|e| e.to_string())?;
    if options.expose_process {
        node.publish("process", demo::Process).map_err(|e| e.to_string())?;
    }
    for endpoint in &options.listen {
        let bound = node.listen(endpoint).await.map_err(|e| e.to_string())?;
        eprintln!("dopy-serve: serving `calc` at {}", bound.object("calc"));
    }
    if options.stdio {
        node.serve_stdio().await.map_err(|e| e.to_string())
    } else {
        std::future::pending().await
    }
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.iter().any(|a| a == "--help" || a == "-h") {
        eprint!("{USAGE}");
        return ExitCode::SUCCESS;
    }
    let options = match parse(args.into_iter()) {
        Ok(options) => options,
        Err(e) => {
            eprint!("dopy-serve: {e}\n\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("dopy-serve: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(serve(options)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("dopy-serve: {e:#}");
            ExitCode::FAILURE
        }
    }
}
