//! A fault-injecting byte stream: wraps a real stream (TCP loopback by default) and, at a chosen
//! point, drops the connection, stalls it, slows it to one byte at a time or corrupts one byte.
//!
//! [`pair`] connects two nodes through it with [`Node::serve_stream`] on both sides. Faults are
//! armed on either side's [`Faults`] handle; their byte counts start when they are armed, so a
//! test can let the handshake through and then aim at the Nth byte of the calls.

use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use dopy::transport::{LinkInfo, RawStream, Role};
use dopy::{Connection, Node, Proxy};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;

/// What goes wrong.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fault {
    /// The connection is closed at once (the socket is dropped: the peer sees it end), and this
    /// side's reads and writes fail.
    Drop,
    /// Nothing more is delivered in either direction and nothing is closed: reads and writes
    /// wait for ever (a peer that vanished without a trace, a black-holed route).
    Stall,
    /// From then on, every read and every write moves a single byte.
    Trickle,
    /// One byte is flipped (XOR 0xFF): the next byte read after [`When::AfterRead`], else the
    /// next byte written.
    Corrupt,
}

/// When an armed fault strikes, counted from the moment it is armed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum When {
    /// At once.
    Now,
    /// Once `n` more bytes have been read (exactly: a read never crosses the point).
    AfterRead(u64),
    /// Once `n` more bytes have been written (exactly: a write never crosses the point).
    AfterWritten(u64),
    /// At the start of the `k`th write from now (1 = the next one).
    OnWrite(u64),
}

/// Controls and observes one side's stream; cheap to clone.
#[derive(Clone, Debug)]
pub struct Faults {
    state: Arc<Mutex<State>>,
}

#[derive(Debug)]
struct State {
    /// The real stream; `None` once dropped by [`Fault::Drop`] or once both halves are gone.
    inner: Option<TcpStream>,
    /// Halves of the wrapper still alive (the transport holds them).
    halves: usize,
    read: u64,
    written: u64,
    writes: u64,
    armed: Option<Armed>,
    /// The faults in force.
    dropped: bool,
    stalled: bool,
    trickle: bool,
    /// Flip the next byte read / written.
    corrupt_read: bool,
    corrupt_write: bool,
    /// How many bytes were flipped.
    corrupted: u64,
    /// Wakers of halves waiting on a stall or on the real stream, woken by a new fault.
    read_waker: Option<Waker>,
    write_waker: Option<Waker>,
}

#[derive(Clone, Copy, Debug)]
struct Armed {
    fault: Fault,
    when: When,
    /// Counts when armed.
    read: u64,
    written: u64,
    writes: u64,
}

impl State {
    /// Bytes a read may take before the armed trigger point, if one is pending on reads.
    fn read_room(&self) -> Option<usize> {
        match self.armed? {
            Armed { when: When::AfterRead(n), read, .. } => Some((read + n - self.read) as usize),
            _ => None,
        }
    }

    fn write_room(&self) -> Option<usize> {
        match self.armed? {
            Armed { when: When::AfterWritten(n), written, .. } => Some((written + n - self.written) as usize),
            _ => None,
        }
    }

    /// Fires the armed fault if its point is reached.
    fn check(&mut self) {
        let Some(armed) = self.armed else { return };
        let due = match armed.when {
            When::Now => true,
            When::AfterRead(n) => self.read >= armed.read + n,
            When::AfterWritten(n) => self.written >= armed.written + n,
            When::OnWrite(k) => self.writes + 1 >= armed.writes + k,
        };
        if due {
            self.armed = None;
            self.apply(armed.fault, matches!(armed.when, When::AfterRead(_)));
        }
    }

    fn apply(&mut self, fault: Fault, on_read: bool) {
        match fault {
            Fault::Drop => {
                self.dropped = true;
                self.inner = None;
            }
            Fault::Stall => self.stalled = true,
            Fault::Trickle => self.trickle = true,
            Fault::Corrupt if on_read => self.corrupt_read = true,
            Fault::Corrupt => self.corrupt_write = true,
        }
        self.wake();
    }

    fn wake(&mut self) {
        for w in [self.read_waker.take(), self.write_waker.take()].into_iter().flatten() {
            w.wake();
        }
    }
}

