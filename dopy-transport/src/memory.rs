//! In-process links: a connected pair of byte streams with no socket, for tests and embedding;
//! and `memory://NAME`, a process-wide registry of named in-process listeners.

use std::collections::HashMap;
use std::io;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{LazyLock, Mutex};

use tokio::sync::mpsc;

use crate::{LinkInfo, RawStream, Role};

/// Buffer size of each direction of an in-memory pair.
const BUFFER: usize = 256 * 1024;

/// How many connections may wait for a listener to accept them.
const BACKLOG: usize = 64;

/// The named listeners of this process.
static REGISTRY: LazyLock<Mutex<HashMap<String, mpsc::Sender<RawStream>>>> = LazyLock::new(Default::default);

/// Numbers in-process connections, for their names in logs.
static NEXT_CLIENT: AtomicU64 = AtomicU64::new(1);

/// Creates two connected in-memory streams: the first is the [connecting](Role::Connector)
/// end, the second the [accepting](Role::Acceptor) one.
///
/// # Examples
///
/// ```
/// let (a, b) = dopy_transport::memory::pair();
/// assert_eq!(a.info.transport, "memory");
/// # drop(b);
/// ```
pub fn pair() -> (RawStream, RawStream) {
    named_pair("a", "b")
}

fn named_pair(connector: &str, acceptor: &str) -> (RawStream, RawStream) {
    let (a, b) = tokio::io::duplex(BUFFER);
    (half(a, connector, acceptor, Role::Connector), half(b, acceptor, connector, Role::Acceptor))
}

fn half(stream: tokio::io::DuplexStream, local: &str, peer: &str, role: Role) -> RawStream {
    let (reader, writer) = tokio::io::split(stream);
    RawStream::new(
        Box::new(reader),
        Box::new(writer),
        LinkInfo { transport: "memory", local: local.into(), peer: peer.into() },
        role,
    )
}

fn registry() -> std::sync::MutexGuard<'static, HashMap<String, mpsc::Sender<RawStream>>> {
    REGISTRY.lock().unwrap_or_else(|e| e.into_inner())
}

/// Accepts in-process connections made to its name (`memory://NAME`) by [`connect`].
///
/// The name is taken for the whole process until the listener is dropped.
///
/// # Examples
///
/// ```
/// use dopy_transport::memory;
///
/// # #[tokio::main(flavor = "current_thread")] async fn main() -> std::io::Result<()> {
/// let mut listener = memory::Listener::bind("doc-example")?;
/// let client = memory::connect("doc-example").await?;
/// let server = listener.accept().await?;
/// assert_eq!(server.info.local, "doc-example");
/// # drop(client); Ok(()) }
/// ```
#[derive(Debug)]
pub struct Listener {
    name: String,
    incoming: mpsc::Receiver<RawStream>,
    /// Our own sender, to recognise our registry entry when unregistering.
    sender: mpsc::Sender<RawStream>,
}

impl Listener {
    /// Takes `name` for this process.
    ///
    /// # Errors
    ///
    /// [`io::ErrorKind::AddrInUse`] if another listener has the name;
    /// [`io::ErrorKind::InvalidInput`] if it is empty or contains `/`.
    pub fn bind(name: &str) -> io::Result<Listener> {
        if name.is_empty() || name.contains('/') {
            return Err(io::Error::new(io::ErrorKind::InvalidInput, "in-process names are non-empty and have no `/`"));
        }
        let mut registry = registry();
        if registry.get(name).is_some_and(|s| !s.is_closed()) {
            return Err(io::Error::new(
                io::ErrorKind::AddrInUse,
                format!("an in-process listener named `{name}` already exists"),
            ));
        }
        let (sender, incoming) = mpsc::channel(BACKLOG);
        registry.insert(name.to_owned(), sender.clone());
        Ok(Listener { name: name.to_owned(), incoming, sender })
    }

    /// The name this listener took.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Waits for the next connection.
    ///
    /// # Errors
    ///
    /// Never in practice: the listener holds its own registry entry open.
    pub async fn accept(&mut self) -> io::Result<RawStream> {
        self.incoming.recv().await.ok_or_else(|| io::Error::other("in-process listener closed"))
    }
}

impl Drop for Listener {
    fn drop(&mut self) {
        let mut registry = registry();
        if registry.get(&self.name).is_some_and(|s| s.same_channel(&self.sender)) {
            registry.remove(&self.name);
        }
    }
}

/// Connects to the in-process listener named `name`.
///
/// # Errors
///
/// [`io::ErrorKind::ConnectionRefused`] if no listener has that name.
pub async fn connect(name: &str) -> io::Result<RawStream> {
    let refused = || {
        io::Error::new(
            io::ErrorKind::ConnectionRefused,
            format!("no in-process listener named `{name}` in this process"),
        )
    };
    let sender = registry().get(name).cloned().ok_or_else(refused)?;
    let client = format!("client-{}", NEXT_CLIENT.fetch_add(1, Ordering::Relaxed));
    let (ours, theirs) = named_pair(&client, name);
    sender.send(theirs).await.map_err(|_| refused())?;
    Ok(ours)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_name_is_taken_until_its_listener_drops() {
        let listener = Listener::bind("unit-name").unwrap();
        assert_eq!(Listener::bind("unit-name").unwrap_err().kind(), io::ErrorKind::AddrInUse);
        drop(listener);
        let err = connect("unit-name").await.unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::ConnectionRefused);
        Listener::bind("unit-name").unwrap();
    }

    #[tokio::test]
    async fn connections_carry_bytes_both_ways() {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let mut listener = Listener::bind("unit-bytes").unwrap();
        let mut client = connect("unit-bytes").await.unwrap();
        let mut server = listener.accept().await.unwrap();
        assert_eq!((client.role, server.role), (Role::Connector, Role::Acceptor));
        client.writer.write_all(b"ping").await.unwrap();
        let mut buf = [0u8; 4];
        server.reader.read_exact(&mut buf).await.unwrap();
        assert_eq!(&buf, b"ping");
    }
}
