//! A peer that sends calls and never reads the replies cannot make the server hold more than
//! its backlog bound; it is closed after the backlog timeout, and others are served meanwhile.

mod support;

use std::time::{Duration, Instant};

use dopy::protocol::{Args, Call, Message, Target};
use dopy::transport::handshake::HELLO;
use dopy::transport::{LinkInfo, RawStream, Role};
use dopy::Node;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpSocket;

/// The bound the test sets, and its timeout.
const BOUND: usize = 64 * 1024;
const TIMEOUT: Duration = Duration::from_secs(2);

/// A pipelined `dopy.methods` call: a short frame whose reply is large.
fn methods_call(id: u64) -> Vec<u8> {
    let call = Message::Call(Call {
        id,
        target: Target::Name("calc".into()),
        method: "dopy.methods".into(),
        refs: vec![],
        args: Args::Positional(vec![]),
        flags: 0,
        deadline: None,
        chain: 0,
    });
    let frame = call.encode().unwrap();
    let mut out = (frame.len() as u32).to_le_bytes().to_vec();
    out.extend_from_slice(&frame);
    out
}

/// The server stops reading a peer that does not read (its queue stays within the bound plus a
/// frame), serves a new client within 2 s meanwhile, closes the peer after the timeout saying
/// why, and frees what was queued.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_peer_that_never_reads_is_held_to_the_backlog_bound() {
    let server = Node::builder().max_backlog(BOUND, TIMEOUT).build();
    server.publish("calc", support::Calculator::default()).unwrap();
    let endpoint = server.listen("tcp://127.0.0.1:0").await.unwrap();

    // The attacker's end is a pipe of 4 KiB each way that it never reads.
    let (near, far) = tokio::io::duplex(4096);
    let (read, write) = tokio::io::split(near);
    let info = LinkInfo { transport: "duplex", local: String::new(), peer: "attacker".into() };
    let served = server.serve_stream(RawStream::new(Box::new(read), Box::new(write), info, Role::Acceptor));
    let (_far_read, mut far_write) = tokio::io::split(far);
    let (conn, written) = tokio::join!(served, far_write.write_all(&HELLO));
    let conn = conn.unwrap();
    written.unwrap();

    let attack = tokio::spawn(async move {
        let mut id = 0u64;
        // Writes until the server stops taking calls (a write blocked for 500 ms), at most 20,000 calls.
        while id < 20_000 {
            id += 1;
            let frame = methods_call(id);
            match tokio::time::timeout(Duration::from_millis(500), far_write.write_all(&frame)).await {
                Ok(Ok(())) => {}
                Ok(Err(_)) | Err(_) => break,
            }
        }
        (id, far_write)
    });
    let mut most = 0;
    let started = Instant::now();
    while !attack.is_finished() {
        most = most.max(conn.backlog());
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    let (sent, _far_write) = attack.await.unwrap();
    most = most.max(conn.backlog());
    assert!(sent < 20_000, "the server kept reading a peer that does not read ({sent} calls taken)");
    assert!(most > BOUND / 2, "the attack did not fill the queue (at most {most} bytes): the test tests nothing");
    // The bound, plus the last reply pushed before the reader looked (a few KiB here).
    assert!(most <= BOUND + 16 * 1024, "{most} bytes queued, bound {BOUND}");

    // Meanwhile a well-behaved client is served within 2 s.
    let t = Instant::now();
    let calc = Node::new().object(&endpoint.object("calc").to_string()).await.unwrap();
    calc.call("add", [dopy::Value::from(1), dopy::Value::from(2)]).await.unwrap();
    assert!(t.elapsed() < Duration::from_secs(2), "a new client waited {:?}", t.elapsed());

    // After the timeout the peer is closed, saying why, and its queue is freed.
    tokio::time::timeout(TIMEOUT + Duration::from_secs(5), conn.closed()).await.expect("the connection was not closed");
    let reason = conn.close_reason().unwrap_or_default();
    assert!(reason.contains("did not read"), "{reason}");
    assert!(started.elapsed() >= TIMEOUT, "closed before the timeout: {:?}", started.elapsed());
    // The writer gives up on the last frame after its linger (2 s), and drops the queue.
    let freed = async {
        while conn.backlog() != 0 {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    };
    tokio::time::timeout(Duration::from_secs(5), freed).await.expect("the queue was not freed");
}

/// Over a real TCP listener: a client with a 4 KiB receive buffer pipelines calls with large
/// replies and never reads. The server stops reading it once its bound is queued, so its memory
/// grows by that bound and socket buffers, not by the replies of every call sent (before the
/// bound: about 0.75 KB per call, 150 MB for 200,000 calls); a new client is served meanwhile.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tcp_peer_that_never_reads_keeps_the_server_within_its_bound() {
    const CALLS: u64 = 200_000;
    let server = Node::builder().max_backlog(BOUND, Duration::from_secs(60)).build();
    server.publish("calc", support::Calculator::default()).unwrap();
    let endpoint = server.listen("tcp://127.0.0.1:0").await.unwrap();
    let socket = TcpSocket::new_v4().unwrap();
    socket.set_recv_buffer_size(4096).unwrap();
    let stream = socket.connect(endpoint.socket_addr().unwrap()).await.unwrap();
    let (_unread, mut attacker) = stream.into_split();
    attacker.write_all(&HELLO).await.unwrap();

    let before = support::rss();
    let mut sent = 0;
    while sent < CALLS {
        let batch: Vec<u8> = (sent + 1..=sent + 1_000).flat_map(methods_call).collect();
        // Stops once the server takes no more (a write blocked for a second).
        match tokio::time::timeout(Duration::from_secs(1), attacker.write_all(&batch)).await {
            Ok(Ok(())) => sent += 1_000,
            _ => break,
        }
    }
    // The server may still be working through what its socket holds: the peak over 2 s.
    let mut peak = 0;
    for _ in 0..40 {
        peak = peak.max(support::rss());
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let grown = peak.saturating_sub(before);
    eprintln!("{sent} calls sent; memory grew by {} MiB", grown >> 20);
    assert!(grown < 64 << 20, "memory grew by {} MiB while {sent} calls were sent", grown >> 20);

    let t = Instant::now();
    let calc = Node::new().object(&endpoint.object("calc").to_string()).await.unwrap();
    calc.call("add", [dopy::Value::from(1), dopy::Value::from(2)]).await.unwrap();
    assert!(t.elapsed() < Duration::from_secs(2), "a new client waited {:?}", t.elapsed());
}
