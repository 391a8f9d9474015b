//! Compile tests of `#[dopy::remote]`: each file in `tests/ui` makes one mistake, and its
//! `.stderr` holds the diagnostic users see; each file in `tests/ui/pass` is valid and compiles.
//! Regenerate with `TRYBUILD=overwrite cargo test --test compiletest` and review the diff.

/// Every mistake gets a clear error at the offending tokens, and nothing else; valid code compiles.
#[test]
fn ui() {
    let t = trybuild::TestCases::new();
    t.compile_fail("tests/ui/*.rs");
    t.pass("tests/ui/pass/*.rs");
}
