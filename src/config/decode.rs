//! Generic, error-collecting reading of the position-aware YAML tree: every problem is
//! recorded with its position and path and decoding carries on, so one run reports them all.

use std::fmt;
use std::time::Duration;

use super::expand::expand;
use super::yaml::{Node, Position, Value};
use super::{Diagnostic, Severity};

/// Where a value sits in the config, as users write it: `instances[1].targets[0].paths[2]`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FieldPath(Vec<Segment>);

#[derive(Debug, Clone, PartialEq, Eq)]
enum Segment {
    Key(String),
    Index(usize),
}

impl FieldPath {
    /// The path of a field of this mapping.
    #[must_use]
    pub fn key(&self, key: &str) -> Self {
        let mut path = self.clone();
        path.0.push(Segment::Key(key.to_owned()));
        path
    }

    /// The path of an item of this list.
    #[must_use]
    pub fn index(&self, index: usize) -> Self {
        let mut path = self.clone();
        path.0.push(Segment::Index(index));
        path
    }
}

impl fmt::Display for FieldPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, segment) in self.0.iter().enumerate() {
            match segment {
                // An empty key would vanish from the path, leaving the error unplaced.
                Segment::Key(key) if key.is_empty() && i == 0 => f.write_str("\"\"")?,
                Segment::Key(key) if key.is_empty() => f.write_str(".\"\"")?,
                Segment::Key(key) if i == 0 => f.write_str(key)?,
                Segment::Key(key) => write!(f, ".{key}")?,
                Segment::Index(index) => write!(f, "[{index}]")?,
            }
        }
        Ok(())
    }
}

/// Reads nodes into values, expanding environment references, and collects diagnostics.
pub struct Decoder<'a> {
    /// The config file name, as diagnostics show it.
    file: &'a str,
    /// Environment lookup for `${VAR}` expansion.
    lookup: &'a dyn Fn(&str) -> Option<String>,
    /// Everything found so far, errors and warnings, in the order found.
    pub diagnostics: Vec<Diagnostic>,
}

impl<'a> Decoder<'a> {
    /// A decoder for `file`, expanding references with `lookup`.
    pub fn new(file: &'a str, lookup: &'a dyn Fn(&str) -> Option<String>) -> Self {
        Self {
            file,
            lookup,
            diagnostics: Vec::new(),
        }
    }

    fn push(
        &mut self,
        severity: Severity,
        position: Option<Position>,
        path: &FieldPath,
        message: impl fmt::Display,
    ) {
        self.diagnostics.push(Diagnostic {
            severity,
            file: self.file.to_owned(),
            position,
            path: path.to_string(),
            message: message.to_string(),
        });
    }

    /// Records an error at `position`.
    pub fn error(&mut self, position: Position, path: &FieldPath, message: impl fmt::Display) {
        self.push(Severity::Error, Some(position), path, message);
    }

    /// Records a warning; `position` is `None` for warnings about the environment.
    pub fn warn(
        &mut self,
        position: Option<Position>,
        path: &FieldPath,
        message: impl fmt::Display,
    ) {
        self.push(Severity::Warning, position, path, message);
    }

    /// Whether any error (not warning) has been recorded.
    #[must_use]
    pub fn has_errors(&self) -> bool {
        self.diagnostics
            .iter()
            .any(|d| d.severity == Severity::Error)
    }

    fn expected(&mut self, node: &Node, path: &FieldPath, what: &str) {
        self.error(
            node.position,
            path,
            format!("expected {what}, found {}", node.kind_name()),
        );
    }

    /// The text of a scalar after environment expansion.
    pub fn text(&mut self, node: &Node, path: &FieldPath) -> Option<String> {
        let Value::Scalar { text, .. } = &node.value else {
            self.expected(node, path, "a single value");
            return None;
        };
        expand(text, self.lookup)
            .map_err(|e| self.error(node.position, path, e))
            .ok()
    }

    /// A scalar read with `parse`; its error message is reported at the node.
    pub fn parse<T, E: fmt::Display>(
        &mut self,
        node: &Node,
        path: &FieldPath,
        parse: impl FnOnce(&str) -> Result<T, E>,
    ) -> Option<T> {
        let text = self.text(node, path)?;
        parse(&text)
            .map_err(|e| self.error(node.position, path, e))
            .ok()
    }

    /// `true`/`false` (also YAML 1.1's `yes`/`no`/`on`/`off`, which 0.9 configs may use).
    pub fn boolean(&mut self, node: &Node, path: &FieldPath) -> Option<bool> {
        self.parse(node, path, |text| {
            match text.trim().to_ascii_lowercase().as_str() {
                "true" | "yes" | "on" => Ok(true),
                "false" | "no" | "off" => Ok(false),
                _ => Err(format!("`{text}` is not a boolean; use true or false")),
            }
        })
    }

