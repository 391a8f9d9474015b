//! Renders types as tidy strings for the interface table (`Vec<Point>`, not `Vec < Point >`).
//!
//! `TokenStream::to_string` puts a space between every pair of tokens. The interface shows type
//! names to people (and to the `dopy` command-line tool), so we print them the way rustfmt would.

use proc_macro2::{Delimiter, Spacing, TokenStream, TokenTree};

/// Renders tokens (usually a type) the way they are written by hand.
pub(crate) fn tidy(tokens: TokenStream) -> String {
    let mut out = String::new();
    let mut prev = Atom::Start;
    write_stream(&mut out, &mut prev, tokens);
    out
}

/// What was printed last, which decides whether the next token needs a space before it.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Atom {
    /// Nothing yet, or an opening delimiter.
    Start,
    /// An identifier, literal or lifetime.
    Word,
    /// A closing delimiter.
    Close,
    /// A `>` closing generic arguments.
    Angle,
    /// Punctuation followed by a space (`,`, `;`, `:`, `->`, `+`, `=`).
    Spaced,
    /// Punctuation glued to what follows (`&`, `*`, `<`, `::`, `'`, `!`, `?`, `#`).
    Glued,
}

fn write_stream(out: &mut String, prev: &mut Atom, tokens: TokenStream) {
    let mut iter = tokens.into_iter().peekable();
    while let Some(tree) = iter.next() {
        match tree {
            TokenTree::Ident(ident) => {
                word_gap(out, *prev);
                out.push_str(&ident.to_string());
                *prev = Atom::Word;
            }
            TokenTree::Literal(lit) => {
                word_gap(out, *prev);
                out.push_str(&lit.to_string());
                *prev = Atom::Word;
            }
            TokenTree::Group(group) => {
                let (open, close) = match group.delimiter() {
                    Delimiter::Parenthesis => ("(", ")"),
                    Delimiter::Bracket => ("[", "]"),
                    Delimiter::Brace => ("{", "}"),
                    Delimiter::None => ("", ""),
                };
                if group.delimiter() == Delimiter::None {
                    write_stream(out, prev, group.stream());
                    continue;
                }
                if *prev == Atom::Spaced {
                    out.push(' ');
                }
                out.push_str(open);
                *prev = Atom::Start;
                write_stream(out, prev, group.stream());
                out.push_str(close);
                *prev = Atom::Close;
            }
            TokenTree::Punct(punct) => {
                // Glue joint punctuation into one operator (`::`, `->`), and `'` into a lifetime.
                let mut op = punct.as_char().to_string();
                let mut spacing = punct.spacing();
                while spacing == Spacing::Joint && op != "'" {
                    match iter.peek() {
                        Some(TokenTree::Punct(next)) => {
                            op.push(next.as_char());
                            spacing = next.spacing();
                            iter.next();
                        }
                        _ => break,
                    }
                }
                write_punct(out, prev, &op);
            }
        }
    }
}

/// A word after another word (`dyn Trait`, `mut T`) or after a spaced operator needs a space.
fn word_gap(out: &mut String, prev: Atom) {
    if matches!(prev, Atom::Word | Atom::Spaced | Atom::Angle | Atom::Close) {
        out.push(' ');
    }
}

fn write_punct(out: &mut String, prev: &mut Atom, op: &str) {
    match op {
        "," | ";" | ":" => {
            out.push_str(op);
            *prev = Atom::Spaced;
        }
        "->" | "+" | "=" => {
            if *prev != Atom::Start {
                out.push(' ');
            }
            out.push_str(op);
            *prev = Atom::Spaced;
        }
        _ if op.chars().all(|c| c == '>') => {
            out.push_str(op);
            *prev = Atom::Angle;
        }
        "'" => {
            // The lifetime's name follows as an identifier; glue it like a word.
            if matches!(*prev, Atom::Word | Atom::Spaced | Atom::Angle | Atom::Close) {
                out.push(' ');
            }
            out.push('\'');
            *prev = Atom::Glued;
        }
        _ => {
            if *prev == Atom::Spaced || (*prev == Atom::Word && op != "<" && op != "::" && op != "!") {
                out.push(' ');
            }
            out.push_str(op);
            *prev = Atom::Glued;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::tidy;
    use quote::quote;

    fn ty(src: &str) -> String {
        let parsed: syn::Type = syn::parse_str(src).expect("test input is a type");
        tidy(quote!(#parsed))
    }

    #[test]
    fn paths_and_generics() {
        assert_eq!(ty("Vec < Point >"), "Vec<Point>");
        assert_eq!(ty("HashMap<String,i64>"), "HashMap<String, i64>");
        assert_eq!(ty("Option<u8>"), "Option<u8>");
        assert_eq!(ty("std :: collections :: HashMap<String, Vec<u8>>"), "std::collections::HashMap<String, Vec<u8>>");
        assert_eq!(ty("::std::string::String"), "::std::string::String");
        assert_eq!(ty("Result<Vec<u8>, MyError>"), "Result<Vec<u8>, MyError>");
    }

    #[test]
    fn arrays_tuples_and_unit() {
        assert_eq!(ty("[u8; 4]"), "[u8; 4]");
        assert_eq!(ty("[u8]"), "[u8]");
        assert_eq!(ty("(i32, String)"), "(i32, String)");
        assert_eq!(ty("(u8,)"), "(u8,)");
        assert_eq!(ty("()"), "()");
        assert_eq!(ty("Vec<(u8, [i16; 2])>"), "Vec<(u8, [i16; 2])>");
    }

    #[test]
    fn references_lifetimes_and_pointers() {
        assert_eq!(ty("& 'static str"), "&'static str");
        assert_eq!(ty("&mut Vec<u8>"), "&mut Vec<u8>");
        assert_eq!(ty("Cow<'static, str>"), "Cow<'static, str>");
        assert_eq!(ty("*const u8"), "*const u8");
        assert_eq!(ty("&(u8, u8)"), "&(u8, u8)");
    }

    #[test]
    fn trait_objects_and_functions() {
        assert_eq!(ty("Box<dyn Error + Send + Sync>"), "Box<dyn Error + Send + Sync>");
        assert_eq!(ty("Box<dyn Fn(u8) -> u8>"), "Box<dyn Fn(u8) -> u8>");
        assert_eq!(ty("fn(u8, u16) -> ()"), "fn(u8, u16) -> ()");
        assert_eq!(ty("<T as Iterator>::Item"), "<T as Iterator>::Item");
        assert_eq!(ty("Box<dyn Iterator<Item = u8>>"), "Box<dyn Iterator<Item = u8>>");
        assert_eq!(ty("Box<dyn for<'a> Fn(&'a u8)>"), "Box<dyn for<'a> Fn(&'a u8)>");
        assert_eq!(ty("Box<dyn Send + ?Sized>"), "Box<dyn Send + ?Sized>");
        assert_eq!(ty("!"), "!");
    }

    #[test]
    fn macros_in_type_position() {
        assert_eq!(ty("my_type!(u8)"), "my_type!(u8)");
    }
}
