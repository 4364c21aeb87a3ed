//! The state gauges follow the controller: each published [`Snapshot`] becomes one
//! [`StateReading`] for [`Metrics::set_state`].
//!
//! An observer like `http`: it only reads snapshots, never the controller's state, and runs
//! as a task of its own so the controller's loop only decides. It sits above `reconcile`
//! so that `metrics` — which every layer emits events into — need not know what a snapshot
//! is.

use std::sync::Arc;

use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use crate::metrics::{InstanceReading, Metrics, StateReading};
use crate::reconcile::Snapshot;

/// What the state gauges should show for `snapshot`.
#[must_use]
pub fn reading(snapshot: &Snapshot) -> StateReading<'_> {
    StateReading {
        config_applied: snapshot
            .config
            .last_reload
            .as_ref()
            .is_some_and(|reload| reload.accepted),
        unassigned_targets: snapshot.unassigned_targets.len(),
        unprotected_volumes: snapshot.unprotected_volumes.len(),
        jobs_running: snapshot.jobs_running,
        jobs_queued: snapshot.jobs_waiting,
        instances: snapshot
            .instances
            .iter()
            .map(|instance| InstanceReading {
                id: &instance.id,
                targets: instance
                    .targets
                    .iter()
                    .map(|target| (&target.id, target.kind))
                    .collect(),
                next_run_at: instance.next_run_at,
                schedule_interval_seconds: instance.schedule_interval_seconds,
                last_success_at: instance.last_success_at,
            })
            .collect(),
    }
}

/// Sets `metrics`' state gauges from `snapshot`.
pub fn observe(metrics: &Metrics, snapshot: &Snapshot) {
    metrics.set_state(&reading(snapshot));
}

/// Refreshes the state gauges from every snapshot the controller publishes, until
/// `shutdown` or the controller is gone. A burst of snapshots is observed once, at its
/// latest.
pub async fn follow(
    metrics: Metrics,
    mut snapshots: watch::Receiver<Arc<Snapshot>>,
    shutdown: CancellationToken,
) {
    loop {
        let snapshot = Arc::clone(&snapshots.borrow_and_update());
        observe(&metrics, &snapshot);
        tokio::select! {
            () = shutdown.cancelled() => return,
            changed = snapshots.changed() => if changed.is_err() { return },
        }
    }
}

#[cfg(test)]
mod tests;