    /// A non-empty string without surrounding whitespace.
    pub fn nonempty(&mut self, node: &Node, path: &FieldPath) -> Option<String> {
        self.parse(node, path, |text| {
            let text = text.trim();
            if text.is_empty() {
                Err("must not be empty")
            } else {
                Ok(text.to_owned())
            }
        })
    }

    /// A duration such as `30s`, `10m`, `1h30m`, `7d`; zero is refused (every duration in the
    /// config is a limit or an interval, where zero is always a mistake).
    pub fn duration(&mut self, node: &Node, path: &FieldPath) -> Option<Duration> {
        self.parse(node, path, |text| {
            match humantime::parse_duration(text.trim()) {
                Ok(d) if d.is_zero() => Err(format!("`{text}` must be longer than zero")),
                Ok(d) => Ok(d),
                Err(_) => Err(format!(
                    "`{text}` is not a duration; write e.g. 30s, 10m, 1h30m or 7d"
                )),
            }
        })
    }

    /// The items of a list.
    pub fn sequence<'n>(&mut self, node: &'n Node, path: &FieldPath) -> Option<&'n [Node]> {
        if let Value::Sequence(items) = &node.value {
            Some(items)
        } else {
            self.expected(node, path, "a list");
            None
        }
    }

    /// A list of strings, each read with `item`.
    pub fn list<T>(
        &mut self,
        node: &Node,
        path: &FieldPath,
        mut item: impl FnMut(&mut Self, &Node, &FieldPath) -> Option<T>,
    ) -> Option<Vec<T>> {
        let items = self.sequence(node, path)?;
        let mut values = Vec::with_capacity(items.len());
        let mut complete = true;
        for (index, node) in items.iter().enumerate() {
            match item(self, node, &path.index(index)) {
                Some(value) => values.push(value),
                None => complete = false,
            }
        }
        complete.then_some(values)
    }

    /// A mapping with a fixed set of field names: unknown and repeated keys are reported (with
    /// a "did you mean" hint), and the fields are returned for reading.
    pub fn mapping<'n>(
        &mut self,
        node: &'n Node,
        path: &FieldPath,
        known: &'static [&'static str],
    ) -> Option<Fields<'n>> {
        let Value::Mapping(entries) = &node.value else {
            self.expected(node, path, "a mapping");
            return None;
        };
        let mut fields = Fields {
            position: node.position,
            path: path.clone(),
            entries: Vec::new(),
            suggested: Vec::new(),
        };
        for (key_node, value) in entries {
            let Value::Scalar { text: key, .. } = &key_node.value else {
                self.error(key_node.position, path, "keys must be plain names");
                continue;
            };
            let key_path = path.key(key);
            if let Some((_, first, _)) = fields.entries.iter().find(|(k, _, _)| k == key) {
                let line = first.position.line;
                self.error(
                    key_node.position,
                    &key_path,
                    format!("`{key}` is set twice (first on line {line})"),
                );
                continue;
            }
            if known.contains(&key.as_str()) {
                fields.entries.push((key.clone(), key_node, value));
                continue;
            }
            let suggestion = known
                .iter()
                .copied()
                .filter(|k| strsim::levenshtein(k, key) <= 2 || k.eq_ignore_ascii_case(key))
                .min_by_key(|k| strsim::levenshtein(k, key));
            let message = match suggestion {
                Some(k) => {
                    fields.suggested.push(k);
                    format!("unknown field `{key}`, did you mean `{k}`?")
                }
                None => format!(
                    "unknown field `{key}`; known fields here: {}",
                    known.join(", ")
                ),
            };
            self.error(key_node.position, &key_path, message);
        }
        Some(fields)
    }

    /// A mapping of names to strings (such as `env`), with keys checked by `check_key`.
    pub fn string_map(
        &mut self,
        node: &Node,
        path: &FieldPath,
        check_key: impl Fn(&str) -> Result<(), String>,
    ) -> Option<Vec<(String, String)>> {
        let Value::Mapping(entries) = &node.value else {
            self.expected(node, path, "a mapping");
            return None;
        };
        let mut pairs: Vec<(String, String)> = Vec::with_capacity(entries.len());
        for (key_node, value) in entries {
            let Value::Scalar { text: key, .. } = &key_node.value else {
                self.error(key_node.position, path, "keys must be plain names");
                continue;
            };
            let key_path = path.key(key);
            if let Err(message) = check_key(key) {
                self.error(key_node.position, &key_path, message);
            } else if pairs.iter().any(|(k, _)| k == key) {
                self.error(
                    key_node.position,
                    &key_path,
                    format!("`{key}` is set twice"),
                );
            } else if value.is_null() {
                pairs.push((key.clone(), String::new()));
            } else if let Some(text) = self.text(value, &key_path) {
                pairs.push((key.clone(), text));
            }
        }
        Some(pairs)
    }
}

