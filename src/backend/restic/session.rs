//! A job's conversation with its repository: the [`Session`] that opens it once (checking,
//! initialising when missing, removing stale locks as they get in the way) and runs the job's
//! commands through it.

use std::path::PathBuf;

use tokio::io::AsyncRead;
use tracing::info;

use super::commands::OpenFailure;
use super::process::Finished;
use super::{BackupOptions, ForgetSummary, RepositoryStatus, Restic, ResticError, Result};
use crate::backend::BackupSummary;
use crate::model::TargetId;

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

impl Restic {
    /// A session for one job: see [`Session`].
    #[must_use]
    pub fn session(&self) -> Session<'_> {
        Session {
            restic: self,
            opened: None,
            refused: None,
        }
    }
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
