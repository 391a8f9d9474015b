//! The documents point at files that exist: every relative link and every `*.md` file named in
//! README.md, PROTOCOL.md and docs/*.md resolves, so a dangling reference fails the suite.

use std::path::{Path, PathBuf};

/// The documents checked: README.md, PROTOCOL.md and every docs/*.md.
fn documents(root: &Path) -> Vec<PathBuf> {
    let mut docs = vec![root.join("README.md"), root.join("PROTOCOL.md")];
    let mut inside: Vec<PathBuf> = std::fs::read_dir(root.join("docs"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "md"))
        .collect();
    inside.sort();
    docs.extend(inside);
    docs
}

/// The lines of `text` outside fenced code blocks (code may quote anything).
fn prose(text: &str) -> impl Iterator<Item = (usize, &str)> {
    let mut fenced = false;
    text.lines().enumerate().filter(move |(_, line)| {
        if line.trim_start().starts_with("```") {
            fenced = !fenced;
            return false;
        }
        !fenced
    })
}

/// The targets of the Markdown links `[text](target)` on a line.
fn link_targets(line: &str) -> Vec<&str> {
    line.match_indices("](")
        .filter_map(|(at, _)| {
            let rest = &line[at + 2..];
            rest.find(')').map(|end| rest[..end].trim())
        })
        .collect()
}

/// The words of a line that name a Markdown file (`docs/LIMITS.md`, `PROTOCOL.md`).
fn md_mentions(line: &str) -> Vec<&str> {
    line.split(|c: char| !(c.is_ascii_alphanumeric() || "._/-".contains(c)))
        .map(|w| w.trim_end_matches('.'))
        .filter(|w| w.ends_with(".md") && w.len() > 3)
        .collect()
}

/// Whether `target`, written in `doc`, names an existing file: relative to the document, or
/// (for a plain mention such as `docs/LIMITS.md`) to the repository root.
fn resolves(root: &Path, doc: &Path, target: &str) -> bool {
    let path = target.split('#').next().unwrap();
    path.is_empty() || doc.parent().unwrap().join(path).exists() || root.join(path).exists()
}

/// Every relative link and `*.md` mention in the documents names a file of the repository.
#[test]
fn documents_reference_only_files_that_exist() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut dangling = std::collections::BTreeSet::new();
    for doc in documents(root) {
        let text = std::fs::read_to_string(&doc).unwrap();
        let name = doc.strip_prefix(root).unwrap().display().to_string();
        for (n, line) in prose(&text) {
            let links = link_targets(line)
                .into_iter()
                .filter(|t| !(t.contains("://") || t.starts_with("mailto:") || t.starts_with('#') || t.contains(' ')));
            for target in links.chain(md_mentions(line)) {
                if !resolves(root, &doc, target) {
                    dangling.insert(format!("{name}:{}: {target}", n + 1));
                }
            }
        }
    }
    assert!(
        dangling.is_empty(),
        "references to files that do not exist:\n{}",
        dangling.into_iter().collect::<Vec<_>>().join("\n")
    );
}

/// The checker sees what it must: links, mentions, and nothing inside code fences.
#[test]
fn the_checker_finds_links_and_mentions() {
    assert_eq!(link_targets("see [a](docs/A.md#x) and [b](../B.md)"), ["docs/A.md#x", "../B.md"]);
    assert_eq!(md_mentions("(DESIGN.md section 7, `docs/LIMITS.md`)."), ["DESIGN.md", "docs/LIMITS.md"]);
    let lines: Vec<_> = prose("a\n```\nX.md\n```\nb").map(|(_, l)| l).collect();
    assert_eq!(lines, ["a", "b"]);
}
