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
/// The cache makes each command on a remote repository fetch only new index and snapshot
/// files instead of all of them (`--no-cache` would re-download the whole index on every
/// backup, slow and billed on S3-like storage). It is safe to lose, so a temporary location
/// is fine. An instance `env` that sets `RESTIC_CACHE_DIR` overrides this.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum Cache {
    /// `--cache-dir $TMPDIR/marina-restic-cache`: works when `HOME` is missing or read-only,
    /// as it often is for a service user or in a container.
    #[default]
    InTmpDir,
    /// `--cache-dir` at this directory (e.g. a persistent volume).
    At(PathBuf),
    /// `--no-cache`.
    Disabled,
}

/// Everything a [`Restic`] needs from one instance's settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResticSettings {
    /// The restic executable (`resticBinary`): a path, or a name looked up on `PATH`.
    pub binary: PathBuf,
    /// The instance the repository belongs to; it appears in tags and in every message.
    pub instance: InstanceId,
    /// `RESTIC_REPOSITORY`. May hold credentials, so it is never printed.
    pub repository: Secret,
    /// The instance `env`, passed to restic as is (passwords, cloud credentials).
    pub env: BTreeMap<String, Secret>,
    /// restic's `--host`: this node's name, so that each node finds its own parents and
    /// prunes only its own snapshots in a shared repository.
    pub host: String,
    /// What `forget --prune` keeps.
    pub retention: Retention,
    /// Deadline for each restic command (`resticTimeout`).
    pub timeout: Duration,
    /// Where restic caches repository metadata.
    pub cache: Cache,
}

impl ResticSettings {
    /// The settings of `instance` under `config`, or `None` when the instance ships its data
    /// with a custom image instead of restic.
    #[must_use]
    pub fn from_instance(config: &Config, instance: &Instance) -> Option<Self> {
        let Backend::Restic {
            repository,
            retention,
            command_timeout,
        } = &instance.backend
        else {
            return None;
        };
        Some(Self {
            binary: config.restic_binary.clone(),
            instance: instance.id.clone(),
            repository: repository.clone(),
            env: instance.env.clone(),
            host: config.node_name.clone(),
            retention: *retention,
            timeout: *command_timeout,
            cache: Cache::default(),
        })
    }
}

/// The part of Marina's own environment that restic gets: nothing else leaks through.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BaseEnv {
    /// `PATH`, to find restic itself and the helpers it runs (`ssh`, `rclone`).
    pub path: OsString,
    /// `HOME`, where `ssh` and `rclone` read their configuration.
    pub home: OsString,
    /// `TMPDIR`, where restic keeps temporary pack files (and, by default, its cache).
    pub tmpdir: OsString,
}

impl BaseEnv {
    /// `PATH`, `HOME` and `TMPDIR` from Marina's environment, each with a safe default when
    /// unset or empty.
    #[must_use]
    pub fn from_process() -> Self {
        fn var_or(name: &str, fallback: &str) -> OsString {
            std::env::var_os(name)
                .filter(|value| !value.is_empty())
                .unwrap_or_else(|| fallback.into())
        }
        Self {
            path: var_or("PATH", FALLBACK_PATH),
            home: var_or("HOME", FALLBACK_HOME),
            tmpdir: var_or("TMPDIR", FALLBACK_TMPDIR),
        }
    }
}

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

