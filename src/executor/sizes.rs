//! What each snapshot restores, counted once per process: restic before 0.17 records no
//! size in a snapshot, counting costs a restic run, and a snapshot never changes. Shared by
//! every job and question, like [`super::locks`] and [`super::probe`].

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

use crate::backend::restic::{Restic, ResticError, RestoreSize, SnapshotInfo};

/// What each snapshot restores, by full snapshot id, once counted. Cheap to clone: clones
/// share one map.
#[derive(Debug, Clone, Default)]
pub(crate) struct Sizes(Arc<Mutex<HashMap<String, RestoreSize>>>);

impl Sizes {
    fn get(&self, id: &str) -> Option<RestoreSize> {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(id)
            .copied()
    }

    fn put(&self, id: &str, size: RestoreSize) {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(id.to_owned(), size);
    }

    /// What `snapshot` restores: recorded by restic, counted before, or counted now.
    pub(crate) async fn of(
        &self,
        restic: &Restic,
        snapshot: &SnapshotInfo,
    ) -> Result<RestoreSize, ResticError> {
        if let Some(size) = known(self, snapshot) {
            return Ok(size);
        }
        let size = restic.restore_size(&snapshot.id).await?;
        self.put(&snapshot.id, size);
        Ok(size)
    }
}

/// The size restic recorded in the snapshot, or one counted before.
pub(crate) fn known(sizes: &Sizes, snapshot: &SnapshotInfo) -> Option<RestoreSize> {
    snapshot
        .summary
        .map(|summary| RestoreSize {
            bytes: summary.bytes,
            entries: summary.files,
        })
        .or_else(|| sizes.get(&snapshot.id))
}
