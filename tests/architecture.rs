//! The structure of `src/`, read from the code's own paths: data flows one way through the
//! top-level modules, in the order [`LAYERS`] declares, and no files import each other in a
//! circle.
//!
//! Every `crate::…`, `super::…` and `self::…` path in the code (comments aside) is an arrow
//! from the file it is written in to the module file it names. A module may only point at
//! modules earlier in [`LAYERS`]; inside a folder, sibling files may not form a circle (a
//! child reaching its own folder's `mod.rs` is how Rust shares a folder's items, so arrows
//! into `mod.rs` do not count as a sibling's).

#![allow(clippy::unwrap_used, clippy::expect_used)] // In tests a panic is the failure report.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};

/// The top-level modules of `src/`, lowest first: each may import only those before it.
///
/// Vocabulary (`model`, `clock`, `config`), then the parts every stage writes to (`store`,
/// `metrics`, `telemetry`), the adapters that act on the world (`backend`, `docker`), the
/// brain (`reconcile`), the sources that feed it, the executor that carries out its orders,
/// the readers of its snapshots (`gauges`, `plan`, `http`), and the wiring (`app`).
const LAYERS: &[&str] = &[
    "model",
    "clock",
    "config",
    "store",
    "metrics",
    "telemetry",
    "backend",
    "docker",
    "reconcile",
    "sources",
    "executor",
    "gauges",
    "plan",
    "http",
    "app",
];

/// Files that are not part of any layer: the crate root declares the modules, the binary is
/// the command line over `app`.
const OUTSIDE_LAYERS: &[&str] = &["lib.rs", "main.rs"];

/// One `.rs` file of `src/` and the module path it defines (`["docker", "exec"]`).
struct SourceFile {
    path: PathBuf,
    module: Vec<String>,
}

/// An arrow: `from` names `to` at `line` of `from`'s file.
#[derive(Debug)]
struct Import {
    from: Vec<String>,
    to: Vec<String>,
    line: usize,
}

fn src() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
}

fn source_files() -> Vec<SourceFile> {
    fn walk(dir: &Path, module: &[String], files: &mut Vec<SourceFile>) {
        let mut entries: Vec<_> = fs::read_dir(dir)
            .unwrap()
            .map(|entry| entry.unwrap().path())
            .collect();
        entries.sort();
        for path in entries {
            let name = path.file_name().unwrap().to_str().unwrap().to_owned();
            if path.is_dir() {
                let mut inner = module.to_vec();
                inner.push(name);
                walk(&path, &inner, files);
            } else if let Some(stem) = name.strip_suffix(".rs") {
                let mut module = module.to_vec();
                if stem != "mod" {
                    module.push(stem.to_owned());
                }
                files.push(SourceFile { path, module });
            }
        }
    }
    let mut files = Vec::new();
    walk(&src(), &[], &mut files);
    files
}

/// The file's code without its comments, line by line (doc comments and `//` comments go;
/// paths in strings are rare enough not to matter).
fn code_lines(text: &str) -> Vec<String> {
    let mut in_block = false;
    text.lines()
        .map(|line| {
            let mut code = String::new();
            let mut rest = line;
            loop {
                if in_block {
                    match rest.find("*/") {
                        Some(end) => {
                            rest = &rest[end + 2..];
                            in_block = false;
                        }
                        None => break,
                    }
                } else {
                    let line_comment = rest.find("//");
                    let block = rest.find("/*");
                    match (line_comment, block) {
                        (Some(l), b) if b.is_none_or(|b| l < b) => {
                            code.push_str(&rest[..l]);
                            break;
                        }
                        (_, Some(b)) => {
                            code.push_str(&rest[..b]);
                            rest = &rest[b + 2..];
                            in_block = true;
                        }
                        _ => {
                            code.push_str(rest);
                            break;
                        }
                    }
                }
            }
            code
        })
        .collect()
}

/// Reads a path tree after `crate::`, `super::` or `self::` from `chars` at `*at`:
/// `a::b::{c, d::{e}}` gives `[a b c]`, `[a b d e]`.
fn path_tree(chars: &[char], at: &mut usize) -> Vec<Vec<String>> {
    let skip_space = |at: &mut usize| {
        while *at < chars.len() && chars[*at].is_whitespace() {
            *at += 1;
        }
    };
    skip_space(at);
    if *at < chars.len() && chars[*at] == '{' {
        *at += 1;
        let mut paths = Vec::new();
        loop {
            skip_space(at);
            if *at >= chars.len() {
                return paths;
            }
            if chars[*at] == '}' {
                *at += 1;
                return paths;
            }
            if chars[*at] == ',' {
                *at += 1;
                continue;
            }
            let before = *at;
            paths.extend(path_tree(chars, at));
            if *at == before {
                *at += 1;
            }
        }
    }
    let start = *at;
    while *at < chars.len() && (chars[*at].is_alphanumeric() || chars[*at] == '_') {
        *at += 1;
    }
    let ident: String = chars[start..*at].iter().collect();
    if ident.is_empty() {
        return vec![Vec::new()];
    }
    if chars.get(*at) == Some(&':') && chars.get(*at + 1) == Some(&':') {
        *at += 2;
        return path_tree(chars, at)
            .into_iter()
            .map(|mut rest| {
                rest.insert(0, ident.clone());
                rest
            })
            .collect();
    }
    vec![vec![ident]]
}

