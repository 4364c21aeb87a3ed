//! `marina snapshots` and `marina restore` against a running daemon: what the command line
//! accepts, the API's answers as types (`GET /api/instances/{id}/snapshots`,
//! `POST /api/instances/{id}/restore`, docs/openapi.yaml), and following a queued restore
//! job's log until it ends. The text people read is in [`super::restore_text`].

use std::time::Duration;

use chrono::{DateTime, Utc};
use reqwest::StatusCode;
use serde::Deserialize;
use serde_json::{Value, json};

use super::AppError;
use super::client::Daemon;
use crate::model::{DockerName, IdError, InstanceId, SnapshotChoice, TargetId};

/// How often a followed job's status and new log lines are asked for. Each poll is two small
/// requests answered from the job store, so once a second costs the daemon nothing and keeps
/// the output close to live.
const FOLLOW_INTERVAL: Duration = Duration::from_secs(1);

/// The most lines one log page asks for (the API's own default and maximum page size is
/// larger; a short page means the log is read to its end).
const LOG_PAGE: usize = 1000;

/// How many of the instance's newest jobs are searched for the followed one. Only jobs
/// created after it come before it, and a restore is followed from the moment it is queued.
const JOB_SEARCH_LIMIT: u32 = 1000;

/// A command-line argument that is not what the command needs (exit code 2, through clap).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ArgumentError {
    /// A target without its kind.
    #[error(
        "`{0}` says no kind of target; write `volume:{0}` for the Docker volume or `db:{0}` for the database in the container of that name"
    )]
    BareName(String),
    /// A target whose kind is neither `volume` nor `db`.
    #[error(
        "`{text}`: a target is `volume:NAME` (a Docker volume) or `db:NAME` (a database container), as in `volume:{name}` or `db:{name}`"
    )]
    UnknownKind {
        /// What was given.
        text: String,
        /// The part after the `:`.
        name: String,
    },
    /// A target whose name is not a Docker name.
    #[error("`{text}`: the name {source}")]
    BadName {
        /// What was given.
        text: String,
        /// Why the name is not a Docker name.
        source: IdError,
    },
    /// A snapshot that is neither `latest`, an id nor a custom image's backup name.
    #[error(
        "`{0}` is neither `latest`, a snapshot id (8 to 64 hex digits, as `marina snapshots` shows them), nor the name of a custom image's backup (up to 128 of A-Z a-z 0-9 . _ : -)"
    )]
    BadSnapshot(String),
}

/// Reads a target as the API names it: `volume:NAME` or `db:NAME`.
pub fn parse_target(text: &str) -> Result<TargetId, ArgumentError> {
    let Some((kind, name)) = text.split_once(':') else {
        return Err(ArgumentError::BareName(text.to_owned()));
    };
    let name_of = |name: &str| {
        DockerName::parse(name).map_err(|source| ArgumentError::BadName {
            text: text.to_owned(),
            source,
        })
    };
    match kind {
        "volume" => Ok(TargetId::Volume(name_of(name)?)),
        "db" => Ok(TargetId::Db(name_of(name)?)),
        _ => Err(ArgumentError::UnknownKind {
            text: text.to_owned(),
            name: name.to_owned(),
        }),
    }
}

/// Reads a snapshot reference: `latest`, a snapshot id or its prefix of at least 8 hex
/// digits (restic's short id, lower-cased as restic writes ids), or the name a custom
/// image gives one of its backups, passed on as written. Which of them the instance takes
/// only the daemon knows: a restic instance refuses a name.
pub fn parse_snapshot(text: &str) -> Result<String, ArgumentError> {
    if text == "latest" {
        return Ok(text.to_owned());
    }
    if (8..=64).contains(&text.len()) && text.chars().all(|c| c.is_ascii_hexdigit()) {
        Ok(text.to_ascii_lowercase())
    } else if SnapshotChoice::is_name(text) {
        Ok(text.to_owned())
    } else {
        Err(ArgumentError::BadSnapshot(text.to_owned()))
    }
}

/// Reads an instance id, so that a typo is a usage error before any request is made.
pub fn parse_instance(text: &str) -> Result<InstanceId, IdError> {
    InstanceId::parse(text)
}

/// Reads the name of a new volume or container (`--to`).
pub fn parse_name(text: &str) -> Result<DockerName, IdError> {
    DockerName::parse(text)
}

