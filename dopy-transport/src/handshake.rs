//! The connection handshake: both ends write the magic and version, then read the other's.
//!
//! ```text
//! offset 0..4  magic    "DOPY" (0x44 0x4F 0x50 0x59)
//! offset 4     version  protocol major version (currently 1)
//! offset 5     flags    reserved, 0
//! offset 6..8  reserved 0x00 0x00
//! ```
//!
//! Anything else (a shell banner printed by an ssh login, a stray `println!` of a child process)
//! fails at once with an error that shows the first bytes received.

use std::fmt;
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

/// The four magic bytes every dopy connection starts with.
pub const MAGIC: [u8; 4] = *b"DOPY";

/// The protocol major version this implementation speaks.
pub const VERSION: u8 = 1;

/// Length of the hello each side sends.
pub const HELLO_LEN: usize = 8;

/// How many unexpected bytes an error shows at most.
const SHOWN_BYTES: usize = 64;

/// The hello this implementation sends.
pub const HELLO: [u8; HELLO_LEN] = [MAGIC[0], MAGIC[1], MAGIC[2], MAGIC[3], VERSION, 0, 0, 0];

/// A handshake failure.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum HandshakeError {
    /// The peer sent something other than the dopy magic.
    #[error("the peer does not speak dopy: expected magic \"DOPY\", received {}", Shown(.received))]
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

/// Performs the handshake on a fresh stream: writes our hello, reads and checks the peer's.
///
/// # Errors
///
/// [`HandshakeError`] when the peer sends anything but a matching hello within `timeout`.
pub async fn run<R, W>(reader: &mut R, writer: &mut W, timeout: Duration) -> Result<(), HandshakeError>
where
    R: AsyncRead + Unpin + ?Sized,
    W: AsyncWrite + Unpin + ?Sized,
{
    let exchange = async {
        writer.write_all(&HELLO).await?;
        writer.flush().await?;
        read_hello(reader).await
    };
    tokio::time::timeout(timeout, exchange).await.map_err(|_| HandshakeError::Timeout(timeout))?
}

async fn read_hello<R: AsyncRead + Unpin + ?Sized>(reader: &mut R) -> Result<(), HandshakeError> {
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
    Ok(())
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

    #[tokio::test]
    async fn banner_before_magic_is_shown_in_the_error() {
        let (mut a, mut b) = tokio::io::duplex(256);
        b.write_all(b"Welcome to Debian!\nDOPY\x01\0\0\0").await.unwrap();
        let (mut r, mut w) = tokio::io::split(&mut a);
        let err = run(&mut r, &mut w, Duration::from_secs(1)).await.unwrap_err();
        let text = err.to_string();
        assert!(text.contains("Welcome to Debian!\\n"), "{text}");
    }

    #[tokio::test]
    async fn other_version_is_refused() {
        let (mut a, mut b) = tokio::io::duplex(256);
        b.write_all(b"DOPY\x02\0\0\0").await.unwrap();
        let (mut r, mut w) = tokio::io::split(&mut a);
        let err = run(&mut r, &mut w, Duration::from_secs(1)).await.unwrap_err();
        assert!(matches!(err, HandshakeError::Version { theirs: 2, ours: 1 }));
    }

    #[tokio::test]
    async fn silence_times_out() {
        let (mut a, _b) = tokio::io::duplex(256);
        let (mut r, mut w) = tokio::io::split(&mut a);
        let err = run(&mut r, &mut w, Duration::from_millis(20)).await.unwrap_err();
        assert!(matches!(err, HandshakeError::Timeout(_)));
    }
}
