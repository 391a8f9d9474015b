use std::collections::{BTreeMap, HashMap};
use std::fmt;

use serde::{Deserialize, Serialize};
use serde_bytes::ByteBuf;

use super::super::to_value;
use super::*;

fn s(v: &str) -> Value {
    Value::String(v.into())
}

fn map(entries: Vec<(&str, Value)>) -> Value {
    Value::Map(entries.into_iter().map(|(k, v)| (s(k), v)).collect())
}

fn var(name: &str, payload: Value) -> Value {
    Value::Variant(name.into(), Box::new(payload))
}

#[track_caller]
fn round_trip<T>(x: &T)
where
    T: Serialize + DeserializeOwned + PartialEq + fmt::Debug,
{
    let v = to_value(x).unwrap();
    let back: T = from_value(v.clone()).unwrap_or_else(|e| panic!("{v:?}: {e}"));
    assert_eq!(&back, x);
}

#[track_caller]
fn err<T: DeserializeOwned + fmt::Debug>(v: Value) -> String {
    from_value::<T>(v).unwrap_err().to_string()
}

#[derive(Serialize, Deserialize, PartialEq, Debug)]
struct UnitStruct;

#[derive(Serialize, Deserialize, PartialEq, Debug)]
struct Newtype(String);

#[derive(Serialize, Deserialize, PartialEq, Debug)]
struct TupleStruct(u8, Option<i16>);

#[derive(Serialize, Deserialize, PartialEq, Debug, Default)]
struct Point {
    x: i32,
    y: i32,
    #[serde(default)]
    label: Option<String>,
}

#[derive(Serialize, Deserialize, PartialEq, Debug)]
enum E {
    A,
    B(u8),
    C(u8, char),
    D { f: f32, g: Vec<E> },
}

type Nested = Vec<HashMap<String, Option<(u8, i64, Vec<bool>)>>>;

#[derive(Serialize, Deserialize, PartialEq, Debug)]
struct Everything {
    unit: (),
    unit_struct: UnitStruct,
    newtype: Newtype,
    tuple_struct: TupleStruct,
    point: Point,
    enums: Vec<E>,
    nested: Nested,
    by_int: BTreeMap<u32, Vec<Option<f64>>>,
    big: (i128, u128),
    small: (i8, u16, f32),
    chars: (char, char),
    bytes: ByteBuf,
    none: Option<Box<Everything>>,
}

#[test]
fn round_trips() {
    round_trip(&());
    round_trip(&UnitStruct);
    round_trip(&Newtype("n".into()));
    round_trip(&TupleStruct(1, Some(-1)));
    round_trip(&Point::default());
    round_trip(&E::A);
    round_trip(&E::B(9));
    round_trip(&E::C(0, 'é'));
    round_trip(&E::D { f: 0.1, g: vec![E::A, E::C(1, '\0')] });
    round_trip(&i128::MIN);
    round_trip(&u128::MAX);
    round_trip(&f32::MIN_POSITIVE);
    round_trip(&ByteBuf::from(vec![0, 255]));
    round_trip(&"".to_owned());
    let x = Everything {
        unit: (),
        unit_struct: UnitStruct,
        newtype: Newtype("x".into()),
        tuple_struct: TupleStruct(255, None),
        point: Point { x: -1, y: 1, label: Some("p".into()) },
        enums: vec![E::A, E::B(2), E::C(3, 'c'), E::D { f: -1.5, g: vec![E::A] }],
        nested: vec![
            HashMap::new(),
            [("a".to_owned(), None), ("b".to_owned(), Some((1, -1, vec![true, false])))].into(),
        ],
        by_int: [(1, vec![Some(0.5), None]), (7, vec![])].into(),
        big: (i128::MIN, u128::MAX),
        small: (i8::MIN, u16::MAX, 0.25),
        chars: ('a', '🦀'),
        bytes: ByteBuf::from(b"bytes".to_vec()),
        none: None,
    };
    round_trip(&x);
}

