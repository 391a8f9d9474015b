//! Command-line arguments to [`Value`]s, guided by the parameter types from introspection.
//!
//! The rules, for each argument:
//! - `NAME=TEXT` where `NAME` is a parameter of the method is a keyword argument; anything else
//!   is positional. Positional arguments fill the parameters in order and come first.
//! - For a string-like parameter (`String`, `&str`, `char`, `PathBuf`, `Cow<str>`, ...) the
//!   text is taken as it is, unless it is a JSON string literal (`'"42"'`), which is decoded.
//! - For `Option<T>`, `null` is `None`; any other text is read as a `T`.
//! - For any other parameter the text is read as JSON (`5`, `true`, `[1, 2]`, `{"x": 1}`); text
//!   that is not JSON is taken as a string (so enum variants can be written `Circle` or
//!   `'{"Circle": 1.0}'`), except that text starting with `[` or `{` must be valid JSON.
//! - Booleans, integers and floats are checked here (kind and range), so that a mistake is
//!   reported before anything is sent; `nan`, `inf` and `-inf` are accepted for floats.

use std::fmt;

use dopy::{MethodInfo, ParamInfo, Value};
use serde::de::DeserializeOwned;

/// Arguments ready to send: [`dopy::DynObject::call`] or [`dopy::DynObject::call_named`].
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum CallArgs {
    /// By position.
    Positional(Vec<Value>),
    /// By parameter name.
    Named(Vec<(String, Value)>),
}

/// An argument that does not fit the method; the message names the parameter.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct ArgError(pub(crate) String);

impl fmt::Display for ArgError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Parses the command-line arguments of a call to `method`.
///
/// Positional arguments mixed with keywords are sent by name (positional ones name the first
/// parameters). Missing arguments are left to the server, which fills absent `Option`s with
/// `None` and names any other missing parameter.
pub(crate) fn parse_args(method: &MethodInfo, raw: &[String]) -> Result<CallArgs, ArgError> {
    let params = &method.params;
    let mut positional = Vec::new();
    let mut named: Vec<(String, Value)> = Vec::new();
    for text in raw {
        match keyword(params, text) {
            Some((index, value)) => {
                let param = &params[index];
                if index < positional.len() || named.iter().any(|(n, _)| *n == param.name) {
                    return Err(ArgError(format!("argument `{}` of `{}` is given twice", param.name, method.name)));
                }
                named.push((param.name.to_string(), parse_param(method, param, value)?));
            }
            None if !named.is_empty() => {
                return Err(ArgError(format!(
                    "positional argument `{text}` after keyword arguments (write it as NAME={text})"
                )));
            }
            None => {
                let Some(param) = params.get(positional.len()) else {
                    let names: Vec<&str> = method.param_names().collect();
                    return Err(ArgError(format!(
                        "`{}` takes {} argument{} ({}), {} given",
                        method.name,
                        params.len(),
                        if params.len() == 1 { "" } else { "s" },
                        names.join(", "),
                        raw.len()
                    )));
                };
                positional.push(parse_param(method, param, text)?);
            }
        }
    }
    if named.is_empty() {
        return Ok(CallArgs::Positional(positional));
    }
    let leading = params.iter().zip(positional).map(|(p, v)| (p.name.to_string(), v));
    Ok(CallArgs::Named(leading.chain(named).collect()))
}

/// Parses arguments without type information (the object's interface does not list the method):
/// each one is JSON if it parses as JSON, a string otherwise, by position.
pub(crate) fn parse_untyped(raw: &[String]) -> CallArgs {
    CallArgs::Positional(raw.iter().map(|t| json_or_string(t)).collect())
}

/// `NAME=VALUE` where `NAME` is a parameter: the parameter's index and the value text.
fn keyword<'a>(params: &[ParamInfo], text: &'a str) -> Option<(usize, &'a str)> {
    let (name, value) = text.split_once('=')?;
    params.iter().position(|p| p.name == name).map(|i| (i, value))
}

fn parse_param(method: &MethodInfo, param: &ParamInfo, text: &str) -> Result<Value, ArgError> {
    parse_value(&param.ty, text).map_err(|reason| {
        ArgError(format!("bad argument `{}` of `{}` (`{}`): {reason}", param.name, method.name, param.ty))
    })
}

/// Reads `text` as a value of the Rust type written `ty`.
pub(crate) fn parse_value(ty: &str, text: &str) -> Result<Value, String> {
    let (name, generics) = split_type(ty);
    if name == "Option" {
        let inner = generics.unwrap_or("");
        if text.trim() == "null" {
            return Ok(Value::Option(None));
        }
        return parse_value(inner, text).map(|v| Value::Option(Some(Box::new(v))));
    }
    if is_string_like(name, generics) {
        return Ok(Value::String(serde_json::from_str::<String>(text).unwrap_or_else(|_| text.to_owned()).into()));
    }
    let value = match serde_json::from_str::<Value>(text) {
        Ok(value) => value,
        Err(e) if text.trim_start().starts_with(['[', '{']) => return Err(format!("invalid JSON: {e}")),
        Err(_) => match (name, text.parse::<f64>()) {
            ("f32" | "f64", Ok(f)) => Value::Float(f),
            _ => Value::String(text.into()),
        },
    };
    match check_primitive(name, &value) {
        Some(Err(reason)) => Err(reason),
        _ => Ok(value),
    }
}