impl Faults {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Arms `fault` to strike at `when` (counted from now), replacing any fault still armed.
    pub fn arm(&self, fault: Fault, when: When) {
        let mut s = self.lock();
        s.armed = Some(Armed { fault, when, read: s.read, written: s.written, writes: s.writes });
        s.check();
        s.wake();
    }

    /// Strikes with `fault` now.
    pub fn strike(&self, fault: Fault) {
        self.arm(fault, When::Now);
    }

    /// Whether no armed fault is waiting any more.
    pub fn fired(&self) -> bool {
        self.lock().armed.is_none()
    }

    /// Bytes read so far.
    pub fn read(&self) -> u64 {
        self.lock().read
    }

    /// Bytes written so far.
    pub fn written(&self) -> u64 {
        self.lock().written
    }

    /// Bytes flipped so far.
    pub fn corrupted(&self) -> u64 {
        self.lock().corrupted
    }

    /// Whether the transport has let go of the stream: the connection's tasks dropped both
    /// halves (or a [`Fault::Drop`] closed it and they dropped them since).
    pub fn released(&self) -> bool {
        self.lock().halves == 0
    }

    /// Waits (up to `limit`) until the transport has let go of the stream; false if it has not.
    pub async fn wait_released(&self, limit: Duration) -> bool {
        super::wait::holds_within(limit, || self.released()).await
    }
}

/// Wraps `stream` for a [`RawStream`]; the returned handle arms faults on it.
pub fn wrap(stream: TcpStream, role: Role) -> (RawStream, Faults) {
    let info = LinkInfo {
        transport: "faulty",
        local: stream.local_addr().map(|a| a.to_string()).unwrap_or_default(),
        peer: stream.peer_addr().map(|a| a.to_string()).unwrap_or_default(),
    };
    let faults = Faults {
        state: Arc::new(Mutex::new(State {
            inner: Some(stream),
            halves: 2,
            read: 0,
            written: 0,
            writes: 0,
            armed: None,
            dropped: false,
            stalled: false,
            trickle: false,
            corrupt_read: false,
            corrupt_write: false,
            corrupted: 0,
            read_waker: None,
            write_waker: None,
        })),
    };
    let raw = RawStream::new(Box::new(Half(faults.clone())), Box::new(Half(faults.clone())), info, role);
    (raw, faults)
}

/// One half of the wrapper (the same type serves as reader and writer).
struct Half(Faults);

impl Drop for Half {
    fn drop(&mut self) {
        let mut s = self.0.lock();
        s.halves -= 1;
        if s.halves == 0 {
            s.inner = None;
        }
    }
}

fn gone() -> io::Error {
    io::Error::new(io::ErrorKind::ConnectionReset, "fault injected: connection dropped")
}

impl AsyncRead for Half {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        let mut s = self.0.lock();
        s.check();
        if s.dropped {
            return Poll::Ready(Err(gone()));
        }
        if s.stalled {
            s.read_waker = Some(cx.waker().clone());
            return Poll::Pending;
        }
        let mut room = buf.remaining();
        if let Some(r) = s.read_room() {
            room = room.min(r.max(1));
        }
        if s.trickle || s.corrupt_read {
            room = room.min(1);
        }
        let Some(inner) = s.inner.as_mut() else { return Poll::Ready(Err(gone())) };
        let mut sub = ReadBuf::new(buf.initialize_unfilled_to(room));
        match Pin::new(inner).poll_read(cx, &mut sub) {
            Poll::Ready(Ok(())) => {
                let n = sub.filled().len();
                if n > 0 && s.corrupt_read {
                    s.corrupt_read = false;
                    s.corrupted += 1;
                    sub.filled_mut()[0] ^= 0xFF;
                }
                buf.advance(n);
                s.read += n as u64;
                s.check();
                Poll::Ready(Ok(()))
            }
            Poll::Pending => {
                s.read_waker = Some(cx.waker().clone());
                Poll::Pending
            }
            other => other,
        }
    }
}