/// Every module path `file` names, resolved to absolute paths from the crate root.
fn imports_of(file: &SourceFile) -> Vec<Import> {
    let text = fs::read_to_string(&file.path).unwrap();
    let lines = code_lines(&text);
    // The folder a `super::` is relative to: a `mod.rs` or `foo.rs` defines `module`, so
    // `super` is its parent.
    let parent: Vec<String> = file.module[..file.module.len().saturating_sub(1)].to_vec();
    let joined: String = lines.join("\n");
    let chars: Vec<char> = joined.chars().collect();
    let mut imports = Vec::new();
    let mut at = 0;
    let mut line = 1;
    while at < chars.len() {
        if chars[at] == '\n' {
            line += 1;
        }
        let preceded_by_ident = at > 0
            && (chars[at - 1].is_alphanumeric() || chars[at - 1] == '_' || chars[at - 1] == ':');
        let starts = |word: &str| {
            let word: Vec<char> = word.chars().collect();
            chars[at..].starts_with(&word)
        };
        let base = if preceded_by_ident {
            None
        } else if starts("crate::") {
            Some((Vec::new(), "crate::".len()))
        } else if starts("super::") {
            Some((parent.clone(), "super::".len()))
        } else if starts("self::") {
            Some((file.module.clone(), "self::".len()))
        } else {
            None
        };
        let Some((base, skip)) = base else {
            at += 1;
            continue;
        };
        at += skip;
        let start_line = line;
        let tree_start = at;
        for relative in path_tree(&chars, &mut at) {
            let mut to = base.clone();
            let mut relative = relative.into_iter().peekable();
            // `super::super::x` climbs further.
            while relative.peek().map(String::as_str) == Some("super") {
                relative.next();
                to.pop();
            }
            to.extend(relative);
            imports.push(Import {
                from: file.module.clone(),
                to,
                line: start_line,
            });
        }
        line += chars[tree_start..at].iter().filter(|c| **c == '\n').count();
    }
    imports
}

/// The module file `path` lands in: its longest prefix that is a file of `src/`.
fn module_file(path: &[String], modules: &BTreeSet<Vec<String>>) -> Vec<String> {
    (0..=path.len())
        .rev()
        .map(|n| path[..n].to_vec())
        .find(|prefix| modules.contains(prefix))
        .unwrap_or_default()
}

fn top_level(module: &[String]) -> Option<&str> {
    module.first().map(String::as_str)
}

fn show(module: &[String]) -> String {
    if module.is_empty() {
        "crate".to_owned()
    } else {
        module.join("::")
    }
}

/// Every arrow between two different module files, with the file each starts in.
fn arrows() -> Vec<(PathBuf, Import)> {
    let files: Vec<SourceFile> = source_files()
        .into_iter()
        .filter(|file| {
            let relative = file.path.strip_prefix(src()).unwrap();
            !OUTSIDE_LAYERS
                .iter()
                .any(|outside| relative == Path::new(outside))
        })
        .collect();
    let modules: BTreeSet<Vec<String>> = files.iter().map(|file| file.module.clone()).collect();
    let mut arrows = Vec::new();
    for file in &files {
        for mut import in imports_of(file) {
            import.to = module_file(&import.to, &modules);
            if import.to != import.from && !import.to.is_empty() {
                arrows.push((file.path.clone(), import));
            }
        }
    }
    arrows
}

/// A circle in `graph`, as the list of nodes around it, if there is one.
fn find_cycle<N: Ord + Clone>(graph: &BTreeMap<N, BTreeSet<N>>) -> Option<Vec<N>> {
    fn visit<N: Ord + Clone>(
        node: &N,
        graph: &BTreeMap<N, BTreeSet<N>>,
        done: &mut BTreeSet<N>,
        path: &mut Vec<N>,
    ) -> Option<Vec<N>> {
        if let Some(start) = path.iter().position(|n| n == node) {
            let mut cycle = path[start..].to_vec();
            cycle.push(node.clone());
            return Some(cycle);
        }
        if done.contains(node) {
            return None;
        }
        path.push(node.clone());
        for next in graph.get(node).into_iter().flatten() {
            if let Some(cycle) = visit(next, graph, done, path) {
                return Some(cycle);
            }
        }
        path.pop();
        done.insert(node.clone());
        None
    }
    let mut done = BTreeSet::new();
    graph
        .keys()
        .find_map(|node| visit(node, graph, &mut done, &mut Vec::new()))
}

