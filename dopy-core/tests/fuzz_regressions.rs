//! Replays the inputs the fuzz targets (`fuzz/`, see `docs/FUZZING.md`) found crashing, and the
//! committed seed corpus, through the fuzz targets' own checks (`fuzz/src/checks.rs`, included
//! here), so that a fixed bug stays fixed without running a fuzzer.
//!
//! A crash input goes to `tests/fuzz_regressions/<target>/` (`frame`, `message`, `value`,
//! `dispatch`), named after what it broke.

use std::path::{Path, PathBuf};

use dopy_core::dispatch::{Dispatch, Dispatched, Invocation};
use dopy_core::interface::Interface;
use dopy_core::table::{Entry, ObjectTable};
use dopy_core::{DynObject, Value};

#[allow(dead_code, unreachable_pub)]
#[path = "../../fuzz/src/checks.rs"]
mod checks;

use checks::{Point, Shape};

/// The files of the regression directory and of the fuzz corpus of `target`.
fn inputs(target: &str) -> Vec<PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let dirs = [root.join("tests/fuzz_regressions").join(target), root.join("../fuzz/corpus").join(target)];
    let mut files: Vec<PathBuf> = dirs
        .iter()
        .filter_map(|dir| std::fs::read_dir(dir).ok())
        .flatten()
        .map(|entry| entry.expect("directory entry").path())
        .filter(|path| path.is_file() && !path.file_name().is_some_and(|n| n.to_string_lossy().starts_with('.')))
        .collect();
    files.sort();
    files
}

/// Runs `check` on every input of `target`, naming the input that fails.
fn replay(target: &str, check: impl Fn(&[u8])) {
    let files = inputs(target);
    assert!(!files.is_empty(), "no inputs for `{target}`: the seed corpus is missing");
    for path in files {
        let data = std::fs::read(&path).expect("readable input");
        let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| check(&data)));
        assert!(result.is_ok(), "{} fails the `{target}` checks", path.display());
    }
}

/// Frame-reader crash inputs and seeds are read as the protocol defines frames.
#[test]
fn frame_inputs_pass_the_frame_checks() {
    replay("frame", checks::check_frames);
}

/// Message-decoder crash inputs and seeds decode to a message or an error, consistently.
#[test]
fn message_inputs_pass_the_message_checks() {
    replay("message", checks::check_message);
}

/// `Value`-decoder crash inputs and seeds decode to a value or an error, and round-trip.
#[test]
fn value_inputs_pass_the_value_checks() {
    replay("value", checks::check_value);
}

/// A hand-written dispatcher with the signatures of the fuzz target's `#[dopy::remote]`
/// object: argument decoding is the same `Invocation::decode_args` the macro's code calls.
struct Calc;

impl Dispatch for Calc {
    fn interface(&self) -> Interface {
        Interface::from_static("Calc", "", &[])
    }

    fn dispatch(&self, mut inv: Invocation) -> Dispatched<'_> {
        let r = inv.responder();
        let reply = match inv.method() {
            "add" | "divide" => inv.decode_args::<(i64, i64)>(&["a", "b"]).and_then(|(a, b)| r.ok(&a.wrapping_add(b))),
            "accumulate" => inv.decode_args::<(i64,)>(&["x"]).and_then(|(x,)| r.ok(&x)),
            "total" => inv.decode_args::<()>(&[]).and_then(|()| r.ok(&0i64)),
            "centroid" => inv.decode_args::<(Vec<Point>,)>(&["points"]).and_then(|(p,)| r.ok(&p)),
            "area" => inv.decode_args::<(Shape,)>(&["shape"]).and_then(|(s,)| r.ok(&s)),
            "word_count" => inv.decode_args::<(String, Option<usize>)>(&["text", "min_len"]).and_then(|a| r.ok(&a)),
            "wide" => {
                inv.decode_args::<(i128, u128, serde_bytes::ByteBuf)>(&["a", "b", "bytes"]).and_then(|a| r.ok(&a))
            }
            "echo" => inv.decode_args::<(Value,)>(&["value"]).and_then(|(v,)| r.ok(&v)),
            "small" => inv
                .decode_args::<(char, u8, i16, bool, (u32, Option<String>))>(&["c", "n", "m", "flag", "pair"])
                .and_then(|a| r.ok(&format!("{a:?}"))),
            "has_ref" => inv.decode_args::<(Option<DynObject>,)>(&["obj"]).and_then(|(o,)| r.ok(&o.is_some())),
            _ => return Dispatched::NotFound(inv),
        };
        Dispatched::Ready(reply)
    }
}

/// Dispatch crash inputs and seeds run through an object's `Entry::call` without a panic, and
/// fail only with faults of the expected kinds.
#[test]
fn dispatch_inputs_pass_the_dispatch_checks() {
    let table = ObjectTable::new();
    assert!(table.publish(checks::OBJECT_NAME, Entry::new(checks::OBJECT_NAME, Calc)));
    let rt = tokio::runtime::Builder::new_current_thread().build().unwrap();
    replay("dispatch", |data| checks::check_dispatch(data, &table, &rt));
}
