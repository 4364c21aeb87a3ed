//! The one writer: a dedicated thread owning the write connection, fed by a channel.
//!
//! It takes whatever has queued up (up to [`MAX_BATCH`] commands) and commits it in one
//! transaction, so log lines cost a fraction of a commit each, while a lone write waits for
//! no timer. Each write runs in its own savepoint, so one refused write (an unknown job, a
//! forbidden transition) does not undo its neighbours. Replies are sent only after the
//! commit, so a caller that got `Ok` knows the change is in the file.

use std::cell::Cell;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, TryRecvError};
use std::time::Duration;

use rusqlite::Connection;
use tokio::sync::oneshot;

use super::error::{Failure, Result, StoreError};
use super::sql;
use super::types::LogLine;

/// The most commands committed in one transaction: large enough to amortise the commit,
/// small enough that a flush or a journal write never waits behind a huge transaction.
pub(crate) const MAX_BATCH: usize = 8192;

thread_local! {
    /// Set on the writer thread. Its own events must never be queued for itself: with the
    /// queue full it would wait for room only it can make.
    static ON_WRITER: Cell<bool> = const { Cell::new(false) };
}

/// Whether the calling thread is the store's writer.
pub(crate) fn on_writer_thread() -> bool {
    ON_WRITER.with(Cell::get)
}

/// Pauses before retrying log lines whose batch failed to commit (disk full, I/O error).
const RETRY_PAUSES: [Duration; 3] = [
    Duration::from_millis(50),
    Duration::from_millis(500),
    Duration::from_secs(2),
];

/// A write whose caller waits for the result.
pub(crate) trait Write: Send {
    /// Runs inside the batch transaction. Returns whether it succeeded (a failed one is
    /// rolled back to its savepoint) and how to deliver its result once the commit is known.
    fn run(self: Box<Self>, conn: &Connection) -> (bool, Deliver);

    /// Answers without running, because the batch failed before reaching it.
    fn fail(self: Box<Self>, error: Arc<rusqlite::Error>);
}

/// Sends a write's result to its caller, given the outcome of the batch commit.
pub(crate) type Deliver = Box<dyn FnOnce(std::result::Result<(), Arc<rusqlite::Error>>) + Send>;

/// What the writer thread is asked to do.
pub(crate) enum Command {
    /// Store a log line; nobody waits for it.
    Log(LogLine),
    /// A write whose caller waits for the result.
    Write {
        /// The work.
        write: Box<dyn Write>,
        /// Sync the commit to disk (`synchronous=FULL`), for journal entries that guard
        /// actions a power loss must not forget.
        durable: bool,
    },
    /// Answer once everything sent before has been committed.
    Flush(oneshot::Sender<()>),
    /// The last handle is gone: commit what is queued and stop.
    Shutdown,
}

/// A write `op` that answers on `reply`, adding `action` and `path` to SQLite errors.
pub(crate) struct Pending<T, F> {
    /// What is being done, for error messages ("set the status of job 42").
    pub(crate) action: String,
    /// The database, for error messages.
    pub(crate) path: PathBuf,
    /// Where the caller waits.
    pub(crate) reply: oneshot::Sender<Result<T>>,
    /// The work.
    pub(crate) op: F,
}

impl<T, F> Write for Pending<T, F>
where
    T: Send + 'static,
    F: FnOnce(&Connection) -> std::result::Result<T, Failure> + Send + 'static,
{
    fn run(self: Box<Self>, conn: &Connection) -> (bool, Deliver) {
        let Self {
            action,
            path,
            reply,
            op,
        } = *self;
        let result = op(conn);
        let ok = result.is_ok();
        let deliver: Deliver = Box::new(move |commit| {
            let outcome = match (commit, result) {
                (Ok(()), Ok(value)) => Ok(value),
                (_, Err(failure)) => Err(failure.into_store_error(action, path)),
                (Err(source), Ok(_)) => Err(StoreError::Query {
                    action,
                    path,
                    source,
                }),
            };
            // The caller may have stopped waiting (its task was cancelled); the write stands.
            let _ = reply.send(outcome);
        });
        (ok, deliver)
    }

    fn fail(self: Box<Self>, source: Arc<rusqlite::Error>) {
        let _ = self.reply.send(Err(StoreError::Query {
            action: self.action,
            path: self.path,
            source,
        }));
    }
}

/// Runs the writer until [`Command::Shutdown`] or until every sender is gone.
pub(crate) fn run(
    mut conn: Connection,
    commands: &Receiver<Command>,
    path: &Path,
    lost: &AtomicU64,
    queued: &AtomicI64,
) {
    ON_WRITER.with(|on| on.set(true));
    let mut stop = false;
    while !stop {
        let Ok(first) = commands.recv() else { break };
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH {
            match commands.try_recv() {
                Ok(command) => batch.push(command),
                Err(TryRecvError::Empty | TryRecvError::Disconnected) => break,
            }
        }
        queued.fetch_sub(
            i64::try_from(batch.len()).unwrap_or(i64::MAX),
            Ordering::Relaxed,
        );
        stop = commit_batch(&mut conn, batch, path, lost);
    }
    // Fold the WAL back into the main file so a copied database file is complete.
    if let Err(e) = conn.pragma_update(None, "wal_checkpoint", "TRUNCATE") {
        tracing::debug!(path = %path.display(), error = %e, "Could not checkpoint the job store on close.");
    }
}

