//! What the store records: jobs, log lines and journal entries, with the exact words the
//! SPEC uses for statuses and levels (they are stored as text and shown by the API).

use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::model::{InstanceId, JobKind, RestoreRequest, Trigger};
pub use crate::model::{JobId, JobStatus, UnknownWord};

/// Id of a log row; later lines have larger ids, so it orders lines of one job even when
/// several threads wrote them within the same millisecond.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(transparent)]
pub struct LogId(pub i64);

/// Id of a journal entry, returned by `journal_add` so the caller can resolve it once the
/// action it guards has been undone.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(transparent)]
pub struct JournalId(pub i64);

impl fmt::Display for JournalId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// The stored word for a trigger, matching its JSON form (`schedule`, `catchUp`, `manual`).
#[must_use]
pub fn trigger_str(trigger: Trigger) -> &'static str {
    match trigger {
        Trigger::Schedule => "schedule",
        Trigger::CatchUp => "catchUp",
        Trigger::Manual => "manual",
    }
}

/// Reads a trigger stored by [`trigger_str`].
pub fn parse_trigger(s: &str) -> Result<Trigger, UnknownWord> {
    match s {
        "schedule" => Ok(Trigger::Schedule),
        "catchUp" => Ok(Trigger::CatchUp),
        "manual" => Ok(Trigger::Manual),
        other => Err(UnknownWord {
            what: "job trigger",
            value: other.to_owned(),
        }),
    }
}

/// One job (one instance run) as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct JobRecord {
    /// Global id.
    pub id: JobId,
    /// The instance's own sequence number: 1, 2, 3… per instance (the API's `iid`).
    pub iid: i64,
    /// Whose job.
    pub instance: InstanceId,
    /// The node that ran it, so merged peer views say where.
    pub node: String,
    /// What it does.
    pub kind: JobKind,
    /// What a restore job was asked for; `None` for other kinds.
    pub restore: Option<RestoreRequest>,
    /// Why it ran.
    pub trigger: Trigger,
    /// Where it is in its life.
    pub status: JobStatus,
    /// Targets the job set out to back up.
    pub targets_total: u32,
    /// Targets backed up so far.
    pub targets_successful: u32,
    /// When the job was created (queued for the executor).
    pub created_at: DateTime<Utc>,
    /// When it started running; `None` if it never ran.
    pub started_at: Option<DateTime<Utc>>,
    /// When it reached a terminal status.
    pub completed_at: Option<DateTime<Utc>>,
    /// The last change to this row.
    pub updated_at: DateTime<Utc>,
    /// A one-line summary for operators ("2 of 3 targets failed").
    pub message: Option<String>,
}

/// A job to record: its kind and what the kind needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NewJob {
    /// A backup, for this reason.
    Backup(Trigger),
    /// A restore an operator asked for.
    Restore(RestoreRequest),
}

impl NewJob {
    /// The job's kind.
    #[must_use]
    pub fn kind(&self) -> JobKind {
        match self {
            Self::Backup(_) => JobKind::Backup,
            Self::Restore(_) => JobKind::Restore,
        }
    }

    /// Why it runs: a restore is always asked for.
    #[must_use]
    pub fn trigger(&self) -> Trigger {
        match self {
            Self::Backup(trigger) => *trigger,
            Self::Restore(_) => Trigger::Manual,
        }
    }

    /// The request column: a restore's request as JSON.
    pub(crate) fn request_json(&self) -> Option<String> {
        match self {
            Self::Backup(_) => None,
            // A request is plain data; serialising it cannot fail.
            Self::Restore(request) => serde_json::to_string(request).ok(),
        }
    }
}

/// Severity of a log line, in the words the Go version stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum LogLevel {
    /// A person must act.
    Error,
    /// Marina recovered; nothing was lost.
    Warn,
    /// Normal progress.
    Info,
    /// Detail for debugging.
    Debug,
}

impl LogLevel {
    /// Every level, most severe first.
    pub const ALL: [Self; 4] = [Self::Error, Self::Warn, Self::Info, Self::Debug];

    /// The stored word: `ERROR`, `WARN`, `INFO` or `DEBUG`.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Error => "ERROR",
            Self::Warn => "WARN",
            Self::Info => "INFO",
            Self::Debug => "DEBUG",
        }
    }

    /// Lower is more severe; used to compare levels.
    fn rank(self) -> u8 {
        match self {
            Self::Error => 0,
            Self::Warn => 1,
            Self::Info => 2,
            Self::Debug => 3,
        }
    }

    /// Whether a line at this level passes a `min` filter (`WARN` passes `INFO`).
    #[must_use]
    pub fn is_at_least(self, min: Self) -> bool {
        self.rank() <= min.rank()
    }
}

impl fmt::Display for LogLevel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for LogLevel {
    type Err = UnknownWord;

