//! The `Dispatch` impl: decodes the arguments of a call, runs the method, encodes its reply.
//!
//! `&self` methods run from `dispatch`; `&mut self` methods make `dispatch` answer
//! `RequiresMut`, and run from `dispatch_mut`, which the caller invokes with exclusive access.

use proc_macro2::{Ident, TokenStream};
use quote::quote;
use syn::ext::IdentExt;

use super::{local, private};
use crate::ast::{Method, Output, Receiver, Service};
use crate::attr;

/// `impl Dispatch for Calculator { .. }`.
pub(crate) fn impl_dispatch(service: &Service<'_>) -> TokenStream {
    let p = private();
    let self_ty = &service.original.self_ty;
    let call = local("__call");
    let exclusive = |m: &&Method<'_>| matches!(m.receiver, Receiver::Exclusive);
    let shared: Vec<TokenStream> = service
        .methods
        .iter()
        .map(|m| {
            if exclusive(&m) {
                let cfgs = attr::cfgs(&m.original.attrs);
                let name = &m.remote_name;
                quote!(#(#cfgs)* #name => #p::Dispatched::RequiresMut(#call),)
            } else {
                arm(m, &call)
            }
        })
        .collect();
    // Only the arms of `&self` methods decode arguments, which needs `mut`.
    let call_mut = service.methods.iter().any(|m| !exclusive(&m)).then(|| quote!(mut));
    let body = if shared.is_empty() {
        quote!(#p::Dispatched::NotFound(#call))
    } else {
        quote! {
            match #call.method() {
                #(#shared)*
                _ => #p::Dispatched::NotFound(#call),
            }
        }
    };
    let mut_arms: Vec<TokenStream> = service.methods.iter().filter(exclusive).map(|m| arm(m, &call)).collect();
    let dispatch_mut = (!mut_arms.is_empty()).then(|| {
        quote! {
            fn dispatch_mut(&mut self, mut #call: #p::Invocation) -> #p::Dispatched<'_> {
                match #call.method() {
                    #(#mut_arms)*
                    _ => #p::Dispatch::dispatch(&*self, #call),
                }
            }
        }
    });
    quote! {
        #[automatically_derived]
        impl #p::Dispatch for #self_ty {
            fn interface(&self) -> #p::Interface {
                __DOPY_INTERFACE
            }

            fn dispatch(&self, #call_mut #call: #p::Invocation) -> #p::Dispatched<'_> {
                #body
            }

            #dispatch_mut
        }
    }
}

/// The match arm of one method: `"add" => { decode; run; reply }`.
fn arm(m: &Method<'_>, call: &Ident) -> TokenStream {
    let p = private();
    let cfgs = attr::cfgs(&m.original.attrs);
    let name = &m.remote_name;
    let resp = local("__resp");
    let fault = local("__fault");
    let vars: Vec<Ident> = (0..m.args.len()).map(|i| local(&format!("__arg{i}"))).collect();
    let decode = if m.args.is_empty() {
        // Still decode, so that a call with arguments is refused rather than silently accepted.
        quote! {
            if let #p::Result::Err(#fault) = #call.decode_args::<()>(&[]) {
                return #p::Dispatched::Ready(#p::Result::Err(#fault));
            }
        }
    } else {
        let types = m.args.iter().map(|a| &a.ty);
        let names = m.args.iter().map(|a| a.ident.map(|i| i.unraw().to_string()).unwrap_or_default());
        let args = local("__args");
        quote! {
            let (#(#vars,)*) = match #call.decode_args::<(#(#types,)*)>(&[#(#names),*]) {
                #p::Result::Ok(#args) => #args,
                #p::Result::Err(#fault) => return #p::Dispatched::Ready(#p::Result::Err(#fault)),
            };
        }
    };
    let ident = m.ident();
    let invoke = match m.is_async() {
        true => quote!(Self::#ident(self, #(#vars),*).await),
        false => quote!(Self::#ident(self, #(#vars),*)),
    };
    let reply = reply(&m.output, &invoke, &resp);
    let run = match m.is_async() {
        true => quote!(#p::Dispatched::Pending(#p::Box::pin(async move { #reply }))),
        false => quote!(#p::Dispatched::Ready({ #reply })),
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
fn reply(output: &Output, invoke: &TokenStream, resp: &Ident) -> TokenStream {
    let p = private();
    match output {
        Output::Unit => quote! {
            #invoke;
            #resp.ok(&())
        },
        Output::Plain(_) => quote!(#resp.ok(&#invoke)),
        Output::Result(..) => {
            let (result, error, causes) = (local("__result"), local("__error"), local("__causes"));
            quote! {
                let #result = #invoke;
                let #causes = match &#result {
                    #p::Result::Err(#error) => #p::causes!(#error),
                    #p::Result::Ok(_) => #p::Vec::new(),
                };
                #resp.result(&#result, #causes)
            }
        }
    }
}
