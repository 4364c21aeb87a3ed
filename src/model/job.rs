//! The vocabulary of jobs, shared by the stages that queue, run, record and show them: a
//! job's id, its status and the transitions between statuses, the kind of work it does, why
//! it was queued, and what is known about an instance's past jobs. The store writes these
//! words, the reconciler decides with them, the API shows them; none of them owns them.

use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, Utc};
use serde::Serialize;

/// Global id of a job (`jobs.id`), unique across instances; the API calls it `id` and the
/// log rows `jobStatusId`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(transparent)]
pub struct JobId(pub i64);

impl fmt::Display for JobId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// A text value in the store that no variant matches: a newer Marina wrote it, or the file
/// was edited by hand.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown {what} `{value}`")]
pub struct UnknownWord {
    /// Which vocabulary was expected ("job status", "log level", …).
    pub what: &'static str,
    /// The text found.
    pub value: String,
}

impl UnknownWord {
    /// The one of `words` that `word` spells as `text`; else the error saying that a `what`
    /// was expected.
    pub(crate) fn find<T: Copy>(
        words: &[T],
        word: fn(T) -> &'static str,
        what: &'static str,
        text: &str,
    ) -> Result<T, Self> {
        words
            .iter()
            .copied()
            .find(|candidate| word(*candidate) == text)
            .ok_or_else(|| Self {
                what,
                value: text.to_owned(),
            })
    }
}

/// Where a job is in its life (SPEC §3): `scheduled` → `in_progress` → one terminal status.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum JobStatus {
    /// Created, waiting for the executor.
    Scheduled,
    /// Running.
    InProgress,
    /// Every target was shipped.
    Success,
    /// At least one target failed; the others were shipped.
    PartialSuccess,
    /// Nothing was shipped, or the job failed as a whole.
    Failed,
    /// Interrupted by a shutdown or a crash.
    Aborted,
    /// The instance's `timeout` ran out.
    TimedOut,
}

impl JobStatus {
    /// Every status, in lifecycle order.
    pub const ALL: [Self; 7] = [
        Self::Scheduled,
        Self::InProgress,
        Self::Success,
        Self::PartialSuccess,
        Self::Failed,
        Self::Aborted,
        Self::TimedOut,
    ];

    /// The SPEC's word for it, as stored and shown.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Scheduled => "scheduled",
            Self::InProgress => "in_progress",
            Self::Success => "success",
            Self::PartialSuccess => "partial_success",
            Self::Failed => "failed",
            Self::Aborted => "aborted",
            Self::TimedOut => "timed_out",
        }
    }

    /// Whether the job is over; a terminal status never changes again.
    #[must_use]
    pub fn is_terminal(self) -> bool {
        !self.is_active()
    }

    /// Whether the job still waits or runs (the API's `isActive`).
    #[must_use]
    pub fn is_active(self) -> bool {
        matches!(self, Self::Scheduled | Self::InProgress)
    }

    /// Whether a job in this status may be moved to `next`. Staying in a non-terminal status
    /// is allowed (it only updates the message); nothing leaves a terminal status, and
    /// nothing goes back to `scheduled`, so a late or duplicated update cannot rewrite a
    /// recorded outcome.
    #[must_use]
    pub fn can_become(self, next: Self) -> bool {
        match (self, next) {
            (Self::Scheduled, _) => true,
            (Self::InProgress, next) => next != Self::Scheduled,
            _ => false,
        }
    }
}

impl fmt::Display for JobStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for JobStatus {
    type Err = UnknownWord;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        UnknownWord::find(&Self::ALL, Self::as_str, "job status", s)
    }
}

/// The kind of work a job does. Every kind runs through the executor's shared job runner
/// (status, journal and undo-work, log, cancellation); only its body differs. Verify (restore
/// drills) and repository maintenance are to follow, each as a kind of its own.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum JobKind {
    /// Copies the instance's targets into its backend (SPEC §3).
    Backup,
    /// Brings one target's data back from a snapshot, beside the original or in its place.
    Restore,
}

impl JobKind {
    /// Every kind.
    pub const ALL: [Self; 2] = [Self::Backup, Self::Restore];

    /// Its word, as shown.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Backup => "backup",
            Self::Restore => "restore",
        }
    }
}

impl fmt::Display for JobKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for JobKind {
    type Err = UnknownWord;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        UnknownWord::find(&Self::ALL, Self::as_str, "job kind", s)
    }
}

/// Why a job was queued.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum Trigger {
    /// Its schedule came due.
    Schedule,
    /// A run was missed while Marina was down (SPEC §5).
    CatchUp,
    /// An operator asked for it.
    Manual,
}

/// What is known about an instance's past jobs; seeded from the job store at start-up and
/// updated as jobs finish.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct History {
    /// The last successful backup's end.
    pub last_success: Option<DateTime<Utc>>,
    /// The last job's end and whether it succeeded.
    pub last_finished: Option<(DateTime<Utc>, bool)>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn job_kinds_read_back_as_written() {
        for kind in JobKind::ALL {
            assert_eq!(kind.to_string().parse::<JobKind>(), Ok(kind));
        }
        assert_eq!(JobKind::Backup.as_str(), "backup");
        assert_eq!(
            serde_json::to_string(&JobKind::Backup).unwrap(),
            r#""backup""#
        );
        assert_eq!(JobKind::Restore.as_str(), "restore");
        assert_eq!(
            "verify".parse::<JobKind>(),
            Err(UnknownWord {
                what: "job kind",
                value: "verify".into()
            })
        );
    }
}
