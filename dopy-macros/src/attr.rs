//! Attributes: parsing `#[dopy(..)]`, and collecting the `#[doc]`/`#[cfg]` attributes that are
//! forwarded to generated items.
//!
//! Checks that concern one attribute alone live here; rules that relate a method's attributes
//! to its signature or to other methods live in `valid.rs`.

use syn::parse::{Parse, ParseStream};
use syn::{Attribute, Expr, ExprLit, Lit, LitStr, Meta, Token};

use crate::ctxt::Errors;

mod kw {
    syn::custom_keyword!(name);
    syn::custom_keyword!(skip);
    syn::custom_keyword!(oneway);
    syn::custom_keyword!(no_cancel);
    syn::custom_keyword!(inline);
    syn::custom_keyword!(local);
}

/// What `#[dopy::remote(..)]` says: nothing, or `local` for a `!Send` object.
#[derive(Default)]
pub(crate) struct RemoteArgs {
    /// `local`: the object is `!Send` and is served on the thread that owns it.
    pub(crate) local: Option<kw::local>,
}

/// The error for arguments of `#[dopy::remote]` other than `local`.
const REMOTE_ARGS: &str = "#[dopy::remote] takes no arguments, or `local` for a `!Send` object";

/// Parses the arguments of `#[dopy::remote(..)]`, with the error for anything but `local` at
/// its own tokens. A leading `local` is kept even then, so that the fallback fits the object.
pub(crate) fn remote_args(args: proc_macro2::TokenStream) -> (RemoteArgs, Option<syn::Error>) {
    let parse = |input: ParseStream<'_>| {
        let local = if input.peek(kw::local) { Some(input.parse()?) } else { None };
        let rest: proc_macro2::TokenStream = input.parse()?;
        Ok((RemoteArgs { local }, rest))
    };
    match syn::parse::Parser::parse2(parse, args) {
        Ok((args, rest)) if rest.is_empty() => (args, None),
        Ok((args, rest)) => (args, Some(syn::Error::new_spanned(rest, REMOTE_ARGS))),
        Err(error) => (RemoteArgs::default(), Some(error)),
    }
}

/// The name of our helper attribute.
const DOPY: &str = "dopy";

/// What the `#[dopy(..)]` attributes of one method say.
#[derive(Default)]
pub(crate) struct MethodAttrs {
    /// `name = "remote_name"`: the name callers use instead of the Rust name.
    pub(crate) name: Option<LitStr>,
    /// `skip`: the `pub` method stays local.
    pub(crate) skip: Option<kw::skip>,
    /// `oneway`: no reply is sent.
    pub(crate) oneway: Option<kw::oneway>,
    /// `no_cancel`: the method runs to the end even if its caller cancels or times out.
    pub(crate) no_cancel: Option<kw::no_cancel>,
    /// `inline`: short and never blocks; may run in the connection's reader, without a task.
    pub(crate) inline: Option<kw::inline>,
}

/// One key inside `#[dopy(..)]`.
enum Key {
    Name(kw::name, LitStr),
    Skip(kw::skip),
    Oneway(kw::oneway),
    NoCancel(kw::no_cancel),
    Inline(kw::inline),
}

impl Parse for Key {
    fn parse(input: ParseStream<'_>) -> syn::Result<Self> {
        let lookahead = input.lookahead1();
        if lookahead.peek(kw::name) {
            let key = input.parse()?;
            input.parse::<Token![=]>()?;
            Ok(Key::Name(key, input.parse()?))
        } else if lookahead.peek(kw::skip) {
            Ok(Key::Skip(input.parse()?))
        } else if lookahead.peek(kw::oneway) {
            Ok(Key::Oneway(input.parse()?))
        } else if lookahead.peek(kw::no_cancel) {
            Ok(Key::NoCancel(input.parse()?))
        } else if lookahead.peek(kw::inline) {
            Ok(Key::Inline(input.parse()?))
        } else if input.peek(syn::Ident) {
            let unknown: syn::Ident = input.parse()?;
            Err(syn::Error::new_spanned(
                &unknown,
                format!("unknown #[dopy] key `{unknown}`; expected `name`, `skip`, `oneway`, `no_cancel` or `inline`"),
            ))
        } else {
            Err(lookahead.error())
        }
    }
}

/// Whether an attribute is one of ours.
pub(crate) fn is_dopy(attr: &Attribute) -> bool {
    attr.path().is_ident(DOPY)
}

