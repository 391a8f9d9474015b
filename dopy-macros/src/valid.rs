//! The rules a remote method must follow, checked all at once so that every independent
//! mistake is reported in one compilation.

use std::collections::hash_map::{Entry, HashMap};

use proc_macro2::{TokenStream, TokenTree};
use quote::ToTokens;
use syn::{ReturnType, Type};

use crate::ast::{Method, Receiver, Service};
use crate::ctxt::Errors;

impl Service<'_> {
    /// Checks every method, then the rules that span methods (unique remote names).
    pub(crate) fn validate(&self) -> syn::Result<()> {
        let mut errors = Errors::default();
        for error in &self.attr_errors {
            errors.push(error.clone());
        }
        for method in &self.methods {
            errors.check(method.validate());
        }
        let mut seen: HashMap<&str, &Method<'_>> = HashMap::new();
        for method in &self.methods {
            match seen.entry(&method.remote_name) {
                Entry::Vacant(slot) => {
                    slot.insert(method);
                }
                // `#[cfg(unix)] fn f` next to `#[cfg(windows)] fn f` is fine: both are never there.
                Entry::Occupied(first) if has_cfg(first.get()) && has_cfg(method) => {}
                Entry::Occupied(first) => errors.push(syn::Error::new_spanned(
                    method.ident(),
                    format!(
                        "duplicate remote name `{}`: method `{}` already has it; \
                         give one of them another with #[dopy(name = \"..\")]",
                        method.remote_name,
                        first.get().ident()
                    ),
                )),
            }
        }
        errors.finish()
    }
}

impl Method<'_> {
    /// Checks the rules that make a method callable remotely.
    pub(crate) fn validate(&self) -> syn::Result<()> {
        let mut errors = Errors::default();
        let sig = &self.original.sig;
        match self.receiver {
            Receiver::Shared | Receiver::Exclusive => {}
            Receiver::Invalid(r) if r.reference.is_none() && r.colon_token.is_none() => {
                errors.push(syn::Error::new_spanned(
                    r,
                    "remote methods take `&self` or `&mut self`, not `self` by value: the object stays where it is",
                ));
            }
            Receiver::Invalid(r) => {
                errors.push(syn::Error::new_spanned(r, "remote methods take `&self` or `&mut self`"));
            }
            Receiver::Missing => errors.push(syn::Error::new_spanned(
                &sig.ident,
                "remote methods need `&self` or `&mut self`; mark it #[dopy(skip)] to keep it local",
            )),
        }
        if !sig.generics.params.is_empty() || sig.generics.where_clause.is_some() {
            errors.push(syn::Error::new_spanned(
                &sig.generics,
                "remote methods cannot have generic parameters or lifetimes",
            ));
        }
        if let Some(unsafety) = &sig.unsafety {
            errors.push(syn::Error::new_spanned(unsafety, "remote methods cannot be `unsafe`"));
        }
        if let Some(abi) = &sig.abi {
            errors.push(syn::Error::new_spanned(abi, "remote methods cannot have an `extern` ABI"));
        }
        for arg in &self.args {
            if arg.ident.is_none() {
                errors.push(syn::Error::new_spanned(
                    &arg.original.pat,
                    "remote method parameters must be `name: Type` or `mut name: Type`: callers may pass them by name",
                ));
            }
            let ty = &arg.original.ty;
            if let Some(found) = impl_trait(ty) {
                errors.push(syn::Error::new_spanned(
                    found,
                    "remote method parameters cannot use `impl Trait`: name a concrete type",
                ));
            } else if let Some(found) = reference(ty) {
                errors.push(syn::Error::new_spanned(
                    found,
                    "parameters travel by copy: take an owned type such as `String` instead of a reference",
                ));
            } else if let Some(found) = self_describing_only(ty) {
                errors.push(not_typed(ty, &found));
            }
        }
        if let ReturnType::Type(_, ty) = &sig.output {
            if let Some(found) = impl_trait(ty) {
                errors.push(syn::Error::new_spanned(
                    found,
                    "remote methods cannot return `impl Trait`: name a concrete type",
                ));
            } else if let Some(found) = reference(ty) {
                errors.push(syn::Error::new_spanned(
                    found,
                    "results travel by copy: return an owned type such as `String` instead of a reference",
                ));
            } else if let Some(found) = self_describing_only(ty) {
                errors.push(not_typed(ty, &found));
            } else if self.is_oneway() && self.output.ok_type().is_some() {
                errors.push(syn::Error::new_spanned(
                    ty,
                    "#[dopy(oneway)] methods must return `()`: no reply is sent to the caller",
                ));
            }
        }
        if let (Some(kw), Some(_)) = (&self.attrs.inline, &sig.asyncness) {
            errors.push(syn::Error::new_spanned(
                kw,
                "#[dopy(inline)] is for short synchronous methods: an `async fn` always runs in a task of its own",
            ));
        }
        errors.finish()
    }
}