/// A failed restic operation. Messages name the instance and the command and say what the
/// operator can do; they never contain the repository string or an `env` value.
#[derive(Debug, thiserror::Error)]
pub enum ResticError {
    /// No password variable in the instance `env`.
    #[error(
        "restic for instance {instance} has no password: set RESTIC_PASSWORD, RESTIC_PASSWORD_FILE or RESTIC_PASSWORD_COMMAND in the instance's `env`"
    )]
    NoPassword {
        /// The instance.
        instance: InstanceId,
    },
    /// The caller asked for something restic must not be run with.
    #[error("cannot run `restic {command}` for instance {instance}: {reason}")]
    InvalidRequest {
        /// The instance.
        instance: InstanceId,
        /// The restic command that was not run.
        command: &'static str,
        /// What is wrong with the request.
        reason: String,
    },
    /// The restic binary could not be started.
    #[error(
        "cannot start restic ({}) for `restic {command}` of instance {instance}: {source}; check `resticBinary` and that restic is installed",
        .binary.display()
    )]
    Spawn {
        /// The instance.
        instance: InstanceId,
        /// The restic command that was not run.
        command: &'static str,
        /// The binary Marina tried to start.
        binary: PathBuf,
        /// Why it could not be started.
        #[source]
        source: io::Error,
    },
    /// The command ran longer than `resticTimeout` and was killed.
    #[error(
        "`restic {command}` for instance {instance} did not finish within {} and was killed; raise `resticTimeout` if the data needs more time, or check that the repository of instance {instance} is reachable",
        human(.timeout)
    )]
    Timeout {
        /// The instance.
        instance: InstanceId,
        /// The restic command that was killed.
        command: &'static str,
        /// The deadline it exceeded.
        timeout: Duration,
    },
    /// The repository exists but the password does not open it (or it has no keys).
    #[error(
        "the repository of instance {instance} rejected the password ({message}); fix RESTIC_PASSWORD (or RESTIC_PASSWORD_FILE / RESTIC_PASSWORD_COMMAND) in the instance's `env`. Marina never initialises a repository it cannot open"
    )]
    WrongPassword {
        /// The instance.
        instance: InstanceId,
        /// restic's message, scrubbed of secrets.
        message: String,
    },
    /// The repository could not be opened for another reason than "it does not exist".
    #[error(
        "cannot open the repository of instance {instance} ({message}); check that it is reachable and that the instance's `env` holds the right credentials. It was not initialised, because restic did not report that it does not exist"
    )]
    RepositoryUnavailable {
        /// The instance.
        instance: InstanceId,
        /// restic's message, scrubbed of secrets.
        message: String,
    },
    /// restic exited with an error.
    #[error("`restic {command}` for instance {instance} failed with {status}: {message}; {hint}")]
    Failed {
        /// The instance.
        instance: InstanceId,
        /// The restic command that failed.
        command: &'static str,
        /// `exit code N`, or how it ended without one.
        status: String,
        /// restic's message, scrubbed of secrets.
        message: String,
        /// What the operator can do about it.
        hint: &'static str,
    },
    /// The backup saved a snapshot but could not read some of the files (restic exit code 3).
    #[error(
        "`restic {command}` for instance {instance} saved snapshot {} but could not read {unreadable_count} item(s): {}; the snapshot is incomplete, check the permissions of those files",
        .summary.snapshot_id.as_deref().unwrap_or("(unknown)"),
        .unreadable.join(", ")
    )]
    Incomplete {
        /// The instance.
        instance: InstanceId,
        /// The restic command.
        command: &'static str,
        /// What the incomplete backup did.
        summary: Box<BackupSummary>,
        /// The first few unreadable items with restic's reason, scrubbed of secrets.
        unreadable: Vec<String>,
        /// How many items could not be read.
        unreadable_count: usize,
    },
    /// The stream fed to `backup --stdin` failed; restic was killed so no snapshot was saved.
    #[error(
        "the data stream for {filename} of instance {instance} failed after {bytes} bytes: {source}; restic was stopped, so no snapshot was saved"
    )]
    Stream {
        /// The instance.
        instance: InstanceId,
        /// The file name the stream was stored under.
        filename: String,
        /// Bytes passed to restic before the failure.
        bytes: u64,
        /// The reader's error.
        #[source]
        source: io::Error,
    },
    /// restic's output was not what this version of Marina understands.
    #[error(
        "cannot read the output of `restic {command}` for instance {instance}: {detail}; is `resticBinary` restic 0.14 or newer?"
    )]
    Output {
        /// The instance.
        instance: InstanceId,
        /// The restic command.
        command: &'static str,
        /// What was wrong with it.
        detail: String,
    },
    /// Talking to the child process failed (its pipes, or waiting for it).
    #[error("lost contact with `restic {command}` for instance {instance}: {source}")]
    Io {
        /// The instance.
        instance: InstanceId,
        /// The restic command.
        command: &'static str,
        /// The operating system's error.
        #[source]
        source: io::Error,
    },
}

/// A result whose error is a [`ResticError`].
pub type Result<T, E = ResticError> = std::result::Result<T, E>;

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

/// A duration as people write it in `resticTimeout` (`1h 30m`).
fn human(duration: &Duration) -> humantime::FormattedDuration {
    humantime::format_duration(*duration)
}

/// Kills `child` and reaps it. Errors mean it had already exited, which is the goal.
async fn kill(child: &mut tokio::process::Child) {
    if let Err(error) = child.start_kill() {
        debug!(error = %error, "restic had already exited when it was to be killed.");
    }
    if let Err(error) = child.wait().await {
        debug!(error = %error, "Waiting for the killed restic failed.");
    }
}

/// What to do with restic's stdout.
#[derive(Debug, Clone, Copy)]
enum Capture {
    /// Keep it (up to [`STDOUT_LIMIT`]) for JSON parsing.
    Text,
    /// Parse `backup --json` lines as they come, keeping only the summary and errors.
    Backup,
}

/// The end of a process's output.
#[derive(Debug, Default)]
struct Tail {
    /// The bytes kept.
    bytes: Vec<u8>,
    /// Whether more was written than kept.
    truncated: bool,
}

/// What was kept of stdout.
#[derive(Debug)]
enum Stdout {
    /// See [`Capture::Text`].
    Text(Tail),
    /// See [`Capture::Backup`].
    Backup(BackupStream),
}

/// A restic process that ran to its end (or was killed because its input failed).
#[derive(Debug)]
struct Finished {
    /// How it exited.
    status: ExitStatus,
    /// Its stdout, as asked for.
    stdout: Stdout,
    /// The end of its stderr.
    stderr: Tail,
    /// How feeding its stdin went, when it had one.
    fed: Option<Feed>,
}

