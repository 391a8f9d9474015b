//! The source layout's two rules (docs/DESIGN.md §1): inside each crate the top-level modules
//! import one another without a cycle, as the graph written in docs/DESIGN.md shows; and no
//! source file is longer than 600 lines unless its first lines say why.
//!
//! A module "imports" another when its files name `crate::other` (in a `use` or a path); a
//! file belongs to the top-level module whose directory or file holds it. Comments are not
//! code: a doc link to another module is no dependency.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};

/// Longer files say why in their first lines, with this phrase.
const LONG: usize = 600;
const LONG_REASON: &str = "Over 600 lines because";

/// The crates whose module graphs docs/DESIGN.md shows, by their source directory.
const CRATES: &[(&str, &str)] = &[
    ("dopy", "src"),
    ("dopy-core", "dopy-core/src"),
    ("dopy-transport", "dopy-transport/src"),
    ("dopy-macros", "dopy-macros/src"),
    ("dopy-cli", "dopy-cli/src"),
    ("dopy-bench", "dopy-bench/src"),
];

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = fs::read_dir(dir) else { return };
    for entry in entries.flatten() {
        let path = entry.path();
        let name = entry.file_name();
        if path.is_dir() {
            if name != "target" && !name.to_string_lossy().starts_with('.') {
                rust_files(&path, out);
            }
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The text of a Rust file without its comments (line, block and doc comments) and without
/// the contents of string literals, so that only code is searched.
fn code_of(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = String::with_capacity(text.len());
    let mut i = 0;
    while i < bytes.len() {
        let rest = &text[i..];
        if rest.starts_with("//") {
            i += rest.find('\n').unwrap_or(rest.len());
        } else if rest.starts_with("/*") {
            let mut depth = 0;
            while i < bytes.len() {
                if text[i..].starts_with("/*") {
                    depth += 1;
                    i += 2;
                } else if text[i..].starts_with("*/") {
                    depth -= 1;
                    i += 2;
                    if depth == 0 {
                        break;
                    }
                } else {
                    i += 1;
                }
            }
        } else if rest.starts_with("'\"'") {
            i += 3; // the character '"'
        } else if rest.starts_with("r#\"") {
            i += rest.find("\"#").map_or(rest.len(), |end| end + 2);
            out.push_str("\"\"");
        } else if rest.starts_with('"') {
            i += 1;
            while i < bytes.len() && bytes[i] != b'"' {
                i += if bytes[i] == b'\\' { 2 } else { 1 };
            }
            i += 1;
            out.push_str("\"\"");
        } else {
            let c = rest.chars().next().expect("not at the end");
            out.push(c);
            i += c.len_utf8();
        }
    }
    out
}

/// The top-level modules named after `crate::` in `code`: `crate::a::b`, `crate::{a, b::c}`.
fn crate_paths(code: &str) -> BTreeSet<String> {
    let mut found = BTreeSet::new();
    let mut rest = code;
    while let Some(at) = rest.find("crate::") {
        let before = rest[..at].chars().next_back();
        rest = &rest[at + "crate::".len()..];
        if before.is_some_and(|c| c.is_alphanumeric() || c == '_' || c == '$') {
            continue; // `dopy_core::`, `$crate::`
        }
        if let Some(group) = rest.strip_prefix('{') {
            let mut depth = 0;
            let mut item = String::new();
            for c in group.chars() {
                match c {
                    '{' => depth += 1,
                    '}' if depth == 0 => break,
                    '}' => depth -= 1,
                    ',' if depth == 0 => {
                        found.extend(first_ident(&item));
                        item.clear();
                        continue;
                    }
                    _ => {}
                }
                if depth == 0 {
                    item.push(c);
                }
            }
            found.extend(first_ident(&item));
        } else {
            found.extend(first_ident(rest));
        }
    }
    found
}

fn first_ident(s: &str) -> Option<String> {
    let ident: String = s.trim_start().chars().take_while(|c| c.is_alphanumeric() || *c == '_').collect();
    (!ident.is_empty()).then_some(ident)
}

/// The top-level module a file belongs to (`None` for the crate root).
fn module_of(src: &Path, file: &Path) -> Option<String> {
    let rel = file.strip_prefix(src).expect("under the source directory");
    let first = rel.components().next()?.as_os_str().to_string_lossy().into_owned();
    let name = first.strip_suffix(".rs").unwrap_or(&first).to_owned();
    (!matches!(name.as_str(), "lib" | "main")).then_some(name)
}

/// Each top-level module of the crate in `src` and the top-level modules it imports.
fn graph(src: &Path) -> BTreeMap<String, BTreeSet<String>> {
    let mut files = Vec::new();
    rust_files(src, &mut files);
    let modules: BTreeSet<String> = files.iter().filter_map(|f| module_of(src, f)).collect();
    let reexported = reexports(&files, src, &modules);
    let mut graph: BTreeMap<String, BTreeSet<String>> = modules.iter().map(|m| (m.clone(), BTreeSet::new())).collect();
    for file in &files {
        let Some(module) = module_of(src, file) else { continue };
        let code = code_of(&fs::read_to_string(file).expect("readable"));
        let deps = crate_paths(&code)
            .into_iter()
            .filter_map(|d| if modules.contains(&d) { Some(d) } else { reexported.get(&d).cloned() })
            .filter(|d| *d != module);
        graph.get_mut(&module).expect("listed").extend(deps);
    }
    graph
}

/// The items the crate root re-exports from its modules (`pub use module::{A, b::C}` names
/// `A` and `C`), by the module they come from: `crate::A` imports that module.
fn reexports(files: &[PathBuf], src: &Path, modules: &BTreeSet<String>) -> BTreeMap<String, String> {
    let mut found = BTreeMap::new();
    for file in files.iter().filter(|f| module_of(src, f).is_none()) {
        let code = code_of(&fs::read_to_string(file).expect("readable"));
        for statement in code.split(';') {
            let Some(path) = statement.trim().strip_prefix("pub use ") else { continue };
            let path = path.trim().trim_start_matches("crate::").trim_start_matches("self::");
            let Some(module) = first_ident(path).filter(|m| modules.contains(m)) else { continue };
            let names = path.replace(['{', '}'], ",");
            for item in names.split(',') {
                let item = item.trim();
                let name = match item.split_once(" as ") {
                    Some((_, alias)) => alias.trim(),
                    None => item.rsplit("::").next().unwrap_or(item).trim(),
                };
                if !name.is_empty() && name != "self" && name != module && name != "*" {
                    found.insert(name.to_owned(), module.clone());
                }
            }
        }
    }
    found
}

/// A cycle of the graph, if it has one.
fn cycle(graph: &BTreeMap<String, BTreeSet<String>>) -> Option<Vec<String>> {
    fn visit<'a>(
        node: &'a str,
        graph: &'a BTreeMap<String, BTreeSet<String>>,
        done: &mut BTreeSet<&'a str>,
        path: &mut Vec<&'a str>,
    ) -> Option<Vec<String>> {
        if let Some(at) = path.iter().position(|n| *n == node) {
            let mut cycle: Vec<String> = path[at..].iter().map(|s| s.to_string()).collect();
            cycle.push(node.to_owned());
            return Some(cycle);
        }
        if !done.insert(node) {
            return None;
        }
        path.push(node);
        for next in &graph[node] {
            if let Some(found) = visit(next, graph, done, path) {
                return Some(found);
            }
        }
        path.pop();
        None
    }
    let mut done = BTreeSet::new();
    graph.keys().find_map(|node| visit(node, graph, &mut done, &mut Vec::new()))
}

/// The graphs as docs/DESIGN.md writes them: one line per module that imports any other.
fn rendered() -> String {
    let mut out = String::new();
    for (name, src) in CRATES {
        out.push_str(&format!("{name}\n"));
        for (module, deps) in graph(&root().join(src)) {
            if !deps.is_empty() {
                let deps: Vec<&str> = deps.iter().map(String::as_str).collect();
                out.push_str(&format!("  {module} -> {}\n", deps.join(", ")));
            }
        }
    }
    out
}

#[test]
fn no_crate_has_a_module_cycle() {
    for (name, src) in CRATES {
        let graph = graph(&root().join(src));
        assert!(graph.len() > 1 || *name == "dopy-macros", "{name}: no modules found under {src}");
        if let Some(cycle) = cycle(&graph) {
            panic!("{name}: the modules import one another in a cycle: {}", cycle.join(" -> "));
        }
    }
}

#[test]
fn the_design_document_shows_the_module_graphs_as_they_are() {
    let design = fs::read_to_string(root().join("docs/DESIGN.md")).expect("docs/DESIGN.md");
    let begin = "<!-- module graph: begin (tests/layout.rs checks it) -->\n```text\n";
    let start = design.find(begin).expect("docs/DESIGN.md has the module graph block") + begin.len();
    let end = start + design[start..].find("```").expect("the block ends");
    let written = &design[start..end];
    let actual = rendered();
    assert!(written == actual, "docs/DESIGN.md's module graph is out of date; the code's is:\n{actual}");
}

#[test]
fn long_files_say_why() {
    let mut files = Vec::new();
    for dir in ["src", "tests", "examples", "benches", "fuzz"] {
        rust_files(&root().join(dir), &mut files);
    }
    for (_, src) in &CRATES[1..] {
        rust_files(&root().join(src.trim_end_matches("/src")), &mut files);
    }
    files.sort();
    files.dedup();
    let mut long = Vec::new();
    for file in &files {
        let text = fs::read_to_string(file).expect("readable");
        let lines = text.lines().count();
        let head: Vec<&str> = text.lines().take(8).collect();
        if lines > LONG && !head.iter().any(|l| l.contains(LONG_REASON)) {
            long.push(format!("{} ({lines} lines)", file.strip_prefix(root()).unwrap_or(file).display()));
        }
    }
    assert!(
        long.is_empty(),
        "files over {LONG} lines must say why in their first lines (\"{LONG_REASON} ...\"), or be split:\n{}",
        long.join("\n")
    );
}

#[test]
fn the_scanner_finds_imports_and_cycles() {
    let code =
        code_of("use crate::{a::X, b, c::{d, e}};\n// crate::hidden\nlet s = \"crate::quoted\";\ncrate::f::g();");
    let names: Vec<String> = crate_paths(&code).into_iter().collect();
    assert_eq!(names, ["a", "b", "c", "f"]);
    let mut g = BTreeMap::new();
    g.insert("a".to_owned(), BTreeSet::from(["b".to_owned()]));
    g.insert("b".to_owned(), BTreeSet::from(["c".to_owned()]));
    g.insert("c".to_owned(), BTreeSet::new());
    assert_eq!(cycle(&g), None);
    g.get_mut("c").unwrap().insert("a".to_owned());
    assert_eq!(cycle(&g).unwrap(), ["a", "b", "c", "a"]);
}
