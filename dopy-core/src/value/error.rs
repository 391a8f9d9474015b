//! The error of [`to_value`](super::to_value) and [`from_value`](super::from_value).

use std::fmt;

/// An error converting a Rust value to or from a [`Value`](super::Value).
///
/// The message says what was expected and what was found, for instance
/// `invalid type: string "x", expected i64`.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{msg}")]
pub struct Error {
    msg: String,
}

impl Error {
    /// Creates an error with the given message.
    pub(crate) fn new(msg: impl fmt::Display) -> Self {
        Self { msg: msg.to_string() }
    }

    /// Returns the error message.
    pub fn message(&self) -> &str {
        &self.msg
    }
}

impl serde::ser::Error for Error {
    fn custom<T: fmt::Display>(msg: T) -> Self {
        Self::new(msg)
    }
}

impl serde::de::Error for Error {
    fn custom<T: fmt::Display>(msg: T) -> Self {
        Self::new(msg)
    }
}
