//! [`IntoProxy`]: what a generated proxy method takes where the remote method takes an object
//! by reference.

use dopy_core::{Dispatch, Remote, RemoteObject};

/// A handle that a generated proxy method accepts where the remote method takes an object by
/// reference (a parameter of a proxy type such as `CursorProxy`): the proxy itself, by value
/// or by reference, or a [`Remote`] of the object, by value or by reference, such as one a
/// method returned.
///
/// Implemented by `#[dopy::remote]` for each proxy, and here for [`Remote`]; not meant to be
/// implemented by hand.
///
/// # Examples
///
/// ```
/// # use dopy::{IntoProxy, Remote};
/// /// A cursor.
/// pub struct Cursor { pos: u32 }
///
/// #[dopy::remote]
/// impl Cursor {
///     /// The next position.
///     pub fn advance(&mut self) -> u32 { self.pos += 1; self.pos }
/// }
///
/// let remote = Remote::new(Cursor { pos: 0 });
/// let proxy: CursorProxy = (&remote).into_proxy();
/// # let _ = proxy;
/// ```
#[diagnostic::on_unimplemented(
    message = "`{Self}` cannot be passed where a `{P}` is expected",
    note = "pass the proxy, or a `dopy::Remote` of the same object type (by value or by reference)"
)]
pub trait IntoProxy<P> {
    /// The proxy this handle stands for.
    fn into_proxy(self) -> P;
}

impl<T: RemoteObject + Dispatch> IntoProxy<T::Proxy> for Remote<T> {
    fn into_proxy(self) -> T::Proxy {
        Remote::into_proxy(self)
    }
}

impl<T: RemoteObject + Dispatch> IntoProxy<T::Proxy> for &Remote<T> {
    fn into_proxy(self) -> T::Proxy {
        self.proxy().clone()
    }
}
