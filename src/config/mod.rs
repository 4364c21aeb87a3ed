//! Configuration: `config.yml` bytes → a validated [`Config`] (SPEC §1).
//!
//! The pipeline is parse (position-aware YAML tree, `yaml.rs`) → decode and validate every
//! field, expanding `${VAR}` references on the way (`schema.rs`) → either a `Config` or the
//! complete list of problems, each with `file:line:column` and a field path. A `Config` is
//! plain data with `Eq`, so a reload can be diffed by instance id.
//!
//! This layer has no effects beyond reading the file it is asked to load: watching the file,
//! signals and metrics belong to whoever calls it.

mod decode;
mod expand;
mod instance;
mod schema;
mod values;
mod yaml;

#[cfg(test)]
mod props;
#[cfg(test)]
mod tests;

use std::collections::BTreeMap;
use std::fmt;
use std::net::IpAddr;
use std::num::NonZeroUsize;
use std::path::{Path, PathBuf};
use std::time::Duration;

use chrono_tz::Tz;

use crate::model::{InstanceId, Retention, Schedule, Secret, TargetSpec};

pub use expand::ExpandError;
pub use yaml::Position;

/// Where the config is read from when neither `--config` nor `CONFIG_FILE` says (SPEC §1).
pub const DEFAULT_PATH: &str = "/config.yml";

/// The HTTP port when the config names none.
pub const DEFAULT_API_PORT: u16 = 8080;

/// The whole validated configuration: global settings with every default applied, and the
/// instances with their own settings already resolved against the globals.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// Backup instances in file order.
    pub instances: Vec<Instance>,
    /// This node's name in the API, restic's `--host` and federation (default: host name).
    pub node_name: String,
    /// The executor's bound on jobs running at once, across all instances.
    pub max_concurrent_jobs: NonZeroUsize,
    /// Where data is staged before it is shipped (SPEC §3.1).
    pub staging_dir: PathBuf,
    /// Image used to read volumes; it must have `sh` and `cp`.
    pub helper_image: String,
    /// Full relist of Docker as a safety net for missed events.
    pub resync_interval: Duration,
    /// The job store, an `SQLite` database file.
    pub db_path: PathBuf,
    /// The restic executable, looked up on `PATH` when not a path.
    pub restic_binary: PathBuf,
    /// How long running jobs may finish after SIGTERM before they are aborted (SPEC §5).
    pub shutdown_grace: Duration,
    /// Job and system log rows older than this are pruned.
    pub log_retention: Duration,
    /// The HTTP surface: API, dashboard, metrics.
    pub api: ApiConfig,
    /// Base URLs of other Marina nodes whose answers are merged into ours (federation).
    pub peers: Vec<String>,
    /// How long a merged answer waits for each peer before reporting it unreachable.
    pub peer_timeout: Duration,
}

/// Settings of the one HTTP port.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiConfig {
    /// Address to listen on.
    pub bind: IpAddr,
    /// Port to listen on; 0 lets the system pick one (the bound address is logged).
    pub port: u16,
    /// Origins allowed by CORS; empty means none.
    pub cors_origins: Vec<String>,
    /// Password for the API and dashboard; `None` means no authentication.
    pub auth_password: Option<Secret>,
    /// Whether `/metrics` needs authentication too.
    pub metrics_auth: bool,
}

/// One backup instance: what to back up, when, and where to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Instance {
    /// Unique id; it names staging directories, restic tags and metric labels.
    pub id: InstanceId,
    /// Where the data goes.
    pub backend: Backend,
    /// When it runs.
    pub schedule: Schedule,
    /// The zone `schedule` is read in (instance, else global, else `TZ`, else UTC).
    pub timezone: Tz,
    /// Deadline for the whole job; `None` means no deadline beyond the per-command ones.
    pub timeout: Option<Duration>,
    /// Deadline for each `preHook` and `postHook` (`hookTimeout`): past it the hook is killed
    /// inside its container and fails its target.
    pub hook_timeout: Duration,
    /// Deadline for each database dump (`resticTimeout`, on both backends): past it the dump
    /// tool is killed inside its container and fails its target.
    pub dump_timeout: Duration,
    /// Whether a run missed while Marina was down is caught up once at start-up (SPEC §5).
    pub catch_up: bool,
    /// Default `stopAttached` for this instance's volume targets.
    pub stop_attached: bool,
    /// Environment for restic, or for the custom image's container. Values are secrets.
    pub env: BTreeMap<String, Secret>,
    /// Targets named in the config; labels add more at run time.
    pub targets: Vec<TargetSpec>,
}

