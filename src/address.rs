//! Addresses: one string names a transport, an endpoint and (optionally) an object.
//!
//! | endpoint | with an object | transport |
//! |---|---|---|
//! | `tcp://HOST:PORT` | `tcp://HOST:PORT/OBJECT` | TCP (`HOST`: a name, IPv4, or `[IPv6]`) |
//! | `tls://HOST:PORT` | `tls://HOST:PORT/OBJECT` | TLS over TCP; the certificate must name `HOST` |
//! | `unix:PATH` | `unix:PATH#OBJECT` | a Unix domain socket (absolute or relative path) |
//! | `memory://NAME` | `memory://NAME/OBJECT` | an in-process listener of this process |
//! | `exec:COMMAND ARGS...` | `exec:COMMAND ARGS...#OBJECT` | a child process's stdin/stdout |
//! | `ssh://[USER@]HOST[:PORT][?QUERY]` | `ssh://[USER@]HOST[:PORT]/OBJECT[?QUERY]` | a remote command through `ssh` |
//!
//! - Where the endpoint ends in a path or a command line (`unix:`, `exec:`), `#` separates the
//!   object, since `/` belongs to the path. [`Endpoint::object`] composes the right form for
//!   every transport; `format!("{endpoint}/{object}")` works for `tcp`, `tls`, `memory` and for
//!   `ssh` endpoints without a query.
//! - `exec:` words are split as a POSIX shell splits them: on spaces, tabs and newlines, with
//!   `'...'`, `"..."` and `\` quoting (no variables, no globbing: the command runs directly,
//!   not through a shell). A `#` inside quotes belongs to the command.
//! - `ssh://` query parameters, each percent-encoded (`%20` for a space): `cmd=COMMAND`, the
//!   remote command (default `dopy-serve --stdio`), and `o=OPTION`, an ssh option passed as
//!   `-o OPTION` (repeatable), e.g.
//!   `ssh://alice@build:2222/calc?cmd=/opt/bin/dopy-serve%20--stdio&o=IdentityFile=/keys/id`.
//!
//! Addresses parse with [`str::parse`] and print back the same way.

use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
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
    /// TLS over TCP: `tls://HOST:PORT`; the server's certificate must name `host`.
    Tls {
        /// Host name or IP address (IPv6 without brackets).
        host: String,
        /// Port number.
        port: u16,
    },
    /// A Unix domain socket: `unix:PATH`.
    Unix {
        /// The socket file's path.
        path: PathBuf,
    },
    /// An in-process listener: `memory://NAME`.
    Memory {
        /// The listener's name, unique in the process.
        name: String,
    },
    /// A child process speaking over its stdin/stdout: `exec:COMMAND ARGS...`.
    Exec {
        /// The program and its arguments.
        command: Vec<String>,
    },
    /// A remote command run through the system `ssh` client:
    /// `ssh://[USER@]HOST[:PORT][?cmd=COMMAND&o=OPTION...]`.
    Ssh {
        /// The remote user; `None` for ssh's default.
        user: Option<String>,
        /// The remote host (a name, an address, or an alias of `~/.ssh/config`).
        host: String,
        /// The remote port; `None` for ssh's default.
        port: Option<u16>,
        /// The remote command; `None` for `dopy-serve --stdio`.
        command: Option<String>,
        /// Options passed to ssh as `-o OPTION`.
        options: Vec<String>,
    },
}

