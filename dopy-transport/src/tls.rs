//! TLS over TCP: `tls://HOST:PORT`, with [rustls] and its `ring` provider (or the process-wide
//! provider the application installed). Only with the crate feature `tls` (on by default).
//!
//! The client verifies the server's certificate chain against its roots (the system's by
//! default) and that the certificate names `HOST`. Authentication of clients is left to the
//! handshake's shared secret, which a TLS connection carries like any other.
//!
//! # Examples
//!
//! ```no_run
//! use dopy_transport::tls::{TlsClient, TlsServer};
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let server = TlsServer::from_pem(&std::fs::read("server.pem")?, &std::fs::read("server.key")?)?;
//! let client = TlsClient::with_roots_pem(&std::fs::read("ca.pem")?)?;
//! # drop((server, client)); Ok(()) }
//! ```

use std::fmt;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;

pub use rustls;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use tokio::net::TcpStream;

use crate::{LinkInfo, RawStream, Role};

/// A TLS configuration that could not be built.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TlsError {
    /// A PEM input could not be read.
    #[error("could not read the PEM {what}: {reason}")]
    Pem {
        /// What was being read (`certificate chain`, `private key`, `roots`).
        what: &'static str,
        /// Why it failed.
        reason: String,
    },
    /// A PEM input held no certificate.
    #[error("no certificate found in the PEM {what}")]
    NoCertificate {
        /// What was being read.
        what: &'static str,
    },
    /// rustls refused the configuration (a key that does not match, an unsupported algorithm).
    #[error("invalid TLS configuration")]
    Rustls(#[from] rustls::Error),
}

/// The cryptography of dopy's TLS: the process-wide default [`CryptoProvider`] when the
/// application installed one ([`CryptoProvider::install_default`], for `aws-lc-rs` and its
/// post-quantum key exchange, say), and otherwise `ring`, the provider this crate builds with
/// (pure Rust to build: no cmake, no C++ toolchain).
///
/// rustls 0.23.48 deprecates `ring::default_provider` (ring has no post-quantum key exchange)
/// without a replacement that keeps ring: no other public item builds a ring provider, so the one
/// call below allows the deprecation. A build with a freshly resolved lock must stay free of
/// warnings (`.ci/run` checks it), and the allow keeps it so whichever 0.23 release resolves.
///
/// [`CryptoProvider`]: rustls::crypto::CryptoProvider
/// [`CryptoProvider::install_default`]: rustls::crypto::CryptoProvider::install_default
fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    if let Some(installed) = rustls::crypto::CryptoProvider::get_default() {
        return Arc::clone(installed);
    }
    #[allow(deprecated)]
    let ring = rustls::crypto::ring::default_provider();
    Arc::new(ring)
}

fn certificates(pem: &[u8], what: &'static str) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let certs = CertificateDer::pem_slice_iter(pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| TlsError::Pem { what, reason: e.to_string() })?;
    if certs.is_empty() {
        return Err(TlsError::NoCertificate { what });
    }
    Ok(certs)
}

/// The server side: a certificate chain and its private key.
#[derive(Clone)]
pub struct TlsServer {
    acceptor: tokio_rustls::TlsAcceptor,
}

impl fmt::Debug for TlsServer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TlsServer").finish_non_exhaustive()
    }
}

impl TlsServer {
    /// A server presenting `cert_chain_pem` (leaf first) with the private key in `key_pem`
    /// (PKCS#8, PKCS#1 or SEC1).
    ///
    /// # Errors
    ///
    /// [`TlsError`] if the PEM is unreadable or the key does not fit the certificate.
    pub fn from_pem(cert_chain_pem: &[u8], key_pem: &[u8]) -> Result<TlsServer, TlsError> {
        let chain = certificates(cert_chain_pem, "certificate chain")?;
        let key = PrivateKeyDer::from_pem_slice(key_pem)
            .map_err(|e| TlsError::Pem { what: "private key", reason: e.to_string() })?;
        let config = rustls::ServerConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()?
            .with_no_client_auth()
            .with_single_cert(chain, key)?;
        Ok(TlsServer::from_config(Arc::new(config)))
    }

    /// A server with a rustls configuration built by the caller (client certificates, ...).
    pub fn from_config(config: Arc<rustls::ServerConfig>) -> TlsServer {
        TlsServer { acceptor: tokio_rustls::TlsAcceptor::from(config) }
    }

