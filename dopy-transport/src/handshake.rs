//! The connection handshake: both ends write the magic and version, then read the other's;
//! then, if either end requires it, a mutual challenge–response proves both know a shared secret.
//!
//! ```text
//! hello, 8 bytes each way:
//! offset 0..4  magic    "DOPY" (0x44 0x4F 0x50 0x59)
//! offset 4     version  protocol major version (currently 1)
//! offset 5     flags    bit 0 AUTH: this side has a shared secret and requires the peer to prove it
//! offset 6..8  reserved 0x00 0x00
//!
//! if both hellos have AUTH, in this order:
//! 1. each way:             nonce  32 random bytes
//! 2. connector -> acceptor: proof  HMAC-SHA256(secret, "dopy-auth-v1 connector" || connector nonce || acceptor nonce)
//!    the acceptor checks it; on a mismatch it closes the stream and sends nothing more
//! 3. acceptor -> connector: proof  HMAC-SHA256(secret, "dopy-auth-v1 acceptor" || connector nonce || acceptor nonce)
//!    the connector checks it
//! ```
//!
//! Anything else (a shell banner printed by an ssh login, a stray `println!` of a child process)
//! fails at once with an error that shows the first bytes received. The secret never travels:
//! each side proves it knows it by keying an HMAC over both fresh nonces, and checks the
//! other's proof in constant time. The label names the prover's [`Role`], so a proof can never
//! be reflected back to the side that made it. The connector proves first and the acceptor
//! answers only a correct proof, so a listening node never hands anything derived from its
//! secret to a peer that has not proved it knows the secret (no material for offline
//! guessing). The byte streams are those of the earlier order, in which both sides sent their
//! proof at once: peers of either order still understand each other, so the version stays 1.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use hmac::{Hmac, Mac};
use sha2::Sha256;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

/// Which end of a stream this side is: the one that opened it, or the one that accepted it.
///
/// The handshake's authentication binds each proof to its role, so that a proof made by one
/// end can never be replayed as the other's.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Role {
    /// This side opened the stream (connected, dialled, spawned the child).
    Connector,
    /// This side accepted the stream (a listener, a process serving its own stdio).
    Acceptor,
}

/// The four magic bytes every dopy connection starts with.
pub const MAGIC: [u8; 4] = *b"DOPY";

/// The protocol major version this implementation speaks.
pub const VERSION: u8 = 1;

/// Length of the hello each side sends.
pub const HELLO_LEN: usize = 8;

/// Flag bit of the hello's byte 5: this side requires (and offers) shared-secret authentication.
pub const FLAG_AUTH: u8 = 0x01;

/// Length of an authentication challenge (a fresh random nonce).
pub const NONCE_LEN: usize = 32;

/// Length of an authentication proof (an HMAC-SHA256 tag).
pub const PROOF_LEN: usize = 32;

/// How many unexpected bytes an error shows at most.
const SHOWN_BYTES: usize = 64;

/// The hello this implementation sends when no secret is configured.
pub const HELLO: [u8; HELLO_LEN] = hello(0);

/// The hello with the given flags byte.
pub const fn hello(flags: u8) -> [u8; HELLO_LEN] {
    [MAGIC[0], MAGIC[1], MAGIC[2], MAGIC[3], VERSION, flags, 0, 0]
}

/// A shared secret for authentication. Its `Debug` output never shows the bytes.
///
/// # Examples
///
/// ```
/// let secret = dopy_transport::handshake::Secret::new("open sesame");
/// assert_eq!(format!("{secret:?}"), "Secret(..)");
/// ```
#[derive(Clone)]
pub struct Secret(Arc<[u8]>);

impl Secret {
    /// Wraps the secret's bytes (a passphrase, or better, 32 random bytes).
    pub fn new(bytes: impl AsRef<[u8]>) -> Secret {
        Secret(bytes.as_ref().into())
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(..)")
    }
}

/// Why authentication failed. Every variant means the connection was refused before any
/// message was exchanged.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AuthError {
    /// The peer requires a shared secret and this side has none.
    #[error("the peer requires a shared secret and none is configured here")]
    NoSecret,
    /// This side has a shared secret and the peer does not authenticate.
    #[error("a shared secret is configured here and the peer does not authenticate")]
    NotOffered,
    /// The peer's proof does not match this side's secret.
    #[error("the peer's proof does not match the shared secret (are the secrets the same?)")]
    BadProof,
    /// The peer (the acceptor) closed the connection instead of proving in turn: it refused
    /// this side's proof.
    #[error("the peer refused this side's proof (are the secrets the same?)")]
    Refused,
}

