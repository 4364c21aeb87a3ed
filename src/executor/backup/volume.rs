//! A volume target of a backup, for each backend. Restic reads the volume's paths in place
//! when Marina can see its data directory, else a fresh copy a helper container made into a
//! stable staging directory; a custom image always gets a helper's copy in the run's staging
//! layout. Either way every path is checked to stay inside the volume, and a volume with no
//! data fails unless `allowEmpty` says otherwise.

use std::path::{Path, PathBuf};

use tracing::info;

use crate::backend::format_bytes;
use crate::backend::restic::{BackupOptions, Session};
use crate::docker::Runtime;
use crate::executor::beneath;
use crate::executor::context::{Done, JobContext};
use crate::executor::staging::{self, RESTIC_COPY_DIR, RunLayout};
use crate::executor::steps::attached::{Stopped, start_again};
use crate::executor::steps::volume_copy::copy_volume;
use crate::executor::undo::UndoAction;
use crate::model::{VolumeInfo, VolumePath};
use crate::reconcile::graph::Target;

/// Backs up a volume's paths: in place when Marina can read the volume's data directory
/// (a host binary, or a container with the volumes mounted), else from a fresh copy made by
/// a helper container into a stable staging directory. `extra_tags` go on the snapshot
/// besides Marina's own (a restore's safety snapshot is tagged so).
pub(crate) async fn into_restic<R: Runtime + 'static>(
    ctx: &JobContext<R>,
    session: &mut Session<'_>,
    target: &Target,
    found: &VolumeInfo,
    paths: &[VolumePath],
    stopped: Stopped,
    extra_tags: &[String],
) -> Result<Done, String> {
    let volume = found.name.as_str();
    let in_place = match found.mountpoint.as_deref() {
        Some(dir) if tokio::fs::metadata(dir).await.is_ok_and(|m| m.is_dir()) => {
            Some(dir.to_path_buf())
        }
        _ => None,
    };
    let (root, options, copy, still_stopped) = if let Some(dir) = in_place {
        // Read in place: the containers stay stopped until restic has read the volume.
        let options = BackupOptions {
            extra_tags: extra_tags.to_vec(),
            ..BackupOptions::default()
        };
        (dir, options, None, stopped)
    } else {
        let copy = ctx
            .config
            .staging_dir
            .join(ctx.instance.id.as_str())
            .join(RESTIC_COPY_DIR)
            .join("vol")
            .join(volume);
        info!(
            volume,
            "The volume's data is not visible to Marina; copying it with a helper container."
        );
        let undo = match ctx.undo.promise(UndoAction::RemoveDir(copy.clone())).await {
            Ok(undo) => undo,
            Err(e) => {
                start_again(ctx, stopped).await;
                return Err(e.to_string());
            }
        };
        let copied = copy_volume(ctx, volume, paths, &copy).await;
        // Staged: the containers run again while restic reads the copy (SPEC §3.2).
        start_again(ctx, stopped).await;
        copied?;
        let options = BackupOptions {
            ignore_inode: true,
            extra_tags: extra_tags.to_vec(),
        };
        (copy.clone(), options, Some((copy, undo)), Vec::new())
    };
    let result = backup_volume_paths(session, target, volume, &root, paths, &options).await;
    start_again(ctx, still_stopped).await;
    if let Some((copy, undo)) = copy
        && tokio::fs::remove_dir_all(&copy).await.is_ok()
    {
        ctx.undo.fulfilled(undo).await;
    }
    result
}

/// Checks a volume's paths and backs them up as one snapshot.
async fn backup_volume_paths(
    session: &mut Session<'_>,
    target: &Target,
    volume: &str,
    root: &Path,
    paths: &[VolumePath],
    options: &BackupOptions,
) -> Result<Done, String> {
    let absolute = resolve_beneath(root, volume, paths).await?;
    if !target.spec.allow_empty && !any_content(&absolute).await? {
        return Err(no_data(target));
    }
    let summary = session
        .backup_paths(&target.spec.id, &absolute, options)
        .await
        .map_err(|e| e.to_string())?;
    Ok(Done {
        summary: summary.to_string(),
        bytes_added: summary.bytes_added,
        bytes_read: summary.bytes_processed,
    })
}

/// Resolves each path inside the volume root (see [`beneath`]), so restic is handed only
/// places Marina has checked: a link out of the volume fails the target. Without links on
/// the way the paths are exactly `root/path`, as they always were, so the parent snapshot and
/// `forget` grouping stay the same from run to run.
///
/// A window remains: a container writing to the volume could swap a checked directory for a
/// link between this check and restic's read. Stopping the writers (`stopAttached`) closes
/// it; restic itself never follows links below the paths it is given.
async fn resolve_beneath(
    root: &Path,
    volume: &str,
    paths: &[VolumePath],
) -> Result<Vec<PathBuf>, String> {
    let (root, volume, paths) = (root.to_path_buf(), volume.to_owned(), paths.to_vec());
    tokio::task::spawn_blocking(move || {
        paths
            .iter()
            .map(|path| beneath::resolve(&root, &volume, path).map_err(|e| e.to_string()))
            .collect()
    })
    .await
    .map_err(|e| format!("the path check failed: {e}"))?
}

async fn any_content(paths: &[PathBuf]) -> Result<bool, String> {
    let paths = paths.to_vec();
    tokio::task::spawn_blocking(move || {
        for path in &paths {
            if staging::has_content(path)
                .map_err(|e| format!("cannot read {}: {e}", path.display()))?
            {
                return Ok(true);
            }
        }
        Ok(false)
    })
    .await
    .map_err(|e| format!("the content check failed: {e}"))?
}

/// Stages a volume's paths in the run's layout with a helper container, its writers started
/// again as soon as the copy is made.
pub(super) async fn stage<R: Runtime + 'static>(
    ctx: &JobContext<R>,
    layout: &RunLayout,
    target: &Target,
    volume: &str,
    paths: &[VolumePath],
    stopped: Stopped,
) -> Result<Done, String> {
    let dir = layout.volume_dir(volume);
    let result = copy_volume(ctx, volume, paths, &dir).await;
    start_again(ctx, stopped).await;
    result?;
    let bytes = content_size(&dir).await?;
    if !target.spec.allow_empty && bytes == 0 {
        return Err(no_data(target));
    }
    Ok(Done::staged(
        format!("{} in {}", format_bytes(bytes), dir.display()),
        bytes,
    ))
}

/// The bytes of content staged under `dir` (SPEC §3.5: 0 means no data).
async fn content_size(dir: &Path) -> Result<u64, String> {
    let dir = dir.to_path_buf();
    tokio::task::spawn_blocking(move || {
        staging::content_size(&dir).map_err(|e| format!("cannot read {}: {e}", dir.display()))
    })
    .await
    .map_err(|e| format!("the content check failed: {e}"))?
}

/// Why a volume with nothing in it fails (SPEC §3.5).
fn no_data(target: &Target) -> String {
    format!(
        "no data staged for {} — is the volume empty? (set allowEmpty to accept an empty volume)",
        target.spec.id
    )
}
