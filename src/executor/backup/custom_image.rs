//! The custom-image path of a backup (SPEC §4.2): every target is staged in the run's layout
//! (see [`super::volume`] and [`super::db`]), what failed targets left is removed, and the
//! image runs once over what was staged, with the staging directory as its `/backup`. The
//! run's directory is journaled before it is made and removed at the end, whatever happened.
//! The same staging and run, for one target and with `MARINA_PRE_RESTORE=1`, is the safety
//! backup an in-place restore makes first ([`pre_restore_backup`]).

use tracing::{Instrument, error, info, info_span, warn};

use super::target::{Destination, back_up_target};
use super::{db, volume};
use crate::backend::format_bytes;
use crate::clock;
use crate::docker::Runtime;
use crate::executor::context::{JobContext, TargetOutcome, record_progress};
use crate::executor::staging::RunLayout;
use crate::executor::steps::custom_image::{ImageRun, PRE_RESTORE_ENV, run_image};
use crate::executor::steps::db_container::DbContainer;
use crate::executor::undo::UndoAction;
use crate::metrics::{BackupImageFinished, TargetStaged};
use crate::model::{ContainerInfo, DbKind, TargetId, VolumePath};
use crate::reconcile::graph::Target;

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
    run_image(ctx, layout, image, ImageRun::Backup).await?;
    ctx.metrics.emit(BackupImageFinished {
        instance: &ctx.instance.id,
        image,
        targets: staged,
        at: clock::now(),
    });
    Ok(())
}

/// What an in-place restore saves with the image before it replaces it.
pub(crate) enum SafetyCopy<'a> {
    /// A volume's paths.
    Volume {
        /// The volume.
        name: &'a str,
        /// Its paths, as a backup stages them.
        paths: &'a [VolumePath],
    },
    /// A database's dump.
    Db {
        /// The database's container.
        container: &'a ContainerInfo,
        /// Its engine.
        kind: DbKind,
        /// The target's `dumpArgs`.
        dump_args: &'a [String],
    },
}

/// Backs up one target with the image before an in-place restore replaces it: staged in a
/// run directory of its own exactly as a backup stages it (an empty volume included), then
/// the image runs over it with `MARINA_PRE_RESTORE=1`, so it can name that backup apart.
/// Like restic's safety snapshot, it runs no hooks and stops nothing itself: the restore
/// has stopped the volume's containers already. `beside` is the restore's own run, whose
/// directory this one must not share. The run directory is journaled and removed.
pub(crate) async fn pre_restore_backup<R: Runtime + 'static>(
    ctx: &JobContext<R>,
    beside: &RunLayout,
    image: &str,
    target: &Target,
    copy: SafetyCopy<'_>,
) -> Result<String, String> {
    let layout = beside.beside(clock::now());
    let run_dir = layout.run_dir();
    let undo = ctx
        .undo
        .promise(UndoAction::RemoveDir(run_dir.clone()))
        .await
        .map_err(|e| format!("cannot journal the staging directory: {e}"))?;
    let result = async {
        tokio::fs::create_dir_all(&run_dir).await.map_err(|e| {
            format!(
                "cannot create the staging directory {}: {e}",
                run_dir.display()
            )
        })?;
        let done = match copy {
            SafetyCopy::Volume { name, paths } => {
                let mut target = target.clone();
                target.spec.allow_empty = true;
                volume::stage(ctx, &layout, &target, name, paths, Vec::new()).await?
            }
            SafetyCopy::Db {
                container,
                kind,
                dump_args,
            } => db::stage(ctx, &layout, &DbContainer::new(container), kind, dump_args).await?,
        };
        info!("Staged for the safety backup: {}.", done.summary);
        run_image(ctx, &layout, image, ImageRun::PreRestoreBackup).await?;
        Ok(format!(
            "{} of {} backed up by image {image} with {PRE_RESTORE_ENV}=1 (run {})",
            format_bytes(done.bytes_read),
            target.spec.id,
            layout.timestamp
        ))
    }
    .await;
    match tokio::fs::remove_dir_all(&run_dir).await {
        Ok(()) => ctx.undo.fulfilled(undo).await,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => ctx.undo.fulfilled(undo).await,
        Err(e) => {
            warn!(path = %run_dir.display(), error = %e, "Could not remove the staging directory now; it is retried at the end of the job.");
        }
    }
    result
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
