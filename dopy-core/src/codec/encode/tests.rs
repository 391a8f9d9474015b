//! The encoders write exactly what postcard writes, whole or in parts.

use bytes::BytesMut;

use super::*;
use crate::codec::ObjectId;
use crate::value;

fn typed_return(len: usize) -> Message {
    Message::Return { id: 9, refs: Vec::new(), outcome: Outcome::Ok(Payload::Typed(Bytes::from(vec![5u8; len]))) }
}

#[test]
fn encode_writes_what_postcard_writes() {
    let msg = typed_return(100_000);
    let bytes = msg.encode().unwrap();
    assert_eq!(&bytes[..], &postcard::to_allocvec(&msg).unwrap()[..]);
}

#[test]
fn encode_shared_keeps_large_typed_payloads_uncopied() {
    let call = |len: usize| {
        Message::Call(Call {
            id: 3,
            target: Target::Name("calc".into()),
            method: "echo".into(),
            refs: Vec::new(),
            args: Args::Typed(Bytes::from(vec![7u8; len])),
            flags: 0,
            deadline: Some(5),
            chain: 9,
        })
    };
    for msg in [typed_return(SHARE_MIN), typed_return(100_000), call(SHARE_MIN), call(1 << 20)] {
        let Encoded::Parts(parts) = msg.encode_shared().unwrap() else { panic!("not in parts") };
        // A `Return` ends with its result: nothing follows the payload.
        assert_eq!(parts.len(), if matches!(msg, Message::Call(_)) { 3 } else { 2 });
        assert_eq!(parts.concat(), &msg.encode().unwrap()[..]);
        let payload = match &msg {
            Message::Call(Call { args: Args::Typed(b), .. }) => b,
            Message::Return { outcome: Outcome::Ok(Payload::Typed(b)), .. } => b,
            _ => unreachable!(),
        };
        assert_eq!(parts[1].as_ptr(), payload.as_ptr(), "the payload is shared, not copied");
        assert_eq!(parts[1].len(), payload.len());
    }
    for msg in [typed_return(SHARE_MIN - 1), call(10), Message::Goodbye] {
        assert_eq!(msg.encode_shared().unwrap(), Encoded::Whole(msg.encode().unwrap()));
    }
}

#[test]
fn a_prepared_wire_result_encodes_as_the_dynamic_value() {
    for rows in [0usize, 3, 2000] {
        let data: Vec<(u32, String)> = (0..rows as u32).map(|i| (i, format!("row {i}"))).collect();
        let (wire, _) = value::wire::to_wire(&data).unwrap();
        let refs = vec![RefWire::Mine(ObjectId([42; 16]))];
        let prepared = Message::Return { id: 7, refs: refs.clone(), outcome: Outcome::Ok(Payload::Wire(wire)) };
        let tree = Outcome::Ok(Payload::Dynamic(value::to_value(&data).unwrap()));
        let plain = Message::Return { id: 7, refs, outcome: tree };
        let expected = plain.encode().unwrap();
        assert_eq!(prepared.encode().unwrap(), expected);
        let shared = prepared.encode_shared().unwrap();
        assert_eq!(matches!(shared, Encoded::Parts(_)), expected.len() > SHARE_MIN, "{rows} rows");
        let joined = match shared {
            Encoded::Whole(b) => b.to_vec(),
            Encoded::Parts(parts) => parts.concat(),
        };
        assert_eq!(joined, &expected[..]);
        // The receiver decodes the value.
        assert_eq!(Message::decode(&expected).unwrap(), plain);
        // Nothing else can write it (it would be written wrongly).
        assert!(postcard::to_allocvec(&prepared).is_err());
    }
}

