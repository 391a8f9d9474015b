//! [`Capture`]: what a `tracing` fmt subscriber writes, collected for assertions.
//!
//! Included by the test files that read logs (`#[path = "support/capture.rs"] mod capture;`).
#![allow(unreachable_pub)]

use std::io::Write;
use std::sync::{Arc, Mutex};

/// Collects everything the fmt subscriber writes; clones share the buffer.
#[derive(Clone, Default)]
pub struct Capture(pub Arc<Mutex<Vec<u8>>>);

impl Write for Capture {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}
