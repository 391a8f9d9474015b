//! Property tests of the decoders and encodings (proptest; see `docs/FUZZING.md`).
//!
//! - any byte string given to the message decoder or the `Value` decoder gives a value or an
//!   error, never a panic, and allocates within a bound (peak measured with a peak-tracking global
//!   allocator, in this test binary only);
//! - `Value` trees (bounded depth) and typed (postcard) data round-trip through their encodings.
//!
//! Every test takes [`measuring`]: the allocation counters are global, so the tests of this file
//! run one at a time.

use std::alloc::System;
use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard};

use bytes::Bytes;
use dopy_core::dispatch::ArgList;
use dopy_core::message::{self, Args, Call, Message, Outcome, Payload, RefWire, Target};
use dopy_core::value::{from_value, to_value, wire, Value};
use peakmem_alloc::{PeakMemAlloc, PeakMemAllocTrait, INSTRUMENTED_SYSTEM};
use proptest::collection::vec;
use proptest::prelude::*;
use serde::{Deserialize, Serialize};

#[global_allocator]
static GLOBAL: &PeakMemAlloc<System> = &INSTRUMENTED_SYSTEM;

static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

/// Serializes the tests of this file (see the module docs).
fn measuring() -> MutexGuard<'static, ()> {
    ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner())
}

/// The most memory in use while `f` runs, above what was in use before: the peak of bytes
/// allocated minus bytes freed (reallocations count their difference).
fn allocated_by<R>(f: impl FnOnce() -> R) -> (R, usize) {
    GLOBAL.reset_peak_memory();
    let r = f();
    (r, GLOBAL.get_peak_memory())
}

/// The most a decode of `len` bytes may allocate.
///
/// A decoded message or value cannot hold more than its input (every element takes at least
/// one byte), but a length read from the input is trusted up to a fixed preallocation first:
/// serde's own `Vec` up to 1 MiB, a `Value` sequence up to a few KiB per nesting level.
/// 4 MiB plus 64 bytes per input byte covers both, far below the default frame limit
/// (16 MiB) that bounds a frame's length in the first place.
fn decode_budget(len: usize) -> usize {
    4 * 1024 * 1024 + 64 * len
}

/// `cases` per property, unless `PROPTEST_CASES` asks for another number.
fn config(cases: u32) -> ProptestConfig {
    let cases = std::env::var("PROPTEST_CASES").ok().and_then(|n| n.parse().ok()).unwrap_or(cases);
    ProptestConfig { cases, failure_persistence: None, ..ProptestConfig::default() }
}

// ---------------------------------------------------------------------------------------------
// Strategies
// ---------------------------------------------------------------------------------------------

/// Scalar values of every kind (floats include NaN and infinities).
fn leaf() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(Value::Unit),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::Int),
        any::<u64>().prop_map(Value::UInt),
        any::<i128>().prop_map(Value::Int128),
        any::<u128>().prop_map(Value::UInt128),
        any::<f64>().prop_map(Value::Float),
        any::<char>().prop_map(Value::Char),
        ".{0,12}".prop_map(|s| Value::String(s.into())),
        vec(any::<u8>(), 0..24).prop_map(Value::Bytes),
    ]
}

/// Value trees up to 6 levels of containers deep.
fn value() -> impl Strategy<Value = Value> {
    leaf().prop_recursive(6, 96, 6, |inner| {
        prop_oneof![
            proptest::option::of(inner.clone()).prop_map(|v| Value::Option(v.map(Box::new))),
            vec(inner.clone(), 0..6).prop_map(Value::Seq),
            vec((inner.clone(), inner.clone()), 0..4).prop_map(Value::Map),
            ("[A-Za-z_]{1,10}", inner).prop_map(|(name, v)| Value::Variant(name.into(), Box::new(v))),
        ]
    })
}

fn target() -> impl Strategy<Value = Target> {
    prop_oneof![".{0,8}".prop_map(Target::Name), any::<[u8; 16]>().prop_map(|id| Target::Id(message::ObjectId(id)))]
}

fn args() -> impl Strategy<Value = Args> {
    prop_oneof![
        vec(any::<u8>(), 0..32).prop_map(|b| Args::Typed(Bytes::from(b))),
        vec(value(), 0..4).prop_map(Args::Positional),
        vec(("[a-z]{1,6}", value()), 0..4).prop_map(Args::Named),
    ]
}

