//! `dopy::Value` as (or inside) a typed parameter and result, and the clear errors for types
//! that typed calls cannot carry.
// `#[dopy::remote]` serves the `pub` methods of a type private to this test.
#![allow(unreachable_pub)]

#[macro_use]
mod support;
use support::harness;

use std::collections::HashMap;

use dopy::{CallError, DynObject, Node, Value};
use serde::{Deserialize, Serialize};

/// A document whose body is dynamic data.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
struct Doc {
    title: String,
    body: Value,
    extra: HashMap<String, Value>,
}

/// A record with a field only a self-describing format can read.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
struct JsonRecord {
    id: u32,
    json: serde_json::Value,
}

/// Keeps settings as dynamic data.
#[derive(Debug, Default)]
struct Settings {
    values: HashMap<String, Value>,
}

#[dopy::remote]
impl Settings {
    /// Stores `value` under `key`.
    pub fn set(&mut self, key: String, value: Value) {
        self.values.insert(key, value);
    }

    /// The value under `key` (`Unit` when there is none).
    pub fn setting(&self, key: String) -> Value {
        self.values.get(&key).cloned().unwrap_or_default()
    }

    /// Every value, in key order.
    pub fn all(&self) -> Vec<Value> {
        let mut keys: Vec<_> = self.values.keys().collect();
        keys.sort();
        keys.into_iter().map(|k| self.values[k].clone()).collect()
    }

    /// The document with its title in capitals.
    pub fn shout(&self, doc: Doc) -> Doc {
        Doc { title: doc.title.to_uppercase(), ..doc }
    }

    /// Calls `add(a, b)` on the object inside `holder` (a `Value::Ref` in a typed parameter).
    pub async fn call_inside(&self, holder: Value, a: i64, b: i64) -> Result<i64, String> {
        let Value::Ref(obj) = holder else { return Err(format!("not a reference: {}", holder.kind())) };
        match obj.call("add", [Value::from(a), Value::from(b)]).await {
            Ok(v) => v.as_i64().ok_or_else(|| format!("not a number: {v}")),
            Err(e) => Err(e.to_string()),
        }
    }

    /// Accepts a record holding JSON (typed callers get a clear error).
    pub fn take_json(&self, record: JsonRecord) -> u32 {
        record.id
    }

    /// Returns a record holding JSON (typed callers get a clear error).
    pub fn give_json(&self) -> JsonRecord {
        JsonRecord { id: 7, json: serde_json::json!({"a": [1, 2]}) }
    }
}

async fn served(endpoint: &str) -> (Node, SettingsProxy) {
    let server = Node::new();
    server.publish("settings", Settings::default()).unwrap();
    let endpoint = server.listen(endpoint).await.unwrap();
    let proxy = Node::new().proxy(&endpoint.object("settings").to_string()).await.unwrap();
    (server, proxy)
}

/// A `Value`, a `Vec<Value>`, a `HashMap<String, Value>` and a struct field holding one travel
/// typed both ways, over TCP and in process.
#[tokio::test]
async fn values_inside_typed_parameters_and_results() {
    for endpoint in ["tcp://127.0.0.1:0".to_owned(), format!("memory://{}", harness::unique("typed-values"))] {
        let (_server, settings) = served(&endpoint).await;
        let every = harness::suite::every_kind_of_value();
        settings.set("every".into(), every.clone()).await.unwrap();
        settings.set("variant".into(), Value::Variant("V".into(), Box::new(Value::Unit))).await.unwrap();
        assert_eq!(settings.setting("every".into()).await.unwrap(), every, "{endpoint}");
        assert_eq!(settings.setting("missing".into()).await.unwrap(), Value::Unit);
        assert_eq!(
            settings.all().await.unwrap(),
            vec![every.clone(), Value::Variant("V".into(), Box::new(Value::Unit))],
            "{endpoint}"
        );
        let doc = Doc {
            title: "notes".into(),
            body: every.clone(),
            extra: HashMap::from([("n".to_owned(), Value::Option(Some(Box::new(Value::Float(0.5)))))]),
        };
        let back = settings.shout(doc.clone()).await.unwrap();
        assert_eq!(back, Doc { title: "NOTES".into(), ..doc }, "{endpoint}");
    }
}

/// A reference inside a typed `Value` parameter reaches the server as a live handle.
#[tokio::test]
async fn a_reference_inside_a_typed_value_parameter_is_live() {
    let (_server, settings) = served("tcp://127.0.0.1:0").await;
    let calc = DynObject::in_process(harness::demo::Calculator::default());
    assert_eq!(settings.call_inside(Value::Ref(calc), 20, 22).await.unwrap(), 42);
}

/// A type whose `Deserialize` needs a self-describing format fails with an error that says so
/// and names `dopy::Value`, as a parameter and as a result; the same methods work dynamically.
#[tokio::test]
async fn self_describing_only_types_fail_with_a_clear_error() {
    let (server, settings) = served("tcp://127.0.0.1:0").await;
    let record = JsonRecord { id: 3, json: serde_json::json!({"k": true}) };
    let err = settings.take_json(record).await.unwrap_err();
    assert!(matches!(err, CallError::BadArguments(_)), "{err}");
    let text = err.to_string();
    assert!(text.contains("argument `record`") && text.contains("self-describing"), "{text}");
    assert!(text.contains("dopy::Value"), "{text}");
    let err = settings.give_json().await.unwrap_err();
    assert!(matches!(err, CallError::Codec(_)), "{err}");
    assert!(err.to_string().contains("self-describing") && err.to_string().contains("dopy::Value"), "{err}");
    // The server is fine, and a dynamic caller gets the data.
    let obj = settings.object().clone();
    let given = obj.call("give_json", []).await.unwrap();
    let record: JsonRecord = dopy::from_value(given).unwrap();
    assert_eq!(record, JsonRecord { id: 7, json: serde_json::json!({"a": [1, 2]}) });
    drop(server);
}
