//! `restic restore`: one directory of a snapshot back into an empty directory, with bytes,
//! modes, owners, timestamps, symlinks and hard links as they were backed up.
//!
//! restic 0.14 restores a path under its full original path inside `--target` and has no
//! way to strip that prefix (`snapshot:subpath` came in 0.16), and restoring over existing
//! files can lose hard-linked names. So the restore goes into a fresh staging directory
//! *inside* the destination — the same filesystem — and the restored entries are then
//! renamed into place: a rename keeps the inode, so hard links survive. The destination's own
//! owner, mode and modification time are set last from the restored root. The same commands
//! work unchanged on later restic versions.

use std::fs::{self, FileTimes};
use std::io;
use std::os::unix::fs::MetadataExt as _;
use std::path::{Component, Path, PathBuf};

use tracing::warn;

use crate::backend::restic::process::{Capture, args};
use crate::backend::restic::{Restic, ResticError, Result};

/// The staging directory's name inside the destination; the process id keeps two restores
/// by different Marinas apart, and a leftover one is easy to recognise.
const STAGING_PREFIX: &str = ".marina-restore-";

impl Restic {
    /// Restores the directory `source` of `snapshot` (a path the snapshot holds, as its
    /// `paths` list them) into `destination`, an existing empty directory.
    ///
    /// Refuses, before restic runs, a snapshot id that is not one, a `source` that is not an
    /// absolute path, and a destination that is missing or not empty. When restic fails or
    /// the snapshot holds no such directory, the destination is left empty. The staging
    /// directory (`.marina-restore-<pid>`) is removed however the restore ends, unless the
    /// call itself is dropped halfway; a caller that can be cancelled journals the
    /// destination.
    pub async fn restore_into(
        &self,
        snapshot: &str,
        source: &str,
        destination: &Path,
    ) -> Result<()> {
        let command = "restore";
        self.preflight(command)?;
        check_snapshot_id(snapshot).map_err(|reason| self.invalid(command, reason))?;
        let inside = relative_source(source).map_err(|reason| self.invalid(command, reason))?;
        self.check_empty(command, destination).await?;

        let staging = destination.join(format!("{STAGING_PREFIX}{}", std::process::id()));
        tokio::fs::create_dir(&staging)
            .await
            .map_err(|e| self.destination_error("create", &staging, e))?;
        let restored = self
            .restore_staged(snapshot, source, &staging, &inside, destination)
            .await;
        // Removing the staging directory changes the destination's modification time, so
        // the restored root's own attributes are applied only after it is gone.
        let removed = tokio::fs::remove_dir_all(&staging)
            .await
            .map_err(|e| self.destination_error("remove", &staging, e));
        let root = match (restored, removed) {
            (Ok(root), Ok(())) => root,
            (Err(failed), Ok(())) | (Ok(_), Err(failed)) => return Err(failed),
            (Err(failed), Err(left)) => {
                // The restore's own error is the one to return; the leftover is said too, so
                // the operator knows to remove it before the directory is used again.
                warn!(instance = %self.settings.instance, error = %left, "The restore failed and its staging directory was left behind; remove it by hand.");
                return Err(failed);
            }
        };
        let destination_owned = destination.to_owned();
        tokio::task::spawn_blocking(move || take_attributes(&destination_owned, &root))
            .await
            .map_err(|e| io::Error::other(e.to_string()))
            .and_then(|applied| applied)
            .map_err(|e| self.destination_error("set the attributes of", destination, e))
    }

    /// Runs restic into `staging`, then moves what it restored at `inside` into `destination`;
    /// returns the attributes of the restored root.
    async fn restore_staged(
        &self,
        snapshot: &str,
        source: &str,
        staging: &Path,
        inside: &Path,
        destination: &Path,
    ) -> Result<fs::Metadata> {
        let command = "restore";
        let mut arguments = args(["restore", snapshot, "--target"]);
        arguments.push(staging.as_os_str().to_owned());
        arguments.extend(args(["--include", source]));
        let finished = self.run(command, &arguments, Capture::Text, None).await?;
        if !finished.status.success() {
            return Err(self.failed(command, &finished));
        }
        let root = staging.join(inside);
        match tokio::fs::symlink_metadata(&root).await {
            Ok(meta) if meta.is_dir() => {}
            // restic exits 0 when `--include` matches nothing.
            _ => {
                return Err(self.invalid(
                    command,
                    format!(
                        "snapshot {snapshot} holds no directory {source}; list the snapshot's \
                         paths with `restic snapshots` and restore one of them"
                    ),
                ));
            }
        }
        let destination = destination.to_owned();
        let moved = tokio::task::spawn_blocking(move || move_into_place(&root, &destination))
            .await
            .map_err(|e| io::Error::other(e.to_string()));
        match moved {
            Ok(Ok(root)) => Ok(root),
            Ok(Err((action, path, e))) => Err(self.destination_error(action, &path, e)),
            Err(e) => Err(self.destination_error("move into place", staging, e)),
        }
    }

