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

/// One piece of a value to expand, as the user writes it.
#[derive(Debug, Clone)]
enum Piece {
    /// Text without `$`.
    Literal(String),
    /// `$$`.
    Dollar,
    /// `${NAME}`.
    Braced(&'static str),
    /// `$NAME`, followed by a `/` that ends the name.
    Bare(&'static str),
    /// `${NAME:-default}`, the default without `$` or braces.
    Default(&'static str, String),
    /// `$` and a character that starts no reference (`$1`, `$-`, `$ `).
    Lone(char),
}

fn piece() -> impl Strategy<Value = Piece> {
    prop_oneof![
        "[^$]{0,8}".prop_map(Piece::Literal),
        Just(Piece::Dollar),
        any_name().prop_map(Piece::Braced),
        any_name().prop_map(Piece::Bare),
        (any_name(), "[^${}]{0,6}").prop_map(|(n, d)| Piece::Default(n, d)),
        prop::sample::select(vec!['1', '-', '.', ' ', ':', '/', 'é']).prop_map(Piece::Lone),
    ]
}

fn written(pieces: &[Piece]) -> String {
    pieces
        .iter()
        .map(|piece| match piece {
            Piece::Literal(text) => text.clone(),
            Piece::Dollar => "$$".into(),
            Piece::Braced(name) => format!("${{{name}}}"),
            Piece::Bare(name) => format!("${name}/"),
            Piece::Default(name, default) => format!("${{{name}:-{default}}}"),
            Piece::Lone(c) => format!("${c}"),
        })
        .collect()
}

/// What SPEC §1.1 says the pieces expand to, written the plain way.
fn reference(pieces: &[Piece]) -> Result<String, ExpandError> {
    let mut out = String::new();
    for piece in pieces {
        match piece {
            Piece::Literal(text) => out.push_str(text),
            Piece::Dollar => out.push('$'),
            Piece::Braced(name) => {
                out.push_str(&lookup(name).ok_or_else(|| ExpandError::Unset((*name).into()))?);
            }
            Piece::Bare(name) => {
                out.push_str(&lookup(name).ok_or_else(|| ExpandError::Unset((*name).into()))?);
                out.push('/');
            }
            // Like the shell's `:-`, an empty value takes the default too.
            Piece::Default(name, default) => match lookup(name).filter(|v| !v.is_empty()) {
                Some(value) => out.push_str(&value),
                None => out.push_str(default),
            },
            Piece::Lone(c) => {
                out.push('$');
                out.push(*c);
            }
        }
    }
    Ok(out)
}

proptest! {
    #[test]
    fn expansion_answers_any_text(text in prop_oneof![any::<String>(), "[${}:a-zA-Z_0-9 -]{0,24}"]) {
        let _ = expand(&text, &lookup);
    }

    #[test]
    fn text_without_a_dollar_is_unchanged(text in "[^$]{0,40}") {
        prop_assert_eq!(expand(&text, &lookup), Ok(text));
    }

    #[test]
    fn a_double_dollar_is_one_dollar(chunks in proptest::collection::vec("[^$]{0,6}", 1..6)) {
        prop_assert_eq!(expand(&chunks.join("$$"), &lookup), Ok(chunks.join("$")));
    }

    #[test]
    fn an_unset_variable_takes_its_default(name in prop::sample::select(&UNSET[..]), default in "[^${}]{0,12}") {
        prop_assert_eq!(expand(&format!("${{{name}:-{default}}}"), &lookup), Ok(default));
    }

    /// Expansion equals the reference model; an unset variable without a default is an
    /// error that names the first such variable.
    #[test]
    fn expansion_matches_the_reference_model(pieces in proptest::collection::vec(piece(), 0..8)) {
        let text = written(&pieces);
        prop_assert_eq!(expand(&text, &lookup), reference(&pieces), "expanding {:?}", text);
    }
}

// ---- whole files -------------------------------------------------------------------------

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

/// A YAML value from a small grammar of what configs hold.
#[derive(Debug, Clone)]
enum Yaml {
    Scalar(String, Quote),
    Seq(Vec<Yaml>),
    Map(Vec<(String, Yaml)>),
    /// `*nK`, an alias of an anchor written earlier (or an unknown one).
    Alias(usize),
}

#[derive(Debug, Clone, Copy)]
enum Quote {
    Plain,
    Single,
    Double,
}

fn scalar_text() -> impl Strategy<Value = String> {
    prop_oneof![
        prop::sample::select(vec![
            "@daily",
            "0 2 * * *",
            "30 0 2 * * *",
            "0 25 * * *",
            "/srv/repo",
            "s3:bucket/x",
            "oops:/x",
            "relative/repo",
            "7d:4w:6m",
            "0:0:0",
            "1:2",
            "true",
            "no",
            "maybe",
            "30s",
            "0s",
            "1h30m",
            "Europe/Berlin",
            "Mars/Base",
            "8080",
            "99999",
            "::",
            "0.0.0.0",
            "data",
            "app-db",
            "postgres",
            "oracle",
            "auto",
            "uploads",
            "../etc",
            "${HOME}",
            "${NOPE}",
            "$$",
            "${",
            "${1}",
            "${NOPE:-d}",
            "http://node2:8080",
            "*",
            "",
            "~",
            "null",
            "RESTIC_PASSWORD",
            "alpine:3.20",
            "a b",
        ])
        .prop_map(str::to_owned),
        "[a-zA-Z0-9 ./:@*${}_-]{0,12}",
        any::<String>().prop_map(|s| s.chars().take(12).collect()),
    ]
}

fn key() -> impl Strategy<Value = String> {
    let known: Vec<&'static str> = GLOBAL_FIELDS
        .iter()
        .chain(INSTANCE_FIELDS)
        .chain(TARGET_FIELDS)
        .copied()
        .chain(["<<", "RESTIC_PASSWORD", "env"])
        .collect();
    prop_oneof![
        4 => prop::sample::select(known).prop_map(str::to_owned),
        1 => "[a-zA-Z_][a-zA-Z0-9_]{0,8}",
    ]
}

fn yaml() -> impl Strategy<Value = Yaml> {
    let quote = prop_oneof![Just(Quote::Plain), Just(Quote::Single), Just(Quote::Double)];
    let leaf = prop_oneof![
        8 => (scalar_text(), quote).prop_map(|(text, quote)| Yaml::Scalar(text, quote)),
        1 => (0usize..8).prop_map(Yaml::Alias),
    ];
    leaf.prop_recursive(5, 48, 6, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..5).prop_map(Yaml::Seq),
            proptest::collection::vec((key(), inner), 0..6).prop_map(Yaml::Map),
        ]
    })
}

