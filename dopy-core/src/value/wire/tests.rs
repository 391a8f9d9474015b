use serde::{Deserialize, Serialize};

use super::tag::{Tag, TAGS, VARIANTS};
use super::*;
use crate::value::{from_value, to_value, Value};

fn s(v: &str) -> Value {
    Value::String(v.into())
}

fn some(v: Value) -> Value {
    Value::Option(Some(Box::new(v)))
}

fn var(name: &str, payload: Value) -> Value {
    Value::Variant(name.into(), Box::new(payload))
}

fn encode(v: &Value) -> Vec<u8> {
    // References (decoded as placeholders) need a table to be written.
    crate::value::refs::encoding(Vec::new(), || postcard::to_allocvec(&Wire(v))).0.unwrap()
}

/// Decodes a whole wire value, failing on trailing bytes.
fn decode(bytes: &[u8]) -> Result<Value, postcard::Error> {
    let mut de = postcard::Deserializer::from_bytes(bytes);
    let v = deserialize(&mut de)?;
    match de.finalize()? {
        [] => Ok(v),
        _ => Err(postcard::Error::DeserializeBadEncoding),
    }
}

/// Nests `Unit` in `levels - 1` options: `levels` levels in all.
fn nested(levels: usize) -> Value {
    (1..levels).fold(Value::Unit, |v, _| some(v))
}

/// One value of every variant, some nested.
fn samples() -> Vec<Value> {
    vec![
        Value::Unit,
        Value::Bool(false),
        Value::Bool(true),
        Value::Int(0),
        Value::Int(i64::MIN),
        Value::Int(i64::MAX),
        Value::UInt(u64::MAX),
        Value::Int128(i128::MIN),
        Value::UInt128(u128::MAX),
        Value::Float(-0.0),
        Value::Float(f64::INFINITY),
        Value::Float(1e-300),
        Value::Char('\u{10FFFF}'),
        s(""),
        s("héllo"),
        Value::Bytes(vec![]),
        Value::Bytes((0..=255).collect()),
        Value::Option(None),
        some(some(Value::Int(3))),
        Value::Seq(vec![]),
        Value::Seq(vec![Value::Unit, s("a"), Value::Seq(vec![Value::UInt(1)])]),
        Value::Map(vec![]),
        Value::Map(vec![(s("k"), Value::Float(0.5)), (Value::UInt(1), Value::Map(vec![(Value::Unit, Value::Unit)]))]),
        var("A", Value::Unit),
        var("B", Value::Seq(vec![Value::Int(-1), var("", Value::Bool(true))])),
        var("é", Value::Map(vec![(s("f"), Value::Option(None))])),
        nested(MAX_DEPTH),
    ]
}

#[test]
fn vectors() {
    let cases: Vec<(Value, Vec<u8>)> = vec![
        (Value::Unit, vec![0]),
        (Value::Bool(true), vec![1, 1]),
        (Value::Bool(false), vec![1, 0]),
        (Value::Int(-1), vec![2, 1]),
        (Value::Int(1), vec![2, 2]),
        (Value::Int(64), vec![2, 0x80, 0x01]),
        (Value::Int(i64::MIN), {
            let mut v = vec![2];
            v.extend([0xFF; 9]);
            v.push(0x01);
            v
        }),
        (Value::UInt(300), vec![3, 0xAC, 0x02]),
        (Value::Int128(-1), vec![4, 1]),
        (Value::Int128(i128::MIN), {
            let mut v = vec![4];
            v.extend([0xFF; 18]);
            v.push(0x03);
            v
        }),
        (Value::UInt128(1 << 64), {
            let mut v = vec![5];
            v.extend([0x80; 9]);
            v.push(0x02);
            v
        }),
        (Value::Float(1.0), vec![6, 0, 0, 0, 0, 0, 0, 0xF0, 0x3F]),
        (Value::Float(-0.5), vec![6, 0, 0, 0, 0, 0, 0, 0xE0, 0xBF]),
        (Value::Char('é'), vec![7, 2, 0xC3, 0xA9]),
        (s("hi"), vec![8, 2, b'h', b'i']),
        (Value::Bytes(vec![1, 2, 3]), vec![9, 3, 1, 2, 3]),
        (Value::Option(None), vec![10, 0]),
        (some(Value::Bool(false)), vec![10, 1, 1, 0]),
        (Value::Seq(vec![Value::Unit, Value::Int(1)]), vec![11, 2, 0, 2, 2]),
        (Value::Map(vec![(s("a"), Value::UInt(1)), (Value::Unit, Value::Unit)]), vec![12, 2, 8, 1, b'a', 3, 1, 0, 0]),
        (var("A", Value::Unit), vec![13, 1, b'A', 0]),
        (var("Pt", Value::Seq(vec![Value::Int(-2)])), vec![13, 2, b'P', b't', 11, 1, 2, 3]),
    ];
    for (value, bytes) in cases {
        assert_eq!(encode(&value), bytes, "encoding {value:?}");
        assert_eq!(decode(&bytes).unwrap(), value, "decoding {bytes:?}");
    }
}

