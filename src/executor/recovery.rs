//! Start-up recovery (DESIGN.md "durability where a crash would hurt"): before anything new
//! runs, finish what a crashed or killed Marina left undone — start the containers it had
//! stopped, remove its helper and backend containers, remove its stale staging, and mark the
//! interrupted jobs `aborted`.
//!
//! Only what this Marina's own journal names is undone. Several Marinas may share one host
//! (one engine, one staging directory: a Swarm node running two stacks, a test daemon beside
//! a real one); a directory or container another Marina has in flight is never touched.
//! Every staging directory is journaled before it is created, so nothing of this Marina's
//! escapes the journal.

use tracing::{info, warn};

use super::undo::{UndoAction, perform};
use crate::clock;
use crate::docker::{OWNER_LABEL, Runtime};
use crate::store::{JobId, JournalEntry, JournalKind, Store, StoreError};

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
    owner: &str,
) -> Result<Recovered, StoreError> {
    let mut recovered = Recovered::default();
    let undone = replay(runtime, store, store.pending_journal().await?).await?;
    recovered.restarted = undone.restarted;
    recovered.removed_dirs = undone.removed_dirs;
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

/// Puts back what one job's journal says is still undone, while Marina keeps running: how a
/// job whose task panicked is cleaned up (its own undo list died with it). Its helper and
/// backend containers are removed by their own guards as the panic unwinds; their journal
/// entries stay for the next start's sweep. Returns the names of the containers started again.
pub async fn undo_job<R: Runtime>(
    runtime: &R,
    store: &Store,
    job: JobId,
) -> Result<Undone, StoreError> {
    let entries = store
        .pending_journal()
        .await?
        .into_iter()
        .filter(|entry| entry.job_id == job && entry.kind != JournalKind::BackendContainer)
        .collect();
    replay(runtime, store, entries).await
}

/// What replaying journal entries did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Undone {
    /// Containers started again (names).
    pub restarted: Vec<String>,
    /// Staging directories removed.
    pub removed_dirs: usize,
}

/// Does the undo-work of journal `entries` (containers started, staging removed), resolving
/// each entry that is done; failures stay pending for the next start.
async fn replay<R: Runtime>(
    runtime: &R,
    store: &Store,
    entries: Vec<JournalEntry>,
) -> Result<Undone, StoreError> {
    let mut undone = Undone::default();
    for entry in entries {
        let done = match entry.kind {
            JournalKind::StoppedContainer => {
                let action = UndoAction::StartContainer {
                    id: entry.subject.clone(),
                    name: entry.detail.clone(),
                };
                let done = perform(runtime, &action).await;
                if done {
                    undone.restarted.push(entry.detail.clone());
                }
                done
            }
            JournalKind::StagingDir => {
                let done = perform(
                    runtime,
                    &UndoAction::RemoveDir(entry.subject.clone().into()),
                )
                .await;
                undone.removed_dirs += usize::from(done);
                done
            }
            JournalKind::RestoreVolume => {
                perform(runtime, &UndoAction::RemoveVolume(entry.subject.clone())).await
            }
            JournalKind::RestoreContainer => {
                let action = UndoAction::RemoveContainer {
                    id: entry.subject.clone(),
                    name: entry.detail.clone(),
                };
                perform(runtime, &action).await
            }
            // Removed with every other container carrying this Marina's owner label.
            JournalKind::BackendContainer => true,
        };
        if done {
            store.journal_resolve(entry.id, clock::now()).await?;
        }
    }
    Ok(undone)
}
