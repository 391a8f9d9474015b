//! Code generation: one function per generated item.
//!
//! For `#[dopy::remote] impl Calculator { .. }` we emit:
//!
//! - the impl block itself, without our `#[dopy(..)]` attributes;
//! - `pub struct CalculatorProxy` with one `async` method per remote method, `object()`,
//!   `with_timeout()`, and `IntoProxy<CalculatorProxy>` ([`proxy`]);
//! - `pub struct CalculatorBlockingProxy`, its blocking twin ([`blocking`]);
//! - inside `const _: () = { .. };`: the static interface table ([`table`]), the `Dispatch`
//!   impl (`LocalDispatch` for `#[dopy::remote(local)]`, [`dispatch`]), the `RemoteObject` impl,
//!   and trait-bound checks spanned at the user's types.
//!
//! Generated code names `::core`, `::dopy::__private` items, and `::dopy::Value`
//! in the proxies' public signatures.

pub(crate) mod blocking;
mod dispatch;
mod proxy;
mod table;

use proc_macro2::{Ident, Span, TokenStream};
use quote::{quote, quote_spanned};
use syn::spanned::Spanned;
use syn::{ImplItem, ItemImpl};

use crate::ast::Service;
use crate::attr;

pub(crate) use proxy::{
    definition as proxy_definition, ident as proxy_ident, into_proxy as proxy_into_proxy, methods as proxy_methods,
};

/// The module of the `dopy` crate that re-exports everything generated code needs.
pub(crate) fn private() -> TokenStream {
    quote!(::dopy::__private)
}

/// A local variable of generated code, invisible to the user's code (mixed-site hygiene).
///
/// Diagnostics about it are shown at `at` (usually the user's method name): a type error that
/// involves it is then reported in the user's code rather than at the attribute.
pub(crate) fn local(name: &str, at: Span) -> Ident {
    Ident::new(name, Span::mixed_site().located_at(at))
}

/// Everything generated for a valid impl block.
pub(crate) fn expand(service: &Service<'_>, local: bool) -> TokenStream {
    let p = private();
    let original = stripped(service.original);
    let self_ty = &service.original.self_ty;
    let proxy = proxy::ident(service.ident);
    let definition = proxy::definition(&proxy, self_ty);
    let methods = proxy::methods(&proxy, service.methods.iter());
    let table = table::interface(service);
    let dispatch = dispatch::impl_dispatch(service, local);
    let checks = bound_checks(service);
    let blocking = blocking::expand(service.ident, &proxy, self_ty, service.methods.iter());
    let into_proxy = proxy::into_proxy(&proxy);
    quote! {
        #original
        #definition
        #methods
        #into_proxy
        #blocking
        const _: () = {
            #table
            #dispatch
            #[automatically_derived]
            impl #p::RemoteObject for #self_ty {
                type Proxy = #proxy;
            }
            #checks
        };
    }
}

/// The impl block as written, minus our helper attributes.
pub(crate) fn stripped(item: &ItemImpl) -> ItemImpl {
    let mut item = item.clone();
    for impl_item in &mut item.items {
        match impl_item {
            ImplItem::Fn(f) => attr::strip(&mut f.attrs),
            ImplItem::Const(c) => attr::strip(&mut c.attrs),
            ImplItem::Type(t) => attr::strip(&mut t.attrs),
            ImplItem::Macro(m) => attr::strip(&mut m.attrs),
            _ => {}
        }
    }
    item
}

/// Trait-bound checks in a function that is never called: a parameter, result or error type
/// that cannot travel gets its "trait bound not satisfied" error at its own span.
fn bound_checks(service: &Service<'_>) -> TokenStream {
    let at = |ty: &syn::Type| ty.span();
    let checks = service.methods.iter().enumerate().map(|(i, m)| {
        let cfgs = attr::cfgs(&m.original.attrs);
        let params = m.args.iter().map(|a| {
            let ty = &a.ty;
            quote_spanned!(at(ty)=> ::dopy::__private::assert_param::<#ty>();)
        });
        let result = m.output.ok_type().map(|ty| quote_spanned!(at(ty)=> ::dopy::__private::assert_result::<#ty>();));
        let error = m.output.error_type().map(|ty| quote_spanned!(at(ty)=> ::dopy::__private::assert_error::<#ty>();));
        let name = quote::format_ident!("__dopy_check_{}", i);
        quote! {
            #(#cfgs)*
            fn #name() {
                #(#params)*
                #result
                #error
            }
        }
    });
    quote!(#(#checks)*)
}
