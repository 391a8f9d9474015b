//! Which object a call is for: [`Target`], a name or an [`ObjectId`].
//!
//! A leaf of dopy-core: object handles, messages and connections all name objects this way.

use serde::{Deserialize, Serialize};

/// The id of an object exported by reference: 128 random bits, unguessable.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct ObjectId(pub [u8; 16]);

impl ObjectId {
    /// Draws a fresh random id from the operating system's generator.
    pub fn random() -> Self {
        ObjectId(rand::random())
    }
}

impl std::fmt::Debug for ObjectId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Display::fmt(self, f)
    }
}

impl std::fmt::Display for ObjectId {
    /// Lower-case hex, 32 digits.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.iter().try_for_each(|b| write!(f, "{b:02x}"))
    }
}

/// Which object a call is for.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[non_exhaustive]
pub enum Target {
    /// An object published under a name.
    Name(String),
    /// An object exported by reference.
    Id(ObjectId),
}

impl std::fmt::Display for Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Target::Name(n) => f.write_str(n),
            Target::Id(id) => write!(f, "#{id}"),
        }
    }
}
