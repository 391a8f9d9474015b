//! `dopy call`: calls a method by name and prints the result.

use dopy::{Interface, Value};

use crate::args::{parse_args, parse_untyped, CallArgs};
use crate::connect::ConnectOptions;
use crate::failure::{Code, Failure};

/// Examples and argument rules for `dopy call --help`.
pub(crate) const EXAMPLES: &str = r#"Examples (against the calculator `cargo run -p dopy-cli --example calc_server` serves):
  dopy call tcp://127.0.0.1:9600/calc add 2 3                  # positional arguments
  dopy call tcp://127.0.0.1:9600/calc divide b=2 a=10          # keyword arguments
  dopy call tcp://127.0.0.1:9600/calc centroid '[{"x":1,"y":1,"label":null,"tags":[]}]'
  dopy call tcp://127.0.0.1:9600/calc repeat 'hello world' 2   # a String parameter takes the text as is
  dopy call tcp://127.0.0.1:9600/calc area '{"Rect":[2,3]}'    # an enum variant with its data
  dopy call tcp://127.0.0.1:9600/calc add 2 3 --json           # the result as JSON
  dopy call tcp://127.0.0.1:9600/calc add -- -2 -3             # `--` before arguments starting with `-`

Arguments are read by the parameter types the object reports (see `dopy inspect`):
  - NAME=VALUE, where NAME is a parameter of the method, is a keyword argument;
    positional arguments come first and fill the parameters in order.
  - String-like parameters (String, &str, char, PathBuf, ...) take the text as it is,
    unless it is a JSON string literal ('"42"').
  - Option<T> parameters take `null` for None; leaving an Option argument out also means None.
  - Other parameters take JSON: numbers, true/false, [lists], {"field": value} for structs,
    "Variant" or {"Variant": payload} for enums; text that is not JSON is sent as a string.

Output: the result in a readable, JSON-like form (strings quoted, floats with a decimal
point, `()` for no result), or with --json as JSON. Errors go to stderr, with the remote trace."#;

/// Calls `method` on the object at `address` with command-line arguments, prints the result.
pub(crate) async fn run(
    address: &str,
    method: &str,
    raw: &[String],
    json: bool,
    options: &ConnectOptions,
) -> Result<(), Failure> {
    let node = options.node("dopy-cli")?;
    let object = crate::connect::object(&node, address, options.connect_timeout).await?;
    // `None`: a peer without introspection; the arguments are sent untyped.
    let interface = crate::connect::interface(&object, address).await?;
    let info = interface.as_ref().and_then(|i| i.method(method));
    let args = match info {
        Some(info) => parse_args(info, raw).map_err(|e| Failure::from(e).with_note(usage(info)))?,
        None => parse_untyped(raw),
    };
    let result = match args {
        CallArgs::Positional(values) => object.call(method, values).await,
        CallArgs::Named(pairs) => object.call_named(method, pairs).await,
    };
    let value = result.map_err(|e| explain(e, interface.as_ref(), info))?;
    crate::emit(render(&value, json)?)
}

/// The failure for a call error, with a hint: the methods there are, or the signature.
fn explain(err: dopy::CallError, interface: Option<&Interface>, info: Option<&dopy::MethodInfo>) -> Failure {
    let hint = match (&err, interface, info) {
        (dopy::CallError::NoSuchMethod(_), Some(interface), _) => {
            let known: Vec<&str> = interface.methods.iter().map(|m| &*m.name).collect();
            Some(format!("methods of {}: {}", interface.name, known.join(", ")))
        }
        (dopy::CallError::BadArguments(_), _, Some(info)) => Some(usage(info)),
        _ => None,
    };
    let failure = Failure::from(err);
    match hint {
        Some(hint) => failure.with_note(hint),
        None => failure,
    }
}

fn usage(info: &dopy::MethodInfo) -> String {
    format!("signature: {info}")
}

/// The result as printed: `Value`'s readable form, or JSON.
pub(crate) fn render(value: &Value, json: bool) -> Result<String, Failure> {
    if json {
        serde_json::to_string(value)
            .map_err(|e| Failure::new(Code::Other, format!("the result cannot be written as JSON: {e}")))
    } else {
        Ok(value.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn results_print_readably_or_as_json() {
        let point = Value::Map(vec![
            (Value::String("x".into()), Value::Float(1.0)),
            (Value::String("label".into()), Value::Option(None)),
            (Value::String("tags".into()), Value::Seq(vec![])),
        ]);
        assert_eq!(render(&point, true).unwrap(), r#"{"x":1.0,"label":null,"tags":[]}"#);
        assert_eq!(render(&point, false).unwrap(), r#"{"x": 1.0, "label": null, "tags": []}"#);
        assert_eq!(render(&Value::Int(5), false).unwrap(), "5");
        assert_eq!(render(&Value::String("hi".into()), false).unwrap(), r#""hi""#);
        assert_eq!(render(&Value::Unit, true).unwrap(), "null");
    }
}
