//! Restore points: an instance's snapshots on every node that shares its repository, in the
//! words the API and `marina snapshots` use, and how much each restores.
//!
//! restic 0.17 and newer record a snapshot's file count and size in the snapshot; older
//! versions do not, and counting costs a restic run per snapshot. A snapshot never changes,
//! so each count is made once and kept for the life of the process
//! ([`crate::executor::sizes::Sizes`]).

use crate::backend::restic::{Restic, ResticError, RestoreSize, SnapshotInfo};
use crate::executor::sizes::{Sizes, known};
use crate::model::{PRE_RESTORE_TAG, RestorePoint, TargetId};

/// The instance's restore points of `target` (or of all its targets), newest first. With
/// `count`, snapshots whose size is not known yet are counted (a restic run each); else
/// their `files` and `bytes` stay unknown.
pub(crate) async fn list(
    restic: &Restic,
    sizes: &Sizes,
    target: Option<&TargetId>,
    count: bool,
) -> Result<Vec<RestorePoint>, ResticError> {
    let mut snapshots = restic.restore_points(target).await?;
    snapshots.reverse();
    let mut points = Vec::with_capacity(snapshots.len());
    for snapshot in &snapshots {
        let size = if count {
            Some(sizes.of(restic, snapshot).await?)
        } else {
            known(sizes, snapshot)
        };
        points.push(point(snapshot, size));
    }
    Ok(points)
}

/// One snapshot as a restore point.
pub(crate) fn point(snapshot: &SnapshotInfo, size: Option<RestoreSize>) -> RestorePoint {
    let target = snapshot
        .tags
        .iter()
        .find(|tag| tag.starts_with("volume:") || tag.starts_with("db:"))
        .cloned();
    RestorePoint {
        id: snapshot.id.clone(),
        short_id: Some(if snapshot.short_id.is_empty() {
            snapshot.id.chars().take(8).collect()
        } else {
            snapshot.short_id.clone()
        }),
        time: Some(snapshot.time),
        host: Some(snapshot.host.clone()),
        target,
        tags: Some(snapshot.tags.clone()),
        paths: Some(snapshot.paths.clone()),
        files: size.map(|s| s.entries),
        bytes: size.map(|s| s.bytes),
        pre_restore: Some(snapshot.tags.iter().any(|tag| tag == PRE_RESTORE_TAG)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn snapshot(tags: &[&str]) -> SnapshotInfo {
        serde_json::from_value(serde_json::json!({
            "id": "0123456789abcdef",
            "time": "2026-12-01T02:00:00Z",
            "hostname": "node-1",
            "paths": ["/data"],
            "tags": tags,
        }))
        .unwrap()
    }

    #[test]
    fn a_point_names_its_target_and_whether_a_restore_saved_it() {
        let plain = point(&snapshot(&["marina", "instance:a", "volume:data"]), None);
        assert_eq!(plain.target.as_deref(), Some("volume:data"));
        assert_eq!(plain.short_id.as_deref(), Some("01234567"));
        assert_eq!(plain.pre_restore, Some(false));
        assert_eq!((plain.files, plain.bytes), (None, None));
        let saved = point(
            &snapshot(&["marina", "instance:a", "db:pg", PRE_RESTORE_TAG]),
            Some(RestoreSize {
                bytes: 10,
                entries: 2,
            }),
        );
        assert_eq!(saved.target.as_deref(), Some("db:pg"));
        assert_eq!(saved.pre_restore, Some(true));
        assert_eq!((saved.files, saved.bytes), (Some(2), Some(10)));
    }
}
