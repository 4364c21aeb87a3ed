//! Making sure there is a repository: `restic cat config` to look, `restic init` only when
//! restic reported that there is none, and how restic's answer to `cat config` is read.

use tracing::info;

use crate::backend::restic::process::{Capture, args};
use crate::backend::restic::{Restic, ResticError, Result};

/// What [`Restic::ensure_repository`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RepositoryStatus {
    /// The repository existed and the password opened it.
    Existing,
    /// restic reported that there was no repository, so Marina initialised one.
    Initialised,
}

/// What `restic cat config` says about a repository.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(in crate::backend::restic) enum Probe {
    /// It opened.
    Exists,
    /// restic reported that there is no repository: the only case for `init`.
    Missing,
    /// There is a repository, but the password opens no key.
    WrongPassword,
    /// Anything else (network, permissions, corruption): never `init`.
    Unavailable,
}

impl Restic {
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

    /// `restic init`, for a repository restic has just reported as missing.
    pub(in crate::backend::restic) async fn initialise(&self) -> Result<RepositoryStatus> {
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
}

/// Classifies `restic cat config` by exit code and stderr. Only a definite "does not exist"
/// is [`Probe::Missing`]: restic 0.14 prints "Is there a repository at the following
/// location?" after *any* failure to read the config file, a refused connection included.
pub(in crate::backend::restic) fn classify_probe(exit_code: Option<i32>, stderr: &str) -> Probe {
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
