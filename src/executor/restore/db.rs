//! A database back from a dump snapshot: into a new container started from the source's
//! image and environment on no network (so the data can be inspected before anything that
//! runs is touched), or in place into the running source with the engine's own client.
//!
//! The dump streams from `restic dump` straight into the client in the container: nothing
//! is staged, memory stays flat. A custom image's backup is a dump file its image left in a
//! run directory ([`super::image`]), read the same way. In place, what the database holds
//! is first saved as a safety snapshot tagged `marina:pre-restore` (a dump, exactly as a
//! backup makes one) — for a custom image, as a backup the image makes with
//! `MARINA_PRE_RESTORE=1` — so the restore can itself be undone. Redis has no client that loads a dump: its server is
//! stopped, its data file replaced and the server started again — journaled, so a crash
//! in between never leaves it stopped. A new container is journaled before it is created
//! and removed again if the restore does not finish.

use std::collections::BTreeMap;

use tracing::info;

use super::image::Fetched;
use super::plan::{Origin, Planned, Source};
use crate::backend::format_bytes;
use crate::docker::Runtime;
use crate::docker::dump::{LoadOptions, LoadReport, load_dump};
use crate::executor::backup::custom_image::{SafetyCopy, pre_restore_backup};
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
    match &planned.origin {
        Origin::Snapshot { .. } => restore_from(ctx, planned, DumpFrom::Snapshot).await,
        Origin::Image(image) => {
            // Fetched before anything is saved or replaced: a failed image changes nothing.
            let fetched = super::image::fetch(ctx, planned, image).await?;
            let result = restore_from(ctx, planned, DumpFrom::Image(&fetched)).await;
            super::image::discard(ctx, fetched).await;
            result
        }
    }
}

/// Where the dump comes from.
#[derive(Clone, Copy)]
enum DumpFrom<'a> {
    /// The plan's restic snapshot, streamed with `restic dump`.
    Snapshot,
    /// A file in the run directory a custom image filled.
    Image(&'a Fetched),
}

async fn restore_from<R: Runtime + 'static>(
    ctx: &JobContext<R>,
    planned: &Planned,
    from: DumpFrom<'_>,
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
        save_safety_copy(ctx, planned, from, target, container, kind).await?;
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
        let loaded = load(ctx, planned, from, file, &container.id, kind)
            .await
            .map_err(|e| super::replaced_partly(planned, &e));
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
        let report = load(ctx, planned, from, file, &id, kind).await?;
        // Restored: the new container is the operator's now.
        ctx.undo.fulfilled(undo).await;
        report
    };
    info!(container = destination, "{report}");
    let origin = match &planned.origin {
        Origin::Snapshot { snapshot, .. } => format!("snapshot {}", snapshot.short_id),
        Origin::Image(image) => format!(
            "backup {} of image {}",
            planned.snapshot_name(),
            image.image
        ),
    };
    Ok(Done {
        summary: format!(
            "Restored {} of {} from {origin} into container {destination}{}.",
            format_bytes(report.bytes),
            planned.plan.target,
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
            format!("{}@{}", source.name, planned.snapshot_name()),
        ),
        (format!("{PREFIX}enabled"), "false".to_owned()),
    ])
}

/// Streams the dump `file` of the snapshot (or of the image's run directory) into
/// `container`.
async fn load<R: Runtime + 'static>(
    ctx: &JobContext<R>,
    planned: &Planned,
    from: DumpFrom<'_>,
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
    let runtime = &*ctx.runtime;
    let loaded = match (&planned.origin, from) {
        (Origin::Snapshot { restic, snapshot }, DumpFrom::Snapshot) => {
            info!(
                file,
                "Streaming the dump from the snapshot into the database."
            );
            restic
                .dump_into(&snapshot.id, file, |dump| async move {
                    load_dump(runtime, container, kind, dump, &options)
                        .await
                        .map_err(|e| e.to_string())
                })
                .await
                .map_err(|e| e.to_string())
        }
        (_, DumpFrom::Image(fetched)) => {
            let path = fetched.file(file);
            info!(
                file,
                "Loading the dump the restore image left into the database."
            );
            match tokio::fs::File::open(&path).await {
                Ok(dump) => load_dump(runtime, container, kind, dump, &options)
                    .await
                    .map_err(|e| e.to_string()),
                Err(e) => Err(format!("cannot open {}: {e}", path.display())),
            }
        }
        (Origin::Image(_), DumpFrom::Snapshot) => {
            Err("the plan of a custom image has no snapshot to load from".to_owned())
        }
    };
    if tokio::fs::remove_dir_all(&spool).await.is_ok() {
        ctx.undo.fulfilled(undo).await;
    }
    loaded
}

/// Saves what the database holds now before it is replaced: as a dump snapshot tagged
/// `marina:pre-restore`, or for a custom image as a backup the image makes with
/// `MARINA_PRE_RESTORE=1`.
async fn save_safety_copy<R: Runtime + 'static>(
    ctx: &JobContext<R>,
    planned: &Planned,
    from: DumpFrom<'_>,
    target: &Target,
    container: &ContainerInfo,
    kind: DbKind,
) -> Result<(), String> {
    let dump_args = match &target.spec.kind {
        TargetKind::Db { dump_args, .. } => dump_args.clone(),
        TargetKind::Volume { .. } => Vec::new(),
    };
    let saved = match (&planned.origin, from) {
        (Origin::Snapshot { restic, .. }, DumpFrom::Snapshot) => {
            info!(container = %container.name, "Saving the database's content as a safety snapshot before it is replaced.");
            let mut session = restic.session();
            into_restic(
                ctx,
                &mut session,
                target,
                &DbContainer::new(container),
                kind,
                &dump_args,
                &[PRE_RESTORE_TAG.to_owned()],
            )
            .await
            .map(|done| {
                format!(
                    "the safety snapshot ({}); restore it to undo this restore",
                    done.summary
                )
            })
        }
        (Origin::Image(image), DumpFrom::Image(fetched)) => {
            info!(container = %container.name, "Saving the database's content with the image before it is replaced.");
            let copy = SafetyCopy::Db {
                container,
                kind,
                dump_args: &dump_args,
            };
            pre_restore_backup(ctx, &fetched.layout, &image.image, target, copy)
                .await
                .map(|summary| {
                    format!(
                        "the safety backup: {summary}; to undo this restore, restore that backup in place by the name the image gave it (in its output above)"
                    )
                })
        }
        _ => Err("the plan does not fit where its dump comes from".to_owned()),
    }
    .map_err(|e| {
        format!("could not save the database's content before replacing it, so nothing was replaced: {e}")
    })?;
    info!(container = %container.name, "Saved {saved}.");
    Ok(())
}
