//! The job store: every job, log line and crash-journal entry, durable in SQLite at `dbPath`.
//! This is the only module that imports rusqlite.
//!
//! # Design
//!
//! - **One writer.** A dedicated thread owns the only write connection and takes commands
//!   from a channel. It commits whatever has queued up in one transaction, so log lines are
//!   cheap (DEPENDENCIES.md measured ~900k lines/s this way) and a lone write is committed at
//!   once. The channel is bounded ([`QUEUE_CAPACITY`] commands): when a chatty backend
//!   outpaces the disk, [`Store::append_log`] waits for room instead of dropping the line or
//!   growing memory without limit. [`Store::flush`] waits until everything sent before it is
//!   committed. Writes a caller depends on (creating a job,
//!   changing its status, the journal) return only after their commit.
//! - **Many readers.** Reads run on read-only connections from a small pool, on tokio's
//!   blocking threads; WAL mode lets them run while the writer commits.
//! - **Crash repair.** Anything that must be undone after a crash (a stopped container, a
//!   backend container, a staging directory) is written to the journal before it is done
//!   ([`Store::journal_add`] syncs to disk), and resolved after it was undone. At start-up
//!   the app repairs [`Store::pending_journal`] and calls [`Store::abort_interrupted`].
//! - **Schema versions** live in `PRAGMA user_version`; a file from a newer Marina is
//!   refused rather than misread.
//!
//! # Wiring
//!
//! ```no_run
//! # async fn run() -> Result<(), marina::store::StoreError> {
//! use tracing_subscriber::layer::SubscriberExt as _;
//! use tracing_subscriber::util::SubscriberInitExt as _;
//!
//! let store = marina::store::Store::open("/var/lib/marina/marina.db").await?;
//! // Job spans (`info_span!("job", job_id = id.0, instance = %instance)`) route their events
//! // into that job's log; other INFO+ events become system log lines.
//! tracing_subscriber::registry()
//!     .with(tracing_subscriber::fmt::layer())
//!     .with(marina::store::LogLayer::new(store.clone()))
//!     .init();
//! // … run …
//! store.close().await?; // the layer keeps a handle, so flush explicitly at shutdown
//! # Ok(()) }
//! ```

mod error;
mod layer;
mod schema;
mod sql;
mod types;
mod writer;

#[cfg(test)]
mod tests;

use std::collections::BTreeMap;
use std::fmt;
use std::path::Path;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError, mpsc};
use std::thread::JoinHandle;

use chrono::{DateTime, Utc};
use rusqlite::Connection;
use tokio::sync::oneshot;

pub use error::{Result, StoreError};
pub use layer::LogLayer;
pub use types::{
    JobFilter, JobId, JobRecord, JobStatus, JournalEntry, JournalId, JournalKind, LogId, LogLevel,
    LogLine, LogRecord, NewJob, UnknownWord,
};

use error::Failure;
use writer::{Command, Pending};

use crate::model::{History, InstanceId, Trigger};

/// Commands (log lines, writes, flushes) that may wait for the writer; past it, senders
/// wait. One full batch of the writer, so a full queue is drained by one commit. At a few
/// hundred bytes a line, a full queue holds a few megabytes.
pub const QUEUE_CAPACITY: usize = writer::MAX_BATCH;

/// Idle read connections kept for reuse; more are opened when reads overlap.
const IDLE_READERS: usize = 4;

/// A handle to the job store. Cheap to clone; every clone talks to the same writer thread.
/// The writer stops, after committing everything queued, when the last clone is dropped.
#[derive(Clone)]
pub struct Store {
    /// Shared by all clones; its `Drop` stops the writer.
    inner: Arc<Inner>,
}

struct Inner {
    /// `dbPath`, for error messages and read connections.
    path: Arc<Path>,
    /// The writer's inbox, bounded by [`QUEUE_CAPACITY`]: a full one makes senders wait
    /// (back-pressure) rather than lose lines or grow. Blocking a sender, even a tokio
    /// worker, cannot deadlock: the writer thread never needs the runtime, and its own
    /// events are never sent here ([`writer::on_writer_thread`]).
    commands: mpsc::SyncSender<Command>,
    /// Commands sent and not yet taken by the writer (a lower bound while sends race).
    queued: Arc<AtomicI64>,
    /// Idle read-only connections.
    readers: Arc<Mutex<Vec<Connection>>>,
    /// Log lines that could not be stored after retries (for metrics and the operator).
    lost_lines: Arc<AtomicU64>,
    /// Joined on drop, so that dropping the store means its data is committed.
    writer: Option<JoinHandle<()>>,
}