#[test]
fn tags_are_consistent() {
    for (i, tag) in TAGS.iter().enumerate() {
        assert_eq!(tag.index() as usize, i);
        assert_eq!(VARIANTS[i], tag.name());
        assert_eq!(Tag::from_index(i as u64), Some(*tag));
        assert_eq!(Tag::from_name(tag.name()), Some(*tag));
    }
    assert_eq!(Tag::from_index(15), None);
    assert_eq!(Tag::from_index(u64::MAX), None);
}

#[test]
fn round_trips() {
    for value in samples() {
        let bytes = encode(&value);
        assert_eq!(decode(&bytes).unwrap(), value);
        // The human-readable path: the wire form through the data model.
        let model = to_value(&Wire(&value)).unwrap();
        assert_eq!(deserialize(model).unwrap(), value);
    }
}

#[test]
fn with_attributes() {
    #[derive(Serialize, Deserialize, PartialEq, Debug)]
    struct Call {
        #[serde(with = "crate::value::wire")]
        target: Value,
        #[serde(with = "crate::value::wire::seq")]
        args: Vec<Value>,
        #[serde(with = "crate::value::wire::named")]
        named: Vec<(String, Value)>,
    }
    let call = Call {
        target: s("obj"),
        args: vec![Value::Int(1), Value::Unit],
        named: vec![("x".to_owned(), Value::Bool(true))],
    };
    let bytes = postcard::to_allocvec(&call).unwrap();
    assert_eq!(bytes, [8, 3, b'o', b'b', b'j', 2, 2, 2, 0, 1, 1, b'x', 1, 1]);
    assert_eq!(postcard::from_bytes::<Call>(&bytes).unwrap(), call);
    // Every element of a sequence is at level 1.
    let deep = Call {
        target: nested(MAX_DEPTH),
        args: vec![nested(MAX_DEPTH)],
        named: vec![(String::new(), nested(MAX_DEPTH))],
    };
    let bytes = postcard::to_allocvec(&deep).unwrap();
    assert_eq!(postcard::from_bytes::<Call>(&bytes).unwrap(), deep);
}

#[test]
fn configured_depth_limit() {
    for n in [1, 5, 200] {
        let (ok, exceeded) = with_max_depth(n, || decode(&encode(&nested(n))));
        assert_eq!(ok.unwrap(), nested(n));
        assert!(!exceeded, "{n} levels");
        let (bytes, _) = with_max_depth(n + 1, || encode(&nested(n + 1)));
        let (refused, exceeded) = with_max_depth(n, || decode(&bytes));
        assert!(refused.is_err() && exceeded, "{} levels", n + 1);
        let (refused, exceeded) = with_max_depth(n, || to_value(&Wire(&nested(n + 1))));
        assert_eq!(refused.unwrap_err().to_string(), format!("value nesting exceeds {n} levels"));
        assert!(exceeded);
    }
    // Outside the scope, the default again; a malformed value is not a nesting error.
    assert_eq!(max_depth(), MAX_DEPTH);
    let (refused, exceeded) = with_max_depth(5, || decode(&[99]));
    assert!(refused.is_err() && !exceeded);
    assert_eq!(with_max_depth(0, max_depth).0, 1);
    assert_eq!(with_max_depth(usize::MAX, max_depth).0, DEPTH_CEILING);
}

/// The ceiling fits in a 2 MiB stack (a tokio worker's), debug build included, every way
/// a value nests.
#[test]
fn depth_ceiling_fits_the_stack() {
    let run = || {
        let deepest: [Value; 4] = [
            nested(DEPTH_CEILING),
            (1..DEPTH_CEILING).fold(Value::Unit, |v, _| Value::Seq(vec![v])),
            (1..DEPTH_CEILING).fold(Value::Unit, |v, _| Value::Map(vec![(Value::Unit, v)])),
            (1..DEPTH_CEILING).fold(Value::Unit, |v, _| var("v", v)),
        ];
        for v in deepest {
            let (back, exceeded) = with_max_depth(DEPTH_CEILING, || decode(&encode(&v)));
            assert_eq!(back.unwrap(), v);
            assert!(!exceeded);
        }
    };
    std::thread::Builder::new().stack_size(2 << 20).spawn(run).unwrap().join().unwrap();
}

