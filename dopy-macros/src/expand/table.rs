//! The interface table: what `Dispatch::interface` returns and `dopy.methods` answers.
//!
//! It is a `const` made of `&'static` tables, so `interface()` copies a few pointers. Each
//! table is a `const` of its own: a borrowed array in a constant's initializer lives forever,
//! whereas one passed to a `const fn` would be a temporary whose destructor cannot run at
//! compile time.

use proc_macro2::TokenStream;
use quote::{quote, ToTokens};
use syn::ext::IdentExt;

use super::private;
use crate::ast::{Method, Receiver, Service};
use crate::attr;
use crate::tidy::tidy;

/// `const __DOPY_INTERFACE: Interface = Interface::from_static(..);`
pub(crate) fn interface(service: &Service<'_>) -> TokenStream {
    let p = private();
    let self_ty = &service.original.self_ty;
    let name = tidy(quote!(#self_ty));
    let docs = &service.docs;
    let methods = service.methods.iter().map(method_info);
    quote! {
        const __DOPY_INTERFACE: #p::Interface = #p::Interface::from_static(#name, #docs, {
            const METHODS: &[#p::MethodInfo] = &[#(#methods),*];
            METHODS
        });
    }
}

fn method_info(m: &Method<'_>) -> TokenStream {
    let p = private();
    let cfgs = attr::cfgs(&m.original.attrs);
    let name = &m.remote_name;
    let docs = attr::docs(&m.original.attrs);
    let params = m.args.iter().map(|a| {
        let name = a.ident.map(|i| i.unraw().to_string()).unwrap_or_default();
        let ty = tidy(a.ty.to_token_stream());
        quote!(#p::ParamInfo::from_static(#name, #ty))
    });
    let returns = m.output.ok_type().map_or_else(|| "()".to_owned(), |ty| tidy(ty.to_token_stream()));
    let error = match m.output.error_type() {
        Some(ty) => {
            let ty = tidy(ty.to_token_stream());
            quote!(#p::Option::Some(#ty))
        }
        None => quote!(#p::Option::None),
    };
    let receiver = match m.receiver {
        Receiver::Exclusive => quote!(#p::Receiver::Exclusive),
        _ => quote!(#p::Receiver::Shared),
    };
    let is_async = m.is_async();
    let oneway = m.is_oneway();
    let no_cancel = m.is_no_cancel();
    quote! {
        #(#cfgs)*
        #p::MethodInfo::from_static(
            #name,
            #docs,
            {
                const PARAMS: &[#p::ParamInfo] = &[#(#params),*];
                PARAMS
            },
            #returns,
            #error,
            #receiver,
            #is_async,
            #oneway,
            #no_cancel,
        )
    }
}