/// Writes `Yaml` as block YAML, anchoring every sequence and mapping (`&nK`) so aliases
/// have something to refer to, or as flow YAML on one line.
struct Writer {
    out: String,
    anchors: usize,
    flow: bool,
}

impl Writer {
    fn scalar(text: &str, quote: Quote) -> String {
        match quote {
            Quote::Plain => text.to_owned(),
            Quote::Single => format!("'{}'", text.replace('\'', "''")),
            Quote::Double => format!("\"{}\"", text.replace('\\', "\\\\").replace('"', "\\\"")),
        }
    }

    fn anchor(&mut self) -> String {
        self.anchors += 1;
        format!("&n{}", self.anchors - 1)
    }

    fn alias(&self, k: usize) -> String {
        // Now and then an anchor that does not exist (yet).
        format!(
            "*n{}",
            if self.anchors == 0 {
                k
            } else {
                k % (self.anchors + 1)
            }
        )
    }

    fn flow(&mut self, node: &Yaml) -> String {
        match node {
            Yaml::Scalar(text, quote) => Self::scalar(text, *quote),
            Yaml::Alias(k) => self.alias(*k),
            Yaml::Seq(items) => {
                let anchor = self.anchor();
                let items: Vec<String> = items.iter().map(|i| self.flow(i)).collect();
                format!("{anchor} [{}]", items.join(", "))
            }
            Yaml::Map(entries) => {
                let anchor = self.anchor();
                let entries: Vec<String> = entries
                    .iter()
                    .map(|(k, v)| format!("{k}: {}", self.flow(v)))
                    .collect();
                format!("{anchor} {{{}}}", entries.join(", "))
            }
        }
    }

