//! The documentation a newcomer reads resolves: every link of the README and of `docs/` names a
//! file of the repository (and, with `#anchor`, a heading of it), every source comment that cites
//! `docs/….md` or `grammar/README.md` names a file that exists (and, with `§N`, a section of
//! it), and the README stays a front door (at most 300 lines).

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use vezasock::files::{limit, read_bounded_text};

const ROOT: &str = env!("CARGO_MANIFEST_DIR");

fn read(path: &Path) -> String {
    read_bounded_text(path, limit::STATE).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The files under `dir` (relative to the repository) whose name ends in `ext`, recursively.
fn files_under(dir: &str, ext: &str) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut todo = vec![Path::new(ROOT).join(dir)];
    // Bounded: the repository has a few hundred directories.
    for _ in 0..10_000 {
        let Some(dir) = todo.pop() else { break };
        let entries = std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
        for entry in entries.filter_map(|e| e.ok()) {
            let path = entry.path();
            if path.is_dir() {
                todo.push(path);
            } else if path.to_string_lossy().ends_with(ext) {
                out.push(path);
            }
        }
    }
    out.sort();
    out
}

/// The README and every Markdown file of `docs/`.
fn documents() -> Vec<PathBuf> {
    let mut docs = vec![Path::new(ROOT).join("README.md")];
    docs.extend(files_under("docs", ".md"));
    docs
}

/// The lines of `text` outside fenced code blocks.
fn prose_lines(text: &str) -> Vec<&str> {
    let mut fenced = false;
    let mut out = Vec::new();
    for line in text.lines() {
        if line.trim_start().starts_with("```") {
            fenced = !fenced;
        } else if !fenced {
            out.push(line);
        }
    }
    out
}

/// `line` without its inline code spans (a link written inside backticks is an example).
fn without_code(line: &str) -> String {
    line.split('`').step_by(2).collect::<Vec<_>>().join(" ")
}

/// The targets of the Markdown links (`[text](target)`, images too) of a document.
fn links(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    for line in prose_lines(text) {
        let line = without_code(line);
        for (i, _) in line.match_indices("](") {
            let rest = &line[i + 2..];
            if let Some(end) = rest.find(')') {
                out.push(rest[..end].to_string());
            }
        }
    }
    out
}

/// GitHub's anchor of a heading: lower case, punctuation dropped, spaces as `-`.
fn slug(heading: &str) -> String {
    heading
        .trim()
        .to_lowercase()
        .chars()
        .filter(|c| c.is_alphanumeric() || matches!(c, ' ' | '-' | '_'))
        .map(|c| if c == ' ' { '-' } else { c })
        .collect()
}

/// The anchors of a document's headings (a repeated heading gets `-1`, `-2`, … as on GitHub).
fn anchors(text: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for line in prose_lines(text) {
        let Some(heading) = line.strip_prefix('#') else {
            continue;
        };
        let base = slug(&without_code_marks(heading.trim_start_matches('#')));
        let mut anchor = base.clone();
        for n in 1..100 {
            if !out.contains(&anchor) {
                break;
            }
            anchor = format!("{base}-{n}");
        }
        out.insert(anchor);
    }
    out
}

/// A heading's text as GitHub renders it: code marks dropped, the code kept.
fn without_code_marks(heading: &str) -> String {
    heading.replace('`', "")
}

/// What is wrong with one link of `doc`, if anything.
fn check_link(doc: &Path, target: &str) -> Option<String> {
    if target.starts_with("http://") || target.starts_with("https://") {
        return None;
    }
    let (file, anchor) = match target.split_once('#') {
        Some((file, anchor)) => (file, Some(anchor)),
        None => (target, None),
    };
    let path = if file.is_empty() {
        doc.to_path_buf()
    } else {
        doc.parent()
            .expect("a document is in a directory")
            .join(file)
    };
    if !path.exists() {
        return Some(format!("{target}: no file {}", path.display()));
    }
    let anchor = anchor?;
    if !file.is_empty() && !file.ends_with(".md") {
        return Some(format!(
            "{target}: an anchor into a file that is not Markdown"
        ));
    }
    let known = anchors(&read(&path));
    (!known.contains(anchor)).then(|| format!("{target}: no heading `#{anchor}` in {file}"))
}

#[test]
fn every_link_of_the_readme_and_docs_resolves() {
    let mut broken = Vec::new();
    let mut count = 0;
    for doc in documents() {
        for target in links(&read(&doc)) {
            count += 1;
            if let Some(why) = check_link(&doc, &target) {
                broken.push(format!("{}: {why}", doc.display()));
            }
        }
    }
    assert!(
        count >= 50,
        "only {count} links found: the scanner is broken"
    );
    assert!(broken.is_empty(), "broken links:\n{}", broken.join("\n"));
}

#[test]
fn the_readme_is_a_front_door() {
    let readme = read(&Path::new(ROOT).join("README.md"));
    let lines = readme.lines().count();
    assert!(
        lines <= 300,
        "README.md has {lines} lines: move the detail into docs/"
    );
    // The two commands and the CI example stay at the top.
    let two = readme
        .find("## The two commands")
        .expect("the two commands");
    let ci = readme.find("## CI usage").expect("the CI example");
    assert!(
        two < ci && ci < readme.len() / 2,
        "the two commands, then CI, at the top"
    );
    // Every document of docs/ is on the map.
    for doc in files_under("docs", ".md") {
        let rel = doc.strip_prefix(ROOT).expect("under the repository");
        let rel = rel.to_string_lossy();
        let listed = readme.contains(&format!("({rel})")) || rel.starts_with("docs/bench/");
        assert!(listed, "README.md does not link {rel}");
    }
}

