//! The repository operations, one file each, as methods of [`Restic`](super::Restic). Each
//! checks its request, builds restic's arguments, runs restic through `process` and reads
//! what it printed:
//!
//! - `init` — [`Restic::ensure_repository`](super::Restic::ensure_repository): `cat config`,
//!   and `init` only for a repository restic reports as missing;
//! - `open` — [`Restic::open`](super::Restic::open) in one run, and telling a command that
//!   could not open its repository from one that failed at its own work;
//! - `unlock` — removing stale locks (the run `open` reads its answer from);
//! - `backup` — paths or a stream as one snapshot of a target;
//! - `forget` — retention (`forget --prune`) and its report;
//! - `snapshots` — listing, and the tag filter retention shares;
//! - `restore` — a snapshot's directory back into an empty directory;
//! - `dump` — one file of a snapshot as a stream for a consumer (a dump into its database);
//! - `stats` — how much a snapshot restores, where the snapshot does not record it.

mod backup;
mod dump;
mod forget;
mod init;
mod open;
mod restore;
mod snapshots;
mod stats;
mod unlock;

pub use self::backup::BackupOptions;
pub use self::dump::{DumpIntoError, DumpReader};
pub use self::forget::ForgetSummary;
pub use self::init::RepositoryStatus;
#[cfg(test)]
pub(super) use self::init::{Probe, classify_probe};
pub(super) use self::open::OpenFailure;
pub use self::snapshots::{SnapshotInfo, SnapshotSummary};
pub use self::stats::RestoreSize;
