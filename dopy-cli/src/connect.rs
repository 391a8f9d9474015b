//! Reaching an address: a handle to the object it names, or the connection to its endpoint.

use std::future::Future;
use std::time::Duration;

use dopy::{Address, Connection, DynObject, Node};

use crate::failure::{Code, Failure};

/// A handle to the object `address` names (`tcp://HOST:PORT/OBJECT`), connected within `timeout`.
pub(crate) async fn object(node: &Node, address: &str, timeout: Duration) -> Result<DynObject, Failure> {
    within(address, timeout, node.object(address)).await
}

/// The connection to the endpoint of `address`, which may name an object or just an endpoint.
pub(crate) async fn connection(node: &Node, address: &str, timeout: Duration) -> Result<Connection, Failure> {
    let parsed: Address = address.parse()?;
    // The object part, if any, is not needed (nor checked): every object there shares the connection.
    within(address, timeout, node.connect(&parsed.endpoint.to_string())).await
}

async fn within<T>(
    address: &str,
    timeout: Duration,
    connecting: impl Future<Output = Result<T, dopy::Error>>,
) -> Result<T, Failure> {
    match tokio::time::timeout(timeout, connecting).await {
        Ok(result) => Ok(result?),
        Err(_) => Err(Failure::new(
            Code::Connection,
            format!("could not connect to {address}: no answer within {}", crate::seconds(timeout)),
        )),
    }
}
