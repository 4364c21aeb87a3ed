//! What an operator asks a restore for: which target, from which snapshot, and where to. The
//! request is kept in the restore job's record, so the job, its log and the API all tell the
//! same story, and a job recovered after a crash knows what it was doing.

use std::fmt;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::ids::{DockerName, InstanceId, TargetId};

/// The tag of the snapshot an in-place restore saves of what it replaces, so that the
/// restore itself can be undone.
pub const PRE_RESTORE_TAG: &str = "marina:pre-restore";

/// Which snapshot to restore.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum SnapshotChoice {
    /// The newest snapshot of the target, on any node that shares the repository.
    Latest,
    /// A snapshot id: restic's full id or a unique prefix of at least 8 hex digits.
    Id(String),
}

impl SnapshotChoice {
    /// The shortest id prefix accepted: restic's own short ids have 8 digits.
    pub const MIN_ID_LENGTH: usize = 8;

    /// Reads `latest` or a snapshot id.
    pub fn parse(text: &str) -> Result<Self, String> {
        if text == "latest" {
            return Ok(Self::Latest);
        }
        let hex = text
            .chars()
            .all(|c| c.is_ascii_digit() || ('a'..='f').contains(&c));
        if hex && (Self::MIN_ID_LENGTH..=64).contains(&text.len()) {
            Ok(Self::Id(text.to_owned()))
        } else {
            Err(format!(
                "snapshot {text:?} is neither `latest` nor a snapshot id (8 to 64 lowercase hex digits, as `marina snapshots` lists them)"
            ))
        }
    }

    /// Whether `id` (a full snapshot id) is this choice; `Latest` matches nothing by id.
    #[must_use]
    pub fn matches(&self, id: &str) -> bool {
        match self {
            Self::Latest => false,
            Self::Id(prefix) => id.starts_with(prefix.as_str()),
        }
    }
}

impl fmt::Display for SnapshotChoice {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Latest => f.write_str("latest"),
            Self::Id(id) => f.write_str(id),
        }
    }
}

impl Serialize for SnapshotChoice {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for SnapshotChoice {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        Self::parse(&text).map_err(serde::de::Error::custom)
    }
}

/// A restore as asked for (CLI `marina restore`, `POST /api/instances/{id}/restore`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RestoreRequest {
    /// The target whose data comes back.
    pub target: TargetId,
    /// The snapshot to restore; `latest` unless said.
    #[serde(default = "latest")]
    pub snapshot: SnapshotChoice,
    /// The name of the new volume or container to restore into; a default is made from the
    /// target's name and the time when `None`. Not with `in_place`.
    #[serde(default)]
    pub to: Option<DockerName>,
    /// Replace the target's own data instead of restoring beside it.
    #[serde(default)]
    pub in_place: bool,
}

fn latest() -> SnapshotChoice {
    SnapshotChoice::Latest
}

impl RestoreRequest {
    /// Refuses a request that contradicts itself.
    pub fn check(&self) -> Result<(), String> {
        if self.in_place && self.to.is_some() {
            return Err(format!(
                "`to` ({}) and `inPlace` exclude each other: an in-place restore replaces {} itself",
                self.to.as_ref().map_or("", DockerName::as_str),
                self.target
            ));
        }
        Ok(())
    }

    /// Where the data goes, in words: `in place` or `into <name>`.
    #[must_use]
    pub fn destination(&self) -> String {
        match (&self.to, self.in_place) {
            (_, true) => "in place".to_owned(),
            (Some(to), false) => format!("into {to}"),
            (None, false) => "into a new copy".to_owned(),
        }
    }
}

/// One snapshot a target can be restored from, as `marina snapshots` lists it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RestorePoint {
    /// restic's full snapshot id.
    pub id: String,
    /// Its first 8 digits, as restic shows it.
    pub short_id: String,
    /// When the backup was taken.
    pub time: DateTime<Utc>,
    /// The node that took it (restic's host).
    pub host: String,
    /// The target it holds, from its tags; `None` for a snapshot without a target tag.
    pub target: Option<String>,
    /// Every tag.
    pub tags: Vec<String>,
    /// The paths it holds (a dump's file name for a database).
    pub paths: Vec<String>,
    /// Files it restores, when known (restic ≥ 0.17 records it; else `marina restore
    /// --dry-run` counts).
    pub files: Option<u64>,
    /// Bytes it restores, when known.
    pub bytes: Option<u64>,
    /// Whether an in-place restore saved it of what it replaced.
    pub pre_restore: bool,
}