/// A snapshot a restore can start from (`RestorePoint` in docs/openapi.yaml). In the plan of
/// a custom-image instance only `id` is known (what was asked): the image alone knows its
/// backups, so everything else is `None` there.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RestorePoint {
    /// The full snapshot id (64 hex digits), or what was asked of a custom image.
    pub id: String,
    /// The 8-digit id restic prints, which `--snapshot` accepts.
    pub short_id: Option<String>,
    /// When the snapshot was taken.
    pub time: Option<DateTime<Utc>>,
    /// The node that took it.
    pub host: Option<String>,
    /// The target it holds; `None` for a snapshot that names none.
    #[serde(default)]
    pub target: Option<String>,
    /// Its restic tags.
    #[serde(default)]
    pub tags: Option<Vec<String>>,
    /// Its restic paths.
    #[serde(default)]
    pub paths: Option<Vec<String>>,
    /// Files it holds; `None` when restic (< 0.17) did not record it and it was not counted.
    pub files: Option<u64>,
    /// Bytes it holds; `None` as for `files`.
    pub bytes: Option<u64>,
    /// Whether an in-place restore saved it just before replacing the content it holds.
    pub pre_restore: Option<bool>,
}

impl RestorePoint {
    /// Whether it is a safety snapshot an in-place restore saved.
    #[must_use]
    pub fn is_pre_restore(&self) -> bool {
        self.pre_restore == Some(true)
    }

    /// The id to show: restic's short id, else the id as it came.
    #[must_use]
    pub fn shown_id(&self) -> &str {
        self.short_id.as_deref().unwrap_or(&self.id)
    }
}

/// `GET /api/instances/{id}/snapshots`: an instance's restore points, newest first.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SnapshotList {
    /// The instance.
    pub instance: String,
    /// The target asked for; `None` for all of the instance's targets.
    pub target: Option<String>,
    /// The snapshots, newest first.
    pub snapshots: Vec<RestorePoint>,
}

/// One thing a restore does, in order (`RestoreStep`).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RestoreStep {
    /// What is done: `create volume`, `stop container`, `save safety snapshot`, …
    pub action: String,
    /// To what: a volume, container or snapshot name.
    pub subject: String,
}

/// What a restore would do, or does (`RestorePlan`).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RestorePlan {
    /// The instance.
    pub instance: String,
    /// The target restored.
    pub target: String,
    /// The snapshot restored from.
    pub snapshot: RestorePoint,
    /// Whether the target's own content is replaced (else a new volume or container is made).
    pub in_place: bool,
    /// The volume or container that receives the content.
    pub destination: String,
    /// Files restored; `None` when not known before the restore runs (a custom image's).
    pub files: Option<u64>,
    /// Bytes restored; `None` as for `files`.
    pub bytes: Option<u64>,
    /// The steps, in order.
    pub steps: Vec<RestoreStep>,
    /// Why the restore cannot run as asked; empty when it can.
    #[serde(default)]
    pub conflicts: Vec<String>,
}

/// The daemon's `202` to a restore: the job that will carry it out.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RestoreAccepted {
    /// The job record.
    pub job_id: i64,
    /// The job's number within the instance.
    pub iid: i64,
    /// The plan the job follows.
    pub plan: RestorePlan,
}

/// What `marina restore` asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RestoreRequest {
    /// The instance whose repository holds the snapshot.
    pub instance: InstanceId,
    /// The target to restore.
    pub target: TargetId,
    /// `latest` or a snapshot id (prefix).
    pub snapshot: String,
    /// The name of the new volume or container; `None` lets the daemon pick one.
    pub to: Option<DockerName>,
    /// Replace the target's own content instead of making a new one.
    pub in_place: bool,
    /// Only plan; change nothing.
    pub dry_run: bool,
}

impl RestoreRequest {
    /// The request body of `POST /api/instances/{id}/restore`.
    #[must_use]
    pub fn body(&self) -> Value {
        let mut body = json!({
            "target": self.target.to_string(),
            "snapshot": self.snapshot,
            "inPlace": self.in_place,
            "dryRun": self.dry_run,
        });
        if let Some(to) = &self.to {
            body["to"] = json!(to.as_str());
        }
        body
    }
}