/// How feeding a stream to restic's stdin ended.
#[derive(Debug)]
enum Feed {
    /// The whole stream was passed on and stdin was closed.
    Done,
    /// Reading the stream failed; restic's stdin is still open.
    ReaderFailed {
        /// The reader's error.
        error: io::Error,
        /// Bytes passed on before it.
        bytes: u64,
    },
    /// restic stopped accepting input; its exit status and stderr say why.
    ChildClosed,
}

/// Copies `reader` into restic's stdin through a fixed buffer, then closes stdin (the end of
/// the stream for restic). On a read error stdin is left open for the caller to kill restic
/// first.
async fn feed_stdin(
    reader: &mut (dyn AsyncRead + Unpin + Send),
    slot: &mut Option<ChildStdin>,
) -> Feed {
    let Some(stdin) = slot.as_mut() else {
        return Feed::ChildClosed;
    };
    let mut buffer = vec![0_u8; STDIN_CHUNK];
    let mut bytes: u64 = 0;
    loop {
        let count = match reader.read(&mut buffer).await {
            Ok(0) => break,
            Ok(count) => count,
            Err(error) if error.kind() == io::ErrorKind::Interrupted => continue,
            Err(error) => return Feed::ReaderFailed { error, bytes },
        };
        if stdin.write_all(&buffer[..count]).await.is_err() {
            return Feed::ChildClosed;
        }
        bytes += count as u64;
    }
    if stdin.flush().await.is_err() {
        return Feed::ChildClosed;
    }
    // Dropping the handle closes the pipe: restic sees the end of the stream.
    *slot = None;
    Feed::Done
}

async fn read_stdout(pipe: ChildStdout, capture: Capture) -> io::Result<Stdout> {
    match capture {
        Capture::Text => read_head(pipe, STDOUT_LIMIT).await.map(Stdout::Text),
        Capture::Backup => read_backup_stream(pipe).await.map(Stdout::Backup),
    }
}

/// Reads `pipe` to its end, keeping the first `limit` bytes.
async fn read_head(mut pipe: ChildStdout, limit: usize) -> io::Result<Tail> {
    let mut tail = Tail::default();
    let mut buffer = vec![0_u8; 8 * 1024];
    loop {
        let count = pipe.read(&mut buffer).await?;
        if count == 0 {
            return Ok(tail);
        }
        let room = limit - tail.bytes.len();
        if count > room {
            tail.truncated = true;
        }
        tail.bytes.extend_from_slice(&buffer[..count.min(room)]);
    }
}

/// Reads `pipe` to its end, keeping the last `limit` bytes.
async fn read_tail(mut pipe: ChildStderr, limit: usize) -> io::Result<Tail> {
    let mut tail = Tail::default();
    let mut buffer = vec![0_u8; 4 * 1024];
    loop {
        let count = pipe.read(&mut buffer).await?;
        if count == 0 {
            break;
        }
        tail.bytes.extend_from_slice(&buffer[..count]);
        // Trim in batches, not on every read.
        if tail.bytes.len() > 2 * limit {
            let excess = tail.bytes.len() - limit;
            tail.bytes.drain(..excess);
            tail.truncated = true;
        }
    }
    if tail.bytes.len() > limit {
        let excess = tail.bytes.len() - limit;
        tail.bytes.drain(..excess);
        tail.truncated = true;
    }
    Ok(tail)
}

/// The parts of `backup --json` output Marina keeps.
#[derive(Debug, Default)]
struct BackupStream {
    /// The final `summary` message.
    summary: Option<JsonSummary>,
    /// The first few `error` messages, described (not yet scrubbed).
    errors: Vec<String>,
    /// How many `error` messages there were.
    error_count: usize,
}

/// One line of `restic backup --json`.
#[derive(Debug, Deserialize)]
#[serde(tag = "message_type", rename_all = "snake_case")]
enum BackupMessage {
    Summary(JsonSummary),
    Error(JsonError),
    /// `status` (progress) and `verbose_status` lines.
    #[serde(other)]
    Other,
}

/// restic's `summary` message (restic 0.14 field names).
#[derive(Debug, Deserialize)]
struct JsonSummary {
    #[serde(default)]
    files_new: u64,
    #[serde(default)]
    files_changed: u64,
    #[serde(default)]
    files_unmodified: u64,
    #[serde(default)]
    dirs_new: u64,
    #[serde(default)]
    dirs_changed: u64,
    #[serde(default)]
    dirs_unmodified: u64,
    #[serde(default)]
    data_added: u64,
    #[serde(default)]
    total_files_processed: u64,
    #[serde(default)]
    total_bytes_processed: u64,
    #[serde(default)]
    total_duration: f64,
    #[serde(default)]
    snapshot_id: Option<String>,
}

