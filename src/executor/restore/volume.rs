//! A volume's files back from a snapshot: into a new volume made like the original, or in
//! place of the volume's content.
//!
//! restic restores only into an empty directory Marina can see (see
//! [`Restic::restore_into`]). When Marina sees the volume's data directory (a host binary, a
//! container with the volumes mounted) that directory is filled directly; else restic
//! restores into a staging directory and a helper container copies it into the volume. A
//! custom image's backup is a directory already (what the image left, see [`super::image`]):
//! a helper container copies it in.
//!
//! In place, the containers that mount the volume are stopped first (journaled: they are
//! started again however the job ends, also after a crash), and what the volume holds is
//! saved before anything is replaced — as a safety snapshot tagged `marina:pre-restore`, or
//! for a custom image as a backup the image makes with `MARINA_PRE_RESTORE=1` — so an
//! in-place restore can itself be undone by restoring that. A new volume is journaled
//! before it is created and removed again if the restore does not finish.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use tracing::info;

use super::image::Fetched;
use super::plan::{Origin, Planned, Source};
use crate::backend::format_bytes;
use crate::backend::restic::{Restic, SnapshotInfo};
use crate::docker::volume_fill::FillMode;
use crate::docker::{NewVolume, Runtime, VolumeDetails};
use crate::executor::backup::custom_image::{SafetyCopy, pre_restore_backup};
use crate::executor::backup::volume::into_restic;
use crate::executor::context::{Done, JobContext};
use crate::executor::fault;
use crate::executor::staging::content_size;
use crate::executor::steps::attached::{start_again, stop_journaled};
use crate::executor::steps::volume_fill::fill_volume_from;
use crate::executor::undo::UndoAction;
use crate::model::labels::{RESTORED_FROM_LABEL, labels_of_copy};
use crate::model::{PRE_RESTORE_TAG, VolumeInfo, VolumePath};
use crate::reconcile::graph::Target;
use crate::store::JournalId;

/// Restores the volume of `planned`.
pub(super) async fn restore<R: Runtime + 'static>(
    ctx: &JobContext<R>,
    planned: &Planned,
) -> Result<Done, String> {
    let destination = planned.plan.destination.as_str();
    let _lock = ctx.locks.lock(destination).await;
    match &planned.origin {
        Origin::Snapshot { .. } => restore_from(ctx, planned, FilesFrom::Snapshot).await,
        Origin::Image(image) => {
            // Fetched before anything is stopped or replaced: a failed image changes nothing.
            let fetched = super::image::fetch(ctx, planned, image).await?;
            let result = restore_from(ctx, planned, FilesFrom::Image(&fetched)).await;
            super::image::discard(ctx, fetched).await;
            result
        }
    }
}

/// Where the files come from.
#[derive(Clone, Copy)]
enum FilesFrom<'a> {
    /// The plan's restic snapshot.
    Snapshot,
    /// The run directory a custom image filled, with the volume laid out in it.
    Image(&'a Fetched),
}

async fn restore_from<R: Runtime + 'static>(
    ctx: &JobContext<R>,
    planned: &Planned,
    from: FilesFrom<'_>,
) -> Result<Done, String> {
    let Source::Volume {
        paths,
        original,
        mounters,
        target,
    } = &planned.source
    else {
        return Err("the plan is not a volume's".into());
    };
    let destination = planned.plan.destination.as_str();
    if planned.plan.in_place {
        let original = original
            .as_ref()
            .ok_or_else(|| format!("volume {destination} does not exist"))?;
        let stopped = stop_journaled(ctx, mounters.clone(), "while its volume is restored").await?;
        let result = async {
            save_safety_copy(ctx, planned, from, original, target.as_deref(), paths).await?;
            fault::point("restore-before-replace");
            fault::hang("restore-before-replace").await;
            fill(ctx, planned, original, paths, from, true)
                .await
                .map_err(|e| super::replaced_partly(planned, &e))
        }
        .await;
        start_again(ctx, stopped).await;
        result
    } else {
        let created = create_copy(ctx, planned, original.as_ref()).await?;
        let result = fill(ctx, planned, &created.volume, paths, from, false).await;
        if result.is_ok() {
            // Restored: the new volume is the operator's now.
            ctx.undo.fulfilled(created.undo).await;
        }
        result
    }
}

