//! One job, whatever its kind: its body from `in_progress` to its result (SPEC §3).
//!
//! ```text
//! scheduled → in_progress → success | partial_success | failed | aborted | timed_out
//! ```
//!
//! The runner records the job's target count, hands the job to the body of its kind, and
//! turns how its targets went into the job's status. Each kind has a body of its own (today
//! only [`super::backup`]); a new kind is a new arm of the `match` in [`run`], and the match
//! does not compile until it has one. The executor loop around the runner races it against
//! the instance timeout and shutdown, and runs the job's undo-work however it ended.

use tracing::warn;

use super::context::{JobContext, TargetOutcome};
use super::{backup, restore};
use crate::clock;
use crate::docker::Runtime;
use crate::model::JobKind;
use crate::reconcile::JobOrder;
use crate::store::JobStatus;

/// How a job's body ended, before timeouts and shutdown are taken into account.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct JobResult {
    /// The final status.
    pub status: JobStatus,
    /// Targets in the job.
    pub total: u32,
    /// Targets that made it.
    pub successful: u32,
    /// One line for the job record.
    pub message: String,
}

/// Runs the job of `order` to its end and returns its final status. The caller races it
/// against the instance timeout and shutdown by cancelling `ctx.cancel`.
pub(super) async fn run<R: Runtime + 'static>(ctx: &JobContext<R>, order: &JobOrder) -> JobResult {
    // A restore brings back one target, whatever else the instance has.
    let total = match order.kind {
        JobKind::Backup => u32::try_from(order.targets.len()).unwrap_or(u32::MAX),
        JobKind::Restore => 1,
    };
    if let Err(e) = ctx
        .store
        .set_job_targets(ctx.job, total, 0, clock::now())
        .await
    {
        warn!(error = %e, "Could not record the job's target count.");
    }
    let outcomes = match order.kind {
        JobKind::Backup => backup::run(ctx, &order.targets).await,
        JobKind::Restore => restore::run(ctx, order).await,
    };
    summarise(order.kind, total, &outcomes)
}

/// Turns per-target outcomes (and, for custom images, the container's) into the job result.
fn summarise(
    kind: JobKind,
    total: u32,
    outcomes: &Result<Vec<TargetOutcome>, String>,
) -> JobResult {
    let outcomes = match outcomes {
        Ok(outcomes) => outcomes,
        Err(message) => {
            return JobResult {
                status: JobStatus::Failed,
                total,
                successful: 0,
                message: message.clone(),
            };
        }
    };
    let successful = u32::try_from(
        outcomes
            .iter()
            .filter(|o| matches!(o, TargetOutcome::Done(_)))
            .count(),
    )
    .unwrap_or(u32::MAX);
    let failed = total - successful.min(total);
    let (status, message) = match (kind, successful, failed) {
        // A restore has one target: its own words say how it went.
        (JobKind::Restore, _, _) => match outcomes.first() {
            Some(TargetOutcome::Done(done)) => (JobStatus::Success, done.summary.clone()),
            Some(TargetOutcome::Failed(reason)) => (JobStatus::Failed, reason.clone()),
            None => (JobStatus::Failed, "the restore did not run".to_owned()),
        },
        (JobKind::Backup, _, 0) => (JobStatus::Success, format!("all {total} targets backed up")),
        (JobKind::Backup, 0, _) => (JobStatus::Failed, format!("all {total} targets failed")),
        (JobKind::Backup, _, _) => (
            JobStatus::PartialSuccess,
            format!("{failed} of {total} targets failed"),
        ),
    };
    JobResult {
        status,
        total,
        successful,
        message,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::executor::context::Done;

    #[test]
    fn the_job_status_follows_the_targets() {
        let done = TargetOutcome::Done(Done::default());
        let failed = TargetOutcome::Failed("no".into());
        assert_eq!(
            summarise(JobKind::Backup, 2, &Ok(vec![done.clone(), done.clone()])).status,
            JobStatus::Success
        );
        let partial = summarise(JobKind::Backup, 2, &Ok(vec![done, failed.clone()]));
        assert_eq!(
            (partial.status, partial.successful, partial.message.as_str()),
            (JobStatus::PartialSuccess, 1, "1 of 2 targets failed")
        );
        assert_eq!(
            summarise(JobKind::Backup, 1, &Ok(vec![failed])).status,
            JobStatus::Failed
        );
        assert_eq!(
            summarise(JobKind::Backup, 3, &Err("repository broken".into())).message,
            "repository broken"
        );
    }
}
