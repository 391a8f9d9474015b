//! This process's own stdin/stdout as a stream: how a server started by `exec:` or `ssh://`
//! talks to the process that started it.
//!
//! When stdin and stdout are pipes or sockets (as under `ssh` or a parent process), they are
//! read and written without blocking threads, so nothing keeps the runtime from shutting down
//! once the connection ends. Otherwise (a terminal, a file) tokio's blocking stdio is used.
//!
//! While a process serves on its stdio, nothing else may write to its stdout: the first stray
//! byte corrupts the protocol. Log to stderr.

use std::fs::File;
use std::io;
use std::os::fd::AsFd;
use std::os::unix::fs::FileTypeExt;

use tokio::net::unix::pipe;

use crate::{BoxRead, BoxWrite, LinkInfo, RawStream, Role};

/// This process's stdin (to read) and stdout (to write) as the accepting end of a stream.
///
/// # Errors
///
/// The operating system's error if stdin or stdout cannot be duplicated.
pub fn stdio() -> io::Result<RawStream> {
    let info =
        LinkInfo { transport: "stdio", local: format!("pid {}", std::process::id()), peer: "stdin/stdout".into() };
    Ok(RawStream::new(reader()?, writer()?, info, Role::Acceptor))
}

fn reader() -> io::Result<BoxRead> {
    let file = File::from(io::stdin().as_fd().try_clone_to_owned()?);
    let kind = file.metadata()?.file_type();
    if kind.is_fifo() {
        return Ok(Box::new(pipe::Receiver::from_file(file)?));
    }
    if kind.is_socket() {
        return Ok(Box::new(socket(file)?));
    }
    Ok(Box::new(tokio::io::stdin()))
}

fn writer() -> io::Result<BoxWrite> {
    let file = File::from(io::stdout().as_fd().try_clone_to_owned()?);
    let kind = file.metadata()?.file_type();
    if kind.is_fifo() {
        return Ok(Box::new(pipe::Sender::from_file(file)?));
    }
    if kind.is_socket() {
        return Ok(Box::new(socket(file)?));
    }
    Ok(Box::new(tokio::io::stdout()))
}

/// A descriptor that is a Unix socket, as a non-blocking stream.
fn socket(file: File) -> io::Result<tokio::net::UnixStream> {
    let stream = std::os::unix::net::UnixStream::from(std::os::fd::OwnedFd::from(file));
    stream.set_nonblocking(true)?;
    tokio::net::UnixStream::from_std(stream)
}
