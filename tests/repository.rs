//! The repository stands on its own: a clone anywhere has everything its files cite.
//!
//! - The compatibility contract with the Rails app is docs/contract.md. Nothing cites a
//!   copy of it outside the repository (the folder beside the checkout that holds Spin's
//!   binaries is not part of a clone).
//! - Every section sign in the repository cites a section of docs/contract.md, and that
//!   section exists, so renumbering the contract without its citations fails here.
//! - Nothing cites an issue number of this project: a clone does not have its tracker, so
//!   a comment says the reason, not which issue asked for it. A full URL to another
//!   project's issue (`https://github.com/<owner>/<repo>/issues/<n>`) is a link anyone
//!   can follow, and passes.
//!
//! Plain file reads, no services: `cargo test --test repository`.

use std::collections::BTreeSet;
use std::fs;
use std::path::{Path, PathBuf};

/// The section sign, spelled so that this file holds none of its own to check.
const SECTION: char = '\u{a7}';

/// What no file may contain, with why. Built at compile time from pieces, so that this
/// file does not name them itself.
const FORBIDDEN: &[(&str, &str)] = &[
    (
        concat!("CONTRACT", ".md"),
        "the contract is docs/contract.md; cite its sections",
    ),
    (
        concat!("/work", "/shared"),
        "a path outside the repository; a clone elsewhere has nothing there",
    ),
    (
        concat!("shared", " folder"),
        "the folder beside the checkout is not part of a clone; cite docs/contract.md",
    ),
    (
        concat!("shared", "/seed"),
        "the folder beside the checkout is not part of a clone; cite docs/contract.md",
    ),
];

fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Directories that are not the repository's content: builds (at any depth, e.g.
/// bench/floor/target and tests/host/target), git's own, and what tools leave behind.
fn skipped_dir(name: &str) -> bool {
    matches!(name, "target" | ".git" | ".spin" | "__pycache__")
}

/// Every text file of the repository, relative to its root, with its text. Files that
/// are not UTF-8 are binary and cite nothing.
fn text_files() -> Vec<(PathBuf, String)> {
    let root = repo_root();
    let mut files = Vec::new();
    let mut dirs = vec![root.clone()];
    while let Some(dir) = dirs.pop() {
        let entries = fs::read_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
        for entry in entries {
            let entry = entry.unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
            let kind = entry.file_type().unwrap();
            let path = entry.path();
            let name = entry.file_name().to_string_lossy().into_owned();
            if kind.is_dir() {
                if !skipped_dir(&name) {
                    dirs.push(path);
                }
            } else if kind.is_file() {
                // The developer's own variables (ignored by git, as are the dirs above).
                if dir == root && name == ".env" {
                    continue;
                }
                let bytes = fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
                if let Ok(text) = String::from_utf8(bytes) {
                    files.push((path.strip_prefix(&root).unwrap().to_path_buf(), text));
                }
            }
        }
    }
    files.sort();
    assert!(
        files
            .iter()
            .any(|(path, _)| path == Path::new("Cargo.toml")),
        "the walk did not find the repository's own Cargo.toml"
    );
    files
}

/// Byte offsets of each issue-number citation in `line`: the word "issue" or "issues"
/// (any case), then optional blanks and `#`, then a digit. "issued 3", "tissue 3" and
/// `.../issues/168` (a URL) are not citations.
fn issue_citations(line: &str) -> Vec<usize> {
    let lower = line.to_ascii_lowercase();
    let bytes = lower.as_bytes();
    let mut found = Vec::new();
    let mut from = 0;
    while let Some(at) = lower[from..].find("issue").map(|i| from + i) {
        from = at + "issue".len();
        if at > 0 && bytes[at - 1].is_ascii_alphanumeric() {
            continue;
        }
        let mut i = from;
        if bytes.get(i) == Some(&b's') {
            i += 1;
        }
        while matches!(bytes.get(i), Some(b' ' | b'\t' | b'#')) {
            i += 1;
        }
        if bytes.get(i).is_some_and(u8::is_ascii_digit) {
            found.push(at);
        }
    }
    found
}

