//! Prometheus metrics (SPEC §7): one [`Metrics`] handle, cheap to clone, owning its own
//! registry (never the process-global one, so tests and embedders get isolated counts).
//!
//! Two kinds of numbers, fed two ways:
//!
//! - **What happened** — reloads, Docker events, reconcile passes, jobs, bytes — is counted by
//!   typed [`events`] at the place it happens. Each event logs its line *and* counts, so a log
//!   line and its counter can never disagree (vector's `emit!`).
//! - **What is** — targets, unassigned targets, unprotected volumes, running and queued jobs,
//!   next runs, last successes — is set all at once from a [`StateReading`] by
//!   [`Metrics::set_state`] ([`state`]), which also removes the series of instances and
//!   targets that left the config, so no stale series outlives its object. The readings come
//!   from the controller's snapshots, taken by the `gauges` module, which lives above the
//!   reconciler: this module, used by every layer, imports only the vocabulary in `model`
//!   and `config`.
//!
//! Label sets are bounded by the config: instance ids, target ids, target kinds and job
//! statuses — never a job id or a path.
//!
//! `GET /metrics` (in `http`) serves [`Metrics::render`] in the classic text format,
//! which `promtool check metrics` accepts (DEPENDENCIES.md explains why not `OpenMetrics`).

pub mod events;
pub mod state;

use std::fmt;
use std::sync::Arc;

use prometheus::core::Collector;
use prometheus::{
    Histogram, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge, IntGaugeVec, Opts,
    Registry, TextEncoder,
};

pub use self::events::{
    BackupImageFinished, ConfigRejected, ConfigReloaded, DockerEventReceived, DockerObject,
    DockerWatchRestarted, Event, JobFinished, Reconciled, TargetBackedUp, TargetStaged,
};
pub use self::state::{InstanceReading, StateReading};
use crate::model::JobStatus;

/// The `Content-Type` of [`Metrics::render`]'s output.
pub const CONTENT_TYPE: &str = prometheus::TEXT_FORMAT;

/// Reconcile passes take microseconds with a few instances and should stay well under a
/// second with thousands of volumes: sub-millisecond to seconds.
const RECONCILE_BUCKETS: [f64; 15] = [
    0.000_1, 0.000_25, 0.000_5, 0.001, 0.002_5, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
    5.0,
];

/// Backups take seconds to hours: 1 s to 8 h.
const JOB_BUCKETS: [f64; 13] = [
    1.0, 5.0, 15.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1800.0, 3600.0, 7200.0, 14400.0, 28800.0,
];

/// The statuses a job that ran can end in; their counters exist from the start (at 0), so
/// `increase()` sees an instance's first failure.
const FINAL_STATUSES: [JobStatus; 5] = [
    JobStatus::Success,
    JobStatus::PartialSuccess,
    JobStatus::Failed,
    JobStatus::Aborted,
    JobStatus::TimedOut,
];

/// The values of `marina_targets`' `kind` label.
const TARGET_KINDS: [&str; 2] = ["volume", "db"];

/// A metric could not be created or registered: a programming error (a bad or duplicate
/// name), which the unit tests rule out.
#[derive(Debug, thiserror::Error)]
#[error("cannot register the metric {name}: {source}")]
pub struct MetricsError {
    /// The metric.
    name: &'static str,
    /// The prometheus crate's reason.
    source: prometheus::Error,
}

/// The metrics of one Marina process; clones share them. See the [module docs](self).
#[derive(Clone)]
pub struct Metrics {
    inner: Arc<Inner>,
}

impl fmt::Debug for Metrics {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Metrics").finish_non_exhaustive()
    }
}

/// The registry and a handle on every metric in it. Fields are read by [`events`].
struct Inner {
    /// What `/metrics` renders.
    registry: Registry,
    /// Whether the latest config load was applied (from snapshots).
    config_last_reload_successful: IntGauge,
    /// Config reloads by `result` (`success`, `failure`); the start-up load is not a reload.
    config_reloads: IntCounterVec,
    /// Docker events followed, by object `type` (`container`, `volume`).
    docker_events: IntCounterVec,
    /// Times the Docker event stream broke and was reconnected.
    docker_watch_restarts: IntCounter,
    /// How long one reconcile pass (graph, decisions, job starts, snapshot) took.
    reconcile_duration: Histogram,
    /// Targets per `instance` and `kind` (from snapshots).
    targets: IntGaugeVec,
    /// Labelled targets naming no configured instance (from snapshots).
    unassigned_targets: IntGauge,
    /// Volumes no instance backs up (from snapshots).
    unprotected_volumes: IntGauge,
    /// Jobs that ran, by `instance` and final `status`.
    jobs: IntCounterVec,
    /// How long jobs that ran took, by `instance`.
    job_duration: HistogramVec,
    /// Restore jobs that ran, by `instance` and final `status`.
    restores: IntCounterVec,
    /// Jobs running now (from snapshots).
    jobs_running: IntGauge,
    /// Jobs waiting in the queue (from snapshots).
    jobs_queued: IntGauge,
    /// The end of each instance's last successful backup (from snapshots).
    instance_last_success: IntGaugeVec,
    /// Each instance's next scheduled run (from snapshots).
    instance_next_run: IntGaugeVec,
    /// Seconds between the next two runs: alert rules compare the age of the last success
    /// with it ("no success within 1.5× the schedule interval").
    instance_interval: IntGaugeVec,
    /// When each target was last backed up (from job events; pruned from snapshots).
    target_last_success: IntGaugeVec,
    /// Bytes repositories grew by, per `instance` (restic).
    backup_bytes_added: IntCounterVec,
    /// Bytes of target data read for backups, per `instance`.
    staged_bytes: IntCounterVec,
}