    /// Writes `node` as the value after `key:` or `-` at `indent`.
    fn block(&mut self, node: &Yaml, indent: usize) {
        let pad = " ".repeat(indent);
        match node {
            Yaml::Seq(items) if !items.is_empty() && !self.flow => {
                let anchor = self.anchor();
                let _ = writeln!(self.out, " {anchor}");
                for item in items {
                    let _ = write!(self.out, "{pad}-");
                    self.block(item, indent + 2);
                }
            }
            Yaml::Map(entries) if !entries.is_empty() && !self.flow => {
                let anchor = self.anchor();
                let _ = writeln!(self.out, " {anchor}");
                for (key, value) in entries {
                    let _ = write!(self.out, "{pad}{key}:");
                    self.block(value, indent + 2);
                }
            }
            other => {
                let text = self.flow(other);
                let _ = writeln!(self.out, " {text}");
            }
        }
    }
}

/// A document: a root mapping (usually) of generated entries, in block or flow style.
fn document() -> impl Strategy<Value = String> {
    (
        proptest::collection::vec((key(), yaml()), 0..6),
        any::<bool>(),
        prop::option::weighted(0.1, yaml()),
    )
        .prop_map(|(entries, flow, other_root)| {
            let mut writer = Writer {
                out: String::new(),
                anchors: 0,
                flow,
            };
            if let Some(root) = other_root {
                let text = writer.flow(&root);
                return text;
            }
            if flow {
                return writer.flow(&Yaml::Map(entries));
            }
            for (key, value) in &entries {
                let _ = write!(writer.out, "{key}:");
                writer.block(value, 2);
            }
            writer.out
        })
}

/// A document that mostly has the config's shape: `instances` of instance-like mappings with
/// `targets` of target-like mappings, among random other entries.
fn config_shaped() -> impl Strategy<Value = String> {
    let target = proptest::collection::vec((key(), yaml()), 0..4).prop_map(Yaml::Map);
    let instance = (
        proptest::collection::vec((key(), yaml()), 0..6),
        proptest::collection::vec(target, 0..3),
    )
        .prop_map(|(mut entries, targets)| {
            entries.push(("targets".into(), Yaml::Seq(targets)));
            Yaml::Map(entries)
        });
    (
        proptest::collection::vec(instance, 0..3),
        proptest::collection::vec((key(), yaml()), 0..3),
    )
        .prop_map(|(instances, mut globals)| {
            globals.insert(0, ("instances".into(), Yaml::Seq(instances)));
            let mut writer = Writer {
                out: String::new(),
                anchors: 0,
                flow: false,
            };
            for (key, value) in &globals {
                let _ = write!(writer.out, "{key}:");
                writer.block(value, 2);
            }
            writer.out
        })
}

proptest! {
    #[test]
    fn any_text_gets_positioned_diagnostics(text in prop_oneof![
        any::<String>(),
        "[a-z:\\-\\[\\]{}&*!|>'\" \n#,?%@`~]{0,60}",
    ]) {
        let result = load_str(&text, "props.yml", &FakeEnv);
        check_diagnostics(&text, &result)?;
    }

    /// Also with a text that ends without a newline, where the parser places the end of the
    /// text on a line after it.
    #[test]
    fn yaml_ish_text_gets_positioned_diagnostics(text in prop_oneof![
        document(),
        (document(), prop::sample::select(vec!["? ", "?", ": ", "- ", "[", "{a", " ", "\r? ", "\n", ""]))
            .prop_map(|(doc, end)| doc.trim_end().to_owned() + end),
    ]) {
        let result = load_str(&text, "props.yml", &FakeEnv);
        check_diagnostics(&text, &result)?;
    }

    #[test]
    fn config_shaped_text_gets_positioned_diagnostics(text in config_shaped()) {
        let result = load_str(&text, "props.yml", &FakeEnv);
        check_diagnostics(&text, &result)?;
    }
}

// ---- valid configs -----------------------------------------------------------------------

