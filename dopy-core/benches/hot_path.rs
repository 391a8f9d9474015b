//! Micro-benchmarks of the pieces on a call's hot path, each alone: framing, message
//! encode/decode, argument encode/decode (typed postcard and dynamic `Value`), results of 10 KiB,
//! and dispatch lookup (object table, then the method match).
//!
//! ```sh
//! cargo bench -p dopy-core --bench hot_path
//! ```
//!
//! The whole round trip, against a raw framed echo and tarpc, is `dopy-bench` (docs/PERFORMANCE.md).

// criterion_group! generates undocumented items.
#![allow(missing_docs)]

use std::hint::black_box;

use bytes::{Bytes, BytesMut};
use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use dopy_core::dispatch::{ArgList, Dispatch, Dispatched, Invocation};
use dopy_core::interface::Interface;
use dopy_core::message::{Args, Call, Message, Outcome, Payload, Target};
use dopy_core::table::{Entry, ObjectTable};
use dopy_core::{from_value, to_value, Value};
use serde::{Deserialize, Serialize};
use tokio_util::codec::{Decoder, Encoder};

/// The typed `add(2, 3)` call of PROTOCOL.md, as a generated proxy sends it.
fn add_call(args: Args) -> Message {
    Message::Call(Call {
        id: 1,
        target: Target::Name("calc".into()),
        method: "add".into(),
        refs: Vec::new(),
        args,
        flags: 0,
        deadline: None,
        chain: 0x1234_5678_0000_0001,
    })
}

