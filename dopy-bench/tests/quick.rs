//! The benchmark program runs every workload in quick mode and prints every row (figures are
//! read by people, never asserted).

use std::process::Command;

/// Every row label the table must have.
const ROWS: [&str; 9] = [
    "idle connection, server (KiB/conn)",
    "exported object (B/object)",
    "add, sequential p50 (us)",
    "add, sequential p99 (us)",
    "add, 64 in flight on 1 conn (calls/s)",
    "echo 1 MiB, Vec<u8> (MiB/s)",
    "echo 1 MiB, byte type (MiB/s)",
    "add, 32 conns x sequential (calls/s)",
    "10 KiB struct result, p50 (us)",
];

/// Runs `dopy-bench` with `args`, which must succeed; returns what it printed.
fn bench(args: &[&str]) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_dopy-bench")).args(args).output().expect("run dopy-bench");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(out.status.success(), "dopy-bench {args:?} failed:\n{stdout}\n{}", String::from_utf8_lossy(&out.stderr));
    stdout
}

/// Runs `dopy-bench` with `args`, which must be refused as a usage error (exit code 2).
fn refused(args: &[&str]) {
    let out = Command::new(env!("CARGO_BIN_EXE_dopy-bench")).args(args).output().expect("run dopy-bench");
    assert_eq!(out.status.code(), Some(2), "dopy-bench {args:?}");
    assert!(String::from_utf8_lossy(&out.stderr).contains("usage: dopy-bench"), "dopy-bench {args:?}");
}

/// How many of the four contenders have a figure in the row `label` of `stdout`.
fn figures(stdout: &str, label: &str) -> usize {
    let line = stdout.lines().find(|l| l.starts_with(label)).unwrap_or_else(|| panic!("no row `{label}`:\n{stdout}"));
    line[label.len()..].split_whitespace().take(4).filter(|f| *f != "-").count()
}

/// `dopy-bench --quick` completes and prints one row per workload, with a figure for every
/// contender that runs it.
#[test]
fn quick_mode_prints_every_row() {
    let stdout = bench(&["--quick"]);
    for label in ROWS {
        let expected = match label {
            "exported object (B/object)" => 1,
            "idle connection, server (KiB/conn)" => 3,
            _ => 4,
        };
        assert_eq!(figures(&stdout, label), expected, "row `{label}` lacks figures:\n{stdout}");
    }
}

/// An unknown option is a usage error (exit code 2), not a run.
#[test]
fn unknown_option_is_a_usage_error() {
    refused(&["--fast"]);
}

/// `--runs N` repeats the timed workloads and says that each figure is a median; `--runs 0` is
/// a usage error.
#[test]
fn repeated_runs_report_medians() {
    let stdout = bench(&["--quick", "--runs", "3", "--only", "seq,fanin", "--impl", "raw,typed"]);
    assert!(stdout.contains("the median of 3 runs"), "{stdout}");
    for label in ["add, sequential p50 (us)", "add, 32 conns x sequential (calls/s)"] {
        assert_eq!(figures(&stdout, label), 2, "{stdout}");
    }
    // Each row once, not once per run.
    assert_eq!(stdout.matches("add, sequential p50 (us)").count(), 1, "{stdout}");
    refused(&["--runs", "0"]);
}

/// `--rounds N` splits each workload's run into N rounds in which the contenders take turns,
/// and says so; a contender that runs has its figure however the work is split (one iteration
/// per round included); `--rounds 0` is a usage error.
#[test]
fn rounds_split_each_run_and_keep_every_figure() {
    let stdout = bench(&["--quick", "--rounds", "5", "--only", "seq,echo-bytes,fanin", "--impl", "raw,typed,dynamic"]);
    assert!(stdout.contains("each run in 5 rounds"), "{stdout}");
    for label in ["add, sequential p50 (us)", "echo 1 MiB, byte type (MiB/s)", "add, 32 conns x sequential (calls/s)"] {
        assert_eq!(figures(&stdout, label), 3, "{stdout}");
    }
    refused(&["--rounds", "0"]);
}
