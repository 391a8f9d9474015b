//! Connecting: from an endpoint to a connected byte stream, for every transport.

use std::error::Error as StdError;
#[cfg(feature = "tls")]
use std::sync::OnceLock;

use dopy_transport::ssh::SshTarget;
#[cfg(feature = "tls")]
use dopy_transport::tls::TlsClient;
use dopy_transport::{exec, memory, ssh, tcp, unix, LinkConfig, RawStream};

use super::Transports;
use crate::Endpoint;

type BoxError = Box<dyn StdError + Send + Sync>;

/// Opens a byte stream to `endpoint` (the dopy handshake comes after).
#[cfg_attr(not(feature = "tls"), allow(unused_variables))] // `link` bounds the TLS handshake only
pub(super) async fn dial(
    endpoint: &Endpoint,
    transports: &Transports,
    link: &LinkConfig,
) -> Result<RawStream, BoxError> {
    Ok(match endpoint {
        Endpoint::Tcp { host, port } => tcp::connect((host.as_str(), *port)).await?,
        #[cfg(feature = "tls")]
        Endpoint::Tls { host, port } => {
            let client = match &transports.tls_client {
                Some(client) => client.clone(),
                None => native_roots()?,
            };
            tokio::time::timeout(link.handshake_timeout, client.connect(host, *port))
                .await
                .map_err(|_| format!("no TLS handshake within {:?}", link.handshake_timeout))??
        }
        #[cfg(not(feature = "tls"))]
        Endpoint::Tls { .. } => return Err(super::NO_TLS.into()),
        Endpoint::Unix { path } => unix::connect(path).await?,
        Endpoint::Memory { name } => memory::connect(name).await?,
        Endpoint::Exec { command } => {
            let mut child = tokio::process::Command::new(&command[0]);
            child.args(&command[1..]);
            exec::spawn(child)?
        }
        Endpoint::Ssh { user, host, port, command, options } => {
            let mut target = SshTarget::new(host.clone());
            target.user = user.clone();
            target.port = *port;
            target.command = command.clone();
            target.options = options.clone();
            target.extra_args = transports.ssh_args.clone();
            ssh::connect(&target)?
        }
    })
}

/// A TLS client trusting the system's certificate store, loaded once per process.
#[cfg(feature = "tls")]
fn native_roots() -> Result<TlsClient, BoxError> {
    static NATIVE: OnceLock<Result<TlsClient, String>> = OnceLock::new();
    NATIVE.get_or_init(|| TlsClient::with_native_roots().map_err(|e| e.to_string())).clone().map_err(Into::into)
}
