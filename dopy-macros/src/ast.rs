//! Our model of a `#[dopy::remote]` impl block, built from syn's.
//!
//! Building the model only rejects what makes it impossible to build (a trait impl, a generic
//! impl). A method with malformed `#[dopy]` attributes is left out of the model and its errors
//! kept for validation, which checks the rules of remote methods afterwards, all at once
//! (`valid.rs`).

use proc_macro2::{Group, Ident, TokenStream, TokenTree};
use quote::ToTokens;
use syn::ext::IdentExt;
use syn::{FnArg, GenericArgument, ImplItem, ImplItemFn, ItemImpl, PathArguments, ReturnType, Type, Visibility};

use crate::attr::{self, MethodAttrs};

/// An inherent impl block whose `pub` methods are remote.
pub(crate) struct Service<'a> {
    /// The impl block as written.
    pub(crate) original: &'a ItemImpl,
    /// The last segment of the self type: `Calculator` in `impl crate::Calculator`.
    pub(crate) ident: &'a Ident,
    /// The documentation of the impl block, for the interface.
    pub(crate) docs: String,
    /// The remote methods, in source order.
    pub(crate) methods: Vec<Method<'a>>,
    /// Errors of malformed `#[dopy]` attributes (those methods are not in `methods`).
    pub(crate) attr_errors: Vec<syn::Error>,
}

/// One remote method.
pub(crate) struct Method<'a> {
    /// The method as written.
    pub(crate) original: &'a ImplItemFn,
    /// Its `#[dopy(..)]` attributes.
    pub(crate) attrs: MethodAttrs,
    /// The name callers use.
    pub(crate) remote_name: String,
    /// How it borrows the object.
    pub(crate) receiver: Receiver<'a>,
    /// Its parameters, after the receiver.
    pub(crate) args: Vec<Arg<'a>>,
    /// What it returns.
    pub(crate) output: Output,
}

/// How a method takes `self`.
pub(crate) enum Receiver<'a> {
    /// `&self`.
    Shared,
    /// `&mut self`.
    Exclusive,
    /// Any other receiver (`self`, `self: Box<Self>`, ...), rejected by validation.
    Invalid(&'a syn::Receiver),
    /// No receiver at all (an associated function), rejected by validation.
    Missing,
}

/// One parameter.
pub(crate) struct Arg<'a> {
    /// The parameter as written.
    pub(crate) original: &'a syn::PatType,
    /// Its name, when the pattern is `name` or `mut name`.
    pub(crate) ident: Option<&'a Ident>,
    /// Its type, with `Self` replaced by the self type (so it can be named outside the impl).
    pub(crate) ty: Type,
}

/// What a method returns.
pub(crate) enum Output {
    /// Nothing (`()`).
    Unit,
    /// A plain value.
    Plain(Box<Type>),
    /// `Result<T, E>`: a value or the method's own error.
    Result(Box<Type>, Box<Type>),
}

impl<'a> Service<'a> {
    /// Builds the model of an impl block.
    pub(crate) fn from_syn(item: &'a ItemImpl) -> syn::Result<Self> {
        let ident = proxy_base(item)?;
        let mut attr_errors = Vec::new();
        let mut methods = Vec::new();
        for impl_item in &item.items {
            match impl_item {
                ImplItem::Fn(method) => match Method::from_syn(method, &item.self_ty) {
                    Ok(Some(method)) => methods.push(method),
                    Ok(None) => {}
                    Err(error) => attr_errors.push(error),
                },
                ImplItem::Const(c) => attr_errors.extend(no_dopy_attr(&c.attrs).err()),
                ImplItem::Type(t) => attr_errors.extend(no_dopy_attr(&t.attrs).err()),
                ImplItem::Macro(m) => attr_errors.extend(no_dopy_attr(&m.attrs).err()),
                _ => {}
            }
        }
        Ok(Service { original: item, ident, docs: attr::docs(&item.attrs), methods, attr_errors })
    }
}

