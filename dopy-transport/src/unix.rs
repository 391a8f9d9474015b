//! Unix domain sockets: `unix:PATH`.
//!
//! A listener removes its socket file when dropped, and binding over a stale socket file (left
//! by a process that died) replaces it; binding over a live one is refused.

use std::io;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};

use tokio::net::{UnixListener, UnixStream};

use crate::{LinkInfo, RawStream, Role};

/// Accepts connections on a Unix socket.
#[derive(Debug)]
pub struct Listener {
    inner: UnixListener,
    path: PathBuf,
    /// Device and inode of the socket file we created: only that file is removed on drop,
    /// never one that someone else put at the same path later.
    file_id: Option<(u64, u64)>,
}

impl Listener {
    /// Creates the socket at `path` and listens on it.
    ///
    /// # Errors
    ///
    /// [`io::ErrorKind::AddrInUse`] if a live socket (or another file) is at `path`; the
    /// operating system's error if the directory does not exist or is not writable.
    pub fn bind(path: &Path) -> io::Result<Listener> {
        let inner = match UnixListener::bind(path) {
            Err(e) if e.kind() == io::ErrorKind::AddrInUse && is_stale_socket(path) => {
                tracing::debug!(path = %path.display(), "replacing a stale socket file");
                std::fs::remove_file(path)?;
                UnixListener::bind(path)?
            }
            other => other?,
        };
        let file_id = std::fs::metadata(path).ok().map(|m| (m.dev(), m.ino()));
        Ok(Listener { inner, path: path.to_owned(), file_id })
    }

    /// The socket's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Waits for the next connection.
    ///
    /// # Errors
    ///
    /// The operating system's error when accepting fails (for instance, out of descriptors).
    pub async fn accept(&self) -> io::Result<RawStream> {
        let (stream, _) = self.inner.accept().await?;
        let peer = match stream.peer_cred().ok().and_then(|c| c.pid()) {
            Some(pid) => format!("pid {pid}"),
            None => "a local process".to_owned(),
        };
        Ok(wrap(stream, self.path.display().to_string(), peer, Role::Acceptor))
    }
}

impl Drop for Listener {
    fn drop(&mut self) {
        let ours = std::fs::metadata(&self.path).ok().map(|m| (m.dev(), m.ino()));
        if ours.is_some() && ours == self.file_id {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

/// Whether `path` is a socket file nobody listens on any more.
fn is_stale_socket(path: &Path) -> bool {
    let is_socket = std::fs::symlink_metadata(path).is_ok_and(|m| m.file_type().is_socket());
    is_socket
        && std::os::unix::net::UnixStream::connect(path).is_err_and(|e| e.kind() == io::ErrorKind::ConnectionRefused)
}

/// Connects to the Unix socket at `path`.
///
/// # Errors
///
/// The operating system's error when no connection can be made (no such file, refused).
pub async fn connect(path: &Path) -> io::Result<RawStream> {
    let stream = UnixStream::connect(path).await?;
    Ok(wrap(stream, format!("pid {}", std::process::id()), path.display().to_string(), Role::Connector))
}

fn wrap(stream: UnixStream, local: String, peer: String, role: Role) -> RawStream {
    let (reader, writer) = stream.into_split();
    RawStream::new(Box::new(reader), Box::new(writer), LinkInfo { transport: "unix", local, peer }, role)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn temp_path(name: &str) -> PathBuf {
        std::env::temp_dir().join(format!("dopy-unit-{}-{name}.sock", std::process::id()))
    }

    #[tokio::test]
    async fn socket_file_is_removed_when_the_listener_drops() {
        let path = temp_path("drop");
        let listener = Listener::bind(&path).unwrap();
        assert!(path.exists());
        drop(listener);
        assert!(!path.exists());
    }

    #[tokio::test]
    async fn stale_socket_is_replaced_and_live_one_refused() {
        let path = temp_path("stale");
        // A socket file nobody listens on, as a crashed process leaves it.
        drop(std::os::unix::net::UnixListener::bind(&path).unwrap());
        assert!(path.exists());
        let live = Listener::bind(&path).unwrap();
        assert_eq!(Listener::bind(&path).unwrap_err().kind(), io::ErrorKind::AddrInUse);
        let client = connect(&path).await.unwrap();
        let server = live.accept().await.unwrap();
        assert_eq!(server.info.peer, format!("pid {}", std::process::id()));
        drop((client, live));
        assert!(!path.exists());
    }
}
