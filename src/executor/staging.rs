//! The staging layout (SPEC §3.1), exactly as the seed document specifies it:
//!
//! ```text
//! {stagingDir}/{instanceID}/{timestamp}/vol/{volume-name}/{paths…}
//! {stagingDir}/{instanceID}/{timestamp}/dbs/{db-name}/dump.sql | dump.archive | dump.rdb
//! ```
//!
//! `{timestamp}` is UTC `YYYYMMDDTHHMMSSZ`, so runs sort by name. Custom-image instances
//! always get this layout; restic instances read volumes in place and stream dumps, and only
//! fall back to a stable copy (`{stagingDir}/{instanceID}/restic/…`) when Marina cannot see a
//! volume's data directly. Every directory a job creates here is journaled first, so start-up
//! recovery removes exactly its own leftovers (see [`super::recovery`]).

use std::io;
use std::path::{Path, PathBuf};

use chrono::{DateTime, TimeDelta, Utc};

use crate::model::{DbKind, InstanceId, VolumePath};

/// The directory under an instance's staging root that holds restic's stable copies.
pub const RESTIC_COPY_DIR: &str = "restic";

/// The staging directories of one job run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunLayout {
    /// `{stagingDir}/{instanceID}`: what a custom image sees as `/backup`.
    pub instance_root: PathBuf,
    /// `{timestamp}`, the run's directory name.
    pub timestamp: String,
}

impl RunLayout {
    /// The layout for `instance`'s run starting at `started`.
    #[must_use]
    pub fn new(staging_dir: &Path, instance: &InstanceId, started: DateTime<Utc>) -> Self {
        Self {
            instance_root: staging_dir.join(instance.as_str()),
            timestamp: timestamp(started),
        }
    }

    /// `{stagingDir}/{instanceID}/{timestamp}`.
    #[must_use]
    pub fn run_dir(&self) -> PathBuf {
        self.instance_root.join(&self.timestamp)
    }

    /// Where a volume's files go: `…/{timestamp}/vol/{volume}`.
    #[must_use]
    pub fn volume_dir(&self, volume: &str) -> PathBuf {
        self.run_dir().join("vol").join(volume)
    }

    /// Where one path of a volume goes: `…/vol/{volume}/{path}`.
    #[must_use]
    pub fn volume_path(&self, volume: &str, path: &VolumePath) -> PathBuf {
        let dir = self.volume_dir(volume);
        if path.is_root() {
            dir
        } else {
            dir.join(path.relative())
        }
    }

    /// Where a database dump goes: `…/{timestamp}/dbs/{db}/dump.{sql,archive,rdb}`.
    #[must_use]
    pub fn dump_file(&self, db: &str, kind: DbKind) -> PathBuf {
        self.run_dir()
            .join("dbs")
            .join(db)
            .join(kind.dump_file_name())
    }

    /// The layout of another run of the same instance starting at `at`, in a directory of
    /// its own: when `at` falls in this run's second, a second later. (A restore runs the
    /// image twice, and both runs' directories exist at once.)
    #[must_use]
    pub fn beside(&self, at: DateTime<Utc>) -> Self {
        let mut stamp = timestamp(at);
        if stamp == self.timestamp {
            stamp = timestamp(at + TimeDelta::seconds(1));
        }
        Self {
            instance_root: self.instance_root.clone(),
            timestamp: stamp,
        }
    }

    /// `MARINA_BACKUP_DIR` inside the backend container: `/backup/{timestamp}`.
    #[must_use]
    pub fn backup_dir_in_container(&self) -> String {
        format!("/backup/{}", self.timestamp)
    }
}

/// UTC `YYYYMMDDTHHMMSSZ`.
#[must_use]
pub fn timestamp(at: DateTime<Utc>) -> String {
    at.format("%Y%m%dT%H%M%SZ").to_string()
}

/// Whether anything under `path` holds at least one byte of content (SPEC §3.5). Stops at
/// the first non-empty file; symlinks are not followed.
pub fn has_content(path: &Path) -> io::Result<bool> {
    let metadata = std::fs::symlink_metadata(path)?;
    if metadata.is_file() {
        return Ok(metadata.len() > 0);
    }
    if !metadata.is_dir() {
        return Ok(false);
    }
    let mut pending = vec![path.to_path_buf()];
    while let Some(dir) = pending.pop() {
        for entry in std::fs::read_dir(&dir)? {
            let entry = entry?;
            let kind = entry.file_type()?;
            if kind.is_dir() {
                pending.push(entry.path());
            } else if kind.is_file() && entry.metadata()?.len() > 0 {
                return Ok(true);
            }
        }
    }
    Ok(false)
}

