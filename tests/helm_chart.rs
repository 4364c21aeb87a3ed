//! The Helm chart under `charts/marina/` holds together without a `helm` binary: `Chart.yaml`
//! matches the crate's version, every `.Values` path the templates use exists in `values.yaml`,
//! every included helper is defined, every template's `{{ }}` actions and blocks are balanced,
//! every value is commented and listed in the chart's README, the default `config` passes
//! `marina validate` (with authentication off and on, as the chart renders it), and the
//! `DaemonSet` mounts what Marina needs: the Docker socket, the config as a directory that
//! follows `ConfigMap` updates, and health and readiness probes.

#![allow(clippy::unwrap_used, clippy::expect_used)] // In tests a panic is the failure report.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

fn chart_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("charts/marina")
}

fn read(relative: &str) -> String {
    let path = chart_dir().join(relative);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn parse_yaml(relative: &str) -> Value {
    yaml_serde::from_str(&read(relative))
        .unwrap_or_else(|e| panic!("charts/marina/{relative} is not YAML: {e}"))
}

/// Every file under `templates/`, as (file name, text), sorted by name.
fn templates() -> Vec<(String, String)> {
    let mut files: Vec<(String, String)> = std::fs::read_dir(chart_dir().join("templates"))
        .expect("charts/marina/templates")
        .map(|entry| {
            let entry = entry.unwrap();
            let name = entry.file_name().to_string_lossy().into_owned();
            let text = std::fs::read_to_string(entry.path()).unwrap();
            (name, text)
        })
        .collect();
    files.sort();
    assert!(!files.is_empty(), "charts/marina/templates is empty");
    files
}

fn template(name: &str) -> String {
    read(&format!("templates/{name}"))
}

// ---------------------------------------------------------------------------------------
// A small reader of Go template actions: enough of text/template's lexer to find actions,
// comments, string literals and the words inside actions.

/// One `{{ … }}` action (comments are left out): its words and string literals, the line it
/// starts on, and where it starts (`{{`) and ends (after `}}`) in the text.
#[derive(Debug)]
struct Action {
    tokens: Vec<Token>,
    line: usize,
    open: usize,
    close: usize,
}

#[derive(Debug, PartialEq)]
enum Token {
    /// An identifier, field chain or variable: `include`, `.Values.a.b`, `$config`, `-`.
    Word(String),
    /// The contents of a `"…"` or `` `…` `` literal.
    Str(String),
}

impl Action {
    /// The action's keyword or first word, after a `-` trim marker (`{{- if` → `if`).
    fn first_word(&self) -> Option<&str> {
        let mut words = self.tokens.iter().map(|t| match t {
            Token::Word(word) => Some(word.as_str()),
            Token::Str(_) => None,
        });
        match words.next()? {
            Some("-") => words.next()?,
            word => word,
        }
    }

    /// The string literal right after the word `keyword` (`include "marina.name"`).
    fn names_after(&self, keyword: &str) -> Vec<&str> {
        self.tokens
            .windows(2)
            .filter_map(|pair| match pair {
                [Token::Word(word), Token::Str(name)] if word == keyword => Some(name.as_str()),
                _ => None,
            })
            .collect()
    }
}

fn line_at(text: &str, offset: usize) -> usize {
    text[..offset].matches('\n').count() + 1
}

/// Splits a template into its actions. Errors on an unclosed `{{`, an unclosed comment or
/// string literal, and a `}}` outside any action.
fn actions(text: &str) -> Result<Vec<Action>, String> {
    let mut found = Vec::new();
    let mut pos = 0;
    loop {
        let Some(open) = text[pos..].find("{{").map(|i| pos + i) else {
            if let Some(stray) = text[pos..].find("}}") {
                return Err(format!(
                    "line {}: `}}}}` without `{{{{`",
                    line_at(text, pos + stray)
                ));
            }
            return Ok(found);
        };
        if let Some(stray) = text[pos..open].find("}}") {
            return Err(format!(
                "line {}: `}}}}` without `{{{{`",
                line_at(text, pos + stray)
            ));
        }
        let line = line_at(text, open);
        let inner_start = open + 2;
        let rest = &text[inner_start..];
        let trimmed = rest.strip_prefix("- ").unwrap_or(rest).trim_start();
        if trimmed.starts_with("/*") {
            let comment_start = text.len() - trimmed.len();
            let end = text[comment_start..]
                .find("*/")
                .ok_or_else(|| format!("line {line}: unclosed comment"))?;
            let after = text[comment_start + end + 2..].trim_start_matches([' ', '-']);
            if !after.starts_with("}}") {
                return Err(format!("line {line}: a comment must end with `*/}}}}`"));
            }
            pos = text.len() - after.len() + 2;
            continue;
        }
        let (tokens, close) = tokenize(text, inner_start)
            .map_err(|e| format!("line {line}: {e}"))?
            .ok_or_else(|| format!("line {line}: `{{{{` is never closed"))?;
        found.push(Action {
            tokens,
            line,
            open,
            close: close + 2,
        });
        pos = close + 2;
    }
}

/// Reads an action's tokens from `start` up to its `}}`; returns them and the offset of the
/// `}}`, or `None` at the end of the text.
fn tokenize(text: &str, start: usize) -> Result<Option<(Vec<Token>, usize)>, String> {
    let bytes = text.as_bytes();
    let mut tokens = Vec::new();
    let mut i = start;
    while i < bytes.len() {
        let c = bytes[i];
        if text[i..].starts_with("}}") {
            return Ok(Some((tokens, i)));
        }
        match c {
            b'"' | b'\'' => {
                let mut j = i + 1;
                let mut literal = String::new();
                loop {
                    match bytes.get(j) {
                        None | Some(b'\n') => return Err("unclosed string literal".into()),
                        Some(b'\\') => {
                            let escaped = text[j + 1..].chars().next().unwrap_or('\\');
                            literal.push(escaped);
                            j += 1 + escaped.len_utf8();
                        }
                        Some(&q) if q == c => break,
                        Some(_) => {
                            let ch = text[j..].chars().next().unwrap();
                            literal.push(ch);
                            j += ch.len_utf8();
                        }
                    }
                }
                tokens.push(Token::Str(literal));
                i = j + 1;
            }
            b'`' => {
                let end = text[i + 1..]
                    .find('`')
                    .ok_or("unclosed raw string literal")?;
                tokens.push(Token::Str(text[i + 1..i + 1 + end].to_owned()));
                i += end + 2;
            }
            c if c.is_ascii_alphanumeric() || matches!(c, b'.' | b'$' | b'_' | b'-') => {
                let len = text[i..]
                    .find(|ch: char| !(ch.is_ascii_alphanumeric() || matches!(ch, '.' | '$' | '_')))
                    .unwrap_or(text.len() - i)
                    .max(1);
                tokens.push(Token::Word(text[i..i + len].to_owned()));
                i += len;
            }
            _ => i += text[i..].chars().next().map_or(1, char::len_utf8),
        }
    }
    Ok(None)
}

/// The `.Values` paths a template uses (`.Values.auth.enabled` → `auth.enabled`), with the
/// line of each use. String literals and comments do not count.
fn values_references(text: &str) -> Result<Vec<(String, usize)>, String> {
    let mut references = Vec::new();
    for action in actions(text)? {
        for token in &action.tokens {
            let Token::Word(word) = token else { continue };
            let word = word.strip_prefix('$').unwrap_or(word);
            if let Some(path) = word.strip_prefix(".Values.") {
                if path.is_empty() || path.split('.').any(str::is_empty) {
                    return Err(format!("line {}: malformed `{word}`", action.line));
                }
                references.push((path.to_owned(), action.line));
            }
        }
    }
    Ok(references)
}

/// Whether `path` (`a.b.c`) names a key in `values`; a key with a null or empty value exists.
fn path_exists(values: &Value, path: &str) -> bool {
    let mut at = values;
    for segment in path.split('.') {
        match at.get(segment) {
            Some(next) if at.is_object() => at = next,
            _ => return false,
        }
    }
    true
}

/// The `.Values` paths of every template that `values` lacks, as `file:line: path`.
fn missing_values(templates: &[(String, String)], values: &Value) -> Vec<String> {
    let mut missing = Vec::new();
    for (name, text) in templates {
        let references = values_references(text).unwrap_or_else(|e| panic!("{name}: {e}"));
        for (path, line) in references {
            if !path_exists(values, &path) {
                missing.push(format!("{name}:{line}: .Values.{path}"));
            }
        }
    }
    missing
}

/// Checks that every `if`/`with`/`range`/`define`/`block` has its `end`, and that `else`
/// and `end` appear only inside a block.
fn check_blocks(text: &str) -> Result<(), String> {
    let mut open: Vec<(String, usize)> = Vec::new();
    for action in actions(text)? {
        let Some(word) = action.first_word() else {
            continue;
        };
        match word {
            "if" | "with" | "range" | "define" | "block" => {
                open.push((word.to_owned(), action.line));
            }
            "else" if open.is_empty() => {
                return Err(format!("line {}: `else` outside a block", action.line));
            }
            "end" => {
                open.pop()
                    .ok_or_else(|| format!("line {}: `end` without a block", action.line))?;
            }
            _ => {}
        }
    }
    match open.pop() {
        Some((word, line)) => Err(format!("line {line}: `{word}` has no `end`")),
        None => Ok(()),
    }
}

/// The body of `{{ define "name" }} … {{ end }}` in `helpers`, trimmed.
fn define_body<'a>(helpers: &'a str, name: &str) -> &'a str {
    let all = actions(helpers).unwrap();
    let start = all
        .iter()
        .position(|a| a.first_word() == Some("define") && a.names_after("define") == [name])
        .unwrap_or_else(|| panic!("_helpers.tpl defines no {name}"));
    let mut depth = 0;
    for action in &all[start + 1..] {
        match action.first_word() {
            Some("if" | "with" | "range" | "define" | "block") => depth += 1,
            Some("end") if depth == 0 => return helpers[all[start].close..action.open].trim(),
            Some("end") => depth -= 1,
            _ => {}
        }
    }
    panic!("{name} has no end")
}