/// Messages of every kind (faults aside), without object references in their values.
fn a_message() -> impl Strategy<Value = Message> {
    let call =
        (any::<u64>(), target(), "[a-z.]{0,10}", vec(target(), 0..3), args(), any::<u32>(), any::<Option<u64>>())
            .prop_map(|(id, target, method, refs, args, flags, deadline)| {
                let refs = refs.into_iter().map(RefWire::Yours).collect();
                Message::Call(Call { id, target, method, refs, args, flags, deadline, chain: id.rotate_left(7) })
            });
    let payload = prop_oneof![
        vec(any::<u8>(), 0..32).prop_map(|b| Payload::Typed(Bytes::from(b))),
        value().prop_map(Payload::Dynamic),
    ];
    prop_oneof![
        call,
        (any::<u64>(), payload).prop_map(|(id, p)| Message::Return { id, refs: Vec::new(), outcome: Outcome::Ok(p) }),
        any::<u64>().prop_map(|id| Message::Cancel { id }),
        (any::<[u8; 16]>(), any::<u32>())
            .prop_map(|(id, count)| Message::Release { object: message::ObjectId(id), count }),
        any::<u64>().prop_map(|nonce| Message::Ping { nonce }),
        Just(Message::Goodbye),
        ".{0,20}".prop_map(|reason| Message::Abort { reason }),
    ]
}

/// Calls in the shape `Message`'s hand-written codec handles: no references, typed or dynamic
/// arguments.
fn a_call_without_refs() -> impl Strategy<Value = Message> {
    let fields = (any::<u64>(), target(), ".{0,10}", args(), any::<u32>(), any::<Option<u64>>());
    (fields, any::<u64>()).prop_map(|((id, target, method, args, flags, deadline), chain)| {
        Message::Call(Call { id, target, method, refs: Vec::new(), args, flags, deadline, chain })
    })
}

/// Returns in the shape the hand-written codec handles: a typed result, no references.
fn a_typed_return() -> impl Strategy<Value = Message> {
    (any::<u64>(), vec(any::<u8>(), 0..40)).prop_map(|(id, result)| Message::Return {
        id,
        refs: Vec::new(),
        outcome: Outcome::Ok(Payload::Typed(Bytes::from(result))),
    })
}

/// Byte strings near valid ones: an encoding with bytes overwritten, inserted and cut off.
fn mangled(encoding: Vec<u8>) -> impl Strategy<Value = Vec<u8>> {
    let len = encoding.len();
    (vec((0..len.max(1), any::<u8>()), 0..4), 0..=len, vec(any::<u8>(), 0..3)).prop_map(move |(edits, cut, tail)| {
        let mut bytes = encoding.clone();
        for (at, byte) in edits {
            if at < bytes.len() {
                bytes[at] = byte;
            }
        }
        bytes.truncate(cut);
        bytes.extend(tail);
        bytes
    })
}

/// Equality with floats compared bit for bit (so that NaN equals itself).
fn same(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Float(x), Value::Float(y)) => x.to_bits() == y.to_bits(),
        (Value::Option(Some(x)), Value::Option(Some(y))) => same(x, y),
        (Value::Seq(x), Value::Seq(y)) => x.len() == y.len() && x.iter().zip(y).all(|(x, y)| same(x, y)),
        (Value::Map(x), Value::Map(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|((xk, xv), (yk, yv))| same(xk, yk) && same(xv, yv))
        }
        (Value::Variant(xn, xv), Value::Variant(yn, yv)) => xn == yn && same(xv, yv),
        _ => a == b,
    }
}

fn wire_bytes(value: &Value) -> Vec<u8> {
    postcard::to_allocvec(&wire::Wire(value)).expect("a value without references encodes")
}

/// The wire decoder on a whole input: a value and the bytes it used, or an error.
fn wire_decode(bytes: &[u8]) -> Result<(Value, usize), postcard::Error> {
    let mut de = postcard::Deserializer::from_bytes(bytes);
    let value = wire::deserialize(&mut de)?;
    let rest = de.finalize()?;
    Ok((value, bytes.len() - rest.len()))
}

// ---------------------------------------------------------------------------------------------
// Decoding arbitrary bytes
// ---------------------------------------------------------------------------------------------

/// Checks one input of the message decoder: no panic (proptest reports one as a failure),
/// an error or a message, within the allocation budget; a message re-encodes to at most the
/// bytes it came from.
fn check_message_input(bytes: &[u8]) -> Result<(), TestCaseError> {
    let (decoded, used) = allocated_by(|| Message::decode(bytes));
    prop_assert!(used <= decode_budget(bytes.len()), "{} input bytes allocated {used} bytes", bytes.len());
    if let Ok(msg) = decoded {
        if let Ok(again) = msg.encode() {
            prop_assert!(again.len() <= bytes.len());
        }
    }
    Ok(())
}