/// The identifier the proxy is named after, or why this impl block cannot be remote.
pub(crate) fn proxy_base(item: &ItemImpl) -> syn::Result<&Ident> {
    const GENERIC: &str = "generic impl blocks are not supported by #[dopy::remote]";
    if let Some((_, path, _)) = &item.trait_ {
        return Err(syn::Error::new_spanned(
            path,
            "#[dopy::remote] goes on an inherent impl block (`impl Calculator { .. }`), not on a trait impl",
        ));
    }
    if !item.generics.params.is_empty() {
        return Err(syn::Error::new_spanned(&item.generics, GENERIC));
    }
    if let Some(clause) = &item.generics.where_clause {
        return Err(syn::Error::new_spanned(clause, GENERIC));
    }
    let Type::Path(path) = &*item.self_ty else {
        return Err(syn::Error::new_spanned(&item.self_ty, "#[dopy::remote] needs an impl block of a named type"));
    };
    let Some(last) = path.path.segments.last().filter(|_| path.qself.is_none()) else {
        return Err(syn::Error::new_spanned(&item.self_ty, "#[dopy::remote] needs an impl block of a named type"));
    };
    if !last.arguments.is_none() {
        return Err(syn::Error::new_spanned(&last.arguments, GENERIC));
    }
    Ok(&last.ident)
}

fn no_dopy_attr(attrs: &[syn::Attribute]) -> syn::Result<()> {
    match attrs.iter().find(|a| attr::is_dopy(a)) {
        Some(a) => Err(syn::Error::new_spanned(a, "#[dopy] belongs on a `pub` method of a #[dopy::remote] impl block")),
        None => Ok(()),
    }
}

impl<'a> Method<'a> {
    /// The model of a remote method; `None` for a local one (not `pub`, or `#[dopy(skip)]`).
    fn from_syn(original: &'a ImplItemFn, self_ty: &Type) -> syn::Result<Option<Self>> {
        let attrs = attr::method_attrs(&original.attrs)?;
        if !matches!(original.vis, Visibility::Public(_)) {
            if let Some(a) = original.attrs.iter().find(|a| attr::is_dopy(a)) {
                return Err(syn::Error::new_spanned(
                    a,
                    "#[dopy] applies to `pub` methods only; this method is local already",
                ));
            }
            return Ok(None);
        }
        if attrs.skip.is_some() {
            return Ok(None);
        }
        let sig = &original.sig;
        let remote_name = match &attrs.name {
            Some(name) => name.value(),
            None => sig.ident.unraw().to_string(),
        };
        let mut receiver = Receiver::Missing;
        let mut args = Vec::new();
        for input in &sig.inputs {
            match input {
                FnArg::Receiver(r) => receiver = Receiver::from_syn(r),
                FnArg::Typed(pat) => args.push(Arg {
                    original: pat,
                    ident: match &*pat.pat {
                        syn::Pat::Ident(p) if p.by_ref.is_none() && p.subpat.is_none() => Some(&p.ident),
                        _ => None,
                    },
                    ty: replace_self(&pat.ty, self_ty),
                }),
            }
        }
        let output = Output::from_syn(&sig.output, self_ty);
        Ok(Some(Method { original, attrs, remote_name, receiver, args, output }))
    }

    /// The Rust name of the method (the proxy method has the same one).
    pub(crate) fn ident(&self) -> &Ident {
        &self.original.sig.ident
    }

    /// Whether the method is `async`.
    pub(crate) fn is_async(&self) -> bool {
        self.original.sig.asyncness.is_some()
    }

    /// Whether the method is oneway.
    pub(crate) fn is_oneway(&self) -> bool {
        self.attrs.oneway.is_some()
    }

    /// Whether the method runs to the end even if its caller cancels.
    pub(crate) fn is_no_cancel(&self) -> bool {
        self.attrs.no_cancel.is_some()
    }

    /// Whether the method may run in the connection's reader (`#[dopy(inline)]`).
    pub(crate) fn is_inline(&self) -> bool {
        self.attrs.inline.is_some()
    }
}

impl<'a> Receiver<'a> {
    fn from_syn(r: &'a syn::Receiver) -> Self {
        // `&self`, `&mut self` and their spelled-out forms `self: &Self`, `self: &mut Self`.
        match &*r.ty {
            Type::Reference(rf) if is_self(&rf.elem) && rf.lifetime.as_ref().is_none_or(|l| l.ident == "_") => {
                if rf.mutability.is_some() {
                    Receiver::Exclusive
                } else {
                    Receiver::Shared
                }
            }
            _ => Receiver::Invalid(r),
        }
    }
}

fn is_self(ty: &Type) -> bool {
    matches!(ty, Type::Path(p) if p.qself.is_none() && p.path.is_ident("Self"))
}

