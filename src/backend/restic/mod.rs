//! The restic backend (SPEC §4.1): every operation runs the restic binary as a child process.
//!
//! Each call gets a minimal environment (`PATH`, `HOME`, `TMPDIR`, `RESTIC_REPOSITORY` and the
//! instance `env` — never Marina's own environment), the instance's per-command timeout
//! (`resticTimeout`, after which the child is killed), and has its output parsed (`--json`
//! where restic offers it). restic's stderr is kept only as a bounded tail and is scrubbed of
//! every secret (the repository string, every `env` value) before it reaches an error message.
//!
//! Snapshots are tagged `marina`, `instance:<id>` and the target id (`volume:x`, `db:y`) and
//! carry `--host <nodeName>`. Retention runs `forget --prune --group-by host,tags` filtered on
//! `marina,instance:<id>` and this host, so each target keeps its own set of snapshots.
//!
//! A job talks to its repository through a [`Session`], which spends no restic run on checks
//! of their own: every run costs a key derivation (see the type, and `docs/benchmarks.md`).
//!
//! Behaviour of restic 0.14 this module relies on (checked against Debian's 0.14.0):
//! - every fatal error exits with code 1, so "the repository does not exist" is recognised
//!   from stderr (`unable to open config file: …: no such file or directory` / `… does not
//!   exist`); restic ≥ 0.17 also exits with 10 (missing) and 12 (wrong password). The hint
//!   "Is there a repository at the following location?" is printed for network errors too,
//!   so it does not mean "missing" on its own.
//! - several `--tag` filters are OR-ed; one `--tag a,b` means "has both". Retention and
//!   listing therefore filter with `--tag marina,instance:<id>`; otherwise another instance's
//!   snapshots would fall under this instance's retention.
//! - without a password in its environment restic reads one from stdin — with `--stdin` that
//!   would be the first line of the dump — so every call requires a password variable.
//! - `forget --prune --json` prints the JSON array first and prune's text report after it.
//! - the backup summary has the (short) snapshot id but not the parent snapshot.
//!
//! # Parts
//!
//! - this file — [`Restic`], one method per restic command, and how each child is spawned
//!   (minimal environment, timeout, output capture);
//! - `settings` — what an instance's restic is run with;
//! - `process` — one child process: stdout capture, the stderr tail, the stdin feed, killing;
//! - `output` — parsing `backup --json` and `forget --json`;
//! - `session` — a job's [`Session`] with its repository and the classification of
//!   `cat config`;
//! - `scrub` — secrets kept out of messages, and the summaries and hints messages use;
//! - `error` — [`ResticError`].

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::fmt;
use std::io;
use std::path::PathBuf;
use std::process::{ExitStatus, Stdio};
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Deserializer, Serialize};
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::process::{ChildStderr, ChildStdin, ChildStdout, Command};
use tracing::{debug, info, warn};

use super::BackupSummary;

mod error;
mod output;
mod process;
mod scrub;
mod session;
mod settings;
#[cfg(test)]
mod tests;

pub use self::error::{ResticError, Result};
use self::output::{BackupStream, parse_forget, read_backup_stream};
use self::process::{
    Capture, Feed, Finished, Stdout, Tail, feed_stdin, human, kill, read_stdout, read_tail,
};
use self::scrub::{Scrubber, describe_status, hint, summarize};
pub use self::session::Session;
use self::session::{OpenFailure, Probe, classify_probe};
pub use self::settings::{BaseEnv, Cache, ResticSettings};
use crate::config::{Backend, Config, Instance};
use crate::model::{InstanceId, Retention, Secret, TargetId};

/// The binary used when `resticBinary` is not set: `restic`, looked up on `PATH`.
pub const DEFAULT_BINARY: &str = "restic";

/// The tag every Marina snapshot carries, so Marina never touches snapshots it did not make.
pub const MARINA_TAG: &str = "marina";

