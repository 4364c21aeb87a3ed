//! YAML text → a tree of nodes that remember where they were written.
//!
//! serde stops at the first error and forgets positions, but validation must report every
//! problem with its line and column (SPEC §1.1). So the config is read as a position-aware
//! tree first, and decoded from that tree by `decode`.

use std::collections::HashMap;
use std::fmt;

use saphyr_parser::{Event, Parser, ScalarStyle, Span};

/// A place in the config file, 1-based like editors show it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default)]
pub struct Position {
    /// Line, starting at 1.
    pub line: usize,
    /// Column, starting at 1.
    pub column: usize,
}

impl fmt::Display for Position {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.line, self.column)
    }
}

impl From<Span> for Position {
    fn from(span: Span) -> Self {
        Self {
            line: span.start.line(),
            column: span.start.col() + 1,
        }
    }
}

/// A YAML value with the position it starts at.
#[derive(Debug, Clone, PartialEq)]
pub struct Node {
    /// Where the value starts.
    pub position: Position,
    /// The value.
    pub value: Value,
}

/// The shape of a YAML value. Scalars stay text: each field decides how to read its text,
/// after environment expansion (so `apiPort: ${PORT}` works).
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// Text; `plain` is false for quoted and block scalars, whose text is never null.
    Scalar {
        /// The scalar's text.
        text: String,
        /// Whether it was written without quotes.
        plain: bool,
    },
    /// `- a` items.
    Sequence(Vec<Node>),
    /// `key: value` entries in file order; keys are kept as nodes for their positions.
    Mapping(Vec<(Node, Node)>),
}

impl Node {
    /// YAML's null: an absent value, `~` or `null`, written without quotes.
    #[must_use]
    pub fn is_null(&self) -> bool {
        matches!(&self.value, Value::Scalar { text, plain: true } if matches!(text.as_str(), "" | "~" | "null" | "Null" | "NULL"))
    }

    /// A word for the kind of value, for "expected X, found Y" messages.
    #[must_use]
    pub fn kind_name(&self) -> &'static str {
        match self.value {
            _ if self.is_null() => "nothing",
            Value::Scalar { .. } => "a single value",
            Value::Sequence(_) => "a list",
            Value::Mapping(_) => "a mapping",
        }
    }
}

/// The file is not well-formed YAML, or uses YAML features a config has no use for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyntaxError {
    /// Where the parser stopped.
    pub position: Position,
    /// The parser's explanation.
    pub message: String,
}

/// Parses one YAML document. `Ok(None)` means the text holds no document at all.
pub fn parse(text: &str) -> Result<Option<Node>, SyntaxError> {
    let mut builder = Builder::default();
    for event in Parser::new_from_str(text) {
        let (event, span) = event.map_err(|e| SyntaxError {
            position: Position {
                line: e.marker().line(),
                column: e.marker().col() + 1,
            },
            message: e.info().to_owned(),
        })?;
        builder.push(event, span)?;
    }
    Ok(builder.document)
}

/// The most nodes aliases may add to a document by copying what their anchors hold. Each
/// alias is a copy, so nested anchors grow exponentially ("billion laughs": nine levels of
/// nine aliases are 9^9 nodes from a few hundred bytes); a real config's shared settings
/// stay far below this.
pub const MAX_ALIAS_NODES: usize = 10_000;

/// Folds the parser's events into a tree, resolving aliases and `<<` merge keys.
#[derive(Default)]
struct Builder {
    /// Open sequences and mappings, innermost last.
    stack: Vec<Frame>,
    /// Finished anchored nodes with their node counts, for aliases to copy.
    anchors: HashMap<usize, (Node, usize)>,
    /// Nodes added by aliases so far, bounded by [`MAX_ALIAS_NODES`].
    alias_nodes: usize,
    document: Option<Node>,
    /// Documents seen so far: a config is exactly one.
    documents: usize,
}

/// A sequence or mapping still being filled.
struct Frame {
    node: Node,
    /// Anchor id to register the finished node under (0: none).
    anchor: usize,
    /// In a mapping, a key whose value has not arrived yet (events come key, value, key, …).
    pending_key: Option<Node>,
    /// Nodes in this one so far, itself included: what an alias of it costs.
    size: usize,
}

