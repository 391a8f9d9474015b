use std::collections::BTreeMap;

use serde::Serialize;

use super::*;
use crate::value::to_value;

/// `to_wire` must write exactly what `to_value` and the wire encoding write.
fn same<T: Serialize + ?Sized>(value: &T) {
    let (direct, refs) = to_wire(value).unwrap();
    assert!(refs.is_empty());
    let tree = to_value(value).unwrap();
    let via = postcard::to_allocvec(&crate::value::wire::Wire(&tree)).unwrap();
    assert_eq!(&direct.bytes()[..], &via[..], "{tree:?}");
    assert_eq!(direct.decode().unwrap(), tree);
}

#[derive(Serialize)]
struct Unit;

#[derive(Serialize)]
struct Newtype(u16);

#[derive(Serialize)]
struct Tuple(i8, String);

#[derive(Serialize)]
struct Row {
    id: u64,
    x: f64,
    name: String,
    tags: Vec<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    note: Option<String>,
}

#[derive(Serialize)]
enum E {
    A,
    B(i32),
    C(u8, u8),
    D { x: i64 },
}

/// A sequence whose `Serialize` announces no length, or a wrong one.
struct Unsized(usize, Option<usize>);

impl Serialize for Unsized {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeSeq;
        let mut seq = s.serialize_seq(self.1)?;
        for i in 0..self.0 {
            seq.serialize_element(&i)?;
        }
        seq.end()
    }
}

#[test]
fn writes_what_to_value_and_the_wire_encoding_write() {
    same(&());
    same(&true);
    same(&[i64::MIN, -1, 0, 1, i64::MAX]);
    same(&(i8::MIN, i16::MAX, i32::MIN, u8::MAX, u16::MAX, u32::MAX, u64::MAX));
    same(&(i128::MIN, i128::from(i64::MAX) + 1, 5i128, u128::MAX, 7u128));
    same(&(1.5f32, -0.25f64, f64::NAN.is_nan()));
    same(&('x', 'é', "hé", String::new()));
    same(&serde_bytes::Bytes::new(&[0, 1, 255]));
    same(&(None::<u8>, Some(Some(3u8)), Some(None::<u8>)));
    same(&(Unit, Newtype(9), Tuple(-3, "t".into())));
    same(&[E::A, E::B(-2), E::C(1, 2), E::D { x: 4 }]);
    same(&BTreeMap::from([(1u8, "one"), (2, "two")]));
    same(&BTreeMap::from([(vec![1u8], BTreeMap::from([("k", E::A)]))]));
    let row = |note| Row { id: 7, x: 0.5, name: "row".into(), tags: vec!["a", "b"], note };
    same(&vec![row(None), row(Some("n".into()))]);
    same(&"x".repeat(300));
    same(&(0..200u32).collect::<Vec<_>>());
    same(&std::net::Ipv4Addr::LOCALHOST);
    same(&Value::Map(vec![(Value::Int(1), Value::Seq(vec![Value::Unit, Value::Bool(false)]))]));
}

#[test]
fn wrong_or_missing_length_hints_are_corrected() {
    for (n, hint) in [(0, None), (3, None), (200, None), (3, Some(1)), (200, Some(2)), (2, Some(300)), (5, Some(5))] {
        same(&Unsized(n, hint));
        same(&vec![Unsized(n, hint), Unsized(1, None)]);
    }
}

#[test]
fn depth_is_the_deepest_level() {
    assert_eq!(to_wire(&5u8).unwrap().0.depth(), 1);
    assert_eq!(to_wire(&Some(vec![1u8])).unwrap().0.depth(), 3);
    assert_eq!(to_wire(&Vec::<u8>::new()).unwrap().0.depth(), 1);
    assert_eq!(to_wire(&E::A).unwrap().0.depth(), 2);
    assert_eq!(to_wire(&E::C(1, 2)).unwrap().0.depth(), 3);
    let mut deep = Value::Unit;
    for _ in 0..DEPTH_CEILING - 1 {
        deep = Value::Option(Some(Box::new(deep)));
    }
    assert_eq!(to_wire(&deep).unwrap().0.depth(), DEPTH_CEILING);
    let deeper = Value::Option(Some(Box::new(deep)));
    let err = to_wire(&deeper).unwrap_err();
    assert!(err.message().contains("nesting exceeds 256 levels"), "{err}");
}

#[test]
fn failing_serialize_and_unbalanced_maps_are_errors() {
    struct Fails;
    impl Serialize for Fails {
        fn serialize<S: serde::Serializer>(&self, _: S) -> Result<S::Ok, S::Error> {
            Err(serde::ser::Error::custom("no way"))
        }
    }
    assert_eq!(to_wire(&vec![Fails]).unwrap_err().message(), "no way");

    struct KeyOnly;
    impl Serialize for KeyOnly {
        fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
            use serde::ser::SerializeMap;
            let mut map = s.serialize_map(None)?;
            map.serialize_key("k")?;
            map.end()
        }
    }
    assert!(to_wire(&KeyOnly).unwrap_err().message().contains("without its value"));
}
