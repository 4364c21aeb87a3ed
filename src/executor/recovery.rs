//! Start-up recovery (DESIGN.md "durability where a crash would hurt"): before anything new
//! runs, finish what a crashed or killed Marina left undone — start the containers it had
//! stopped, remove its helper and backend containers, remove stale staging, and mark the
//! interrupted jobs `aborted`.

use std::path::Path;

use tracing::{info, warn};

use super::staging::{self, RESTIC_COPY_DIR};
use super::undo::{UndoAction, perform};
use crate::clock;
use crate::docker::{OWNER_LABEL, Runtime};
use crate::store::{JournalKind, Store, StoreError};

/// What recovery did, for the log and tests.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Recovered {
    /// Containers started again (names).
    pub restarted: Vec<String>,
    /// Leftover helper/backend containers removed (names).
    pub removed_containers: Vec<String>,
    /// Staging directories removed.
    pub removed_dirs: usize,
    /// Jobs marked aborted.
    pub aborted_jobs: usize,
}

/// Runs recovery; see the [module docs](self). Failures to undo are logged and stay in the
/// journal for the next start; only a job store that cannot answer is an error. `owner` is
/// this Marina's owner label value: only its own leftover containers are removed.
pub async fn recover<R: Runtime>(
    runtime: &R,
    store: &Store,
    staging_dir: &Path,
    owner: &str,
) -> Result<Recovered, StoreError> {
    let mut recovered = Recovered::default();
    for entry in store.pending_journal().await? {
        let done = match entry.kind {
            JournalKind::StoppedContainer => {
                let action = UndoAction::StartContainer {
                    id: entry.subject.clone(),
                    name: entry.detail.clone(),
                };
                let done = perform(runtime, &action).await;
                if done {
                    recovered.restarted.push(entry.detail.clone());
                }
                done
            }
            JournalKind::StagingDir => {
                perform(
                    runtime,
                    &UndoAction::RemoveDir(entry.subject.clone().into()),
                )
                .await
            }
            // Removed below with every other container carrying the job label.
            JournalKind::BackendContainer => true,
        };
        if done {
            store.journal_resolve(entry.id, clock::now()).await?;
        }
    }
    // Only this Marina's leftovers: another Marina on the same engine may be running a job.
    match runtime
        .remove_containers_with_label(&format!("{OWNER_LABEL}={owner}"))
        .await
    {
        Ok(removed) => recovered.removed_containers = removed.into_iter().map(|c| c.name).collect(),
        Err(e) => {
            warn!(error = %e, "Could not look for leftover helper and backend containers; remove containers labelled dev.polarfox.marina.owner by hand.");
        }
    }
    recovered.removed_dirs = remove_stale_staging(staging_dir).await;
    recovered.aborted_jobs = store.abort_interrupted(clock::now()).await?.len();
    if recovered != Recovered::default() {
        info!(
            restarted = ?recovered.restarted,
            removed_containers = ?recovered.removed_containers,
            removed_dirs = recovered.removed_dirs,
            aborted_jobs = recovered.aborted_jobs,
            "Recovered from an interrupted run."
        );
    }
    Ok(recovered)
}

/// Removes run directories and restic copies left in the staging directory.
async fn remove_stale_staging(staging_dir: &Path) -> usize {
    let dir = staging_dir.to_path_buf();
    let stale = tokio::task::spawn_blocking(move || {
        let mut stale = staging::stale_runs(&dir)?;
        for instance in std::fs::read_dir(&dir)?.flatten() {
            let copy = instance.path().join(RESTIC_COPY_DIR);
            if copy.is_dir() {
                stale.push(copy);
            }
        }
        Ok::<_, std::io::Error>(stale)
    })
    .await;
    let stale = match stale {
        Ok(Ok(stale)) => stale,
        Ok(Err(e)) if e.kind() == std::io::ErrorKind::NotFound => return 0,
        Ok(Err(e)) => {
            warn!(path = %staging_dir.display(), error = %e, "Could not look for stale staging directories.");
            return 0;
        }
        Err(e) => {
            warn!(error = %e, "Could not look for stale staging directories.");
            return 0;
        }
    };
    let mut removed = 0;
    for path in stale {
        match tokio::fs::remove_dir_all(&path).await {
            Ok(()) => removed += 1,
            Err(e) => {
                warn!(path = %path.display(), error = %e, "Could not remove a stale staging directory; remove it by hand.");
            }
        }
    }
    removed
}