/// A handshake failure.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum HandshakeError {
    /// The peer sent something other than the dopy magic.
    #[error("the peer does not speak dopy: expected magic \"DOPY\", received {}{}", Shown(.received), tls_hint(.received))]
    BadMagic {
        /// The first bytes received (at most 64).
        received: Vec<u8>,
    },
    /// The peer speaks another protocol version.
    #[error("the peer speaks dopy protocol version {theirs}, this side speaks {ours}")]
    Version {
        /// The version announced by the peer.
        theirs: u8,
        /// The version this side speaks.
        ours: u8,
    },
    /// Authentication failed: wrong, missing or unexpected shared secret (which of them is the
    /// error's [`source`](std::error::Error::source)).
    #[error("unauthorized")]
    Unauthorized(#[from] AuthError),
    /// The peer closed the stream before completing the handshake.
    #[error("the peer closed the connection during the handshake (received {})", Shown(.received))]
    Closed {
        /// What was received before the end of stream.
        received: Vec<u8>,
    },
    /// The handshake did not complete in time.
    #[error("no handshake from the peer within {0:?}")]
    Timeout(Duration),
    /// The stream failed.
    #[error("i/o error during the handshake")]
    Io(#[from] std::io::Error),
}

impl HandshakeError {
    /// Whether the connection was refused for authentication reasons.
    pub fn is_unauthorized(&self) -> bool {
        matches!(self, HandshakeError::Unauthorized(_))
    }
}

/// A hint for bytes that look like a TLS record (a TLS server answering a plain client).
fn tls_hint(received: &[u8]) -> &'static str {
    match received {
        [0x15 | 0x16, 0x03, ..] => " (a TLS record: is this a tls:// endpoint?)",
        _ => "",
    }
}

/// Displays received bytes as an escaped string, e.g. `"Welcome to host\r\n..."`.
struct Shown<'a>(&'a [u8]);

impl fmt::Display for Shown<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0.is_empty() {
            return f.write_str("nothing");
        }
        write!(f, "\"{}\"", self.0.escape_ascii())?;
        if self.0.len() >= SHOWN_BYTES {
            f.write_str("...")?;
        }
        Ok(())
    }
}

/// The proof that the side in `prover`'s role knows `secret`, for the two nonces of one
/// handshake: `HMAC-SHA256(secret, label || connector_nonce || acceptor_nonce)` where `label`
/// is `"dopy-auth-v1 connector"` or `"dopy-auth-v1 acceptor"`.
///
/// # Examples
///
/// ```
/// use dopy_transport::handshake::{proof, Role, Secret};
///
/// let secret = Secret::new("sesame");
/// let (c, a) = ([1u8; 32], [2u8; 32]);
/// // Each role proves differently, so one side's proof cannot be reflected as the other's.
/// assert_ne!(proof(&secret, Role::Connector, &c, &a), proof(&secret, Role::Acceptor, &c, &a));
/// ```
pub fn proof(
    secret: &Secret,
    prover: Role,
    connector_nonce: &[u8; NONCE_LEN],
    acceptor_nonce: &[u8; NONCE_LEN],
) -> [u8; PROOF_LEN] {
    mac(secret, prover, connector_nonce, acceptor_nonce).finalize().into_bytes().into()
}

fn mac(
    secret: &Secret,
    prover: Role,
    connector_nonce: &[u8; NONCE_LEN],
    acceptor_nonce: &[u8; NONCE_LEN],
) -> Hmac<Sha256> {
    let label: &[u8] = match prover {
        Role::Connector => b"dopy-auth-v1 connector",
        Role::Acceptor => b"dopy-auth-v1 acceptor",
    };
    // HMAC accepts keys of any length, so this cannot fail.
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(&secret.0).expect("HMAC takes keys of any length");
    mac.update(label);
    mac.update(connector_nonce);
    mac.update(acceptor_nonce);
    mac
}

