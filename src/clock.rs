//! The only reader of time.
//!
//! Everything else takes `now` as an argument (DESIGN.md: "time is an input"), so tests can
//! drive time and `reconcile` stays a pure function. `clippy.toml` bans the clock-reading
//! functions everywhere but here.

use chrono::{DateTime, TimeDelta, Utc};

/// The current wall-clock time in UTC.
#[must_use]
#[allow(clippy::disallowed_methods)] // This module is the one sanctioned reader of the clock.
pub fn now() -> DateTime<Utc> {
    Utc::now()
}

/// A source of wall-clock time for long-running tasks. The system clock in production; in
/// tests, a clock that follows tokio's (pausable) time so `tokio::time::advance` moves it.
#[derive(Debug, Clone, Copy)]
pub enum Clock {
    /// The real wall clock.
    System,
    /// Wall time that starts at `start` and advances with tokio's clock.
    Virtual {
        /// The wall time when the clock was made.
        start: DateTime<Utc>,
        /// tokio's time when the clock was made.
        anchor: tokio::time::Instant,
    },
}

impl Clock {
    /// A clock starting at `start` and moving with tokio time (use with `tokio::time::pause`).
    #[must_use]
    #[allow(clippy::disallowed_methods)] // Anchoring to tokio's clock is what makes it virtual.
    pub fn virtual_at(start: DateTime<Utc>) -> Self {
        Self::Virtual {
            start,
            anchor: tokio::time::Instant::now(),
        }
    }

    /// The current wall-clock time.
    #[must_use]
    #[allow(clippy::disallowed_methods)] // This module is the one sanctioned reader of the clock.
    pub fn now(&self) -> DateTime<Utc> {
        match self {
            Self::System => now(),
            Self::Virtual { start, anchor } => {
                let elapsed = TimeDelta::from_std(anchor.elapsed()).unwrap_or(TimeDelta::MAX);
                *start + elapsed
            }
        }
    }

    /// tokio's monotonic time, for deadlines and measuring durations.
    #[must_use]
    #[allow(clippy::disallowed_methods)] // This module is the one sanctioned reader of the clock.
    pub fn instant(&self) -> tokio::time::Instant {
        tokio::time::Instant::now()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn a_virtual_clock_moves_with_tokio_time() {
        let start = DateTime::parse_from_rfc3339("2027-03-28T00:30:00Z")
            .unwrap()
            .to_utc();
        let clock = Clock::virtual_at(start);
        assert_eq!(clock.now(), start);
        tokio::time::advance(std::time::Duration::from_secs(90)).await;
        assert_eq!(clock.now(), start + TimeDelta::seconds(90));
    }
}
