//! Dynamic values cannot be amplified in memory past the node's bound: a frame of cheap values
//! (one byte on the wire, 48 in memory) is refused before it is decoded whole.

mod support;

use std::time::{Duration, Instant};

use dopy::{CallError, Node, Value};

async fn served() -> (Node, String) {
    let server = Node::builder().name("budget").build();
    server.publish("calc", support::Calculator::default()).unwrap();
    let endpoint = server.listen("tcp://127.0.0.1:0").await.unwrap();
    (server, endpoint.object("calc").to_string())
}

/// Two million units (a 2 MB frame, 96 MB decoded) are refused with `BadArguments` saying
/// why, while a call of the same connection and a new client are served; the connection
/// goes on.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn amplified_dynamic_arguments_are_refused() {
    let (_server, address) = served().await;
    let obj = Node::new().object(&address).await.unwrap();
    let units = Value::Seq(vec![Value::Unit; 2_000_000]);
    let refused = {
        let obj = obj.clone();
        tokio::spawn(async move { obj.call("add", [units, Value::from(1)]).await })
    };
    // Served meanwhile, within 2 s.
    let t = Instant::now();
    let other = Node::new().object(&address).await.unwrap();
    assert_eq!(other.call("add", [Value::from(1), Value::from(2)]).await.unwrap(), Value::Int(3));
    assert!(t.elapsed() < Duration::from_secs(2), "{:?}", t.elapsed());
    let err = refused.await.unwrap().unwrap_err();
    assert!(matches!(err, CallError::BadArguments(_)), "{err}");
    let text = err.to_string();
    assert!(text.contains("dynamic values would take more than") && text.contains("8 times"), "{text}");
    // The same connection goes on.
    assert_eq!(obj.call("add", [Value::from(2), Value::from(2)]).await.unwrap(), Value::Int(4));
}

/// Dynamic data of ordinary density passes at the default: 20,000 records of a string and a
/// number. 100,000 small integers (about 200 KB on the wire, 24 times that decoded) are
/// refused at the default factor of 8 and pass with a factor of 32.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ordinary_dynamic_data_passes_and_the_factor_is_configurable() {
    let (_server, address) = served().await;
    let obj = Node::new().object(&address).await.unwrap();
    let records: Vec<Value> = (0..20_000)
        .map(|i| {
            Value::Map(vec![
                (Value::from("name"), Value::from(format!("a record with a name of some length {i}"))),
                (Value::from("size"), Value::Float(f64::from(i) * 1.5)),
            ])
        })
        .collect();
    // `add` refuses a sequence as its number: the values were decoded, and only then refused.
    let err = obj.call("add", [Value::Seq(records), Value::from(1)]).await.unwrap_err();
    assert!(err.to_string().contains("argument `a`"), "{err}");

    let ints = Value::Seq((0..100_000u64).map(|i| Value::UInt(i % 100)).collect());
    let err = obj.call("add", [ints.clone(), Value::from(1)]).await.unwrap_err();
    assert!(err.to_string().contains("dynamic values would take more than"), "{err}");
    let roomy = Node::builder().max_value_expansion(32).build();
    roomy.publish("calc", support::Calculator::default()).unwrap();
    let endpoint = roomy.listen("tcp://127.0.0.1:0").await.unwrap();
    let obj = Node::new().object(&endpoint.object("calc").to_string()).await.unwrap();
    let err = obj.call("add", [ints, Value::from(1)]).await.unwrap_err();
    assert!(err.to_string().contains("argument `a`"), "{err}");
}