impl Builder {
    fn push(&mut self, event: Event<'_>, span: Span) -> Result<(), SyntaxError> {
        let position = Position::from(span);
        let unsupported = |what: &str| SyntaxError {
            position,
            message: format!("{what} are not supported in the Marina config"),
        };
        match event {
            Event::DocumentStart(_) => {
                self.documents += 1;
                if self.documents > 1 {
                    return Err(SyntaxError {
                        position,
                        message: "the config file must hold a single YAML document".into(),
                    });
                }
            }
            Event::Scalar(text, style, anchor, tag) => {
                if tag.as_ref().is_some_and(|t| t.handle != "!!") {
                    return Err(unsupported("custom YAML tags"));
                }
                let node = Node {
                    position,
                    value: Value::Scalar {
                        text: text.into_owned(),
                        plain: style == ScalarStyle::Plain && tag.is_none(),
                    },
                };
                self.complete(node, anchor, 1);
            }
            Event::SequenceStart(anchor, ref tag) | Event::MappingStart(anchor, ref tag) => {
                if tag.as_ref().is_some_and(|t| t.handle != "!!") {
                    return Err(unsupported("custom YAML tags"));
                }
                let value = if matches!(event, Event::SequenceStart(..)) {
                    Value::Sequence(Vec::new())
                } else {
                    Value::Mapping(Vec::new())
                };
                self.stack.push(Frame {
                    node: Node { position, value },
                    anchor,
                    pending_key: None,
                    size: 1,
                });
            }
            Event::SequenceEnd | Event::MappingEnd => {
                if let Some(Frame {
                    mut node,
                    anchor,
                    size,
                    ..
                }) = self.stack.pop()
                {
                    if let Value::Mapping(entries) = &mut node.value {
                        resolve_merge_keys(entries);
                    }
                    self.complete(node, anchor, size);
                }
            }
            Event::Alias(id) => {
                let (node, size) = self.anchors.get(&id).ok_or_else(|| SyntaxError {
                    position,
                    message: "alias refers to an unknown anchor".into(),
                })?;
                // Counted before copying, so an exponential document is refused before it
                // takes the memory.
                self.alias_nodes = self.alias_nodes.saturating_add(*size);
                if self.alias_nodes > MAX_ALIAS_NODES {
                    return Err(SyntaxError {
                        position,
                        message: format!(
                            "the document expands aliases into more than {MAX_ALIAS_NODES} nodes; YAML anchors this deep are not supported"
                        ),
                    });
                }
                let (node, size) = (node.clone(), *size);
                self.complete(node, 0, size);
            }
            Event::Nothing | Event::StreamStart | Event::StreamEnd | Event::DocumentEnd => {}
        }
        Ok(())
    }

    /// Attaches a finished node of `size` nodes to its parent (or makes it the document).
    fn complete(&mut self, node: Node, anchor: usize, size: usize) {
        if anchor != 0 {
            self.anchors.insert(anchor, (node.clone(), size));
        }
        let Some(frame) = self.stack.last_mut() else {
            self.document = Some(node);
            return;
        };
        frame.size = frame.size.saturating_add(size);
        match &mut frame.node.value {
            Value::Sequence(items) => items.push(node),
            Value::Mapping(entries) => match frame.pending_key.take() {
                Some(key) => entries.push((key, node)),
                None => frame.pending_key = Some(node),
            },
            Value::Scalar { .. } => {}
        }
    }
}