#[test]
fn depth_limit() {
    // Exactly MAX_DEPTH levels pass, one more fails on both sides.
    assert_eq!(decode(&encode(&nested(MAX_DEPTH))).unwrap(), nested(MAX_DEPTH));
    let too_deep = nested(MAX_DEPTH + 1);
    assert!(postcard::to_allocvec(&Wire(&too_deep)).is_err());
    assert_eq!(to_value(&Wire(&too_deep)).unwrap_err().to_string(), "value nesting exceeds 128 levels");
    let mut bytes = encode(&nested(MAX_DEPTH));
    bytes.splice(0..0, [10, 1]);
    assert!(decode(&bytes).is_err());

    // 200 nested options.
    let mut bytes = [10, 1].repeat(200);
    bytes.push(0);
    assert!(decode(&bytes).is_err());

    // Far too deep for the stack, were the depth not limited.
    let mut bytes = [11, 1].repeat(1_000_000);
    bytes.push(0);
    assert!(decode(&bytes).is_err());
    let mut bytes = [13, 0].repeat(1_000_000);
    bytes.push(0);
    assert!(decode(&bytes).is_err());

    // The message, through a deserializer that keeps it.
    let model = (0..200).fold(var("Unit", Value::Unit), |v, _| var("Option", some(v)));
    assert_eq!(deserialize(model).unwrap_err().to_string(), "value nesting exceeds 128 levels");
}

#[test]
fn invalid_tags() {
    assert!(decode(&[15]).is_err());
    assert!(decode(&[0xFF, 0xFF, 0xFF, 0xFF, 0x0F]).is_err());
    assert_eq!(
        deserialize(Value::Map(vec![(Value::UInt(15), Value::Unit)])).unwrap_err().to_string(),
        "invalid value: integer `15`, expected a value tag (0 to 14)"
    );
    assert_eq!(
        deserialize(var("Nope", Value::Unit)).unwrap_err().to_string(),
        "unknown variant `Nope`, expected one of `Unit`, `Bool`, `Int`, `UInt`, `Int128`, \
         `UInt128`, `Float`, `Char`, `String`, `Bytes`, `Option`, `Seq`, `Map`, `Variant`, `Ref`"
    );
    // A plain `Value` is not its wire form.
    assert!(from_value::<Value>(s("x")).is_ok());
    assert!(deserialize(s("x")).is_err());
}

#[test]
fn malformed_payloads() {
    // Invalid UTF-8 string and char, bad bool, bad option flag.
    assert!(decode(&[8, 1, 0xFF]).is_err());
    assert!(decode(&[7, 2, b'a', b'b']).is_err());
    assert!(decode(&[1, 2]).is_err());
    assert!(decode(&[10, 2]).is_err());
    // Lengths far beyond the input: an error, no huge allocation.
    assert!(decode(&[11, 0xFF, 0xFF, 0xFF, 0xFF, 0x0F, 0]).is_err());
    assert!(decode(&[12, 0xFF, 0xFF, 0xFF, 0xFF, 0x0F]).is_err());
    assert!(decode(&[9, 0xFF, 0xFF, 0xFF, 0xFF, 0x0F, 1]).is_err());
    assert!(decode(&[8, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0x01]).is_err());
    // Overlong varints.
    assert!(decode(&[2, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0x7F]).is_err());
}

#[test]
fn truncations_fail() {
    for value in samples() {
        let bytes = encode(&value);
        for len in 0..bytes.len() {
            assert!(decode(&bytes[..len]).is_err(), "{value:?} cut at {len}");
        }
    }
}

#[test]
fn random_bytes_never_panic() {
    let mut state: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    let mut decoded = 0;
    for round in 0..20_000 {
        let len = usize::try_from(next() % 64).unwrap();
        let bytes: Vec<u8> = (0..len)
            .map(|_| {
                let r = next();
                // Mostly small bytes, so that tags and lengths are often valid.
                if round % 2 == 0 || r % 4 != 0 {
                    (r >> 8) as u8 % 16
                } else {
                    (r >> 8) as u8
                }
            })
            .collect();
        if let Ok(value) = decode(&bytes) {
            decoded += 1;
            assert!(decode(&encode(&value)).is_ok());
        }
    }
    assert!(decoded > 0);

    // Random corruptions of valid encodings.
    for value in samples() {
        let bytes = encode(&value);
        for _ in 0..200 {
            let mut corrupt = bytes.clone();
            let i = usize::try_from(next() % bytes.len() as u64).unwrap();
            corrupt[i] = next() as u8;
            if let Ok(value) = decode(&corrupt) {
                assert!(decode(&encode(&value)).is_ok());
            }
        }
    }
}
