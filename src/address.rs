//! Addresses: URLs naming a transport, an endpoint and (optionally) an object.
//!
//! | form | meaning |
//! |---|---|
//! | `tcp://HOST:PORT` | a TCP endpoint (`HOST` may be a name, an IPv4 address or `[IPv6]`) |
//! | `tcp://HOST:PORT/OBJECT` | the object published as `OBJECT` there |
//!
//! Addresses parse with [`str::parse`] and print back the same way.

use std::fmt;
use std::str::FromStr;

use crate::Error;

/// Where a node can be reached: a transport and its location.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Endpoint {
    /// TCP: `tcp://HOST:PORT`.
    Tcp {
        /// Host name or IP address (IPv6 without brackets).
        host: String,
        /// Port number.
        port: u16,
    },
}

impl Endpoint {
    /// The transport scheme (`tcp`).
    pub fn scheme(&self) -> &'static str {
        match self {
            Endpoint::Tcp { .. } => "tcp",
        }
    }
}

impl fmt::Display for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Endpoint::Tcp { host, port } if host.contains(':') => write!(f, "tcp://[{host}]:{port}"),
            Endpoint::Tcp { host, port } => write!(f, "tcp://{host}:{port}"),
        }
    }
}

impl FromStr for Endpoint {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self, Error> {
        let addr: Address = s.parse()?;
        match addr.object {
            None => Ok(addr.endpoint),
            Some(_) => Err(invalid(s, "expected an endpoint without an object name")),
        }
    }
}

/// An endpoint and, optionally, the name of an object published there.
///
/// # Examples
///
/// ```
/// use dopy::{Address, Endpoint};
///
/// let a: Address = "tcp://127.0.0.1:9600/calc".parse()?;
/// assert_eq!(a.endpoint, Endpoint::Tcp { host: "127.0.0.1".into(), port: 9600 });
/// assert_eq!(a.object.as_deref(), Some("calc"));
/// assert_eq!(a.to_string(), "tcp://127.0.0.1:9600/calc");
/// # Ok::<(), dopy::Error>(())
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Address {
    /// Where the node is.
    pub endpoint: Endpoint,
    /// The object's published name, if the address names one.
    pub object: Option<String>,
}

impl fmt::Display for Address {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.endpoint)?;
        match &self.object {
            Some(o) => write!(f, "/{o}"),
            None => Ok(()),
        }
    }
}

fn invalid(address: &str, reason: &str) -> Error {
    Error::InvalidAddress { address: address.to_owned(), reason: reason.to_owned() }
}

impl FromStr for Address {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self, Error> {
        let Some((scheme, rest)) = s.split_once("://") else {
            return Err(invalid(s, "expected `SCHEME://...`, for instance `tcp://127.0.0.1:9600/calc`"));
        };
        match scheme {
            "tcp" => {
                let (authority, object) = match rest.split_once('/') {
                    Some((a, o)) => (a, Some(o)),
                    None => (rest, None),
                };
                let (host, port) =
                    authority.rsplit_once(':').ok_or_else(|| invalid(s, "expected `HOST:PORT` after `tcp://`"))?;
                let host = match host.strip_prefix('[') {
                    Some(h) => h.strip_suffix(']').ok_or_else(|| invalid(s, "unclosed `[` in the host"))?,
                    None if host.contains(':') => return Err(invalid(s, "write IPv6 hosts in brackets: `[::1]:9600`")),
                    None => host,
                };
                if host.is_empty() {
                    return Err(invalid(s, "the host is empty"));
                }
                let port = port.parse::<u16>().map_err(|_| invalid(s, "the port is not a number from 0 to 65535"))?;
                let object = match object {
                    Some("") | None => None,
                    Some(o) => Some(o.to_owned()),
                };
                Ok(Address { endpoint: Endpoint::Tcp { host: host.to_owned(), port }, object })
            }
            other => Err(invalid(s, &format!("unknown transport `{other}` (supported: tcp)"))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_and_print_round_trip() {
        for s in ["tcp://localhost:1", "tcp://127.0.0.1:9600/calc", "tcp://[::1]:80/a/b"] {
            assert_eq!(s.parse::<Address>().unwrap().to_string(), s);
        }
    }

    #[test]
    fn bad_addresses_say_why() {
        let cases = [
            ("calc", "SCHEME://"),
            ("udp://x:1", "unknown transport `udp`"),
            ("tcp://host", "HOST:PORT"),
            ("tcp://host:99999", "port"),
            ("tcp://:80", "host is empty"),
            ("tcp://::1:80", "brackets"),
        ];
        for (s, want) in cases {
            let err = s.parse::<Address>().unwrap_err().to_string();
            assert!(err.contains(want), "{s}: {err}");
        }
    }
}