/// JSON if `text` parses as JSON, else the text as a string.
fn json_or_string(text: &str) -> Value {
    serde_json::from_str(text).unwrap_or_else(|_| Value::String(text.into()))
}

/// Splits a type as written in the source into its last path segment and its generic arguments:
/// `std::option::Option<&'a str>` is `("Option", Some("&'a str"))`, `&mut str` is `("str", None)`.
fn split_type(ty: &str) -> (&str, Option<&str>) {
    let mut t = ty.trim();
    loop {
        if let Some(rest) = t.strip_prefix('&') {
            t = rest.trim_start();
        } else if let Some(rest) = t.strip_prefix('\'') {
            t = rest.trim_start_matches(|c: char| c.is_alphanumeric() || c == '_').trim_start();
        } else if let Some(rest) = t.strip_prefix("mut ") {
            t = rest.trim_start();
        } else {
            break;
        }
    }
    let (head, generics) = match (t.find('<'), t.rfind('>')) {
        (Some(open), Some(close)) if open < close => (&t[..open], Some(t[open + 1..close].trim())),
        _ => (t, None),
    };
    let head = head.trim();
    (head.rsplit("::").next().unwrap_or(head).trim(), generics)
}

/// Whether a parameter of this type takes its text as it is.
fn is_string_like(name: &str, generics: Option<&str>) -> bool {
    match name {
        "String" | "str" | "char" | "PathBuf" | "Path" => true,
        // `Cow<'a, str>`, `Box<str>`, `Arc<Path>`: look at the last generic argument.
        "Cow" | "Box" | "Arc" | "Rc" => {
            let last = generics.and_then(|g| g.rsplit(',').next()).unwrap_or("");
            let (inner, inner_generics) = split_type(last);
            is_string_like(inner, inner_generics)
        }
        _ => false,
    }
}