    /// Runs the TLS handshake on a socket accepted from `peer` (the address
    /// [`tcp::Listener::accept_tcp`](crate::tcp::Listener::accept_tcp) returned with it).
    ///
    /// It takes as long as the client does: bound it with a timeout.
    ///
    /// # Errors
    ///
    /// The TLS handshake's error (the client does not trust us, does not speak TLS, ...).
    pub async fn accept(&self, tcp: TcpStream, peer: SocketAddr) -> io::Result<RawStream> {
        let local = tcp.local_addr().map(|a| a.to_string()).unwrap_or_else(|_| "?".to_owned());
        let peer = peer.to_string();
        let tls = self.acceptor.accept(tcp).await?;
        let (reader, writer) = tokio::io::split(tls);
        Ok(RawStream::new(
            Box::new(reader),
            Box::new(writer),
            LinkInfo { transport: "tls", local, peer },
            Role::Acceptor,
        ))
    }
}

/// Adds a hint to the error of a server that answered with something other than TLS (a plain
/// dopy port sends its `DOPY` hello, which rustls reads as a record of an invalid type).
fn plain_hint(err: io::Error) -> io::Error {
    let not_tls = err
        .get_ref()
        .and_then(|e| e.downcast_ref::<rustls::Error>())
        .is_some_and(|e| matches!(e, rustls::Error::InvalidMessage(rustls::InvalidMessage::InvalidContentType)));
    if !not_tls {
        return err;
    }
    io::Error::new(err.kind(), format!("{err} (the peer does not answer in TLS: is this a tcp:// endpoint?)"))
}

/// The client side: which certificate authorities to trust.
#[derive(Clone)]
pub struct TlsClient {
    connector: tokio_rustls::TlsConnector,
}

impl fmt::Debug for TlsClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TlsClient").finish_non_exhaustive()
    }
}

impl TlsClient {
    /// A client trusting only the certificates in `roots_pem` (your own CA, say).
    ///
    /// # Errors
    ///
    /// [`TlsError`] if the PEM is unreadable or holds no usable certificate.
    pub fn with_roots_pem(roots_pem: &[u8]) -> Result<TlsClient, TlsError> {
        let mut roots = rustls::RootCertStore::empty();
        for cert in certificates(roots_pem, "roots")? {
            roots.add(cert)?;
        }
        Self::with_roots(roots)
    }

    /// A client trusting the operating system's certificate store.
    ///
    /// # Errors
    ///
    /// [`TlsError::NoCertificate`] if the system store has no usable certificate.
    pub fn with_native_roots() -> Result<TlsClient, TlsError> {
        let mut roots = rustls::RootCertStore::empty();
        let found = rustls_native_certs::load_native_certs();
        let (added, _ignored) = roots.add_parsable_certificates(found.certs);
        if added == 0 {
            return Err(TlsError::NoCertificate { what: "system certificate store" });
        }
        Self::with_roots(roots)
    }

    fn with_roots(roots: rustls::RootCertStore) -> Result<TlsClient, TlsError> {
        let config = rustls::ClientConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()?
            .with_root_certificates(roots)
            .with_no_client_auth();
        Ok(TlsClient::from_config(Arc::new(config)))
    }

    /// A client with a rustls configuration built by the caller.
    pub fn from_config(config: Arc<rustls::ClientConfig>) -> TlsClient {
        TlsClient { connector: tokio_rustls::TlsConnector::from(config) }
    }

    /// Connects to `host:port` and runs the TLS handshake, verifying that the server's
    /// certificate is trusted and names `host`.
    ///
    /// # Errors
    ///
    /// The operating system's error if no TCP connection can be made; the TLS handshake's
    /// error ([`io::ErrorKind::InvalidData`]) if the certificate is not trusted or names
    /// another host.
    pub async fn connect(&self, host: &str, port: u16) -> io::Result<RawStream> {
        let name = ServerName::try_from(host.to_owned()).map_err(|e| {
            io::Error::new(io::ErrorKind::InvalidInput, format!("invalid TLS server name `{host}`: {e}"))
        })?;
        let tcp = crate::tcp::connect_tcp((host, port)).await?;
        let (local, peer) = (tcp.local_addr()?.to_string(), tcp.peer_addr()?.to_string());
        let tls = self.connector.connect(name, tcp).await.map_err(plain_hint)?;
        let (reader, writer) = tokio::io::split(tls);
        Ok(RawStream::new(
            Box::new(reader),
            Box::new(writer),
            LinkInfo { transport: "tls", local, peer },
            Role::Connector,
        ))
    }
}
