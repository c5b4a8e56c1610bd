//! The shape of `src` a newcomer relies on (issue 21 item 4): no import cycle between sibling
//! modules anywhere. Every reference a file makes — its `use` trees (braces expanded) and the
//! inline `crate::…`, `super::…` and `self::…` paths of its code — is resolved to a module of the
//! crate; a reference from module `a::x::…` to module `a::y::…` is an edge `x → y` between the
//! siblings `x` and `y` of `a`. The test fails on any cycle among the siblings of one parent and
//! names it.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use vezasock::files::{limit, read_bounded_text};

const SRC: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/src");

/// A module path from the crate root: `["edge", "flip", "staged"]`.
type ModPath = Vec<String>;

/// Every `.rs` file under `src`, with its module path.
fn modules() -> Vec<(ModPath, PathBuf)> {
    let mut out = Vec::new();
    let mut todo = vec![PathBuf::from(SRC)];
    // Bounded: the crate has a few dozen folders.
    for _ in 0..10_000 {
        let Some(dir) = todo.pop() else { break };
        let entries = std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
        for entry in entries.filter_map(|e| e.ok()) {
            let path = entry.path();
            if path.is_dir() {
                todo.push(path);
            } else if path.extension().is_some_and(|e| e == "rs") {
                out.push((module_path(&path), path));
            }
        }
    }
    out.sort();
    out
}

/// `src/edge/flip/mod.rs` → `edge::flip`; `src/edge/flip/staged.rs` → `edge::flip::staged`;
/// `src/lib.rs` and `src/main.rs` → the crate root.
fn module_path(file: &Path) -> ModPath {
    let relative = file.strip_prefix(SRC).expect("under src");
    let mut parts: ModPath = relative
        .iter()
        .map(|p| p.to_string_lossy().into_owned())
        .collect();
    let last = parts.pop().unwrap_or_default();
    let stem = last.trim_end_matches(".rs");
    if !matches!(stem, "mod" | "lib" | "main") {
        parts.push(stem.to_string());
    }
    parts
}

/// The text with comments, string and char literals blanked, and `#[cfg(test)]` modules
/// dropped (tests may import freely).
fn code(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = String::with_capacity(text.len());
    let mut i = 0;
    while i < bytes.len() {
        let rest = &text[i..];
        if rest.starts_with("//") {
            let end = rest.find('\n').unwrap_or(rest.len());
            i += end;
        } else if rest.starts_with("/*") {
            let end = rest.find("*/").map_or(rest.len(), |e| e + 2);
            i += end;
        } else if rest.starts_with("r#\"") || rest.starts_with("r\"") {
            let hashes = rest[1..].chars().take_while(|c| *c == '#').count();
            let close = format!("\"{}", "#".repeat(hashes));
            let body = 2 + hashes;
            let end = rest[body..]
                .find(&close)
                .map_or(rest.len(), |e| body + e + close.len());
            out.push_str("\"\"");
            i += end;
        } else if rest.starts_with('"') {
            let mut j = 1;
            while j < rest.len() {
                match rest.as_bytes()[j] {
                    b'\\' => j += 2,
                    b'"' => break,
                    _ => j += 1,
                }
            }
            out.push_str("\"\"");
            i += (j + 1).min(rest.len());
        } else if rest.starts_with("'\\")
            || (rest.len() >= 3 && rest.as_bytes()[2] == b'\'' && rest.starts_with('\''))
        {
            // A char literal ('x' or '\n'); a lifetime ('a) has no closing quote nearby.
            let end = rest[1..].find('\'').map_or(1, |e| e + 2);
            out.push_str("' '");
            i += end;
        } else {
            let c = rest.chars().next().unwrap_or(' ');
            out.push(c);
            i += c.len_utf8();
        }
    }
    match out.find("#[cfg(test)]\nmod ") {
        Some(at) => out[..at].to_string(),
        None => out,
    }
}

/// Expands one `use` tree (`a::{b, c::{d, e}}`) into its paths.
fn expand(tree: &str) -> Vec<String> {
    let tree = tree.trim();
    let Some(open) = tree.find('{') else {
        let path = tree.split(" as ").next().unwrap_or(tree).trim();
        return vec![path.to_string()];
    };
    let prefix = &tree[..open];
    let inner = &tree[open + 1..tree.rfind('}').unwrap_or(tree.len())];
    let mut parts = Vec::new();
    let (mut depth, mut start) = (0, 0);
    for (k, c) in inner.char_indices() {
        match c {
            '{' => depth += 1,
            '}' => depth -= 1,
            ',' if depth == 0 => {
                parts.push(&inner[start..k]);
                start = k + 1;
            }
            _ => {}
        }
    }
    parts.push(&inner[start..]);
    parts
        .into_iter()
        .filter(|p| !p.trim().is_empty())
        .flat_map(expand)
        .map(|p| format!("{prefix}{p}"))
        .collect()
}