/// Removes our helper attributes before an item is emitted again.
pub(crate) fn strip(attrs: &mut Vec<Attribute>) {
    attrs.retain(|attr| !is_dopy(attr));
}

/// Parses all `#[dopy(..)]` attributes of a method; keys may be spread over several attributes.
pub(crate) fn method_attrs(attrs: &[Attribute]) -> syn::Result<MethodAttrs> {
    let mut errors = Errors::default();
    let mut out = MethodAttrs::default();
    for attr in attrs.iter().filter(|a| is_dopy(a)) {
        let keys = attr.parse_args_with(syn::punctuated::Punctuated::<Key, Token![,]>::parse_terminated);
        for key in errors.check(keys).into_iter().flatten() {
            match key {
                Key::Name(kw, lit) => errors.check(set(&mut out.name, lit, &kw, "name")),
                Key::Skip(kw) => errors.check(set(&mut out.skip, kw, &kw, "skip")),
                Key::Oneway(kw) => errors.check(set(&mut out.oneway, kw, &kw, "oneway")),
                Key::NoCancel(kw) => errors.check(set(&mut out.no_cancel, kw, &kw, "no_cancel")),
                Key::Inline(kw) => errors.check(set(&mut out.inline, kw, &kw, "inline")),
            };
        }
    }
    if let Some(lit) = &out.name {
        errors.check(check_name(lit));
    }
    if out.skip.is_some() {
        if let Some(lit) = &out.name {
            errors.push(syn::Error::new_spanned(lit, "a #[dopy(skip)] method is local: it has no remote `name`"));
        }
        if let Some(kw) = &out.oneway {
            errors.push(syn::Error::new_spanned(kw, "a #[dopy(skip)] method is local: it cannot be `oneway`"));
        }
        if let Some(kw) = &out.no_cancel {
            errors.push(syn::Error::new_spanned(kw, "a #[dopy(skip)] method is local: it cannot be `no_cancel`"));
        }
        if let Some(kw) = &out.inline {
            errors.push(syn::Error::new_spanned(kw, "a #[dopy(skip)] method is local: it cannot be `inline`"));
        }
    }
    errors.finish().map(|()| out)
}

/// Stores a key's value, rejecting a second occurrence at its span.
fn set<T>(slot: &mut Option<T>, value: T, key: &impl quote::ToTokens, name: &str) -> syn::Result<()> {
    if slot.is_some() {
        return Err(syn::Error::new_spanned(key, format!("duplicate #[dopy] key `{name}`")));
    }
    *slot = Some(value);
    Ok(())
}

/// A remote name must be non-empty and outside the reserved `dopy.` namespace.
fn check_name(lit: &LitStr) -> syn::Result<()> {
    let name = lit.value();
    if name.is_empty() {
        Err(syn::Error::new_spanned(lit, "a remote name cannot be empty"))
    } else if name.starts_with("dopy.") {
        Err(syn::Error::new_spanned(lit, "remote names starting with `dopy.` are reserved for built-in methods"))
    } else {
        Ok(())
    }
}

/// The text of the literal `#[doc = ".."]` attributes (the `///` lines), one leading space per
/// line removed, joined with `\n`. Docs built by macros (`#[doc = include_str!(..)]`) are skipped.
pub(crate) fn docs(attrs: &[Attribute]) -> String {
    let mut lines = Vec::new();
    for attr in attrs {
        let Meta::NameValue(meta) = &attr.meta else { continue };
        if !meta.path.is_ident("doc") {
            continue;
        }
        if let Expr::Lit(ExprLit { lit: Lit::Str(text), .. }) = &meta.value {
            let text = text.value();
            lines.extend(text.split('\n').map(|line| line.strip_prefix(' ').unwrap_or(line).trim_end().to_owned()));
        }
    }
    lines.join("\n").trim_matches('\n').to_owned()
}

/// The attributes that generated counterparts of an item carry too: `#[cfg]` (so they exist
/// exactly when it does), and the ones that describe it (`#[doc]`, `#[deprecated]`, `#[allow]`).
pub(crate) fn forwarded(attrs: &[Attribute]) -> impl Iterator<Item = &Attribute> {
    attrs.iter().filter(|a| ["cfg", "doc", "deprecated", "allow"].iter().any(|name| a.path().is_ident(name)))
}

