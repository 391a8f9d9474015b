//! tarpc, as its documentation sets it up: the bincode serde transport over length-delimited TCP
//! (TCP_NODELAY on both ends), every request served in a task of its own.

// The service macro generates items without docs.
#![allow(missing_docs)]

use std::net::SocketAddr;
use std::sync::Arc;

use futures_util::StreamExt;
use serde_bytes::ByteBuf;
use tarpc::server::{BaseChannel, Channel};
use tarpc::tokio_serde::formats::Bincode;
use tarpc::tokio_util::codec::LengthDelimitedCodec;
use tokio::net::{TcpListener, TcpStream};

use crate::data::Report;

/// The benchmark service.
#[tarpc::service]
pub trait Bench {
    /// `a + b`.
    async fn add(a: i64, b: i64) -> i64;
    /// The same bytes back, as `Vec<u8>` (serialized byte by byte).
    async fn echo_vec(data: Vec<u8>) -> Vec<u8>;
    /// The same bytes back, as `serde_bytes::ByteBuf` (serialized as one slice).
    async fn echo_bytes(data: ByteBuf) -> ByteBuf;
    /// A 10 KiB struct.
    async fn report() -> Report;
}

#[derive(Clone)]
struct Server {
    report: Arc<Report>,
}

impl Bench for Server {
    async fn add(self, _: tarpc::context::Context, a: i64, b: i64) -> i64 {
        a + b
    }

    async fn echo_vec(self, _: tarpc::context::Context, data: Vec<u8>) -> Vec<u8> {
        data
    }

    async fn echo_bytes(self, _: tarpc::context::Context, data: ByteBuf) -> ByteBuf {
        data
    }

    async fn report(self, _: tarpc::context::Context) -> Report {
        (*self.report).clone()
    }
}

fn codec() -> LengthDelimitedCodec {
    LengthDelimitedCodec::builder().max_frame_length(16 * 1024 * 1024).new_codec()
}

/// Starts a tarpc server on a free loopback port.
///
/// # Panics
///
/// If no loopback port can be bound.
pub async fn serve() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind the tarpc server");
    let addr = listener.local_addr().expect("tarpc server address");
    let server = Server { report: Arc::new(Report::sample()) };
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let _ = stream.set_nodelay(true);
            let framed = tokio_util_framed(stream);
            let transport = tarpc::serde_transport::new(framed, Bincode::default());
            let serve = BaseChannel::with_defaults(transport).execute(server.clone().serve()).for_each(|fut| async {
                tokio::spawn(fut);
            });
            tokio::spawn(serve);
        }
    });
    addr
}

fn tokio_util_framed(stream: TcpStream) -> tarpc::tokio_util::codec::Framed<TcpStream, LengthDelimitedCodec> {
    tarpc::tokio_util::codec::Framed::new(stream, codec())
}

/// Connects a tarpc client.
///
/// # Panics
///
/// If the server cannot be reached.
pub async fn connect(addr: SocketAddr) -> BenchClient {
    let stream = TcpStream::connect(addr).await.expect("connect to the tarpc server");
    stream.set_nodelay(true).expect("TCP_NODELAY");
    let transport = tarpc::serde_transport::new(tokio_util_framed(stream), Bincode::default());
    BenchClient::new(tarpc::client::Config::default(), transport).spawn()
}
