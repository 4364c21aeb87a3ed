//! The custom-image path of a backup (SPEC §4.2): every target is staged in the run's layout
//! (see [`super::volume`] and [`super::db`]), what failed targets left is removed, and the
//! image runs once over what was staged, with the staging directory as its `/backup`. The
//! run's directory is journaled before it is made and removed at the end, whatever happened.

use tracing::{Instrument, error, info, info_span, warn};

use super::target::{Destination, back_up_target};
use crate::clock;
use crate::docker::own_container::host_path;
use crate::docker::{JobContainerSpec, PullPolicy, RunOutcome, Runtime};
use crate::executor::context::{JobContext, TargetOutcome, log_output, record_progress};
use crate::executor::fault;
use crate::executor::staging::RunLayout;
use crate::executor::undo::UndoAction;
use crate::metrics::{BackupImageFinished, TargetStaged};
use crate::model::{Secret, TargetId};
use crate::reconcile::graph::Target;
use crate::store::JournalKind;

/// Stages `targets` and runs `image` once over them.
pub(super) async fn job<R: Runtime + 'static>(
    ctx: &JobContext<R>,
    targets: &[&Target],
    image: &str,
) -> Result<Vec<TargetOutcome>, String> {
    let layout = RunLayout::new(&ctx.config.staging_dir, &ctx.instance.id, clock::now());
    let run_dir = layout.run_dir();
    let undo = ctx
        .undo
        .promise(UndoAction::RemoveDir(run_dir.clone()))
        .await
        .map_err(|e| format!("cannot journal the staging directory: {e}"))?;
    tokio::fs::create_dir_all(&run_dir).await.map_err(|e| {
        format!(
            "cannot create the staging directory {}: {e}",
            run_dir.display()
        )
    })?;
    let mut outcomes = Vec::with_capacity(targets.len());
    for target in targets {
        if ctx.cancel.is_cancelled() {
            break;
        }
        let span = info_span!("target", target = %target.spec.id);
        let outcome = back_up_target(ctx, Destination::Staging(&layout), target)
            .instrument(span.clone())
            .await;
        span.in_scope(|| report_staged(ctx, &outcome));
        outcomes.push(outcome);
    }
    let staged = outcomes
        .iter()
        .filter(|o| matches!(o, TargetOutcome::Done(_)))
        .count();
    let leftovers = remove_failed_targets(&layout, targets, &outcomes).await;
    let result = if ctx.cancel.is_cancelled() {
        Err("the job was stopped".to_owned())
    } else if let Err(e) = leftovers {
        Err(e)
    } else if staged == 0 {
        Err("no target could be staged; the backup image was not run".to_owned())
    } else {
        let shipped: Vec<&TargetId> = targets
            .iter()
            .zip(&outcomes)
            .filter(|(_, outcome)| matches!(outcome, TargetOutcome::Done(_)))
            .map(|(target, _)| &target.spec.id)
            .collect();
        run_backend(ctx, &layout, image, &shipped)
            .await
            .map(|()| outcomes)
    };
    if let Ok(outcomes) = &result {
        record_progress(ctx, targets.len(), outcomes).await;
    }
    match tokio::fs::remove_dir_all(&run_dir).await {
        Ok(()) => ctx.undo.fulfilled(undo).await,
        Err(e) => {
            warn!(path = %run_dir.display(), error = %e, "Could not remove the staging directory now; it is retried at the end of the job.");
        }
    }
    result
}

/// Removes what failed targets left in the run directory, so the image never ships a
/// partial copy or a truncated dump as if it were whole.
async fn remove_failed_targets(
    layout: &RunLayout,
    targets: &[&Target],
    outcomes: &[TargetOutcome],
) -> Result<(), String> {
    for (target, outcome) in targets.iter().zip(outcomes) {
        if !matches!(outcome, TargetOutcome::Failed(_)) {
            continue;
        }
        let path = match &target.spec.id {
            TargetId::Volume(name) => layout.volume_dir(name.as_str()),
            TargetId::Db(name) => layout.run_dir().join("dbs").join(name.as_str()),
        };
        match tokio::fs::remove_dir_all(&path).await {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => {
                return Err(format!(
                    "cannot remove the partial data of failed target {} ({}): {e}; the backup image was not run",
                    target.spec.id,
                    path.display()
                ));
            }
        }
    }
    Ok(())
}

/// Runs the custom image once over the staged run (SPEC §4.2).
async fn run_backend<R: Runtime + 'static>(
    ctx: &JobContext<R>,
    layout: &RunLayout,
    image: &str,
    staged: &[&TargetId],
) -> Result<(), String> {
    let host_dir = host_path(
        &*ctx.runtime,
        ctx.own_container.as_deref(),
        &layout.instance_root,
    )
    .await
    .map_err(|e| format!("cannot find the host path of the staging directory: {e}"))?;
    let mut env: Vec<(String, Secret)> = ctx
        .instance
        .env
        .iter()
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    env.push((
        "MARINA_INSTANCE_ID".into(),
        Secret::new(ctx.instance.id.to_string()),
    ));
    env.push((
        "MARINA_HOSTNAME".into(),
        Secret::new(ctx.config.node_name.clone()),
    ));
    env.push((
        "MARINA_BACKUP_DIR".into(),
        Secret::new(layout.backup_dir_in_container()),
    ));
    let spec = JobContainerSpec {
        image: image.to_owned(),
        job_id: ctx.job.to_string(),
        owner: ctx.owner.clone(),
        instance_id: ctx.instance.id.to_string(),
        env,
        host_dir,
        pull: PullPolicy::IfMissing,
        timeout: None,
    };
    let journal = ctx
        .store
        .journal_add(
            ctx.job,
            JournalKind::BackendContainer,
            &ctx.job.to_string(),
            image,
            clock::now(),
        )
        .await
        .map_err(|e| format!("cannot journal the backup container: {e}"))?;
    info!(image, "Running the backup image.");
    let outcome = ctx
        .runtime
        .run_job_container(
            spec,
            |line| {
                fault::point("backend-output");
                log_output(line);
            },
            ctx.cancel.clone(),
        )
        .await;
    if let Err(e) = ctx.store.journal_resolve(journal, clock::now()).await {
        warn!(error = %e, "Could not mark the backup container as removed.");
    }
    match outcome.map_err(|e| e.to_string())? {
        RunOutcome::Exited(0) => {
            ctx.metrics.emit(BackupImageFinished {
                instance: &ctx.instance.id,
                image,
                targets: staged,
                at: clock::now(),
            });
            Ok(())
        }
        RunOutcome::Exited(code) => {
            Err(format!("the backup image {image} exited with code {code}"))
        }
        RunOutcome::TimedOut | RunOutcome::Cancelled => Err(format!(
            "the backup image {image} was stopped before it finished"
        )),
    }
}

/// Reports a target staged for a custom image (counted; backed up once the image succeeds)
/// or failed.
fn report_staged<R>(ctx: &JobContext<R>, outcome: &TargetOutcome) {
    match outcome {
        TargetOutcome::Done(done) => ctx.metrics.emit(TargetStaged {
            instance: &ctx.instance.id,
            summary: &done.summary,
            bytes: done.bytes_read,
        }),
        TargetOutcome::Failed(reason) => error!("Target failed: {reason}."),
    }
}