/// The `#[cfg]` attributes of an item.
pub(crate) fn cfgs(attrs: &[Attribute]) -> impl Iterator<Item = &Attribute> {
    attrs.iter().filter(|a| a.path().is_ident("cfg"))
}

/// Whether the item documents itself (has any `#[doc]` attribute).
pub(crate) fn has_docs(attrs: &[Attribute]) -> bool {
    attrs.iter().any(|a| a.path().is_ident("doc"))
}

#[cfg(test)]
mod tests {
    use super::{docs, method_attrs, remote_args, strip, RemoteArgs, REMOTE_ARGS};
    use quote::quote;
    use syn::{parse_quote, Attribute, ItemFn};

    #[test]
    fn parses_remote_args() {
        assert!(matches!(remote_args(quote!()), (RemoteArgs { local: None }, None)));
        assert!(matches!(remote_args(quote!(local)), (RemoteArgs { local: Some(_) }, None)));
        for (args, local) in [
            (quote!(Local), false),
            (quote!(local, name = "x"), true),
            (quote!(local local), true),
            (quote!("local"), false),
        ] {
            let (parsed, Some(err)) = remote_args(args.clone()) else { panic!("`{args}` was accepted") };
            assert_eq!(err.to_string(), REMOTE_ARGS, "{args}");
            assert_eq!(parsed.local.is_some(), local, "{args}");
        }
    }

    fn attrs(item: ItemFn) -> Vec<Attribute> {
        item.attrs
    }

    fn error(item: ItemFn) -> String {
        match method_attrs(&item.attrs) {
            Ok(_) => panic!("expected an error"),
            Err(e) => e.into_iter().map(|e| e.to_string()).collect::<Vec<_>>().join(" | "),
        }
    }

    #[test]
    fn parses_keys_across_attributes() {
        let parsed = method_attrs(&attrs(parse_quote! {
            #[dopy(name = "plus")]
            #[dopy(oneway,)]
            fn f() {}
        }))
        .unwrap();
        assert_eq!(parsed.name.unwrap().value(), "plus");
        assert!(parsed.oneway.is_some());
        assert!(parsed.skip.is_none());
        assert!(method_attrs(&attrs(parse_quote!(
            #[doc = "x"]
            fn f() {}
        )))
        .unwrap()
        .name
        .is_none());
    }

    #[test]
    fn rejects_duplicates_unknown_keys_and_reserved_names() {
        assert_eq!(
            error(parse_quote!(
                #[dopy(skip, skip)]
                fn f() {}
            )),
            "duplicate #[dopy] key `skip`"
        );
        assert_eq!(
            error(parse_quote!(
                #[dopy(name = "a")]
                #[dopy(name = "b")]
                fn f() {}
            )),
            "duplicate #[dopy] key `name`"
        );
        assert_eq!(
            error(parse_quote!(
                #[dopy(foo)]
                fn f() {}
            )),
            "unknown #[dopy] key `foo`; expected `name`, `skip`, `oneway`, `no_cancel` or `inline`"
        );
        assert_eq!(
            error(parse_quote!(
                #[dopy(name = "dopy.methods")]
                fn f() {}
            )),
            "remote names starting with `dopy.` are reserved for built-in methods"
        );
        assert_eq!(
            error(parse_quote!(
                #[dopy(name = "")]
                fn f() {}
            )),
            "a remote name cannot be empty"
        );
        assert_eq!(
            error(parse_quote!(
                #[dopy(skip, oneway)]
                #[dopy(foo)]
                fn f() {}
            )),
            "unknown #[dopy] key `foo`; expected `name`, `skip`, `oneway`, `no_cancel` or `inline` \
             | a #[dopy(skip)] method is local: it cannot be `oneway`"
        );
    }

    #[test]
    fn joins_doc_lines() {
        let docs = docs(&attrs(parse_quote! {
            /// Adds two numbers.
            ///
            ///   Indented.
            #[doc = include_str!("x.md")]
            /** Block
             line. */
            fn f() {}
        }));
        assert_eq!(docs, "Adds two numbers.\n\n  Indented.\nBlock\n            line.");
    }

    #[test]
    fn strips_only_dopy_attributes() {
        let mut attrs = attrs(parse_quote!(
            #[dopy(skip)]
            #[inline]
            #[cfg(test)]
            fn f() {}
        ));
        strip(&mut attrs);
        assert_eq!(attrs.len(), 2);
    }
}