/// The ids after each section sign in `text`: `1`, `6.4` (digits joined by single dots;
/// a dot that ends a sentence is not part of the id). A sign with no digit after it is
/// not a citation.
fn section_ids(text: &str) -> Vec<String> {
    let mut ids = Vec::new();
    for (at, _) in text.match_indices(SECTION) {
        let rest = &text[at + SECTION.len_utf8()..];
        let mut end = 0;
        let bytes = rest.as_bytes();
        loop {
            let digits = bytes[end..]
                .iter()
                .take_while(|b| b.is_ascii_digit())
                .count();
            if digits == 0 {
                break;
            }
            end += digits;
            if bytes.get(end) == Some(&b'.') && bytes.get(end + 1).is_some_and(u8::is_ascii_digit) {
                end += 1;
            } else {
                break;
            }
        }
        if end > 0 {
            ids.push(rest[..end].to_owned());
        }
    }
    ids
}

/// The sections docs/contract.md has: the id of every heading that carries one.
fn contract_sections(contract: &str) -> BTreeSet<String> {
    contract
        .lines()
        .filter(|line| line.starts_with('#'))
        .filter_map(|heading| section_ids(heading).into_iter().next())
        .collect()
}

#[test]
fn the_repository_cites_nothing_outside_itself() {
    let files = text_files();
    let contract = files
        .iter()
        .find(|(path, _)| path == Path::new("docs/contract.md"))
        .map(|(_, text)| text)
        .expect("docs/contract.md, the compatibility contract with the Rails app, is missing");
    let sections = contract_sections(contract);
    for required in ["1", "2", "3", "4", "5", "6"] {
        assert!(
            sections.contains(required),
            "docs/contract.md has no heading for section {required}: {sections:?}"
        );
    }

    let mut failures = Vec::new();
    for (path, text) in &files {
        for (number, line) in text.lines().enumerate() {
            let at = format!("{}:{}", path.display(), number + 1);
            for (needle, why) in FORBIDDEN {
                if line.contains(needle) {
                    failures.push(format!("{at}: names `{needle}`: {why}"));
                }
            }
            for column in issue_citations(line) {
                failures.push(format!(
                    "{at}:{}: cites an issue number (`{}`): say the reason instead, or link \
                     another project's issue by its full URL",
                    column + 1,
                    line[column..].chars().take(20).collect::<String>()
                ));
            }
            for id in section_ids(line) {
                if !sections.contains(&id) {
                    failures.push(format!(
                        "{at}: cites section {SECTION}{id}, which docs/contract.md does not \
                         have (it has {sections:?})"
                    ));
                }
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} citation(s) a clone cannot follow:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[test]
fn the_matchers_find_what_they_should_and_nothing_else() {
    let word = "issue";
    for cited in [
        format!("see {word} 15, item 9"),
        format!("({word} #4)"),
        format!("{}s 14-16", word.to_uppercase()),
        format!("{word}s #4 and #6"),
        format!("{word}#7"),
    ] {
        assert_eq!(issue_citations(&cited).len(), 1, "{cited}");
    }
    for plain in [
        format!("numbers {word}d 3 times"),
        format!("t{word} 3"),
        format!("https://github.com/spinframework/spin-operator/{word}s/168"),
        format!("the {word} of the day"),
    ] {
        assert!(issue_citations(&plain).is_empty(), "{plain}");
    }

    let text = format!("docs/contract.md {SECTION}4, {SECTION}6.4. and {SECTION}1.");
    assert_eq!(section_ids(&text), ["4", "6.4", "1"]);
    assert!(section_ids(&format!("{SECTION} alone")).is_empty());
    let headings = format!("# Title\n## {SECTION}1 The tables\n### {SECTION}6.1 A fault\n");
    assert_eq!(
        contract_sections(&headings),
        BTreeSet::from(["1".to_owned(), "6.1".to_owned()])
    );
}