/// For primitive types, whether `value` fits (kind and range); `None` for other types.
fn check_primitive(name: &str, value: &Value) -> Option<Result<(), String>> {
    fn fits<T: DeserializeOwned>(value: &Value) -> Result<(), String> {
        dopy::from_value::<T>(value.clone()).map(|_| ()).map_err(|e| e.to_string())
    }
    Some(match name {
        "bool" => fits::<bool>(value),
        "i8" => fits::<i8>(value),
        "i16" => fits::<i16>(value),
        "i32" => fits::<i32>(value),
        "i64" => fits::<i64>(value),
        "i128" => fits::<i128>(value),
        "isize" => fits::<isize>(value),
        "u8" => fits::<u8>(value),
        "u16" => fits::<u16>(value),
        "u32" => fits::<u32>(value),
        "u64" => fits::<u64>(value),
        "u128" => fits::<u128>(value),
        "usize" => fits::<usize>(value),
        "f32" => fits::<f32>(value),
        "f64" => fits::<f64>(value),
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use dopy::Receiver;

    use super::*;

    fn method(name: &'static str, params: &'static [ParamInfo]) -> MethodInfo {
        MethodInfo::from_static(name, "", params, "()", None, Receiver::Shared, false, false, false)
    }

    const DIVIDE: &[ParamInfo] = &[ParamInfo::from_static("a", "i64"), ParamInfo::from_static("b", "i64")];
    const ECHO: &[ParamInfo] = &[ParamInfo::from_static("text", "String"), ParamInfo::from_static("n", "Option<u8>")];

    fn strings(args: &[&str]) -> Vec<String> {
        args.iter().map(|s| s.to_string()).collect()
    }

    fn s(v: &str) -> Value {
        Value::String(v.into())
    }

    #[test]
    fn positional_arguments_follow_the_parameter_types() {
        let got = parse_args(&method("divide", DIVIDE), &strings(&["10", "-2"])).unwrap();
        assert_eq!(got, CallArgs::Positional(vec![Value::UInt(10), Value::Int(-2)]));
    }

    #[test]
    fn keyword_arguments_are_sent_by_name_in_the_order_given() {
        let got = parse_args(&method("divide", DIVIDE), &strings(&["b=2", "a=10"])).unwrap();
        assert_eq!(got, CallArgs::Named(vec![("b".into(), Value::UInt(2)), ("a".into(), Value::UInt(10))]));
    }

    #[test]
    fn positional_then_keyword_names_the_leading_parameters() {
        let got = parse_args(&method("divide", DIVIDE), &strings(&["10", "b=2"])).unwrap();
        assert_eq!(got, CallArgs::Named(vec![("a".into(), Value::UInt(10)), ("b".into(), Value::UInt(2))]));
    }

    #[test]
    fn name_value_is_a_keyword_only_for_a_parameter_name() {
        let got = parse_args(&method("echo", ECHO), &strings(&["x=1"])).unwrap();
        assert_eq!(got, CallArgs::Positional(vec![s("x=1")]));
        let got = parse_args(&method("echo", ECHO), &strings(&["text=a=b"])).unwrap();
        assert_eq!(got, CallArgs::Named(vec![("text".into(), s("a=b"))]));
    }

    #[test]
    fn argument_errors_name_the_parameter() {
        let m = method("divide", DIVIDE);
        let err = parse_args(&m, &strings(&["10", "two"])).unwrap_err().0;
        assert!(err.contains("`b`") && err.contains("`divide`") && err.contains("expected i64"), "{err}");
        let err = parse_args(&m, &strings(&["1", "2", "3"])).unwrap_err().0;
        assert_eq!(err, "`divide` takes 2 arguments (a, b), 3 given");
        let err = parse_args(&m, &strings(&["1", "a=2"])).unwrap_err().0;
        assert_eq!(err, "argument `a` of `divide` is given twice");
        let err = parse_args(&m, &strings(&["b=1", "b=2"])).unwrap_err().0;
        assert_eq!(err, "argument `b` of `divide` is given twice");
        let err = parse_args(&m, &strings(&["b=1", "2"])).unwrap_err().0;
        assert!(err.contains("after keyword arguments"), "{err}");
    }

    #[test]
    fn string_parameters_take_the_text_as_is_unless_it_is_a_json_string() {
        for ty in ["String", "&str", "&'static str", "std::string::String", "PathBuf", "Cow<'a, str>", "Box<str>"] {
            assert_eq!(parse_value(ty, "42").unwrap(), s("42"), "{ty}");
            assert_eq!(parse_value(ty, "hello world").unwrap(), s("hello world"), "{ty}");
            assert_eq!(parse_value(ty, r#""quoted""#).unwrap(), s("quoted"), "{ty}");
            assert_eq!(parse_value(ty, r#"{"a":1}"#).unwrap(), s(r#"{"a":1}"#), "{ty}");
        }
        assert_eq!(parse_value("char", "x").unwrap(), s("x"));
    }

    #[test]
    fn options_take_null_or_the_inner_type() {
        assert_eq!(parse_value("Option<String>", "null").unwrap(), Value::Option(None));
        assert_eq!(parse_value("Option<String>", "42").unwrap(), Value::Option(Some(Box::new(s("42")))));
        assert_eq!(parse_value("Option < u8 >", "7").unwrap(), Value::Option(Some(Box::new(Value::UInt(7)))));
        assert!(parse_value("Option<u8>", "300").unwrap_err().contains("u8"));
    }

    #[test]
    fn numbers_and_booleans_are_checked_locally() {
        assert_eq!(parse_value("i64", "-5").unwrap(), Value::Int(-5));
        assert_eq!(parse_value("f64", "1").unwrap(), Value::UInt(1));
        assert_eq!(parse_value("f64", "2.5").unwrap(), Value::Float(2.5));
        assert_eq!(parse_value("f32", "inf").unwrap(), Value::Float(f64::INFINITY));
        assert_eq!(parse_value("bool", "true").unwrap(), Value::Bool(true));
        assert!(parse_value("u8", "256").unwrap_err().contains("u8"));
        assert!(parse_value("u32", "-1").unwrap_err().contains("u32"));
        assert!(parse_value("i64", "1.5").unwrap_err().contains("i64"));
        assert!(parse_value("i64", "five").unwrap_err().contains(r#"string "five""#));
        assert!(parse_value("bool", "yes").unwrap_err().contains("bool"));
    }

    #[test]
    fn other_types_take_json_or_fall_back_to_a_string() {
        let points = parse_value("Vec<Point>", r#"[{"x":1,"y":1}]"#).unwrap();
        let point = Value::Map(vec![(s("x"), Value::UInt(1)), (s("y"), Value::UInt(1))]);
        assert_eq!(points, Value::Seq(vec![point]));
        assert_eq!(parse_value("Shape", "Empty").unwrap(), s("Empty"));
        assert_eq!(parse_value("std::net::IpAddr", "::1").unwrap(), s("::1"));
        assert!(parse_value("Vec<Point>", r#"[{"x":1"#).unwrap_err().starts_with("invalid JSON"));
    }

    #[test]
    fn untyped_arguments_are_json_or_strings() {
        assert_eq!(parse_untyped(&strings(&["1", "a=b"])), CallArgs::Positional(vec![Value::UInt(1), s("a=b")]));
    }

    #[test]
    fn type_names_are_split_into_name_and_generics() {
        assert_eq!(split_type("std::option::Option<&'a str>"), ("Option", Some("&'a str")));
        assert_eq!(split_type("&mut str"), ("str", None));
        assert_eq!(split_type("Vec < Point >"), ("Vec", Some("Point")));
        assert_eq!(split_type("& 'static str"), ("str", None));
    }
}
