use super::*;

fn s(v: &str) -> Value {
    Value::String(v.into())
}

/// Every element of a sequence and every entry of a map has the size of the largest
/// variant: a `String`'s or a 128-bit integer's (a reference, one pointer, is not larger).
#[test]
fn a_value_is_no_larger_than_its_strings_and_wide_integers() {
    assert_eq!(size_of::<crate::DynObject>(), size_of::<usize>());
    assert!(size_of::<Value>() <= 48, "a Value takes {} bytes", size_of::<Value>());
}

#[test]
fn from_impls() {
    assert_eq!(Value::from(true), Value::Bool(true));
    assert_eq!(Value::from(-1i8), Value::Int(-1));
    assert_eq!(Value::from(-1i16), Value::Int(-1));
    assert_eq!(Value::from(-1i32), Value::Int(-1));
    assert_eq!(Value::from(-1i64), Value::Int(-1));
    assert_eq!(Value::from(-1isize), Value::Int(-1));
    assert_eq!(Value::from(1u8), Value::UInt(1));
    assert_eq!(Value::from(1u16), Value::UInt(1));
    assert_eq!(Value::from(1u32), Value::UInt(1));
    assert_eq!(Value::from(1u64), Value::UInt(1));
    assert_eq!(Value::from(1usize), Value::UInt(1));
    assert_eq!(Value::from(1i128), Value::Int128(1));
    assert_eq!(Value::from(1u128), Value::UInt128(1));
    assert_eq!(Value::from(0.5f32), Value::Float(0.5));
    assert_eq!(Value::from(0.5f64), Value::Float(0.5));
    assert_eq!(Value::from('c'), Value::Char('c'));
    assert_eq!(Value::from("s"), s("s"));
    assert_eq!(Value::from("s".to_owned()), s("s"));
    assert_eq!(Value::from(vec![Value::Unit]), Value::Seq(vec![Value::Unit]));
    assert_eq!(Value::from(None::<u8>), Value::Option(None));
    assert_eq!(Value::from(Some("x")), Value::Option(Some(Box::new(s("x")))));
    // Agrees with `to_value`.
    assert_eq!(Value::from(-7i16), to_value(&-7i16).unwrap());
    assert_eq!(Value::from(Some(7u32)), to_value(&Some(7u32)).unwrap());
}

#[test]
fn accessors() {
    assert_eq!(Value::UInt(5).as_i64(), Some(5));
    assert_eq!(Value::UInt(u64::MAX).as_i64(), None);
    assert_eq!(Value::Int128(-5).as_i64(), Some(-5));
    assert_eq!(Value::UInt128(5).as_i64(), Some(5));
    assert_eq!(Value::Int(-1).as_u64(), None);
    assert_eq!(Value::Int(1).as_u64(), Some(1));
    assert_eq!(Value::UInt128(u128::MAX).as_u64(), None);
    assert_eq!(s("1").as_i64(), None);
    assert_eq!(Value::Int(-2).as_f64(), Some(-2.0));
    assert_eq!(Value::Float(0.5).as_f64(), Some(0.5));
    assert_eq!(Value::Bool(true).as_f64(), None);
    assert_eq!(s("a").as_str(), Some("a"));
    assert_eq!(Value::Char('a').as_str(), None);
    assert_eq!(Value::Bool(false).as_bool(), Some(false));
    assert_eq!(Value::Bytes(vec![1]).as_bytes(), Some(&[1u8][..]));
    assert_eq!(Value::Seq(vec![]).as_seq(), Some(&[][..]));
    assert_eq!(Value::Map(vec![]).as_map(), Some(&[][..]));
    assert_eq!(Value::Unit.as_seq(), None);
    assert!(Value::Unit.is_unit());
    assert!(!Value::Option(None).is_unit());
    let m = Value::Map(vec![(Value::UInt(1), Value::Bool(false)), (s("a"), Value::Int(1)), (s("a"), Value::Int(2))]);
    assert_eq!(m.get("a"), Some(&Value::Int(1)));
    assert_eq!(m.get("1"), None);
    assert_eq!(Value::Seq(vec![]).get("a"), None);
}

#[test]
fn kinds() {
    let all = [
        (Value::Unit, "unit"),
        (Value::Bool(true), "bool"),
        (Value::Int(0), "int"),
        (Value::UInt(0), "uint"),
        (Value::Int128(0), "int128"),
        (Value::UInt128(0), "uint128"),
        (Value::Float(0.0), "float"),
        (Value::Char('a'), "char"),
        (s(""), "string"),
        (Value::Bytes(vec![]), "bytes"),
        (Value::Option(None), "option"),
        (Value::Seq(vec![]), "seq"),
        (Value::Map(vec![]), "map"),
        (Value::Variant("A".into(), Box::new(Value::Unit)), "variant"),
    ];
    for (v, kind) in all {
        assert_eq!(v.kind(), kind);
    }
}

#[test]
fn display() {
    let var = |n: &str, p| Value::Variant(n.into(), Box::new(p));
    let cases = [
        (Value::Unit, "()"),
        (Value::Bool(true), "true"),
        (Value::Int(-3), "-3"),
        (Value::UInt(3), "3"),
        (Value::Int128(i128::MIN), "-170141183460469231731687303715884105728"),
        (Value::UInt128(u128::MAX), "340282366920938463463374607431768211455"),
        (Value::Float(1.0), "1.0"),
        (Value::Float(-0.25), "-0.25"),
        (Value::Float(1e100), "1e100"),
        (Value::Float(f64::NAN), "NaN"),
        (Value::Char('c'), "'c'"),
        (Value::Char('\''), "'\\''"),
        (s("a\"b\\c\nd\u{1}é"), r#""a\"b\\c\nd\u0001é""#),
        (Value::Bytes(b"a\"\\\n\x00\xff".to_vec()), r#"b"a\"\\\n\x00\xff""#),
        (Value::Option(None), "null"),
        (Value::Option(Some(Box::new(Value::Int(1)))), "1"),
        (Value::Seq(vec![]), "[]"),
        (Value::Seq(vec![Value::Int(1), s("x")]), r#"[1, "x"]"#),
        (Value::Map(vec![]), "{}"),
        (Value::Map(vec![(s("k"), Value::Unit), (Value::UInt(2), Value::Bool(false))]), r#"{"k": (), 2: false}"#),
        (var("None", Value::Unit), "None"),
        (var("Some", Value::Int(1)), "Some(1)"),
        (var("P", Value::Map(vec![(s("x"), Value::Float(2.0))])), r#"P({"x": 2.0})"#),
    ];
    for (v, text) in cases {
        assert_eq!(v.to_string(), text, "{v:?}");
    }
}