/// Performs the handshake on a fresh stream: writes our hello, reads and checks the peer's,
/// then authenticates both ends if either has a secret.
///
/// `role` says which end this is; `secret`, if any, is required of the peer.
///
/// # Errors
///
/// [`HandshakeError`] when the peer sends anything but a matching hello within `timeout`, or
/// authentication fails ([`HandshakeError::Unauthorized`]).
pub async fn run<R, W>(
    reader: &mut R,
    writer: &mut W,
    role: Role,
    secret: Option<&Secret>,
    timeout: Duration,
) -> Result<(), HandshakeError>
where
    R: AsyncRead + Unpin + ?Sized,
    W: AsyncWrite + Unpin + ?Sized,
{
    use std::io::ErrorKind::{BrokenPipe, ConnectionAborted, ConnectionReset};
    let exchange = async {
        let flags = if secret.is_some() { FLAG_AUTH } else { 0 };
        let sent = async {
            writer.write_all(&hello(flags)).await?;
            writer.flush().await
        };
        // A peer that is already gone (a child process that exited) breaks the pipe before we
        // could read its end of stream: the same event, reported the same way.
        sent.await.map_err(|e| match e.kind() {
            BrokenPipe | ConnectionReset | ConnectionAborted => HandshakeError::Closed { received: Vec::new() },
            _ => HandshakeError::Io(e),
        })?;
        let theirs = read_hello(reader).await?;
        match (secret, theirs & FLAG_AUTH != 0) {
            (None, false) => Ok(()),
            (None, true) => Err(AuthError::NoSecret.into()),
            (Some(_), false) => Err(AuthError::NotOffered.into()),
            (Some(secret), true) => authenticate(reader, writer, role, secret).await,
        }
    };
    tokio::time::timeout(timeout, exchange).await.map_err(|_| HandshakeError::Timeout(timeout))?
}

/// The challenge–response: both send a nonce; the connector proves first, the acceptor checks
/// that proof before it proves in turn.
async fn authenticate<R, W>(reader: &mut R, writer: &mut W, role: Role, secret: &Secret) -> Result<(), HandshakeError>
where
    R: AsyncRead + Unpin + ?Sized,
    W: AsyncWrite + Unpin + ?Sized,
{
    let mine: [u8; NONCE_LEN] = rand::random();
    writer.write_all(&mine).await?;
    writer.flush().await?;
    let mut theirs = [0u8; NONCE_LEN];
    read_exact(reader, &mut theirs).await?;
    match role {
        Role::Connector => {
            let (connector, acceptor) = (&mine, &theirs);
            writer.write_all(&proof(secret, Role::Connector, connector, acceptor)).await?;
            writer.flush().await?;
            let mut their_proof = [0u8; PROOF_LEN];
            // An acceptor that refuses our proof closes the stream instead of proving.
            read_exact(reader, &mut their_proof).await.map_err(|e| {
                if ended(&e) {
                    AuthError::Refused.into()
                } else {
                    e
                }
            })?;
            check(secret, Role::Acceptor, connector, acceptor, &their_proof)
        }
        Role::Acceptor => {
            let (connector, acceptor) = (&theirs, &mine);
            let mut their_proof = [0u8; PROOF_LEN];
            read_exact(reader, &mut their_proof).await?;
            // Nothing derived from the secret goes to a peer that has not proved it knows it.
            check(secret, Role::Connector, connector, acceptor, &their_proof)?;
            writer.write_all(&proof(secret, Role::Acceptor, connector, acceptor)).await?;
            writer.flush().await?;
            Ok(())
        }
    }
}

/// Checks the peer's proof, in constant time (`verify_slice`).
fn check(
    secret: &Secret,
    prover: Role,
    connector_nonce: &[u8; NONCE_LEN],
    acceptor_nonce: &[u8; NONCE_LEN],
    their_proof: &[u8; PROOF_LEN],
) -> Result<(), HandshakeError> {
    mac(secret, prover, connector_nonce, acceptor_nonce).verify_slice(their_proof).map_err(|_| AuthError::BadProof)?;
    Ok(())
}

/// Whether the stream ended (closed, or reset by a peer that closed with our bytes unread; a
/// TLS stream closed without `close_notify` reads as an unexpected end).
fn ended(e: &HandshakeError) -> bool {
    use std::io::ErrorKind::{BrokenPipe, ConnectionAborted, ConnectionReset, UnexpectedEof};
    match e {
        HandshakeError::Closed { received } => received.is_empty(),
        HandshakeError::Io(e) => matches!(e.kind(), UnexpectedEof | ConnectionReset | ConnectionAborted | BrokenPipe),
        _ => false,
    }
}

/// Reads exactly `buf.len()` bytes; an early end of stream is [`HandshakeError::Closed`].
async fn read_exact<R: AsyncRead + Unpin + ?Sized>(reader: &mut R, buf: &mut [u8]) -> Result<(), HandshakeError> {
    let mut filled = 0;
    while filled < buf.len() {
        let n = reader.read(&mut buf[filled..]).await?;
        if n == 0 {
            return Err(HandshakeError::Closed { received: buf[..filled.min(SHOWN_BYTES)].to_vec() });
        }
        filled += n;
    }
    Ok(())
}

