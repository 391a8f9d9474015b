//! `dopy names`: look up, list, register, remove and watch names in a name service.

use std::time::Duration;

use dopy::naming::{Entry, Event, Names, NamingError};
use dopy::Node;
use serde::Serialize;

use crate::failure::{Code, Failure};

/// Where `dopy names` looks for the name service unless `--names` or `DOPY_NAMES` says.
pub(crate) const DEFAULT_NAMES: &str = "tcp://127.0.0.1:9500";

/// The environment variable naming the name service.
pub(crate) const NAMES_VARIABLE: &str = "DOPY_NAMES";

/// Examples for `dopy names --help`.
pub(crate) const EXAMPLES: &str = "\
Examples (in order; calc_server serves tcp://127.0.0.1:9600/calc):
  dopy serve names --db names.redb                        # in another shell: a name server
  dopy names register calc tcp://127.0.0.1:9600/calc --tag math    # until removed
  dopy names lookup calc                                  # address, tags, lease
  dopy names list ca                                      # names starting with ca
  dopy names list --tag math --json                       # names tagged math, as JSON
  dopy call \"$(dopy names lookup calc --address)\" add 2 3
  dopy names watch                                        # in another shell: changes as they happen
  dopy names remove calc
  dopy names register calc tcp://127.0.0.1:9600/calc --hold        # while this command runs

The name service is at --names ADDRESS, else $DOPY_NAMES, else tcp://127.0.0.1:9500 (its object
`naming`, unless the address names another). A name service with a shared secret takes
--secret-env VAR or --secret-file FILE, as every subcommand that connects.";

/// How to reach the name service, shared by the `names` subcommands.
#[derive(Debug)]
pub(crate) struct Service {
    /// The name service's address.
    pub(crate) address: Option<String>,
    /// Secret, TLS trust and timeout.
    pub(crate) connect: crate::connect::ConnectOptions,
}

impl Service {
    async fn connect(&self) -> Result<(Node, Names), Failure> {
        let address = self.address.clone().unwrap_or_else(default_address);
        let node = self.connect.node("dopy-names")?;
        let timeout = self.connect.connect_timeout;
        let names = crate::connect::within(&address, timeout, Names::connect(&node, &address)).await?;
        Ok((node, names))
    }
}

/// The name service's address unless `--names` says: `$DOPY_NAMES`, else [`DEFAULT_NAMES`].
pub(crate) fn default_address() -> String {
    std::env::var(NAMES_VARIABLE).ok().filter(|a| !a.is_empty()).unwrap_or_else(|| DEFAULT_NAMES.to_owned())
}

fn failed(e: dopy::CallError<NamingError>) -> Failure {
    e.into()
}

/// An entry as `--json` prints it.
#[derive(Serialize)]
struct JsonEntry<'a> {
    name: &'a str,
    address: Option<&'a str>,
    by_reference: bool,
    tags: Vec<&'a str>,
    lease_ms: Option<u64>,
}

fn json(entry: &Entry) -> JsonEntry<'_> {
    JsonEntry {
        name: &entry.name,
        address: entry.address.as_deref(),
        by_reference: entry.object.is_some(),
        tags: entry.tags.iter().map(String::as_str).collect(),
        lease_ms: entry.lease_ms,
    }
}

fn to_json(value: &impl Serialize) -> Result<String, Failure> {
    serde_json::to_string(value).map_err(|e| Failure::new(Code::Other, format!("cannot print JSON: {e}")))
}

/// One line: `NAME  ADDRESS  tags=a,b  lease=10s`.
fn line(entry: &Entry, width: usize) -> String {
    let target = match (&entry.address, &entry.object) {
        (Some(address), None) => address.clone(),
        (Some(address), Some(_)) => format!("{address} (and by reference)"),
        (None, Some(_)) => "(by reference)".to_owned(),
        (None, None) => "(unreachable until renewed)".to_owned(),
    };
    let mut out = format!("{:width$}  {target}", entry.name);
    if !entry.tags.is_empty() {
        out += &format!("  tags={}", entry.tags.iter().cloned().collect::<Vec<_>>().join(","));
    }
    out += &match entry.lease_ms {
        Some(ms) => format!("  lease={}", crate::seconds(Duration::from_millis(ms))),
        None => "  permanent".to_owned(),
    };
    out
}

/// `dopy names list`.
pub(crate) async fn list(service: &Service, prefix: &str, tags: &[String], as_json: bool) -> Result<(), Failure> {
    let (_node, names) = service.connect().await?;
    let mut entries = names.list(prefix).await?;
    entries.retain(|e| tags.iter().all(|t| e.tags.contains(t)));
    if as_json {
        return crate::emit(to_json(&entries.iter().map(json).collect::<Vec<_>>())?);
    }
    let width = entries.iter().map(|e| e.name.chars().count()).max().unwrap_or(0);
    for entry in &entries {
        crate::emit(line(entry, width))?;
    }
    Ok(())
}

