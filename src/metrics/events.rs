//! Typed telemetry events: each is one fact, recorded by [`Metrics::emit`] in one place —
//! its log line (structured fields first, then a sentence, at the level the fact deserves)
//! and its counters — so the log and the metrics can never tell different stories (vector's
//! `emit!`, DESIGN.md).
//!
//! Log lines keep the `tracing` target of the module where the fact happens, so log filters
//! such as `MARINA_LOG=marina::executor=debug` still select them. Emitted inside a job's
//! span, a line goes into that job's log like any other.

use std::time::Duration;

use chrono::{DateTime, Utc};
use tracing::{debug, error, info, warn};

use super::Metrics;
use crate::config::Diagnostic;
use crate::model::{InstanceId, JobKind, JobStatus, TargetId};

/// Something that happened, to be logged and counted by [`Metrics::emit`].
pub trait Event {
    /// Logs the event and updates its metrics.
    fn emit(self, metrics: &Metrics);
}

/// A changed config file was valid and is applied.
#[derive(Debug, Clone, Copy)]
pub struct ConfigReloaded<'a> {
    /// The config file.
    pub file: &'a str,
    /// How many instances it configures.
    pub instances: usize,
}

impl Event for ConfigReloaded<'_> {
    fn emit(self, metrics: &Metrics) {
        info!(target: "marina::sources::config_file", file = %self.file, instances = self.instances, "Config reloaded.");
        metrics
            .inner
            .config_reloads
            .with_label_values(&["success"])
            .inc();
    }
}

/// A changed config file was invalid (or unreadable): the previous config stays in force.
#[derive(Debug, Clone, Copy)]
pub struct ConfigRejected<'a> {
    /// Every problem found.
    pub diagnostics: &'a [Diagnostic],
}

impl Event for ConfigRejected<'_> {
    fn emit(self, metrics: &Metrics) {
        for diagnostic in self.diagnostics {
            error!(target: "marina::sources::config_file", problem = %diagnostic, "The changed config file is invalid; the previous config stays in force.");
        }
        metrics
            .inner
            .config_reloads
            .with_label_values(&["failure"])
            .inc();
    }
}

/// The object a Docker event is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DockerObject<'a> {
    /// A container, by id.
    Container(&'a str),
    /// A volume, by name.
    Volume(&'a str),
}

/// The Docker watch received an event it follows (and will read its object again).
#[derive(Debug, Clone, Copy)]
pub struct DockerEventReceived<'a> {
    /// What it is about.
    pub object: DockerObject<'a>,
    /// The engine's action (`start`, `destroy`, …).
    pub action: &'a str,
}

impl Event for DockerEventReceived<'_> {
    fn emit(self, metrics: &Metrics) {
        let kind = match self.object {
            DockerObject::Container(id) => {
                debug!(target: "marina::sources::docker_events", container = %id, action = %self.action, "Docker container event.");
                "container"
            }
            DockerObject::Volume(name) => {
                debug!(target: "marina::sources::docker_events", volume = %name, action = %self.action, "Docker volume event.");
                "volume"
            }
        };
        metrics.inner.docker_events.with_label_values(&[kind]).inc();
    }
}

/// The Docker event stream broke; the watch reconnects after `retry_in` and relists.
#[derive(Debug, Clone, Copy)]
pub struct DockerWatchRestarted<'a> {
    /// Why the stream ended.
    pub reason: &'a str,
    /// The backoff before reconnecting.
    pub retry_in: Duration,
}

impl Event for DockerWatchRestarted<'_> {
    fn emit(self, metrics: &Metrics) {
        warn!(target: "marina::sources::docker_events", reason = %self.reason, retry_in = ?self.retry_in, "Docker event stream ended; reconnecting.");
        metrics.inner.docker_watch_restarts.inc();
    }
}

/// The controller finished one reconcile pass. Counted only: a line per pass would drown
/// the log.
#[derive(Debug, Clone, Copy)]
pub struct Reconciled {
    /// How long the pass took.
    pub duration: Duration,
}

impl Event for Reconciled {
    fn emit(self, metrics: &Metrics) {
        metrics
            .inner
            .reconcile_duration
            .observe(self.duration.as_secs_f64());
    }
}