/// One step a restore takes, in order, as its dry run shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RestoreStep {
    /// What is done: `create volume`, `stop container`, `save safety snapshot`, …
    pub action: &'static str,
    /// To what: a volume, container or path.
    pub subject: String,
}

impl fmt::Display for RestoreStep {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.action, self.subject)
    }
}

/// What a restore would do, decided before it changes anything.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RestorePlan {
    /// Whose repository.
    pub instance: InstanceId,
    /// The target restored.
    pub target: TargetId,
    /// The snapshot restored, `latest` resolved.
    pub snapshot: RestorePoint,
    /// Whether the target's own data is replaced.
    pub in_place: bool,
    /// The volume or container the data goes into.
    pub destination: DockerName,
    /// Files the snapshot restores (directories and links count too).
    pub files: u64,
    /// Bytes the snapshot restores.
    pub bytes: u64,
    /// The steps, in order.
    pub steps: Vec<RestoreStep>,
    /// Why it cannot run as asked; empty when it can.
    pub conflicts: Vec<String>,
}

/// A question about an instance's restore points that needs its repository or Docker.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RestoreQuestion {
    /// The snapshots of the instance, of one target or of all.
    Snapshots {
        /// Only this target's.
        target: Option<TargetId>,
        /// Count what each restores where restic did not record it (a restic run each).
        count: bool,
    },
    /// What this restore would do.
    Plan(RestoreRequest),
}

/// The answer to a [`RestoreQuestion`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RestoreAnswer {
    /// Newest first.
    Snapshots(Vec<RestorePoint>),
    /// The plan.
    Plan(Box<RestorePlan>),
}

/// Why a question or a restore is refused, for the API's status code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RefusalKind {
    /// Unknown instance, target or snapshot.
    NotFound,
    /// The request cannot be carried out as asked (a snapshot of another target, a custom
    /// image without a restore contract…).
    Invalid,
    /// The destination exists or something else is in the way.
    Conflict,
    /// Marina or the repository cannot answer now.
    Unavailable,
}

/// A refusal with a message for the operator.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    /// Which kind.
    pub kind: RefusalKind,
    /// What is wrong and what to do.
    pub message: String,
}

impl Refusal {
    /// A refusal of `kind`.
    pub fn new(kind: RefusalKind, message: impl Into<String>) -> Self {
        Self {
            kind,
            message: message.into(),
        }
    }
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn snapshot_choices_are_latest_or_hex_ids() {
        assert_eq!(SnapshotChoice::parse("latest"), Ok(SnapshotChoice::Latest));
        assert!(SnapshotChoice::parse("0123abcd").is_ok());
        for bad in [
            "",
            "Latest",
            "0123abc",
            "0123ABCD",
            "0123abcg",
            &"a".repeat(65),
        ] {
            assert!(SnapshotChoice::parse(bad).is_err(), "{bad:?}");
        }
        assert!(
            SnapshotChoice::parse("0123abcd")
                .unwrap()
                .matches("0123abcdef99")
        );
        assert!(!SnapshotChoice::Latest.matches("0123abcdef99"));
    }

    #[test]
    fn requests_read_the_api_body_and_refuse_contradictions() {
        let request: RestoreRequest = serde_json::from_str(r#"{"target": "volume:data"}"#).unwrap();
        assert_eq!(request.snapshot, SnapshotChoice::Latest);
        assert!(!request.in_place && request.to.is_none());
        assert!(request.check().is_ok());
        let both: RestoreRequest =
            serde_json::from_str(r#"{"target": "db:pg", "to": "pg-copy", "inPlace": true}"#)
                .unwrap();
        assert!(both.check().unwrap_err().contains("exclude each other"));
        for bad in [
            r#"{"target": "data"}"#,
            r#"{"target": "volume:data", "snapshot": "yesterday"}"#,
            r#"{"target": "volume:data", "to": "a b"}"#,
            r#"{"target": "volume:data", "inplace": true}"#,
        ] {
            assert!(
                serde_json::from_str::<RestoreRequest>(bad).is_err(),
                "{bad}"
            );
        }
        let round = serde_json::to_string(&both).unwrap();
        assert_eq!(
            serde_json::from_str::<RestoreRequest>(&round).unwrap(),
            both
        );
    }
}