#[test]
fn every_top_level_module_has_a_place_in_the_layers() {
    let declared: BTreeSet<&str> = LAYERS.iter().copied().collect();
    assert_eq!(declared.len(), LAYERS.len(), "a layer is listed twice");
    let found: BTreeSet<String> = source_files()
        .iter()
        .filter(|file| {
            !OUTSIDE_LAYERS
                .iter()
                .any(|outside| file.path == src().join(outside))
        })
        .filter_map(|file| top_level(&file.module).map(str::to_owned))
        .collect();
    let missing: Vec<&String> = found
        .iter()
        .filter(|module| !declared.contains(module.as_str()))
        .collect();
    assert!(
        missing.is_empty(),
        "src/ has top-level modules the layer order does not place: {missing:?}; add each to \
         LAYERS in tests/architecture.rs, above everything it imports"
    );
    let gone: Vec<&&str> = LAYERS
        .iter()
        .filter(|layer| !found.contains(**layer))
        .collect();
    assert!(
        gone.is_empty(),
        "LAYERS names modules src/ no longer has: {gone:?}"
    );
}

#[test]
fn top_level_modules_import_only_the_layers_below_them() {
    let rank = |module: &str| LAYERS.iter().position(|layer| *layer == module);
    let mut upward = BTreeSet::new();
    let mut graph: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for (path, import) in arrows() {
        let (Some(from), Some(to)) = (top_level(&import.from), top_level(&import.to)) else {
            continue;
        };
        if from == to {
            continue;
        }
        graph
            .entry(from.to_owned())
            .or_default()
            .insert(to.to_owned());
        if rank(from) <= rank(to) {
            upward.insert(format!(
                "{}:{}: {from} imports {} ({to} is not below {from})",
                path.strip_prefix(src()).unwrap().display(),
                import.line,
                show(&import.to),
            ));
        }
    }
    assert!(
        graph.len() > 5,
        "the import graph is implausibly small: {graph:?}"
    );
    let cycle = find_cycle(&graph).map_or_else(String::new, |cycle| {
        format!(
            "top-level modules import each other in a circle: {}\n",
            cycle.join(" -> ")
        )
    });
    assert!(
        cycle.is_empty() && upward.is_empty(),
        "{cycle}imports against the layer order {LAYERS:?}:\n{}",
        Vec::from_iter(upward).join("\n")
    );
}

#[test]
fn files_in_a_folder_do_not_import_each_other_in_a_circle() {
    let mut graph: BTreeMap<Vec<String>, BTreeSet<Vec<String>>> = BTreeMap::new();
    let mut folders = BTreeSet::new();
    for file in source_files() {
        // A folder's own module (its mod.rs) is the one every child may reach.
        if file.path.file_name().is_some_and(|name| name == "mod.rs") {
            folders.insert(file.module);
        }
    }
    for (_, import) in arrows() {
        let same_folder = import.from.len() == import.to.len()
            && import.from[..import.from.len() - 1] == import.to[..import.to.len() - 1];
        let into_a_folder = folders.contains(&import.to) || folders.contains(&import.from);
        if same_folder && !into_a_folder {
            graph.entry(import.from).or_default().insert(import.to);
        }
    }
    if let Some(cycle) = find_cycle(&graph) {
        let names: Vec<String> = cycle.iter().map(|module| show(module)).collect();
        panic!(
            "files import each other in a circle: {}",
            names.join(" -> ")
        );
    }
}

/// The reader itself: a circle and an upward arrow written in a scratch file are seen.
#[test]
fn the_reader_sees_paths_in_every_form_they_take() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("exec.rs");
    fs::write(
        &path,
        "//! Docs naming crate::http are not code.\n\
         use super::output::{Framed, more::Deep};\n\
         use crate::{model::Id, store};\n\
         /* crate::app in a block comment */ fn f() { crate::metrics::count(); }\n\
         use super::super::config::{\n    Config,\n};\n",
    )
    .unwrap();
    let file = SourceFile {
        path,
        module: vec!["docker".into(), "exec".into()],
    };
    let seen: Vec<(String, usize)> = imports_of(&file)
        .into_iter()
        .map(|import| (show(&import.to), import.line))
        .collect();
    assert_eq!(
        seen,
        [
            ("docker::output::Framed".to_owned(), 2),
            ("docker::output::more::Deep".to_owned(), 2),
            ("model::Id".to_owned(), 3),
            ("store".to_owned(), 3),
            ("metrics::count".to_owned(), 4),
            ("config::Config".to_owned(), 5),
        ]
    );
    let graph = BTreeMap::from([
        ("exec", BTreeSet::from(["output"])),
        ("output", BTreeSet::from(["runtime"])),
        ("runtime", BTreeSet::from(["exec"])),
    ]);
    assert_eq!(
        find_cycle(&graph),
        Some(vec!["exec", "output", "runtime", "exec"])
    );
    let acyclic = BTreeMap::from([("exec", BTreeSet::from(["output"]))]);
    assert_eq!(find_cycle(&acyclic), None);
}
