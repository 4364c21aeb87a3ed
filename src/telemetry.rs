//! Logging setup. Log lines put structured fields first, then a sentence; ERROR means a
//! person must act, WARN means Marina recovered and nothing was lost.
//!
//! Facts that are both logged and counted (job ends, config reloads, Docker stream restarts…)
//! are typed events in [`crate::metrics::events`], so each is logged and counted in one place.

use std::io::IsTerminal;

use tracing_subscriber::filter::LevelFilter;
use tracing_subscriber::prelude::*;
use tracing_subscriber::{EnvFilter, fmt};

use crate::store::{LogLayer, Store};

/// Installs the global subscriber: human-readable lines on stderr (JSON lines when
/// `MARINA_LOG_FORMAT=json`), filtered by `MARINA_LOG` (default `info`, in `tracing` filter
/// syntax such as `marina=debug,info`); and, with a `store`, every INFO-or-above event into
/// the job store — a job's events (inside its `job` span) into that job's log, the rest into
/// the system log.
pub fn init(store: Option<Store>) {
    let filter = EnvFilter::try_from_env("MARINA_LOG").unwrap_or_else(|_| EnvFilter::new("info"));
    let json = std::env::var("MARINA_LOG_FORMAT").is_ok_and(|f| f.eq_ignore_ascii_case("json"));
    let console = if json {
        fmt::layer().json().with_writer(std::io::stderr).boxed()
    } else {
        fmt::layer()
            .with_writer(std::io::stderr)
            .with_ansi(std::io::stderr().is_terminal())
            .boxed()
    };
    let stored = store.map(|store| LogLayer::new(store).with_filter(LevelFilter::INFO));
    // Ignore the error of a second initialisation (tests may call this more than once).
    let _ = tracing_subscriber::registry()
        .with(console.with_filter(filter))
        .with(stored)
        .try_init();
}