fn typed_add() -> Args {
    Args::Typed(postcard::to_allocvec(&(2i64, 3i64)).unwrap().into())
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
struct Row {
    id: u64,
    x: f64,
    y: f64,
    name: String,
}

/// The 10 KiB result of dopy-bench's "10 KiB struct" workload.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
struct Report {
    title: String,
    rows: Vec<Row>,
}

fn report() -> Report {
    let rows = (0..128u64)
        .map(|i| Row { id: i, x: i as f64 * 0.5, y: i as f64 * 1.5, name: format!("row-{i:056}") })
        .collect();
    Report { title: "quarterly figures".into(), rows }
}

fn frames(c: &mut Criterion) {
    let mut g = c.benchmark_group("frame");
    let payload = add_call(typed_add()).encode().unwrap();
    let mut codec = dopy_transport::frame::codec(16 * 1024 * 1024);
    g.throughput(Throughput::Elements(1));
    g.bench_function("encode 21-byte frame", |b| {
        let mut out = BytesMut::with_capacity(64 * 1024);
        b.iter(|| {
            out.clear();
            codec.encode(black_box(payload.clone()), &mut out).unwrap();
        })
    });
    let mut batch = BytesMut::new();
    for _ in 0..64 {
        codec.encode(payload.clone(), &mut batch).unwrap();
    }
    let batch = batch.freeze();
    g.throughput(Throughput::Elements(64));
    g.bench_function("decode 64 frames from one read", |b| {
        b.iter(|| {
            let mut buf = BytesMut::from(&batch[..]);
            let mut n = 0;
            while let Some(frame) = codec.decode(&mut buf).unwrap() {
                n += frame.len();
            }
            black_box(n)
        })
    });
    g.finish();

    let mut g = c.benchmark_group("message");
    g.throughput(Throughput::Elements(1));
    let call = add_call(typed_add());
    g.bench_function("encode typed add call", |b| b.iter(|| black_box(&call).encode().unwrap()));
    let bytes = call.encode().unwrap();
    g.bench_function("decode typed add call", |b| b.iter(|| Message::decode(black_box(&bytes)).unwrap()));
    let dynamic = add_call(Args::Positional(vec![Value::Int(2), Value::Int(3)]));
    g.bench_function("encode dynamic add call", |b| b.iter(|| black_box(&dynamic).encode().unwrap()));
    let bytes = dynamic.encode().unwrap();
    g.bench_function("decode dynamic add call", |b| b.iter(|| Message::decode(black_box(&bytes)).unwrap()));
    let big = Message::Return {
        id: 7,
        refs: Vec::new(),
        outcome: Outcome::Ok(Payload::Typed(Bytes::from(vec![1u8; 1024 * 1024]))),
    };
    g.throughput(Throughput::Bytes(1024 * 1024));
    g.bench_function("encode 1 MiB typed return", |b| b.iter(|| black_box(&big).encode().unwrap()));
    let bytes = big.encode().unwrap();
    g.bench_function("decode 1 MiB typed return", |b| b.iter(|| Message::decode(black_box(&bytes)).unwrap()));
    g.finish();
}

fn arguments(c: &mut Criterion) {
    let mut g = c.benchmark_group("args");
    g.throughput(Throughput::Elements(1));
    g.bench_function("encode (i64, i64) typed", |b| {
        b.iter(|| postcard::to_allocvec(black_box(&(2i64, 3i64))).unwrap())
    });
    let typed = postcard::to_allocvec(&(2i64, 3i64)).unwrap();
    g.bench_function("decode (i64, i64) typed", |b| {
        b.iter(|| <(i64, i64)>::from_typed(black_box(&typed), &["a", "b"], "add").unwrap())
    });
    g.bench_function("encode (i64, i64) Value", |b| b.iter(|| to_value(black_box(&(2i64, 3i64))).unwrap()));
    g.bench_function("decode (i64, i64) Value", |b| {
        b.iter(|| {
            let values = vec![Some(Value::Int(2)), Some(Value::Int(3))];
            <(i64, i64)>::from_values(black_box(values), &["a", "b"], "add").unwrap()
        })
    });
    let r = report();
    g.bench_function("encode 10 KiB struct typed", |b| b.iter(|| postcard::to_allocvec(black_box(&r)).unwrap()));
    let typed = postcard::to_allocvec(&r).unwrap();
    g.bench_function("decode 10 KiB struct typed", |b| {
        b.iter(|| postcard::from_bytes::<Report>(black_box(&typed)).unwrap())
    });
    g.bench_function("encode 10 KiB struct Value", |b| b.iter(|| to_value(black_box(&r)).unwrap()));
    let value = to_value(&r).unwrap();
    g.bench_function("decode 10 KiB struct Value", |b| {
        b.iter(|| from_value::<Report>(black_box(value.clone())).unwrap())
    });
    g.bench_function("clone 10 KiB struct Value (baseline of the above)", |b| b.iter(|| black_box(&value).clone()));
    let returned = Message::Return { id: 1, refs: Vec::new(), outcome: Outcome::Ok(Payload::Dynamic(value.clone())) };
    g.bench_function("encode 10 KiB struct Value on the wire", |b| b.iter(|| black_box(&returned).encode().unwrap()));
    g.bench_function("encode 10 KiB struct straight into the wire form (to_wire)", |b| {
        b.iter(|| {
            let (wire, _) = dopy_core::value::wire::to_wire(black_box(&r)).unwrap();
            Message::Return { id: 1, refs: Vec::new(), outcome: Outcome::Ok(Payload::Wire(wire)) }.encode().unwrap()
        })
    });
    let bytes = returned.encode().unwrap();
    g.bench_function("decode 10 KiB struct Value from the wire", |b| {
        b.iter(|| Message::decode(black_box(&bytes)).unwrap())
    });
    g.finish();
}

/// A dispatcher shaped like the one `#[dopy::remote]` generates: a match on the method name.
struct Calc;

impl Dispatch for Calc {
    fn interface(&self) -> Interface {
        Interface::from_static("Calc", "", &[])
    }

    fn dispatch(&self, mut call: Invocation) -> Dispatched<'_> {
        let resp = call.responder();
        match call.method() {
            "sub" | "mul" | "div" | "neg" | "abs" | "min" | "max" => Dispatched::NotFound(call),
            "add" => match call.decode_args::<(i64, i64)>(&["a", "b"]) {
                Ok((a, b)) => Dispatched::Ready(resp.ok(&(a + b))),
                Err(fault) => Dispatched::Ready(Err(fault)),
            },
            _ => Dispatched::NotFound(call),
        }
    }
}

fn dispatch(c: &mut Criterion) {
    let mut g = c.benchmark_group("dispatch");
    g.throughput(Throughput::Elements(1));
    let table = ObjectTable::new();
    for i in 0..100 {
        table.publish(&format!("object-{i}"), Entry::new(format!("object-{i}"), Calc));
    }
    table.publish("calc", Entry::new("calc", Calc));
    let target = Target::Name("calc".into());
    g.bench_function("resolve a name among 101 objects", |b| b.iter(|| table.resolve(black_box(&target)).unwrap()));
    let typed = Bytes::from(postcard::to_allocvec(&(2i64, 3i64)).unwrap());
    g.bench_function("dispatch add: method match, decode, run, encode", |b| {
        b.iter(|| {
            let inv = Invocation::new("add", Args::Typed(typed.clone()), false, Vec::new());
            match Calc.dispatch(black_box(inv)) {
                Dispatched::Ready(reply) => reply.unwrap(),
                _ => unreachable!(),
            }
        })
    });
    g.finish();
}

criterion_group!(benches, frames, arguments, dispatch);
criterion_main!(benches);