#[test]
fn value_is_its_own_value() {
    let v = map(vec![
        ("a", Value::Int128(-1)),
        ("b", var("V", Value::Seq(vec![Value::Unit]))),
        ("c", Value::Option(Some(Box::new(Value::Bytes(vec![1]))))),
        ("d", Value::Char('c')),
    ]);
    assert_eq!(from_value::<Value>(v.clone()).unwrap(), v);
}

#[test]
fn struct_from_map_or_seq() {
    let p: Point =
        from_value(map(vec![("y", Value::UInt(2)), ("unknown", Value::Bool(true)), ("x", Value::Int(1))])).unwrap();
    assert_eq!(p, Point { x: 1, y: 2, label: None });
    let p: Point = from_value(Value::Seq(vec![Value::Int(1), Value::Int(2), Value::Option(None)])).unwrap();
    assert_eq!(p.y, 2);
    assert_eq!(err::<Point>(map(vec![("x", Value::Int(1))])), "missing field `y`");
    assert_eq!(err::<Point>(Value::Int(1)), "invalid type: integer `1`, expected struct Point");
}

#[test]
fn enum_forms() {
    assert_eq!(from_value::<E>(s("A")).unwrap(), E::A);
    assert_eq!(from_value::<E>(var("A", Value::Unit)).unwrap(), E::A);
    assert_eq!(from_value::<E>(map(vec![("A", Value::Unit)])).unwrap(), E::A);
    assert_eq!(from_value::<E>(map(vec![("B", Value::Int(4))])).unwrap(), E::B(4));
    assert_eq!(from_value::<E>(map(vec![("C", Value::Seq(vec![Value::UInt(1), s("x")]))])).unwrap(), E::C(1, 'x'));
    assert_eq!(
        from_value::<E>(var("D", map(vec![("f", Value::Int(2)), ("g", Value::Seq(vec![]))]))).unwrap(),
        E::D { f: 2.0, g: vec![] }
    );
    assert_eq!(err::<E>(s("Z")), "unknown variant `Z`, expected one of `A`, `B`, `C`, `D`");
    assert_eq!(err::<E>(s("B")), "invalid type: unit variant, expected newtype variant");
    assert_eq!(err::<E>(var("A", Value::Int(1))), "invalid type: integer `1`, expected unit variant");
    assert_eq!(err::<E>(Value::Map(vec![])), "invalid type: map, expected enum E");
}

#[test]
fn integers_coerce() {
    assert_eq!(from_value::<i32>(Value::UInt(7)).unwrap(), 7);
    assert_eq!(from_value::<u8>(Value::Int(7)).unwrap(), 7);
    assert_eq!(from_value::<u16>(Value::Int128(7)).unwrap(), 7);
    assert_eq!(from_value::<i64>(Value::UInt128(7)).unwrap(), 7);
    assert_eq!(from_value::<i128>(Value::Int(-7)).unwrap(), -7);
    assert_eq!(from_value::<u128>(Value::UInt(7)).unwrap(), 7);
    assert_eq!(from_value::<f64>(Value::Int(-2)).unwrap(), -2.0);
    assert_eq!(from_value::<f32>(Value::UInt(3)).unwrap(), 3.0);
    let e = err::<u8>(Value::UInt(300));
    assert_eq!(e, "invalid value: integer `300`, expected u8");
    assert!(e.contains("300"));
    assert_eq!(err::<u32>(Value::Int(-1)), "invalid value: integer `-1`, expected u32");
    assert!(from_value::<u64>(Value::UInt128(u128::MAX)).is_err());
    assert!(from_value::<i64>(Value::Int128(i128::MIN)).is_err());
    assert_eq!(err::<i64>(s("x")), "invalid type: string \"x\", expected i64");
    assert_eq!(err::<f64>(Value::Bool(true)), "invalid type: boolean `true`, expected f64");
}