impl Endpoint {
    /// The transport scheme: `tcp`, `tls`, `unix`, `memory`, `exec` or `ssh`.
    pub fn scheme(&self) -> &'static str {
        match self {
            Endpoint::Tcp { .. } => "tcp",
            Endpoint::Tls { .. } => "tls",
            Endpoint::Unix { .. } => "unix",
            Endpoint::Memory { .. } => "memory",
            Endpoint::Exec { .. } => "exec",
            Endpoint::Ssh { .. } => "ssh",
        }
    }

    /// The address of the object published as `name` at this endpoint, in the right form for
    /// the transport.
    ///
    /// # Examples
    ///
    /// ```
    /// let unix: dopy::Endpoint = "unix:/run/app.sock".parse()?;
    /// assert_eq!(unix.object("calc").to_string(), "unix:/run/app.sock#calc");
    /// let tcp: dopy::Endpoint = "tcp://127.0.0.1:9600".parse()?;
    /// assert_eq!(tcp.object("calc").to_string(), "tcp://127.0.0.1:9600/calc");
    /// # Ok::<(), dopy::Error>(())
    /// ```
    pub fn object(&self, name: impl Into<String>) -> Address {
        Address { endpoint: self.clone(), object: Some(name.into()) }
    }

    /// The socket address of a `tcp://` or `tls://` endpoint whose host is an IP address, as it
    /// always is in the endpoint [`Node::listen`](crate::Node::listen) returns (with the port
    /// picked for port 0); `None` for other transports and for a host name.
    ///
    /// # Examples
    ///
    /// ```
    /// # #[tokio::main] async fn main() -> dopy::Result<()> {
    /// let node = dopy::Node::new();
    /// let bound = node.listen("tcp://127.0.0.1:0").await?;
    /// let addr = bound.socket_addr().expect("a TCP endpoint");
    /// assert!(addr.ip().is_loopback() && addr.port() != 0);
    ///
    /// let named: dopy::Endpoint = "tcp://localhost:9600".parse()?;
    /// assert_eq!(named.socket_addr(), None);
    /// # Ok(())
    /// # }
    /// ```
    pub fn socket_addr(&self) -> Option<SocketAddr> {
        match self {
            Endpoint::Tcp { host, port } | Endpoint::Tls { host, port } => {
                host.parse::<IpAddr>().ok().map(|ip| SocketAddr::new(ip, *port))
            }
            _ => None,
        }
    }

    /// How an address of this transport names an object, for error messages.
    pub(crate) fn object_hint(&self) -> String {
        let example = self.object("calc");
        format!("expected an object name, e.g. `{example}`")
    }
}

impl fmt::Display for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Endpoint::Tcp { host, port } | Endpoint::Tls { host, port } => {
                write!(f, "{}://{}:{port}", self.scheme(), Host(host))
            }
            Endpoint::Unix { path } => write!(f, "unix:{}", path.display()),
            Endpoint::Memory { name } => write!(f, "memory://{name}"),
            Endpoint::Exec { command } => {
                f.write_str("exec:")?;
                for (i, word) in command.iter().enumerate() {
                    if i > 0 {
                        f.write_str(" ")?;
                    }
                    write_word(f, word)?;
                }
                Ok(())
            }
            Endpoint::Ssh { .. } => write_ssh(f, self, None),
        }
    }
}

/// A host, in brackets if it is an IPv6 address.
struct Host<'a>(&'a str);

impl fmt::Display for Host<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0.contains(':') {
            write!(f, "[{}]", self.0)
        } else {
            f.write_str(self.0)
        }
    }
}

fn write_ssh(f: &mut fmt::Formatter<'_>, endpoint: &Endpoint, object: Option<&str>) -> fmt::Result {
    let Endpoint::Ssh { user, host, port, command, options } = endpoint else { return Ok(()) };
    f.write_str("ssh://")?;
    if let Some(user) = user {
        write!(f, "{}@", Encoded(user))?;
    }
    write!(f, "{}", Host(host))?;
    if let Some(port) = port {
        write!(f, ":{port}")?;
    }
    if let Some(object) = object {
        write!(f, "/{object}")?;
    }
    let params = command.iter().map(|c| ("cmd", c)).chain(options.iter().map(|o| ("o", o)));
    for (i, (key, value)) in params.enumerate() {
        write!(f, "{}{key}={}", if i == 0 { '?' } else { '&' }, Encoded(value))?;
    }
    Ok(())
}

/// Writes an `exec:` word, quoting it if needed.
fn write_word(f: &mut fmt::Formatter<'_>, word: &str) -> fmt::Result {
    let plain = !word.is_empty() && !word.chars().any(|c| c.is_whitespace() || matches!(c, '\'' | '"' | '\\' | '#'));
    if plain {
        f.write_str(word)
    } else {
        write!(f, "'{}'", word.replace('\'', r"'\''"))
    }
}

/// Percent-encodes a query value: everything but unreserved characters and `/:=,@+`.
struct Encoded<'a>(&'a str);

impl fmt::Display for Encoded<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for b in self.0.bytes() {
            if b.is_ascii_alphanumeric() || b"-._~/:=,@+".contains(&b) {
                write!(f, "{}", b as char)?;
            } else {
                write!(f, "%{b:02X}")?;
            }
        }
        Ok(())
    }
}

