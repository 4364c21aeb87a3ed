//! Whole files — arbitrary text, YAML-ish text from a small grammar, config-shaped text —
//! always get diagnostics that point into the text and name their field.

use super::*;

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