impl Drop for Inner {
    fn drop(&mut self) {
        // The writer may already be gone; then there is nothing to wait for.
        let _ = self.commands.send(Command::Shutdown);
        if let Some(writer) = self.writer.take() {
            let _ = writer.join();
        }
    }
}

impl fmt::Debug for Store {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Store")
            .field("path", &self.inner.path)
            .finish_non_exhaustive()
    }
}

impl Store {
    /// Opens the store at `path` (`dbPath`), creating the file and its directory if needed
    /// and upgrading the schema. Fails if the file comes from a newer Marina.
    pub async fn open(path: impl AsRef<Path>) -> Result<Self> {
        let path: Arc<Path> = Arc::from(path.as_ref());
        let (commands, inbox) = mpsc::sync_channel(QUEUE_CAPACITY);
        let queued = Arc::new(AtomicI64::new(0));
        let (ready, opened) = oneshot::channel();
        let lost_lines = Arc::new(AtomicU64::new(0));
        let writer = {
            let thread_path = Arc::clone(&path);
            let lost = Arc::clone(&lost_lines);
            let depth = Arc::clone(&queued);
            std::thread::Builder::new()
                .name("marina-store".to_owned())
                .spawn(move || match schema::open_writer(&thread_path) {
                    Ok(conn) => {
                        if ready.send(Ok(())).is_ok() {
                            writer::run(conn, &inbox, &thread_path, &lost, &depth);
                        }
                    }
                    Err(e) => {
                        let _ = ready.send(Err(e));
                    }
                })
                .map_err(|source| StoreError::Thread {
                    path: path.to_path_buf(),
                    source,
                })?
        };
        let inner = Inner {
            path: Arc::clone(&path),
            commands,
            queued,
            readers: Arc::new(Mutex::new(Vec::new())),
            lost_lines,
            writer: Some(writer),
        };
        opened.await.map_err(|_| StoreError::WriterGone {
            path: path.to_path_buf(),
        })??;
        let store = Self {
            inner: Arc::new(inner),
        };
        // Open one reader now, so a permission problem shows at start-up, not on the first
        // API request.
        store
            .read("open a read connection".to_owned(), |_| Ok(()))
            .await?;
        Ok(store)
    }

    /// The database file.
    #[must_use]
    pub fn path(&self) -> &Path {
        &self.inner.path
    }

    /// Log lines dropped because they could not be stored even after retries (a full or
    /// failing disk). Zero in a healthy system.
    #[must_use]
    pub fn lost_log_lines(&self) -> u64 {
        self.inner.lost_lines.load(Ordering::Relaxed)
    }

    /// Commands waiting for the writer right now; never more than [`QUEUE_CAPACITY`].
    #[must_use]
    pub fn queued(&self) -> usize {
        usize::try_from(self.inner.queued.load(Ordering::Relaxed)).unwrap_or(0)
    }

    // ----- writes -----