impl AsyncWrite for Half {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, data: &[u8]) -> Poll<io::Result<usize>> {
        let mut s = self.0.lock();
        s.check();
        if s.dropped {
            return Poll::Ready(Err(gone()));
        }
        if s.stalled {
            s.write_waker = Some(cx.waker().clone());
            return Poll::Pending;
        }
        let mut room = data.len();
        if let Some(r) = s.write_room() {
            room = room.min(r.max(1));
        }
        if s.trickle {
            room = room.min(1);
        }
        let data = &data[..room];
        let mut flipped;
        let data = if s.corrupt_write && !data.is_empty() {
            flipped = data.to_vec();
            flipped[0] ^= 0xFF;
            &flipped[..]
        } else {
            data
        };
        let Some(inner) = s.inner.as_mut() else { return Poll::Ready(Err(gone())) };
        match Pin::new(inner).poll_write(cx, data) {
            Poll::Ready(Ok(n)) => {
                if n > 0 && s.corrupt_write {
                    s.corrupt_write = false;
                    s.corrupted += 1;
                }
                s.written += n as u64;
                s.writes += 1;
                s.check();
                Poll::Ready(Ok(n))
            }
            Poll::Pending => {
                s.write_waker = Some(cx.waker().clone());
                Poll::Pending
            }
            other => other,
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let mut s = self.0.lock();
        if s.dropped {
            return Poll::Ready(Err(gone()));
        }
        if s.stalled {
            s.write_waker = Some(cx.waker().clone());
            return Poll::Pending;
        }
        match s.inner.as_mut() {
            Some(inner) => Pin::new(inner).poll_flush(cx),
            None => Poll::Ready(Err(gone())),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let mut s = self.0.lock();
        if s.dropped || s.stalled {
            return Poll::Ready(Ok(()));
        }
        match s.inner.as_mut() {
            Some(inner) => Pin::new(inner).poll_shutdown(cx),
            None => Poll::Ready(Ok(())),
        }
    }
}

/// Two nodes connected over TCP loopback through fault-injecting streams.
#[derive(Debug)]
pub struct Pair {
    /// The client's end of the connection.
    pub client: Connection,
    /// The server's end.
    pub server: Connection,
    /// Faults of the client's stream.
    pub client_faults: Faults,
    /// Faults of the server's stream.
    pub server_faults: Faults,
}

/// Counts every pair opened.
static PAIRS: AtomicUsize = AtomicUsize::new(0);

/// How many faulty connections this process has opened.
pub fn pairs_opened() -> usize {
    PAIRS.load(Ordering::Relaxed)
}

/// Connects `client` to `server` over TCP loopback through fault-injecting streams, running the
/// handshake with [`Node::serve_stream`] on both sides.
///
/// # Panics
///
/// If the loopback socket or the handshake fails.
pub async fn pair(server: &Node, client: &Node) -> Pair {
    pair_with(server, client, |_, _| {}).await
}

/// As [`pair`], with `arm(client_faults, server_faults)` called before the handshake, so that
/// the faults it arms count the handshake's bytes too.
///
/// # Panics
///
/// As [`pair`].
pub async fn pair_with(server: &Node, client: &Node, arm: impl FnOnce(&Faults, &Faults)) -> Pair {
    let (s, c, server_faults, client_faults) = handshake(server, client, arm).await;
    Pair { client: c.unwrap(), server: s.unwrap(), client_faults, server_faults }
}

/// Runs the handshake of both nodes over a faulty TCP loopback connection, with faults armed
/// by `arm(client_faults, server_faults)` first; returns how each side's
/// [`Node::serve_stream`] ended, and the server's and the client's faults.
///
/// # Panics
///
/// If the loopback socket fails.
pub async fn handshake(
    server: &Node,
    client: &Node,
    arm: impl FnOnce(&Faults, &Faults),
) -> (Result<Connection, dopy::Error>, Result<Connection, dopy::Error>, Faults, Faults) {
    PAIRS.fetch_add(1, Ordering::Relaxed);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (accepted, dialled) = tokio::join!(listener.accept(), TcpStream::connect(addr));
    let (accepted, _) = accepted.unwrap();
    let dialled = dialled.unwrap();
    accepted.set_nodelay(true).unwrap();
    dialled.set_nodelay(true).unwrap();
    let (server_raw, server_faults) = wrap(accepted, Role::Acceptor);
    let (client_raw, client_faults) = wrap(dialled, Role::Connector);
    arm(&client_faults, &server_faults);
    let (s, c) = tokio::join!(server.serve_stream(server_raw), client.serve_stream(client_raw));
    (s, c, server_faults, client_faults)
}

impl Pair {
    /// A typed proxy to the object the server publishes as `name`.
    pub fn proxy<P: Proxy>(&self, name: &str) -> P {
        self.client.proxy(name)
    }
}
