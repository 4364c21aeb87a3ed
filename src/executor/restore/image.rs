//! The image's half of a restore from a custom image's backup (the restore contract of
//! docs/custom-backends.md): the instance's image runs once with `MARINA_RESTORE=1` and
//! fills an empty run directory with the target's part of the staging layout
//! (`vol/<volume>/…` or `dbs/<container>/dump.*`); Marina then restores from that directory
//! exactly as from a snapshot ([`super::volume`], [`super::db`]).
//!
//! The image runs before anything is stopped, saved or replaced, and what it left is checked
//! before it is used: a failed run, or one that leaves the target's part missing or empty,
//! fails the restore with nothing changed. The run directory is journaled before it is made
//! and removed however the job ends.

use std::path::{Path, PathBuf};

use tracing::{info, warn};

use super::plan::{ImageRestore, Planned, Source};
use crate::backend::format_bytes;
use crate::clock;
use crate::docker::Runtime;
use crate::executor::context::JobContext;
use crate::executor::staging::{self, RunLayout};
use crate::executor::steps::custom_image::{ImageRun, run_image};
use crate::executor::undo::UndoAction;
use crate::model::{TargetId, VolumePath};
use crate::store::JournalId;

/// A run directory the image filled, until it is discarded.
pub(super) struct Fetched {
    /// The run: `{stagingDir}/{instanceID}/{timestamp}`, `MARINA_BACKUP_DIR` of the image.
    pub layout: RunLayout,
    /// The journal entry that removes the directory if the job ends before [`discard`].
    undo: JournalId,
}

impl Fetched {
    /// Where the image left the files of `volume`: `…/vol/<volume>`, laid out like it.
    pub(super) fn volume_dir(&self, volume: &str) -> PathBuf {
        self.layout.volume_dir(volume)
    }

    /// Where the image left the dump `file` (`dbs/<container>/dump.*`).
    pub(super) fn file(&self, file: &str) -> PathBuf {
        self.layout.run_dir().join(file)
    }
}

/// Runs the image to fetch the backup of `planned` into a fresh run directory and checks
/// that it left the target's part of the layout; on any failure the directory is removed
/// and nothing else has been touched.
pub(super) async fn fetch<R: Runtime + 'static>(
    ctx: &JobContext<R>,
    planned: &Planned,
    image: &ImageRestore,
) -> Result<Fetched, String> {
    let layout = RunLayout::new(&ctx.config.staging_dir, &ctx.instance.id, clock::now());
    let run_dir = layout.run_dir();
    let undo = ctx
        .undo
        .promise(UndoAction::RemoveDir(run_dir.clone()))
        .await
        .map_err(|e| format!("cannot journal the restore's run directory: {e}"))?;
    let fetched = Fetched { layout, undo };
    let result = async {
        make_empty_dir(&run_dir).await?;
        let run = ImageRun::Restore {
            target: &planned.plan.target,
            snapshot: &image.snapshot,
            command: &image.command,
        };
        run_image(ctx, &fetched.layout, &image.image, run)
            .await
            .map_err(|e| format!("{e}; nothing was changed"))?;
        check_layout(&fetched, planned).await
    }
    .await;
    match result {
        Ok(found) => {
            info!(target = %planned.plan.target, "The restore image left {found}.");
            Ok(fetched)
        }
        Err(reason) => {
            discard(ctx, fetched).await;
            Err(reason)
        }
    }
}

/// Removes the run directory the image filled.
pub(super) async fn discard<R>(ctx: &JobContext<R>, fetched: Fetched) {
    let run_dir = fetched.layout.run_dir();
    match tokio::fs::remove_dir_all(&run_dir).await {
        Ok(()) => ctx.undo.fulfilled(fetched.undo).await,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            ctx.undo.fulfilled(fetched.undo).await;
        }
        Err(e) => {
            warn!(path = %run_dir.display(), error = %e, "Could not remove the restore's run directory now; it is retried at the end of the job.");
        }
    }
}

/// Creates `dir` (and its parents), which must end up empty: the image gets a directory
/// holding nothing but what it writes.
async fn make_empty_dir(dir: &Path) -> Result<(), String> {
    tokio::fs::create_dir_all(dir)
        .await
        .map_err(|e| format!("cannot create the run directory {}: {e}", dir.display()))?;
    let mut entries = tokio::fs::read_dir(dir)
        .await
        .map_err(|e| format!("cannot read the run directory {}: {e}", dir.display()))?;
    match entries.next_entry().await {
        Ok(None) => Ok(()),
        Ok(Some(_)) => Err(format!(
            "the run directory {} is not empty; nothing was changed. Remove it and restore again",
            dir.display()
        )),
        Err(e) => Err(format!(
            "cannot read the run directory {}: {e}",
            dir.display()
        )),
    }
}

/// What the image left of the target, in words, or why it is not enough to restore from.
async fn check_layout(fetched: &Fetched, planned: &Planned) -> Result<String, String> {
    let image = match &planned.origin {
        super::plan::Origin::Image(image) => image.image.clone(),
        super::plan::Origin::Snapshot { .. } => String::new(),
    };
    let target = planned.plan.target.clone();
    let wanted = match (&planned.source, &target) {
        (
            Source::Volume {
                paths,
                target: known,
                ..
            },
            TargetId::Volume(name),
        ) => Wanted::Volume {
            dir: fetched.volume_dir(name.as_str()),
            paths: paths.iter().map(|(_, path)| path.clone()).collect(),
            allow_empty: known.as_ref().is_some_and(|t| t.spec.allow_empty),
        },
        (Source::Db { file, .. }, TargetId::Db(_)) => Wanted::Dump {
            file: fetched.file(file),
        },
        _ => return Err("the plan does not fit its target".into()),
    };
    let root = fetched.layout.run_dir();
    tokio::task::spawn_blocking(move || check_blocking(&root, &wanted, &target, &image))
        .await
        .map_err(|e| format!("the check of what the restore image left failed: {e}"))?
}

