//! Reaching an address: the connection options every connecting subcommand takes, a handle to
//! the object an address names, or the connection to its endpoint.

use std::future::Future;
use std::path::{Path, PathBuf};
use std::time::Duration;

use dopy::transport::tls::TlsClient;
use dopy::transport::TransportError;
use dopy::{Address, Connection, DynObject, Interface, Node};

use crate::failure::{Code, Failure};

/// How to reach a node: its shared secret, which TLS certificates to trust, how long to wait.
///
/// Flattened into every subcommand that connects, so that they all take the same options.
#[derive(Clone, Debug, clap::Args)]
#[command(next_help_heading = "Connection options")]
pub(crate) struct ConnectOptions {
    /// Prove knowledge of the shared secret held in this environment variable (the secret is
    /// never given on the command line).
    #[arg(long, global = true, value_name = "VAR", conflicts_with = "secret_file")]
    pub(crate) secret_env: Option<String>,
    /// Prove knowledge of the shared secret held in this file (its contents, less one
    /// trailing newline).
    #[arg(long, global = true, value_name = "FILE")]
    pub(crate) secret_file: Option<PathBuf>,
    /// For tls:// addresses, trust the certificate authorities in this PEM file (default: the
    /// system's certificate store).
    #[arg(long, global = true, value_name = "FILE")]
    pub(crate) ca: Option<PathBuf>,
    /// How long connecting may take, handshake included, in seconds (or with a unit: 500ms, 2s).
    #[arg(long, global = true, value_name = "DURATION", default_value = "10", value_parser = crate::parse_duration)]
    pub(crate) connect_timeout: Duration,
}

impl ConnectOptions {
    /// A node that connects with these options, named `name`.
    pub(crate) fn node(&self, name: &str) -> Result<Node, Failure> {
        // `within` bounds dial and handshake together by the connect timeout. The node's own
        // handshake limit (10 s by default) must not cut that shorter, nor fire first with a
        // message that does not name the option: it gets a second more.
        let handshake = self.connect_timeout.saturating_add(Duration::from_secs(1));
        let mut builder = Node::builder().name(name).handshake_timeout(handshake);
        if let Some(secret) = self.secret()? {
            builder = builder.secret(secret);
        }
        if let Some(ca) = &self.ca {
            let pem =
                std::fs::read(ca).map_err(|e| usage(format!("cannot read the CA file `{}`: {e}", ca.display())))?;
            let client = TlsClient::with_roots_pem(&pem)
                .map_err(|e| usage(format!("cannot use the CA file `{}`: {e}", ca.display())))?;
            builder = builder.tls_client(client);
        }
        Ok(builder.build())
    }

    /// The shared secret, from `--secret-env` or `--secret-file`, if either is given.
    pub(crate) fn secret(&self) -> Result<Option<Vec<u8>>, Failure> {
        match (&self.secret_env, &self.secret_file) {
            (Some(var), _) => secret_from_env(var).map(Some),
            (None, Some(path)) => secret_from_file(path).map(Some),
            (None, None) => Ok(None),
        }
    }
}

/// The shared secret held in the environment variable `var`.
pub(crate) fn secret_from_env(var: &str) -> Result<Vec<u8>, Failure> {
    match std::env::var_os(var) {
        Some(value) if !value.is_empty() => Ok(value.into_encoded_bytes()),
        Some(_) => Err(usage(format!("the environment variable `{var}` is empty"))),
        None => Err(usage(format!("the environment variable `{var}` is not set"))),
    }
}

/// The shared secret held in the file at `path`: its bytes, less one trailing newline.
pub(crate) fn secret_from_file(path: &Path) -> Result<Vec<u8>, Failure> {
    let mut bytes =
        std::fs::read(path).map_err(|e| usage(format!("cannot read the secret file `{}`: {e}", path.display())))?;
    if bytes.ends_with(b"\n") {
        bytes.pop();
        if bytes.ends_with(b"\r") {
            bytes.pop();
        }
    }
    if bytes.is_empty() {
        return Err(usage(format!("the secret file `{}` is empty", path.display())));
    }
    Ok(bytes)
}

fn usage(message: String) -> Failure {
    Failure::new(Code::Usage, message)
}

/// A handle to the object `address` names (`tcp://HOST:PORT/OBJECT`), connected within `timeout`.
pub(crate) async fn object(node: &Node, address: &str, timeout: Duration) -> Result<DynObject, Failure> {
    within(address, timeout, node.object(address)).await
}

/// The connection to the endpoint of `address`, which may name an object or just an endpoint.
pub(crate) async fn connection(node: &Node, address: &str, timeout: Duration) -> Result<Connection, Failure> {
    let parsed: Address = address.parse()?;
    // The object part, if any, is not needed (nor checked): every object there shares the connection.
    within(address, timeout, node.connect(&parsed.endpoint.to_string())).await
}

/// The interface of the object at `address`; `None` if the peer has no introspection.
///
/// A missing object is reported as what it is, the object and the address, rather than as a
/// failure of the introspection call the CLI made.
pub(crate) async fn interface(object: &DynObject, address: &str) -> Result<Option<Interface>, Failure> {
    match object.methods().await {
        Ok(interface) => Ok(Some(interface)),
        Err(dopy::CallError::NoSuchMethod(_)) => Ok(None),
        Err(dopy::CallError::NoSuchObject(trace)) => Err(no_such_object(address, trace.message())),
        Err(e) => Err(e.into()),
    }
}

/// "no object `calc` at tcp://HOST:PORT", with what the node said.
fn no_such_object(address: &str, said: &str) -> Failure {
    let message = match address.parse::<Address>() {
        Ok(Address { endpoint, object: Some(object), .. }) => format!("no object `{object}` at {endpoint}"),
        _ => format!("no such object: {address}"),
    };
    Failure::new(Code::Remote, format!("{message}\nthe node says: {said}"))
}

/// Runs `connecting` (dial and handshake) within `timeout`; a failure says what to try.
pub(crate) async fn within<T>(
    address: &str,
    timeout: Duration,
    connecting: impl Future<Output = Result<T, dopy::Error>>,
) -> Result<T, Failure> {
    match tokio::time::timeout(timeout, connecting).await {
        Ok(result) => result.map_err(explain),
        Err(_) => Err(Failure::new(
            Code::Connection,
            format!(
                "could not connect to {address}: no answer within {} (the --connect-timeout)",
                crate::seconds(timeout)
            ),
        )),
    }
}

/// The failure for a connection error, with a hint when the secret is what is wrong.
fn explain(err: dopy::Error) -> Failure {
    let unauthorized = match &err {
        dopy::Error::Connect { source, .. } => {
            source.downcast_ref::<TransportError>().is_some_and(TransportError::is_unauthorized)
        }
        _ => false,
    };
    let failure = Failure::from(err);
    if unauthorized {
        failure.with_note("hint: give the node's shared secret with --secret-env VAR or --secret-file FILE")
    } else {
        failure
    }
}
