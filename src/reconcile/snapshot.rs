//! The published view: an immutable picture of the state graph, rebuilt after each batch of
//! messages and shared with readers (API, dashboard, metrics) as `Arc<Snapshot>`. Readers
//! never see the reconciler's state itself.

use chrono::{DateTime, Utc};
use serde::Serialize;

use super::graph::{InvalidLabels, Target, TargetSource, UnassignedTarget};
use super::queue::Queued;
use super::state::{NextRun, State};
use super::status::{Condition, ConditionType};
use crate::config::{Backend, Diagnostic, Instance, Severity};
use crate::model::{DbKind, InstanceId, Retention, TargetId, TargetKind, VolumePath};

/// Everything readers may know, at one moment.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Snapshot {
    /// Config loaded and Docker listed: decisions are being taken.
    pub ready: bool,
    /// This node's name (empty until a config is loaded).
    pub node_name: String,
    /// When this snapshot was taken.
    pub taken_at: DateTime<Utc>,
    /// Config generation and the latest reload.
    pub config: ConfigView,
    /// The Docker connection.
    pub docker: DockerView,
    /// Configured instances in config order.
    pub instances: Vec<InstanceView>,
    /// Labelled targets naming unknown instances.
    pub unassigned_targets: Vec<UnassignedTarget>,
    /// Objects with wrong Marina labels.
    pub invalid_labels: Vec<InvalidLabels>,
    /// Volumes with no backup policy at all.
    pub unprotected_volumes: Vec<String>,
    /// Base URLs of the peers whose answers are merged into ours (federation).
    pub peers: Vec<String>,
    /// How long a merged answer waits for each peer.
    #[serde(skip)]
    pub peer_timeout: std::time::Duration,
    /// Jobs waiting in the queue.
    pub jobs_waiting: usize,
    /// Jobs running.
    pub jobs_running: usize,
}

/// The config as readers see it: never a secret.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ConfigView {
    /// Bumped on every applied config; 0 before the first.
    pub generation: u64,
    /// The latest load, applied or rejected.
    pub last_reload: Option<ReloadView>,
}

/// The latest config load.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ReloadView {
    /// When it was read.
    pub at: DateTime<Utc>,
    /// Whether it was applied (`false`: the previous config stays in force).
    pub accepted: bool,
    /// Errors of a rejected file, or warnings of an accepted one.
    pub diagnostics: Vec<DiagnosticView>,
}

/// One config problem, located.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DiagnosticView {
    /// `error` or `warning`.
    pub severity: &'static str,
    /// The config file.
    pub file: String,
    /// 1-based line, if the problem is in the file.
    pub line: Option<usize>,
    /// 1-based column.
    pub column: Option<usize>,
    /// The field path.
    pub path: String,
    /// What is wrong.
    pub message: String,
    /// The whole diagnostic as `marina validate` prints it.
    pub text: String,
}

impl From<&Diagnostic> for DiagnosticView {
    fn from(d: &Diagnostic) -> Self {
        Self {
            severity: match d.severity {
                Severity::Error => "error",
                Severity::Warning => "warning",
            },
            file: d.file.clone(),
            line: d.position.map(|p| p.line),
            column: d.position.map(|p| p.column),
            path: d.path.clone(),
            message: d.message.clone(),
            text: d.to_string(),
        }
    }
}

/// The Docker connection.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DockerView {
    /// Whether events are flowing.
    pub connected: bool,
    /// The last complete listing.
    pub listed_at: Option<DateTime<Utc>>,
    /// Why the connection was last lost.
    pub last_error: Option<String>,
    /// Volumes seen.
    pub volumes: usize,
    /// Containers seen.
    pub containers: usize,
}