// ---------------------------------------------------------------------------------------
// The checks.

fn is_semver(version: &str) -> bool {
    let (rest, build) = version
        .split_once('+')
        .map_or((version, None), |(v, b)| (v, Some(b)));
    let (core, pre) = rest
        .split_once('-')
        .map_or((rest, None), |(c, p)| (c, Some(p)));
    let numbers: Vec<&str> = core.split('.').collect();
    let number_ok = |n: &&str| {
        !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()) && (*n == "0" || !n.starts_with('0'))
    };
    let idents_ok = |s: Option<&str>| {
        s.is_none_or(|s| {
            s.split('.').all(|id| {
                !id.is_empty() && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
            })
        })
    };
    numbers.len() == 3 && numbers.iter().all(number_ok) && idents_ok(pre) && idents_ok(build)
}

#[test]
fn chart_yaml_describes_this_version_of_marina() {
    let chart = parse_yaml("Chart.yaml");
    assert_eq!(
        chart["apiVersion"], "v2",
        "Helm 3 charts have apiVersion v2"
    );
    assert_eq!(chart["name"], "marina");
    assert_eq!(chart["type"], "application");
    let version = chart["version"]
        .as_str()
        .expect("Chart.yaml: version is a string");
    assert!(
        is_semver(version),
        "Chart.yaml: version {version} is not SemVer 2"
    );
    assert_eq!(
        chart["appVersion"].as_str(),
        Some(env!("CARGO_PKG_VERSION")),
        "Chart.yaml: appVersion (the default image tag) must be Marina's version in Cargo.toml"
    );
    for field in ["description", "kubeVersion"] {
        assert!(
            chart[field].as_str().is_some_and(|s| !s.is_empty()),
            "Chart.yaml: {field} is missing"
        );
    }
}

