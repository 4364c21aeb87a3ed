//! Logging setup. Log lines put structured fields first, then a sentence; ERROR means a
//! person must act, WARN means Marina recovered and nothing was lost.

use std::io::IsTerminal;

use tracing_subscriber::EnvFilter;

/// Installs the global subscriber: human-readable lines on stderr, or JSON lines when
/// `MARINA_LOG_FORMAT=json`. The level filter comes from `MARINA_LOG` (default `info`), in
/// `tracing` filter syntax (`marina=debug,info`).
pub fn init() {
    let filter = EnvFilter::try_from_env("MARINA_LOG").unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal());
    let json = std::env::var("MARINA_LOG_FORMAT").is_ok_and(|f| f.eq_ignore_ascii_case("json"));
    // Ignore the error of a second initialisation (tests may call this more than once).
    let _ = if json {
        builder.json().try_init()
    } else {
        builder.try_init()
    };
}