/// How an instance ships its data.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Backend {
    /// The built-in restic backend (SPEC §4.1).
    Restic {
        /// The restic repository (a URL or an absolute local path). May hold credentials,
        /// so it is a secret.
        repository: Secret,
        /// Snapshots kept by `forget --prune`.
        retention: Retention,
        /// Deadline for each restic command.
        command_timeout: Duration,
    },
    /// A user-supplied image that reads `/backup` (SPEC §4.2).
    CustomImage {
        /// The image reference.
        image: String,
        /// The command that restores from the image's backups (`restoreEntrypoint`), in exec
        /// form; a command line in the config is `["/bin/sh", "-c", line]` here. `None`: the
        /// image's own `/restore.sh`, when it has one (docs/custom-backends.md, "Restore
        /// contract").
        restore_entrypoint: Option<Vec<String>>,
    },
}

impl Backend {
    /// A short name for summaries and logs.
    #[must_use]
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Restic { .. } => "restic",
            Self::CustomImage { .. } => "custom image",
        }
    }
}

/// How serious a diagnostic is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Severity {
    /// The config is rejected.
    Error,
    /// The config is accepted, but something will probably not work as meant.
    Warning,
}

/// One problem found in a config file, located as precisely as possible.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostic {
    /// Error or warning.
    pub severity: Severity,
    /// The config file as the user named it.
    pub file: String,
    /// Line and column; `None` when the problem is not in the file (e.g. the `TZ` variable).
    pub position: Option<Position>,
    /// Field path such as `instances[1].targets[0].paths[0]`; empty for the whole file.
    pub path: String,
    /// What is wrong and, where it helps, what to write instead. Never a secret.
    pub message: String,
}

impl fmt::Display for Diagnostic {
    /// `file:line:column: path: message`, with `warning: ` before the message of a warning.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.file)?;
        if let Some(position) = self.position {
            write!(f, ":{position}")?;
        }
        f.write_str(": ")?;
        if !self.path.is_empty() {
            write!(f, "{}: ", self.path)?;
        }
        if self.severity == Severity::Warning {
            f.write_str("warning: ")?;
        }
        f.write_str(&self.message)
    }
}

/// A config that was rejected, with every problem found (errors first, in file order).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}", render(.diagnostics))]
pub struct ConfigError {
    /// All errors and warnings.
    pub diagnostics: Vec<Diagnostic>,
}

fn render(diagnostics: &[Diagnostic]) -> String {
    diagnostics
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("\n")
}

/// A config that was accepted, with the warnings found on the way.
#[derive(Debug, Clone)]
pub struct Loaded {
    /// The validated configuration.
    pub config: Config,
    /// Things that will probably not work as meant, but do not stop the config.
    pub warnings: Vec<Diagnostic>,
}

/// What the config reads from outside the file: environment variables (for `${VAR}` and
/// `TZ`) and the host name (default `nodeName`). Tests supply their own.
pub trait Environment {
    /// The value of an environment variable, if set.
    fn var(&self, name: &str) -> Option<String>;
    /// This machine's host name, if it can be found.
    fn hostname(&self) -> Option<String>;
}

/// The real process environment.
#[derive(Debug, Clone, Copy, Default)]
pub struct ProcessEnvironment;

impl Environment for ProcessEnvironment {
    fn var(&self, name: &str) -> Option<String> {
        std::env::var(name).ok()
    }

    fn hostname(&self) -> Option<String> {
        std::fs::read_to_string("/proc/sys/kernel/hostname")
            .ok()
            .or_else(|| std::env::var("HOSTNAME").ok())
            .map(|name| name.trim().to_owned())
            .filter(|name| !name.is_empty())
    }
}

/// Reads and validates the config file at `path`.
pub fn load(path: &Path, env: &dyn Environment) -> Result<Loaded, ConfigError> {
    let file = path.display().to_string();
    match std::fs::read_to_string(path) {
        Ok(text) => load_str(&text, &file, env),
        Err(e) => Err(ConfigError {
            diagnostics: vec![Diagnostic {
                severity: Severity::Error,
                file,
                position: None,
                path: String::new(),
                message: format!("cannot read the config file: {e}"),
            }],
        }),
    }
}

/// Validates config `text`; `file` is the name diagnostics show.
pub fn load_str(text: &str, file: &str, env: &dyn Environment) -> Result<Loaded, ConfigError> {
    schema::decode(text, file, env)
}