    /// Refuses a destination that is missing, not a directory, or not empty.
    async fn check_empty(&self, command: &'static str, destination: &Path) -> Result<()> {
        let mut entries = tokio::fs::read_dir(destination)
            .await
            .map_err(|e| self.destination_error("read", destination, e))?;
        let first = entries
            .next_entry()
            .await
            .map_err(|e| self.destination_error("read", destination, e))?;
        match first {
            None => Ok(()),
            Some(_) => Err(self.invalid(
                command,
                format!(
                    "the destination {} is not empty; a restore only fills an empty directory",
                    destination.display()
                ),
            )),
        }
    }

    fn destination_error(
        &self,
        action: &'static str,
        path: &Path,
        source: io::Error,
    ) -> ResticError {
        ResticError::Destination {
            instance: self.settings.instance.clone(),
            action,
            path: path.to_owned(),
            source,
        }
    }
}

/// A failed step of moving restored entries into place: what, where, why.
type MoveError = (&'static str, PathBuf, io::Error);

/// Renames every entry of `root` into `destination`; returns `root`'s attributes as they
/// were before (moving entries out changes its modification time).
fn move_into_place(
    root: &Path,
    destination: &Path,
) -> std::result::Result<fs::Metadata, MoveError> {
    let at = |action: &'static str, path: &Path| {
        let path = path.to_owned();
        move |e: io::Error| (action, path, e)
    };
    let meta = fs::symlink_metadata(root).map_err(at("read", root))?;
    for entry in fs::read_dir(root).map_err(at("read", root))? {
        let entry = entry.map_err(at("read", root))?;
        let target = destination.join(entry.file_name());
        fs::rename(entry.path(), &target).map_err(at("move into place", &target))?;
    }
    Ok(meta)
}

/// Gives `destination` the owner, mode and modification time of the restored root.
fn take_attributes(destination: &Path, root: &fs::Metadata) -> io::Result<()> {
    std::os::unix::fs::chown(destination, Some(root.uid()), Some(root.gid()))?;
    fs::set_permissions(destination, root.permissions())?;
    fs::File::open(destination)?.set_times(FileTimes::new().set_modified(root.modified()?))
}

/// A snapshot id as restic prints it: 8 to 64 lower-case hex digits (so never an option).
pub(super) fn check_snapshot_id(snapshot: &str) -> std::result::Result<(), String> {
    let hex = snapshot
        .bytes()
        .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
    if hex && (8..=64).contains(&snapshot.len()) {
        Ok(())
    } else {
        Err(format!(
            "{snapshot:?} is not a snapshot id (8 to 64 hex digits, as `restic snapshots` prints)"
        ))
    }
}

/// `source` without its leading `/`, for joining under the staging directory; refuses what
/// is not a plain absolute path.
fn relative_source(source: &str) -> std::result::Result<PathBuf, String> {
    let path = Path::new(source);
    let plain = path.is_absolute()
        && !source.chars().any(char::is_control)
        && path
            .components()
            .all(|c| matches!(c, Component::RootDir | Component::Normal(_)));
    if !plain || path.components().count() < 2 {
        return Err(format!(
            "{source:?} is not an absolute path below `/` without `..`; give one of the \
             snapshot's paths"
        ));
    }
    Ok(path.components().skip(1).collect())
}

#[cfg(test)]
mod tests {
    use super::{check_snapshot_id, relative_source};

    #[test]
    fn only_snapshot_ids_and_plain_absolute_paths_reach_restic() {
        assert!(check_snapshot_id("4c2a9f0e").is_ok());
        assert!(check_snapshot_id(&"ab".repeat(32)).is_ok());
        for bad in [
            "",
            "4c2a9f0",
            "--target",
            "latest",
            "4C2A9F0E",
            &"a".repeat(65),
        ] {
            assert!(check_snapshot_id(bad).is_err(), "{bad:?}");
        }
        assert_eq!(
            relative_source("/var/lib/docker/volumes/x/_data").unwrap(),
            std::path::PathBuf::from("var/lib/docker/volumes/x/_data")
        );
        for bad in ["", "/", "relative/path", "/a/../b", "/a\nb"] {
            assert!(relative_source(bad).is_err(), "{bad:?}");
        }
    }
}
