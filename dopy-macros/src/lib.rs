//! Implementation detail of the `dopy` crate.
//!
//! This crate provides the `#[dopy::remote]` attribute; use it through the `dopy` crate, which
//! documents it. The code it generates names `::dopy::__private` items only, so it works with
//! the exact version of `dopy` that depends on this crate.
//!
//! The expansion goes parse -> validate -> expand (after `thiserror-impl` and `serde_derive`):
//! `ast.rs` builds our model of the impl block, `attr.rs` parses `#[dopy(..)]`, `valid.rs`
//! checks the rules of remote methods, `expand.rs` generates code, and `fallback.rs` emits
//! the errors plus stubs when the input is invalid.

mod ast;
mod attr;
mod ctxt;
mod expand;
mod fallback;
mod tidy;
mod valid;

use proc_macro::TokenStream;

/// Makes the `pub` methods of an inherent impl block callable remotely.
///
/// See `dopy::remote` for the documentation.
#[proc_macro_attribute]
pub fn remote(args: TokenStream, input: TokenStream) -> TokenStream {
    let item = syn::parse_macro_input!(input as syn::Item);
    expand::remote(args.into(), item).into()
}