fn check_value_input(bytes: &[u8]) -> Result<(), TestCaseError> {
    let (decoded, used) = allocated_by(|| wire_decode(bytes));
    prop_assert!(used <= decode_budget(bytes.len()), "{} input bytes allocated {used} bytes", bytes.len());
    if let Ok((value, consumed)) = decoded {
        // A decoded `Ref` only encodes inside a message with its reference table.
        if let Ok(again) = postcard::to_allocvec(&wire::Wire(&value)) {
            prop_assert!(again.len() <= consumed);
        }
    }
    Ok(())
}

/// A dynamic result is read by a hand-written reader (`Message::decode`'s fast path); it must
/// agree with serde's derived decoder on any bytes: the same message, or an error from both.
fn check_fast_path(value_bytes: &[u8]) -> Result<(), TestCaseError> {
    // `Return` (1), id 9, no references, `Ok` (0), `Dynamic` (1), then the value; and the same
    // with a table of one reference (`Mine`, 16 bytes of id).
    let one_ref = [&[1u8, 9, 1, 0][..], &[7; 16], &[0, 1]].concat();
    for head in [&[1u8, 9, 0, 0, 1][..], &one_ref] {
        check_fast_frame(&[head, value_bytes].concat())?;
    }
    Ok(())
}

fn check_fast_frame(frame: &[u8]) -> Result<(), TestCaseError> {
    let fast = Message::decode(frame);
    let derived = match postcard::take_from_bytes::<Message>(frame) {
        Ok((msg, [])) => Ok(msg),
        Ok(_) => Err(postcard::Error::DeserializeBadEncoding),
        Err(e) => Err(e),
    };
    match (&fast, &derived) {
        (Ok(a), Ok(b)) => prop_assert_eq!(format!("{a:?}"), format!("{b:?}")),
        (Err(_), Err(_)) => {}
        _ => prop_assert!(false, "{frame:?}: fast {fast:?}, derived {derived:?}"),
    }
    Ok(())
}

proptest! {
    #![proptest_config(config(512))]

    /// Random bytes, mostly wire tags and small lengths: the fast reader of dynamic results
    /// and serde's decoder agree.
    #[test]
    fn the_fast_reader_agrees_with_serde_on_random_bytes(
        bytes in vec(prop_oneof![3 => 0u8..16, 1 => any::<u8>()], 0..64)
    ) {
        check_fast_path(&bytes)?;
    }

    /// Mangled and intact valid values: they agree too.
    #[test]
    fn the_fast_reader_agrees_with_serde_on_values(bytes in value().prop_flat_map(|v| {
        let intact = wire_bytes(&v);
        prop_oneof![Just(intact.clone()), mangled(intact)]
    })) {
        check_fast_path(&bytes)?;
    }

    /// Calls and returns are written and read by hand in their common shape; both agree with
    /// serde's derived code on those messages and on any other.
    #[test]
    fn the_hand_written_codec_writes_and_reads_what_serde_does(
        msg in prop_oneof![a_call_without_refs(), a_typed_return(), a_message()]
    ) {
        let bytes = msg.encode().unwrap();
        prop_assert_eq!(&bytes[..], &postcard::to_allocvec(&msg).unwrap()[..]);
        check_fast_frame(&bytes)?;
    }

    /// Near misses of those shapes (a field cut, a byte changed, bytes added): the same
    /// message or an error from both decoders.
    #[test]
    fn the_hand_written_decoder_agrees_with_serde_on_mangled_messages(
        bytes in prop_oneof![a_call_without_refs(), a_typed_return()]
            .prop_flat_map(|m| mangled(postcard::to_allocvec(&m).unwrap()))
    ) {
        check_fast_frame(&bytes)?;
    }

    /// Random bytes: the message decoder refuses or decodes, never panics, allocates within
    /// budget.
    #[test]
    fn random_bytes_decode_as_a_message_or_an_error(bytes in vec(any::<u8>(), 0..256)) {
        let _one = measuring();
        check_message_input(&bytes)?;
    }

    /// Mangled valid messages (reaching deep into the decoder): the same.
    #[test]
    fn mangled_messages_decode_as_a_message_or_an_error(
        bytes in a_message().prop_flat_map(|m| mangled(m.encode().unwrap().to_vec()))
    ) {
        let _one = measuring();
        check_message_input(&bytes)?;
    }

    /// Random bytes: the `Value` decoder refuses or decodes, never panics, allocates within
    /// budget.
    #[test]
    fn random_bytes_decode_as_a_value_or_an_error(bytes in vec(any::<u8>(), 0..256)) {
        let _one = measuring();
        check_value_input(&bytes)?;
    }

    /// Mangled valid values: the same.
    #[test]
    fn mangled_values_decode_as_a_value_or_an_error(bytes in value().prop_flat_map(|v| mangled(wire_bytes(&v)))) {
        let _one = measuring();
        check_value_input(&bytes)?;
    }
}

