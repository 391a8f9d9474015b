//! The examples as programs a person runs: a failure prints a readable message and exits 1,
//! never a debug dump of the error.

use std::path::PathBuf;
use std::process::{Command, Stdio};

/// Builds the example `name` of `package` (in the profile of this test); returns its path.
fn built_example(package: &str, name: &str) -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    // The test runs from `target/PROFILE/deps/`; the example goes to `target/PROFILE/examples/`.
    let profile_dir = exe.parent().and_then(|deps| deps.parent()).unwrap();
    let profile = match profile_dir.file_name().and_then(|n| n.to_str()) {
        Some("debug") | None => "dev",
        Some(other) => other,
    };
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let status = Command::new(cargo)
        .args(["build", "--quiet", "-p", package, "--example", name, "--profile", profile, "--manifest-path"])
        .arg(concat!(env!("CARGO_MANIFEST_DIR"), "/Cargo.toml"))
        .env("CARGO_TARGET_DIR", profile_dir.parent().unwrap())
        .status()
        .unwrap();
    assert!(status.success(), "cargo build --example {name}: {status}");
    profile_dir.join("examples").join(name)
}

/// `dopy_names` on a port in use says so in words, on stderr, and exits with 1.
#[test]
fn dopy_names_on_a_busy_port_prints_a_readable_error() {
    let busy = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let endpoint = format!("tcp://{}", busy.local_addr().unwrap());
    let dir = tempfile::Builder::new().prefix("dopy-example-busy-").tempdir().unwrap();
    let db = dir.path().join("names.redb");
    let output = Command::new(built_example("dopy", "dopy_names"))
        .args([&endpoint, db.to_str().unwrap()])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let stderr = String::from_utf8(output.stderr).unwrap();
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(stderr.starts_with("error: ") && stderr.to_lowercase().contains("in use"), "{stderr}");
    assert!(!stderr.contains("Custom {") && !stderr.contains("kind:"), "a debug dump: {stderr}");
}

/// The CLI's `calc_server` on a port in use: the same readable error.
#[test]
fn calc_server_on_a_busy_port_prints_a_readable_error() {
    let busy = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let endpoint = format!("tcp://{}", busy.local_addr().unwrap());
    let output =
        Command::new(built_example("dopy-cli", "calc_server")).arg(&endpoint).stdin(Stdio::null()).output().unwrap();
    let stderr = String::from_utf8(output.stderr).unwrap();
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(stderr.starts_with("error: ") && stderr.to_lowercase().contains("in use"), "{stderr}");
    assert!(!stderr.contains("Custom {") && !stderr.contains("kind:"), "a debug dump: {stderr}");
}
