//! Opening a repository for a job in one restic run, and recognising a command that failed
//! because it could not open its repository (missing, refusing the password, unreachable,
//! locked) rather than in its own work.

use crate::backend::restic::process::Finished;
use crate::backend::restic::{Restic, ResticError, Result};

use super::init::{Probe, RepositoryStatus, classify_probe};

/// Why a command could not use the repository at all.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(in crate::backend::restic) enum OpenFailure {
    /// restic reported that there is no repository.
    Missing,
    /// The password opens no key.
    WrongPassword,
    /// The repository could not be read (network, permissions, corruption).
    Unavailable,
    /// Another restic process (or a stale lock of a killed one) holds a conflicting lock.
    Locked,
}

impl Restic {
    /// Opens the repository for a job in one restic run: `restic unlock` fails exactly like
    /// `restic cat config` when the repository is missing, unreachable or refuses the
    /// password (both open it the same way first), and when it succeeds it has also removed
    /// stale locks. A repository restic reports as missing is initialised; nothing else ever
    /// leads to `init`.
    pub async fn open(&self) -> Result<RepositoryStatus> {
        let command = "unlock";
        let finished = self.run_unlock().await?;
        if finished.status.success() {
            return Ok(RepositoryStatus::Existing);
        }
        match Self::open_failure(&finished) {
            Some(OpenFailure::Missing) => self.initialise().await,
            Some(failure) => Err(self.open_error(failure, command, &finished)),
            None => Err(self.failed(command, &finished)),
        }
    }

    /// Why a finished command could not use the repository at all, if that is why it failed:
    /// it could not open the repository (read from the raw stderr, as [`classify_probe`]
    /// does), or a lock stood in its way.
    pub(in crate::backend::restic) fn open_failure(finished: &Finished) -> Option<OpenFailure> {
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
    pub(in crate::backend::restic) fn open_error(
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
}
