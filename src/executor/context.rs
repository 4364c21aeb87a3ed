//! What every job is given and what it reports, whatever its kind: the job's context (the
//! runtime, the store, the volume locks, the journaled undo-work, cancellation), how one
//! target went, the job's progress in its record, and the output of the containers it runs
//! in its log. The lowest layer of a job: the runner, the shared target steps and each job
//! kind build on it, and it imports none of them.

use std::sync::Arc;

use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use super::locks::VolumeLocks;
use super::probe::DbProbes;
use super::undo::Undo;
use crate::clock;
use crate::config::{Config, Instance};
use crate::docker::OutputLine;
use crate::metrics::Metrics;
use crate::store::{JobId, Store};

/// Everything a running job needs.
pub(crate) struct JobContext<R> {
    /// The container runtime.
    pub runtime: Arc<R>,
    /// The job store (status, journal; log lines arrive through `tracing`).
    pub store: Store,
    /// Per-volume locks shared by all jobs.
    pub locks: VolumeLocks,
    /// Marina's own container id when it runs in a container (for host paths).
    pub own_container: Option<String>,
    /// This Marina's owner label value (see [`crate::docker::OWNER_LABEL`]).
    pub owner: String,
    /// The job's record.
    pub job: JobId,
    /// The instance as configured when the job started.
    pub instance: Instance,
    /// The config the job started under.
    pub config: Arc<Config>,
    /// Fires when the job must stop (timeout, shutdown): running containers are killed.
    pub cancel: CancellationToken,
    /// Undo-work, journaled.
    pub undo: Undo,
    /// Where targets' results and bytes are counted.
    pub metrics: Metrics,
    /// Database kinds found from the dump tools in containers whose image says nothing.
    pub probes: DbProbes,
    /// What each snapshot restores, once counted (shared by every job).
    pub sizes: super::sizes::Sizes,
}

/// How one target went.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum TargetOutcome {
    /// Shipped (restic) or staged (custom image).
    Done(Done),
    /// Failed, with the reason.
    Failed(String),
}

/// What a target that made it reports, for the job log and metrics.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Done {
    /// One line for the job log.
    pub summary: String,
    /// Bytes the repository grew by (restic; a custom image ships the data itself).
    pub bytes_added: u64,
    /// Bytes of the target's data read: the volume's files or the dump.
    pub bytes_read: u64,
}

impl Done {
    /// A target staged for a custom image: `bytes` read, nothing shipped yet.
    pub(crate) fn staged(summary: String, bytes: u64) -> Self {
        Self {
            summary,
            bytes_added: 0,
            bytes_read: bytes,
        }
    }
}

/// Records in the job's record how many of its `total` targets have made it so far.
pub(crate) async fn record_progress<R>(
    ctx: &JobContext<R>,
    total: usize,
    outcomes: &[TargetOutcome],
) {
    let done = outcomes
        .iter()
        .filter(|o| matches!(o, TargetOutcome::Done(_)))
        .count();
    let (total, done) = (
        u32::try_from(total).unwrap_or(u32::MAX),
        u32::try_from(done).unwrap_or(u32::MAX),
    );
    if let Err(e) = ctx
        .store
        .set_job_targets(ctx.job, total, done, clock::now())
        .await
    {
        warn!(error = %e, "Could not record the job's progress.");
    }
}

/// Output of hooks, helpers and backend containers goes into the job log line by line.
#[allow(clippy::needless_pass_by_value)] // The runtime hands each line over by value.
pub(crate) fn log_output(line: OutputLine) {
    info!("{}", line.text);
}
