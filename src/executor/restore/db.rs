//! A database back from a dump snapshot: into a new container started from the source's
//! image and environment on no network (so the data can be inspected before anything that
//! runs is touched), or in place into the running source with the engine's own client.
//!
//! The dump streams from `restic dump` straight into the client in the container: nothing
//! is staged, memory stays flat. In place, what the database holds is first saved as a
//! safety snapshot tagged `marina:pre-restore` (a dump, exactly as a backup makes one), so
//! the restore can itself be undone. Redis has no client that loads a dump: its server is
//! stopped, its data file replaced and the server started again — journaled, so a crash
//! in between never leaves it stopped. A new container is journaled before it is created
//! and removed again if the restore does not finish.

use std::collections::BTreeMap;

use tracing::info;

use super::plan::{Planned, Source};
use crate::backend::format_bytes;
use crate::docker::Runtime;
use crate::docker::dump::{LoadOptions, LoadReport, load_dump};
use crate::executor::backup::db::into_restic;
use crate::executor::context::{Done, JobContext};
use crate::executor::fault;
use crate::executor::steps::db_container::DbContainer;
use crate::executor::undo::UndoAction;
use crate::model::labels::{PREFIX, RESTORED_FROM_LABEL};
use crate::model::{ContainerInfo, DbKind, PRE_RESTORE_TAG, TargetKind};
use crate::reconcile::graph::Target;

/// Restores the database of `planned`.
pub(super) async fn restore<R: Runtime + 'static>(
    ctx: &JobContext<R>,
    planned: &Planned,
) -> Result<Done, String> {
    let Source::Db {
        file,
        kind,
        container,
        target,
    } = &planned.source
    else {
        return Err("the plan is not a database's".into());
    };
    let kind = *kind;
    let destination = planned.plan.destination.as_str();
    let report = if planned.plan.in_place {
        save_safety_snapshot(ctx, planned, target, container, kind).await?;
        fault::point("restore-before-load");
        fault::hang("restore-before-load").await;
        // Redis is stopped and started again by the load: journaled like stopAttached.
        let restart =
            if kind == DbKind::Redis {
                let action = UndoAction::StartContainer {
                    id: container.id.clone(),
                    name: container.name.clone(),
                };
                Some(ctx.undo.promise(action).await.map_err(|e| {
                    format!("cannot journal the restart of {}: {e}", container.name)
                })?)
            } else {
                None
            };
        let loaded = load(ctx, planned, file, &container.id, kind).await;
        if let Some(restart) = restart
            && loaded.is_ok()
        {
            ctx.undo.fulfilled(restart).await;
        }
        loaded?
    } else {
        let undo = ctx
            .undo
            .promise(UndoAction::RemoveContainer {
                id: destination.to_owned(),
                name: destination.to_owned(),
            })
            .await
            .map_err(|e| format!("cannot journal the new container {destination}: {e}"))?;
        let id = match ctx
            .runtime
            .create_db_clone(&container.id, destination, clone_labels(planned, container))
            .await
        {
            Ok(id) => id,
            Err(e) => {
                // Not created: nothing to remove (a container of that name is not ours).
                ctx.undo.fulfilled(undo).await;
                return Err(format!("cannot create container {destination}: {e}"));
            }
        };
        info!(container = destination, image = %container.image, "Created container {destination} from the image of {} on no network.", container.name);
        ctx.runtime
            .start_container(&id)
            .await
            .map_err(|e| format!("cannot start container {destination}: {e}"))?;
        let report = load(ctx, planned, file, &id, kind).await?;
        // Restored: the new container is the operator's now.
        ctx.undo.fulfilled(undo).await;
        report
    };
    info!(container = destination, "{report}");
    Ok(Done {
        summary: format!(
            "Restored {} of {} from snapshot {} into container {destination}{}.",
            format_bytes(report.bytes),
            planned.plan.target,
            planned.snapshot.short_id,
            if planned.plan.in_place {
                ""
            } else {
                " (on no network: connect it with `docker network connect` to use it)"
            }
        ),
        bytes_added: 0,
        bytes_read: report.bytes,
    })
}

/// The clone's labels: where it came from, and Marina's opt-out, which wins over any label
/// of the image (the engine puts those back) so that the copy is never backed up as a
/// target of its own.
fn clone_labels(planned: &Planned, source: &ContainerInfo) -> BTreeMap<String, String> {
    BTreeMap::from([
        (
            RESTORED_FROM_LABEL.to_owned(),
            format!("{}@{}", source.name, planned.snapshot.short_id),
        ),
        (format!("{PREFIX}enabled"), "false".to_owned()),
    ])
}

/// Streams the dump `file` of the snapshot into `container`.
async fn load<R: Runtime + 'static>(
    ctx: &JobContext<R>,
    planned: &Planned,
    file: &str,
    container: &str,
    kind: DbKind,
) -> Result<LoadReport, String> {
    let spool = ctx
        .config
        .staging_dir
        .join(ctx.instance.id.as_str())
        .join(format!("restore-{}-spool", ctx.job));
    let undo = ctx
        .undo
        .promise(UndoAction::RemoveDir(spool.clone()))
        .await
        .map_err(|e| e.to_string())?;
    tokio::fs::create_dir_all(&spool)
        .await
        .map_err(|e| format!("cannot create {}: {e}", spool.display()))?;
    let options = LoadOptions {
        spool_dir: spool.clone(),
        ..LoadOptions::new(ctx.cancel.clone())
    };
    info!(
        file,
        "Streaming the dump from the snapshot into the database."
    );
    let runtime = &*ctx.runtime;
    let loaded = planned
        .restic
        .dump_into(&planned.snapshot.id, file, |dump| async move {
            load_dump(runtime, container, kind, dump, &options)
                .await
                .map_err(|e| e.to_string())
        })
        .await
        .map_err(|e| e.to_string());
    if tokio::fs::remove_dir_all(&spool).await.is_ok() {
        ctx.undo.fulfilled(undo).await;
    }
    loaded
}

/// Saves what the database holds now as a dump snapshot tagged `marina:pre-restore`.
async fn save_safety_snapshot<R: Runtime + 'static>(
    ctx: &JobContext<R>,
    planned: &Planned,
    target: &Target,
    container: &ContainerInfo,
    kind: DbKind,
) -> Result<(), String> {
    let dump_args = match &target.spec.kind {
        TargetKind::Db { dump_args, .. } => dump_args.clone(),
        TargetKind::Volume { .. } => Vec::new(),
    };
    info!(container = %container.name, "Saving the database's content as a safety snapshot before it is replaced.");
    let mut session = planned.restic.session();
    let saved = into_restic(
        ctx,
        &mut session,
        target,
        &DbContainer::new(container),
        kind,
        &dump_args,
        &[PRE_RESTORE_TAG.to_owned()],
    )
    .await
    .map_err(|e| {
        format!("could not save the database's content before replacing it, so nothing was replaced: {e}")
    })?;
    info!(container = %container.name, "Saved the safety snapshot ({}); restore it to undo this restore.", saved.summary);
    Ok(())
}