/// What `dopy names lookup` prints.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Show {
    /// The whole entry, on one line.
    Line,
    /// The entry as JSON.
    Json,
    /// The address alone (for `dopy call "$(dopy names lookup NAME --address)" ...`).
    Address,
}

/// `dopy names lookup`.
pub(crate) async fn lookup(service: &Service, name: &str, show: Show) -> Result<(), Failure> {
    let (_node, names) = service.connect().await?;
    let entry = names.entry(name).await.map_err(failed)?;
    match show {
        Show::Line => crate::emit(line(&entry, 0)),
        Show::Json => crate::emit(to_json(&json(&entry))?),
        Show::Address => match &entry.address {
            Some(address) => crate::emit(address),
            None => Err(Failure::new(Code::Remote, format!("`{name}` is registered by reference only: no address"))),
        },
    }
}

/// What to register.
#[derive(Debug)]
pub(crate) struct Registering<'a> {
    pub(crate) name: &'a str,
    pub(crate) address: &'a str,
    pub(crate) tags: &'a [String],
    pub(crate) replace: bool,
    pub(crate) hold: bool,
    pub(crate) lease: Option<Duration>,
}

/// `dopy names register`: until removed, for a lease, or held (renewed) while the command runs.
pub(crate) async fn register(service: &Service, r: Registering<'_>) -> Result<(), Failure> {
    let (_node, names) = service.connect().await?;
    if r.hold {
        let mut registering = names.register(r.name, r.address).tags(r.tags.iter().cloned());
        if let Some(lease) = r.lease {
            registering = registering.lease(lease);
        }
        if r.replace {
            registering = registering.replace();
        }
        let registration = registering.await.map_err(failed)?;
        let lease = crate::seconds(r.lease.unwrap_or(dopy::naming::DEFAULT_LEASE));
        crate::emit(format_args!("registered {} -> {} (lease {lease}, renewed until interrupted)", r.name, r.address))?;
        stopped().await;
        let released = registration.release().await.map_err(failed)?;
        return crate::emit(format_args!("{} {}", if released { "released" } else { "already gone:" }, r.name));
    }
    let lease_ms = r.lease.map(|l| u64::try_from(l.as_millis()).unwrap_or(u64::MAX));
    let tags = r.tags.to_vec();
    let granted = names
        .service()
        .register(r.name.to_owned(), Some(r.address.to_owned()), None, tags, lease_ms, r.replace)
        .await
        .map_err(failed)?;
    let until = match granted.lease_ms {
        Some(ms) => format!("for {}, not renewed", crate::seconds(Duration::from_millis(ms))),
        None => "until removed".to_owned(),
    };
    crate::emit(format_args!("registered {} -> {} ({until})", r.name, r.address))
}

/// `dopy names remove`.
pub(crate) async fn remove(service: &Service, name: &str) -> Result<(), Failure> {
    let (_node, names) = service.connect().await?;
    if names.remove(name).await.map_err(failed)? {
        crate::emit(format_args!("removed {name}"))
    } else {
        Err(Failure::new(Code::Remote, format!("no name `{name}` is registered")))
    }
}

/// `dopy names watch`: the names under `prefix` now (`=`), then registrations (`+`) and
/// removals (`-`) until interrupted.
pub(crate) async fn watch(service: &Service, prefix: &str) -> Result<(), Failure> {
    let (_node, names) = service.connect().await?;
    let mut watch = names.watch(prefix).await.map_err(failed)?;
    for entry in watch.existing() {
        crate::emit(format_args!("= {}", line(entry, 0)))?;
    }
    let stop = stopped();
    tokio::pin!(stop);
    loop {
        let event = tokio::select! {
            event = watch.next() => event,
            () = &mut stop => return Ok(()),
        };
        match event {
            Some(Event::Registered(entry)) => crate::emit(format_args!("+ {}", line(&entry, 0)))?,
            Some(Event::Removed { name, reason }) => {
                crate::emit(format_args!("- {name} ({})", format!("{reason:?}").to_lowercase()))?
            }
            Some(other) => crate::emit(format_args!("? {other:?}"))?,
            None => return Err(Failure::new(Code::Connection, "the name service went away")),
        }
    }
}

/// Completes on Ctrl-C or SIGTERM.
pub(crate) async fn stopped() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        if let Ok(mut term) = signal(SignalKind::terminate()) {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = term.recv() => {}
            }
            return;
        }
    }
    if tokio::signal::ctrl_c().await.is_err() {
        std::future::pending::<()>().await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_come_from_the_environment() {
        let err = crate::connect::secret_from_env("DOPY_TEST_SURELY_UNSET_VARIABLE").unwrap_err();
        assert_eq!(err.code, Code::Usage);
        assert!(err.message.contains("DOPY_TEST_SURELY_UNSET_VARIABLE"), "{err}");
    }
}
