//! How restic is run for an instance: the binary, the repository, the cache, the instance
//! `env`, and the part of Marina's own environment restic may see.

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::path::PathBuf;
use std::time::Duration;

use crate::config::{Backend, Config, Instance};
use crate::model::{InstanceId, Retention, Secret};

/// The binary used when `resticBinary` is not set: `restic`, looked up on `PATH`.
pub const DEFAULT_BINARY: &str = "restic";

/// `PATH` for restic when Marina itself has none: the usual system directories.
const FALLBACK_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
/// `HOME` for restic when Marina has none. `/` is not writable by other users, unlike `/tmp`,
/// where anyone could plant an `.ssh/config` that the sftp backend would read.
const FALLBACK_HOME: &str = "/";
/// `TMPDIR` for restic when Marina has none.
const FALLBACK_TMPDIR: &str = "/tmp";

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

/// Everything a [`Restic`](super::Restic) needs from one instance's settings.
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