/// Saves what the volume holds now, an empty volume included, before it is replaced: as a
/// restic snapshot tagged `marina:pre-restore`, or as a backup of the custom image made
/// with `MARINA_PRE_RESTORE=1`.
async fn save_safety_copy<R: Runtime + 'static>(
    ctx: &JobContext<R>,
    planned: &Planned,
    from: FilesFrom<'_>,
    volume: &VolumeDetails,
    target: Option<&Target>,
    paths: &[(String, VolumePath)],
) -> Result<(), String> {
    let Some(target) = target else {
        return Err(format!(
            "volume {} is not a target of instance `{}` any more, so its content cannot be saved before it is replaced; restore into a new volume instead",
            volume.name, ctx.instance.id
        ));
    };
    let inside: Vec<VolumePath> = paths.iter().map(|(_, path)| path.clone()).collect();
    let saved = match (&planned.origin, from) {
        (Origin::Snapshot { restic, .. }, FilesFrom::Snapshot) => {
            info!(volume = %volume.name, "Saving the volume's content as a safety snapshot before it is replaced.");
            let mut target = target.clone();
            target.spec.allow_empty = true;
            let mut session = restic.session();
            let observed = VolumeInfo {
                name: volume.name.clone(),
                driver: volume.driver.clone(),
                mountpoint: volume.mountpoint.clone(),
                labels: volume.labels.clone(),
            };
            into_restic(
                ctx,
                &mut session,
                &target,
                &observed,
                &inside,
                Vec::new(),
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
        (Origin::Image(image), FilesFrom::Image(fetched)) => {
            info!(volume = %volume.name, "Saving the volume's content with the image before it is replaced.");
            let copy = SafetyCopy::Volume {
                name: &volume.name,
                paths: &inside,
            };
            pre_restore_backup(ctx, &fetched.layout, &image.image, target, copy)
                .await
                .map(|summary| {
                    format!(
                        "the safety backup: {summary}; to undo this restore, restore that backup in place by the name the image gave it (in its output above)"
                    )
                })
        }
        _ => Err("the plan does not fit where its files come from".to_owned()),
    }
    .map_err(|e| {
        format!(
            "could not save the volume's content before replacing it, so nothing was replaced: {e}"
        )
    })?;
    info!(volume = %volume.name, "Saved {saved}.");
    Ok(())
}

/// A volume made for the restore, with the journal entry that removes it if the restore
/// does not finish.
struct CreatedCopy {
    volume: VolumeDetails,
    undo: JournalId,
}

/// Creates the new volume with the original's driver and its labels minus Marina's own
/// (and the orchestrators'), marked with where it came from. The original's driver options
/// are left out: they may name the original's own storage (a `local` volume over a host
/// directory or an NFS export), and the copy must never write into the original.
async fn create_copy<R: Runtime + 'static>(
    ctx: &JobContext<R>,
    planned: &Planned,
    original: Option<&VolumeDetails>,
) -> Result<CreatedCopy, String> {
    let name = planned.plan.destination.as_str();
    let undo = ctx
        .undo
        .promise(UndoAction::RemoveVolume(name.to_owned()))
        .await
        .map_err(|e| format!("cannot journal the new volume {name}: {e}"))?;
    let from = format!("{}@{}", planned.plan.target.name(), planned.snapshot_name());
    let new = NewVolume {
        name: name.to_owned(),
        driver: original.map_or_else(|| "local".to_owned(), |v| v.driver.clone()),
        driver_opts: BTreeMap::new(),
        labels: labels_of_copy(
            original.iter().flat_map(|v| v.labels.iter()),
            [(RESTORED_FROM_LABEL.to_owned(), from)],
        ),
    };
    let volume = match ctx.runtime.create_volume(new).await {
        Ok(volume) => volume,
        Err(e) => {
            // Not created: nothing to remove (and an existing volume of that name is not ours).
            ctx.undo.fulfilled(undo).await;
            return Err(format!("cannot create volume {name}: {e}"));
        }
    };
    info!(volume = name, driver = %volume.driver, "Created volume {name} for the restored files.");
    Ok(CreatedCopy { volume, undo })
}

/// Fills `volume` with the snapshot's directories (or those of a directory laid out like
/// the volume); with `replace`, what is at each path is removed first.
async fn fill<R: Runtime + 'static>(
    ctx: &JobContext<R>,
    planned: &Planned,
    volume: &VolumeDetails,
    paths: &[(String, VolumePath)],
    from: FilesFrom<'_>,
    replace: bool,
) -> Result<Done, String> {
    let mode = if replace {
        FillMode::Replace
    } else {
        FillMode::IntoEmpty
    };
    let inside: Vec<VolumePath> = paths.iter().map(|(_, p)| p.clone()).collect();
    let (restic, snapshot) = match (&planned.origin, from) {
        (Origin::Snapshot { restic, snapshot }, FilesFrom::Snapshot) => (restic, snapshot),
        (_, FilesFrom::Image(fetched)) => {
            // A helper copies it in, whether or not Marina sees the volume's data: it
            // keeps owners, modes, links and mtimes to the second (see `volume_fill`).
            let dir = fetched.volume_dir(planned.plan.target.name().as_str());
            let bytes = tokio::task::spawn_blocking({
                let dir = dir.clone();
                move || content_size(&dir)
            })
            .await
            .ok()
            .and_then(Result::ok)
            .unwrap_or(0);
            fill_volume_from(ctx, &volume.name, &inside, &dir, mode).await?;
            return Ok(Done {
                summary: format!(
                    "Restored {} from backup {} of image {} into volume {}.",
                    format_bytes(bytes),
                    planned.snapshot_name(),
                    image_of(planned),
                    volume.name
                ),
                bytes_added: 0,
                bytes_read: bytes,
            });
        }
        (Origin::Image(_), FilesFrom::Snapshot) => {
            return Err("the plan of a custom image has no snapshot to restore from".into());
        }
    };
    let fresh = ctx
        .runtime
        .volume_info(&volume.name)
        .await
        .map_err(|e| format!("cannot inspect volume {}: {e}", volume.name))?
        .ok_or_else(|| format!("volume {} disappeared", volume.name))?;
    let visible = match fresh.mountpoint.as_deref() {
        Some(dir) if tokio::fs::metadata(dir).await.is_ok_and(|m| m.is_dir()) => {
            Some(dir.to_path_buf())
        }
        _ => None,
    };
    if let Some(root) = visible {
        for (source, path) in paths {
            let dir = prepare(&root, &volume.name, path, replace).await?;
            restore_dir(restic, snapshot, source, &dir).await?;
        }
    } else {
        {
            let staging = ctx
                .config
                .staging_dir
                .join(ctx.instance.id.as_str())
                .join(format!("restore-{}", ctx.job));
            let undo = ctx
                .undo
                .promise(UndoAction::RemoveDir(staging.clone()))
                .await
                .map_err(|e| e.to_string())?;
            info!(
                volume = %volume.name,
                "The volume's data is not visible to Marina; restoring into staging and copying it in with a helper container."
            );
            let result = async {
                for (source, path) in paths {
                    let dir = prepare(&staging, &volume.name, path, true).await?;
                    restore_dir(restic, snapshot, source, &dir).await?;
                }
                fill_volume_from(ctx, &volume.name, &inside, &staging, mode).await
            }
            .await;
            if tokio::fs::remove_dir_all(&staging).await.is_ok() {
                ctx.undo.fulfilled(undo).await;
            }
            result?;
        }
    }
    let files = planned.plan.files.unwrap_or_default();
    let bytes = planned.plan.bytes.unwrap_or_default();
    Ok(Done {
        summary: format!(
            "Restored {files} entries, {} from snapshot {} into volume {}.",
            format_bytes(bytes),
            snapshot.short_id,
            volume.name
        ),
        bytes_added: 0,
        bytes_read: bytes,
    })
}