#[test]
fn semver_check_accepts_and_refuses_the_right_versions() {
    for good in [
        "0.1.0",
        "1.22.333",
        "1.0.0-rc.1",
        "1.0.0+build.5",
        "1.0.0-alpha-1+x",
    ] {
        assert!(is_semver(good), "{good}");
    }
    for bad in [
        "0.1",
        "v0.1.0",
        "01.1.0",
        "1.0.0-",
        "1.0.0+",
        "1.0.0-a..b",
        "1.x.0",
    ] {
        assert!(!is_semver(bad), "{bad}");
    }
}

#[test]
fn every_value_the_templates_use_exists_in_values_yaml() {
    let values = parse_yaml("values.yaml");
    assert!(values.is_object(), "values.yaml is not a mapping");
    let missing = missing_values(&templates(), &values);
    assert!(
        missing.is_empty(),
        "templates use values that values.yaml does not define:\n{}",
        missing.join("\n")
    );
}

#[test]
fn the_values_scanner_finds_a_missing_reference() {
    let values: Value =
        yaml_serde::from_str("present: null\nnested: {key: ''}\nempty: {}\nscalar: 1\n").unwrap();
    let template = r#"
{{- /* .Values.in_a_comment is not a use */}}
{{- if .Values.present }}{{ fail ".Values.in_a_string is not a use" }}{{ end }}
{{- with .Values.nested.key }}{{ . }}{{ end }}
{{ toYaml .Values.empty | nindent 4 }}
{{- $port := .Values.missing.port | default 8080 }}
{{ default "x" $.Values.scalar.below }}
{{ (.Values.absent) }}
"#;
    let files = vec![("t.yaml".to_owned(), template.to_owned())];
    assert_eq!(
        missing_values(&files, &values),
        [
            "t.yaml:6: .Values.missing.port",
            "t.yaml:7: .Values.scalar.below",
            "t.yaml:8: .Values.absent",
        ]
    );
}

