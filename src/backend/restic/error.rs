//! What can go wrong with a restic operation, in words for the operator.

use std::io;
use std::path::PathBuf;
use std::time::Duration;

use crate::backend::BackupSummary;
use crate::model::InstanceId;

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
    /// Preparing or filling a restore's destination failed.
    #[error("cannot {action} `{path}` while restoring for instance {instance}: {source}")]
    Destination {
        /// The instance.
        instance: InstanceId,
        /// What was being done (`read`, `create`, `move into place`, …).
        action: &'static str,
        /// The path it was done to.
        path: PathBuf,
        /// The operating system's error.
        #[source]
        source: io::Error,
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

/// A duration as people write it in `resticTimeout` (`1h 30m`).
fn human(duration: &Duration) -> humantime::FormattedDuration {
    humantime::format_duration(*duration)
}