    /// Stores a log line, batched with others; the line is committed within milliseconds,
    /// and [`flush`](Self::flush) waits for it. Returns at once unless [`QUEUE_CAPACITY`]
    /// commands already wait; then it waits for room (back-pressure), so no line is lost.
    pub fn append_log(&self, line: LogLine) {
        if self.send(Command::Log(line)).is_err() {
            self.inner.lost_lines.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Waits until everything sent so far (log lines included) is committed.
    pub async fn flush(&self) -> Result<()> {
        let (reply, done) = oneshot::channel();
        self.send(Command::Flush(reply))?;
        done.await.map_err(|_| self.writer_gone())
    }

    /// Flushes, then drops this handle; when it is the last one, the writer thread stops.
    /// Prefer it to a plain drop in async code: the drop then has nothing left to wait for.
    pub async fn close(self) -> Result<()> {
        self.flush().await?;
        let path = self.inner.path.to_path_buf();
        tokio::task::spawn_blocking(move || drop(self))
            .await
            .map_err(|source| StoreError::BlockingTask { path, source })
    }

    /// Records a new job of `instance` in status `scheduled`, numbering it after the
    /// instance's previous job.
    pub async fn create_job(
        &self,
        instance: &InstanceId,
        node: &str,
        trigger: Trigger,
        now: DateTime<Utc>,
    ) -> Result<JobRecord> {
        self.record_job(instance, node, NewJob::Backup(trigger), now)
            .await
    }

    /// Records a new job of any kind in status `scheduled`, numbered after the instance's
    /// previous job of whatever kind.
    pub async fn record_job(
        &self,
        instance: &InstanceId,
        node: &str,
        job: NewJob,
        now: DateTime<Utc>,
    ) -> Result<JobRecord> {
        let (instance, node) = (instance.clone(), node.to_owned());
        self.write(
            format!("create a {} job for instance {instance}", job.kind()),
            false,
            move |conn| sql::create_job(conn, &instance, &node, &job, now),
        )
        .await
    }

    /// Deletes a job that never started (still `scheduled`), such as the record of a run-now
    /// request the reconciler refused. A job that has started is refused
    /// ([`StoreError::Started`]): job history is never deleted.
    pub async fn delete_job(&self, id: JobId) -> Result<()> {
        self.write(format!("delete job {id}"), false, move |conn| {
            sql::delete_job(conn, id)
        })
        .await
    }

    /// Moves a job to `status`: `in_progress` sets `started_at` (once), a terminal status
    /// sets `completed_at`. `message` replaces the summary when given. Refuses transitions
    /// the lifecycle forbids ([`JobStatus::can_become`]). Returns the updated job.
    pub async fn set_job_status(
        &self,
        id: JobId,
        status: JobStatus,
        message: Option<String>,
        now: DateTime<Utc>,
    ) -> Result<JobRecord> {
        self.write(
            format!("set the status of job {id} to {status}"),
            false,
            move |conn| sql::set_job_status(conn, id, status, message.as_deref(), now),
        )
        .await
    }

    /// Records how many targets a job has and how many succeeded so far.
    pub async fn set_job_targets(
        &self,
        id: JobId,
        total: u32,
        successful: u32,
        now: DateTime<Utc>,
    ) -> Result<()> {
        self.write(
            format!("set the target counts of job {id}"),
            false,
            move |conn| sql::set_job_targets(conn, id, total, successful, now),
        )
        .await
    }

    /// Records undo-work before the action it guards. It is synced to disk before this
    /// returns, so act only after it returned `Ok`.
    pub async fn journal_add(
        &self,
        job_id: JobId,
        kind: JournalKind,
        subject: &str,
        detail: &str,
        now: DateTime<Utc>,
    ) -> Result<JournalId> {
        let (subject, detail) = (subject.to_owned(), detail.to_owned());
        self.write(
            format!("journal {kind} {subject} for job {job_id}"),
            true,
            move |conn| sql::journal_add(conn, job_id, kind, &subject, &detail, now),
        )
        .await
    }

    /// Marks a journal entry as undone. Resolving twice keeps the first time.
    pub async fn journal_resolve(&self, id: JournalId, now: DateTime<Utc>) -> Result<()> {
        self.write(format!("resolve journal entry {id}"), false, move |conn| {
            sql::journal_resolve(conn, id, now)
        })
        .await
    }

    /// Marks every job still `scheduled` or `in_progress` as `aborted` (completed `now`) and
    /// returns them. Call at start-up, before any job runs: such jobs were cut off by a crash.
    pub async fn abort_interrupted(&self, now: DateTime<Utc>) -> Result<Vec<JobRecord>> {
        self.write("abort interrupted jobs".to_owned(), false, move |conn| {
            sql::abort_interrupted(conn, now)
        })
        .await
    }

    /// Deletes log lines older than `older_than` (`logRetention`); job rows stay. Returns
    /// how many lines were deleted.
    pub async fn prune_logs(&self, older_than: DateTime<Utc>) -> Result<u64> {
        self.write(
            format!("delete log lines older than {older_than}"),
            false,
            move |conn| sql::prune_logs(conn, older_than),
        )
        .await
    }

    // ----- reads -----

    /// One job.
    pub async fn job(&self, id: JobId) -> Result<Option<JobRecord>> {
        self.read(format!("read job {id}"), move |conn| sql::job(conn, id))
            .await
    }

    /// Jobs matching `filter`, newest first.
    pub async fn jobs(&self, filter: JobFilter) -> Result<Vec<JobRecord>> {
        self.read("list jobs".to_owned(), move |conn| sql::jobs(conn, &filter))
            .await
    }

    /// The newest `limit` jobs of `instance`, newest first (`GET /api/status/{instanceId}`).
    pub async fn instance_jobs(&self, instance: &InstanceId, limit: u32) -> Result<Vec<JobRecord>> {
        let instance = instance.clone();
        self.read(
            format!("list the jobs of instance {instance}"),
            move |conn| sql::instance_jobs(conn, &instance, limit),
        )
        .await
    }

    /// The newest backup job of `instance` (restores are left out: they say nothing about
    /// how the instance's backups go).
    pub async fn latest_backup(&self, instance: &InstanceId) -> Result<Option<JobRecord>> {
        let instance = instance.clone();
        self.read(
            format!("read the latest backup of instance {instance}"),
            move |conn| sql::latest_backup(conn, &instance),
        )
        .await
    }

    /// A job's log, oldest first: the last `limit` lines, or all of them.
    pub async fn job_logs(&self, job_id: JobId, limit: Option<u32>) -> Result<Vec<LogRecord>> {
        self.read(format!("read the log of job {job_id}"), move |conn| {
            sql::job_logs(conn, job_id, limit)
        })
        .await
    }

    /// At most `limit` lines of job `job_id` that came after line `after`, oldest first.
    pub async fn job_logs_after(
        &self,
        job_id: JobId,
        after: LogId,
        limit: u32,
    ) -> Result<Vec<LogRecord>> {
        self.read(format!("read the log of job {job_id}"), move |conn| {
            sql::job_logs_after(conn, job_id, after, limit)
        })
        .await
    }

    /// The newest `limit` log lines of `instance`'s jobs, returned oldest first.
    pub async fn instance_logs(&self, instance: &InstanceId, limit: u32) -> Result<Vec<LogRecord>> {
        let instance = instance.clone();
        self.read(
            format!("read the job logs of instance {instance}"),
            move |conn| sql::instance_logs(conn, &instance, limit),
        )
        .await
    }

    /// The newest `limit` system log lines (lines of no job) at `min_level` or more severe,
    /// returned oldest first.
    pub async fn system_logs(
        &self,
        limit: u32,
        min_level: Option<LogLevel>,
    ) -> Result<Vec<LogRecord>> {
        self.read("read the system log".to_owned(), move |conn| {
            sql::system_logs(conn, limit, min_level)
        })
        .await
    }

    /// Journal entries not yet resolved, oldest first: the undo-work a crash left behind.
    pub async fn pending_journal(&self) -> Result<Vec<JournalEntry>> {
        self.read("read the pending journal".to_owned(), sql::pending_journal)
            .await
    }

    /// Per instance: the last successful job's end and the last finished job's end and
    /// outcome. Seeds the reconciler at start-up.
    pub async fn history(&self) -> Result<BTreeMap<InstanceId, History>> {
        self.read("read the job history".to_owned(), sql::history)
            .await
    }

    // ----- plumbing -----

    fn writer_gone(&self) -> StoreError {
        StoreError::WriterGone {
            path: self.inner.path.to_path_buf(),
        }
    }

    /// Queues `command`, waiting while the queue is full.
    fn send(&self, command: Command) -> Result<()> {
        self.inner
            .commands
            .send(command)
            .map_err(|_| self.writer_gone())?;
        // Counted after the send (the writer subtracts after its receive), so the count
        // never overstates the queue.
        self.inner.queued.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }

    /// Runs `op` on the writer thread inside its batch transaction and waits for the commit.
    async fn write<T, F>(&self, action: String, durable: bool, op: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> std::result::Result<T, Failure> + Send + 'static,
    {
        let (reply, answer) = oneshot::channel();
        let write = Box::new(Pending {
            action,
            path: self.inner.path.to_path_buf(),
            reply,
            op,
        });
        self.send(Command::Write { write, durable })?;
        answer.await.map_err(|_| self.writer_gone())?
    }

    /// Runs `op` on a pooled read-only connection on a blocking thread.
    async fn read<T, F>(&self, action: String, op: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> std::result::Result<T, Failure> + Send + 'static,
    {
        let path = Arc::clone(&self.inner.path);
        let readers = Arc::clone(&self.inner.readers);
        let task = tokio::task::spawn_blocking(move || {
            let idle = readers.lock().unwrap_or_else(PoisonError::into_inner).pop();
            let conn = match idle {
                Some(conn) => conn,
                None => schema::open_reader(&path)?,
            };
            let result = op(&conn).map_err(|e| e.into_store_error(action, path.to_path_buf()));
            let mut idle = readers.lock().unwrap_or_else(PoisonError::into_inner);
            if idle.len() < IDLE_READERS {
                idle.push(conn);
            }
            result
        });
        task.await.map_err(|source| StoreError::BlockingTask {
            path: self.inner.path.to_path_buf(),
            source,
        })?
    }
}