/// Applies YAML merge keys (`<<: *defaults`): entries of the merged mapping(s) are added where
/// the mapping does not set them itself, so shared instance settings can be written once.
fn resolve_merge_keys(entries: &mut Vec<(Node, Node)>) {
    let is_merge =
        |key: &Node| matches!(&key.value, Value::Scalar { text, plain: true } if text == "<<");
    if !entries.iter().any(|(key, _)| is_merge(key)) {
        return;
    }
    let (merges, mut own): (Vec<_>, Vec<_>) = entries.drain(..).partition(|(key, _)| is_merge(key));
    for (key, value) in merges {
        let sources = match value.value {
            Value::Mapping(inner) => vec![inner],
            Value::Sequence(items) => items
                .into_iter()
                .filter_map(|item| match item.value {
                    Value::Mapping(inner) => Some(inner),
                    _ => None,
                })
                .collect(),
            // Not a mapping: keep it so decoding reports `<<` as an unknown key.
            Value::Scalar { .. } => {
                own.push((key, value));
                continue;
            }
        };
        for (inner_key, inner_value) in sources.into_iter().flatten() {
            let taken = own.iter().any(|(k, _)| k.value == inner_key.value);
            if !taken {
                own.push((inner_key, inner_value));
            }
        }
    }
    *entries = own;
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scalar(node: &Node) -> &str {
        match &node.value {
            Value::Scalar { text, .. } => text,
            other => panic!("expected a scalar, got {other:?}"),
        }
    }

    #[test]
    fn nodes_carry_one_based_positions() {
        let doc = parse("a: 1\nlist:\n  - x\n  - {b: 'y'}\n")
            .unwrap()
            .unwrap();
        let Value::Mapping(entries) = &doc.value else {
            panic!()
        };
        assert_eq!(entries[0].1.position, Position { line: 1, column: 4 });
        let Value::Sequence(items) = &entries[1].1.value else {
            panic!()
        };
        assert_eq!(items[0].position, Position { line: 3, column: 5 });
        let Value::Mapping(inner) = &items[1].value else {
            panic!()
        };
        assert_eq!(inner[0].0.position, Position { line: 4, column: 6 });
        assert_eq!(scalar(&inner[0].1), "y");
        assert!(matches!(
            inner[0].1.value,
            Value::Scalar { plain: false, .. }
        ));
    }

    #[test]
    fn empty_values_are_null() {
        let doc = parse("a:\nb: ~\nc: ''\n").unwrap().unwrap();
        let Value::Mapping(entries) = &doc.value else {
            panic!()
        };
        assert!(entries[0].1.is_null());
        assert!(entries[1].1.is_null());
        assert!(!entries[2].1.is_null());
    }

    #[test]
    fn aliases_and_merge_keys_resolve() {
        let text = "base: &b {x: 1, y: 2}\nitem:\n  <<: *b\n  y: 3\nother: *b\n";
        let doc = parse(text).unwrap().unwrap();
        let Value::Mapping(entries) = &doc.value else {
            panic!()
        };
        let Value::Mapping(item) = &entries[1].1.value else {
            panic!()
        };
        let pairs: Vec<(&str, &str)> = item.iter().map(|(k, v)| (scalar(k), scalar(v))).collect();
        assert_eq!(pairs, [("y", "3"), ("x", "1")]);
        assert_eq!(entries[2].1.value, entries[0].1.value);
    }

    /// Nine levels of nine aliases each: 9^9 nodes if expanded.
    const BILLION_LAUGHS: &str =
        "a: &a [\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\"]
b: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a]
c: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b]
d: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c]
e: &e [*d,*d,*d,*d,*d,*d,*d,*d,*d]
f: &f [*e,*e,*e,*e,*e,*e,*e,*e,*e]
g: &g [*f,*f,*f,*f,*f,*f,*f,*f,*f]
h: &h [*g,*g,*g,*g,*g,*g,*g,*g,*g]
i: &i [*h,*h,*h,*h,*h,*h,*h,*h,*h]
";

    #[test]
    fn exponential_aliases_are_refused_before_they_expand() {
        let err = parse(BILLION_LAUGHS).unwrap_err();
        assert_eq!(
            err.message,
            "the document expands aliases into more than 10000 nodes; YAML anchors this deep are not supported"
        );
        // The alias that crosses the limit: 9 + 9·10 + 9·91 + … passes 10 000 on line 5.
        assert_eq!(err.position.line, 5, "{err:?}");
    }

    #[test]
    fn aliases_up_to_the_limit_are_expanded() {
        // One anchor of 10 nodes (the list and its items) aliased 1000 times: exactly the
        // limit.
        let list = format!("[{}]", ["x"; 9].join(","));
        let aliases = vec!["*a"; 1000].join(",");
        let doc = parse(&format!(
            "a: &a {list}
b: [{aliases}]
"
        ))
        .unwrap()
        .unwrap();
        let Value::Mapping(entries) = &doc.value else {
            panic!()
        };
        let Value::Sequence(items) = &entries[1].1.value else {
            panic!()
        };
        assert_eq!(items.len(), 1000);
        assert_eq!(items[999].value, entries[0].1.value);
        let one_more = format!(
            "a: &a {list}
b: [{aliases},*a]
"
        );
        assert!(parse(&one_more).is_err());
    }

    #[test]
    fn syntax_errors_have_a_position() {
        let err = parse("a: [1, 2\nb: 3\n").unwrap_err();
        assert!(err.position.line >= 1, "{err:?}");
        let err = parse("a: 1\n---\nb: 2\n").unwrap_err();
        assert_eq!(
            err.message,
            "the config file must hold a single YAML document"
        );
        assert_eq!(parse("").unwrap(), None);
        assert_eq!(parse("# only a comment\n").unwrap(), None);
    }
}
