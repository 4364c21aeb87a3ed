//! Property tests of the config pipeline: environment expansion against a reference model,
//! and whole files (arbitrary text, YAML-ish text from a small grammar, generated valid
//! configs) through [`load_str`]. There is no renderer from `Config` back to YAML, so the
//! round trip is model → YAML (two different styles) → `Config`: both styles must decode to
//! the same `Config`, and that `Config` must say what the model says.

use std::fmt::Write as _;

use proptest::prelude::*;

use super::expand::{ExpandError, expand};
use super::instance::{INSTANCE_FIELDS, TARGET_FIELDS};
use super::schema::GLOBAL_FIELDS;
use super::*;
use crate::model::{DockerName, TargetId, TargetKind, VolumePath};

/// Variables the properties may reference: some set, one set but empty, one whose value holds
/// characters that mean something in a reference.
const SET: [(&str, &str); 5] = [
    ("HOME", "/root"),
    ("EMPTY", ""),
    ("PASS", "s3cr$t"),
    ("BRACES", "}{:-"),
    ("REPO_ROOT", "/srv"),
];

/// Variables no property sets.
const UNSET: [&str; 3] = ["NOPE", "MISSING_1", "_ALSO_UNSET"];

fn lookup(name: &str) -> Option<String> {
    SET.iter()
        .find(|(n, _)| *n == name)
        .map(|(_, v)| (*v).to_owned())
}

/// The same variables as an [`Environment`], with a fixed host name.
struct FakeEnv;

impl Environment for FakeEnv {
    fn var(&self, name: &str) -> Option<String> {
        lookup(name)
    }

    fn hostname(&self) -> Option<String> {
        Some("prop-host".into())
    }
}

fn any_name() -> impl Strategy<Value = &'static str> {
    let names: Vec<&'static str> = SET
        .iter()
        .map(|(n, _)| *n)
        .chain(UNSET.iter().copied())
        .collect();
    prop::sample::select(names)
}

/// Line lengths in characters, with YAML's line breaks (`\r\n`, `\r`, `\n`).
fn line_lengths(text: &str) -> Vec<usize> {
    text.replace("\r\n", "\n")
        .split(['\n', '\r'])
        .map(|line| line.chars().count())
        .collect()
}

/// Whole-file problems, which have no field to name.
fn is_about_the_whole_file(diagnostic: &Diagnostic) -> bool {
    [
        "invalid YAML: ",
        "the config file is empty",
        "expected a mapping, found ",
    ]
    .iter()
    .any(|start| diagnostic.message.starts_with(start))
        || diagnostic.message == "keys must be plain names"
}

/// Every error points into the text and names the field it is about (unless it is about the
/// whole file); the list is in file order.
fn check_diagnostics(
    text: &str,
    result: &Result<Loaded, ConfigError>,
) -> Result<(), TestCaseError> {
    let lines = line_lengths(text);
    let diagnostics = match result {
        Ok(loaded) => &loaded.warnings,
        Err(error) => {
            prop_assert!(
                error
                    .diagnostics
                    .iter()
                    .any(|d| d.severity == Severity::Error),
                "a rejected config without an error: {:?}",
                error.diagnostics
            );
            &error.diagnostics
        }
    };
    for diagnostic in diagnostics {
        prop_assert_eq!(&diagnostic.file, "props.yml");
        prop_assert!(!diagnostic.message.is_empty());
        if diagnostic.severity == Severity::Warning && diagnostic.position.is_none() {
            continue;
        }
        let Some(position) = diagnostic.position else {
            return Err(TestCaseError::fail(format!(
                "an error without a position: {diagnostic}"
            )));
        };
        prop_assert!(position.line >= 1 && position.column >= 1, "{}", diagnostic);
        prop_assert!(
            position.line <= lines.len(),
            "{} is past the last line ({})",
            diagnostic,
            lines.len()
        );
        let length = lines[position.line - 1];
        prop_assert!(
            position.column <= length + 1,
            "{} is past the end of its line ({} characters)",
            diagnostic,
            length
        );
        prop_assert!(
            !diagnostic.path.is_empty() || is_about_the_whole_file(diagnostic),
            "an error without a field path: {}",
            diagnostic
        );
    }
    let order: Vec<_> = diagnostics
        .iter()
        .map(|d| (d.position.is_none(), d.position))
        .collect();
    let mut sorted = order.clone();
    sorted.sort();
    prop_assert_eq!(order, sorted, "diagnostics out of file order");
    Ok(())
}

mod expansion;
mod files;
mod valid;
