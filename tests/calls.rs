//! Typed and dynamic calls over real TCP: every kind of method, argument and result.

mod support;

use std::collections::HashMap;

use dopy::{CallError, Node, Receiver, Value};
use support::{calc_proxy, start_server, Point, Shape};

/// A typed proxy calls sync `&self` and async `&mut self` methods and gets their results.
#[tokio::test]
async fn typed_proxy_calls_sync_and_async_methods() {
    let (_server, addr) = start_server().await;
    let calc = calc_proxy(&addr).await;
    assert_eq!(calc.add(2, 3).await.unwrap(), 5);
    assert_eq!(calc.accumulate(10).await.unwrap(), 10);
    assert_eq!(calc.accumulate(5).await.unwrap(), 15);
    assert_eq!(calc.total().await.unwrap(), 15);
    assert_eq!(calc.slow_echo(1, "hi".into()).await.unwrap(), "hi");
}

/// Structs, enums of every variant kind, vectors, maps, options and nesting travel by copy.
#[tokio::test]
async fn typed_proxy_passes_structs_enums_and_collections() {
    let (_server, addr) = start_server().await;
    let calc = calc_proxy(&addr).await;
    let pts = vec![
        Point { x: 0.0, y: 0.0, label: Some("origin".into()), tags: vec!["a".into()] },
        Point { x: 2.0, y: 4.0, label: None, tags: vec![] },
    ];
    let c = calc.centroid(pts.clone()).await.unwrap();
    assert_eq!((c.x, c.y), (1.0, 2.0));
    assert_eq!(calc.area(Shape::Empty).await.unwrap(), 0.0);
    assert_eq!(calc.area(Shape::Circle(1.0)).await.unwrap(), 3.0);
    assert_eq!(calc.area(Shape::Rect(2.0, 3.0)).await.unwrap(), 6.0);
    assert_eq!(calc.area(Shape::Polygon { points: pts }).await.unwrap(), 2.0);
    let counts = calc.word_count("a bb a ccc".into(), Some(2)).await.unwrap();
    assert_eq!(counts, HashMap::from([("bb".to_owned(), 1), ("ccc".to_owned(), 1)]));
    let big = (i128::MIN, u128::MAX, serde_bytes::ByteBuf::from(vec![0u8, 255, 7]));
    assert_eq!(calc.wide(big.0, big.1, big.2.clone()).await.unwrap(), big);
}

/// A dynamic caller needs no Rust types: positional and keyword arguments reach the same
/// object a typed proxy calls, and both see the same state.
#[tokio::test]
async fn dynamic_and_typed_callers_share_one_object() {
    let (_server, addr) = start_server().await;
    let obj = Node::new().object(&format!("{addr}/calc")).await.unwrap();
    let calc = calc_proxy(&addr).await;
    assert_eq!(obj.call("add", [Value::from(2), Value::from(3)]).await.unwrap(), Value::Int(5));
    let v = obj.call_named("divide", [("b", Value::from(2)), ("a", Value::from(10))]).await.unwrap();
    assert_eq!(v, Value::Int(5));
    obj.call("accumulate", [Value::from(7)]).await.unwrap();
    assert_eq!(calc.accumulate(1).await.unwrap(), 8);
    assert_eq!(obj.call("total", []).await.unwrap(), Value::Int(8));
}

/// Structured arguments can be given as maps (the shape JSON gives), enums by variant name,
/// and a missing `Option` argument means `None`.
#[tokio::test]
async fn dynamic_call_with_structured_values() {
    let (_server, addr) = start_server().await;
    let obj = Node::new().object(&format!("{addr}/calc")).await.unwrap();
    let json = r#"[{"x":1,"y":1,"label":null,"tags":[]},{"x":3,"y":5,"label":"p","tags":["t"]}]"#;
    let points: Value = serde_json::from_str(json).unwrap();
    let c = obj.call("centroid", [points]).await.unwrap();
    assert_eq!(serde_json::to_string(&c).unwrap(), r#"{"x":2.0,"y":3.0,"label":null,"tags":[]}"#);
    let area = obj.call("area", [Value::Variant("Rect".into(), Box::new(Value::Seq(vec![2.into(), 4.into()])))]).await;
    assert_eq!(area.unwrap(), Value::Float(8.0));
    let empty = obj.call("area", [Value::from("Empty")]).await.unwrap();
    assert_eq!(empty, Value::Float(0.0));
    let counts = obj.call_named("word_count", [("text", Value::from("x x"))]).await.unwrap();
    assert_eq!(counts, Value::Map(vec![(Value::from("x"), Value::UInt(2))]));
}

/// Every object describes its remote methods: names, parameter names and types, results,
/// receivers and docs; skipped and private methods are absent.
#[tokio::test]
async fn introspection_lists_methods_with_params_and_docs() {
    let (_server, addr) = start_server().await;
    let obj = Node::new().object(&format!("{addr}/calc")).await.unwrap();
    let iface = obj.methods().await.unwrap();
    assert_eq!(iface.name, "Calculator");
    let add = iface.method("add").unwrap();
    assert_eq!(add.param_names().collect::<Vec<_>>(), ["a", "b"]);
    assert_eq!(add.params[0].ty, "i64");
    assert_eq!(add.returns, "i64");
    assert_eq!(add.docs, "Adds two numbers.");
    assert_eq!(add.receiver, Receiver::Shared);
    let acc = iface.method("accumulate").unwrap();
    assert!(acc.is_async);
    assert_eq!(acc.receiver, Receiver::Exclusive);
    let div = iface.method("divide").unwrap();
    assert_eq!(div.error.as_deref(), Some("DivideByZero"));
    assert_eq!(iface.method("centroid").unwrap().params[0].ty, "Vec<Point>");
    assert!(iface.method("plus").is_some());
    for absent in ["add_renamed", "local_only", "private_helper"] {
        assert!(iface.method(absent).is_none(), "{absent} must not be remote");
    }
    let calc = calc_proxy(&addr).await;
    assert_eq!(dopy::Proxy::object(&calc).methods().await.unwrap(), iface);
}

/// `#[dopy(name)]` renames; `#[dopy(skip)]` and private methods cannot be called.
#[tokio::test]
async fn renamed_skipped_and_private_methods() {
    let (_server, addr) = start_server().await;
    let calc = calc_proxy(&addr).await;
    assert_eq!(calc.add_renamed(1, 2).await.unwrap(), 3);
    let obj = Node::new().object(&format!("{addr}/calc")).await.unwrap();
    assert_eq!(obj.call("plus", [1.into(), 1.into()]).await.unwrap(), Value::Int(2));
    for name in ["add_renamed", "local_only", "private_helper"] {
        let err = obj.call(name, []).await.unwrap_err();
        assert!(matches!(err, CallError::NoSuchMethod(_)), "{name}: {err}");
    }
}

/// Proxies to one endpoint share one connection, and a proxy keeps it open after its node is
/// dropped.
#[tokio::test]
async fn proxies_share_the_connection_to_an_endpoint() {
    let (_server, addr) = start_server().await;
    let client = Node::new();
    let a: support::CalculatorProxy = client.proxy(&format!("{addr}/calc")).await.unwrap();
    let b = client.object(&format!("{addr}/calc")).await.unwrap();
    drop(client);
    assert_eq!(dopy::Proxy::object(&a).connection().unwrap().info(), b.connection().unwrap().info());
    assert_eq!(a.add(1, 1).await.unwrap(), 2);
}