impl JsonSummary {
    fn to_summary(&self) -> BackupSummary {
        BackupSummary {
            snapshot_id: self.snapshot_id.clone(),
            files_new: self.files_new,
            files_changed: self.files_changed,
            files_unmodified: self.files_unmodified,
            dirs_new: self.dirs_new,
            dirs_changed: self.dirs_changed,
            dirs_unmodified: self.dirs_unmodified,
            bytes_added: self.data_added,
            files_processed: self.total_files_processed,
            bytes_processed: self.total_bytes_processed,
            duration: Duration::try_from_secs_f64(self.total_duration).unwrap_or_default(),
        }
    }
}

/// restic's `error` message. restic 0.14 serialises the Go error as an object that often
/// carries only `Op`, so the item and the phase are the useful parts.
#[derive(Debug, Deserialize)]
struct JsonError {
    #[serde(default)]
    error: serde_json::Value,
    #[serde(default)]
    during: String,
    #[serde(default)]
    item: String,
}

impl JsonError {
    fn describe(&self) -> String {
        let what = match &self.error {
            serde_json::Value::String(message) => message.clone(),
            serde_json::Value::Object(fields) => fields
                .get("Op")
                .and_then(serde_json::Value::as_str)
                .map_or_else(|| "error".to_owned(), |op| format!("{op} failed")),
            _ => "error".to_owned(),
        };
        format!("{} ({} during {})", self.item, what, self.during)
    }
}

async fn read_backup_stream(pipe: ChildStdout) -> io::Result<BackupStream> {
    let mut reader = BufReader::new(pipe);
    let mut stream = BackupStream::default();
    let mut line = Vec::new();
    loop {
        line.clear();
        if reader.read_until(b'\n', &mut line).await? == 0 {
            return Ok(stream);
        }
        // Lines that are not JSON (none are expected) are ignored rather than fatal.
        match serde_json::from_slice::<BackupMessage>(&line) {
            Ok(BackupMessage::Summary(summary)) => stream.summary = Some(summary),
            Ok(BackupMessage::Error(error)) => {
                stream.error_count += 1;
                if stream.errors.len() < REPORTED_ITEMS {
                    stream.errors.push(error.describe());
                }
            }
            Ok(BackupMessage::Other) | Err(_) => {}
        }
    }
}

/// One group of `forget --json` output; only the counts matter here.
#[derive(Debug, Deserialize)]
struct ForgetGroup {
    #[serde(default)]
    keep: Option<Vec<serde::de::IgnoredAny>>,
    #[serde(default)]
    remove: Option<Vec<serde::de::IgnoredAny>>,
}

/// Counts from `forget --prune --json` output: the JSON array comes first, prune's text report
/// after it; no output at all means no snapshot matched.
fn parse_forget(stdout: &[u8]) -> std::result::Result<ForgetSummary, String> {
    let Some(start) = stdout.iter().position(|&byte| byte == b'[') else {
        return if stdout.iter().all(u8::is_ascii_whitespace) {
            Ok(ForgetSummary::default())
        } else {
            Err("no JSON array in the output".to_owned())
        };
    };
    let groups: Vec<ForgetGroup> = serde_json::Deserializer::from_slice(&stdout[start..])
        .into_iter()
        .next()
        .unwrap_or_else(|| Ok(Vec::new()))
        .map_err(|error| error.to_string())?;
    Ok(ForgetSummary {
        groups: groups.len(),
        kept: groups
            .iter()
            .map(|g| g.keep.as_ref().map_or(0, Vec::len))
            .sum(),
        removed: groups
            .iter()
            .map(|g| g.remove.as_ref().map_or(0, Vec::len))
            .sum(),
    })
}

/// What `restic cat config` says about a repository.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Probe {
    /// It opened.
    Exists,
    /// restic reported that there is no repository: the only case for `init`.
    Missing,
    /// There is a repository, but the password opens no key.
    WrongPassword,
    /// Anything else (network, permissions, corruption): never `init`.
    Unavailable,
}

/// Why a command could not use the repository at all.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum OpenFailure {
    /// restic reported that there is no repository.
    Missing,
    /// The password opens no key.
    WrongPassword,
    /// The repository could not be read (network, permissions, corruption).
    Unavailable,
    /// Another restic process (or a stale lock of a killed one) holds a conflicting lock.
    Locked,
}

/// One job's use of a repository, with as few restic runs as the job allows.
///
/// Every restic run derives the repository's key from the password before it does anything
/// (scrypt, calibrated by `restic init` to about half a second of CPU), so a job that first
/// probed the repository (`cat config`), then removed stale locks (`unlock`), then backed up
/// and applied retention paid for the key four times where bare restic pays once. A session
/// folds the checks into the commands that do the work:
///
/// - the job's first path backup opens the repository itself: when restic reports that the
///   repository does not exist, it is initialised and the backup runs again; a wrong password
///   or an unreachable repository fails it as the probe would have, and [`Session::refused`]
///   tells the job to stop;
/// - a stream cannot be replayed, so before the first `backup --stdin` the repository is
///   opened with [`Restic::open`] (one run: `unlock`, initialising a missing repository);
/// - a backup or `forget` refused because of a lock runs again once after `unlock` removed
///   stale locks (a live lock stays and the command fails with restic's message).
#[derive(Debug)]
pub struct Session<'a> {
    restic: &'a Restic,
    /// How the repository was found once a command opened it.
    opened: Option<RepositoryStatus>,
    /// Why the repository cannot be used at all, once a command found that out.
    refused: Option<String>,
}

