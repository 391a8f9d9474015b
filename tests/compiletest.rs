//! Compile-fail tests of `#[dopy::remote]`: each file in `tests/ui` makes one mistake, and its
//! `.stderr` holds the diagnostic users see. Regenerate with `TRYBUILD=overwrite cargo test
//! --test compiletest` and review the diff.

/// Every mistake gets a clear error at the offending tokens, and nothing else.
#[test]
fn ui() {
    let t = trybuild::TestCases::new();
    t.compile_fail("tests/ui/*.rs");
}
