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
//! # A tour, in the order a backup uses the parts
//!
//! - this file — [`Restic`], one instance's repository, built from [`ResticSettings`];
//! - `settings` — what an instance's restic is run with: binary, repository, `env`, cache,
//!   and the part of Marina's environment restic may see;
//! - `session` — a job's [`Session`]: opens the repository once, on the way of the job's
//!   first command, and runs a command again after `init` or `unlock` cleared its way;
//! - `commands/` — the repository operations, one file each: `init` (`cat config`, `init`),
//!   `open`, `unlock`, `backup`, `forget` (retention), `snapshots`, `restore`, `dump` and
//!   `stats`;
//! - `process` — one restic command from start to end: the checks every command needs, the
//!   child with its minimal environment, the timeout, stdin, stdout and the stderr tail, and
//!   the errors a finished command turns into; and a streaming child that is stopped with
//!   `SIGINT`, so restic removes its lock;
//! - `output` — reading the `backup --json` stream while restic runs;
//! - `scrub` — secrets kept out of messages, and the summaries and hints messages use;
//! - `error` — [`ResticError`].
//!
//! Besides the [`Restic`] type of this file, the parts depend one way, top to bottom:
//! `session` on `commands`, `commands` on `process`, `process` on `output`, `scrub`,
//! `settings` and `error`, which depend on no other part.

mod commands;
mod error;
mod output;
mod process;
mod scrub;
mod session;
mod settings;
#[cfg(test)]
mod tests;

pub use self::commands::{
    BackupOptions, DumpIntoError, DumpReader, ForgetSummary, RepositoryStatus, RestoreSize,
    SnapshotInfo, SnapshotSummary,
};
pub use self::error::{ResticError, Result};
pub use self::session::Session;
pub use self::settings::{BaseEnv, Cache, DEFAULT_BINARY, ResticSettings};

use self::scrub::Scrubber;
use crate::config::{Config, Instance};
use crate::model::InstanceId;

/// The tag every Marina snapshot carries, so Marina never touches snapshots it did not make.
pub const MARINA_TAG: &str = "marina";

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
}