/// The custom image of a plan, for messages.
fn image_of(planned: &Planned) -> &str {
    match &planned.origin {
        Origin::Image(image) => &image.image,
        Origin::Snapshot { .. } => "",
    }
}

async fn restore_dir(
    restic: &Restic,
    snapshot: &SnapshotInfo,
    source: &str,
    dir: &Path,
) -> Result<(), String> {
    restic
        .restore_into(&snapshot.id, source, dir)
        .await
        .map_err(|e| e.to_string())
}

/// The directory a volume path is restored into, under `root`, made empty: created when
/// missing, its content removed when `replace`. Refuses to pass through a symlink, which a
/// container could have pointed anywhere on the host.
async fn prepare(
    root: &Path,
    volume: &str,
    path: &VolumePath,
    replace: bool,
) -> Result<PathBuf, String> {
    let (root, volume, path) = (root.to_path_buf(), volume.to_owned(), path.clone());
    tokio::task::spawn_blocking(move || prepare_blocking(&root, &volume, &path, replace))
        .await
        .map_err(|e| format!("preparing the restore failed: {e}"))?
}

fn prepare_blocking(
    root: &Path,
    volume: &str,
    path: &VolumePath,
    replace: bool,
) -> Result<PathBuf, String> {
    let mut dir = root.to_path_buf();
    std::fs::create_dir_all(root).map_err(|e| format!("cannot create {}: {e}", root.display()))?;
    for component in Path::new(path.relative()).components() {
        dir.push(component);
        match std::fs::symlink_metadata(&dir) {
            Ok(meta) if meta.file_type().is_symlink() => {
                return Err(format!(
                    "path {path} of volume {volume} passes through a symlink ({}); a restore never writes through one. Remove the link and restore again",
                    dir.display()
                ));
            }
            Ok(meta) if meta.is_dir() => {}
            Ok(_) => {
                return Err(format!(
                    "path {path} of volume {volume} is not a directory ({}); remove it and restore again",
                    dir.display()
                ));
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                std::fs::create_dir(&dir)
                    .map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
            }
            Err(e) => return Err(format!("cannot read {}: {e}", dir.display())),
        }
    }
    let entries =
        std::fs::read_dir(&dir).map_err(|e| format!("cannot read {}: {e}", dir.display()))?;
    for entry in entries {
        let entry = entry.map_err(|e| format!("cannot read {}: {e}", dir.display()))?;
        if !replace {
            return Err(format!(
                "{} is not empty; a restore into a new volume expects it empty",
                dir.display()
            ));
        }
        let child = entry.path();
        let removed = match entry.file_type() {
            Ok(kind) if kind.is_dir() => std::fs::remove_dir_all(&child),
            _ => std::fs::remove_file(&child),
        };
        removed.map_err(|e| format!("cannot remove {}: {e}", child.display()))?;
    }
    Ok(dir)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn preparing_empties_a_path_but_never_follows_a_link_out() {
        let root = tempfile::tempdir().unwrap();
        let outside = tempfile::tempdir().unwrap();
        std::fs::write(outside.path().join("keep"), "host file").unwrap();
        std::fs::create_dir_all(root.path().join("a/b")).unwrap();
        std::fs::write(root.path().join("a/b/old"), "old").unwrap();
        std::os::unix::fs::symlink(outside.path(), root.path().join("a/b/link")).unwrap();
        std::os::unix::fs::symlink(outside.path(), root.path().join("escape")).unwrap();

        let path = VolumePath::parse("a/b").unwrap();
        assert!(
            prepare_blocking(root.path(), "v", &path, false)
                .unwrap_err()
                .contains("not empty")
        );
        let dir = prepare_blocking(root.path(), "v", &path, true).unwrap();
        assert_eq!(std::fs::read_dir(&dir).unwrap().count(), 0);
        assert!(
            outside.path().join("keep").exists(),
            "a link's target is never removed"
        );

        let through = VolumePath::parse("escape/x").unwrap();
        assert!(
            prepare_blocking(root.path(), "v", &through, true)
                .unwrap_err()
                .contains("symlink")
        );
        assert!(!outside.path().join("x").exists());
        let missing = VolumePath::parse("new/dir").unwrap();
        assert!(
            prepare_blocking(root.path(), "v", &missing, false)
                .unwrap()
                .is_dir()
        );
    }
}