/// The bytes of content under `path`: the sizes of its regular files, symlinks not followed.
/// Where [`has_content`] stops at the first byte, this reads every entry (for metrics).
pub fn content_size(path: &Path) -> io::Result<u64> {
    let metadata = std::fs::symlink_metadata(path)?;
    if metadata.is_file() {
        return Ok(metadata.len());
    }
    if !metadata.is_dir() {
        return Ok(0);
    }
    let mut total: u64 = 0;
    let mut pending = vec![path.to_path_buf()];
    while let Some(dir) = pending.pop() {
        for entry in std::fs::read_dir(&dir)? {
            let entry = entry?;
            let kind = entry.file_type()?;
            if kind.is_dir() {
                pending.push(entry.path());
            } else if kind.is_file() {
                total = total.saturating_add(entry.metadata()?.len());
            }
        }
    }
    Ok(total)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn layout() -> RunLayout {
        let started = DateTime::parse_from_rfc3339("2027-03-28T01:02:03Z")
            .unwrap()
            .to_utc();
        RunLayout::new(
            Path::new("/backup"),
            &InstanceId::parse("nightly").unwrap(),
            started,
        )
    }

    #[test]
    fn the_layout_is_the_seed_documents() {
        let layout = layout();
        assert_eq!(
            layout.run_dir(),
            Path::new("/backup/nightly/20270328T010203Z")
        );
        assert_eq!(
            layout.volume_dir("app-data"),
            Path::new("/backup/nightly/20270328T010203Z/vol/app-data")
        );
        let uploads = VolumePath::parse("/uploads/img").unwrap();
        assert_eq!(
            layout.volume_path("app-data", &uploads),
            Path::new("/backup/nightly/20270328T010203Z/vol/app-data/uploads/img")
        );
        assert_eq!(
            layout.volume_path("app-data", &VolumePath::root()),
            layout.volume_dir("app-data")
        );
        assert_eq!(
            layout.dump_file("pg", DbKind::Postgres),
            Path::new("/backup/nightly/20270328T010203Z/dbs/pg/dump.sql")
        );
        assert_eq!(
            layout.dump_file("m", DbKind::Mongo),
            Path::new("/backup/nightly/20270328T010203Z/dbs/m/dump.archive")
        );
        assert_eq!(
            layout.dump_file("r", DbKind::Redis),
            Path::new("/backup/nightly/20270328T010203Z/dbs/r/dump.rdb")
        );
        assert_eq!(layout.backup_dir_in_container(), "/backup/20270328T010203Z");
    }

    #[test]
    fn a_second_run_beside_the_first_never_shares_its_directory() {
        let first = layout();
        let same_second = DateTime::parse_from_rfc3339("2027-03-28T01:02:03.900Z")
            .unwrap()
            .to_utc();
        assert_eq!(first.beside(same_second).timestamp, "20270328T010204Z");
        let later = DateTime::parse_from_rfc3339("2027-03-28T01:05:00Z")
            .unwrap()
            .to_utc();
        let second = first.beside(later);
        assert_eq!(second.timestamp, "20270328T010500Z");
        assert_eq!(second.instance_root, first.instance_root);
    }

    #[test]
    fn content_means_a_non_empty_file_somewhere() {
        let dir = tempfile::tempdir().unwrap();
        assert!(!has_content(dir.path()).unwrap());
        std::fs::create_dir_all(dir.path().join("a/b")).unwrap();
        std::fs::write(dir.path().join("a/b/empty"), "").unwrap();
        std::os::unix::fs::symlink("/etc/hostname", dir.path().join("a/link")).unwrap();
        assert!(
            !has_content(dir.path()).unwrap(),
            "empty files and symlinks are not content"
        );
        std::fs::write(dir.path().join("a/b/data"), "x").unwrap();
        assert!(has_content(dir.path()).unwrap());
        assert!(has_content(&dir.path().join("a/b/data")).unwrap());
        assert!(has_content(&dir.path().join("missing")).is_err());
    }

    #[test]
    fn the_content_size_adds_up_regular_files_only() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(content_size(dir.path()).unwrap(), 0);
        std::fs::create_dir_all(dir.path().join("a/b")).unwrap();
        std::fs::write(dir.path().join("a/b/three"), "abc").unwrap();
        std::fs::write(dir.path().join("a/four"), "abcd").unwrap();
        std::os::unix::fs::symlink("/etc/hostname", dir.path().join("a/link")).unwrap();
        assert_eq!(content_size(dir.path()).unwrap(), 7);
        assert_eq!(content_size(&dir.path().join("a/four")).unwrap(), 4);
        assert!(content_size(&dir.path().join("missing")).is_err());
    }
}