/// What a restore needs the image to have left.
enum Wanted {
    /// A volume's directory, with each of the target's paths in it.
    Volume {
        dir: PathBuf,
        paths: Vec<VolumePath>,
        /// An empty volume is restored only when the target accepts one being empty.
        allow_empty: bool,
    },
    /// A dump file with something in it.
    Dump { file: PathBuf },
}

fn check_blocking(
    root: &Path,
    wanted: &Wanted,
    target: &TargetId,
    image: &str,
) -> Result<String, String> {
    let shown = |path: &Path| {
        path.strip_prefix(root)
            .unwrap_or(path)
            .display()
            .to_string()
    };
    let missing = |path: &Path| {
        format!(
            "the restore image {image} exited with code 0 but left no {} in MARINA_BACKUP_DIR, so there is nothing to restore {target} from; nothing was changed. The image must put the target's files there as a backup stages them (docs/custom-backends.md, \"Restore contract\")",
            shown(path)
        )
    };
    match wanted {
        Wanted::Volume {
            dir,
            paths,
            allow_empty,
        } => {
            match std::fs::symlink_metadata(dir) {
                Ok(meta) if meta.is_dir() => {}
                Ok(_) => {
                    return Err(format!(
                        "the restore image {image} left {} as something else than a directory; nothing was changed",
                        shown(dir)
                    ));
                }
                Err(_) => return Err(missing(dir)),
            }
            for path in paths.iter().filter(|p| !p.is_root()) {
                let at = dir.join(path.relative());
                if std::fs::symlink_metadata(&at).is_err() {
                    return Err(missing(&at));
                }
            }
            let bytes = staging::content_size(dir)
                .map_err(|e| format!("cannot read {}: {e}", dir.display()))?;
            if bytes == 0 && !allow_empty {
                return Err(format!(
                    "the restore image {image} left {} without any data (no file with content); nothing was changed. Check the backup it restored from; set allowEmpty on {target} to restore an empty volume",
                    shown(dir)
                ));
            }
            Ok(format!("{} in {}", format_bytes(bytes), shown(dir)))
        }
        Wanted::Dump { file } => match std::fs::symlink_metadata(file) {
            Ok(meta) if meta.is_file() && meta.len() > 0 => Ok(format!(
                "a dump of {} in {}",
                format_bytes(meta.len()),
                shown(file)
            )),
            Ok(meta) if meta.is_file() => Err(format!(
                "the restore image {image} left {} empty; nothing was changed",
                shown(file)
            )),
            Ok(_) => Err(format!(
                "the restore image {image} left {} as something else than a file; nothing was changed",
                shown(file)
            )),
            Err(_) => Err(missing(file)),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn volume(dir: &Path, paths: &[&str], allow_empty: bool) -> Wanted {
        Wanted::Volume {
            dir: dir.join("vol/data"),
            paths: paths
                .iter()
                .map(|p| VolumePath::parse(p).unwrap())
                .collect(),
            allow_empty,
        }
    }

    #[test]
    fn what_the_image_left_must_hold_the_target() {
        let root = tempfile::tempdir().unwrap();
        let target = TargetId::parse("volume:data").unwrap();
        let check = |wanted: &Wanted| check_blocking(root.path(), wanted, &target, "img:1");

        let missing = check(&volume(root.path(), &["/"], false)).unwrap_err();
        assert!(
            missing.contains("left no vol/data in MARINA_BACKUP_DIR"),
            "{missing}"
        );
        assert!(missing.contains("nothing was changed"), "{missing}");

        std::fs::create_dir_all(root.path().join("vol/data/conf")).unwrap();
        std::fs::write(root.path().join("vol/data/conf/empty"), "").unwrap();
        let empty = check(&volume(root.path(), &["/"], false)).unwrap_err();
        assert!(empty.contains("without any data"), "{empty}");
        assert!(check(&volume(root.path(), &["/"], true)).is_ok());

        std::fs::write(root.path().join("vol/data/conf/site"), "listen 80").unwrap();
        assert_eq!(
            check(&volume(root.path(), &["/"], false)).unwrap(),
            "9 B in vol/data"
        );
        let no_path = check(&volume(root.path(), &["conf", "uploads"], false)).unwrap_err();
        assert!(no_path.contains("left no vol/data/uploads"), "{no_path}");

        let db = TargetId::parse("db:pg").unwrap();
        let dump = Wanted::Dump {
            file: root.path().join("dbs/pg/dump.sql"),
        };
        let check_db = || check_blocking(root.path(), &dump, &db, "img:1");
        assert!(check_db().unwrap_err().contains("left no dbs/pg/dump.sql"));
        std::fs::create_dir_all(root.path().join("dbs/pg")).unwrap();
        std::fs::write(root.path().join("dbs/pg/dump.sql"), "").unwrap();
        assert!(
            check_db()
                .unwrap_err()
                .contains("left dbs/pg/dump.sql empty")
        );
        std::fs::write(root.path().join("dbs/pg/dump.sql"), "SELECT 1;").unwrap();
        assert_eq!(check_db().unwrap(), "a dump of 9 B in dbs/pg/dump.sql");
    }
}