/// How the daemon answered a restore request it did not refuse outright. Each carries the
/// body as it came, for `--json`.
#[derive(Debug)]
pub enum RestoreAnswer {
    /// A dry run's plan, with or without conflicts.
    Planned {
        /// The plan.
        plan: RestorePlan,
        /// The answer as sent.
        raw: Value,
    },
    /// The restore is queued as a job.
    Queued {
        /// The job and its plan.
        accepted: RestoreAccepted,
        /// The answer as sent.
        raw: Value,
    },
    /// The plan has conflicts, so nothing was queued (`409` with the plan).
    Conflicts {
        /// The daemon's message.
        error: String,
        /// The plan, whose conflicts say why.
        plan: RestorePlan,
        /// The answer as sent.
        raw: Value,
    },
}

/// `GET /api/instances/{id}/snapshots`: the restore points of `instance` (of `target` only,
/// when given), with the body as it came for `--json`. `count` makes the daemon count
/// what restic did not record (about a second per snapshot).
pub async fn snapshots(
    daemon: &Daemon,
    instance: &InstanceId,
    target: Option<&TargetId>,
    count: bool,
) -> Result<(SnapshotList, Value), AppError> {
    let mut query = vec![("count", count.to_string())];
    if let Some(target) = target {
        query.push(("target", target.to_string()));
    }
    let answer = daemon
        .get(&format!("/api/instances/{instance}/snapshots"), &query)
        .await?;
    if answer.status != StatusCode::OK {
        return Err(daemon.refused(&answer));
    }
    let list = daemon.parse(&answer.body, "the snapshot list")?;
    Ok((list, answer.body))
}

/// `POST /api/instances/{id}/restore`.
pub async fn restore(daemon: &Daemon, request: &RestoreRequest) -> Result<RestoreAnswer, AppError> {
    let answer = daemon
        .post(
            &format!("/api/instances/{}/restore", request.instance),
            Some(&request.body()),
        )
        .await?;
    match answer.status {
        StatusCode::OK => Ok(RestoreAnswer::Planned {
            plan: daemon.parse(&answer.body, "the restore plan")?,
            raw: answer.body,
        }),
        StatusCode::ACCEPTED => Ok(RestoreAnswer::Queued {
            accepted: daemon.parse(&answer.body, "the queued restore")?,
            raw: answer.body,
        }),
        // A 409 without a plan is another conflict (a restore of the instance already waits).
        StatusCode::CONFLICT if answer.body.get("plan").is_some_and(Value::is_object) => {
            Ok(RestoreAnswer::Conflicts {
                error: daemon.error_message(&answer),
                plan: daemon.parse(&answer.body["plan"], "the restore plan of a conflict")?,
                raw: answer.body,
            })
        }
        _ => Err(daemon.refused(&answer)),
    }
}

/// A job as `GET /api/jobs` lists it: the part a follower needs.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct JobEntry {
    /// The job record.
    pub id: i64,
    /// `scheduled`, `in_progress`, `success`, `partial_success`, `failed`, `aborted`,
    /// `timed_out`.
    pub status: String,
    /// Whether it is still scheduled or running.
    pub is_active: bool,
    /// Why it ended as it did, when it says.
    #[serde(default)]
    pub message: Option<String>,
}

/// A line of a job's log (`LogLine`).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LogLine {
    /// Its id; the next page starts after it.
    pub id: i64,
    /// When it was logged.
    pub timestamp: DateTime<Utc>,
    /// `ERROR`, `WARN`, `INFO` or `DEBUG`.
    pub level: String,
    /// The sentence.
    pub message: String,
    /// The target it is about, if one.
    #[serde(default)]
    pub target_id: Option<String>,
}

/// What happens while a job is followed.
#[derive(Debug)]
pub enum Progress<'a> {
    /// The job waits in the queue (another job of the instance may be running).
    Waiting,
    /// A new line of its log.
    Line(&'a LogLine),
}

