//! The connections a [`Node`] opens (shared per endpoint, or its own for one proxy), and
//! the streams it serves.

use dopy_core::{Connection, DynObject, Proxy, Target, WeakConnection};
use dopy_transport::{Link, RawStream};

#[cfg(not(feature = "tls"))]
use super::NO_TLS;
use super::{dial, lock, Node};
use crate::{Endpoint, Error, IntoAddress};

impl Node {
    /// Serves this node's objects over the process's own stdin/stdout until stdin closes (or
    /// the peer says goodbye): what a server started by an `exec:` or `ssh://` address does.
    ///
    /// While it runs, nothing else may write to stdout; log to stderr. Listeners of the node
    /// keep serving meanwhile.
    ///
    /// # Examples
    ///
    /// ```no_run
    /// # #[derive(Default)] struct Calculator;
    /// # #[dopy::remote] impl Calculator { pub fn add(&self, a: i64, b: i64) -> i64 { a + b } }
    /// #[tokio::main]
    /// async fn main() -> Result<(), dopy::Error> {
    ///     let node = dopy::Node::new();
    ///     node.publish("calc", Calculator::default())?;
    ///     node.serve_stdio().await // returns when the client goes away
    /// }
    /// ```
    ///
    /// # Errors
    ///
    /// [`Error::Io`] if stdin/stdout cannot be used; [`Error::Connect`] if the other end does
    /// not complete the handshake.
    pub async fn serve_stdio(&self) -> Result<(), Error> {
        let raw = dopy_transport::stdio::stdio()?;
        let conn = self.serve_stream(raw).await?;
        conn.closed().await;
        tracing::debug!(reason = conn.close_reason().unwrap_or_default(), "stdio connection ended");
        Ok(())
    }

    /// Returns the connection to an endpoint, opening it if needed.
    ///
    /// A node keeps one connection per endpoint: every proxy and handle this node creates for
    /// that endpoint ([`object`](Node::object), [`proxy`](Node::proxy), `connect`) shares it,
    /// and its calls are multiplexed on it. For connections of their own (to spread many
    /// calls over several sockets), use [`connect_new`](Node::connect_new) or
    /// [`proxy_on_new_connection`](Node::proxy_on_new_connection).
    ///
    /// The connection lives as long as something uses it: proxies keep it open (and keep
    /// working) after the node that made them is dropped.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidAddress`], or [`Error::Connect`] when the endpoint cannot be reached or
    /// does not speak dopy.
    pub async fn connect(&self, endpoint: &str) -> Result<Connection, Error> {
        let endpoint: Endpoint = endpoint.parse()?;
        self.connect_to(&endpoint).await
    }

    /// Opens a new connection to an endpoint, used only by what is made from it: it is not
    /// shared with [`connect`](Node::connect), [`object`](Node::object) or
    /// [`proxy`](Node::proxy), nor with another `connect_new`.
    ///
    /// Calls through one connection share its socket and its reader; a client that makes
    /// many calls at once to one server can spread them over several connections (one per
    /// worker, say) without making several nodes. Make handles on it with
    /// [`DynObject::new`](crate::DynObject::new), or use
    /// [`proxy_on_new_connection`](Node::proxy_on_new_connection). The connection closes when
    /// its last handle is dropped, or when the node shuts down.
    ///
    /// # Errors
    ///
    /// As [`connect`](Node::connect).
    pub async fn connect_new(&self, endpoint: &str) -> Result<Connection, Error> {
        let endpoint: Endpoint = endpoint.parse()?;
        self.open_dedicated(&endpoint).await
    }

    async fn open_dedicated(&self, endpoint: &Endpoint) -> Result<Connection, Error> {
        let conn = self.open(endpoint).await?;
        let mut dedicated = lock(&self.inner.dedicated);
        dedicated.retain(|weak| weak.upgrade().is_some());
        dedicated.extend(conn.downgrade());
        Ok(conn)
    }

    async fn connect_to(&self, endpoint: &Endpoint) -> Result<Connection, Error> {
        if let Some(conn) = self.cached(endpoint) {
            return Ok(conn);
        }
        let conn = self.open(endpoint).await?;
        let mut outgoing = self.inner.outgoing.lock().unwrap_or_else(|e| e.into_inner());
        // Another task may have connected meanwhile: keep one connection per endpoint.
        if let Some(existing) = outgoing.get(endpoint).and_then(WeakConnection::upgrade) {
            return Ok(existing);
        }
        outgoing.retain(|_, weak| weak.upgrade().is_some());
        if let Some(weak) = conn.downgrade() {
            outgoing.insert(endpoint.clone(), weak);
        }
        Ok(conn)
    }

    /// Dials an endpoint and runs the handshake: a new connection, shared or not.
    async fn open(&self, endpoint: &Endpoint) -> Result<Connection, Error> {
        #[cfg(not(feature = "tls"))]
        if let Endpoint::Tls { .. } = endpoint {
            return Err(Error::InvalidAddress { address: endpoint.to_string(), reason: NO_TLS.into() });
        }
        let connect_err = |source: Box<dyn std::error::Error + Send + Sync>| Error::Connect {
            endpoint: endpoint.to_string(),
            source,
        };
        let raw = dial::dial(endpoint, &self.inner.transports, &self.inner.link).await.map_err(connect_err)?;
        let link = Link::establish(raw, &self.inner.link).await.map_err(|e| connect_err(e.into()))?;
        Ok(Connection::open(link, self.inner.host.clone(), endpoint.to_string()))
    }