#[test]
fn call_ref_encodes_as_the_call() {
    let target = Target::Name("calc".into());
    let some_refs = vec![RefWire::Mine(ObjectId([3; 16])), RefWire::Yours(Target::Name("x".into()))];
    let nested = (0..10).fold(Value::Int(1), |v, _| Value::Seq(vec![v]));
    let payloads = [
        Args::Typed(Bytes::from(vec![7u8; 12])),
        Args::Typed(Bytes::from(vec![1u8; SHARE_MIN])),
        Args::Positional(vec![Value::Int(-3), Value::String("x".into()), nested.clone()]),
        Args::Named(vec![("a".into(), Value::Float(0.5)), ("b".into(), Value::Bool(true))]),
        Args::Positional(vec![Value::Bytes(vec![2; SHARE_MIN])]),
    ];
    // Without references, small arguments take the hand-written encoder; the connection
    // writes such a call in place (`small`).
    for (args, refs) in payloads.iter().flat_map(|a| [(a.clone(), some_refs.clone()), (a.clone(), Vec::new())]) {
        let call = Message::Call(Call {
            id: 300,
            target: target.clone(),
            method: "add".into(),
            refs: refs.clone(),
            args: args.clone(),
            flags: 1,
            deadline: Some(70_000),
            chain: u64::MAX,
        });
        let borrowed = CallRef {
            id: 300,
            target: &target,
            method: "add",
            refs,
            args: &args,
            flags: 1,
            deadline: Some(70_000),
            chain: u64::MAX,
        };
        let postcard = postcard::to_allocvec(&call).unwrap();
        assert_eq!(to_bytes(&borrowed).unwrap(), postcard);
        assert_eq!(call.encode().unwrap(), postcard);
        assert_eq!(borrowed.encode_shared().unwrap(), call.encode_shared().unwrap());
        let small = borrowed.small(64);
        assert_eq!(small.is_some(), borrowed.refs.is_empty() && postcard.len() < SHARE_MIN, "{args:?}");
        if let Some(small) = small {
            assert_eq!(small.len(), postcard.len());
            assert_eq!(small.encode().unwrap(), postcard);
            let mut in_place = BytesMut::from(&b"before"[..]);
            small.write(&mut in_place).unwrap();
            assert_eq!(&in_place[6..], &postcard[..]);
        }
    }
    // Values nested deeper than the limit, or holding a reference, take the general path
    // (which reports the one and exports the other).
    let call = |args: &'static Args| CallRef {
        id: 1,
        target: &target,
        method: "m",
        refs: Vec::new(),
        args,
        flags: 0,
        deadline: None,
        chain: 0,
    };
    let deep: &'static Args = Box::leak(Box::new(Args::Positional(vec![nested])));
    assert!(call(deep).small(64).is_some());
    assert!(call(deep).small(5).is_none());
    let with_ref: &'static Args =
        Box::leak(Box::new(Args::Positional(vec![Value::Ref(crate::handle::DynObject::dangling("x".into()))])));
    assert!(call(with_ref).small(64).is_none());
}

#[test]
fn small_returns_encode_as_the_return() {
    let typed = Payload::Typed(Bytes::from(vec![9u8; 300]));
    let (wire, _) = crate::value::wire::to_wire(&("ok", 5u8)).unwrap();
    // A wire result is written as the same result as a `Value` would be.
    let dynamic = Payload::Dynamic(crate::value::to_value(&("ok", 5u8)).unwrap());
    let cases =
        [(0, typed.clone(), typed.clone()), (u64::MAX, typed.clone(), typed), (1 << 20, Payload::Wire(wire), dynamic)];
    for (id, payload, as_encoded) in cases {
        let ret = Message::Return { id, refs: Vec::new(), outcome: Outcome::Ok(as_encoded) };
        let expected = ret.encode().unwrap();
        let small = small_return(id, &payload, SHARE_MIN).expect("a small result");
        assert_eq!(small.len(), expected.len());
        assert_eq!(small.encode().unwrap(), expected);
        assert!(small_return(id, &payload, 3).is_none(), "not below the limit");
    }
    assert!(small_return(1, &Payload::Dynamic(Value::Unit), SHARE_MIN).is_none());
}