/// A metric's name and help text; the catalogue below is the whole of SPEC §7.
struct Spec {
    name: &'static str,
    help: &'static str,
}

const BUILD_INFO: Spec = Spec {
    name: "marina_build_info",
    help: "Always 1; the version label says which Marina this is.",
};
const CONFIG_LAST_RELOAD_SUCCESSFUL: Spec = Spec {
    name: "marina_config_last_reload_successful",
    help: "1 if the latest config load was applied, 0 if it was rejected (the previous config stays in force).",
};
const CONFIG_RELOADS: Spec = Spec {
    name: "marina_config_reloads_total",
    help: "Config reloads after start-up, by result (success, failure).",
};
const DOCKER_EVENTS: Spec = Spec {
    name: "marina_docker_events_total",
    help: "Docker events followed, by object type (container, volume).",
};
const DOCKER_WATCH_RESTARTS: Spec = Spec {
    name: "marina_docker_watch_restarts_total",
    help: "Times the Docker event stream broke and was reconnected with a full relist.",
};
const RECONCILE_DURATION: Spec = Spec {
    name: "marina_reconcile_duration_seconds",
    help: "Time one reconcile pass took (graph, decisions, job starts, snapshot).",
};
const TARGETS: Spec = Spec {
    name: "marina_targets",
    help: "Targets of each instance, from config and labels, by kind (volume, db).",
};
const UNASSIGNED_TARGETS: Spec = Spec {
    name: "marina_unassigned_targets",
    help: "Labelled targets whose instanceID names no configured instance; they are not backed up.",
};
const UNPROTECTED_VOLUMES: Spec = Spec {
    name: "marina_unprotected_volumes",
    help: "Docker volumes that no instance backs up.",
};
const JOBS: Spec = Spec {
    name: "marina_jobs_total",
    help: "Backup jobs that ran, by instance and final status (success, partial_success, failed, aborted, timed_out).",
};
const JOB_DURATION: Spec = Spec {
    name: "marina_job_duration_seconds",
    help: "Time backup jobs took from start to end, by instance.",
};
const RESTORES: Spec = Spec {
    name: "marina_restores_total",
    help: "Restore jobs that ran, by instance and final status (success, failed, aborted, timed_out).",
};
const JOBS_RUNNING: Spec = Spec {
    name: "marina_jobs_running",
    help: "Jobs (backups and restores) running now.",
};
const JOBS_QUEUED: Spec = Spec {
    name: "marina_jobs_queued",
    help: "Jobs (backups and restores) due and waiting for a free slot (maxConcurrentJobs) or for the instance's running job.",
};
const INSTANCE_LAST_SUCCESS: Spec = Spec {
    name: "marina_instance_last_success_timestamp_seconds",
    help: "Unix time the instance's last successful backup ended; absent until one is known.",
};
const INSTANCE_NEXT_RUN: Spec = Spec {
    name: "marina_instance_next_run_timestamp_seconds",
    help: "Unix time of the instance's next scheduled run; absent while unknown or never.",
};
const INSTANCE_INTERVAL: Spec = Spec {
    name: "marina_instance_schedule_interval_seconds",
    help: "Seconds between the instance's next two scheduled runs; absent while unknown.",
};
const TARGET_LAST_SUCCESS: Spec = Spec {
    name: "marina_target_last_success_timestamp_seconds",
    help: "Unix time the target was last backed up by the instance (since Marina started).",
};
const BACKUP_BYTES_ADDED: Spec = Spec {
    name: "marina_backup_bytes_added_total",
    help: "Bytes the instance's restic repository grew by (new data after deduplication, plus metadata).",
};
const STAGED_BYTES: Spec = Spec {
    name: "marina_staged_bytes_total",
    help: "Bytes of target data read for the instance's backups (volume files and database dumps), before deduplication.",
};