/// A valid config, described plainly.
#[derive(Debug, Clone)]
struct ModelConfig {
    instances: Vec<ModelInstance>,
    max_concurrent_jobs: Option<usize>,
    api_port: Option<u16>,
}

#[derive(Debug, Clone)]
struct ModelInstance {
    id: String,
    /// `Some(path under /srv)` for restic, `None` for a custom image.
    repository: Option<String>,
    schedule: &'static str,
    retention: Option<(u32, u32, u32)>,
    timezone: Option<&'static str>,
    targets: Vec<ModelTarget>,
}

#[derive(Debug, Clone)]
struct ModelTarget {
    volume: bool,
    name: String,
    paths: Vec<String>,
}

fn model_config() -> impl Strategy<Value = ModelConfig> {
    let target = (
        any::<bool>(),
        "[a-z][a-z0-9_.-]{0,8}",
        proptest::collection::vec("[a-z]{1,5}(/[a-z]{1,5})?", 0..3),
    )
        .prop_map(|(volume, name, paths)| ModelTarget {
            volume,
            name,
            paths: if volume { paths } else { Vec::new() },
        });
    let instance = (
        "[a-zA-Z0-9][a-zA-Z0-9._-]{0,8}",
        prop::option::of("[a-z]{1,6}(/[a-z]{1,6})?"),
        prop::sample::select(vec![
            "@daily",
            "@hourly",
            "0 2 * * *",
            "*/15 * * * *",
            "30 0 3 * * MON-FRI",
        ]),
        prop::option::of((1u32..30, 0u32..10, 0u32..12)),
        prop::option::of(prop::sample::select(vec![
            "UTC",
            "Europe/Berlin",
            "America/New_York",
        ])),
        proptest::collection::vec(target, 0..4),
    )
        .prop_map(
            |(id, repository, schedule, retention, timezone, targets)| ModelInstance {
                id,
                // A custom image owns its retention; setting one would only draw a warning.
                retention: retention.filter(|_| repository.is_some()),
                repository,
                schedule,
                timezone,
                targets,
            },
        );
    (
        proptest::collection::vec(instance, 1..4),
        prop::option::of(1usize..8),
        prop::option::of(1u16..65535),
    )
        .prop_map(|(mut instances, max_concurrent_jobs, api_port)| {
            // Ids and target names must be unique; a suffix makes them so.
            for (i, instance) in instances.iter_mut().enumerate() {
                instance.id = format!("{}-{i}", instance.id);
                for (j, target) in instance.targets.iter_mut().enumerate() {
                    target.name = format!("{}{j}", target.name);
                }
            }
            ModelConfig {
                instances,
                max_concurrent_jobs,
                api_port,
            }
        })
}

/// Where a value was written, for checking a diagnostic's position.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Written {
    line: usize,
    column: usize,
}

/// Block style: one key per line, in schema order, schedules single-quoted. Returns the text
/// and where each instance's backend value (repository or image) starts.
fn render_block(
    model: &ModelConfig,
    backend_value: &dyn Fn(usize, &ModelInstance) -> String,
) -> (String, Vec<Written>) {
    let mut lines: Vec<String> = Vec::new();
    let mut backends = Vec::new();
    if let Some(n) = model.max_concurrent_jobs {
        lines.push(format!("maxConcurrentJobs: {n}"));
    }
    if let Some(port) = model.api_port {
        lines.push(format!("apiPort: {port}"));
    }
    lines.push("instances:".into());
    for (i, instance) in model.instances.iter().enumerate() {
        lines.push(format!("  - id: {}", instance.id));
        let key = if instance.repository.is_some() {
            "repository"
        } else {
            "customImage"
        };
        backends.push(Written {
            line: lines.len() + 1,
            column: 4 + key.len() + 3,
        });
        lines.push(format!("    {key}: {}", backend_value(i, instance)));
        lines.push(format!("    schedule: '{}'", instance.schedule));
        if let Some((d, w, m)) = instance.retention {
            lines.push(format!("    retention: {d}d:{w}w:{m}m"));
        }
        if let Some(tz) = instance.timezone {
            lines.push(format!("    timezone: {tz}"));
        }
        if instance.repository.is_some() {
            lines.push("    env:".into());
            lines.push("      RESTIC_PASSWORD: pw".into());
        }
        if !instance.targets.is_empty() {
            lines.push("    targets:".into());
        }
        for target in &instance.targets {
            let kind = if target.volume { "volume" } else { "db" };
            lines.push(format!("      - {kind}: {}", target.name));
            if !target.paths.is_empty() {
                lines.push("        paths:".into());
                for path in &target.paths {
                    lines.push(format!("          - {path}"));
                }
            }
        }
    }
    (lines.join("\n") + "\n", backends)
}

