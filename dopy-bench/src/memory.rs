//! Memory: what an idle connection costs a server, and what an exported object costs.
//!
//! Measured as the growth of the process's resident set (`/proc/self/statm`). The client ends
//! are plain blocking sockets (no tokio registration, no buffers), driven from a blocking
//! thread, so the growth is the server's. Everything measured stays alive until every
//! measurement is done, so that no measurement reuses memory another one freed.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use dopy::protocol::{Args, Call, Message, Outcome, Target};

/// The dopy handshake's hello (PROTOCOL.md, section 1.1).
const HELLO: [u8; 8] = *b"DOPY\x01\x00\x00\x00";

/// Resident set size of this process, in bytes; `None` where `/proc` is not available.
pub fn rss() -> Option<u64> {
    let statm = std::fs::read_to_string("/proc/self/statm").ok()?;
    let pages: u64 = statm.split_whitespace().nth(1)?.parse().ok()?;
    Some(pages * 4096)
}

/// Growth of the resident set per item while `work` runs, and what `work` returned (kept alive
/// by the caller).
pub async fn per_item<T: Send + 'static>(items: usize, work: impl FnOnce() -> T + Send + 'static) -> (Option<f64>, T) {
    let before = rss();
    let kept = tokio::task::spawn_blocking(work).await.expect("memory probe");
    // Let the servers finish accepting and settle.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let after = rss();
    let per = before.zip(after).map(|(b, a)| a.saturating_sub(b) as f64 / items as f64);
    (per, kept)
}

/// Opens `n` idle connections to `addr`; with `dopy_hello`, each completes the dopy handshake
/// first (so that the server has set the connection up).
///
/// # Panics
///
/// If a connection fails.
pub fn open_idle(addr: SocketAddr, n: usize, dopy_hello: bool) -> Vec<TcpStream> {
    (0..n)
        .map(|_| {
            let mut s = TcpStream::connect(addr).expect("connect an idle client");
            if dopy_hello {
                s.write_all(&HELLO).expect("hello");
                let mut theirs = [0u8; 8];
                s.read_exact(&mut theirs).expect("the server's hello");
                assert_eq!(theirs, HELLO);
            }
            s
        })
        .collect()
}

fn frame(msg: &Message, out: &mut Vec<u8>) {
    let payload = msg.encode().expect("encode a call");
    out.extend_from_slice(&(payload.len() as u32).to_le_bytes());
    out.extend_from_slice(&payload);
}

fn read_frame(s: &mut TcpStream) -> Vec<u8> {
    let mut len = [0u8; 4];
    s.read_exact(&mut len).expect("a reply");
    let mut payload = vec![0u8; u32::from_le_bytes(len) as usize];
    s.read_exact(&mut payload).expect("a reply");
    payload
}

/// Makes the dopy server at `addr` export `n` objects to one connection: a client speaking the
/// protocol by hand (PROTOCOL.md) calls `export` `n` times and never releases the references,
/// so it holds nothing itself. Returns the connection, which keeps the exports alive.
///
/// # Panics
///
/// If the server does not answer as expected.
pub fn export_objects(addr: SocketAddr, object: &str, n: usize) -> TcpStream {
    let mut s = open_idle(addr, 1, true).pop().expect("one connection");
    let batch = 1000;
    let mut sent = 0;
    while sent < n {
        let count = batch.min(n - sent);
        let mut out = Vec::new();
        for i in 0..count {
            let call = Call {
                id: (sent + i + 1) as u64,
                target: Target::Name(object.to_owned()),
                method: "export".into(),
                refs: Vec::new(),
                args: Args::Typed(bytes::Bytes::new()),
                flags: 0,
                deadline: None,
                chain: 0,
            };
            frame(&Message::Call(call), &mut out);
        }
        s.write_all(&out).expect("send calls");
        let mut answered = 0;
        while answered < count {
            match Message::decode(&read_frame(&mut s)).expect("a reply") {
                Message::Return { refs, outcome: Outcome::Ok(_), .. } if refs.len() == 1 => answered += 1,
                // The server's heartbeat may come at any time (PROTOCOL.md): answered, as any
                // peer must.
                Message::Ping { nonce } => {
                    let mut pong = Vec::new();
                    frame(&Message::Pong { nonce }, &mut pong);
                    s.write_all(&pong).expect("send a pong");
                }
                other => panic!("export answered {other:?}"),
            }
        }
        sent += count;
    }
    s
}
