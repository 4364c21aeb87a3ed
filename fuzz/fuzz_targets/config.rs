//! Any bytes as a config file: the loader must answer with a config or diagnostics, never
//! panic, and every diagnostic about the file must point inside it.
#![no_main]

use libfuzzer_sys::fuzz_target;
use marina::config::{self, Environment};

/// A fixed environment, so a run is reproducible: a few variables the fuzzer may reference.
struct FakeEnv;

impl Environment for FakeEnv {
    fn var(&self, name: &str) -> Option<String> {
        match name {
            "HOME" => Some("/root".into()),
            "EMPTY" => Some(String::new()),
            "PORT" => Some("8081".into()),
            "PASS" => Some("s3cr$t".into()),
            "TZ" => Some("Europe/Berlin".into()),
            _ => None,
        }
    }

    fn hostname(&self) -> Option<String> {
        Some("fuzz-host".into())
    }
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Err(error) = config::load_str(text, "fuzz.yml", &FakeEnv) else {
        return;
    };
    // Line lengths in characters, with YAML's line breaks (`\r\n`, `\r`, `\n`).
    let lengths: Vec<usize> = text
        .replace("\r\n", "\n")
        .split(['\n', '\r'])
        .map(|line| line.chars().count())
        .collect();
    assert!(
        error
            .diagnostics
            .iter()
            .any(|d| d.severity == config::Severity::Error),
        "rejected without an error"
    );
    for diagnostic in &error.diagnostics {
        let Some(position) = diagnostic.position else {
            assert!(
                diagnostic.severity == config::Severity::Warning,
                "an error without a position: {diagnostic}"
            );
            continue;
        };
        assert!(
            position.line >= 1
                && position.column >= 1
                && position.line <= lengths.len()
                && position.column <= lengths[position.line - 1] + 1,
            "{diagnostic} is outside the text"
        );
    }
});