impl Session<'_> {
    /// How the repository was found, once a command of this session opened it.
    #[must_use]
    pub fn opened(&self) -> Option<RepositoryStatus> {
        self.opened
    }

    /// Why the repository cannot be used at all (a wrong password, an unreachable or
    /// unreadable repository), once a command found that out: the job should stop.
    #[must_use]
    pub fn refused(&self) -> Option<&str> {
        self.refused.as_deref()
    }

    /// Opens the repository unless a command of this session already did (see
    /// [`Restic::open`]).
    pub async fn open(&mut self) -> Result<RepositoryStatus> {
        if let Some(status) = self.opened {
            return Ok(status);
        }
        match self.restic.open().await {
            Ok(status) => {
                self.opened = Some(status);
                Ok(status)
            }
            Err(error) => Err(self.refuse(error)),
        }
    }

    /// [`Restic::backup_paths`], opening the repository on the way (see the type's docs).
    pub async fn backup_paths(
        &mut self,
        target: &TargetId,
        paths: &[PathBuf],
        options: &BackupOptions,
    ) -> Result<BackupSummary> {
        let command = "backup";
        let mut unlocked = false;
        loop {
            let restic = self.restic;
            let finished = match restic.run_backup_paths(target, paths, options).await {
                Ok(finished) => finished,
                Err(error) => return Err(self.refuse(error)),
            };
            if self.next_step(command, &finished, &mut unlocked).await? == Step::Done {
                return self.restic.backup_result(command, &finished);
            }
        }
    }

    /// [`Restic::backup_stdin`], after opening the repository: the stream can be read once
    /// only, so a missing repository or a stale lock must be dealt with before.
    pub async fn backup_stdin<R>(
        &mut self,
        target: &TargetId,
        filename: &str,
        reader: R,
        options: &BackupOptions,
    ) -> Result<BackupSummary>
    where
        R: AsyncRead + Unpin + Send,
    {
        self.open().await?;
        self.restic
            .backup_stdin(target, filename, reader, options)
            .await
    }

    /// [`Restic::forget_prune`], run again once after `unlock` when a lock was in the way.
    pub async fn forget_prune(&mut self) -> Result<ForgetSummary> {
        let mut unlocked = false;
        loop {
            let restic = self.restic;
            let finished = match restic.run_forget_prune().await {
                Ok(finished) => finished,
                Err(error) => return Err(self.refuse(error)),
            };
            if self
                .next_step("forget --prune", &finished, &mut unlocked)
                .await?
                == Step::Done
            {
                return self.restic.forget_result(&finished);
            }
        }
    }

    /// After a command ran: whether its outcome stands, or what stood in its way was dealt
    /// with and it should run again.
    async fn next_step(
        &mut self,
        command: &'static str,
        finished: &Finished,
        unlocked: &mut bool,
    ) -> Result<Step> {
        match Restic::open_failure(finished) {
            None => {
                // It got past opening the repository, whatever happened after.
                self.opened.get_or_insert(RepositoryStatus::Existing);
                Ok(Step::Done)
            }
            Some(OpenFailure::Missing) if self.opened.is_none() => {
                match self.restic.initialise().await {
                    Ok(status) => {
                        self.opened = Some(status);
                        Ok(Step::Again)
                    }
                    // Without a repository no command of the job can succeed.
                    Err(error) => {
                        self.refused = Some(error.to_string());
                        Err(error)
                    }
                }
            }
            Some(OpenFailure::Locked) if !*unlocked => {
                *unlocked = true;
                info!(instance = %self.restic.settings.instance, command, "A lock is in the way; removing stale locks and trying again.");
                let restic = self.restic;
                match restic.unlock().await {
                    Ok(()) => Ok(Step::Again),
                    Err(error) => Err(self.refuse(error)),
                }
            }
            // A live lock: the command's own error says who holds it.
            Some(OpenFailure::Locked) => Ok(Step::Done),
            Some(failure) => {
                let error = self.restic.open_error(failure, command, finished);
                Err(self.refuse(error))
            }
        }
    }

    /// Remembers that the repository cannot be used when `error` says so (no later command
    /// could succeed either), and hands it on.
    fn refuse(&mut self, error: ResticError) -> ResticError {
        if matches!(
            error,
            ResticError::WrongPassword { .. }
                | ResticError::RepositoryUnavailable { .. }
                | ResticError::NoPassword { .. }
                | ResticError::Spawn { .. }
        ) {
            self.refused = Some(error.to_string());
        }
        error
    }
}

/// Whether a command's outcome stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Step {
    /// It does: report it.
    Done,
    /// What was in its way is gone: run it again.
    Again,
}