impl Output {
    fn from_syn(output: &ReturnType, self_ty: &Type) -> Self {
        let ReturnType::Type(_, ty) = output else { return Output::Unit };
        if matches!(&**ty, Type::Tuple(t) if t.elems.is_empty()) {
            return Output::Unit;
        }
        if let Type::Path(path) = &**ty {
            let last = path.path.segments.last().filter(|_| path.qself.is_none());
            if let Some(PathArguments::AngleBracketed(args)) =
                last.filter(|s| s.ident == "Result").map(|s| &s.arguments)
            {
                if let [GenericArgument::Type(ok), GenericArgument::Type(err)] =
                    args.args.iter().collect::<Vec<_>>().as_slice()
                {
                    return Output::Result(Box::new(replace_self(ok, self_ty)), Box::new(replace_self(err, self_ty)));
                }
            }
        }
        Output::Plain(Box::new(replace_self(ty, self_ty)))
    }

    /// The success type (`None` for `()`).
    pub(crate) fn ok_type(&self) -> Option<&Type> {
        match self {
            Output::Unit => None,
            Output::Plain(ty) | Output::Result(ty, _) => Some(ty),
        }
    }

    /// The method's own error type, for `Result` methods.
    pub(crate) fn error_type(&self) -> Option<&Type> {
        match self {
            Output::Result(_, err) => Some(err),
            _ => None,
        }
    }
}

/// Replaces `Self` in a type by the impl block's self type, so the type can be named outside
/// the impl block (in the proxy and the interface table). The replacement keeps `Self`'s span.
pub(crate) fn replace_self(ty: &Type, self_ty: &Type) -> Type {
    let tokens = replace_in(ty.to_token_stream(), self_ty);
    syn::parse2(tokens).unwrap_or_else(|_| ty.clone())
}

fn replace_in(tokens: TokenStream, self_ty: &Type) -> TokenStream {
    tokens
        .into_iter()
        .flat_map(|tree| -> TokenStream {
            match tree {
                TokenTree::Ident(ident) if ident == "Self" => self_ty
                    .to_token_stream()
                    .into_iter()
                    .map(|mut t| {
                        t.set_span(ident.span());
                        t
                    })
                    .collect(),
                TokenTree::Group(group) => {
                    let mut new = Group::new(group.delimiter(), replace_in(group.stream(), self_ty));
                    new.set_span(group.span());
                    TokenTree::Group(new).into()
                }
                other => other.into(),
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::{replace_self, Output};
    use quote::ToTokens;
    use syn::{parse_quote, ReturnType, Type};

    fn s(ty: &Type) -> String {
        crate::tidy::tidy(ty.to_token_stream())
    }

    #[test]
    fn replaces_self_everywhere() {
        let self_ty: Type = parse_quote!(crate::Calculator);
        assert_eq!(s(&replace_self(&parse_quote!(Vec<Self>), &self_ty)), "Vec<crate::Calculator>");
        assert_eq!(
            s(&replace_self(&parse_quote!((Self, [Self; 2])), &self_ty)),
            "(crate::Calculator, [crate::Calculator; 2])"
        );
        assert_eq!(s(&replace_self(&parse_quote!(u8), &self_ty)), "u8");
    }

    #[test]
    fn classifies_return_types() {
        let self_ty: Type = parse_quote!(Calc);
        let classify = |r: ReturnType| match Output::from_syn(&r, &self_ty) {
            Output::Unit => "unit".to_owned(),
            Output::Plain(t) => format!("plain {}", s(&t)),
            Output::Result(t, e) => format!("result {} {}", s(&t), s(&e)),
        };
        assert_eq!(classify(parse_quote!()), "unit");
        assert_eq!(classify(parse_quote!(-> ())), "unit");
        assert_eq!(classify(parse_quote!(-> i64)), "plain i64");
        assert_eq!(classify(parse_quote!(-> Result<i64, DivError>)), "result i64 DivError");
        assert_eq!(classify(parse_quote!(-> std::result::Result<Self, E>)), "result Calc E");
        assert_eq!(classify(parse_quote!(-> io::Result<u8>)), "plain io::Result<u8>");
        assert_eq!(classify(parse_quote!(-> Option<Result<u8, E>>)), "plain Option<Result<u8, E>>");
    }
}
