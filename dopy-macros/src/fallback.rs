//! What we emit for an invalid impl block: the errors, the impl block itself, and stubs of the
//! generated items, so that the user sees only the real errors and none that follow from
//! missing items (`CalculatorProxy` not found, `Calculator: Dispatch` not satisfied, ...).

use proc_macro2::TokenStream;
use quote::quote;
use syn::ItemImpl;

use crate::ast::{self, Service};
use crate::expand::{blocking, private, proxy_definition, proxy_ident, proxy_into_proxy, proxy_methods, stripped};

/// The compile errors, followed by the impl block and stubs of the generated items.
///
/// `service` is the model when the impl block could be modelled; the proxy then gets the
/// methods that are valid on their own. `local` is whether the object is `local` (`!Send`): its
/// stub dispatch is then `LocalDispatch`, which asks nothing of its thread safety.
pub(crate) fn expand(item: &ItemImpl, service: Option<&Service<'_>>, local: bool, error: syn::Error) -> TokenStream {
    let errors = error.into_compile_error();
    let original = stripped(item);
    let Ok(base) = ast::proxy_base(item) else {
        return quote!(#errors #original);
    };
    let p = private();
    let self_ty = &item.self_ty;
    let proxy = proxy_ident(base);
    let definition = proxy_definition(&proxy, self_ty);
    let methods = service.map(|s| proxy_methods(&proxy, s.methods.iter().filter(|m| m.validate().is_ok())));
    let into_proxy = proxy_into_proxy(&proxy);
    let blocking_proxy = blocking::ident(base);
    let blocking_definition = blocking::definition(&blocking_proxy, &proxy, self_ty);
    let (dispatch, dispatched) = if local {
        (quote!(#p::LocalDispatch), quote!(#p::LocalDispatched))
    } else {
        (quote!(#p::Dispatch), quote!(#p::Dispatched))
    };
    let blocking_methods =
        service.map(|s| blocking::methods(&blocking_proxy, s.methods.iter().filter(|m| m.validate().is_ok())));
    quote! {
        #errors
        #original
        #definition
        #methods
        #into_proxy
        #blocking_definition
        #blocking_methods
        const _: () = {
            #[automatically_derived]
            impl #p::RemoteObject for #self_ty {
                type Proxy = #proxy;
            }

            #[automatically_derived]
            impl #dispatch for #self_ty {
                fn interface(&self) -> #p::Interface {
                    ::core::unreachable!()
                }

                fn dispatch(&self, _: #p::Invocation) -> #dispatched<'_> {
                    ::core::unreachable!()
                }
            }
        };
    }
}
