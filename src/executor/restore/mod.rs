//! The restore kind of job, and the questions asked before one: which snapshots a target
//! can come back from, and what a restore would do.
//!
//! A restore brings back one target from one snapshot — beside the original (a new volume,
//! a new database container) or in its place — following the plan its dry run showed
//! ([`plan`]), worked out again when the job starts so that nothing changed in between is
//! overlooked. It runs through the same runner as a backup: the same journal and undo-work
//! (stopped containers started again, staging removed, a half-made copy removed), the same
//! log, status and crash recovery.
//!
//! A custom-image instance restores through its image instead (the restore contract of
//! docs/custom-backends.md): the image fetches the backup into a run directory first, and
//! the rest is the same as from a snapshot.
//!
//! - [`points`] — an instance's snapshots as restore points, and what each restores;
//! - [`plan`] — the plan of a restore, changing nothing;
//! - [`image`] — a custom image's backup fetched into a run directory by the image;
//! - [`volume`] — a volume's files back, into a new volume or in place;
//! - [`db`] — a database back, into a new container or in place.

mod db;
mod image;
mod plan;
mod points;
mod volume;

use tracing::{info, warn};

use self::plan::{Planned, Source};
use super::context::{Done, JobContext, TargetOutcome};
use crate::backend::restic::Restic;
use crate::docker::Runtime;
use crate::executor::sizes::Sizes;
use crate::model::{Refusal, RefusalKind, RestoreAnswer, RestoreQuestion};
use crate::reconcile::{AskOrder, JobOrder};

/// Answers a question about an instance's restore points on its reply channel; `owner`
/// labels the container a custom image's plan may create to look into the image.
pub(crate) async fn answer<R: Runtime>(runtime: &R, sizes: &Sizes, owner: &str, order: AskOrder) {
    let AskOrder {
        instance,
        targets,
        config,
        question,
        reply,
    } = order;
    let answer = match question {
        RestoreQuestion::Snapshots { target, count } => {
            match Restic::for_instance(&config, &instance) {
                None => Err(Refusal::new(
                    RefusalKind::Invalid,
                    format!(
                        "instance `{id}` ships its backups with a custom image, which keeps its own list of them; Marina cannot list them. Look them up where the image writes them, and restore one by its name with `marina restore {id} TARGET --snapshot NAME` (or `latest`)",
                        id = instance.id
                    ),
                )),
                Some(restic) => points::list(&restic, sizes, target.as_ref(), count)
                    .await
                    .map(RestoreAnswer::Snapshots)
                    .map_err(|e| Refusal::new(RefusalKind::Unavailable, e.to_string())),
            }
        }
        RestoreQuestion::Plan(request) => plan::plan(
            runtime,
            &config,
            &instance,
            &targets,
            &request,
            sizes,
            owner,
            crate::clock::now(),
        )
        .await
        .map(|planned| RestoreAnswer::Plan(Box::new(planned.plan))),
    };
    reply.send(answer);
}

/// Runs the restore its job record asks for; the one target's outcome, or why the job
/// failed before it could start on it.
pub(crate) async fn run<R: Runtime + 'static>(
    ctx: &JobContext<R>,
    order: &JobOrder,
) -> Result<Vec<TargetOutcome>, String> {
    let record = ctx
        .store
        .job(ctx.job)
        .await
        .map_err(|e| format!("cannot read the job's record: {e}"))?;
    let Some((request, asked_at)) = record.and_then(|job| Some((job.restore?, job.created_at)))
    else {
        return Err("the job's record holds no restore request".into());
    };
    info!(
        target = %request.target,
        snapshot = %request.snapshot,
        "Restoring {} from snapshot {} {}.",
        request.target,
        request.snapshot,
        request.destination()
    );
    let planned = plan::plan(
        &*ctx.runtime,
        &ctx.config,
        &ctx.instance,
        &order.targets,
        &request,
        &ctx.sizes,
        &ctx.owner,
        asked_at,
    )
    .await
    .map_err(|refusal| refusal.message)?;
    if !planned.plan.conflicts.is_empty() {
        for conflict in &planned.plan.conflicts {
            warn!("{conflict}");
        }
        return Err(format!(
            "the restore cannot run as asked: {}",
            planned.plan.conflicts.join("; ")
        ));
    }
    for step in &planned.plan.steps {
        info!("Plan: {step}.");
    }
    let outcome = match restore(ctx, &planned).await {
        Ok(done) => {
            info!(target = %planned.plan.target, "{}", done.summary);
            TargetOutcome::Done(done)
        }
        Err(reason) => {
            tracing::error!(target = %planned.plan.target, error = %reason, "The restore of {} failed: {reason}", planned.plan.target);
            TargetOutcome::Failed(reason)
        }
    };
    Ok(vec![outcome])
}

async fn restore<R: Runtime + 'static>(
    ctx: &JobContext<R>,
    planned: &Planned,
) -> Result<Done, String> {
    match &planned.source {
        Source::Volume { .. } => volume::restore(ctx, planned).await,
        Source::Db { .. } => db::restore(ctx, planned).await,
    }
}

/// Why an in-place restore failed after its safety copy was saved, and how to get back: the
/// target may hold part of the old and part of the restored data.
fn replaced_partly(planned: &Planned, error: &str) -> String {
    let target = &planned.plan.target;
    let instance = &planned.plan.instance;
    format!(
        "{error}. If the restore got as far as replacing data, {target} may hold part of its old data and part of the snapshot's: what it held before is in the safety copy saved just before (marked pre-restore by `marina snapshots {instance} {target}`, for a custom image the image's pre-restore backup): restore that in place to put it back, or run this restore again"
    )
}
