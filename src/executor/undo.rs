//! Undo-work of a job: what must be put back however the job ends (a stopped container
//! started, a staging directory removed). Each item is written to the job store's journal
//! *before* the action it guards, so that after a crash the next start can finish the work
//! (see [`super::recovery`]).

use std::path::PathBuf;
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use tracing::{error, info, warn};

use crate::clock;
use crate::docker::{Runtime, RuntimeError};
use crate::store::{JobId, JournalId, JournalKind, Store, StoreError};

/// One thing to put back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UndoAction {
    /// Start a container Marina stopped.
    StartContainer {
        /// Its id.
        id: String,
        /// Its name, for logs.
        name: String,
    },
    /// Remove a staging directory Marina created.
    RemoveDir(PathBuf),
    /// Remove a volume a restore created, which the restore did not finish filling.
    RemoveVolume(String),
    /// Remove a database container a restore created, which the restore did not finish.
    RemoveContainer {
        /// Its id.
        id: String,
        /// Its name, for logs.
        name: String,
    },
}

impl UndoAction {
    fn journal(&self) -> (JournalKind, String, String) {
        match self {
            Self::StartContainer { id, name } => {
                (JournalKind::StoppedContainer, id.clone(), name.clone())
            }
            Self::RemoveDir(path) => (
                JournalKind::StagingDir,
                path.display().to_string(),
                String::new(),
            ),
            Self::RemoveVolume(name) => (JournalKind::RestoreVolume, name.clone(), String::new()),
            Self::RemoveContainer { id, name } => {
                (JournalKind::RestoreContainer, id.clone(), name.clone())
            }
        }
    }
}

/// The undo-work of one job.
#[derive(Debug)]
pub struct Undo {
    store: Store,
    job: JobId,
    /// Pending actions, oldest first.
    pending: Mutex<Vec<(JournalId, UndoAction)>>,
}

impl Undo {
    /// No undo-work yet for `job`.
    #[must_use]
    pub fn new(store: Store, job: JobId) -> Self {
        Self {
            store,
            job,
            pending: Mutex::new(Vec::new()),
        }
    }

    /// Journals `action` durably; only then may the caller do what it undoes.
    pub async fn promise(&self, action: UndoAction) -> Result<JournalId, StoreError> {
        let (kind, subject, detail) = action.journal();
        let id = self
            .store
            .journal_add(self.job, kind, &subject, &detail, clock::now())
            .await?;
        self.pending
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push((id, action));
        Ok(id)
    }

    /// The action was done by the job itself (the container is running again).
    pub async fn fulfilled(&self, id: JournalId) {
        self.pending
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .retain(|(pending, _)| *pending != id);
        if let Err(e) = self.store.journal_resolve(id, clock::now()).await {
            warn!(error = %e, "Could not mark undo-work as done; the next start will redo it harmlessly.");
        }
    }

    /// Does everything still pending, newest first: containers are started again, staging
    /// directories removed. Failures are logged; the journal keeps unfinished items for the
    /// next start.
    pub async fn run_all<R: Runtime>(&self, runtime: &R) {
        let pending: Vec<(JournalId, UndoAction)> =
            std::mem::take(&mut *self.pending.lock().unwrap_or_else(PoisonError::into_inner));
        for (id, action) in pending.into_iter().rev() {
            if perform(runtime, &action).await
                && let Err(e) = self.store.journal_resolve(id, clock::now()).await
            {
                warn!(error = %e, "Could not mark undo-work as done; the next start will redo it harmlessly.");
            }
        }
    }
}

/// Does one undo action; `true` when it is done (or nothing was left to do).
pub async fn perform<R: Runtime>(runtime: &R, action: &UndoAction) -> bool {
    match action {
        UndoAction::StartContainer { id, name } => match runtime.start_container(id).await {
            Ok(()) => {
                info!(container = %name, "Started the container again.");
                true
            }
            Err(RuntimeError::NoSuchContainer { .. }) => {
                warn!(container = %name, "The stopped container no longer exists; nothing to start.");
                true
            }
            Err(e) => {
                error!(container = %name, error = %e, "Could not start the container Marina stopped; start it by hand (docker start).");
                false
            }
        },
        UndoAction::RemoveDir(path) => match remove_dir(path).await {
            Ok(()) => true,
            Err(e) => {
                warn!(path = %path.display(), error = %e, "Could not remove the staging directory; remove it by hand.");
                false
            }
        },
        UndoAction::RemoveVolume(name) => match runtime.remove_volume(name).await {
            Ok(()) => {
                info!(volume = %name, "Removed the volume of the restore that did not finish.");
                true
            }
            Err(e) => {
                error!(volume = %name, error = %e, "Could not remove the volume of a restore that did not finish; it holds a partial restore. Remove it by hand (docker volume rm).");
                false
            }
        },
        UndoAction::RemoveContainer { id, name } => match runtime.remove_container(id).await {
            Ok(()) => {
                info!(container = %name, "Removed the container of the restore that did not finish.");
                true
            }
            Err(e) => {
                error!(container = %name, error = %e, "Could not remove the container of a restore that did not finish; remove it by hand (docker rm -f).");
                false
            }
        },
    }
}

/// Removes a directory tree; a missing one is fine. Retries once, since a helper container
/// that was just killed may still hold files for a moment.
async fn remove_dir(path: &std::path::Path) -> std::io::Result<()> {
    for attempt in 0..2 {
        match tokio::fs::remove_dir_all(path).await {
            Ok(()) => return Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
            Err(_) if attempt == 0 => tokio::time::sleep(Duration::from_millis(500)).await,
            Err(e) => return Err(e),
        }
    }
    Ok(())
}
