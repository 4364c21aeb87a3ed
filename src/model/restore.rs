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
///
/// The request is read before anyone knows which backend the instance has, so every form
/// either backend accepts parses here; the restore's plan then refuses a [`Self::Named`]
/// choice for a restic instance, whose snapshot ids stay strictly hex.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum SnapshotChoice {
    /// The newest snapshot of the target, on any node that shares the repository (for a
    /// custom image: whatever the image calls its newest backup).
    Latest,
    /// A snapshot id: restic's full id or a unique prefix of at least 8 hex digits.
    Id(String),
    /// A custom image's own name for one of its backups (an archive name, a timestamp…),
    /// handed to the image as it was given. Not a restic snapshot.
    Named(String),
}

impl SnapshotChoice {
    /// The shortest id prefix accepted: restic's own short ids have 8 digits.
    pub const MIN_ID_LENGTH: usize = 8;

    /// The longest name of a custom image's backup accepted.
    pub const MAX_NAME_LENGTH: usize = 128;

    /// The words that say what a snapshot may be, for messages.
    pub const FORMS: &str = "`latest`, a restic snapshot id (8 to 64 lowercase hex digits, as `marina snapshots` lists them), or for a custom-image instance the name of one of its image's backups (up to 128 of A-Z a-z 0-9 . _ : -)";

    /// Reads `latest`, a snapshot id, or a custom image's backup name.
    pub fn parse(text: &str) -> Result<Self, String> {
        if text == "latest" {
            return Ok(Self::Latest);
        }
        let hex = text
            .chars()
            .all(|c| c.is_ascii_digit() || ('a'..='f').contains(&c));
        if hex && (Self::MIN_ID_LENGTH..=64).contains(&text.len()) {
            return Ok(Self::Id(text.to_owned()));
        }
        if Self::is_name(text) {
            return Ok(Self::Named(text.to_owned()));
        }
        Err(format!("snapshot {text:?} is none of {}", Self::FORMS))
    }

    /// Whether `text` is a possible name of a custom image's backup: 1 to 128 characters of
    /// `A-Z a-z 0-9 . _ : -`, so that it is safe in an environment variable, a file name
    /// and a log line alike.
    #[must_use]
    pub fn is_name(text: &str) -> bool {
        (1..=Self::MAX_NAME_LENGTH).contains(&text.len())
            && text
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | ':' | '-'))
    }

    /// Whether `id` (a full snapshot id) is this choice; `Latest` and a name match nothing
    /// by id.
    #[must_use]
    pub fn matches(&self, id: &str) -> bool {
        match self {
            Self::Latest | Self::Named(_) => false,
            Self::Id(prefix) => id.starts_with(prefix.as_str()),
        }
    }
}

impl fmt::Display for SnapshotChoice {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Latest => f.write_str("latest"),
            Self::Id(id) | Self::Named(id) => f.write_str(id),
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
///
/// Every field but `id` is `None` in the plan of a custom-image instance: the image alone
/// knows its backups, and nothing about the one asked for is known before the image runs
/// ([`RestorePoint::asked`]). A restic snapshot has them all but `files` and `bytes`, which
/// are there once counted.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RestorePoint {
    /// restic's full snapshot id; for a custom image, the snapshot as asked (`latest` or
    /// the image's own name of a backup).
    pub id: String,
    /// Its first 8 digits, as restic shows it.
    pub short_id: Option<String>,
    /// When the backup was taken.
    pub time: Option<DateTime<Utc>>,
    /// The node that took it (restic's host).
    pub host: Option<String>,
    /// The target it holds, from its tags; `None` for a snapshot without a target tag.
    pub target: Option<String>,
    /// Every tag.
    pub tags: Option<Vec<String>>,
    /// The paths it holds (a dump's file name for a database).
    pub paths: Option<Vec<String>>,
    /// Files it restores, when known (restic ≥ 0.17 records it; else `marina restore
    /// --dry-run` counts).
    pub files: Option<u64>,
    /// Bytes it restores, when known.
    pub bytes: Option<u64>,
    /// Whether an in-place restore saved it of what it replaced.
    pub pre_restore: Option<bool>,
}

impl RestorePoint {
    /// A backup known only by what the operator asked for: a custom image's, which the
    /// image looks up itself when it runs.
    #[must_use]
    pub fn asked(choice: &SnapshotChoice) -> Self {
        Self {
            id: choice.to_string(),
            short_id: None,
            time: None,
            host: None,
            target: None,
            tags: None,
            paths: None,
            files: None,
            bytes: None,
            pre_restore: None,
        }
    }
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
    /// Files the snapshot restores (directories and links count too); `None` when it is not
    /// known before the restore runs (a custom image's backup).
    pub files: Option<u64>,
    /// Bytes the snapshot restores; `None` as for `files`.
    pub bytes: Option<u64>,
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
    fn snapshot_choices_are_latest_hex_ids_or_names() {
        assert_eq!(SnapshotChoice::parse("latest"), Ok(SnapshotChoice::Latest));
        assert_eq!(
            SnapshotChoice::parse("0123abcd"),
            Ok(SnapshotChoice::Id("0123abcd".into()))
        );
        // Not restic ids, so names a custom image may give its backups; a restic
        // instance's plan refuses them.
        for name in [
            "Latest",
            "0123abc",
            "0123ABCD",
            "0123abcg",
            &"a".repeat(65),
            "app-node1-20270328T020000Z.tar.gz",
            "20270328T020000Z-pre-restore",
            "s3:bucket.v2_x",
            &"n".repeat(128),
        ] {
            assert_eq!(
                SnapshotChoice::parse(name),
                Ok(SnapshotChoice::Named(name.to_owned())),
                "{name:?}"
            );
        }
        for bad in ["", "a b", "../etc", "a/b", "x$(id)", "ä", &"n".repeat(129)] {
            let error = SnapshotChoice::parse(bad).unwrap_err();
            assert!(error.contains("`latest`"), "{bad:?}: {error}");
        }
        assert!(
            SnapshotChoice::parse("0123abcd")
                .unwrap()
                .matches("0123abcdef99")
        );
        assert!(!SnapshotChoice::Latest.matches("0123abcdef99"));
        assert!(!SnapshotChoice::Named("0123abcdef99".into()).matches("0123abcdef99"));
        assert_eq!(
            SnapshotChoice::Named("a-1".into()).to_string(),
            "a-1",
            "a name is handed on as it was given"
        );
    }

    #[test]
    fn an_asked_point_knows_only_its_id() {
        let point = RestorePoint::asked(&SnapshotChoice::Named("app-20270101T000000Z".into()));
        let json = serde_json::to_value(&point).unwrap();
        assert_eq!(json["id"], "app-20270101T000000Z");
        for field in [
            "shortId",
            "time",
            "host",
            "target",
            "tags",
            "paths",
            "files",
            "bytes",
            "preRestore",
        ] {
            assert!(json[field].is_null(), "{field}: {json}");
        }
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
            r#"{"target": "volume:data", "snapshot": "last week"}"#,
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
