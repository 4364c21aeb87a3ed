//! What can go wrong with the job store, each with what was being done and where.

use std::path::PathBuf;
use std::sync::Arc;

use super::types::{JobId, JobStatus, JournalId};

/// A job store failure. Every variant names the database file (or the job) so the operator
/// can act without reading code.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The directory for `dbPath` could not be created.
    #[error(
        "cannot create the directory {dir} for the job store: {source}; check dbPath and permissions"
    )]
    CreateDir {
        /// The directory.
        dir: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The database file could not be opened or configured.
    #[error("cannot open the job store at {path}: {source}; check dbPath and permissions")]
    Open {
        /// `dbPath`.
        path: PathBuf,
        /// Why.
        #[source]
        source: rusqlite::Error,
    },
    /// The file was written by a newer Marina; reading it could misinterpret its tables.
    #[error(
        "the job store at {path} has schema version {found}, but this Marina knows versions up to {supported}: it was written by a newer Marina; upgrade Marina or point dbPath at another file"
    )]
    TooNew {
        /// `dbPath`.
        path: PathBuf,
        /// The file's `user_version`.
        found: i64,
        /// The newest version this build knows.
        supported: i64,
    },
    /// A schema migration failed; the file stays at the previous version.
    #[error("cannot upgrade the job store at {path} to schema version {version}: {source}")]
    Migrate {
        /// `dbPath`.
        path: PathBuf,
        /// The version being applied.
        version: i64,
        /// Why.
        #[source]
        source: rusqlite::Error,
    },
    /// A read or write failed.
    #[error("cannot {action} in the job store at {path}: {source}")]
    Query {
        /// What was being done, e.g. "set the status of job 42".
        action: String,
        /// `dbPath`.
        path: PathBuf,
        /// Why. Shared because one failed commit fails every write of its batch.
        #[source]
        source: Arc<rusqlite::Error>,
    },
    /// The job does not exist.
    #[error("job {0} does not exist in the job store")]
    NoSuchJob(JobId),
    /// Only a job that never started may be deleted; this one has.
    #[error("job {job} is {status}, not scheduled: a job that has started is never deleted")]
    Started {
        /// The job.
        job: JobId,
        /// Its recorded status.
        status: JobStatus,
    },
    /// The journal entry does not exist.
    #[error("journal entry {0} does not exist in the job store")]
    NoSuchJournalEntry(JournalId),
    /// A status change that the job lifecycle forbids (e.g. leaving a terminal status).
    #[error("job {job} cannot go from status {from} to {to}")]
    Transition {
        /// The job.
        job: JobId,
        /// Its recorded status.
        from: JobStatus,
        /// The requested status.
        to: JobStatus,
    },
    /// The writer thread could not be started.
    #[error("cannot start the job store's writer thread for {path}: {source}")]
    Thread {
        /// `dbPath`.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The writer thread is gone (it failed to start or the store was closed); nothing more
    /// can be written.
    #[error("the job store's writer for {path} has stopped; restart Marina")]
    WriterGone {
        /// `dbPath`.
        path: PathBuf,
    },
    /// A blocking task (a read, or closing the store) panicked or was cancelled by a
    /// runtime shutdown.
    #[error("a task on the job store at {path} did not finish: {source}")]
    BlockingTask {
        /// `dbPath`.
        path: PathBuf,
        /// Why.
        #[source]
        source: tokio::task::JoinError,
    },
}

/// The store's result type.
pub type Result<T, E = StoreError> = std::result::Result<T, E>;

/// The inside of a store operation: either SQLite failed (and the caller adds what it was
/// doing and where) or the operation itself refused with a finished [`StoreError`].
#[derive(Debug)]
pub(crate) enum Failure {
    Sql(rusqlite::Error),
    Store(StoreError),
}

impl From<rusqlite::Error> for Failure {
    fn from(e: rusqlite::Error) -> Self {
        Self::Sql(e)
    }
}

impl From<StoreError> for Failure {
    fn from(e: StoreError) -> Self {
        Self::Store(e)
    }
}

impl Failure {
    /// Completes the error with the action and the database path.
    pub(crate) fn into_store_error(self, action: String, path: PathBuf) -> StoreError {
        match self {
            Self::Sql(source) => StoreError::Query {
                action,
                path,
                source: Arc::new(source),
            },
            Self::Store(e) => e,
        }
    }
}