/// An instance: desired settings, observed targets, status.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct InstanceView {
    /// The id.
    pub id: InstanceId,
    /// `restic` or `customImage`.
    pub backend: &'static str,
    /// The custom image, for custom image instances.
    pub image: Option<String>,
    /// The cron expression.
    pub schedule: String,
    /// The zone the schedule is read in.
    pub timezone: String,
    /// Restic retention (custom images own theirs).
    pub retention: Option<Retention>,
    /// When it runs next.
    pub next_run_at: Option<DateTime<Utc>>,
    /// Seconds between the next run and the one after (for "no success within 1.5× the
    /// interval" alerts).
    pub schedule_interval_seconds: Option<i64>,
    /// When it first appeared in the config.
    pub created_at: DateTime<Utc>,
    /// When its config last changed.
    pub updated_at: DateTime<Utc>,
    /// The last successful backup.
    pub last_success_at: Option<DateTime<Utc>>,
    /// `Ready`, `Scheduled`, `LastBackupSucceeded`.
    pub conditions: Vec<Condition>,
    /// Its targets, config ones first.
    pub targets: Vec<TargetView>,
    /// Its waiting job, if queued.
    pub queued: Option<Queued>,
    /// Whether its job is running.
    pub running: bool,
}

/// A target of an instance.
#[allow(clippy::struct_excessive_bools)] // An API view: each flag is its own JSON field.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct TargetView {
    /// `volume:<name>` or `db:<container>`.
    pub id: TargetId,
    /// `volume` or `db`.
    pub kind: &'static str,
    /// Where it was declared.
    pub source: TargetSource,
    /// Database engine (configured or detected).
    pub db_kind: Option<DbKind>,
    /// Paths inside the volume.
    pub paths: Vec<VolumePath>,
    /// Whether containers using the volume are stopped while it is staged.
    pub stop_attached: bool,
    /// Whether a pre-hook is set (its command is not shown: it may hold credentials).
    pub has_pre_hook: bool,
    /// Whether a post-hook is set.
    pub has_post_hook: bool,
    /// Whether an empty result is accepted.
    pub allow_empty: bool,
    /// `Ready`, with the reason when it is not.
    pub conditions: Vec<Condition>,
}

impl Snapshot {
    /// Takes a picture of `state` at `now`.
    #[must_use]
    pub fn build(state: &State, now: DateTime<Utc>) -> Self {
        let instances = state
            .config
            .iter()
            .flat_map(|c| &c.instances)
            .filter_map(|instance| instance_view(state, instance))
            .collect();
        let inventory = state.inventory.as_ref();
        Self {
            ready: state.is_ready(),
            node_name: state
                .config
                .as_ref()
                .map(|c| c.node_name.clone())
                .unwrap_or_default(),
            taken_at: now,
            config: ConfigView {
                generation: state.config_generation,
                last_reload: state.last_reload.as_ref().map(|r| ReloadView {
                    at: r.at,
                    accepted: r.accepted,
                    diagnostics: r.diagnostics.iter().map(DiagnosticView::from).collect(),
                }),
            },
            docker: DockerView {
                connected: state.docker.connected,
                listed_at: state.docker.listed_at,
                last_error: state.docker.last_error.clone(),
                volumes: inventory.map_or(0, |i| i.volumes.len()),
                containers: inventory.map_or(0, |i| i.containers.len()),
            },
            instances,
            unassigned_targets: state.graph.unassigned.clone(),
            invalid_labels: state.graph.invalid.clone(),
            unprotected_volumes: state.graph.unprotected_volumes.clone(),
            peers: state
                .config
                .as_ref()
                .map(|c| c.peers.clone())
                .unwrap_or_default(),
            peer_timeout: state
                .config
                .as_ref()
                .map_or(std::time::Duration::ZERO, |c| c.peer_timeout),
            jobs_waiting: state.queue.waiting_count(),
            jobs_running: state.queue.running_count(),
        }
    }

    /// The instance `id`, if configured.
    #[must_use]
    pub fn instance(&self, id: &str) -> Option<&InstanceView> {
        self.instances.iter().find(|i| i.id.as_str() == id)
    }
}

