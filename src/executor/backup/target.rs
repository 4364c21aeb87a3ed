//! One target of a backup: the steps every backend takes around its own work. A target that
//! is not ready fails at once; a volume is locked against other jobs and its writers are
//! stopped (`stopAttached`) inside its hooks; a database's kind and container are settled
//! before its hooks run in it. What happens in between depends on the [`Destination`]:
//! [`super::volume`] and [`super::db`] hold each kind of target's work for each.

use super::{db, volume};
use crate::backend::restic::Session;
use crate::docker::Runtime;
use crate::executor::context::{JobContext, TargetOutcome};
use crate::executor::staging::RunLayout;
use crate::executor::steps::attached::stop_attached;
use crate::executor::steps::db_container::{DbContainer, db_kind};
use crate::executor::steps::hooks::with_hooks;
use crate::model::TargetKind;
use crate::reconcile::graph::{DB_KIND_PROBING, Found, Target};

/// Where a backup's targets go.
pub(super) enum Destination<'a, 's> {
    /// Into the job's restic repository session: a volume read in place or from a copy, a
    /// dump streamed.
    Repository(&'a mut Session<'s>),
    /// Into the run's staging layout, for a custom image to ship.
    Staging(&'a RunLayout),
}

/// Backs up one target to `destination`.
pub(super) async fn back_up_target<R: Runtime + 'static>(
    ctx: &JobContext<R>,
    destination: Destination<'_, '_>,
    target: &Target,
) -> TargetOutcome {
    if let Some(problem) = not_ready(target) {
        return TargetOutcome::Failed(problem);
    }
    match (&target.spec.kind, &target.found) {
        (TargetKind::Volume { paths, .. }, Some(Found::Volume(found))) => {
            let _lock = ctx.locks.lock(&found.name).await;
            with_hooks(ctx, target, None, || async {
                let stopped = stop_attached(ctx, target).await?;
                match destination {
                    Destination::Repository(session) => {
                        volume::into_restic(ctx, session, target, found, paths, stopped, &[]).await
                    }
                    Destination::Staging(layout) => {
                        volume::stage(ctx, layout, target, &found.name, paths, stopped).await
                    }
                }
            })
            .await
        }
        (TargetKind::Db { dump_args, .. }, Some(Found::Container(container))) => {
            let kind = match db_kind(ctx, target, &container.id, &container.name).await {
                Ok(kind) => kind,
                Err(reason) => return TargetOutcome::Failed(reason),
            };
            let container = DbContainer::new(container);
            with_hooks(ctx, target, Some(&container), || async {
                match destination {
                    Destination::Repository(session) => {
                        db::into_restic(ctx, session, target, &container, kind, dump_args, &[])
                            .await
                    }
                    Destination::Staging(layout) => {
                        db::stage(ctx, layout, &container, kind, dump_args).await
                    }
                }
            })
            .await
        }
        _ => TargetOutcome::Failed("the target's volume or container is not there".into()),
    }
}

/// Why a target cannot be backed up now, if it cannot. A database whose dump tools are still
/// being looked for is not refused: the job looks for them itself.
fn not_ready(target: &Target) -> Option<String> {
    (!target.ready.is_true() && target.ready.reason != DB_KIND_PROBING)
        .then(|| format!("{}: {}", target.ready.reason, target.ready.message))
}