/// Flow style: each instance one line, keys in reverse order, every value double-quoted,
/// repositories through `${REPO_ROOT}`, and the restic `env` written once behind an anchor.
fn render_flow(model: &ModelConfig) -> String {
    let mut out = String::from("{\n");
    let mut anchored = false;
    out.push_str("\"instances\": [\n");
    for instance in &model.instances {
        let mut fields: Vec<String> = Vec::new();
        fields.push(format!("\"id\": \"{}\"", instance.id));
        match &instance.repository {
            Some(path) => fields.push(format!("repository: \"${{REPO_ROOT}}/{path}\"")),
            None => fields.push("customImage: \"backup/image:1\"".into()),
        }
        fields.push(format!("schedule: \"{}\"", instance.schedule));
        if let Some((d, w, m)) = instance.retention {
            fields.push(format!("retention: \"{d}:{w}:{m}\""));
        }
        if let Some(tz) = instance.timezone {
            fields.push(format!("timezone: \"{tz}\""));
        }
        if instance.repository.is_some() {
            if anchored {
                fields.push("env: *restic_env".into());
            } else {
                fields.push("env: &restic_env {\"RESTIC_PASSWORD\": \"pw\"}".into());
                anchored = true;
            }
        }
        let targets: Vec<String> = instance
            .targets
            .iter()
            .map(|t| {
                let kind = if t.volume { "volume" } else { "db" };
                let paths: Vec<String> = t.paths.iter().map(|p| format!("\"{p}/\"")).collect();
                if paths.is_empty() {
                    format!("{{{kind}: \"{}\"}}", t.name)
                } else {
                    format!("{{paths: [{}], {kind}: \"{}\"}}", paths.join(", "), t.name)
                }
            })
            .collect();
        fields.push(format!("targets: [{}]", targets.join(", ")));
        fields.reverse();
        let _ = writeln!(out, "  {{{}}},", fields.join(", "));
    }
    out.push_str("],\n");
    if let Some(n) = model.max_concurrent_jobs {
        let _ = writeln!(out, "\"maxConcurrentJobs\": \"{n}\",");
    }
    if let Some(port) = model.api_port {
        let _ = writeln!(out, "apiPort: \"{port}\",");
    }
    out.push_str("}\n");
    out
}

fn plain_backend(_: usize, instance: &ModelInstance) -> String {
    match &instance.repository {
        Some(path) => format!("/srv/{path}"),
        None => "backup/image:1".into(),
    }
}