fn instance_view(state: &State, instance: &Instance) -> Option<InstanceView> {
    let runtime = state.instances.get(&instance.id)?;
    let history = state.history.get(&instance.id).copied().unwrap_or_default();
    let targets: &[Target] = state
        .graph
        .targets
        .get(&instance.id)
        .map_or(&[], Vec::as_slice);
    let last_backup = match history.last_finished {
        None => Condition::unknown(
            ConditionType::LastBackupSucceeded,
            "NoBackupYet",
            "no backup has finished yet",
        ),
        Some((at, true)) => Condition::holds(
            ConditionType::LastBackupSucceeded,
            "BackupSucceeded",
            format!("the last backup succeeded at {at}"),
        ),
        Some((at, false)) => Condition::fails(
            ConditionType::LastBackupSucceeded,
            "BackupFailed",
            format!("the last backup, at {at}, did not succeed"),
        ),
    };
    let next_run_at = match runtime.next_run {
        NextRun::At(at) => Some(at),
        NextRun::Unknown | NextRun::Never => None,
    };
    let schedule_interval_seconds = next_run_at.and_then(|at| {
        let following = instance
            .schedule
            .next_after(&at.with_timezone(&instance.timezone))?;
        Some((following.to_utc() - at).num_seconds())
    });
    let (backend, image, retention) = match &instance.backend {
        Backend::Restic { retention, .. } => ("restic", None, Some(*retention)),
        Backend::CustomImage { image, .. } => ("customImage", Some(image.clone()), None),
    };
    Some(InstanceView {
        id: instance.id.clone(),
        backend,
        image,
        schedule: instance.schedule.to_string(),
        timezone: instance.timezone.name().to_owned(),
        retention,
        next_run_at,
        schedule_interval_seconds,
        created_at: runtime.created_at,
        updated_at: runtime.updated_at,
        last_success_at: history.last_success,
        conditions: vec![
            ready_condition(targets),
            scheduled_condition(state, runtime.next_run),
            last_backup,
        ],
        targets: targets.iter().map(|t| target_view(t, instance)).collect(),
        queued: state.queue.waiting(&instance.id).copied(),
        running: state.queue.is_running(&instance.id),
    })
}

fn ready_condition(targets: &[Target]) -> Condition {
    let not_ready = targets.iter().filter(|t| !t.ready.is_true()).count();
    if targets.is_empty() {
        Condition::fails(
            ConditionType::Ready,
            "NoTargets",
            "no target is configured or labelled for this instance",
        )
    } else if not_ready > 0 {
        let message = format!("{not_ready} of {} targets are not ready", targets.len());
        Condition::fails(ConditionType::Ready, "TargetsNotReady", message)
    } else {
        Condition::holds(
            ConditionType::Ready,
            "AllTargetsReady",
            format!("all {} targets are ready", targets.len()),
        )
    }
}

fn scheduled_condition(state: &State, next_run: NextRun) -> Condition {
    match next_run {
        _ if state.inventory.is_none() => Condition::unknown(
            ConditionType::Scheduled,
            "WaitingForDocker",
            "waiting for the first complete Docker listing",
        ),
        NextRun::At(at) => Condition::holds(
            ConditionType::Scheduled,
            "NextRunKnown",
            format!("next run at {at}"),
        ),
        NextRun::Never => Condition::fails(
            ConditionType::Scheduled,
            "NeverFires",
            "the schedule has no future occurrence",
        ),
        NextRun::Unknown => Condition::unknown(
            ConditionType::Scheduled,
            "Pending",
            "the next run is being worked out",
        ),
    }
}

fn target_view(target: &Target, instance: &Instance) -> TargetView {
    let (kind, paths, stop_attached) = match &target.spec.kind {
        TargetKind::Volume {
            paths,
            stop_attached,
        } => (
            "volume",
            paths.clone(),
            stop_attached.unwrap_or(instance.stop_attached),
        ),
        TargetKind::Db { .. } => ("db", Vec::new(), false),
    };
    TargetView {
        id: target.spec.id.clone(),
        kind,
        source: target.source,
        db_kind: target.db_kind,
        paths,
        stop_attached,
        has_pre_hook: target.spec.pre_hook.is_some(),
        has_post_hook: target.spec.post_hook.is_some(),
        allow_empty: target.spec.allow_empty,
        conditions: vec![target.ready.clone()],
    }
}