/// `PATH` for restic when Marina itself has none: the usual system directories.
const FALLBACK_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
/// `HOME` for restic when Marina has none. `/` is not writable by other users, unlike `/tmp`,
/// where anyone could plant an `.ssh/config` that the sftp backend would read.
const FALLBACK_HOME: &str = "/";
/// `TMPDIR` for restic when Marina has none.
const FALLBACK_TMPDIR: &str = "/tmp";
/// The cache directory's name under `TMPDIR` (see [`Cache::InTmpDir`]).
const CACHE_DIR_NAME: &str = "marina-restic-cache";
/// The environment variables restic reads its password from. Without one of them restic
/// reads the password from stdin, which for `backup --stdin` is the data itself.
const PASSWORD_VARS: [&str; 3] = [
    "RESTIC_PASSWORD",
    "RESTIC_PASSWORD_FILE",
    "RESTIC_PASSWORD_COMMAND",
];
/// How much of restic's stderr is kept: its last lines say what went wrong, and a restic that
/// floods stderr must not grow Marina's memory.
const STDERR_TAIL: usize = 8 * 1024;
/// Upper bound on the stdout kept for JSON answers (`snapshots`, `forget`); tens of thousands
/// of snapshots fit, and a runaway output cannot exhaust memory.
const STDOUT_LIMIT: usize = 64 * 1024 * 1024;
/// Lines of restic's stderr quoted in an error message.
const MESSAGE_LINES: usize = 10;
/// Unreadable items named in an [`ResticError::Incomplete`] message; the rest are counted.
const REPORTED_ITEMS: usize = 5;
/// Buffer for feeding a stream to `backup --stdin`: the only memory a stream of any size uses.
const STDIN_CHUNK: usize = 64 * 1024;
/// Backends whose repository strings restic also prints without their `name:` prefix.
const LOCATION_PREFIXES: [&str; 9] = [
    "local", "sftp", "rest", "s3", "b2", "azure", "gs", "swift", "rclone",
];

/// Where restic keeps its local cache of repository metadata.
///
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

/// What [`Restic::ensure_repository`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RepositoryStatus {
    /// The repository existed and the password opened it.
    Existing,
    /// restic reported that there was no repository, so Marina initialised one.
    Initialised,
}

/// What one `forget --prune` did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ForgetSummary {
    /// Snapshot groups (one per host and tag set, i.e. one per target).
    pub groups: usize,
    /// Snapshots kept by the retention rules.
    pub kept: usize,
    /// Snapshots removed.
    pub removed: usize,
}

impl fmt::Display for ForgetSummary {
    /// `removed 4 snapshots, kept 2 (2 groups)`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "removed {} snapshots, kept {} ({} groups)",
            self.removed, self.kept, self.groups
        )
    }
}

/// One snapshot as `restic snapshots --json` describes it.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SnapshotInfo {
    /// The full snapshot id.
    pub id: String,
    /// The 8-character id restic prints.
    #[serde(default, rename(deserialize = "short_id"))]
    pub short_id: String,
    /// When the snapshot was taken.
    pub time: DateTime<Utc>,
    /// restic's `--host`: the node that made it.
    #[serde(default, rename(deserialize = "hostname"))]
    pub host: String,
    /// The backed-up paths (for a stream: `/` + the stdin file name).
    #[serde(default, deserialize_with = "null_as_default")]
    pub paths: Vec<String>,
    /// The snapshot's tags.
    #[serde(default, deserialize_with = "null_as_default")]
    pub tags: Vec<String>,
    /// The snapshot restic compared against (incremental backup), if any.
    #[serde(default)]
    pub parent: Option<String>,
}

fn null_as_default<'de, D, T>(deserializer: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: Default + Deserialize<'de>,
{
    Option::<T>::deserialize(deserializer).map(Option::unwrap_or_default)
}

/// One instance's restic repository, as the executor uses it.
///
/// Cheap to share by reference: every method takes `&self` and runs its own child process.
#[derive(Debug, Clone)]
pub struct Restic {
    /// The instance's settings.
    settings: ResticSettings,
    /// The part of Marina's environment restic gets.
    base_env: BaseEnv,
    /// Removes secrets from restic's messages.
    scrubber: Scrubber,
}

impl Restic {
    /// A restic backend for `settings`, with `PATH`/`HOME`/`TMPDIR` taken from Marina's
    /// environment now.
    #[must_use]
    pub fn new(settings: ResticSettings) -> Self {
        Self::with_base_env(settings, BaseEnv::from_process())
    }

    /// A restic backend with an explicit base environment.
    #[must_use]
    pub fn with_base_env(settings: ResticSettings, base_env: BaseEnv) -> Self {
        let scrubber = Scrubber::new(&settings.repository, &settings.env);
        Self {
            settings,
            base_env,
            scrubber,
        }
    }

