//! `dopy inspect`: an object's interface, as Rust-like signatures or as JSON.

use dopy::{Interface, MethodInfo};
use std::fmt::Write;

use crate::connect::ConnectOptions;
use crate::failure::{Code, Failure};

/// Examples for `dopy inspect --help`.
pub(crate) const EXAMPLES: &str = "\
Examples (against the calculator `cargo run -p dopy-cli --example calc_server` serves):
  dopy inspect tcp://127.0.0.1:9600/calc             # all methods, with their docs
  dopy inspect tcp://127.0.0.1:9600/calc divide      # one method
  dopy inspect tcp://127.0.0.1:9600/calc --json      # the Interface as JSON, for scripts

Output: the interface as an `impl` block of signatures with their doc comments; a oneway method
(no reply is sent) is marked #[dopy(oneway)].";

/// Asks the object at `address` for its interface and prints it.
pub(crate) async fn run(
    address: &str,
    method: Option<&str>,
    json: bool,
    options: &ConnectOptions,
) -> Result<(), Failure> {
    let node = options.node("dopy-cli")?;
    let object = crate::connect::object(&node, address, options.connect_timeout).await?;
    let Some(mut interface) = crate::connect::interface(&object, address).await? else {
        return Err(Failure::new(Code::Remote, format!("{address} does not answer introspection (`dopy.methods`)")));
    };
    if let Some(name) = method {
        let Some(found) = interface.method(name).cloned() else {
            let known: Vec<&str> = interface.methods.iter().map(|m| &*m.name).collect();
            return Err(Failure::new(
                Code::Remote,
                format!("`{}` has no method `{name}`; its methods: {}", interface.name, known.join(", ")),
            ));
        };
        interface.methods = vec![found].into();
    }
    if json {
        let text = serde_json::to_string(&interface)
            .map_err(|e| Failure::new(Code::Other, format!("cannot print the interface as JSON: {e}")))?;
        crate::emit(text)
    } else {
        crate::emit(render(address, &interface).trim_end())
    }
}

/// The interface as an `impl` block: docs as `///` comments, one signature per method.
pub(crate) fn render(address: &str, interface: &Interface) -> String {
    let mut out = format!("// {address}\n");
    doc_comment(&mut out, "", &interface.docs);
    let _ = writeln!(out, "impl {} {{", interface.name);
    for (i, method) in interface.methods.iter().enumerate() {
        if i > 0 {
            out.push('\n');
        }
        doc_comment(&mut out, "    ", &method.docs);
        if method.oneway {
            out.push_str("    #[dopy(oneway)]\n");
        }
        // `MethodInfo`'s own display writes `oneway fn`; here the attribute says it.
        let signature = MethodInfo { oneway: false, ..method.clone() };
        let _ = writeln!(out, "    {signature};");
    }
    out.push_str("}\n");
    out
}

fn doc_comment(out: &mut String, indent: &str, docs: &str) {
    for line in docs.trim().lines() {
        let _ = writeln!(out, "{indent}///{}{}", if line.is_empty() { "" } else { " " }, line.trim_end());
    }
}

#[cfg(test)]
mod tests {
    use dopy::{ParamInfo, Receiver};

    use super::*;

    const PARAMS: &[ParamInfo] = &[ParamInfo::from_static("a", "i64"), ParamInfo::from_static("b", "i64")];
    const METHODS: &[MethodInfo] = &[
        MethodInfo::from_static(
            "divide",
            "Divides `a` by `b`.\n\nRounds toward zero.",
            PARAMS,
            "i64",
            Some("DivideByZero"),
            Receiver::Shared,
            false,
            false,
            false,
        ),
        MethodInfo::from_static("log", "", &[], "()", None, Receiver::Exclusive, true, true, false),
    ];

    #[test]
    fn interface_renders_as_an_impl_block_with_docs() {
        let interface = Interface::from_static("Calculator", "A calculator.", METHODS);
        let want = "\
// tcp://h:1/calc
/// A calculator.
impl Calculator {
    /// Divides `a` by `b`.
    ///
    /// Rounds toward zero.
    fn divide(&self, a: i64, b: i64) -> Result<i64, DivideByZero>;

    #[dopy(oneway)]
    async fn log(&mut self);
}
";
        assert_eq!(render("tcp://h:1/calc", &interface), want);
    }
}
