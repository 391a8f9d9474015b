//! [`Client`]: the one interface the workloads drive, implemented for each contender.

use std::future::Future;

use bytes::Bytes;
use dopy::{DynObject, Value};
use serde_bytes::ByteBuf;

use crate::data::{Bulk, REPORT_LEN};
use crate::raw::RawClient;
use crate::with_dopy::BenchObjectProxy;
use crate::with_tarpc::BenchClient;

/// A client of the benchmark service, over one connection; clones share the connection.
pub trait Client: Clone + Send + Sync + 'static {
    /// The buffer the echo workload sends and gets back (and sends again: no copy per call).
    type Buf: Send + 'static;

    /// A buffer of `len` bytes.
    fn make_buf(len: usize) -> Self::Buf;

    /// The length of a buffer.
    fn buf_len(buf: &Self::Buf) -> usize;

    /// `a + b`, computed by the server.
    fn add(&self, a: i64, b: i64) -> impl Future<Output = i64> + Send;

    /// The buffer back, sent as `bulk` says.
    fn echo(&self, bulk: Bulk, buf: Self::Buf) -> impl Future<Output = Self::Buf> + Send;

    /// The 10 KiB struct; returns its size in rows (or bytes, for the raw client).
    fn report(&self) -> impl Future<Output = usize> + Send;
}

impl Client for RawClient {
    type Buf = Bytes;

    fn make_buf(len: usize) -> Bytes {
        Bytes::from(vec![1u8; len])
    }

    fn buf_len(buf: &Bytes) -> usize {
        buf.len()
    }

    fn add(&self, a: i64, b: i64) -> impl Future<Output = i64> + Send {
        RawClient::add(self, a, b)
    }

    fn echo(&self, _: Bulk, buf: Bytes) -> impl Future<Output = Bytes> + Send {
        RawClient::echo(self, buf)
    }

    async fn report(&self) -> usize {
        let len = RawClient::report(self).await.len();
        assert_eq!(len, REPORT_LEN);
        len
    }
}

fn ctx() -> tarpc::context::Context {
    tarpc::context::current()
}

impl Client for BenchClient {
    type Buf = Vec<u8>;

    fn make_buf(len: usize) -> Vec<u8> {
        vec![1u8; len]
    }

    fn buf_len(buf: &Vec<u8>) -> usize {
        buf.len()
    }

    async fn add(&self, a: i64, b: i64) -> i64 {
        BenchClient::add(self, ctx(), a, b).await.expect("tarpc add")
    }

    async fn echo(&self, bulk: Bulk, buf: Vec<u8>) -> Vec<u8> {
        match bulk {
            Bulk::Vec => self.echo_vec(ctx(), buf).await.expect("tarpc echo"),
            Bulk::Bytes => self.echo_bytes(ctx(), ByteBuf::from(buf)).await.expect("tarpc echo").into_vec(),
        }
    }

    async fn report(&self) -> usize {
        BenchClient::report(self, ctx()).await.expect("tarpc report").rows.len()
    }
}

/// dopy through the typed proxy `#[dopy::remote]` generates.
#[derive(Clone, Debug)]
pub struct Typed(pub BenchObjectProxy);

impl Client for Typed {
    type Buf = dopy::Bytes;

    fn make_buf(len: usize) -> dopy::Bytes {
        dopy::Bytes::from(vec![1u8; len])
    }

    fn buf_len(buf: &dopy::Bytes) -> usize {
        buf.len()
    }

    async fn add(&self, a: i64, b: i64) -> i64 {
        self.0.add(a, b).await.expect("dopy add")
    }

    async fn echo(&self, bulk: Bulk, buf: dopy::Bytes) -> dopy::Bytes {
        match bulk {
            Bulk::Vec => self.0.echo_vec(buf.into_vec()).await.expect("dopy echo").into(),
            Bulk::Bytes => self.0.echo_bytes(buf).await.expect("dopy echo"),
        }
    }

    async fn report(&self) -> usize {
        self.0.report().await.expect("dopy report").rows.len()
    }
}

/// dopy through a dynamic handle: method names and [`Value`]s, no Rust types of the server.
#[derive(Clone, Debug)]
pub struct Dynamic(pub DynObject);

impl Client for Dynamic {
    type Buf = Vec<u8>;

    fn make_buf(len: usize) -> Vec<u8> {
        vec![1u8; len]
    }

    fn buf_len(buf: &Vec<u8>) -> usize {
        buf.len()
    }

    async fn add(&self, a: i64, b: i64) -> i64 {
        match self.0.call("add", [Value::Int(a), Value::Int(b)]).await.expect("dopy add") {
            Value::Int(sum) => sum,
            other => panic!("add answered {other}"),
        }
    }

    async fn echo(&self, bulk: Bulk, buf: Vec<u8>) -> Vec<u8> {
        // A dynamic caller sends bytes as `Value::Bytes` whatever the parameter's Rust type.
        let method = match bulk {
            Bulk::Vec => "echo_vec",
            Bulk::Bytes => "echo_bytes",
        };
        match self.0.call(method, [Value::Bytes(buf)]).await.expect("dopy echo") {
            Value::Bytes(b) => b,
            Value::Seq(items) => items
                .into_iter()
                .map(|v| match v {
                    Value::UInt(b) => b as u8,
                    other => panic!("echo answered {other}"),
                })
                .collect(),
            other => panic!("echo answered {}", other.kind()),
        }
    }

    async fn report(&self) -> usize {
        let report = self.0.call("report", []).await.expect("dopy report");
        match report.get("rows") {
            Some(Value::Seq(rows)) => rows.len(),
            _ => panic!("report answered something else"),
        }
    }
}
