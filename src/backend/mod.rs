//! Backends: where staged or streamed data goes (SPEC §4).
//!
//! - [`restic`] — the built-in restic backend: one snapshot per target, tagged so that
//!   incremental backups and `forget --prune` groups work.
//!
//! This module holds the small vocabulary the executor uses for every backend, so a job log
//! line reads the same whichever backend shipped the data.

pub mod restic;

use std::fmt;
use std::time::Duration;

/// What one backup of one target did, for the job log and metrics (SPEC §4.1).
///
/// Counts are restic's: a file is *unmodified* when restic could reuse it from the parent
/// snapshot without reading it, which is what stable paths across runs buy.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BackupSummary {
    /// The new snapshot's id as the backend reported it (restic 0.14 reports the short id).
    pub snapshot_id: Option<String>,
    /// Files that were not in the parent snapshot.
    pub files_new: u64,
    /// Files whose metadata changed since the parent snapshot, so they were read again.
    pub files_changed: u64,
    /// Files taken over from the parent snapshot without being read.
    pub files_unmodified: u64,
    /// Directories that were not in the parent snapshot.
    pub dirs_new: u64,
    /// Directories whose listing or metadata changed.
    pub dirs_changed: u64,
    /// Directories taken over unchanged.
    pub dirs_unmodified: u64,
    /// Bytes the repository grew by (new data after deduplication, plus metadata).
    pub bytes_added: u64,
    /// Files looked at, whatever their state.
    pub files_processed: u64,
    /// Bytes of all files looked at (the size of the backed-up data).
    pub bytes_processed: u64,
    /// How long the backend said the backup took.
    pub duration: Duration,
}

impl fmt::Display for BackupSummary {
    /// One line for the job log: `3 new, 1 changed, 120 unmodified files; 1.2 MiB added`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} new, {} changed, {} unmodified files; {} added",
            self.files_new,
            self.files_changed,
            self.files_unmodified,
            format_bytes(self.bytes_added)
        )
    }
}

/// A byte count for people: `0 B`, `512 B`, `1.2 MiB` (binary units, one decimal).
#[must_use]
pub fn format_bytes(bytes: u64) -> String {
    const UNITS: [&str; 6] = ["KiB", "MiB", "GiB", "TiB", "PiB", "EiB"];
    if bytes < 1024 {
        return format!("{bytes} B");
    }
    // Integer arithmetic in tenths avoids float casts and their precision lints.
    let mut unit_size: u128 = 1024;
    let mut unit = 0;
    let bytes = u128::from(bytes);
    loop {
        let tenths = (bytes * 10 + unit_size / 2) / unit_size;
        if tenths < 10 * 1024 || unit + 1 == UNITS.len() {
            return format!("{}.{} {}", tenths / 10, tenths % 10, UNITS[unit]);
        }
        unit_size *= 1024;
        unit += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn byte_counts_read_like_a_person_would_write_them() {
        assert_eq!(format_bytes(0), "0 B");
        assert_eq!(format_bytes(1023), "1023 B");
        assert_eq!(format_bytes(1024), "1.0 KiB");
        assert_eq!(format_bytes(1_258_291), "1.2 MiB");
        assert_eq!(format_bytes(1024 * 1024 - 1), "1.0 MiB");
        assert_eq!(format_bytes(5 * 1024 * 1024 * 1024), "5.0 GiB");
        assert_eq!(format_bytes(u64::MAX), "16.0 EiB");
    }

    #[test]
    fn the_summary_is_one_job_log_line() {
        let summary = BackupSummary {
            files_new: 3,
            files_changed: 1,
            files_unmodified: 120,
            bytes_added: 1_258_291,
            ..BackupSummary::default()
        };
        assert_eq!(
            summary.to_string(),
            "3 new, 1 changed, 120 unmodified files; 1.2 MiB added"
        );
    }
}