impl Spec {
    /// Registers `metric`, made from this spec, in `registry`.
    fn register<C: Collector + Clone + 'static>(
        &self,
        registry: &Registry,
        metric: prometheus::Result<C>,
    ) -> Result<C, MetricsError> {
        let name = self.name;
        let metric = metric.map_err(|source| MetricsError { name, source })?;
        registry
            .register(Box::new(metric.clone()))
            .map_err(|source| MetricsError { name, source })?;
        Ok(metric)
    }

    fn opts(&self) -> Opts {
        Opts::new(self.name, self.help)
    }

    fn gauge(&self, r: &Registry) -> Result<IntGauge, MetricsError> {
        self.register(r, IntGauge::with_opts(self.opts()))
    }

    fn gauge_vec(&self, r: &Registry, labels: &[&str]) -> Result<IntGaugeVec, MetricsError> {
        self.register(r, IntGaugeVec::new(self.opts(), labels))
    }

    fn counter(&self, r: &Registry) -> Result<IntCounter, MetricsError> {
        self.register(r, IntCounter::with_opts(self.opts()))
    }

    fn counter_vec(&self, r: &Registry, labels: &[&str]) -> Result<IntCounterVec, MetricsError> {
        self.register(r, IntCounterVec::new(self.opts(), labels))
    }

    fn histogram_opts(&self, buckets: &[f64]) -> HistogramOpts {
        HistogramOpts::new(self.name, self.help).buckets(buckets.to_vec())
    }

    fn histogram(&self, r: &Registry, buckets: &[f64]) -> Result<Histogram, MetricsError> {
        self.register(r, Histogram::with_opts(self.histogram_opts(buckets)))
    }

    fn histogram_vec(
        &self,
        r: &Registry,
        buckets: &[f64],
        labels: &[&str],
    ) -> Result<HistogramVec, MetricsError> {
        self.register(r, HistogramVec::new(self.histogram_opts(buckets), labels))
    }
}

impl Metrics {
    /// Every SPEC §7 metric in a fresh registry, with `marina_build_info` set and the
    /// counters whose label values are known up front at 0.
    pub fn new() -> Result<Self, MetricsError> {
        let registry = Registry::new();
        let r = &registry;
        BUILD_INFO
            .gauge_vec(r, &["version"])?
            .with_label_values(&[env!("CARGO_PKG_VERSION")])
            .set(1);
        let inner = Inner {
            config_last_reload_successful: CONFIG_LAST_RELOAD_SUCCESSFUL.gauge(r)?,
            config_reloads: CONFIG_RELOADS.counter_vec(r, &["result"])?,
            docker_events: DOCKER_EVENTS.counter_vec(r, &["type"])?,
            docker_watch_restarts: DOCKER_WATCH_RESTARTS.counter(r)?,
            reconcile_duration: RECONCILE_DURATION.histogram(r, &RECONCILE_BUCKETS)?,
            targets: TARGETS.gauge_vec(r, &["instance", "kind"])?,
            unassigned_targets: UNASSIGNED_TARGETS.gauge(r)?,
            unprotected_volumes: UNPROTECTED_VOLUMES.gauge(r)?,
            jobs: JOBS.counter_vec(r, &["instance", "status"])?,
            job_duration: JOB_DURATION.histogram_vec(r, &JOB_BUCKETS, &["instance"])?,
            restores: RESTORES.counter_vec(r, &["instance", "status"])?,
            jobs_running: JOBS_RUNNING.gauge(r)?,
            jobs_queued: JOBS_QUEUED.gauge(r)?,
            instance_last_success: INSTANCE_LAST_SUCCESS.gauge_vec(r, &["instance"])?,
            instance_next_run: INSTANCE_NEXT_RUN.gauge_vec(r, &["instance"])?,
            instance_interval: INSTANCE_INTERVAL.gauge_vec(r, &["instance"])?,
            target_last_success: TARGET_LAST_SUCCESS.gauge_vec(r, &["instance", "target"])?,
            backup_bytes_added: BACKUP_BYTES_ADDED.counter_vec(r, &["instance"])?,
            staged_bytes: STAGED_BYTES.counter_vec(r, &["instance"])?,
            registry,
        };
        for result in ["success", "failure"] {
            inner.config_reloads.with_label_values(&[result]);
        }
        for kind in ["container", "volume"] {
            inner.docker_events.with_label_values(&[kind]);
        }
        Ok(Self {
            inner: Arc::new(inner),
        })
    }

    /// Records `event`: logs its line and counts it.
    pub fn emit(&self, event: impl Event) {
        event.emit(self);
    }

    /// Every metric family in the registry, as the text encoder would see it.
    #[must_use]
    pub fn gather(&self) -> Vec<prometheus::proto::MetricFamily> {
        self.inner.registry.gather()
    }

    /// Every metric in the Prometheus text format (version 0.0.4).
    pub fn render(&self) -> Result<String, prometheus::Error> {
        TextEncoder::new().encode_to_string(&self.gather())
    }
}