/// Follows job `job` of `instance` until it ends: reports each new log line (and once,
/// that it waits) to `report`, and answers the job's final entry, also as it came (for
/// `--json`). The log is read to its end after the job is seen ended: the job store writes a
/// job's lines and its status in order, so no line logged before the end is missed.
pub async fn follow(
    daemon: &Daemon,
    instance: &InstanceId,
    job: i64,
    mut report: impl FnMut(Progress<'_>),
) -> Result<(JobEntry, Value), AppError> {
    let lost = |source| AppError::LostJob {
        job,
        source: Box::new(source),
    };
    let mut after = 0;
    let mut said_waiting = false;
    loop {
        let (entry, raw) = job_entry(daemon, instance, job).await.map_err(lost)?;
        if entry.status == "scheduled" && !said_waiting {
            said_waiting = true;
            report(Progress::Waiting);
        }
        loop {
            let page = log_page(daemon, job, after).await.map_err(lost)?;
            for line in &page {
                report(Progress::Line(line));
            }
            after = page.last().map_or(after, |line| line.id);
            if page.len() < LOG_PAGE {
                break;
            }
        }
        if !entry.is_active {
            return Ok((entry, raw));
        }
        tokio::time::sleep(FOLLOW_INTERVAL).await;
    }
}

/// The job's entry among the instance's newest jobs.
async fn job_entry(
    daemon: &Daemon,
    instance: &InstanceId,
    job: i64,
) -> Result<(JobEntry, Value), AppError> {
    let query = [
        ("instanceId", instance.to_string()),
        ("limit", JOB_SEARCH_LIMIT.to_string()),
    ];
    let answer = daemon.get("/api/jobs", &query).await?;
    if answer.status != StatusCode::OK {
        return Err(daemon.refused(&answer));
    }
    let Some(raw) = answer
        .body
        .as_array()
        .and_then(|jobs| jobs.iter().find(|j| j["id"].as_i64() == Some(job)))
        .cloned()
    else {
        return Err(AppError::Refused(format!(
            "job {job} is no longer among the jobs of `{instance}` at {}",
            daemon.base()
        )));
    };
    let entry = daemon.parse(&raw, "the job entry")?;
    Ok((entry, raw))
}

/// The job's log lines after line `after`, one page.
async fn log_page(daemon: &Daemon, job: i64, after: i64) -> Result<Vec<LogLine>, AppError> {
    let query = [
        ("afterId", after.to_string()),
        ("limit", LOG_PAGE.to_string()),
    ];
    let answer = daemon.get(&format!("/api/logs/job/{job}"), &query).await?;
    if answer.status != StatusCode::OK {
        return Err(daemon.refused(&answer));
    }
    daemon.parse(&answer.body, "the job log")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_are_read_with_their_kind() {
        assert_eq!(
            parse_target("volume:data").unwrap().to_string(),
            "volume:data"
        );
        assert_eq!(parse_target("db:app-pg").unwrap().to_string(), "db:app-pg");
        let bare = parse_target("data").unwrap_err().to_string();
        assert_eq!(
            bare,
            "`data` says no kind of target; write `volume:data` for the Docker volume or `db:data` for the database in the container of that name"
        );
        let kind = parse_target("vol:data").unwrap_err().to_string();
        assert!(kind.contains("`volume:data` or `db:data`"), "{kind}");
        let name = parse_target("volume:").unwrap_err().to_string();
        assert_eq!(name, "`volume:`: the name must not be empty");
        assert!(parse_target("volume:a/b").is_err());
    }

    #[test]
    fn snapshots_are_latest_hex_ids_or_backup_names() {
        assert_eq!(parse_snapshot("latest").unwrap(), "latest");
        assert_eq!(parse_snapshot("1A2B3C4D").unwrap(), "1a2b3c4d");
        assert_eq!(parse_snapshot(&"f".repeat(64)).unwrap(), "f".repeat(64));
        // A custom image's own names pass as written; the daemon refuses them for restic.
        for name in [
            "app-node1-20270328T020000Z.tar.gz",
            "20270328T020000Z-pre-restore",
            "Latest",
        ] {
            assert_eq!(parse_snapshot(name).unwrap(), name);
        }
        for bad in ["a b", "../x", "a/b", "", &"n".repeat(129)] {
            assert_eq!(
                parse_snapshot(bad),
                Err(ArgumentError::BadSnapshot(bad.to_owned())),
                "{bad}"
            );
        }
    }

    #[test]
    fn the_request_body_names_only_what_was_asked() {
        let mut request = RestoreRequest {
            instance: InstanceId::parse("nightly").unwrap(),
            target: parse_target("volume:data").unwrap(),
            snapshot: "latest".into(),
            to: None,
            in_place: false,
            dry_run: true,
        };
        assert_eq!(
            request.body(),
            json!({"target": "volume:data", "snapshot": "latest", "inPlace": false, "dryRun": true})
        );
        request.to = Some(DockerName::parse("data-copy").unwrap());
        assert_eq!(request.body()["to"], "data-copy");
    }
}