/// The worst case for preallocation: containers nested to the depth limit, each announcing
/// 4096 elements, followed by enough bytes for postcard to believe each claim (it ignores a
/// claim longer than the rest of the input). A few KiB must not make the decoder allocate
/// megabytes at every level.
#[test]
fn nested_length_claims_stay_within_budget() {
    let _one = measuring();
    let claim = [0x80, 0x20]; // 4096
    for (name, tag, inner_prefix) in
        [("seq", 11u8, &[][..]), ("map", 12u8, &[][..]), ("option-seq", 11, &[10u8, 1][..])]
    {
        let mut bytes = Vec::new();
        for _ in 0..wire::MAX_DEPTH {
            bytes.extend_from_slice(inner_prefix);
            bytes.push(tag);
            bytes.extend_from_slice(&claim);
        }
        bytes.extend_from_slice(&[0xff; 4096]);
        let (decoded, used) = allocated_by(|| wire_decode(&bytes));
        assert!(decoded.is_err(), "{name}: 0xff is no tag");
        assert!(used <= decode_budget(bytes.len()), "{name}: {} input bytes allocated {used} bytes", bytes.len());
        // Through a message: positional arguments of a call.
        let mut frame = vec![0, 1, 0, 1, b'c', 1, b'm', 0, 1, 1];
        frame.extend_from_slice(&bytes);
        let (decoded, used) = allocated_by(|| Message::decode(&frame));
        assert!(decoded.is_err());
        assert!(used <= decode_budget(frame.len()), "{name} in a call: {} bytes allocated {used}", frame.len());
    }
}

