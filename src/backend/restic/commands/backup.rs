//! `restic backup`: a target's paths, or a stream fed to `backup --stdin`, as one snapshot
//! tagged for the instance and the target, and what the backup reports.

use std::ffi::OsString;
use std::path::PathBuf;

use tokio::io::AsyncRead;
use tracing::debug;

use crate::backend::BackupSummary;
use crate::backend::restic::process::{Capture, Feed, Finished, Stdout, args};
use crate::backend::restic::scrub::describe_status;
use crate::backend::restic::{MARINA_TAG, Restic, ResticError, Result};
use crate::model::TargetId;

/// How a backup is made, besides what and where.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BackupOptions {
    /// Tags added besides `marina`, `instance:<id>` and the target id. They become part of
    /// the retention group (`--group-by host,tags`), so they must be the same on every run of
    /// the target — never a job id or a timestamp, or retention would never delete anything.
    pub extra_tags: Vec<String>,
    /// `--ignore-inode`: the paths are a fresh copy made for this run (staging), so every
    /// file has a new inode and ctime; without it restic would re-read every file. (restic
    /// also skips the ctime check under this flag.) Has no effect on [`Restic::backup_stdin`].
    pub ignore_inode: bool,
}

impl Restic {
    /// Backs up `paths` (absolute, existing, and the same on every run of the target so that
    /// restic finds the parent snapshot and skips unchanged files) as one snapshot of `target`.
    pub async fn backup_paths(
        &self,
        target: &TargetId,
        paths: &[PathBuf],
        options: &BackupOptions,
    ) -> Result<BackupSummary> {
        let finished = self.run_backup_paths(target, paths, options).await?;
        self.backup_result("backup", &finished)
    }

    /// Checks the paths and runs `restic backup` on them; the caller reads the result.
    pub(in crate::backend::restic) async fn run_backup_paths(
        &self,
        target: &TargetId,
        paths: &[PathBuf],
        options: &BackupOptions,
    ) -> Result<Finished> {
        let command = "backup";
        self.preflight(command)?;
        if paths.is_empty() {
            return Err(self.invalid(command, "no paths were given".to_owned()));
        }
        for path in paths {
            if !path.is_absolute() {
                return Err(self.invalid(
                    command,
                    format!(
                        "{} is not an absolute path; restic finds the parent snapshot by path, so paths must be absolute and the same on every run",
                        path.display()
                    ),
                ));
            }
            // restic skips a missing path with a warning and backs up the rest; a target that
            // lost a path must fail instead, and its snapshot would get another parent chain.
            if let Err(error) = tokio::fs::symlink_metadata(path).await {
                return Err(self.invalid(
                    command,
                    format!("cannot back up {}: {error}", path.display()),
                ));
            }
        }
        let mut arguments = self.backup_args(command, target, options)?;
        if options.ignore_inode {
            arguments.push("--ignore-inode".into());
        }
        arguments.push("--".into());
        arguments.extend(paths.iter().map(|path| path.as_os_str().to_owned()));
        self.run(command, &arguments, Capture::Backup, None).await
    }

    /// Backs up a stream (e.g. a database dump from `docker exec`) as the file `filename` in
    /// one snapshot of `target`, with `restic backup --stdin`. The stream is copied through a
    /// small buffer, never held in memory. If `reader` fails, restic is killed before it sees
    /// the end of its input, so no truncated snapshot is saved, and the reader's error is
    /// returned.
    ///
    /// `filename` may contain `/` (restic makes directories of it); a leading `/` is implied.
    /// Give each target its own name (e.g. `app-postgres/dump.sql`): restic 0.14 picks the
    /// parent snapshot by host and path, not by tag.
    pub async fn backup_stdin<R>(
        &self,
        target: &TargetId,
        filename: &str,
        mut reader: R,
        options: &BackupOptions,
    ) -> Result<BackupSummary>
    where
        R: AsyncRead + Unpin + Send,
    {
        let command = "backup --stdin";
        self.preflight(command)?;
        check_stdin_filename(filename).map_err(|reason| self.invalid(command, reason))?;
        let mut arguments = self.backup_args(command, target, options)?;
        arguments.extend(args(["--stdin", "--stdin-filename", filename]));
        let finished = self
            .run(command, &arguments, Capture::Backup, Some(&mut reader))
            .await?;
        match finished.fed {
            Some(Feed::ReaderFailed { error, bytes }) => Err(ResticError::Stream {
                instance: self.settings.instance.clone(),
                filename: filename.to_owned(),
                bytes,
                source: error,
            }),
            // restic exits 0 only after reading to the end; if it ever stopped early and
            // still succeeded, its snapshot would be missing data.
            Some(Feed::ChildClosed) if finished.status.success() => Err(ResticError::Failed {
                instance: self.settings.instance.clone(),
                command,
                status: describe_status(finished.status),
                message: "restic stopped reading the stream before it ended".to_owned(),
                hint: "the snapshot may be incomplete; do not rely on it",
            }),
            _ => self.backup_result(command, &finished),
        }
    }