/// Classifies `restic cat config` by exit code and stderr. Only a definite "does not exist"
/// is [`Probe::Missing`]: restic 0.14 prints "Is there a repository at the following
/// location?" after *any* failure to read the config file, a refused connection included.
fn classify_probe(exit_code: Option<i32>, stderr: &str) -> Probe {
    match exit_code {
        Some(0) => return Probe::Exists,
        // restic ≥ 0.17 has dedicated exit codes.
        Some(10) => return Probe::Missing,
        Some(12) => return Probe::WrongPassword,
        _ => {}
    }
    if stderr.contains("wrong password or no key found") {
        return Probe::WrongPassword;
    }
    let missing = stderr
        .lines()
        .filter(|line| line.contains("unable to open config file"))
        .any(|line| {
            // local and sftp: the stat error; rest: `<config/> does not exist`; s3: "The
            // specified bucket does not exist" / NoSuchKey.
            [
                "no such file or directory",
                "does not exist",
                "NoSuchKey",
                "NoSuchBucket",
            ]
            .iter()
            .any(|phrase| line.contains(phrase))
        });
    if missing {
        Probe::Missing
    } else {
        Probe::Unavailable
    }
}

/// Replaces every secret in a text: the repository (in the forms restic prints it) and every
/// instance `env` value.
#[derive(Clone)]
struct Scrubber {
    /// What to replace and with what, longest first so that a secret containing another is
    /// replaced whole.
    needles: Vec<(String, &'static str)>,
}

impl fmt::Debug for Scrubber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Scrubber(***)")
    }
}

impl Scrubber {
    fn new(repository: &Secret, env: &BTreeMap<String, Secret>) -> Self {
        let mut needles: Vec<(String, &'static str)> = repository_forms(repository.expose())
            .into_iter()
            .map(|form| (form, "<repository>"))
            .collect();
        // Every value, however short: a garbled message is better than a leaked secret.
        needles.extend(env.values().map(|value| (value.expose().to_owned(), "***")));
        needles.retain(|(needle, _)| !needle.is_empty());
        needles.sort_by(|a, b| b.0.len().cmp(&a.0.len()).then_with(|| a.0.cmp(&b.0)));
        needles.dedup_by(|a, b| a.0 == b.0);
        Self { needles }
    }

    fn scrub(&self, text: &str) -> String {
        let mut text = text.to_owned();
        for (needle, replacement) in &self.needles {
            if text.contains(needle.as_str()) {
                text = text.replace(needle.as_str(), replacement);
            }
        }
        text
    }
}

/// The repository string and the parts of it restic may print on their own.
fn repository_forms(repository: &str) -> Vec<String> {
    let mut forms = vec![
        repository.to_owned(),
        repository.trim_end_matches('/').to_owned(),
    ];
    // `local:/srv/repo` shows up as `/srv/repo/config`, `rest:http://…` as `http://…`.
    if let Some((prefix, rest)) = repository.split_once(':')
        && LOCATION_PREFIXES.contains(&prefix)
    {
        forms.push(rest.to_owned());
        forms.push(rest.trim_end_matches('/').to_owned());
    }
    // restic prints URLs as `user:***@host`: the password is hidden, the user name is not.
    if let Some((_, after_scheme)) = repository.split_once("://") {
        let authority = after_scheme.split('/').next().unwrap_or_default();
        if let Some((userinfo, _host)) = authority.rsplit_once('@') {
            forms.push(userinfo.to_owned());
            if let Some((user, password)) = userinfo.split_once(':') {
                forms.push(password.to_owned());
                // A user name of one or two letters would garble every message; it is not
                // the secret part.
                if user.len() > 2 {
                    forms.push(user.to_owned());
                }
            }
        }
    }
    forms
}

/// restic's stderr as one line: no blank lines, no location hint (it repeats the repository),
/// no `Fatal: ` prefixes, at most the last [`MESSAGE_LINES`] lines; a Go panic becomes its
/// first line.
fn summarize(text: &str) -> String {
    if let Some(panic) = text.lines().find(|line| line.starts_with("panic:")) {
        return format!("restic crashed: {}", panic.trim());
    }
    let mut lines = Vec::new();
    let mut skip_location = false;
    for line in text.lines().map(str::trim) {
        if std::mem::take(&mut skip_location) || line.is_empty() {
            continue;
        }
        if line.starts_with("Is there a repository at the following location?") {
            skip_location = true;
            continue;
        }
        lines.push(line.strip_prefix("Fatal: ").unwrap_or(line));
    }
    let start = lines.len().saturating_sub(MESSAGE_LINES);
    let message = lines[start..].join("; ");
    if message.is_empty() {
        "restic printed no error message".to_owned()
    } else {
        message
    }
}

/// What the operator can do about a failed command.
fn hint(command: &str, message: &str) -> &'static str {
    if message.contains("already locked") {
        "another restic process holds a lock on the repository (for example a prune from another node); the next run tries again, and stale locks are removed whenever they are in the way"
    } else if message.contains("wrong password or no key found") {
        "check the password in the instance's `env`"
    } else if message.contains("unable to open config file") {
        "the repository could not be opened: check that it exists and is reachable (Marina initialises a missing repository before a backup)"
    } else if command.starts_with("backup") {
        "no snapshot was saved for this target"
    } else if command.starts_with("forget") {
        "old snapshots were not removed; retention runs again after the next backup"
    } else if command == "init" {
        "check that the repository location is writable with the instance's credentials"
    } else {
        "check that the repository of this instance is reachable"
    }
}