/// The paths a file's code names: its `use` trees and its inline `crate::`/`super::`/`self::`
/// paths.
fn references(code: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = code;
    while let Some(at) = rest.find("use ") {
        let before = rest[..at].chars().last();
        let tail = &rest[at + 4..];
        rest = tail;
        if before.is_some_and(|c| c.is_alphanumeric() || c == '_') {
            continue;
        }
        if let Some(end) = tail.find(';') {
            out.extend(expand(&tail[..end]));
        }
    }
    let bytes = code.as_bytes();
    for anchor in ["crate::", "super::", "self::"] {
        let mut from = 0;
        while let Some(found) = code[from..].find(anchor) {
            let at = from + found;
            from = at + anchor.len();
            if at > 0
                && (bytes[at - 1].is_ascii_alphanumeric()
                    || bytes[at - 1] == b'_'
                    || bytes[at - 1] == b':')
            {
                continue;
            }
            let end = code[at..]
                .find(|c: char| !(c.is_alphanumeric() || c == '_' || c == ':'))
                .map_or(code.len(), |e| at + e);
            out.push(code[at..end].trim_end_matches(':').to_string());
        }
    }
    out
}

/// Resolves a path named in module `from` (a file's module; `is_dir` when it is a `mod.rs`,
/// `lib.rs` or `main.rs`) to the longest crate module it reaches.
fn resolve(path: &str, from: &ModPath, known: &BTreeSet<ModPath>) -> Option<ModPath> {
    let mut segments = path.split("::").filter(|s| !s.is_empty()).peekable();
    let mut at: ModPath = match segments.peek().copied() {
        Some("crate") => {
            segments.next();
            Vec::new()
        }
        Some("self") => {
            segments.next();
            from.clone()
        }
        Some("super") => {
            let mut at = from.clone();
            while segments.peek() == Some(&"super") {
                segments.next();
                at.pop();
            }
            at
        }
        // A child module named without `self::` (2018 paths).
        Some(first) => {
            let mut child = from.clone();
            child.push(first.to_string());
            if !known.contains(&child) {
                return None;
            }
            from.clone()
        }
        None => return None,
    };
    for segment in segments {
        let mut next = at.clone();
        next.push(segment.to_string());
        if !known.contains(&next) {
            break;
        }
        at = next;
    }
    Some(at)
}

/// The sibling edges: for each parent module, `child → child` for every reference between two
/// of its children's subtrees.
fn sibling_edges() -> BTreeMap<ModPath, BTreeMap<String, BTreeSet<String>>> {
    sibling_edges_with_sources().0
}

/// The sibling edges, and for each `(parent, a, b)` edge the references that made it (as
/// `file: path`), for the failure message.
type Sources = BTreeMap<(ModPath, String, String), Vec<String>>;

fn sibling_edges_with_sources() -> (
    BTreeMap<ModPath, BTreeMap<String, BTreeSet<String>>>,
    Sources,
) {
    let files = modules();
    let known: BTreeSet<ModPath> = files.iter().map(|(m, _)| m.clone()).collect();
    let mut edges: BTreeMap<ModPath, BTreeMap<String, BTreeSet<String>>> = BTreeMap::new();
    let mut sources = Sources::new();
    for (from, file) in &files {
        let text = read_bounded_text(file, limit::CONFIG)
            .unwrap_or_else(|e| panic!("{}: {e}", file.display()));
        for reference in references(&code(&text)) {
            let Some(to) = resolve(&reference, from, &known) else {
                continue;
            };
            let common = from.iter().zip(&to).take_while(|(a, b)| a == b).count();
            let (Some(a), Some(b)) = (from.get(common), to.get(common)) else {
                continue; // one is an ancestor of the other
            };
            edges
                .entry(from[..common].to_vec())
                .or_default()
                .entry(a.clone())
                .or_default()
                .insert(b.clone());
            let file = file.strip_prefix(SRC).unwrap_or(file).display().to_string();
            sources
                .entry((from[..common].to_vec(), a.clone(), b.clone()))
                .or_default()
                .push(format!("src/{file}: {reference}"));
        }
    }
    (edges, sources)
}

/// A cycle through `start` among `graph`'s nodes, if any (depth-first search).
fn cycle_through(graph: &BTreeMap<String, BTreeSet<String>>, start: &str) -> Option<Vec<String>> {
    let mut stack = vec![(start.to_string(), vec![start.to_string()])];
    let mut seen = BTreeSet::new();
    while let Some((node, path)) = stack.pop() {
        for next in graph.get(&node).into_iter().flatten() {
            if next == start {
                let mut cycle = path.clone();
                cycle.push(start.to_string());
                return Some(cycle);
            }
            if seen.insert(next.clone()) {
                let mut longer = path.clone();
                longer.push(next.clone());
                stack.push((next.clone(), longer));
            }
        }
    }
    None
}

fn parent_path(name: &str) -> ModPath {
    if name == "crate" {
        Vec::new()
    } else {
        name.split("::").map(str::to_string).collect()
    }
}