fn percent_decode(s: &str, whole: &str) -> Result<String, Error> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = bytes.get(i + 1..i + 3).and_then(|h| std::str::from_utf8(h).ok());
            let byte = hex.and_then(|h| u8::from_str_radix(h, 16).ok());
            let byte = byte.ok_or_else(|| invalid(whole, "`%` must be followed by two hex digits"))?;
            out.push(byte);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).map_err(|_| invalid(whole, "a percent-encoded value is not UTF-8"))
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
///
/// let a: Address = "exec:dopy-serve --stdio#calc".parse()?;
/// assert_eq!(a.endpoint, Endpoint::Exec { command: vec!["dopy-serve".into(), "--stdio".into()] });
/// assert_eq!(a.object.as_deref(), Some("calc"));
/// # Ok::<(), dopy::Error>(())
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Address {
    /// Where the node is.
    pub endpoint: Endpoint,
    /// The object's published name, if the address names one.
    pub object: Option<String>,
}

/// Anything that names an [`Address`]: its text (`&str`, `String`), or an [`Address`] itself
/// (as [`Endpoint::object`] returns it), by value or by reference.
///
/// [`Node::object`](crate::Node::object) and [`Node::proxy`](crate::Node::proxy) take any of
/// them, so the address of an object on a node just bound needs no round trip through text.
///
/// # Examples
///
/// ```
/// # #[tokio::main] async fn main() -> dopy::Result<()> {
/// let server = dopy::Node::new();
/// let bound = server.listen("tcp://127.0.0.1:0").await?;
/// let client = dopy::Node::new();
/// let _by_address = client.object(bound.object("calc")).await?;
/// let _by_text = client.object(&format!("{bound}/calc")).await?;
/// # Ok(())
/// # }
/// ```
pub trait IntoAddress {
    /// The address; [`Error::InvalidAddress`] if the text is not one.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidAddress`] for text that does not parse.
    fn into_address(self) -> Result<Address, Error>;
}

impl IntoAddress for Address {
    fn into_address(self) -> Result<Address, Error> {
        Ok(self)
    }
}

impl IntoAddress for &Address {
    fn into_address(self) -> Result<Address, Error> {
        Ok(self.clone())
    }
}

impl IntoAddress for &str {
    fn into_address(self) -> Result<Address, Error> {
        self.parse()
    }
}

impl IntoAddress for String {
    fn into_address(self) -> Result<Address, Error> {
        self.parse()
    }
}

impl IntoAddress for &String {
    fn into_address(self) -> Result<Address, Error> {
        self.parse()
    }
}

impl fmt::Display for Address {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let Some(object) = &self.object else { return write!(f, "{}", self.endpoint) };
        match &self.endpoint {
            Endpoint::Unix { .. } | Endpoint::Exec { .. } => write!(f, "{}#{object}", self.endpoint),
            Endpoint::Ssh { .. } => write_ssh(f, &self.endpoint, Some(object)),
            _ => write!(f, "{}/{object}", self.endpoint),
        }
    }
}

fn invalid(address: &str, reason: &str) -> Error {
    Error::InvalidAddress { address: address.to_owned(), reason: reason.to_owned() }
}

/// `Some(name)` for a non-empty object name.
fn object_name(o: Option<&str>) -> Option<String> {
    o.filter(|o| !o.is_empty()).map(str::to_owned)
}

/// Splits `[HOST]:PORT` or `HOST:PORT`; the port is optional only if `port_optional`.
fn host_port<'a>(s: &'a str, authority: &'a str, port_optional: bool) -> Result<(&'a str, Option<u16>), Error> {
    let (host, port) = match authority.strip_prefix('[') {
        Some(rest) => {
            let (host, after) = rest.split_once(']').ok_or_else(|| invalid(s, "unclosed `[` in the host"))?;
            match after {
                "" => (host, None),
                _ => (host, Some(after.strip_prefix(':').ok_or_else(|| invalid(s, "expected `:PORT` after `]`"))?)),
            }
        }
        None => match authority.rsplit_once(':') {
            Some((host, _)) if host.contains(':') => {
                return Err(invalid(s, "write IPv6 hosts in brackets: `[::1]:9600`"))
            }
            Some((host, port)) => (host, Some(port)),
            None => (authority, None),
        },
    };
    if host.is_empty() {
        return Err(invalid(s, "the host is empty"));
    }
    let port = match port {
        Some(p) => Some(p.parse::<u16>().map_err(|_| invalid(s, "the port is not a number from 0 to 65535"))?),
        None if port_optional => None,
        None => return Err(invalid(s, "expected `HOST:PORT`")),
    };
    Ok((host, port))
}

