//! How a command fails: the message for stderr and the exit code.

use std::fmt;
use std::process::ExitCode;

use crate::args::ArgError;

/// The exit codes, as `--help` and the README document them.
pub(crate) const EXIT_CODES: &str = "\
Exit codes:
  0  success
  1  other failure (protocol error, undecodable result, i/o error)
  2  usage error: bad command line or malformed address
  3  connection failure: the address cannot be reached, or the connection dropped
  4  remote error: the method failed or panicked, no such object, no such method
  5  bad arguments: an argument does not fit its parameter (checked locally or by the server)";

/// What kind of failure ended the command; each has its exit code.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Code {
    /// Anything not covered below.
    Other = 1,
    /// A malformed command line (clap reports most of these itself, with the same code).
    Usage = 2,
    /// The address could not be reached, or the connection ended early.
    Connection = 3,
    /// The call reached the serving side and failed there.
    Remote = 4,
    /// An argument did not fit its parameter.
    BadArguments = 5,
}

/// A failed command: what to print on stderr, and the exit code.
#[derive(Debug)]
pub(crate) struct Failure {
    /// The kind of failure.
    pub(crate) code: Code,
    /// The whole message, remote trace included (less its backtrace).
    pub(crate) message: String,
    /// The backtrace the serving side sent with a remote error, printed only with `-v`.
    pub(crate) backtrace: Option<String>,
}

impl Failure {
    /// A failure of kind `code`.
    pub(crate) fn new(code: Code, message: impl Into<String>) -> Self {
        Failure { code, message: message.into(), backtrace: None }
    }

    /// The process exit code.
    pub(crate) fn exit_code(&self) -> ExitCode {
        ExitCode::from(self.code as u8)
    }

    /// Adds a line to the message (a hint).
    pub(crate) fn with_note(mut self, note: impl fmt::Display) -> Self {
        self.message = format!("{}\n{note}", self.message);
        self
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

/// The exit code of a dopy error.
pub(crate) fn classify(err: &dopy::Error) -> Code {
    match err {
        dopy::Error::InvalidAddress { .. } => Code::Usage,
        dopy::Error::Connect { .. } => Code::Connection,
        dopy::Error::Call(e) => classify_call(e),
        _ => Code::Other,
    }
}

/// The exit code of a call's error.
fn classify_call<E>(err: &dopy::CallError<E>) -> Code {
    use dopy::CallError as E;
    match err {
        E::Disconnected(_) => Code::Connection,
        E::BadArguments(_) => Code::BadArguments,
        E::Method { .. }
        | E::Panic(_)
        | E::NoSuchObject(_)
        | E::NoSuchMethod(_)
        | E::Overloaded(_)
        | E::DeadlineExceeded(_)
        | E::Cancelled(_)
        | E::Unauthorized(_) => Code::Remote,
        _ => Code::Other,
    }
}

impl From<dopy::Error> for Failure {
    /// Keeps the whole story (`{:#}` prints the remote trace: message, location, causes), but
    /// sets the server's backtrace apart: it is for `-v`, not for every terminal.
    fn from(mut err: dopy::Error) -> Self {
        let backtrace = err.trace_mut().and_then(|t| t.fault.backtrace.take()).map(|bt| {
            let mut out = String::from("--- remote backtrace ---");
            for line in bt.lines() {
                out += &format!("\n  {line}");
            }
            out
        });
        Failure { code: classify(&err), message: format!("{err:#}"), backtrace }
    }
}

impl<E: serde::Serialize> From<dopy::CallError<E>> for Failure {
    fn from(err: dopy::CallError<E>) -> Self {
        dopy::Error::from(err).into()
    }
}

impl From<ArgError> for Failure {
    fn from(err: ArgError) -> Self {
        Failure::new(Code::BadArguments, err.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_map_to_their_documented_exit_codes() {
        let invalid = dopy::Error::InvalidAddress { address: "x".into(), reason: "bad".into() };
        assert_eq!(classify(&invalid), Code::Usage);
        let gone = dopy::Error::Call(dopy::CallError::Disconnected(dopy::DisconnectCause::Goodbye.into()));
        assert_eq!(classify(&gone), Code::Connection);
        let codec = dopy::Error::Call(dopy::CallError::Codec(dopy::CodecError::new("bad")));
        assert_eq!(classify(&codec), Code::Other);
        for code in [Code::Other, Code::Usage, Code::Connection, Code::Remote, Code::BadArguments] {
            assert!(EXIT_CODES.contains(&format!("  {}  ", code as u8)), "{code:?} is documented");
        }
    }
}
