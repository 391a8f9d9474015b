//! `dopy serve names`: a stand-alone name server, its names kept in a database file.

use std::path::Path;

use dopy::naming::NameServer;
use dopy::Node;

use crate::failure::{Code, Failure};

/// The database file of `dopy serve names` unless `--db` says: in the current directory.
pub(crate) const DEFAULT_DB: &str = "dopy-names.redb";

/// Examples for `dopy serve names --help`.
pub(crate) const EXAMPLES: &str = "\
Examples:
  dopy serve names                                # on $DOPY_NAMES, else tcp://127.0.0.1:9500; names in ./dopy-names.redb
  dopy serve names --db names.redb --listen tcp://0.0.0.0:9501
  head -c 32 /dev/urandom | base64 > dopy.secret  # a random shared secret
  dopy serve names --db private.redb --secret-file dopy.secret --listen tcp://0.0.0.0:9502 --public tcp://0.0.0.0:9503
  dopy names --names tcp://127.0.0.1:9502 --secret-file dopy.secret register calc tcp://127.0.0.1:9600/calc
  dopy names --names tcp://127.0.0.1:9503 lookup calc             # lookups need no secret

Names survive a restart: they are kept in the database file. A restored registration with a
lease has one lease time, from the restart, to be renewed by its registrant; one that is not
renewed expires. Serves until Ctrl-C or SIGTERM; prints one line per endpoint when ready:
`serving names on ENDPOINT (writable|read-only)`.";

/// What to serve.
#[derive(Debug)]
pub(crate) struct Serving<'a> {
    pub(crate) db: &'a Path,
    /// Where to serve the writable service; empty: `$DOPY_NAMES`, else the default.
    pub(crate) listen: Vec<String>,
    pub(crate) public: &'a [String],
    /// The shared secret the writable endpoints require.
    pub(crate) secret: Option<Vec<u8>>,
}

/// `dopy serve names`.
pub(crate) async fn names(s: Serving<'_>) -> Result<(), Failure> {
    let server = NameServer::open(s.db).map_err(|e| {
        let mut message = format!("cannot serve names: {e}");
        let mut source = std::error::Error::source(&e);
        while let Some(cause) = source {
            message += &format!(": {cause}");
            source = cause.source();
        }
        Failure::new(Code::Other, message)
    })?;
    let mut writable = Node::builder().name("dopy-names");
    if let Some(secret) = &s.secret {
        writable = writable.secret(secret);
    }
    let writable = writable.build();
    server.publish(&writable)?;
    let read_only = Node::builder().name("dopy-names").build();
    server.publish_read_only(&read_only)?;
    let listen = match s.listen {
        listen if listen.is_empty() => vec![crate::names::default_address()],
        listen => listen,
    };
    for endpoint in &listen {
        let bound = writable.listen(endpoint).await?;
        crate::emit(format_args!("serving names on {bound} (writable)"))?;
    }
    for endpoint in s.public {
        let bound = read_only.listen(endpoint).await?;
        crate::emit(format_args!("serving names on {bound} (read-only)"))?;
    }
    crate::names::stopped().await;
    Ok(())
}