    /// The restic backend of `instance`, or `None` for a custom-image instance.
    #[must_use]
    pub fn for_instance(config: &Config, instance: &Instance) -> Option<Self> {
        ResticSettings::from_instance(config, instance).map(Self::new)
    }

    /// The instance this repository belongs to.
    #[must_use]
    pub fn instance(&self) -> &InstanceId {
        &self.settings.instance
    }

    /// Makes sure the repository exists: `restic cat config` to test, `restic init` only when
    /// restic reports that there is no repository. A wrong password, a network or permission
    /// problem is an error and never leads to `init`.
    pub async fn ensure_repository(&self) -> Result<RepositoryStatus> {
        self.preflight("cat config")?;
        let (probe, message) = self.probe().await?;
        match probe {
            Probe::Exists => Ok(RepositoryStatus::Existing),
            Probe::WrongPassword => Err(ResticError::WrongPassword {
                instance: self.settings.instance.clone(),
                message,
            }),
            Probe::Unavailable => Err(ResticError::RepositoryUnavailable {
                instance: self.settings.instance.clone(),
                message,
            }),
            Probe::Missing => self.initialise().await,
        }
    }

    /// Opens the repository for a job in one restic run: `restic unlock` fails exactly like
    /// `restic cat config` when the repository is missing, unreachable or refuses the
    /// password (both open it the same way first), and when it succeeds it has also removed
    /// stale locks. A repository restic reports as missing is initialised; nothing else ever
    /// leads to `init`.
    pub async fn open(&self) -> Result<RepositoryStatus> {
        let command = "unlock";
        self.preflight(command)?;
        let finished = self
            .run(command, &args(["unlock"]), Capture::Text, None)
            .await?;
        if finished.status.success() {
            return Ok(RepositoryStatus::Existing);
        }
        match Self::open_failure(&finished) {
            Some(OpenFailure::Missing) => self.initialise().await,
            Some(failure) => Err(self.open_error(failure, command, &finished)),
            None => Err(self.failed(command, &finished)),
        }
    }

