//! "One volume is never staged by two jobs at once" (SPEC §3): a lock per volume name,
//! shared by all jobs of the executor.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

use tokio::sync::OwnedMutexGuard;

/// Locks by volume name. Entries are created on demand and kept (a few bytes per volume).
#[derive(Debug, Clone, Default)]
pub struct VolumeLocks {
    locks: Arc<Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>>,
}

impl VolumeLocks {
    /// Waits until no other job stages `volume`, then holds it until the guard is dropped.
    pub async fn lock(&self, volume: &str) -> OwnedMutexGuard<()> {
        let lock = {
            let mut locks = self.locks.lock().unwrap_or_else(PoisonError::into_inner);
            Arc::clone(locks.entry(volume.to_owned()).or_default())
        };
        lock.lock_owned().await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[tokio::test(start_paused = true)]
    async fn a_volume_is_held_by_one_job_at_a_time() {
        let locks = VolumeLocks::default();
        let first = locks.lock("data").await;
        let other = locks.lock("other").await;
        let waiting = tokio::spawn({
            let locks = locks.clone();
            async move { locks.lock("data").await }
        });
        tokio::time::sleep(Duration::from_secs(1)).await;
        assert!(
            !waiting.is_finished(),
            "the second job waits for the volume"
        );
        drop(first);
        let _second = tokio::time::timeout(Duration::from_secs(1), waiting)
            .await
            .unwrap()
            .unwrap();
        drop(other);
    }
}
