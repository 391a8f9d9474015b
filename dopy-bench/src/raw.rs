//! The limit: a hand-rolled, id-multiplexed, length-prefixed echo over TCP with TCP_NODELAY.
//!
//! A frame is `len: u32 LE` (of what follows), `id: u64 LE`, `op: u8`, then the body. The server
//! answers every complete frame of a read inline in its read loop (no task per call) and writes
//! the replies of one read with one write. The client has what any multiplexing client needs and
//! nothing more: a writer task that drains its queue into one write, a reader task that decodes
//! every complete frame in its buffer, and a map of pending calls to oneshot slots.

use std::collections::HashMap;
use std::io;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use bytes::{Buf, BufMut, Bytes, BytesMut};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, oneshot};

use crate::data::REPORT_LEN;

/// `add(a, b)`: the body is `a` and `b` (i64 LE); the reply is the sum.
const OP_ADD: u8 = 0;
/// Echo: the reply body is the request body.
const OP_ECHO: u8 = 1;
/// The reply body is [`REPORT_LEN`] bytes.
const OP_REPORT: u8 = 2;

/// Bytes of `len`, `id` and `op`.
const HEADER: usize = 13;

/// Bodies above this are written with a vectored write rather than copied into the batch.
const COPY_LIMIT: usize = 16 * 1024;

/// Starts the raw echo server on a free loopback port.
///
/// # Panics
///
/// If no loopback port can be bound.
pub async fn serve() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind the raw server");
    let addr = listener.local_addr().expect("raw server address");
    let report = Bytes::from(vec![7u8; REPORT_LEN]);
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let _ = stream.set_nodelay(true);
            tokio::spawn(serve_conn(stream, report.clone()));
        }
    });
    addr
}

fn header(out: &mut BytesMut, id: u64, op: u8, body_len: usize) {
    out.put_u32_le((9 + body_len) as u32);
    out.put_u64_le(id);
    out.put_u8(op);
}

/// Reads more bytes into `buf`, keeping room for at least one more read.
async fn fill(rd: &mut OwnedReadHalf, buf: &mut BytesMut) -> io::Result<usize> {
    if buf.capacity() - buf.len() < 4096 {
        buf.reserve(64 * 1024);
    }
    rd.read_buf(buf).await
}

/// The next complete frame in `buf` (without its length), or `None` after reserving room for it.
fn next_frame(buf: &mut BytesMut) -> Option<Bytes> {
    if buf.len() < 4 {
        return None;
    }
    let len = u32::from_le_bytes(buf[..4].try_into().expect("4 bytes")) as usize;
    if buf.len() < 4 + len {
        buf.reserve(4 + len - buf.len());
        return None;
    }
    buf.advance(4);
    Some(buf.split_to(len).freeze())
}

async fn serve_conn(stream: TcpStream, report: Bytes) -> io::Result<()> {
    let (mut rd, mut wr) = stream.into_split();
    let mut buf = BytesMut::with_capacity(8 * 1024);
    let mut out = BytesMut::new();
    loop {
        if fill(&mut rd, &mut buf).await? == 0 {
            return Ok(());
        }
        while let Some(mut frame) = next_frame(&mut buf) {
            let id = frame.get_u64_le();
            let op = frame.get_u8();
            let body = match op {
                OP_ADD => {
                    let sum = frame.get_i64_le().wrapping_add(frame.get_i64_le());
                    Bytes::copy_from_slice(&sum.to_le_bytes())
                }
                OP_REPORT => report.clone(),
                _ => frame,
            };
            header(&mut out, id, op, body.len());
            if body.len() > COPY_LIMIT {
                let mut chain = out.split().freeze().chain(body);
                wr.write_all_buf(&mut chain).await?;
            } else {
                out.extend_from_slice(&body);
            }
        }
        if !out.is_empty() {
            wr.write_all(&out).await?;
            out.clear();
        }
    }
}

/// What the client's writer task sends.
enum Out {
    /// A whole small frame.
    Small(BytesMut),
    /// A header and a large body, written without copying the body.
    Large(BytesMut, Bytes),
}

