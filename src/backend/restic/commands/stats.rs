//! `restic stats --mode restore-size`: how much a snapshot gives back when restored, for
//! restic versions whose snapshots do not record it (before 0.17).

use serde::{Deserialize, Serialize};

use crate::backend::restic::process::{Capture, args};
use crate::backend::restic::{Restic, Result};

/// What restoring one snapshot writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RestoreSize {
    /// Bytes of file content (a stream's snapshot: the size of the dump).
    #[serde(rename(deserialize = "total_size"))]
    pub bytes: u64,
    /// Entries restored, directories and symlinks included (the directories above the
    /// backed-up path too); hard-linked names count once.
    #[serde(rename(deserialize = "total_file_count"))]
    pub entries: u64,
}

impl Restic {
    /// What restoring `snapshot` (a full or short snapshot id) would write. One restic run,
    /// which costs about as much as any other: ask for the snapshots people look at, not for
    /// all of them.
    pub async fn restore_size(&self, snapshot: &str) -> Result<RestoreSize> {
        let command = "stats";
        self.preflight(command)?;
        super::restore::check_snapshot_id(snapshot)
            .map_err(|reason| self.invalid(command, reason))?;
        let arguments = args(["stats", "--json", "--mode", "restore-size", snapshot]);
        let finished = self.run(command, &arguments, Capture::Text, None).await?;
        if !finished.status.success() {
            return Err(self.failed(command, &finished));
        }
        let stdout = self.complete_stdout(command, &finished)?;
        serde_json::from_slice(stdout)
            .map_err(|error| self.output_error(command, &error.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::RestoreSize;
    use crate::backend::restic::SnapshotInfo;

    #[test]
    fn sizes_are_read_from_stats_and_from_newer_snapshots() {
        // `restic stats --json --mode restore-size` of 0.14.0.
        let stats = r#"{"total_size":5242880,"total_file_count":3,"snapshots_count":1}"#;
        assert_eq!(
            serde_json::from_str::<RestoreSize>(stats).unwrap(),
            RestoreSize {
                bytes: 5_242_880,
                entries: 3
            }
        );
        // A snapshot as restic 0.17 lists it, with the summary of its backup.
        let snapshot = r#"{"time":"2026-12-01T02:00:00.5+01:00","tree":"t","paths":["/data"],
            "hostname":"node-a","tags":["marina"],"id":"4c2a9f0e11","short_id":"4c2a9f0e",
            "summary":{"backup_start":"2026-12-01T02:00:00+01:00","files_new":2,
            "total_files_processed":7,"total_bytes_processed":1234}}"#;
        let info: SnapshotInfo = serde_json::from_str(snapshot).unwrap();
        let summary = info.summary.unwrap();
        assert_eq!((summary.files, summary.bytes), (7, 1234));
        // As 0.14 lists it: no summary.
        let old = r#"{"time":"2026-12-01T02:00:00Z","paths":["/data"],"id":"4c2a9f0e11"}"#;
        assert_eq!(
            serde_json::from_str::<SnapshotInfo>(old).unwrap().summary,
            None
        );
    }
}
