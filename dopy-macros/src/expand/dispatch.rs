//! The `Dispatch` impl: decodes the arguments of a call, runs the method, encodes its reply.
//!
//! `&self` methods run from `dispatch`; `&mut self` methods make `dispatch` answer
//! `RequiresMut`, and run from `dispatch_mut`, which the caller invokes with exclusive access.

use proc_macro2::{Ident, Span, TokenStream};
use quote::{quote, quote_spanned};
use syn::ext::IdentExt;

use super::{local, private};
use crate::ast::{Method, Output, Receiver, Service};
use crate::attr;

/// `impl Dispatch for Calculator { .. }`, or `impl LocalDispatch` for a `local` object.
pub(crate) fn impl_dispatch(service: &Service<'_>, local_object: bool) -> TokenStream {
    let p = private();
    let (dispatch_trait, dispatched) = if local_object {
        (quote!(#p::LocalDispatch), quote!(#p::LocalDispatched))
    } else {
        (quote!(#p::Dispatch), quote!(#p::Dispatched))
    };
    let self_ty = &service.original.self_ty;
    let call = local("__call", Span::call_site());
    let exclusive = |m: &&Method<'_>| matches!(m.receiver, Receiver::Exclusive);
    let shared: Vec<TokenStream> = service
        .methods
        .iter()
        .map(|m| {
            if exclusive(&m) {
                let cfgs = attr::cfgs(&m.original.attrs);
                let name = &m.remote_name;
                quote!(#(#cfgs)* #name => #dispatched::RequiresMut(#call),)
            } else {
                arm(m, &call, &dispatched)
            }
        })
        .collect();
    // Only the arms of `&self` methods decode arguments, which needs `mut`.
    let call_mut = service.methods.iter().any(|m| !exclusive(&m)).then(|| quote!(mut));
    let body = if shared.is_empty() {
        quote!(#dispatched::NotFound(#call))
    } else {
        quote! {
            match #call.method() {
                #(#shared)*
                _ => #dispatched::NotFound(#call),
            }
        }
    };
    let mut_arms: Vec<TokenStream> =
        service.methods.iter().filter(exclusive).map(|m| arm(m, &call, &dispatched)).collect();
    let dispatch_mut = (!mut_arms.is_empty()).then(|| {
        quote! {
            fn dispatch_mut(&mut self, mut #call: #p::Invocation) -> #dispatched<'_> {
                match #call.method() {
                    #(#mut_arms)*
                    _ => #dispatch_trait::dispatch(&*self, #call),
                }
            }
        }
    });
    // Dispatching calls the user's methods; their deprecation is for callers, not for us.
    let deprecated = service
        .methods
        .iter()
        .any(|m| m.original.attrs.iter().any(|a| a.path().is_ident("deprecated")))
        .then(|| quote!(#[allow(deprecated)]));
    // `#[dopy(inline)]` methods, for the connection's fast path (remote objects only: a local
    // object's calls always go through its executor).
    let inline_names: Vec<&str> =
        service.methods.iter().filter(|m| m.is_inline()).map(|m| m.remote_name.as_str()).collect();
    let inline = (!local_object && !inline_names.is_empty()).then(|| {
        quote! {
            fn inline_methods(&self) -> &'static [&'static str] {
                &[#(#inline_names),*]
            }
        }
    });
    // Without `&mut self` methods, every call has shared access: the object needs no lock.
    let never_exclusive = (!local_object && mut_arms.is_empty()).then(|| {
        quote! {
            fn needs_exclusive(&self) -> bool {
                false
            }
        }
    });
    quote! {
        #[automatically_derived]
        #deprecated
        impl #dispatch_trait for #self_ty {
            fn interface(&self) -> #p::Interface {
                __DOPY_INTERFACE
            }

            #inline

            #never_exclusive

            fn dispatch(&self, #call_mut #call: #p::Invocation) -> #dispatched<'_> {
                #body
            }

            #dispatch_mut
        }
    }
}

/// The match arm of one method: `"add" => { decode; run; reply }`.
fn arm(m: &Method<'_>, call: &Ident, dispatched: &TokenStream) -> TokenStream {
    let p = private();
    let cfgs = attr::cfgs(&m.original.attrs);
    let name = &m.remote_name;
    // Calls that may fail to type-check are spanned at the method's name, so that their errors
    // show in the user's signature rather than at the attribute.
    let at = m.ident().span();
    let resp = local("__resp", at);
    let fault = local("__fault", at);
    let vars: Vec<Ident> = (0..m.args.len()).map(|i| local(&format!("__arg{i}"), at)).collect();
    let decode = if m.args.is_empty() {
        // Still decode, so that a call with arguments is refused rather than silently accepted.
        quote! {
            if let #p::Result::Err(#fault) = #call.decode_args::<()>(&[]) {
                return #dispatched::Ready(#p::Result::Err(#fault));
            }
        }
    } else {
        let types = m.args.iter().map(|a| &a.ty);
        let names = m.args.iter().map(|a| a.ident.map(|i| i.unraw().to_string()).unwrap_or_default());
        let args = local("__args", at);
        // Spanned at the method's name: a parameter type that cannot be decoded is reported in
        // the user's signature (and precisely at the type by the bound checks).
        let decode = quote_spanned! {at=>
            ::dopy::__private::Invocation::decode_args::<(#(#types,)*)>(&mut #call, &[#(#names),*])
        };
        quote! {
            let (#(#vars,)*) = match #decode {
                #p::Result::Ok(#args) => #args,
                #p::Result::Err(#fault) => return #dispatched::Ready(#p::Result::Err(#fault)),
            };
        }
    };
    let ident = m.ident();
    let dot_await = m.is_async().then(|| quote_spanned!(at=> .await));
    let invoke = quote_spanned!(at=> Self::#ident(self, #(#vars),*) #dot_await);
    let reply = reply(&m.output, &invoke, &resp, at);
    let run = if m.is_async() {
        // Spanned at the method's name: a future that is not `Send` is reported there.
        quote_spanned!(at=> #dispatched::Pending(::dopy::__private::Box::pin(async move { #reply })))
    } else {
        quote!(#dispatched::Ready({ #reply }))
    };
    quote! {
        #(#cfgs)*
        #name => {
            let #resp = #call.responder();
            #decode
            #run
        }
    }
}

/// Runs the method and encodes what it returned.
///
/// The encoding call is spanned at the method's name, where a result type that cannot be
/// encoded is reported.
fn reply(output: &Output, invoke: &TokenStream, resp: &Ident, span: Span) -> TokenStream {
    let p = private();
    match output {
        Output::Unit => quote! {
            #invoke;
            #resp.ok(&())
        },
        Output::Plain(ty) => {
            let result = local("__result", span);
            let reply = quote_spanned!(span=> ::dopy::__private::Responder::ok::<#ty>(&#resp, &#result));
            quote! {
                let #result = #invoke;
                #reply
            }
        }
        Output::Result(ty, err) => {
            let (result, error, causes) = (local("__result", span), local("__error", span), local("__causes", span));
            let reply =
                quote_spanned!(span=> ::dopy::__private::Responder::result::<#ty, #err>(&#resp, &#result, #causes));
            quote! {
                let #result = #invoke;
                let #causes = match &#result {
                    #p::Result::Err(#error) => #p::causes!(#error),
                    #p::Result::Ok(_) => #p::Vec::new(),
                };
                #reply
            }
        }
    }
}