/// A multiplexing client of the raw server; cheap to clone.
#[derive(Clone)]
pub struct RawClient {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for RawClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("RawClient")
    }
}

struct Inner {
    out: mpsc::UnboundedSender<Out>,
    pending: Mutex<HashMap<u64, oneshot::Sender<Bytes>>>,
    next_id: AtomicU64,
}

impl RawClient {
    /// Connects to a raw server.
    ///
    /// # Panics
    ///
    /// If the server cannot be reached.
    pub async fn connect(addr: SocketAddr) -> RawClient {
        let stream = TcpStream::connect(addr).await.expect("connect to the raw server");
        stream.set_nodelay(true).expect("TCP_NODELAY");
        let (rd, wr) = stream.into_split();
        let (tx, rx) = mpsc::unbounded_channel();
        let inner = Arc::new(Inner { out: tx, pending: Mutex::new(HashMap::new()), next_id: AtomicU64::new(1) });
        tokio::spawn(write_loop(rx, wr));
        tokio::spawn(read_loop(rd, inner.clone()));
        RawClient { inner }
    }

    async fn call(&self, op: u8, small: &[u8], large: Option<Bytes>) -> Bytes {
        let inner = &self.inner;
        let id = inner.next_id.fetch_add(1, Ordering::Relaxed);
        let (tx, rx) = oneshot::channel();
        inner.pending.lock().expect("pending").insert(id, tx);
        let out = match large {
            Some(body) => {
                let mut head = BytesMut::with_capacity(HEADER);
                header(&mut head, id, op, body.len());
                Out::Large(head, body)
            }
            None => {
                let mut frame = BytesMut::with_capacity(HEADER + small.len());
                header(&mut frame, id, op, small.len());
                frame.extend_from_slice(small);
                Out::Small(frame)
            }
        };
        inner.out.send(out).unwrap_or_else(|_| panic!("raw connection closed"));
        rx.await.expect("raw reply")
    }

    /// `a + b`, computed by the server.
    pub async fn add(&self, a: i64, b: i64) -> i64 {
        let mut body = [0u8; 16];
        body[..8].copy_from_slice(&a.to_le_bytes());
        body[8..].copy_from_slice(&b.to_le_bytes());
        let reply = self.call(OP_ADD, &body, None).await;
        i64::from_le_bytes(reply[..8].try_into().expect("8 bytes"))
    }

    /// The same bytes back.
    pub async fn echo(&self, data: Bytes) -> Bytes {
        self.call(OP_ECHO, &[], Some(data)).await
    }

    /// The server's [`REPORT_LEN`]-byte reply.
    pub async fn report(&self) -> Bytes {
        self.call(OP_REPORT, &[], None).await
    }
}

async fn write_loop(mut rx: mpsc::UnboundedReceiver<Out>, mut wr: OwnedWriteHalf) -> io::Result<()> {
    let mut batch = BytesMut::with_capacity(64 * 1024);
    while let Some(first) = rx.recv().await {
        let mut next = Some(first);
        while let Some(out) = next {
            match out {
                Out::Small(frame) => batch.extend_from_slice(&frame),
                Out::Large(head, body) => {
                    batch.extend_from_slice(&head);
                    let mut chain = batch.split().freeze().chain(body);
                    wr.write_all_buf(&mut chain).await?;
                }
            }
            next = rx.try_recv().ok();
        }
        if !batch.is_empty() {
            wr.write_all(&batch).await?;
            batch.clear();
        }
    }
    Ok(())
}

async fn read_loop(mut rd: OwnedReadHalf, inner: Arc<Inner>) -> io::Result<()> {
    let mut buf = BytesMut::with_capacity(64 * 1024);
    loop {
        if fill(&mut rd, &mut buf).await? == 0 {
            return Ok(());
        }
        while let Some(mut frame) = next_frame(&mut buf) {
            let id = frame.get_u64_le();
            frame.advance(1);
            let slot = inner.pending.lock().expect("pending").remove(&id);
            if let Some(slot) = slot {
                let _ = slot.send(frame);
            }
        }
    }
}