    /// The arguments both kinds of backup share: JSON output, host and tags.
    fn backup_args(
        &self,
        command: &'static str,
        target: &TargetId,
        options: &BackupOptions,
    ) -> Result<Vec<OsString>> {
        let instance_tag = format!("instance:{}", self.settings.instance);
        let target_tag = target.to_string();
        let mut arguments = args([
            "backup",
            "--json",
            "--host",
            &self.settings.host,
            "--tag",
            MARINA_TAG,
            "--tag",
            &instance_tag,
            "--tag",
            &target_tag,
        ]);
        for tag in &options.extra_tags {
            check_extra_tag(tag).map_err(|reason| self.invalid(command, reason))?;
            arguments.extend(args(["--tag", tag]));
        }
        Ok(arguments)
    }

    /// The summary of a finished backup, or the error it ended with.
    pub(in crate::backend::restic) fn backup_result(
        &self,
        command: &'static str,
        finished: &Finished,
    ) -> Result<BackupSummary> {
        let Stdout::Backup(stream) = &finished.stdout else {
            return Err(self.output_error(command, "no backup output was captured"));
        };
        match (finished.status.code(), &stream.summary) {
            (Some(0), Some(summary)) => {
                let summary = summary.to_summary();
                debug!(instance = %self.settings.instance, command, summary = %summary, "restic backup finished.");
                Ok(summary)
            }
            (Some(0), None) => {
                Err(self.output_error(command, "restic succeeded but printed no summary"))
            }
            // restic's exit code 3: a snapshot was saved, but some files could not be read.
            (Some(3), Some(summary)) => Err(ResticError::Incomplete {
                instance: self.settings.instance.clone(),
                command,
                summary: Box::new(summary.to_summary()),
                unreadable: stream
                    .errors
                    .iter()
                    .map(|item| self.scrubber.scrub(item))
                    .collect(),
                unreadable_count: stream.error_count,
            }),
            _ => Err(self.failed(command, finished)),
        }
    }
}

/// A tag passed in [`BackupOptions::extra_tags`] must be one tag that cannot confuse the
/// filters Marina relies on.
fn check_extra_tag(tag: &str) -> std::result::Result<(), String> {
    if tag.is_empty() || tag.chars().any(char::is_control) {
        Err(format!(
            "tag {tag:?} is empty or contains control characters"
        ))
    } else if tag.contains(',') {
        Err(format!(
            "tag {tag:?} contains a comma, which restic reads as two tags"
        ))
    } else if tag == MARINA_TAG
        || ["instance:", "volume:", "db:"]
            .iter()
            .any(|prefix| tag.starts_with(prefix))
    {
        Err(format!("tag {tag:?} is reserved for Marina's own tags"))
    } else {
        Ok(())
    }
}

/// A stdin file name restic stores sensibly: relative-looking, no `.`/`..` components.
fn check_stdin_filename(filename: &str) -> std::result::Result<(), String> {
    let components: Vec<&str> = filename
        .split('/')
        .filter(|component| !component.is_empty())
        .collect();
    if components.is_empty() {
        Err("the stream needs a file name".to_owned())
    } else if filename.chars().any(char::is_control) {
        Err(format!(
            "file name {filename:?} contains control characters"
        ))
    } else if components.iter().any(|c| *c == "." || *c == "..") {
        Err(format!("file name {filename:?} contains `.` or `..`"))
    } else {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::{check_extra_tag, check_stdin_filename};

    #[test]
    fn extra_tags_cannot_break_the_retention_filters() {
        assert!(check_extra_tag("weekly-set").is_ok());
        for bad in [
            "",
            "a,b",
            "marina",
            "instance:x",
            "volume:y",
            "db:z",
            "a\nb",
        ] {
            assert!(check_extra_tag(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn stdin_file_names_are_plain_relative_names() {
        for ok in ["dump.sql", "app-postgres/dump.sql", "/dump.rdb"] {
            assert!(check_stdin_filename(ok).is_ok(), "{ok}");
        }
        for bad in ["", "/", "../x", "a/./b", "a\nb"] {
            assert!(check_stdin_filename(bad).is_err(), "{bad:?}");
        }
    }
}