#[test]
fn no_import_cycle_between_sibling_modules() {
    let (edges, sources) = sibling_edges_with_sources();
    let mut cycles = BTreeSet::new();
    for (parent, graph) in &edges {
        for start in graph.keys() {
            if let Some(cycle) = cycle_through(graph, start) {
                let mut sorted = cycle.clone();
                sorted.sort();
                sorted.dedup();
                let parent = if parent.is_empty() {
                    "crate".to_string()
                } else {
                    parent.join("::")
                };
                let steps: Vec<String> = cycle
                    .windows(2)
                    .map(|w| {
                        let key = (parent_path(&parent), w[0].clone(), w[1].clone());
                        let by = sources.get(&key).and_then(|s| s.first()).cloned();
                        format!("{} → {} ({})", w[0], w[1], by.unwrap_or_default())
                    })
                    .collect();
                cycles.insert((
                    parent.clone(),
                    sorted,
                    format!("{parent}: {}", steps.join("; ")),
                ));
            }
        }
    }
    let names: Vec<&String> = cycles.iter().map(|(_, _, c)| c).collect();
    assert!(
        names.is_empty(),
        "import cycles between sibling modules:\n{names:#?}"
    );
}

/// The checker itself sees both kinds of reference: a `use` tree with braces and an inline path.
#[test]
fn references_are_found_in_use_trees_and_inline_paths() {
    let code = code(
        "use crate::runtime::{endpoint::{Endpoint, Socket}, session as s};\n\
         fn f() { super::fleet::run(\"crate::not::this\"); } // crate::nor::this\n",
    );
    let found = references(&code);
    assert!(
        found.contains(&"crate::runtime::endpoint::Endpoint".to_string()),
        "{found:?}"
    );
    assert!(
        found.contains(&"crate::runtime::session".to_string()),
        "{found:?}"
    );
    assert!(
        found.contains(&"super::fleet::run".to_string()),
        "{found:?}"
    );
    assert!(
        !found.iter().any(|f| f.contains("not") || f.contains("nor")),
        "{found:?}"
    );
}

/// The checker finds the edges the crate is known to have (so a resolver that finds nothing
/// cannot pass the cycle test by accident).
#[test]
fn sibling_edges_are_resolved() {
    let edges = sibling_edges();
    let root = &edges[&Vec::<String>::new()];
    assert!(root["cli"].contains("edge"), "{root:?}");
    assert!(root["edge"].contains("runtime"), "{root:?}");
    assert!(
        !root.get("runtime").is_some_and(|deps| deps.contains("cli")),
        "{root:?}"
    );
}

/// The runtime client's layers go one way, as `src/runtime/mod.rs` and docs/architecture.md
/// (§7) say: a module uses only modules of its own layer or below.
#[test]
fn runtime_layers_go_one_way() {
    const LAYERS: &[&[&str]] = &[
        &["error", "parse", "endpoint", "version"],
        &["codec"],
        &["command"],
        &["connection", "reply"],
        &["oneshot"],
        &["master"],
        &["session"],
    ];
    let layer = |name: &str| {
        LAYERS
            .iter()
            .position(|l| l.contains(&name))
            .unwrap_or_else(|| panic!("runtime::{name} is in no layer of this test"))
    };
    let edges = sibling_edges();
    let runtime = &edges[&vec!["runtime".to_string()]];
    assert!(runtime["session"].contains("master"), "{runtime:?}");
    for (from, to) in runtime
        .iter()
        .flat_map(|(f, ts)| ts.iter().map(move |t| (f, t)))
    {
        assert!(
            layer(to) <= layer(from),
            "runtime::{from} uses runtime::{to}, a layer above it"
        );
    }
}

/// One runtime vocabulary (issue 21 item 5): outside `src/runtime`, only `vezasock exec`
/// (`src/cli/exec.rs`), where a person types a free line, uses the untyped form
/// (`runtime::command::raw`, `RawLine`); everything else sends typed commands.
#[test]
fn only_exec_speaks_the_untyped_runtime_vocabulary() {
    let files = modules();
    let known: BTreeSet<ModPath> = files.iter().map(|(m, _)| m.clone()).collect();
    let raw: ModPath = ["runtime", "command", "raw"].map(String::from).to_vec();
    let mut found = Vec::new();
    for (from, file) in &files {
        if from.first().is_some_and(|m| m == "runtime") || from[..] == ["cli", "exec"] {
            continue;
        }
        let text = read_bounded_text(file, limit::CONFIG)
            .unwrap_or_else(|e| panic!("{}: {e}", file.display()));
        let code = code(&text);
        let named_raw = references(&code)
            .iter()
            .any(|r| resolve(r, from, &known).as_ref() == Some(&raw));
        if named_raw || code.contains("RawLine") {
            found.push(file.display().to_string());
        }
    }
    assert!(found.is_empty(), "untyped runtime commands in {found:#?}");
    // The check sees the one file that must use it.
    let exec = files
        .iter()
        .find(|(m, _)| m[..] == ["cli", "exec"])
        .expect("src/cli/exec.rs");
    let text = read_bounded_text(&exec.1, limit::CONFIG).expect("read exec.rs");
    assert!(
        code(&text).contains("RawLine"),
        "exec.rs no longer sends a RawLine?"
    );
}