    fn cached(&self, endpoint: &Endpoint) -> Option<Connection> {
        self.inner.outgoing.lock().unwrap_or_else(|e| e.into_inner()).get(endpoint).and_then(WeakConnection::upgrade)
    }

    /// A dynamic handle to the object an address names (`tcp://HOST:PORT/OBJECT`,
    /// `unix:PATH#OBJECT`, ...: see [`Address`](crate::Address)), given as text or as an
    /// `Address` (such as `endpoint.object("calc")`): see [`IntoAddress`].
    ///
    /// The object's existence is checked by the first call, not here. The handle uses the
    /// node's one connection to that endpoint (see [`connect`](Node::connect)).
    ///
    /// # Errors
    ///
    /// As [`connect`](Node::connect); [`Error::InvalidAddress`] if the address names no object.
    pub async fn object(&self, address: impl IntoAddress) -> Result<DynObject, Error> {
        let (endpoint, object) = object_address(address)?;
        let conn = self.connect_to(&endpoint).await?;
        Ok(DynObject::new(conn, Target::Name(object)))
    }

    /// A dynamic handle to the object an address names, over a new connection of its own
    /// (see [`connect_new`](Node::connect_new)).
    ///
    /// # Errors
    ///
    /// As [`object`](Node::object).
    pub async fn object_on_new_connection(&self, address: impl IntoAddress) -> Result<DynObject, Error> {
        let (endpoint, object) = object_address(address)?;
        let conn = self.open_dedicated(&endpoint).await?;
        Ok(DynObject::new(conn, Target::Name(object)))
    }

    /// A typed proxy to the object an address names, over a new connection of its own (see
    /// [`connect_new`](Node::connect_new)): its clones share that connection, and no other
    /// proxy does.
    ///
    /// # Examples
    ///
    /// ```
    /// # #[derive(Default)] struct Calculator;
    /// # #[dopy::remote] impl Calculator { pub fn add(&self, a: i64, b: i64) -> i64 { a + b } }
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), dopy::Error> {
    /// let server = dopy::Node::new();
    /// server.publish("calc", Calculator::default())?;
    /// let addr = server.listen("tcp://127.0.0.1:0").await?;
    ///
    /// let client = dopy::Node::new();
    /// let mut workers = Vec::new();
    /// for _ in 0..4 {
    ///     workers.push(client.proxy_on_new_connection::<CalculatorProxy>(addr.object("calc")).await?);
    /// }
    /// for (n, calc) in (0..).zip(&workers) {
    ///     assert_eq!(calc.add(n, 1).await?, n + 1);
    /// }
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    ///
    /// As [`object`](Node::object).
    pub async fn proxy_on_new_connection<P: Proxy>(&self, address: impl IntoAddress) -> Result<P, Error> {
        self.object_on_new_connection(address).await.map(P::from_object)
    }

    /// A typed proxy (`CalculatorProxy`) to the object an address names, given as text or as an
    /// [`Address`](crate::Address): see [`IntoAddress`].
    ///
    /// The proxy uses the node's one connection to that endpoint, shared with every other
    /// proxy to it (see [`connect`](Node::connect); for one of its own,
    /// [`proxy_on_new_connection`](Node::proxy_on_new_connection)); it keeps the connection
    /// open, and works, after the node is dropped.
    ///
    /// # Errors
    ///
    /// As [`object`](Node::object).
    pub async fn proxy<P: Proxy>(&self, address: impl IntoAddress) -> Result<P, Error> {
        self.object(address).await.map(P::from_object)
    }

    /// Serves one already-connected byte stream (any transport): runs the handshake, then
    /// serves this node's objects on it until the peer goes away.
    ///
    /// # Errors
    ///
    /// [`Error::Connect`] if the handshake fails.
    pub async fn serve_stream(&self, raw: RawStream) -> Result<Connection, Error> {
        let label = raw.info.peer.clone();
        let link = Link::establish(raw, &self.inner.link)
            .await
            .map_err(|e| Error::Connect { endpoint: label.clone(), source: e.into() })?;
        let conn = Connection::accept(link, self.inner.host.clone(), label);
        let mut incoming = self.inner.incoming.lock().unwrap_or_else(|e| e.into_inner());
        incoming.retain(|c| !c.is_closed());
        incoming.push(conn.clone());
        Ok(conn)
    }
}

/// The endpoint and object name of an address that must name an object.
fn object_address(address: impl IntoAddress) -> Result<(Endpoint, String), Error> {
    let addr = address.into_address()?;
    match addr.object {
        Some(object) => Ok((addr.endpoint, object)),
        None => {
            let reason = addr.endpoint.object_hint();
            Err(Error::InvalidAddress { address: addr.endpoint.to_string(), reason })
        }
    }
}