/// `exit code N`, or how the process ended without one.
fn describe_status(status: ExitStatus) -> String {
    status.code().map_or_else(
        || "no exit code (killed by a signal)".to_owned(),
        |code| format!("exit code {code}"),
    )
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

#[cfg(test)]
mod tests {
    use super::*;

    // Real restic 0.14.0 stderr, captured on Debian 12 (repository strings shortened).
    const MISSING_LOCAL: &str = "Fatal: unable to open config file: stat /tmp/rx/repo/config: no such file or directory\nIs there a repository at the following location?\n/tmp/rx/repo\n";
    const MISSING_REST: &str = "Fatal: unable to open config file: <config/> does not exist\nIs there a repository at the following location?\nrest:http://user:***@127.0.0.1:18404/repo/\n";
    const MISSING_S3_BUCKET: &str = "Fatal: unable to open config file: Stat: The specified bucket does not exist.\nIs there a repository at the following location?\ns3:http://127.0.0.1:18404/bucket\n";
    const WRONG_PASSWORD: &str = "Fatal: wrong password or no key found\n";
    const REFUSED_REST: &str = "Fatal: unable to open config file: client.Head: Head \"http://127.0.0.1:1/config\": dial tcp 127.0.0.1:1: connect: connection refused\nIs there a repository at the following location?\nrest:http://127.0.0.1:1/\n";
    const REFUSED_S3: &str = "Fatal: unable to open config file: Stat: Get \"http://127.0.0.1:1/bucket/?location=\": dial tcp 127.0.0.1:1: connect: connection refused\nIs there a repository at the following location?\ns3:http://127.0.0.1:1/bucket\n";
    const FORBIDDEN_REST: &str = "Fatal: unable to open config file: unexpected HTTP response (403): 403 Forbidden\nIs there a repository at the following location?\nrest:http://127.0.0.1:18403/repo/\n";
    const SERVER_ERROR_REST: &str = "Fatal: unable to open config file: unexpected HTTP response (500): 500 Internal Server Error\nIs there a repository at the following location?\nrest:http://127.0.0.1:18500/repo/\n";
    const PERMISSION_DENIED: &str = "Fatal: unable to open repository at /tmp/rx/priv/repo: ReadDir: open /tmp/rx/priv/repo/keys: permission denied\n";
    const NOT_A_DIRECTORY: &str = "Fatal: unable to open repository at /tmp/rx/notdir/repo: ReadDir: open /tmp/rx/notdir/repo/keys: not a directory\n";
    const SFTP_UNRESOLVABLE: &str = "subprocess ssh: ssh: Could not resolve hostname nohost.invalid: Name or service not known\nFatal: unable to open repository at sftp:nohost.invalid:/x: unable to start the sftp session, error: EOF\n";
    const INVALID_BACKEND: &str = "Fatal: parsing repository location failed: invalid backend\nIf the repository is in a local directory, you need to add a `local:` prefix\n";
    const NO_PASSWORD: &str =
        "reading repository password from stdin\nFatal: an empty password is not a password\n";
    const CORRUPT_CONFIG: &str = "panic: runtime error: slice bounds out of range [16:8]\n\ngoroutine 1 [running]:\ngithub.com/restic/restic/internal/repository.(*Repository).LoadUnpacked(0xc0003409c0)\n";

    #[test]
    fn only_a_definite_does_not_exist_means_missing() {
        for sample in [MISSING_LOCAL, MISSING_REST, MISSING_S3_BUCKET] {
            assert_eq!(classify_probe(Some(1), sample), Probe::Missing, "{sample}");
        }
    }

    #[test]
    fn a_wrong_password_is_never_missing() {
        assert_eq!(
            classify_probe(Some(1), WRONG_PASSWORD),
            Probe::WrongPassword
        );
    }

    #[test]
    fn network_permission_and_other_errors_are_never_missing() {
        for sample in [
            REFUSED_REST,
            REFUSED_S3,
            FORBIDDEN_REST,
            SERVER_ERROR_REST,
            PERMISSION_DENIED,
            NOT_A_DIRECTORY,
            SFTP_UNRESOLVABLE,
            INVALID_BACKEND,
            NO_PASSWORD,
            "",
        ] {
            assert_eq!(
                classify_probe(Some(1), sample),
                Probe::Unavailable,
                "{sample}"
            );
        }
        assert_eq!(classify_probe(Some(2), CORRUPT_CONFIG), Probe::Unavailable);
        // Killed by a signal: no exit code, and no conclusion either.
        assert_eq!(classify_probe(None, ""), Probe::Unavailable);
    }

    #[test]
    fn exit_codes_decide_first() {
        assert_eq!(classify_probe(Some(0), ""), Probe::Exists);
        // restic >= 0.17: 10 = repository does not exist, 12 = wrong password.
        assert_eq!(classify_probe(Some(10), ""), Probe::Missing);
        assert_eq!(classify_probe(Some(12), ""), Probe::WrongPassword);
    }

    fn env(pairs: &[(&str, &str)]) -> BTreeMap<String, Secret> {
        pairs
            .iter()
            .map(|(name, value)| ((*name).to_owned(), Secret::new((*value).to_owned())))
            .collect()
    }

    #[test]
    fn the_scrubber_hides_the_repository_in_every_printed_form() {
        let scrubber = Scrubber::new(
            &Secret::new("rest:http://backup-user:hunter2@127.0.0.1:18404/repo".into()),
            &BTreeMap::new(),
        );
        let cleaned = scrubber.scrub(
            "Fatal: unable to open repository at rest:http://backup-user:***@127.0.0.1:18404/repo/: x\nsee http://backup-user:hunter2@127.0.0.1:18404/repo",
        );
        assert!(!cleaned.contains("hunter2"), "{cleaned}");
        assert!(!cleaned.contains("backup-user"), "{cleaned}");

        let local = Scrubber::new(
            &Secret::new("local:/srv/secret-repo".into()),
            &BTreeMap::new(),
        );
        assert_eq!(
            local.scrub("stat /srv/secret-repo/config: no such file or directory"),
            "stat <repository>/config: no such file or directory"
        );
    }

    #[test]
    fn the_scrubber_hides_every_env_value_longest_first() {
        let scrubber = Scrubber::new(
            &Secret::new("/repo".into()),
            &env(&[
                ("RESTIC_PASSWORD", "abc"),
                ("OTHER", "abcdef"),
                ("EMPTY", ""),
            ]),
        );
        assert_eq!(scrubber.scrub("x abcdef y abc z"), "x *** y *** z");
    }

    #[test]
    fn messages_are_one_clean_line() {
        assert_eq!(
            summarize(MISSING_LOCAL),
            "unable to open config file: stat /tmp/rx/repo/config: no such file or directory"
        );
        assert_eq!(
            summarize(NO_PASSWORD),
            "reading repository password from stdin; an empty password is not a password"
        );
        assert_eq!(
            summarize(CORRUPT_CONFIG),
            "restic crashed: panic: runtime error: slice bounds out of range [16:8]"
        );
        assert_eq!(summarize("\n\n"), "restic printed no error message");
        let many = (0..30)
            .map(|i| format!("line {i}"))
            .collect::<Vec<_>>()
            .join("\n");
        assert!(summarize(&many).starts_with("line 20; "));
    }

    #[test]
    fn forget_output_is_read_up_to_the_prune_report() {
        let stdout = br#"[{"tags":["instance:i1","marina","volume:b"],"host":"n1","paths":null,"keep":[{"id":"a"}],"remove":[{"id":"b"},{"id":"c"}],"reasons":[]},{"tags":["instance:i1","marina","volume:a"],"host":"n1","paths":null,"keep":[{"id":"d"}],"remove":null,"reasons":[]}]
loading indexes...
[0:00] 100.00%  7 / 7 snapshots
done
"#;
        assert_eq!(
            parse_forget(stdout).unwrap(),
            ForgetSummary {
                groups: 2,
                kept: 2,
                removed: 2
            }
        );
        assert_eq!(parse_forget(b"").unwrap(), ForgetSummary::default());
        assert!(parse_forget(b"garbage").is_err());
    }

    #[test]
    fn backup_lines_parse_as_restic_0_14_prints_them() {
        let summary: BackupMessage = serde_json::from_str(r#"{"message_type":"summary","files_new":3,"files_changed":0,"files_unmodified":0,"dirs_new":2,"dirs_changed":0,"dirs_unmodified":0,"data_blobs":4,"tree_blobs":3,"data_added":3002105,"total_files_processed":3,"total_bytes_processed":3000003,"total_duration":0.268304021,"snapshot_id":"364a00fb"}"#).unwrap();
        let BackupMessage::Summary(summary) = summary else {
            panic!("not a summary");
        };
        let summary = summary.to_summary();
        assert_eq!(summary.files_new, 3);
        assert_eq!(summary.bytes_added, 3_002_105);
        assert_eq!(summary.snapshot_id.as_deref(), Some("364a00fb"));

        let status: BackupMessage = serde_json::from_str(r#"{"message_type":"status","percent_done":0.62,"total_files":3,"files_done":2,"current_files":["/data/sub/big"]}"#).unwrap();
        assert!(matches!(status, BackupMessage::Other));

        let error: BackupMessage = serde_json::from_str(r#"{"message_type":"error","error":{"Op":"read","Path":"/e.sql","Err":{}},"during":"archival","item":"/e.sql"}"#).unwrap();
        let BackupMessage::Error(error) = error else {
            panic!("not an error");
        };
        assert_eq!(error.describe(), "/e.sql (read failed during archival)");
    }

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
