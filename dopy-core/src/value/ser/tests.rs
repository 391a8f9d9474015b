use std::collections::BTreeMap;

use serde::Serialize;

use super::*;

fn s(v: &str) -> Value {
    Value::String(v.into())
}

#[derive(Serialize)]
struct Unit;

#[derive(Serialize)]
struct Newtype(u16);

#[derive(Serialize)]
struct Pair(i8, bool);

#[derive(Serialize)]
struct Point {
    y: i32,
    x: i32,
}

#[derive(Serialize)]
enum E {
    A,
    B(u8),
    C(u8, char),
    D { f: f32 },
}

#[test]
fn primitives() {
    assert_eq!(to_value(&true).unwrap(), Value::Bool(true));
    assert_eq!(to_value(&-5i8).unwrap(), Value::Int(-5));
    assert_eq!(to_value(&-5i16).unwrap(), Value::Int(-5));
    assert_eq!(to_value(&-5i32).unwrap(), Value::Int(-5));
    assert_eq!(to_value(&i64::MIN).unwrap(), Value::Int(i64::MIN));
    assert_eq!(to_value(&5u8).unwrap(), Value::UInt(5));
    assert_eq!(to_value(&5u16).unwrap(), Value::UInt(5));
    assert_eq!(to_value(&5u32).unwrap(), Value::UInt(5));
    assert_eq!(to_value(&u64::MAX).unwrap(), Value::UInt(u64::MAX));
    assert_eq!(to_value(&1i128).unwrap(), Value::Int128(1));
    assert_eq!(to_value(&1u128).unwrap(), Value::UInt128(1));
    assert_eq!(to_value(&1.5f32).unwrap(), Value::Float(1.5));
    assert_eq!(to_value(&1.5f64).unwrap(), Value::Float(1.5));
    assert_eq!(to_value(&'x').unwrap(), Value::Char('x'));
    assert_eq!(to_value("hi").unwrap(), s("hi"));
    assert_eq!(to_value(&serde_bytes::Bytes::new(b"ab")).unwrap(), Value::Bytes(b"ab".to_vec()));
    assert_eq!(to_value(&None::<u8>).unwrap(), Value::Option(None));
    assert_eq!(to_value(&Some(1u8)).unwrap(), Value::Option(Some(Box::new(Value::UInt(1)))));
    assert_eq!(to_value(&()).unwrap(), Value::Unit);
}

#[test]
fn compounds() {
    assert_eq!(to_value(&Unit).unwrap(), Value::Unit);
    assert_eq!(to_value(&Newtype(7)).unwrap(), Value::UInt(7));
    assert_eq!(to_value(&Pair(-1, true)).unwrap(), Value::Seq(vec![Value::Int(-1), Value::Bool(true)]));
    assert_eq!(to_value(&(1u8, "a")).unwrap(), Value::Seq(vec![Value::UInt(1), s("a")]));
    assert_eq!(
        to_value(&Point { y: 1, x: 2 }).unwrap(),
        Value::Map(vec![(s("y"), Value::Int(1)), (s("x"), Value::Int(2))])
    );
    let map: BTreeMap<u8, bool> = [(1, true), (2, false)].into();
    assert_eq!(
        to_value(&map).unwrap(),
        Value::Map(vec![(Value::UInt(1), Value::Bool(true)), (Value::UInt(2), Value::Bool(false)),])
    );
}

#[test]
fn variants() {
    let var = |name: &str, payload| Value::Variant(name.into(), Box::new(payload));
    assert_eq!(to_value(&E::A).unwrap(), var("A", Value::Unit));
    assert_eq!(to_value(&E::B(1)).unwrap(), var("B", Value::UInt(1)));
    assert_eq!(to_value(&E::C(1, 'c')).unwrap(), var("C", Value::Seq(vec![Value::UInt(1), Value::Char('c')])));
    assert_eq!(to_value(&E::D { f: 0.5 }).unwrap(), var("D", Value::Map(vec![(s("f"), Value::Float(0.5))])));
}

#[test]
fn human_readable() {
    let ip: std::net::IpAddr = [127, 0, 0, 1].into();
    assert_eq!(to_value(&ip).unwrap(), s("127.0.0.1"));
}

#[test]
fn data_model_form_matches_json() {
    #[derive(Serialize)]
    struct S {
        a: Vec<Option<u8>>,
        b: (i64, f64, char),
        c: BTreeMap<String, E>,
        d: Option<String>,
        e: (),
        f: u128,
    }
    let x = S {
        a: vec![Some(1), None],
        b: (-3, 2.5, 'z'),
        c: [
            ("a".to_owned(), E::A),
            ("b".to_owned(), E::B(2)),
            ("c".to_owned(), E::C(3, 'q')),
            ("d".to_owned(), E::D { f: 1.0 }),
        ]
        .into(),
        d: None,
        e: (),
        f: u128::MAX,
    };
    let v = to_value(&x).unwrap();
    assert_eq!(serde_json::to_string(&v).unwrap(), serde_json::to_string(&x).unwrap());
    let list = vec![Some("x"), None];
    assert_eq!(serde_json::to_string(&to_value(&list).unwrap()).unwrap(), serde_json::to_string(&list).unwrap());
}
