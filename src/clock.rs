//! The only reader of time.
//!
//! Everything else takes `now` as an argument (DESIGN.md: "time is an input"), so tests can
//! drive time and `reconcile` stays a pure function. `clippy.toml` bans the clock-reading
//! functions everywhere but here.

use chrono::{DateTime, Utc};

/// The current wall-clock time in UTC.
#[must_use]
#[allow(clippy::disallowed_methods)] // This module is the one sanctioned reader of the clock.
pub fn now() -> DateTime<Utc> {
    Utc::now()
}