/// The config a model describes, checked field by field against what was decoded.
fn check_against_model(model: &ModelConfig, config: &Config) -> Result<(), TestCaseError> {
    prop_assert_eq!(
        config.max_concurrent_jobs.get(),
        model.max_concurrent_jobs.unwrap_or(2)
    );
    prop_assert_eq!(config.api.port, model.api_port.unwrap_or(DEFAULT_API_PORT));
    prop_assert_eq!(&config.node_name, "prop-host");
    prop_assert_eq!(config.instances.len(), model.instances.len());
    for (instance, expected) in config.instances.iter().zip(&model.instances) {
        prop_assert_eq!(instance.id.as_str(), expected.id.as_str());
        prop_assert_eq!(instance.schedule.as_str(), expected.schedule);
        prop_assert_eq!(instance.timezone.name(), expected.timezone.unwrap_or("UTC"));
        match (&instance.backend, &expected.repository) {
            (
                Backend::Restic {
                    repository,
                    retention,
                    ..
                },
                Some(path),
            ) => {
                prop_assert_eq!(repository.expose(), format!("/srv/{path}"));
                let (d, w, m) = expected.retention.unwrap_or((7, 4, 6));
                prop_assert_eq!(
                    (
                        retention.keep_daily,
                        retention.keep_weekly,
                        retention.keep_monthly,
                        retention.keep_yearly
                    ),
                    (d, w, m, 0)
                );
                prop_assert_eq!(
                    instance.env.get("RESTIC_PASSWORD").map(Secret::expose),
                    Some("pw")
                );
            }
            (Backend::CustomImage { image }, None) => prop_assert_eq!(image, "backup/image:1"),
            (backend, repository) => prop_assert!(
                false,
                "backend {} for repository {:?}",
                backend.kind(),
                repository
            ),
        }
        prop_assert_eq!(instance.targets.len(), expected.targets.len());
        for (target, want) in instance.targets.iter().zip(&expected.targets) {
            let name =
                DockerName::parse(&want.name).map_err(|e| TestCaseError::fail(e.to_string()))?;
            if want.volume {
                prop_assert_eq!(&target.id, &TargetId::Volume(name));
                let paths: Vec<VolumePath> = if want.paths.is_empty() {
                    vec![VolumePath::root()]
                } else {
                    want.paths
                        .iter()
                        .filter_map(|p| VolumePath::parse(p).ok())
                        .collect()
                };
                prop_assert_eq!(
                    &target.kind,
                    &TargetKind::Volume {
                        paths,
                        stop_attached: None
                    }
                );
            } else {
                prop_assert_eq!(&target.id, &TargetId::Db(name));
            }
        }
    }
    Ok(())
}

fn load_valid(text: &str) -> Result<Config, TestCaseError> {
    match load_str(text, "props.yml", &FakeEnv) {
        Ok(loaded) => {
            prop_assert!(
                loaded.warnings.is_empty(),
                "warnings for\n{}\n{:?}",
                text,
                loaded.warnings
            );
            Ok(loaded.config)
        }
        Err(error) => Err(TestCaseError::fail(format!("rejected:\n{text}\n{error}"))),
    }
}

proptest! {
    /// No renderer turns a `Config` back into YAML, so the round trip starts from a model:
    /// written in two unlike styles, it decodes to one and the same `Config`, which says what
    /// the model says.
    #[test]
    fn a_valid_config_decodes_the_same_in_any_style(model in model_config()) {
        let (block, _) = render_block(&model, &plain_backend);
        let flow = render_flow(&model);
        let from_block = load_valid(&block)?;
        let from_flow = load_valid(&flow)?;
        prop_assert_eq!(&from_block, &from_flow);
        check_against_model(&model, &from_block)?;
    }

    /// An unset variable in a value is an error that names the variable, at the value's
    /// line and column, under the field's path.
    #[test]
    fn an_unset_variable_is_reported_where_it_is_written(model in model_config(), pick in any::<prop::sample::Index>(), name in prop::sample::select(&UNSET[..])) {
        let which = pick.index(model.instances.len());
        let with_reference = |i: usize, instance: &ModelInstance| {
            if i == which { format!("${{{name}}}/x") } else { plain_backend(i, instance) }
        };
        let (text, backends) = render_block(&model, &with_reference);
        let result = load_str(&text, "props.yml", &FakeEnv);
        check_diagnostics(&text, &result)?;
        let Err(error) = result else {
            return Err(TestCaseError::fail(format!("accepted with an unset variable:\n{text}")));
        };
        let field = if model.instances[which].repository.is_some() { "repository" } else { "customImage" };
        let errors: Vec<&Diagnostic> = error.diagnostics.iter().filter(|d| d.severity == Severity::Error).collect();
        prop_assert_eq!(errors.len(), 1, "{}", error);
        let diagnostic = errors[0];
        prop_assert!(diagnostic.message.contains(&format!("`{name}` is not set")), "{}", diagnostic);
        prop_assert_eq!(&diagnostic.path, &format!("instances[{which}].{field}"));
        prop_assert_eq!(
            diagnostic.position.map(|p| Written { line: p.line, column: p.column }),
            Some(backends[which])
        );
    }
}