// ---------------------------------------------------------------------------------------------
// Round trips
// ---------------------------------------------------------------------------------------------

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
struct Point {
    x: f64,
    y: f64,
    label: Option<String>,
    tags: Vec<String>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
enum Shape {
    Empty,
    Circle(f64),
    Rect(f64, f64),
    Polygon { points: Vec<Point> },
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
struct Record {
    id: u64,
    delta: i32,
    wide: (i128, u128),
    name: String,
    initial: char,
    #[serde(with = "serde_bytes")]
    blob: Vec<u8>,
    counts: HashMap<String, Vec<i16>>,
    shapes: Vec<Shape>,
    parent: Option<Box<Record>>,
    flag: bool,
    nothing: (),
}

/// Finite floats only: the typed structs derive `PartialEq`, under which NaN is not itself.
fn float() -> impl Strategy<Value = f64> {
    prop_oneof![any::<f64>().prop_filter("finite", |f| f.is_finite()), Just(0.0), Just(-0.0)]
}

fn point() -> impl Strategy<Value = Point> {
    (float(), float(), proptest::option::of(".{0,6}"), vec(".{0,4}", 0..3)).prop_map(|(x, y, label, tags)| Point {
        x,
        y,
        label,
        tags,
    })
}

fn shape() -> impl Strategy<Value = Shape> {
    prop_oneof![
        Just(Shape::Empty),
        float().prop_map(Shape::Circle),
        (float(), float()).prop_map(|(w, h)| Shape::Rect(w, h)),
        vec(point(), 0..3).prop_map(|points| Shape::Polygon { points }),
    ]
}

/// A record without a parent.
fn flat_record() -> impl Strategy<Value = Record> {
    (
        any::<u64>(),
        any::<i32>(),
        any::<(i128, u128)>(),
        ".{0,10}",
        any::<char>(),
        vec(any::<u8>(), 0..20),
        proptest::collection::hash_map(".{0,4}", vec(any::<i16>(), 0..3), 0..3),
        vec(shape(), 0..3),
        any::<bool>(),
    )
        .prop_map(|(id, delta, wide, name, initial, blob, counts, shapes, flag)| Record {
            id,
            delta,
            wide,
            name,
            initial,
            blob,
            counts,
            shapes,
            parent: None,
            flag,
            nothing: (),
        })
}

/// Records with up to two ancestors.
fn record() -> impl Strategy<Value = Record> {
    flat_record().prop_recursive(2, 4, 1, |inner| {
        (inner, flat_record()).prop_map(|(parent, mut r)| {
            r.parent = Some(Box::new(parent));
            r
        })
    })
}

proptest! {
    #![proptest_config(config(256))]

    /// Any `Value` tree encodes in the wire form and decodes to itself, using every byte.
    #[test]
    fn values_round_trip_through_the_wire_form(v in value()) {
        let _one = measuring();
        let bytes = wire_bytes(&v);
        let (back, used) = wire_decode(&bytes).expect("own encoding decodes");
        prop_assert!(same(&back, &v), "{v:?} came back as {back:?}");
        prop_assert_eq!(used, bytes.len());
    }

    /// Any message encodes and decodes to itself, whole or in shared parts.
    #[test]
    fn messages_round_trip(msg in a_message()) {
        let _one = measuring();
        let bytes = msg.encode().unwrap();
        let back = Message::decode_frame(bytes.clone()).expect("own encoding decodes");
        // Debug rather than PartialEq: a NaN float in a value is not equal to itself.
        prop_assert_eq!(format!("{back:?}"), format!("{msg:?}"));
        match msg.encode_shared().unwrap() {
            message::Encoded::Whole(whole) => prop_assert_eq!(whole, bytes),
            message::Encoded::Parts(parts) => prop_assert_eq!(parts.concat(), bytes.to_vec()),
        }
    }

    /// A server's dynamic result, written straight into its wire form, travels in a `Return`
    /// written by hand: the bytes postcard writes for the same result as a `Value`, and read
    /// back by both decoders alike.
    #[test]
    fn wire_results_are_written_as_their_dynamic_values(id in any::<u64>(), r in record()) {
        let _one = measuring();
        let (wire, refs) = wire::to_wire(&r).unwrap();
        prop_assert!(refs.is_empty());
        let dynamic = Message::Return { id, refs: Vec::new(), outcome: Outcome::Ok(Payload::Dynamic(to_value(&r).unwrap())) };
        let written = Message::Return { id, refs: Vec::new(), outcome: Outcome::Ok(Payload::Wire(wire)) };
        let bytes = written.encode().unwrap();
        prop_assert_eq!(&bytes[..], &postcard::to_allocvec(&dynamic).unwrap()[..]);
        check_fast_frame(&bytes)?;
    }

    /// Typed data round-trips through postcard (as typed arguments and results travel),
    /// through `Value` (as dynamic callers see it), and through `Value`'s wire form.
    #[test]
    fn typed_data_round_trips(r in record()) {
        let _one = measuring();
        let bytes = message::to_bytes(&r).unwrap();
        prop_assert_eq!(&bytes[..], &postcard::to_allocvec(&r).unwrap()[..]);
        prop_assert_eq!(&postcard::from_bytes::<Record>(&bytes).unwrap(), &r);
        let v = to_value(&r).unwrap();
        prop_assert_eq!(&from_value::<Record>(v.clone()).unwrap(), &r);
        let (wired, _) = wire_decode(&wire_bytes(&v)).unwrap();
        prop_assert_eq!(&from_value::<Record>(wired).unwrap(), &r);
        // What a server answering a dynamic caller writes, without the `Value` tree.
        let (direct, _) = wire::to_wire(&r).unwrap();
        prop_assert_eq!(&direct.bytes()[..], &wire_bytes(&v)[..]);
    }

    /// Typed and dynamic arguments decode as the tuple a method takes.
    #[test]
    fn argument_tuples_round_trip(s in shape(), p in vec(point(), 0..3), n in any::<Option<u32>>(), t in ".{0,8}") {
        let _one = measuring();
        let params = ["shape", "points", "n", "text"];
        let tuple = (s, p, n, t);
        let typed = message::to_bytes(&tuple).unwrap();
        type Tuple = (Shape, Vec<Point>, Option<u32>, String);
        prop_assert_eq!(&Tuple::from_typed(&typed, &params, "m").unwrap(), &tuple);
        let values = vec![
            Some(to_value(&tuple.0).unwrap()),
            Some(to_value(&tuple.1).unwrap()),
            Some(to_value(&tuple.2).unwrap()),
            Some(to_value(&tuple.3).unwrap()),
        ];
        prop_assert_eq!(&Tuple::from_values(values, &params, "m").unwrap(), &tuple);
        // A truncated typed encoding is an error naming a parameter, not a panic.
        if !typed.is_empty() {
            let fault = Tuple::from_typed(&typed[..typed.len() - 1], &params, "m").unwrap_err();
            prop_assert!(fault.message.contains("bad arguments for `m`"), "{}", fault.message);
        }
    }
}
