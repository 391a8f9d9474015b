//! Shared by the integration tests: the calculator every test serves ([`calculator`]), server
//! helpers, waiting for a condition ([`wait`]) and temporary directories; the transport
//! conformance suite ([`harness`]), child processes for the services' tests ([`services`]),
//! a misbehaving peer ([`faulty`]) and a name-server hub ([`hub`]).
#![allow(dead_code, unreachable_pub)]

use dopy::{Endpoint, Node};

pub mod calculator;
pub mod faulty;
#[macro_use]
pub mod harness;
pub mod hub;
pub mod services;
pub mod wait;

pub use calculator::*;
#[allow(unused_imports)]
pub use wait::{eventually, eventually_blocking};

/// Resident memory of this process (clients and servers alike), in bytes.
pub fn rss() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let line = status.lines().find(|l| l.starts_with("VmRSS:")).unwrap();
    let kib: u64 = line.split_whitespace().nth(1).unwrap().parse().unwrap();
    kib * 1024
}

/// A fresh directory under the system's temporary directory, removed (with its contents) when
/// dropped; `label` shows in its name.
pub fn temp_dir(label: &str) -> tempfile::TempDir {
    tempfile::Builder::new().prefix(&format!("dopy-{label}-")).tempdir().unwrap()
}

/// Starts a node serving a fresh calculator as `calc` on 127.0.0.1:0.
pub async fn start_server() -> (Node, Endpoint) {
    start_server_with(Calculator::default()).await
}

/// Starts a node serving `calc` on 127.0.0.1:0.
pub async fn start_server_with(calc: Calculator) -> (Node, Endpoint) {
    let node = Node::builder().name("test-server").build();
    node.publish("calc", calc).unwrap();
    let addr = node.listen("tcp://127.0.0.1:0").await.unwrap();
    (node, addr)
}

/// A typed proxy to `calc` at `addr`, from a fresh client node.
pub async fn calc_proxy(addr: &Endpoint) -> CalculatorProxy {
    Node::new().proxy(&format!("{addr}/calc")).await.unwrap()
}
