//! The connections a [`Node`] opens (shared per endpoint, or its own for one proxy), and
//! the streams it serves.

use dopy_core::{Connection, DynObject, Proxy, Target, WeakConnection};
use dopy_transport::{Link, RawStream};

use super::{dial, Node};
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

    /// Returns the connection to an endpoint, opening it if needed (one connection per
    /// endpoint is shared by every proxy this node creates).
    ///
    /// # Errors
    ///
    /// [`Error::InvalidAddress`], or [`Error::Connect`] when the endpoint cannot be reached or
    /// does not speak dopy.
    pub async fn connect(&self, endpoint: &str) -> Result<Connection, Error> {
        let endpoint: Endpoint = endpoint.parse()?;
        self.connect_to(&endpoint).await
    }

    async fn connect_to(&self, endpoint: &Endpoint) -> Result<Connection, Error> {
        if let Some(conn) = self.cached(endpoint) {
            return Ok(conn);
        }
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
        let conn = Connection::start(link, self.inner.host.clone(), endpoint.to_string(), true);
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

    fn cached(&self, endpoint: &Endpoint) -> Option<Connection> {
        self.inner.outgoing.lock().unwrap_or_else(|e| e.into_inner()).get(endpoint).and_then(WeakConnection::upgrade)
    }

    /// A dynamic handle to the object an address names (`tcp://HOST:PORT/OBJECT`,
    /// `unix:PATH#OBJECT`, ...: see [`Address`](crate::Address)), given as text or as an
    /// `Address` (such as `endpoint.object("calc")`): see [`IntoAddress`].
    ///
    /// The object's existence is checked by the first call, not here.
    ///
    /// # Errors
    ///
    /// As [`connect`](Node::connect); [`Error::InvalidAddress`] if the address names no object.
    pub async fn object(&self, address: impl IntoAddress) -> Result<DynObject, Error> {
        let addr = address.into_address()?;
        let Some(object) = addr.object else {
            let reason = addr.endpoint.object_hint();
            return Err(Error::InvalidAddress { address: addr.endpoint.to_string(), reason });
        };
        let conn = self.connect_to(&addr.endpoint).await?;
        Ok(DynObject::new(conn, Target::Name(object)))
    }

    /// A typed proxy (`CalculatorProxy`) to the object an address names, given as text or as an
    /// [`Address`](crate::Address): see [`IntoAddress`].
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
        let conn = Connection::start(link, self.inner.host.clone(), label, false);
        let mut incoming = self.inner.incoming.lock().unwrap_or_else(|e| e.into_inner());
        incoming.retain(|c| !c.is_closed());
        incoming.push(conn.clone());
        Ok(conn)
    }
}