    /// Case-insensitive, and `warning` is accepted, because query strings come from people.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s.eq_ignore_ascii_case("warning") {
            return Ok(Self::Warn);
        }
        Self::ALL
            .into_iter()
            .find(|level| level.as_str().eq_ignore_ascii_case(s))
            .ok_or_else(|| UnknownWord {
                what: "log level",
                value: s.to_owned(),
            })
    }
}

/// A log line to store: a job line when `job_id` is set, a system line otherwise.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct LogLine {
    /// When it happened. Stored with millisecond precision.
    pub ts: DateTime<Utc>,
    /// Severity.
    pub level: LogLevel,
    /// The text, fields included.
    pub message: String,
    /// The instance it concerns. For job lines the store uses the job's own instance.
    pub instance: Option<InstanceId>,
    /// The target it concerns (`volume:x`, `db:y`).
    pub target: Option<String>,
    /// The job it belongs to; `None` for a system line.
    pub job_id: Option<JobId>,
}

impl LogLine {
    /// A system line (no job, instance or target).
    #[must_use]
    pub fn system(ts: DateTime<Utc>, level: LogLevel, message: impl Into<String>) -> Self {
        Self {
            ts,
            level,
            message: message.into(),
            instance: None,
            target: None,
            job_id: None,
        }
    }

    /// A line of `job`'s log.
    #[must_use]
    pub fn job(ts: DateTime<Utc>, job: JobId, level: LogLevel, message: impl Into<String>) -> Self {
        Self {
            job_id: Some(job),
            ..Self::system(ts, level, message)
        }
    }

    /// The same line, about `instance`.
    #[must_use]
    pub fn with_instance(self, instance: InstanceId) -> Self {
        Self {
            instance: Some(instance),
            ..self
        }
    }

    /// The same line, about `target`.
    #[must_use]
    pub fn with_target(self, target: impl Into<String>) -> Self {
        Self {
            target: Some(target.into()),
            ..self
        }
    }
}

/// A stored log line as read back, with what the API shows beside it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct LogRecord {
    /// Row id; increases in insertion order.
    pub id: LogId,
    /// The line itself.
    #[serde(flatten)]
    pub line: LogLine,
    /// The job's per-instance number (the API's `jobStatusIid`), for job lines.
    pub job_iid: Option<i64>,
}

/// What a journal entry promises to undo after a crash.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum JournalKind {
    /// A container Marina stopped (`stopAttached`) and must start again; subject = container id.
    StoppedContainer,
    /// A backend or helper container Marina started and must remove; subject = container id.
    BackendContainer,
    /// A staging directory Marina created and must remove; subject = path.
    StagingDir,
    /// A volume a restore created and must remove unless the restore finished; subject =
    /// volume name.
    RestoreVolume,
    /// A database container a restore created and must remove unless the restore
    /// finished; subject = container id, detail = name.
    RestoreContainer,
}

impl JournalKind {
    /// Every kind.
    pub const ALL: [Self; 5] = [
        Self::StoppedContainer,
        Self::BackendContainer,
        Self::StagingDir,
        Self::RestoreVolume,
        Self::RestoreContainer,
    ];

    /// The stored word.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::StoppedContainer => "stopped_container",
            Self::BackendContainer => "backend_container",
            Self::StagingDir => "staging_dir",
            Self::RestoreVolume => "restore_volume",
            Self::RestoreContainer => "restore_container",
        }
    }
}

impl fmt::Display for JournalKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for JournalKind {
    type Err = UnknownWord;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|kind| kind.as_str() == s)
            .ok_or_else(|| UnknownWord {
                what: "journal kind",
                value: s.to_owned(),
            })
    }
}

/// Undo-work recorded before an action, resolved after the action was undone.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct JournalEntry {
    /// Entry id.
    pub id: JournalId,
    /// The job that did the action.
    pub job_id: JobId,
    /// What must be undone.
    pub kind: JournalKind,
    /// The container id or path it concerns.
    pub subject: String,
    /// For people reading logs: the container name, for instance.
    pub detail: String,
    /// When it was recorded.
    pub created_at: DateTime<Utc>,
    /// When it was undone; `None` while pending.
    pub resolved_at: Option<DateTime<Utc>>,
}

/// Which jobs [`Store::jobs`](super::Store::jobs) returns.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobFilter {
    /// Only this instance's jobs.
    pub instance: Option<InstanceId>,
    /// Only jobs in this status.
    pub status: Option<JobStatus>,
    /// At most this many (newest first).
    pub limit: u32,
}

impl JobFilter {
    /// The newest `limit` jobs of every instance and status.
    #[must_use]
    pub fn latest(limit: u32) -> Self {
        Self {
            instance: None,
            status: None,
            limit,
        }
    }
}