/// Splits an `exec:` command line into words (as a POSIX shell would, with `shlex`), up to
/// the first unquoted `#` (the rest is the object).
fn command_words(s: &str, line: &str) -> Result<(Vec<String>, Option<String>), Error> {
    // The first `#` before which the quotes are balanced is outside them: it ends the command.
    for (i, _) in line.match_indices('#') {
        if let Some(words) = shlex::split(&line[..i]) {
            return Ok((words, object_name(Some(&line[i + 1..]))));
        }
    }
    let words =
        shlex::split(line).ok_or_else(|| invalid(s, "unclosed `'` or `\"` in the command, or a `\\` at its end"))?;
    Ok((words, None))
}

fn parse_ssh(s: &str, rest: &str) -> Result<Address, Error> {
    let (location, query) = match rest.split_once('?') {
        Some((l, q)) => (l, Some(q)),
        None => (rest, None),
    };
    let (authority, object) = match location.split_once('/') {
        Some((a, o)) => (a, object_name(Some(o))),
        None => (location, None),
    };
    let (user, hostport) = match authority.rsplit_once('@') {
        Some(("", h)) => return Err(invalid(s, &format!("the user before `@{h}` is empty"))),
        Some((u, h)) => (Some(percent_decode(u, s)?), h),
        None => (None, authority),
    };
    let (host, port) = host_port(s, hostport, true)?;
    if host.starts_with('-') {
        return Err(invalid(s, "the host must not start with `-`"));
    }
    let (mut command, mut options) = (None, Vec::new());
    for param in query.into_iter().flat_map(|q| q.split('&')).filter(|p| !p.is_empty()) {
        let (key, value) = param.split_once('=').ok_or_else(|| invalid(s, "expected `KEY=VALUE` in the query"))?;
        let value = percent_decode(value, s)?;
        match key {
            "cmd" if command.is_some() => return Err(invalid(s, "`cmd` is given twice")),
            "cmd" if value.trim().is_empty() => return Err(invalid(s, "`cmd` is empty")),
            "cmd" => command = Some(value),
            "o" => options.push(value),
            other => {
                return Err(invalid(s, &format!("unknown ssh parameter `{other}` (known: `cmd`, `o`)")));
            }
        }
    }
    let endpoint = Endpoint::Ssh { user, host: host.to_owned(), port, command, options };
    Ok(Address { endpoint, object })
}