fn has_cfg(method: &Method<'_>) -> bool {
    crate::attr::cfgs(&method.original.attrs).next().is_some()
}

/// Dynamic value types of other crates: their `Deserialize` needs a self-describing format
/// (`deserialize_any`), which the typed (postcard) encoding is not.
const SELF_DESCRIBING_ONLY: &[(&str, &str)] = &[
    ("serde_json", "Value"),
    ("serde_json", "Map"),
    ("serde_value", "Value"),
    ("serde_yaml", "Value"),
    ("serde_yml", "Value"),
    ("toml", "Value"),
    ("toml", "Table"),
    ("ciborium", "Value"),
    ("rmpv", "Value"),
    ("ron", "Value"),
];

/// The first `crate::Type` of [`SELF_DESCRIBING_ONLY`] named in `ty`, as `crate::Type`.
fn self_describing_only(ty: &Type) -> Option<String> {
    fn flat(tokens: TokenStream, out: &mut Vec<TokenTree>) {
        for t in tokens {
            match t {
                TokenTree::Group(g) => flat(g.stream(), out),
                t => out.push(t),
            }
        }
    }
    let mut tokens = Vec::new();
    flat(ty.to_token_stream(), &mut tokens);
    tokens.windows(4).find_map(|w| match w {
        [TokenTree::Ident(krate), TokenTree::Punct(a), TokenTree::Punct(b), TokenTree::Ident(name)]
            if a.as_char() == ':' && b.as_char() == ':' =>
        {
            let (krate, name) = (krate.to_string(), name.to_string());
            SELF_DESCRIBING_ONLY.iter().any(|&(k, n)| k == krate && n == name).then(|| format!("{krate}::{name}"))
        }
        _ => None,
    })
}

/// The error for a type that typed calls cannot carry.
fn not_typed(ty: &Type, found: &str) -> syn::Error {
    syn::Error::new_spanned(
        ty,
        format!(
            "`{found}` cannot travel in a typed call: its `Deserialize` needs a self-describing format, \
             and typed calls are encoded with postcard; use `dopy::Value` instead (it travels typed and \
             dynamic, and `dopy::to_value`/`dopy::from_value` convert to and from any serde type)"
        ),
    )
}

/// The first `impl Trait` anywhere in `ty`'s structure (`Vec<impl Display>` too).
fn impl_trait(ty: &Type) -> Option<&Type> {
    find_type(ty, &|t| matches!(t, Type::ImplTrait(_)), &|_| true)
}

/// The first reference among the values `ty` carries: `ty` itself, or an element of a tuple,
/// array or slice, or of a standard container ([`CONTAINERS`]) in it.
///
/// A reference elsewhere is not a value that travels (`PhantomData<&'static str>`,
/// `fn(&str)`), or is inside a type whose serde bounds say whether it can: it is left to them.
fn reference(ty: &Type) -> Option<&Type> {
    find_type(ty, &|t| matches!(t, Type::Reference(_)), &|segment| CONTAINERS.iter().any(|c| segment.ident == c))
}

/// The standard types whose type arguments are values that travel with them.
const CONTAINERS: &[&str] = &[
    "Option",
    "Result",
    "Box",
    "Rc",
    "Arc",
    "Vec",
    "VecDeque",
    "LinkedList",
    "BinaryHeap",
    "HashMap",
    "BTreeMap",
    "HashSet",
    "BTreeSet",
];

