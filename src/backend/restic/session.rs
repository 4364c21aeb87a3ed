//! A job's conversation with its repository: the [`Session`] that opens it once (checking,
//! initialising when missing, removing stale locks as they get in the way) and how restic's
//! answer to `cat config` is classified.

#[allow(clippy::wildcard_imports)] // The backend's own vocabulary, shared by its parts.
use super::*;

/// What `restic cat config` says about a repository.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Probe {
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
pub(super) enum OpenFailure {
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
    pub(super) restic: &'a Restic,
    /// How the repository was found once a command opened it.
    pub(super) opened: Option<RepositoryStatus>,
    /// Why the repository cannot be used at all, once a command found that out.
    pub(super) refused: Option<String>,
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
    pub(super) async fn next_step(
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
    pub(super) fn refuse(&mut self, error: ResticError) -> ResticError {
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
pub(super) enum Step {
    /// It does: report it.
    Done,
    /// What was in its way is gone: run it again.
    Again,
}

/// Classifies `restic cat config` by exit code and stderr. Only a definite "does not exist"
/// is [`Probe::Missing`]: restic 0.14 prints "Is there a repository at the following
/// location?" after *any* failure to read the config file, a refused connection included.
pub(super) fn classify_probe(exit_code: Option<i32>, stderr: &str) -> Probe {
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