/// What a batch collected besides the SQL it ran.
#[derive(Default)]
struct Outcome {
    /// Lines inserted (or to retry, when the batch failed).
    logs: Vec<LogLine>,
    /// Writes that ran; they learn the commit's result.
    delivers: Vec<Deliver>,
    /// Writes a failed batch never reached.
    unrun: Vec<Box<dyn Write>>,
    /// Flushes to answer after the commit.
    flushes: Vec<oneshot::Sender<()>>,
    /// A shutdown was asked for.
    stop: bool,
}

impl Outcome {
    /// Files a command the transaction did not run.
    fn skip(&mut self, command: Command) {
        match command {
            Command::Log(line) => self.logs.push(line),
            Command::Write { write, .. } => self.unrun.push(write),
            Command::Flush(reply) => self.flushes.push(reply),
            Command::Shutdown => self.stop = true,
        }
    }
}

/// Commits one batch and answers its callers; returns whether the writer should stop.
fn commit_batch(conn: &mut Connection, batch: Vec<Command>, path: &Path, lost: &AtomicU64) -> bool {
    let durable = batch
        .iter()
        .any(|c| matches!(c, Command::Write { durable: true, .. }));
    if durable {
        set_synchronous(conn, "FULL", path);
    }
    let mut commands = batch.into_iter();
    let mut out = Outcome::default();
    let commit = (|| -> rusqlite::Result<()> {
        let mut tx = conn.transaction()?;
        for command in commands.by_ref() {
            match command {
                Command::Log(line) => {
                    insert_log_or_detach(&tx, &line, path);
                    out.logs.push(line);
                }
                Command::Write { write, .. } => {
                    let savepoint = match tx.savepoint() {
                        Ok(savepoint) => savepoint,
                        Err(e) => {
                            out.unrun.push(write);
                            return Err(e);
                        }
                    };
                    let (ok, deliver) = write.run(&savepoint);
                    out.delivers.push(deliver);
                    if ok {
                        savepoint.commit()?;
                    }
                    // Dropping an uncommitted savepoint rolls it back.
                }
                Command::Shutdown => {
                    // Nothing can follow: the last handle sent it while being dropped.
                    out.stop = true;
                    break;
                }
                flush @ Command::Flush(_) => out.skip(flush),
            }
        }
        tx.commit()
    })();
    if durable {
        set_synchronous(conn, "NORMAL", path);
    }
    let commit = match commit {
        Ok(()) => Ok(()),
        Err(e) => {
            // Whatever the failed transaction did not reach is answered or retried too.
            for command in commands {
                out.skip(command);
            }
            tracing::error!(
                path = %path.display(),
                error = %e,
                lines = out.logs.len(),
                writes = out.delivers.len() + out.unrun.len(),
                "Could not commit to the job store; the writes failed and the log lines will be retried."
            );
            retry_logs(conn, &out.logs, path, lost);
            Err(Arc::new(e))
        }
    };
    for deliver in out.delivers {
        deliver(commit.clone());
    }
    if let Err(e) = &commit {
        for write in out.unrun {
            write.fail(Arc::clone(e));
        }
    }
    for reply in out.flushes {
        let _ = reply.send(());
    }
    out.stop
}

/// Inserts a line; a line naming a job that does not exist (a caller's bug) is kept as a
/// system line rather than lost.
fn insert_log_or_detach(conn: &Connection, line: &LogLine, path: &Path) {
    if let Err(e) = sql::insert_log(conn, line) {
        let Some(job) = line.job_id else {
            tracing::error!(path = %path.display(), error = %e, "Could not store a log line.");
            return;
        };
        let detached = LogLine {
            message: format!("(job {job} is not in the job store) {}", line.message),
            job_id: None,
            ..line.clone()
        };
        if let Err(e) = sql::insert_log(conn, &detached) {
            tracing::error!(path = %path.display(), error = %e, "Could not store a log line.");
        }
    }
}

/// Retries the log lines of a failed batch in fresh transactions; lines still failing after
/// the last pause are counted as lost, never silently dropped.
fn retry_logs(conn: &mut Connection, logs: &[LogLine], path: &Path, lost: &AtomicU64) {
    if logs.is_empty() {
        return;
    }
    for pause in RETRY_PAUSES {
        std::thread::sleep(pause);
        let attempt = (|| -> rusqlite::Result<()> {
            let tx = conn.transaction()?;
            for line in logs {
                insert_log_or_detach(&tx, line, path);
            }
            tx.commit()
        })();
        match attempt {
            Ok(()) => return,
            Err(e) => tracing::warn!(
                path = %path.display(),
                error = %e,
                "Retrying log lines for the job store failed."
            ),
        }
    }
    let count = u64::try_from(logs.len()).unwrap_or(u64::MAX);
    lost.fetch_add(count, Ordering::Relaxed);
    tracing::error!(
        path = %path.display(),
        lines = count,
        "Log lines could not be stored in the job store and were dropped; check free disk space."
    );
}

fn set_synchronous(conn: &Connection, mode: &str, path: &Path) {
    if let Err(e) = conn.pragma_update(None, "synchronous", mode) {
        tracing::warn!(path = %path.display(), mode, error = %e, "Could not change the job store's sync mode.");
    }
}
