//! Introspection: what methods an object has, their parameters, results and docs.
//!
//! Every object answers the built-in method [`METHODS`] with its [`Interface`], which is enough
//! for a dynamic caller (or the `dopy` command-line tool) to call it correctly.

use std::borrow::Cow;
use std::fmt;

use serde::{Deserialize, Serialize};

/// Name of the built-in method every object answers with its [`Interface`].
///
/// Names starting with `dopy.` are reserved: no user method can take one.
pub const METHODS: &str = "dopy.methods";

/// Prefix of the reserved built-in method names.
pub const RESERVED_PREFIX: &str = "dopy.";

/// The remote interface of an object: its type name, docs and methods.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Interface {
    /// The Rust type name of the object (or a name chosen by a hand-written dispatcher).
    pub name: Cow<'static, str>,
    /// Documentation of the type's remote interface.
    pub docs: Cow<'static, str>,
    /// The remote methods, in source order.
    pub methods: Cow<'static, [MethodInfo]>,
}

impl Interface {
    /// Builds an interface from static tables (what `#[dopy::remote]` generates).
    pub const fn from_static(name: &'static str, docs: &'static str, methods: &'static [MethodInfo]) -> Self {
        Interface { name: Cow::Borrowed(name), docs: Cow::Borrowed(docs), methods: Cow::Borrowed(methods) }
    }

    /// Finds a method by its remote name.
    pub fn method(&self, name: &str) -> Option<&MethodInfo> {
        self.methods.iter().find(|m| m.name == name)
    }
}

impl fmt::Display for Interface {
    /// Prints the interface as Rust-like signatures, one method per line.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "{}", self.name)?;
        for m in self.methods.iter() {
            writeln!(f, "  {m}")?;
        }
        Ok(())
    }
}

/// How a method borrows its object.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Receiver {
    /// `&self`: may run concurrently with other `&self` calls.
    Shared,
    /// `&mut self`: runs alone on the object.
    Exclusive,
}

/// One remote method.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MethodInfo {
    /// The remote name callers use.
    pub name: Cow<'static, str>,
    /// The method's documentation.
    pub docs: Cow<'static, str>,
    /// The parameters, in order.
    pub params: Cow<'static, [ParamInfo]>,
    /// The success type as written in the source (`()` when nothing is returned).
    pub returns: Cow<'static, str>,
    /// The error type as written in the source, for methods returning `Result`.
    pub error: Option<Cow<'static, str>>,
    /// How the method borrows its object.
    pub receiver: Receiver,
    /// Whether the method is `async`.
    pub is_async: bool,
    /// Whether the method is oneway (no reply is sent).
    pub oneway: bool,
    /// Whether the method runs to the end even when its caller cancels or its deadline passes
    /// (`#[dopy(no_cancel)]`).
    pub no_cancel: bool,
}

impl MethodInfo {
    /// Builds a method entry from static data (what `#[dopy::remote]` generates).
    #[allow(clippy::too_many_arguments)]
    pub const fn from_static(
        name: &'static str,
        docs: &'static str,
        params: &'static [ParamInfo],
        returns: &'static str,
        error: Option<&'static str>,
        receiver: Receiver,
        is_async: bool,
        oneway: bool,
        no_cancel: bool,
    ) -> Self {
        MethodInfo {
            name: Cow::Borrowed(name),
            docs: Cow::Borrowed(docs),
            params: Cow::Borrowed(params),
            returns: Cow::Borrowed(returns),
            error: match error {
                Some(e) => Some(Cow::Borrowed(e)),
                None => None,
            },
            receiver,
            is_async,
            oneway,
            no_cancel,
        }
    }

    /// The parameter names, in order.
    pub fn param_names(&self) -> impl Iterator<Item = &str> {
        self.params.iter().map(|p| &*p.name)
    }
}

impl fmt::Display for MethodInfo {
    /// Prints a Rust-like signature: `async fn divide(a: i64, b: i64) -> Result<i64, DivideByZero>`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.oneway {
            f.write_str("oneway ")?;
        }
        if self.is_async {
            f.write_str("async ")?;
        }
        let recv = match self.receiver {
            Receiver::Shared => "&self",
            Receiver::Exclusive => "&mut self",
        };
        write!(f, "fn {}({recv}", self.name)?;
        for p in self.params.iter() {
            write!(f, ", {}: {}", p.name, p.ty)?;
        }
        f.write_str(")")?;
        match &self.error {
            Some(e) => write!(f, " -> Result<{}, {e}>", self.returns),
            None if self.returns == "()" => Ok(()),
            None => write!(f, " -> {}", self.returns),
        }
    }
}

/// One parameter of a remote method.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ParamInfo {
    /// The parameter name as written in the source; named (keyword) arguments use it.
    pub name: Cow<'static, str>,
    /// The parameter type as written in the source.
    pub ty: Cow<'static, str>,
}

impl ParamInfo {
    /// Builds a parameter entry from static data (what `#[dopy::remote]` generates).
    pub const fn from_static(name: &'static str, ty: &'static str) -> Self {
        ParamInfo { name: Cow::Borrowed(name), ty: Cow::Borrowed(ty) }
    }
}