#[test]
fn every_included_helper_is_defined() {
    let helpers = template("_helpers.tpl");
    let defined: BTreeSet<String> = actions(&helpers)
        .unwrap()
        .iter()
        .flat_map(|a| a.names_after("define"))
        .map(str::to_owned)
        .collect();
    assert!(defined.contains("marina.fullname"), "{defined:?}");
    let mut undefined = Vec::new();
    for (name, text) in templates() {
        for action in actions(&text).unwrap_or_else(|e| panic!("{name}: {e}")) {
            for keyword in ["include", "template"] {
                for helper in action.names_after(keyword) {
                    if !helper.starts_with("marina.") || !defined.contains(helper) {
                        undefined.push(format!("{name}:{}: {keyword} \"{helper}\"", action.line));
                    }
                }
            }
        }
    }
    assert!(
        undefined.is_empty(),
        "templates use helpers that _helpers.tpl does not define as marina.*:\n{}",
        undefined.join("\n")
    );
}

#[test]
fn every_template_has_balanced_actions_and_blocks() {
    let mut problems = Vec::new();
    for (name, text) in templates() {
        if let Err(e) = check_blocks(&text) {
            problems.push(format!("{name}: {e}"));
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

#[test]
fn the_block_checker_finds_unbalanced_templates() {
    assert!(
        check_blocks("{{- if .Values.a }}\n{{- else if .Values.b }}x{{- else }}{{ end }}").is_ok()
    );
    assert!(check_blocks("{{ with .Values.a }}{{ range . }}{{ end }}{{ end }}").is_ok());
    assert!(check_blocks("{{- define \"x\" -}}\n{{/* } } */}}\n{{- end }}").is_ok());
    let cases = [
        ("{{- if .Values.a }}\nx\n", "line 1: `if` has no `end`"),
        ("x\n{{ end }}", "line 2: `end` without a block"),
        ("{{ .Values.a }\n", "line 1: `{{` is never closed"),
        ("a }} b", "line 1: `}}` without `{{`"),
        ("{{/* never closed }}", "line 1: unclosed comment"),
        ("{{ \"open }}", "line 1: unclosed string literal"),
        ("{{ else }}", "line 1: `else` outside a block"),
    ];
    for (text, expected) in cases {
        assert_eq!(check_blocks(text).unwrap_err(), expected, "{text:?}");
    }
}

/// Key lines of values.yaml that have no comment of their own (on the line before or at the
/// end of the line). Keys inside `config` (Marina's config.yml, documented in
/// docs/configuration.md) and inside list items are Kubernetes or Marina objects, not values.
fn uncommented_values(text: &str) -> Vec<String> {
    let mut uncommented = Vec::new();
    let mut previous = "";
    let mut skip_deeper_than: Option<usize> = None;
    for (number, line) in text.lines().enumerate() {
        let content = line.trim_start();
        if content.is_empty() {
            continue;
        }
        let indent = line.len() - content.len();
        if content.starts_with('#') {
            previous = content;
            continue;
        }
        if skip_deeper_than.is_some_and(|limit| indent > limit) {
            previous = content;
            continue;
        }
        skip_deeper_than = None;
        if content.starts_with("- ") {
            skip_deeper_than = Some(indent);
        } else if let Some((key, _)) = content.split_once(':') {
            let commented = previous.starts_with('#') || content.contains(" # ");
            if !commented {
                uncommented.push(format!("values.yaml:{}: {key}", number + 1));
            }
            if indent == 0 && key == "config" {
                skip_deeper_than = Some(0);
            }
        }
        previous = content;
    }
    uncommented
}

/// The paths of the leaves of `value` (scalars, lists and empty mappings) into `out`.
fn leaves(value: &Value, prefix: &str, out: &mut Vec<String>) {
    match value.as_object() {
        Some(map) if !map.is_empty() => {
            for (key, child) in map {
                let path = if prefix.is_empty() {
                    key.clone()
                } else {
                    format!("{prefix}.{key}")
                };
                leaves(child, &path, out);
            }
        }
        _ => out.push(prefix.to_owned()),
    }
}

#[test]
fn every_value_is_commented_and_in_the_readme_table() {
    let text = read("values.yaml");
    let uncommented = uncommented_values(&text);
    assert!(
        uncommented.is_empty(),
        "values without a comment:\n{}",
        uncommented.join("\n")
    );

    // Every leaf value (or an object it belongs to, such as `resources`) is in the table.
    let readme = read("README.md");
    let table: Vec<&str> = readme.lines().filter(|l| l.starts_with("| `")).collect();
    let mut paths = Vec::new();
    leaves(&parse_yaml("values.yaml"), "", &mut paths);
    let undocumented: Vec<&String> = paths
        .iter()
        .filter(|path| {
            let segments: Vec<&str> = path.split('.').collect();
            !(1..=segments.len()).any(|n| {
                let cell = format!("| `{}` |", segments[..n].join("."));
                table.iter().any(|row| row.starts_with(&cell))
            })
        })
        .collect();
    assert!(
        undocumented.is_empty(),
        "values missing from the table in charts/marina/README.md: {undocumented:?}"
    );
}

#[test]
fn the_comment_checker_finds_an_uncommented_value() {
    let text = "# a\na: 1\nb:\n  # c\n  c: 2\n  d: 3 # d\n  e: []\nconfig:\n  x: 1\nlist:\n  - k: v\n    j: w\n";
    assert_eq!(
        uncommented_values(text),
        [
            "values.yaml:3: b",
            "values.yaml:7: e",
            "values.yaml:8: config",
            "values.yaml:10: list"
        ]
    );
}

/// Runs `marina validate` on `config` and returns its summary line.
fn validate(config: &Value, dir: &Path, name: &str) -> String {
    let file = dir.join(name);
    std::fs::write(&file, yaml_serde::to_string(config).unwrap()).unwrap();
    let output = Command::new(env!("CARGO_BIN_EXE_marina"))
        .args(["validate", "--config"])
        .arg(&file)
        .env("NODE_NAME", "node-1")
        .env("RESTIC_PASSWORD", "not-a-real-password")
        .env_remove("CONFIG_FILE")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(
        output.status.success(),
        "the chart's default config ({name}) is not valid:\n{stdout}{}",
        String::from_utf8_lossy(&output.stderr)
    );
    stdout
}

#[test]
fn the_default_config_is_valid_with_and_without_auth() {
    let values = parse_yaml("values.yaml");
    let config = values["config"].clone();
    assert!(config.is_object(), "values.yaml: config is not a mapping");

    // What the chart's marina.config helper insists on (it fails to render otherwise).
    assert_eq!(config["stagingDir"], values["staging"]["hostPath"]);
    let data = values["data"]["hostPath"].as_str().unwrap();
    assert!(
        config["dbPath"]
            .as_str()
            .unwrap()
            .starts_with(&format!("{data}/")),
        "config.dbPath must lie under data.hostPath"
    );
    assert_eq!(config["nodeName"], "${NODE_NAME}");
    assert!(
        config.get("authPassword").is_none() && config.get("authPasswordFile").is_none(),
        "the chart adds authPasswordFile itself when auth.enabled"
    );
    assert_eq!(
        config["apiPort"].as_u64(),
        Some(8080),
        "config.apiPort is a plain number (the container port)"
    );

    let dir = tempfile::tempdir().unwrap();
    let summary = validate(&config, dir.path(), "auth-off.yml");
    assert!(summary.contains("authentication off"), "{summary}");

    // With auth.enabled, the chart sets authPasswordFile to the file it mounts from the
    // Secret; here a temporary file stands in for it.
    let helpers = template("_helpers.tpl");
    assert_eq!(
        define_body(&helpers, "marina.authSecretDir"),
        "/run/secrets/marina"
    );
    assert!(define_body(&helpers, "marina.authPasswordFile").contains("/auth-password"));
    let helper_config = define_body(&helpers, "marina.config");
    assert!(
        helper_config
            .contains(r#"set $config "authPasswordFile" (include "marina.authPasswordFile" .)"#),
        "marina.config must set authPasswordFile when auth.enabled"
    );
    let daemonset = template("daemonset.yaml");
    assert!(daemonset.contains("mountPath: {{ include \"marina.authSecretDir\" . }}"));
    assert!(daemonset.contains("path: auth-password"));

    let password_file = dir.path().join("auth-password");
    std::fs::write(&password_file, "a-password\n").unwrap();
    let mut with_auth = config;
    with_auth["authPasswordFile"] = Value::String(password_file.display().to_string());
    let summary = validate(&with_auth, dir.path(), "auth-on.yml");
    assert!(summary.contains("authentication on"), "{summary}");
}

/// The lines of the YAML list item (in template text) that contains `line`.
fn list_item<'a>(lines: &[&'a str], line: usize) -> Vec<&'a str> {
    let indent = |l: &str| l.len() - l.trim_start().len();
    let start = (0..=line)
        .rev()
        .find(|&i| lines[i].trim_start().starts_with("- "))
        .expect("the line is in a list item");
    let item_indent = indent(lines[start]);
    let end = (start + 1..lines.len())
        .find(|&i| !lines[i].trim().is_empty() && indent(lines[i]) <= item_indent)
        .unwrap_or(lines.len());
    lines[start..end].to_vec()
}

#[test]
fn the_daemonset_mounts_what_marina_needs() {
    let daemonset = template("daemonset.yaml");
    for needed in [
        ".Values.dockerSocket.hostPath",
        "path: /healthz",
        "path: /readyz",
        "fieldPath: spec.nodeName",
        "- name: NODE_NAME",
        r#"args: ["run", "--config", "/etc/marina/config.yml"]"#,
        "terminationGracePeriodSeconds: {{ .Values.terminationGracePeriodSeconds }}",
    ] {
        assert!(daemonset.contains(needed), "daemonset.yaml lacks {needed}");
    }

    // The config is mounted as a directory: a subPath mount never sees a ConfigMap update.
    let lines: Vec<&str> = daemonset.lines().collect();
    let mounts: Vec<usize> = lines
        .iter()
        .enumerate()
        .filter(|(_, l)| l.trim() == "mountPath: /etc/marina")
        .map(|(i, _)| i)
        .collect();
    assert_eq!(mounts.len(), 1, "one mount at /etc/marina");
    let mount = list_item(&lines, mounts[0]);
    assert!(
        mount.iter().any(|l| l.trim() == "- name: config"),
        "{mount:?}"
    );
    assert!(
        !mount.iter().any(|l| l.contains("subPath")),
        "the config mount must not use subPath: {mount:?}"
    );
    let volume = lines
        .iter()
        .position(|l| l.trim() == "configMap:")
        .expect("a configMap volume");
    assert!(
        list_item(&lines, volume)
            .iter()
            .any(|l| l.trim() == "- name: config")
    );

    // No pod restart on config changes: Marina reloads by itself.
    for (name, text) in templates() {
        assert!(
            !text
                .lines()
                .any(|l| l.trim_start().starts_with("checksum/config")),
            "{name} restarts pods on config changes"
        );
    }

    // The ConfigMap holds the config as the helper renders it.
    let configmap = template("configmap.yaml");
    assert!(configmap.contains("config.yml: |"));
    assert!(configmap.contains(r#"include "marina.config" . | nindent 4"#));
}

#[test]
fn the_notes_say_how_to_reach_a_node() {
    let notes = template("NOTES.txt");
    for needed in ["port-forward", "/readyz", "get secret"] {
        assert!(notes.contains(needed), "NOTES.txt lacks {needed}");
    }
}
