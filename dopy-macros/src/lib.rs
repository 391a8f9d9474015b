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
use quote::quote;
use syn::Item;

use crate::ast::Service;

/// Makes the `pub` methods of an inherent impl block callable remotely.
///
/// See `dopy::remote` for the documentation.
#[proc_macro_attribute]
pub fn remote(args: TokenStream, input: TokenStream) -> TokenStream {
    let item = syn::parse_macro_input!(input as syn::Item);
    remote_item(args.into(), item).into()
}

/// Expands `#[dopy::remote]` on an item, falling back to errors plus stubs when it is invalid.
fn remote_item(args: proc_macro2::TokenStream, item: Item) -> proc_macro2::TokenStream {
    let Item::Impl(item) = item else {
        let error = syn::Error::new_spanned(
            &item,
            "#[dopy::remote] goes on an inherent impl block, such as `impl Calculator { .. }`",
        );
        return quote!(#item).into_iter().chain(error.into_compile_error()).collect();
    };
    // `#[dopy::remote(local)]`: a `!Send` object, served on the thread that owns it.
    let (args, args_error) = attr::remote_args(args);
    let local = args.local.is_some();
    let service = match Service::from_syn(&item) {
        Ok(service) => service,
        Err(error) => return fallback::expand(&item, None, local, combine(args_error, error)),
    };
    match (service.validate(), args_error) {
        (Ok(()), None) => expand::expand(&service, local),
        (Ok(()), Some(error)) => fallback::expand(&item, Some(&service), local, error),
        (Err(error), args_error) => fallback::expand(&item, Some(&service), local, combine(args_error, error)),
    }
}

fn combine(first: Option<syn::Error>, then: syn::Error) -> syn::Error {
    match first {
        Some(mut first) => {
            first.combine(then);
            first
        }
        None => then,
    }
}