#[test]
fn options() {
    assert_eq!(from_value::<Option<u8>>(Value::Unit).unwrap(), None);
    assert_eq!(from_value::<Option<u8>>(Value::Option(None)).unwrap(), None);
    assert_eq!(from_value::<Option<u8>>(Value::UInt(1)).unwrap(), Some(1));
    assert_eq!(from_value::<Option<u8>>(Value::Option(Some(Box::new(Value::UInt(1))))).unwrap(), Some(1));
    from_value::<()>(Value::Option(None)).unwrap();
    assert_eq!(err::<()>(Value::Bool(false)), "invalid type: boolean `false`, expected unit");
}

#[test]
fn bytes_and_chars() {
    let b = |v: Value| from_value::<ByteBuf>(v).map(ByteBuf::into_vec);
    assert_eq!(b(Value::Bytes(vec![1, 2])).unwrap(), [1, 2]);
    assert_eq!(b(s("hé")).unwrap(), "hé".as_bytes());
    assert_eq!(b(Value::Seq(vec![Value::UInt(0), Value::Int(255)])).unwrap(), [0, 255]);
    assert_eq!(
        b(Value::Seq(vec![Value::UInt(256)])).unwrap_err().to_string(),
        "invalid value: integer `256`, expected u8"
    );
    assert_eq!(from_value::<Vec<u8>>(Value::Bytes(vec![3])).unwrap(), [3]);
    assert_eq!(from_value::<char>(s("x")).unwrap(), 'x');
    assert_eq!(from_value::<char>(Value::Char('y')).unwrap(), 'y');
    assert_eq!(err::<char>(s("xy")), "invalid value: string \"xy\", expected a character");
    assert_eq!(from_value::<String>(Value::Char('y')).unwrap(), "y");
}

#[test]
fn sequences() {
    assert_eq!(err::<(u8, u8)>(Value::Seq(vec![Value::UInt(1)])), "invalid length 1, expected a tuple of size 2");
    assert_eq!(
        err::<(u8,)>(Value::Seq(vec![Value::UInt(1), Value::UInt(2)])),
        "invalid length 2, expected fewer elements in sequence"
    );
    assert_eq!(err::<Vec<u8>>(s("ab")), "invalid type: string \"ab\", expected a sequence");
}

#[test]
fn human_readable() {
    let ip: std::net::IpAddr = from_value(s("::1")).unwrap();
    assert_eq!(ip, std::net::Ipv6Addr::LOCALHOST);
}

#[test]
fn map_keys_from_strings() {
    let m: HashMap<u32, bool> =
        from_value(Value::Map(vec![(s("1"), Value::Bool(true)), (Value::UInt(2), Value::Bool(false))])).unwrap();
    assert_eq!(m, [(1, true), (2, false)].into());
    assert_eq!(err::<HashMap<u8, ()>>(map(vec![("x", Value::Unit)])), "invalid value: string \"x\", expected u8");
}

#[test]
fn json_to_value_to_type() {
    let v: Value =
        serde_json::from_str(r#"{"x": 1, "y": -2, "label": "l", "extra": [1.5, null, {"k": true}]}"#).unwrap();
    assert_eq!(v.get("y"), Some(&Value::Int(-2)));
    let p: Point = from_value(v).unwrap();
    assert_eq!(p, Point { x: 1, y: -2, label: Some("l".into()) });
    let v: Value = serde_json::from_str(r#"[{"B": 1}, "A", {"C": [2, "c"]}]"#).unwrap();
    let e: Vec<E> = from_value(v).unwrap();
    assert_eq!(e, [E::B(1), E::A, E::C(2, 'c')]);
    let v: Value = serde_json::from_str(r#"{"a":[1,2]}"#).unwrap();
    assert_eq!(v, map(vec![("a", Value::Seq(vec![Value::UInt(1), Value::UInt(2)]))]));
}

#[test]
fn unexpected_describes_values() {
    assert_eq!(unexpected(&Value::Int128(i128::MAX)), Unexpected::Other("128-bit integer"));
    assert_eq!(unexpected(&var("A", Value::Unit)), Unexpected::UnitVariant);
    assert_eq!(unexpected(&var("A", Value::Int(1))), Unexpected::NewtypeVariant);
    assert_eq!(unexpected(&s("a")), Unexpected::Str("a"));
}