/// Remembers the keys met in a list so that a repeat is reported where it is written, even
/// when other fields of the repeating item are wrong.
pub struct Seen<K> {
    first: Vec<(K, Position)>,
}

impl<K: PartialEq> Seen<K> {
    /// Nothing seen yet.
    pub fn new() -> Self {
        Self { first: Vec::new() }
    }

    /// Records `key` written at `at`; if it was seen before, reports an error built by
    /// `message` from the key and the line it was first written on.
    pub fn check(
        &mut self,
        decoder: &mut Decoder<'_>,
        key: K,
        at: Position,
        path: &FieldPath,
        message: impl FnOnce(&K, usize) -> String,
    ) {
        match self.first.iter().find(|(seen, _)| *seen == key) {
            Some((_, first)) => decoder.error(at, path, message(&key, first.line)),
            None => self.first.push((key, at)),
        }
    }
}

/// The known fields of one mapping, ready to be read by name.
pub struct Fields<'n> {
    /// Where the mapping starts: missing fields are reported here.
    pub position: Position,
    /// The mapping's own path.
    pub path: FieldPath,
    entries: Vec<(String, &'n Node, &'n Node)>,
    /// Field names offered as "did you mean" for unknown keys; a missing required field that
    /// was already suggested is not reported a second time.
    suggested: Vec<&'static str>,
}

impl<'n> Fields<'n> {
    /// The value of `name`, unless absent or null.
    #[must_use]
    pub fn get(&self, name: &str) -> Option<&'n Node> {
        self.entries
            .iter()
            .find(|(key, _, value)| key == name && !value.is_null())
            .map(|(_, _, value)| *value)
    }

    /// Where the key `name` is written, if it is.
    #[must_use]
    pub fn key_position(&self, name: &str) -> Option<Position> {
        self.entries
            .iter()
            .find(|(key, _, _)| key == name)
            .map(|(_, key, _)| key.position)
    }

    /// The path of field `name`.
    #[must_use]
    pub fn path(&self, name: &str) -> FieldPath {
        self.path.key(name)
    }

    /// The value of a field that must be present, reporting it missing otherwise.
    pub fn required(&self, decoder: &mut Decoder<'_>, name: &'static str) -> Option<&'n Node> {
        let node = self.get(name);
        if node.is_none() && !self.suggested.contains(&name) {
            decoder.error(self.position, &self.path(name), "is required but missing");
        }
        node
    }

    /// Reads field `name` with `read`, if present.
    pub fn read<'a, T>(
        &self,
        decoder: &mut Decoder<'a>,
        name: &str,
        read: impl FnOnce(&mut Decoder<'a>, &Node, &FieldPath) -> Option<T>,
    ) -> Option<T> {
        let node = self.get(name)?;
        read(decoder, node, &self.path(name))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::yaml;

    #[test]
    fn paths_print_like_users_write_them() {
        let path = FieldPath::default()
            .key("instances")
            .index(1)
            .key("targets")
            .index(0)
            .key("paths")
            .index(2);
        assert_eq!(path.to_string(), "instances[1].targets[0].paths[2]");
    }

    #[test]
    fn an_empty_key_still_shows_in_the_path() {
        assert_eq!(FieldPath::default().key("").to_string(), "\"\"");
        let path = FieldPath::default().key("instances").index(0).key("");
        assert_eq!(path.to_string(), "instances[0].\"\"");
    }

    #[test]
    fn unknown_and_repeated_keys_are_reported_with_positions() {
        let doc = yaml::parse("id: a\nshedule: x\nid: b\nwhatever: 1\n")
            .unwrap()
            .unwrap();
        let lookup = |_: &str| None;
        let mut decoder = Decoder::new("c.yml", &lookup);
        let fields = decoder
            .mapping(&doc, &FieldPath::default(), &["id", "schedule"])
            .unwrap();
        assert!(fields.required(&mut decoder, "schedule").is_none());
        let lines: Vec<String> = decoder
            .diagnostics
            .iter()
            .map(ToString::to_string)
            .collect();
        assert_eq!(
            lines,
            [
                "c.yml:2:1: shedule: unknown field `shedule`, did you mean `schedule`?",
                "c.yml:3:1: id: `id` is set twice (first on line 1)",
                "c.yml:4:1: whatever: unknown field `whatever`; known fields here: id, schedule",
            ]
        );
    }
}