/// A job that ran reached its final status.
#[derive(Debug, Clone, Copy)]
pub struct JobFinished<'a> {
    /// Whose job.
    pub instance: &'a InstanceId,
    /// What it did: backups and restores are counted apart.
    pub kind: JobKind,
    /// How it ended.
    pub status: JobStatus,
    /// From start to end.
    pub duration: Duration,
    /// The job record's one-line summary.
    pub message: &'a str,
}

impl Event for JobFinished<'_> {
    fn emit(self, metrics: &Metrics) {
        // Milliseconds are plenty for a person reading the log.
        let millis = u64::try_from(self.duration.as_millis()).unwrap_or(u64::MAX);
        let duration = humantime::format_duration(Duration::from_millis(millis));
        let message = self.message;
        let instance = self.instance.as_str();
        if self.kind == JobKind::Restore {
            if self.status == JobStatus::Success {
                info!(target: "marina::executor", message = %message, duration = %duration, "Restore finished: success.");
            } else {
                error!(target: "marina::executor", message = %message, status = %self.status, duration = %duration, "Restore did not succeed.");
            }
            metrics
                .inner
                .restores
                .with_label_values(&[instance, self.status.as_str()])
                .inc();
            return;
        }
        match self.status {
            JobStatus::Success => {
                info!(target: "marina::executor", message = %message, duration = %duration, "Backup finished: success.");
            }
            JobStatus::PartialSuccess => {
                warn!(target: "marina::executor", message = %message, duration = %duration, "Backup finished: partial success.");
            }
            status => {
                error!(target: "marina::executor", message = %message, status = %status, duration = %duration, "Backup did not succeed.");
            }
        }
        metrics
            .inner
            .jobs
            .with_label_values(&[instance, self.status.as_str()])
            .inc();
        metrics
            .inner
            .job_duration
            .with_label_values(&[instance])
            .observe(self.duration.as_secs_f64());
    }
}

/// A target's data is in the repository (restic: one snapshot per target).
#[derive(Debug, Clone, Copy)]
pub struct TargetBackedUp<'a> {
    /// The instance backing it up.
    pub instance: &'a InstanceId,
    /// The target.
    pub target: &'a TargetId,
    /// One line for the job log.
    pub summary: &'a str,
    /// Bytes the repository grew by.
    pub bytes_added: u64,
    /// Bytes of the target's data read (files or dump).
    pub bytes_read: u64,
    /// When it was done.
    pub at: DateTime<Utc>,
}

impl Event for TargetBackedUp<'_> {
    fn emit(self, metrics: &Metrics) {
        info!(target: "marina::executor::backup", "Target backed up: {}.", self.summary);
        let instance = self.instance.as_str();
        let m = &metrics.inner;
        m.target_last_success
            .with_label_values(&[instance, &self.target.to_string()])
            .set(self.at.timestamp());
        m.backup_bytes_added
            .with_label_values(&[instance])
            .inc_by(self.bytes_added);
        m.staged_bytes
            .with_label_values(&[instance])
            .inc_by(self.bytes_read);
    }
}

/// A target's data is staged for a custom backup image (not yet shipped: see
/// [`BackupImageFinished`]).
#[derive(Debug, Clone, Copy)]
pub struct TargetStaged<'a> {
    /// The instance.
    pub instance: &'a InstanceId,
    /// One line for the job log.
    pub summary: &'a str,
    /// Bytes staged (files or dump).
    pub bytes: u64,
}

impl Event for TargetStaged<'_> {
    fn emit(self, metrics: &Metrics) {
        info!(target: "marina::executor::backup", "Target staged: {}.", self.summary);
        metrics
            .inner
            .staged_bytes
            .with_label_values(&[self.instance.as_str()])
            .inc_by(self.bytes);
    }
}

/// A custom backup image exited 0: the targets staged for it are backed up.
#[derive(Debug, Clone, Copy)]
pub struct BackupImageFinished<'a> {
    /// The instance.
    pub instance: &'a InstanceId,
    /// The image.
    pub image: &'a str,
    /// The targets it shipped.
    pub targets: &'a [&'a TargetId],
    /// When it finished.
    pub at: DateTime<Utc>,
}

impl Event for BackupImageFinished<'_> {
    fn emit(self, metrics: &Metrics) {
        info!(target: "marina::executor::backup", image = %self.image, targets = self.targets.len(), "The backup image finished successfully.");
        let instance = self.instance.as_str();
        for target in self.targets {
            metrics
                .inner
                .target_last_success
                .with_label_values(&[instance, &target.to_string()])
                .set(self.at.timestamp());
        }
    }
}