/// The first type in `ty`'s structure for which `pick` holds: `ty` itself, then the types inside
/// it (parentheses, tuples, arrays, slices, references and pointers), and the type arguments of
/// the path segments that `enter` accepts.
fn find_type<'a>(
    ty: &'a Type,
    pick: &dyn Fn(&Type) -> bool,
    enter: &dyn Fn(&syn::PathSegment) -> bool,
) -> Option<&'a Type> {
    if pick(ty) {
        return Some(ty);
    }
    match ty {
        Type::Paren(t) => find_type(&t.elem, pick, enter),
        Type::Group(t) => find_type(&t.elem, pick, enter),
        Type::Array(t) => find_type(&t.elem, pick, enter),
        Type::Slice(t) => find_type(&t.elem, pick, enter),
        Type::Reference(t) => find_type(&t.elem, pick, enter),
        Type::Ptr(t) => find_type(&t.elem, pick, enter),
        Type::Tuple(t) => t.elems.iter().find_map(|e| find_type(e, pick, enter)),
        Type::Path(t) => t.path.segments.iter().filter(|s| enter(s)).find_map(|segment| {
            let syn::PathArguments::AngleBracketed(args) = &segment.arguments else { return None };
            args.args.iter().find_map(|arg| match arg {
                syn::GenericArgument::Type(t) => find_type(t, pick, enter),
                _ => None,
            })
        }),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use crate::ast::Service;
    use syn::{parse_quote, ItemImpl};

    fn errors(item: ItemImpl) -> Vec<String> {
        let service = match Service::from_syn(&item) {
            Ok(service) => service,
            Err(e) => return e.into_iter().map(|e| e.to_string()).collect(),
        };
        match service.validate() {
            Ok(()) => Vec::new(),
            Err(e) => e.into_iter().map(|e| e.to_string()).collect(),
        }
    }

    #[test]
    fn accepts_valid_methods() {
        let found = errors(parse_quote! {
            impl Calc {
                pub fn add(&self, a: i64, mut b: i64) -> i64 { a + b }
                pub async fn reset(&mut self) {}
                pub fn div(self: &Self, a: i64) -> Result<i64, E> { Ok(a) }
                #[dopy(oneway)]
                pub fn log(&self, line: String) -> () {}
                #[dopy(skip)]
                pub fn new() -> Self { Calc }
                fn helper(self, x: &str) {}
                #[cfg(unix)]
                pub fn os(&self) -> u8 { 1 }
                #[cfg(windows)]
                pub fn os(&self) -> u8 { 2 }
            }
        });
        assert!(found.is_empty(), "{found:?}");
    }

    #[test]
    fn reports_all_errors_together() {
        let found = errors(parse_quote! {
            impl Calc {
                pub fn a(self) {}
                pub fn b<T>(&self, t: T) {}
                pub fn c(&self, x: impl Display, y: &str, (p, q): (u8, u8)) -> impl Display { x }
                #[dopy(oneway)]
                pub fn d(&self) -> u8 { 0 }
                pub fn new() -> Self { Calc }
                #[dopy(name = "a")]
                pub fn e(&self) {}
            }
        });
        assert_eq!(
            found,
            [
                "remote methods take `&self` or `&mut self`, not `self` by value: the object stays where it is",
                "remote methods cannot have generic parameters or lifetimes",
                "remote method parameters cannot use `impl Trait`: name a concrete type",
                "parameters travel by copy: take an owned type such as `String` instead of a reference",
                "remote method parameters must be `name: Type` or `mut name: Type`: callers may pass them by name",
                "remote methods cannot return `impl Trait`: name a concrete type",
                "#[dopy(oneway)] methods must return `()`: no reply is sent to the caller",
                "remote methods need `&self` or `&mut self`; mark it #[dopy(skip)] to keep it local",
                "duplicate remote name `a`: method `a` already has it; give one of them another with #[dopy(name = \"..\")]",
            ]
        );
    }

    #[test]
    fn refuses_references_the_values_carry_and_nothing_else() {
        let found = errors(parse_quote! {
            impl Calc {
                pub fn a(&self, tag: PhantomData<&'static str>, f: Wrapper<fn(&str) -> usize>) -> PhantomData<&'static u8> {}
                pub fn b(&self, pair: (u8, &str)) {}
                pub fn c(&self, names: Vec<Option<&str>>) {}
                pub fn d(&self, bytes: [&[u8]; 2]) -> std::sync::Arc<&'static str> {}
                pub fn e(&self, lines: Vec<impl Display>) -> Option<impl Display> {}
            }
        });
        let reference = "parameters travel by copy: take an owned type such as `String` instead of a reference";
        assert_eq!(
            found,
            [
                reference,
                reference,
                reference,
                "results travel by copy: return an owned type such as `String` instead of a reference",
                "remote method parameters cannot use `impl Trait`: name a concrete type",
                "remote methods cannot return `impl Trait`: name a concrete type",
            ]
        );
    }

    #[test]
    fn rejects_trait_and_generic_impls() {
        let generic = "generic impl blocks are not supported by #[dopy::remote]";
        assert_eq!(
            errors(parse_quote!(
                impl<T> Calc<T> {}
            )),
            [generic]
        );
        assert_eq!(
            errors(parse_quote!(
                impl<'a> Calc<'a> {}
            )),
            [generic]
        );
        assert_eq!(errors(parse_quote!(impl Calc<u8> {})), [generic]);
        assert!(errors(parse_quote!(impl Clone for Calc {}))[0].contains("not on a trait impl"));
    }
}