    /// A session for one job: see [`Session`].
    #[must_use]
    pub fn session(&self) -> Session<'_> {
        Session {
            restic: self,
            opened: None,
            refused: None,
        }
    }

    /// `restic init`, for a repository restic has just reported as missing.
    async fn initialise(&self) -> Result<RepositoryStatus> {
        info!(instance = %self.settings.instance, "The repository of the instance does not exist yet; initialising it.");
        let init = self
            .run("init", &args(["init"]), Capture::Text, None)
            .await?;
        if init.status.success() {
            info!(instance = %self.settings.instance, "Initialised the repository of the instance.");
            return Ok(RepositoryStatus::Initialised);
        }
        // Another instance or node sharing the repository may have initialised it a
        // moment ago; that is success, not an error.
        if let (Probe::Exists, _) = self.probe().await? {
            return Ok(RepositoryStatus::Existing);
        }
        Err(self.failed("init", &init))
    }

    /// Why a finished command could not use the repository at all, if that is why it failed:
    /// it could not open the repository (read from the raw stderr, as [`classify_probe`]
    /// does), or a lock stood in its way.
    fn open_failure(finished: &Finished) -> Option<OpenFailure> {
        if finished.status.success() {
            return None;
        }
        let code = finished.status.code();
        let stderr = String::from_utf8_lossy(&finished.stderr.bytes);
        // restic ≥ 0.17 exits with 11 when it cannot lock the repository.
        if code == Some(11) || stderr.contains("repository is already locked") {
            return Some(OpenFailure::Locked);
        }
        // What restic 0.14's `OpenRepository` prints when it fails, before any command
        // does its own work.
        let opening = matches!(code, Some(10 | 12))
            || [
                "unable to open repository",
                "unable to open config file",
                "wrong password or no key found",
                "invalid repository",
            ]
            .iter()
            .any(|phrase| stderr.contains(phrase));
        opening.then(|| match classify_probe(code, &stderr) {
            Probe::Missing => OpenFailure::Missing,
            Probe::WrongPassword => OpenFailure::WrongPassword,
            Probe::Exists | Probe::Unavailable => OpenFailure::Unavailable,
        })
    }

    /// The error for a command that could not open the repository.
    fn open_error(
        &self,
        failure: OpenFailure,
        command: &'static str,
        finished: &Finished,
    ) -> ResticError {
        let message = self.message(&finished.stderr);
        match failure {
            OpenFailure::WrongPassword => ResticError::WrongPassword {
                instance: self.settings.instance.clone(),
                message,
            },
            OpenFailure::Missing | OpenFailure::Unavailable => ResticError::RepositoryUnavailable {
                instance: self.settings.instance.clone(),
                message,
            },
            OpenFailure::Locked => self.failed(command, finished),
        }
    }

    /// `restic unlock`: removes stale locks (left by a killed restic), never live ones.
    pub async fn unlock(&self) -> Result<()> {
        let command = "unlock";
        self.preflight(command)?;
        let finished = self
            .run(command, &args(["unlock"]), Capture::Text, None)
            .await?;
        if finished.status.success() {
            Ok(())
        } else {
            Err(self.failed(command, &finished))
        }
    }

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
    async fn run_backup_paths(
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

    /// Applies the instance's retention: `forget --prune`, grouped by host and tags so each
    /// target keeps its own set, restricted to this instance's snapshots on this host.
    pub async fn forget_prune(&self) -> Result<ForgetSummary> {
        let finished = self.run_forget_prune().await?;
        self.forget_result(&finished)
    }

    /// Runs `restic forget --prune` with the instance's retention; the caller reads the result.
    async fn run_forget_prune(&self) -> Result<Finished> {
        let command = "forget --prune";
        self.preflight(command)?;
        let retention = self.settings.retention;
        let rules: Vec<(&str, u32)> = [
            ("--keep-daily", retention.keep_daily),
            ("--keep-weekly", retention.keep_weekly),
            ("--keep-monthly", retention.keep_monthly),
            ("--keep-yearly", retention.keep_yearly),
        ]
        .into_iter()
        .filter(|(_, count)| *count > 0)
        .collect();
        if rules.is_empty() {
            return Err(self.invalid(
                command,
                "the retention keeps no snapshot at all; refusing to forget every snapshot"
                    .to_owned(),
            ));
        }
        let mut arguments = args([
            "forget",
            "--prune",
            "--json",
            "--group-by",
            "host,tags",
            "--host",
            &self.settings.host,
            "--tag",
            &self.instance_filter(None),
        ]);
        for (flag, count) in rules {
            arguments.push(flag.into());
            arguments.push(count.to_string().into());
        }
        self.run(command, &arguments, Capture::Text, None).await
    }

    /// What a finished `forget --prune` did, or the error it ended with.
    fn forget_result(&self, finished: &Finished) -> Result<ForgetSummary> {
        let command = "forget --prune";
        if !finished.status.success() {
            return Err(self.failed(command, finished));
        }
        let stdout = self.complete_stdout(command, finished)?;
        parse_forget(stdout).map_err(|detail| self.output_error(command, &detail))
    }

    /// This instance's snapshots made on this host, oldest first; only those of `target`
    /// when given.
    pub async fn snapshots(&self, target: Option<&TargetId>) -> Result<Vec<SnapshotInfo>> {
        let command = "snapshots";
        self.preflight(command)?;
        let arguments = args([
            "snapshots",
            "--json",
            "--host",
            &self.settings.host,
            "--tag",
            &self.instance_filter(target),
        ]);
        let finished = self.run(command, &arguments, Capture::Text, None).await?;
        if !finished.status.success() {
            return Err(self.failed(command, &finished));
        }
        let stdout = self.complete_stdout(command, &finished)?;
        let mut snapshots: Vec<SnapshotInfo> = serde_json::from_slice(stdout)
            .map_err(|error| self.output_error(command, &error.to_string()))?;
        snapshots.sort_by_key(|snapshot| snapshot.time);
        Ok(snapshots)
    }

    /// `restic cat config`, classified.
    async fn probe(&self) -> Result<(Probe, String)> {
        let finished = self
            .run("cat config", &args(["cat", "config"]), Capture::Text, None)
            .await?;
        // Classify the raw text: scrubbing could hide a phrase that happens to contain a
        // secret. Only the cleaned message leaves this function.
        let probe = classify_probe(
            finished.status.code(),
            &String::from_utf8_lossy(&finished.stderr.bytes),
        );
        Ok((probe, self.message(&finished.stderr)))
    }

    /// Checks what every command needs before anything runs.
    fn preflight(&self, command: &'static str) -> Result<()> {
        let has_password = PASSWORD_VARS.iter().any(|name| {
            self.settings
                .env
                .get(*name)
                .is_some_and(|value| !value.expose().is_empty())
        });
        if !has_password {
            return Err(ResticError::NoPassword {
                instance: self.settings.instance.clone(),
            });
        }
        if self.settings.host.trim().is_empty() {
            return Err(self.invalid(
                command,
                "the node name (restic's --host) is empty; set `nodeName`".to_owned(),
            ));
        }
        Ok(())
    }

    /// `marina,instance:<id>[,<target>]`: one `--tag` value, which restic reads as "has all".
    fn instance_filter(&self, target: Option<&TargetId>) -> String {
        let mut filter = format!("{MARINA_TAG},instance:{}", self.settings.instance);
        if let Some(target) = target {
            filter.push(',');
            filter.push_str(&target.to_string());
        }
        filter
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
    fn backup_result(&self, command: &'static str, finished: &Finished) -> Result<BackupSummary> {
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

    /// stdout as bytes, or an error if it was cut off at [`STDOUT_LIMIT`].
    fn complete_stdout<'f>(
        &self,
        command: &'static str,
        finished: &'f Finished,
    ) -> Result<&'f [u8]> {
        match &finished.stdout {
            Stdout::Text(tail) if !tail.truncated => Ok(&tail.bytes),
            Stdout::Text(_) => Err(self.output_error(
                command,
                &format!("the output is larger than {STDOUT_LIMIT} bytes"),
            )),
            Stdout::Backup(_) => Err(self.output_error(command, "no text output was captured")),
        }
    }

    fn invalid(&self, command: &'static str, reason: String) -> ResticError {
        ResticError::InvalidRequest {
            instance: self.settings.instance.clone(),
            command,
            reason,
        }
    }

    fn output_error(&self, command: &'static str, detail: &str) -> ResticError {
        ResticError::Output {
            instance: self.settings.instance.clone(),
            command,
            detail: self.scrubber.scrub(detail),
        }
    }

    fn io_error(&self, command: &'static str, source: io::Error) -> ResticError {
        ResticError::Io {
            instance: self.settings.instance.clone(),
            command,
            source,
        }
    }

    /// The error for a command that exited unsuccessfully.
    fn failed(&self, command: &'static str, finished: &Finished) -> ResticError {
        let message = self.message(&finished.stderr);
        ResticError::Failed {
            instance: self.settings.instance.clone(),
            command,
            status: describe_status(finished.status),
            hint: hint(command, &message),
            message,
        }
    }

    /// restic's stderr as a short, secret-free message.
    fn message(&self, stderr: &Tail) -> String {
        let text = String::from_utf8_lossy(&stderr.bytes);
        // A cut-off first line could hold the end of a secret that no longer matches in full.
        let text = if stderr.truncated {
            text.split_once('\n').map_or("", |(_, rest)| rest)
        } else {
            &text
        };
        summarize(&self.scrubber.scrub(text))
    }

    /// `TMPDIR` as restic will see it (the instance `env` may override Marina's).
    fn effective_tmpdir(&self) -> PathBuf {
        self.settings.env.get("TMPDIR").map_or_else(
            || PathBuf::from(&self.base_env.tmpdir),
            |value| PathBuf::from(value.expose()),
        )
    }

    /// The global cache flags (none when the instance `env` sets `RESTIC_CACHE_DIR`).
    fn cache_args(&self) -> Vec<OsString> {
        if self.settings.env.contains_key("RESTIC_CACHE_DIR") {
            return Vec::new();
        }
        match &self.settings.cache {
            Cache::InTmpDir => vec![
                "--cache-dir".into(),
                self.effective_tmpdir().join(CACHE_DIR_NAME).into(),
            ],
            Cache::At(dir) => vec!["--cache-dir".into(), dir.into()],
            Cache::Disabled => vec!["--no-cache".into()],
        }
    }

    /// The child process, with the minimal environment.
    fn command(&self, arguments: &[OsString], piped_stdin: bool) -> Command {
        let mut command = Command::new(&self.settings.binary);
        command
            .env_clear()
            .env("PATH", &self.base_env.path)
            .env("HOME", &self.base_env.home)
            .env("TMPDIR", &self.base_env.tmpdir);
        for (name, value) in &self.settings.env {
            command.env(name, value.expose());
        }
        // The configured `repository` wins over an `env` entry of the same name.
        command.env("RESTIC_REPOSITORY", self.settings.repository.expose());
        command
            .args(self.cache_args())
            .args(arguments)
            .stdin(if piped_stdin {
                Stdio::piped()
            } else {
                Stdio::null()
            })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            // If the caller stops waiting (job aborted), restic must not live on.
            .kill_on_drop(true)
            // Out of Marina's process group: a terminal's Ctrl-C (SIGINT to the foreground
            // group) reaches Marina alone, which then lets the job finish within
            // `shutdownGrace` instead of restic dying mid-backup.
            .process_group(0);
        command
    }

    /// Runs one restic command to completion or to its timeout, feeding `stdin` if given.
    async fn run(
        &self,
        command: &'static str,
        arguments: &[OsString],
        capture: Capture,
        stdin: Option<&mut (dyn AsyncRead + Unpin + Send)>,
    ) -> Result<Finished> {
        // Declared before `child` so that, if this future is dropped mid-stream, the child is
        // killed (kill_on_drop) before its stdin closes: end-of-file would let restic save
        // what it has read so far as a complete snapshot.
        let mut stdin_slot: Option<ChildStdin>;
        debug!(instance = %self.settings.instance, command, "Running restic.");
        let mut child = self
            .command(arguments, stdin.is_some())
            .spawn()
            .map_err(|source| ResticError::Spawn {
                instance: self.settings.instance.clone(),
                command,
                binary: self.settings.binary.clone(),
                source,
            })?;
        stdin_slot = child.stdin.take();
        let (Some(stdout), Some(stderr)) = (child.stdout.take(), child.stderr.take()) else {
            return Err(self.io_error(
                command,
                io::Error::other("restic's output pipes are missing"),
            ));
        };

        let work = async {
            let pipes = async {
                tokio::join!(read_stdout(stdout, capture), read_tail(stderr, STDERR_TAIL))
            };
            tokio::pin!(pipes);
            let mut pipes_done = None;
            let mut stdin_outcome = None;
            if let Some(reader) = stdin {
                let outcome = {
                    let feed = feed_stdin(reader, &mut stdin_slot);
                    tokio::pin!(feed);
                    // Read restic's output while feeding it: a full stdout pipe would stall
                    // restic and with it the stream.
                    loop {
                        tokio::select! {
                            outcome = &mut feed => break outcome,
                            output = &mut pipes, if pipes_done.is_none() => pipes_done = Some(output),
                        }
                    }
                };
                if let Feed::ReaderFailed { .. } = outcome {
                    // Kill first, close stdin after (see `stdin_slot`).
                    kill(&mut child).await;
                    stdin_slot = None;
                    let status = child.wait().await.map_err(|e| self.io_error(command, e))?;
                    return Ok(Finished {
                        status,
                        stdout: Stdout::Text(Tail::default()),
                        stderr: Tail::default(),
                        fed: Some(outcome),
                    });
                }
                stdin_outcome = Some(outcome);
            }
            let (stdout, stderr) = match pipes_done {
                Some(output) => output,
                None => pipes.await,
            };
            let status = child.wait().await.map_err(|e| self.io_error(command, e))?;
            Ok(Finished {
                status,
                stdout: stdout.map_err(|e| self.io_error(command, e))?,
                stderr: stderr.map_err(|e| self.io_error(command, e))?,
                fed: stdin_outcome,
            })
        };
        let outcome = tokio::time::timeout(self.settings.timeout, work).await;
        if let Ok(finished) = outcome {
            if let Ok(finished) = &finished {
                debug!(instance = %self.settings.instance, command, status = %describe_status(finished.status), "restic finished.");
            }
            return finished;
        }
        warn!(
            instance = %self.settings.instance,
            command,
            timeout = %humantime::format_duration(self.settings.timeout),
            "restic did not finish within resticTimeout; killing it."
        );
        kill(&mut child).await;
        drop(stdin_slot);
        Err(ResticError::Timeout {
            instance: self.settings.instance.clone(),
            command,
            timeout: self.settings.timeout,
        })
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

fn args<'a>(items: impl IntoIterator<Item = &'a str>) -> Vec<OsString> {
    items.into_iter().map(OsString::from).collect()
}