impl FromStr for Address {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self, Error> {
        if let Some(rest) = s.strip_prefix("unix:") {
            if rest.starts_with("//") {
                return Err(invalid(s, "write Unix socket addresses as `unix:PATH`, e.g. `unix:/run/app.sock#calc`"));
            }
            let (path, object) = match rest.split_once('#') {
                Some((p, o)) => (p, object_name(Some(o))),
                None => (rest, None),
            };
            if path.is_empty() {
                return Err(invalid(s, "expected a socket path after `unix:`, e.g. `unix:/run/app.sock`"));
            }
            return Ok(Address { endpoint: Endpoint::Unix { path: path.into() }, object });
        }
        if let Some(rest) = s.strip_prefix("exec:") {
            let (command, object) = command_words(s, rest)?;
            if command.is_empty() {
                return Err(invalid(s, "expected a command after `exec:`, e.g. `exec:dopy-serve --stdio#calc`"));
            }
            return Ok(Address { endpoint: Endpoint::Exec { command }, object });
        }
        let Some((scheme, rest)) = s.split_once("://") else {
            return Err(invalid(
                s,
                "expected `SCHEME://...`, `unix:PATH` or `exec:COMMAND`, e.g. `tcp://127.0.0.1:9600/calc`",
            ));
        };
        let split_object = |rest: &'_ str| match rest.split_once('/') {
            Some((a, o)) => (a.to_owned(), object_name(Some(o))),
            None => (rest.to_owned(), None),
        };
        match scheme {
            "tcp" | "tls" => {
                let (authority, object) = split_object(rest);
                let (host, port) = host_port(s, &authority, false)?;
                let (host, port) = (host.to_owned(), port.unwrap_or_default());
                let endpoint =
                    if scheme == "tcp" { Endpoint::Tcp { host, port } } else { Endpoint::Tls { host, port } };
                Ok(Address { endpoint, object })
            }
            "memory" => {
                let (name, object) = split_object(rest);
                if name.is_empty() {
                    return Err(invalid(s, "expected a name after `memory://`"));
                }
                Ok(Address { endpoint: Endpoint::Memory { name }, object })
            }
            "ssh" => parse_ssh(s, rest),
            other => {
                Err(invalid(s, &format!("unknown transport `{other}` (supported: tcp, tls, unix, memory, exec, ssh)")))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_and_print_round_trip() {
        let cases = [
            "tcp://localhost:1",
            "tcp://127.0.0.1:9600/calc",
            "tcp://[::1]:80/a/b",
            "tls://example.org:443/calc",
            "tls://[::1]:9601",
            "unix:/run/dopy.sock",
            "unix:/run/dopy.sock#calc",
            "unix:relative/app.sock#calc",
            "memory://hub",
            "memory://hub/calc",
            "exec:dopy-serve",
            "exec:dopy-serve --stdio#calc",
            "exec:sh -c 'echo hi; exec dopy-serve' 'it'\\''s'#calc",
            "exec:prog '' 'a#b'#obj",
            "ssh://host",
            "ssh://alice@host:2222/calc",
            "ssh://[::1]:22/calc?cmd=/opt/dopy-serve%20--stdio&o=IdentityFile=/k&o=Port=22",
            "ssh://host?o=UserKnownHostsFile=/tmp/known%20hosts",
        ];
        for s in cases {
            let addr = s.parse::<Address>().unwrap_or_else(|e| panic!("{s}: {e}"));
            assert_eq!(addr.to_string(), s);
            assert_eq!(addr.to_string().parse::<Address>().unwrap(), addr);
        }
    }

    #[test]
    fn parts_are_parsed_as_documented() {
        let a: Address = "ssh://alice@host:2222/calc?cmd=serve%20--stdio&o=A=1".parse().unwrap();
        let Endpoint::Ssh { user, host, port, command, options } = &a.endpoint else { panic!() };
        assert_eq!(
            (user.as_deref(), host.as_str(), *port, command.as_deref(), &options[..]),
            (Some("alice"), "host", Some(2222), Some("serve --stdio"), &["A=1".to_owned()][..])
        );
        assert_eq!(a.object.as_deref(), Some("calc"));
        let a: Address = r#"exec:prog "a \"b\"" c\ d 'e#f'#obj"#.parse().unwrap();
        assert_eq!(
            a.endpoint,
            Endpoint::Exec { command: vec!["prog".into(), "a \"b\"".into(), "c d".into(), "e#f".into()] }
        );
        assert_eq!(a.object.as_deref(), Some("obj"));
        let a: Address = "exec:prog\ta\\#b \"#\"#obj#1".parse().unwrap();
        assert_eq!(a.endpoint, Endpoint::Exec { command: vec!["prog".into(), "a#b".into(), "#".into()] });
        assert_eq!(a.object.as_deref(), Some("obj#1"));
        let a: Address = "unix:/tmp/x.sock#calc".parse().unwrap();
        assert_eq!(a.endpoint, Endpoint::Unix { path: "/tmp/x.sock".into() });
    }

    #[test]
    fn every_endpoint_composes_its_object_address() {
        for s in ["tcp://h:1", "tls://h:1", "unix:/s.sock", "memory://m", "exec:a b", "ssh://h?cmd=x"] {
            let endpoint: Endpoint = s.parse().unwrap();
            let addr: Address = endpoint.object("calc").to_string().parse().unwrap();
            assert_eq!(addr.endpoint, endpoint, "{s}");
            assert_eq!(addr.object.as_deref(), Some("calc"), "{s}");
        }
        // The slash form works where the endpoint does not end in a path, command or query.
        for s in ["tcp://h:1", "tls://h:1", "memory://m", "ssh://u@h:22"] {
            let addr: Address = format!("{s}/calc").parse().unwrap();
            assert_eq!(addr.object.as_deref(), Some("calc"), "{s}");
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
            ("memory:///calc", "name after"),
            ("unix:", "socket path"),
            ("unix:///run/x.sock", "unix:PATH"),
            ("exec:", "command after"),
            ("exec:  #calc", "command after"),
            ("exec:a 'b", "unclosed `'`"),
            ("exec:a \"b#c", "unclosed `'` or `\"`"),
            ("exec:a b\\", "a `\\` at its end"),
            ("ssh://-oProxyCommand=x", "must not start with `-`"),
            ("ssh://h?x=1", "unknown ssh parameter `x`"),
            ("ssh://h?cmd=a&cmd=b", "twice"),
            ("ssh://h?cmd=%zz", "hex digits"),
        ];
        for (s, want) in cases {
            let err = s.parse::<Address>().unwrap_err().to_string();
            assert!(err.contains(want), "{s}: {err}");
        }
    }
}