/// Reads and checks the peer's hello; returns its flags byte.
async fn read_hello<R: AsyncRead + Unpin + ?Sized>(reader: &mut R) -> Result<u8, HandshakeError> {
    let mut got = Vec::with_capacity(SHOWN_BYTES);
    let mut buf = [0u8; SHOWN_BYTES];
    while got.len() < HELLO_LEN {
        // Read at most what the hello still needs, so no frame bytes are consumed here.
        let want = HELLO_LEN - got.len();
        let n = reader.read(&mut buf[..want]).await?;
        if n == 0 {
            return Err(HandshakeError::Closed { received: got });
        }
        got.extend_from_slice(&buf[..n]);
        let seen = got.len().min(MAGIC.len());
        if got[..seen] != MAGIC[..seen] {
            return Err(bad_magic(reader, got).await);
        }
    }
    if got[4] != VERSION {
        return Err(HandshakeError::Version { theirs: got[4], ours: VERSION });
    }
    Ok(got[5])
}

/// Collects a few more bytes (whatever arrives within a short moment) to show in the error.
async fn bad_magic<R: AsyncRead + Unpin + ?Sized>(reader: &mut R, mut got: Vec<u8>) -> HandshakeError {
    let mut buf = [0u8; SHOWN_BYTES];
    while got.len() < SHOWN_BYTES {
        let want = SHOWN_BYTES - got.len();
        match tokio::time::timeout(Duration::from_millis(50), reader.read(&mut buf[..want])).await {
            Ok(Ok(n)) if n > 0 => got.extend_from_slice(&buf[..n]),
            _ => break,
        }
    }
    HandshakeError::BadMagic { received: got }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECOND: Duration = Duration::from_secs(1);

    /// Runs both ends of a handshake over an in-memory pipe.
    async fn both(
        connector: Option<&Secret>,
        acceptor: Option<&Secret>,
    ) -> (Result<(), HandshakeError>, Result<(), HandshakeError>) {
        let (a, b) = tokio::io::duplex(1024);
        let (mut ar, mut aw) = tokio::io::split(a);
        let (mut br, mut bw) = tokio::io::split(b);
        // Each end drops its stream when done, as a link that fails its handshake does.
        tokio::join!(async move { run(&mut ar, &mut aw, Role::Connector, connector, SECOND).await }, async move {
            run(&mut br, &mut bw, Role::Acceptor, acceptor, SECOND).await
        },)
    }

    #[tokio::test]
    async fn banner_before_magic_is_shown_in_the_error() {
        let (mut a, mut b) = tokio::io::duplex(256);
        b.write_all(b"Welcome to Debian!\nDOPY\x01\0\0\0").await.unwrap();
        let (mut r, mut w) = tokio::io::split(&mut a);
        let err = run(&mut r, &mut w, Role::Connector, None, SECOND).await.unwrap_err();
        let text = err.to_string();
        assert!(text.contains("Welcome to Debian!\\n"), "{text}");
    }

    #[tokio::test]
    async fn other_version_is_refused() {
        let (mut a, mut b) = tokio::io::duplex(256);
        b.write_all(b"DOPY\x02\0\0\0").await.unwrap();
        let (mut r, mut w) = tokio::io::split(&mut a);
        let err = run(&mut r, &mut w, Role::Connector, None, SECOND).await.unwrap_err();
        assert!(matches!(err, HandshakeError::Version { theirs: 2, ours: 1 }));
    }

    #[tokio::test]
    async fn silence_times_out() {
        let (mut a, _b) = tokio::io::duplex(256);
        let (mut r, mut w) = tokio::io::split(&mut a);
        let err = run(&mut r, &mut w, Role::Connector, None, Duration::from_millis(20)).await.unwrap_err();
        assert!(matches!(err, HandshakeError::Timeout(_)));
    }

    #[tokio::test]
    async fn same_secret_on_both_ends_passes() {
        let s = Secret::new("sesame");
        let (c, a) = both(Some(&s), Some(&s)).await;
        c.unwrap();
        a.unwrap();
    }

    #[tokio::test]
    async fn different_secrets_are_refused_by_both_ends() {
        let (c, a) = both(Some(&Secret::new("sesame")), Some(&Secret::new("open"))).await;
        // The acceptor checks first and closes without proving: the connector learns nothing.
        assert!(matches!(c, Err(HandshakeError::Unauthorized(AuthError::Refused))), "{c:?}");
        assert!(matches!(a, Err(HandshakeError::Unauthorized(AuthError::BadProof))), "{a:?}");
    }

    #[tokio::test]
    async fn a_secret_on_one_end_only_is_refused_by_both() {
        let s = Secret::new("sesame");
        let (c, a) = both(None, Some(&s)).await;
        assert!(matches!(c, Err(HandshakeError::Unauthorized(AuthError::NoSecret))), "{c:?}");
        assert!(matches!(a, Err(HandshakeError::Unauthorized(AuthError::NotOffered))), "{a:?}");
        let (c, a) = both(Some(&s), None).await;
        assert!(matches!(c, Err(HandshakeError::Unauthorized(AuthError::NotOffered))), "{c:?}");
        assert!(matches!(a, Err(HandshakeError::Unauthorized(AuthError::NoSecret))), "{a:?}");
    }

    #[tokio::test]
    async fn the_acceptor_proves_nothing_before_the_connector_has_proved_itself() {
        let s = Secret::new("sesame");
        let (a, mut peer) = tokio::io::duplex(1024);
        let (mut ar, mut aw) = tokio::io::split(a);
        let acceptor = tokio::spawn(async move {
            let r = run(&mut ar, &mut aw, Role::Acceptor, Some(&s), SECOND).await;
            drop(aw);
            r
        });
        peer.write_all(&hello(FLAG_AUTH)).await.unwrap();
        peer.write_all(&[4u8; NONCE_LEN]).await.unwrap();
        // Only its hello and nonce come, however long we wait without proving.
        let mut got = vec![0u8; HELLO_LEN + NONCE_LEN];
        peer.read_exact(&mut got).await.unwrap();
        let mut more = [0u8; 1];
        let waited = tokio::time::timeout(Duration::from_millis(200), peer.read(&mut more)).await;
        assert!(waited.is_err(), "the acceptor sent more before any proof: {waited:?}");
        // A wrong proof: refused, and the stream ends with nothing more.
        peer.write_all(&[0u8; PROOF_LEN]).await.unwrap();
        let err = acceptor.await.unwrap().unwrap_err();
        assert!(matches!(err, HandshakeError::Unauthorized(AuthError::BadProof)), "{err:?}");
        let mut rest = Vec::new();
        peer.read_to_end(&mut rest).await.unwrap();
        assert!(rest.is_empty(), "the acceptor answered a wrong proof: {rest:02x?}");
    }

    #[tokio::test]
    async fn an_acceptor_of_the_earlier_order_still_authenticates() {
        // Version 1 acceptors once sent their proof without waiting for the connector's: the
        // bytes each way are the same, so a connector of either order gets through.
        let s = Secret::new("sesame");
        let (c, mut old) = tokio::io::duplex(1024);
        let (mut cr, mut cw) = tokio::io::split(c);
        let secret = s.clone();
        let old_acceptor = async move {
            let mine = [2u8; NONCE_LEN];
            old.write_all(&hello(FLAG_AUTH)).await.unwrap();
            old.write_all(&mine).await.unwrap();
            let mut got = [0u8; HELLO_LEN + NONCE_LEN];
            old.read_exact(&mut got).await.unwrap();
            let theirs: [u8; NONCE_LEN] = got[HELLO_LEN..].try_into().unwrap();
            old.write_all(&proof(&secret, Role::Acceptor, &theirs, &mine)).await.unwrap();
            let mut their_proof = [0u8; PROOF_LEN];
            old.read_exact(&mut their_proof).await.unwrap();
            assert_eq!(their_proof, proof(&secret, Role::Connector, &theirs, &mine));
            old
        };
        let (r, _old) = tokio::join!(run(&mut cr, &mut cw, Role::Connector, Some(&s), SECOND), old_acceptor);
        r.unwrap();
    }

    #[tokio::test]
    async fn two_connectors_cannot_authenticate_each_other() {
        // A proof is bound to its role: replaying one end's proof to it is useless.
        let s = Secret::new("sesame");
        let (a, b) = tokio::io::duplex(1024);
        let (mut ar, mut aw) = tokio::io::split(a);
        let (mut br, mut bw) = tokio::io::split(b);
        let (x, y) = tokio::join!(
            run(&mut ar, &mut aw, Role::Connector, Some(&s), SECOND),
            run(&mut br, &mut bw, Role::Connector, Some(&s), SECOND),
        );
        assert!(x.unwrap_err().is_unauthorized());
        assert!(y.unwrap_err().is_unauthorized());
    }
}