/// The section numbers of a document: `## 3. Title` gives `3`, `### 1.2 Title` gives `1.2`.
fn sections(text: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for line in prose_lines(text) {
        let heading = line.trim_start_matches('#');
        if heading.len() == line.len() {
            continue;
        }
        let number: String = heading
            .trim_start()
            .chars()
            .take_while(|c| c.is_ascii_digit() || *c == '.')
            .collect();
        let number = number.trim_end_matches('.');
        if !number.is_empty() {
            out.insert(number.to_string());
        }
    }
    out
}

/// The citations `path §N` (or `path` alone) in `text`, for the cited documents.
fn citations(text: &str) -> Vec<(String, Option<String>)> {
    let mut out = Vec::new();
    for cited in ["docs/", "grammar/README.md"] {
        for (i, _) in text.match_indices(cited) {
            let rest = &text[i..];
            let end = rest.find(".md").map(|e| e + 3);
            let Some(end) = end.filter(|e| rest[..*e].chars().all(is_path_char)) else {
                continue;
            };
            let section = rest[end..]
                .trim_start_matches(['`', ' ', '\n', '/', '!'])
                .strip_prefix('§')
                .map(|s| {
                    let n: String = s
                        .chars()
                        .take_while(|c| c.is_ascii_digit() || *c == '.')
                        .collect();
                    n.trim_end_matches('.').to_string()
                });
            out.push((rest[..end].to_string(), section));
        }
    }
    out
}

fn is_path_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '/' | '-' | '_' | '.')
}

#[test]
fn every_comment_cites_a_file_and_section_that_exist() {
    let mut sources = Vec::new();
    for dir in ["src", "tests", "integration", "benches"] {
        sources.extend(files_under(dir, ".rs"));
    }
    let mut wrong = Vec::new();
    let mut count = 0;
    // This file's own examples are not citations.
    sources.retain(|s| !s.ends_with("tests/docs.rs"));
    for source in &sources {
        for (file, section) in citations(&read(source)) {
            count += 1;
            let path = Path::new(ROOT).join(&file);
            if !path.exists() {
                wrong.push(format!(
                    "{}: cites {file}, not in the repository",
                    source.display()
                ));
                continue;
            }
            let Some(section) = section.filter(|s| !s.is_empty()) else {
                continue;
            };
            if !sections(&read(&path)).contains(&section) {
                wrong.push(format!(
                    "{}: cites {file} §{section}, no such section",
                    source.display()
                ));
            }
        }
    }
    assert!(
        count >= 20,
        "only {count} citations found: the scanner is broken"
    );
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

#[test]
fn the_scanners_see_links_anchors_and_sections() {
    let text = "# Top\n## 3. The flip, phase by phase\n```\n[no](link.md)\n```\n[a](b.md#c) `[no](x)` ![i](d.svg)\n### 1.2 One-shot\n## Top\n";
    assert_eq!(links(text), ["b.md#c", "d.svg"]);
    let anchors = anchors(text);
    assert!(anchors.contains("3-the-flip-phase-by-phase"), "{anchors:?}");
    assert!(
        anchors.contains("top") && anchors.contains("top-1"),
        "{anchors:?}"
    );
    assert_eq!(sections(text).into_iter().collect::<Vec<_>>(), ["1.2", "3"]);
    let cites = citations("see docs/architecture.md §3, and `grammar/README.md` §1.2; docs/x.md.");
    assert_eq!(
        cites,
        [
            ("docs/architecture.md".to_string(), Some("3".to_string())),
            ("docs/x.md".to_string(), None),
            ("grammar/README.md".to_string(), Some("1.2".to_string())),
        ]
    );
}

/// The repository paths a text names: `src/…`, `integration/…`, `tests/…`, `benches/…` or
/// `scripts/…` followed by a file name with an extension (`src/edge/flip/mod.rs`).
fn repository_paths(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    for root in ["src/", "integration/", "tests/", "benches/", "scripts/"] {
        let mut from = 0;
        while let Some(found) = text[from..].find(root) {
            let at = from + found;
            from = at + root.len();
            let before = text[..at].chars().last();
            if before.is_some_and(|c| c.is_alphanumeric() || c == '/' || c == '_' || c == '.') {
                continue;
            }
            let path: String = text[at..]
                .chars()
                .take_while(|c| is_path_char(*c))
                .collect();
            let path = path.trim_end_matches(['.', '/']);
            let file = path.rsplit('/').next().unwrap_or("");
            if file.contains('.') {
                out.push(path.to_string());
            }
        }
    }
    out
}

/// A moved file leaves no stale path behind: every repository file the README and `docs/`
/// name exists.
#[test]
fn every_file_the_docs_name_exists() {
    let mut missing = Vec::new();
    for doc in documents() {
        for path in repository_paths(&read(&doc)) {
            if !Path::new(ROOT).join(&path).exists() {
                missing.push(format!("{}: {path}", doc.display()));
            }
        }
    }
    assert!(
        missing.is_empty(),
        "files named by the docs that do not exist: {missing:#?}"
    );
    let seen = repository_paths("see `src/edge/flip/mod.rs`, scripts/test.sh, and src/edge/.");
    assert_eq!(seen, ["src/edge/flip/mod.rs", "scripts/test.sh"]);
}
