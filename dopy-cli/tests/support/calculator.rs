//! The calculator the CLI tests and the `calc_server` example serve: the workspace tests' own
//! fixture, included rather than copied so that one calculator serves every test.
#![allow(unused_imports, unreachable_pub)] // Each includer uses some of it; the module is private.

#[path = "../../../tests/support/calculator.rs"]
mod fixture;

pub use fixture::*;
