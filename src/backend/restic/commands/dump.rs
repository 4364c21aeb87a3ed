//! `restic dump`: one file of a snapshot as a stream — a database dump on its way back into
//! its database — handed to a consumer while restic reads it from the repository.
//!
//! The file is never held in memory: restic's stdout goes through a small bounded channel
//! ([`DumpReader`]) to the consumer, at the consumer's pace. The end of the stream is only
//! reported once restic has exited successfully, so a consumer never mistakes a dump that
//! restic failed to read to its end for a whole one: it gets a read error instead.
//!
//! A consumer that fails, or stops before the end, gets restic stopped with `SIGINT` while
//! its stdout is still open (see `process::StreamingChild`): closing the pipe first would kill
//! restic with `SIGPIPE` and leave its lock in the repository.

use std::fmt;
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::process::ExitStatus;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, ReadBuf};
use tokio::process::ChildStdout;
use tokio::sync::{mpsc, oneshot};
use tracing::{debug, info};

use super::restore::check_snapshot_id;
use crate::backend::restic::process::{
    Finished, STDERR_TAIL, Stdout, StreamingChild, Tail, args, read_tail,
};
use crate::backend::restic::{Restic, ResticError};
use crate::model::InstanceId;

/// Bytes read from restic's stdout at a time.
const CHUNK: usize = 64 * 1024;
/// Chunks waiting for the consumer: with [`CHUNK`], at most half a megabyte of a dump of any
/// size is in memory.
const QUEUED_CHUNKS: usize = 8;
/// How long restic's stderr may stay open after restic exited (a helper it started, such as
/// `rclone`, could hold it) before its message is taken as it is.
const STDERR_AFTER_EXIT: Duration = Duration::from_secs(5);

/// Why [`Restic::dump_into`] failed.
#[derive(Debug, thiserror::Error)]
pub enum DumpIntoError {
    /// restic could not run or failed: the snapshot or the file does not exist, the password
    /// is wrong, the repository is locked or unreachable, `resticTimeout` passed. When
    /// restic failed, this is the error even if the consumer failed too: the consumer only
    /// saw the consequence.
    #[error(transparent)]
    Restic(#[from] ResticError),
    /// The consumer failed; restic was stopped.
    #[error(
        "{file} of snapshot {snapshot} (instance {instance}) could not be restored after {bytes} bytes: {message}"
    )]
    Consumer {
        /// The instance.
        instance: InstanceId,
        /// The snapshot.
        snapshot: String,
        /// The file in the snapshot.
        file: String,
        /// Bytes the consumer had read.
        bytes: u64,
        /// The consumer's error, scrubbed of the repository's secrets.
        message: String,
    },
    /// The consumer reported success without reading the stream to its end; restic was
    /// stopped. Whatever the consumer did holds only part of the file.
    #[error(
        "{file} of snapshot {snapshot} (instance {instance}) was read only in part ({bytes} bytes) before its consumer stopped; the restored data is incomplete"
    )]
    Unfinished {
        /// The instance.
        instance: InstanceId,
        /// The snapshot.
        snapshot: String,
        /// The file in the snapshot.
        file: String,
        /// Bytes the consumer had read.
        bytes: u64,
    },
}

impl Restic {
    /// Streams the file `file` of `snapshot` (`restic dump SNAPSHOT /FILE`) to `consume`,
    /// which gets it as a [`DumpReader`] and returns what it made of it.
    ///
    /// `file` is the path in the snapshot; the leading `/` may be left out, so the name a
    /// stream was backed up under with [`Restic::backup_stdin`] (`app-db/dump.sql`) works as
    /// it is. A directory comes out as a tar archive (restic's behaviour), so name a file.
    ///
    /// The snapshot id is checked before restic runs, as for [`Restic::restore_into`]. The
    /// whole call — restic and the consumer — is bounded by `resticTimeout`. The reader ends
    /// only after restic exited successfully; a restic failure reaches the consumer as a read
    /// error, and this call returns restic's error ([`DumpIntoError::Restic`]), scrubbed of
    /// secrets. When the consumer fails or returns before the end, restic is stopped (its lock
    /// removed, see the module docs) and [`DumpIntoError::Consumer`] or
    /// [`DumpIntoError::Unfinished`] is returned. Dropping the returned future stops restic the
    /// same way.
    pub async fn dump_into<T, F, Fut>(
        &self,
        snapshot: &str,
        file: &str,
        consume: F,
    ) -> Result<T, DumpIntoError>
    where
        F: FnOnce(DumpReader) -> Fut,
        Fut: Future<Output = Result<T, String>>,
    {
        let command = "dump";
        self.preflight(command)?;
        check_snapshot_id(snapshot).map_err(|reason| self.invalid(command, reason))?;
        let path = snapshot_path(file).map_err(|reason| self.invalid(command, reason))?;
        let arguments = args(["dump", snapshot, &path]);
        let mut child = self.spawn_streaming(command, &arguments)?;
        let (Some(stdout), Some(stderr)) = (child.stdout.take(), child.stderr.take()) else {
            return Err(self
                .io_error(
                    command,
                    io::Error::other("restic's output pipes are missing"),
                )
                .into());
        };
        let stderr = tokio::spawn(read_tail(stderr, STDERR_TAIL));
        let (chunks, queue) = mpsc::channel(QUEUED_CHUNKS);
        let (verdict, verdict_slot) = oneshot::channel();
        tokio::spawn(pump(stdout, chunks, verdict_slot));
        let progress = Arc::new(Progress::default());
        let reader = DumpReader {
            queue,
            chunk: Vec::new(),
            offset: 0,
            progress: Arc::clone(&progress),
            ended: false,
        };
        let read = ReadBack {
            restic: self,
            snapshot,
            file: &path,
        };
        let work = read.run(&mut child, stderr, verdict, consume(reader), &progress);
        let Ok(outcome) = tokio::time::timeout(self.settings.timeout, work).await else {
            child.stop().await;
            return Err(ResticError::Timeout {
                instance: self.settings.instance.clone(),
                command,
                timeout: self.settings.timeout,
            }
            .into());
        };
        outcome
    }
}

/// One `dump_into` call: what it reads, for its messages.
struct ReadBack<'a> {
    restic: &'a Restic,
    snapshot: &'a str,
    file: &'a str,
}

impl ReadBack<'_> {
    /// Runs the consumer while restic runs; tells the pump how restic ended once it exits;
    /// stops restic if the consumer is done first; and decides which outcome stands.
    async fn run<T, Fut>(
        &self,
        child: &mut StreamingChild,
        stderr: tokio::task::JoinHandle<io::Result<Tail>>,
        verdict: oneshot::Sender<io::Result<()>>,
        consumer: Fut,
        progress: &Progress,
    ) -> Result<T, DumpIntoError>
    where
        Fut: Future<Output = Result<T, String>>,
    {
        let command = "dump";
        let mut verdict = Some(verdict);
        let mut stderr = Some(stderr);
        let mut failure: Option<ResticError> = None;
        tokio::pin!(consumer);
        let answer = loop {
            tokio::select! {
                answer = &mut consumer => break answer,
                status = child.wait(), if child.exit_status().is_none() => {
                    let status = status.map_err(|e| self.restic.io_error(command, e))?;
                    let tail = match stderr.take() {
                        Some(task) => stderr_tail(task).await,
                        None => Tail::default(),
                    };
                    let outcome = if status.success() {
                        Ok(())
                    } else {
                        let error = self.failed(status, tail);
                        let message = error.to_string();
                        failure = Some(error);
                        Err(io::Error::other(message))
                    };
                    if let Some(verdict) = verdict.take() {
                        // The pump is gone only if the reader is: then nobody reads the verdict.
                        let _ = verdict.send(outcome);
                    }
                }
            }
        };
        let bytes = progress.bytes.load(Ordering::SeqCst);
        if child.exit_status().is_none() {
            // The consumer is done before restic is: it failed or stopped early.
            info!(instance = %self.restic.settings.instance, snapshot = self.snapshot,
                "The dump's consumer ended before restic did; stopping restic.");
            let status = child.stop().await;
            debug!(status = ?status, "restic stopped.");
        }
        if let Some(failure) = failure {
            return Err(failure.into());
        }
        match answer {
            Err(message) => Err(DumpIntoError::Consumer {
                instance: self.restic.settings.instance.clone(),
                snapshot: self.snapshot.to_owned(),
                file: self.file.to_owned(),
                bytes,
                message: self.restic.scrubber.scrub(&message),
            }),
            Ok(_) if !progress.reached_end.load(Ordering::SeqCst) => {
                Err(DumpIntoError::Unfinished {
                    instance: self.restic.settings.instance.clone(),
                    snapshot: self.snapshot.to_owned(),
                    file: self.file.to_owned(),
                    bytes,
                })
            }
            Ok(value) => Ok(value),
        }
    }

    /// The scrubbed error for a restic that exited unsuccessfully.
    fn failed(&self, status: ExitStatus, stderr: Tail) -> ResticError {
        let finished = Finished {
            status,
            stdout: Stdout::Text(Tail::default()),
            stderr,
            fed: None,
        };
        self.restic.failed("dump", &finished)
    }
}

/// restic's stderr tail, once it ended (or [`STDERR_AFTER_EXIT`] after restic exited).
async fn stderr_tail(task: tokio::task::JoinHandle<io::Result<Tail>>) -> Tail {
    match tokio::time::timeout(STDERR_AFTER_EXIT, task).await {
        Ok(Ok(Ok(tail))) => tail,
        _ => Tail::default(),
    }
}

/// Copies restic's stdout into the channel until it ends, then passes on restic's verdict:
/// the end of the stream when restic succeeded, a read error when it failed. When the reader
/// is gone, the rest of stdout is drained, never closed: restic must not die of `SIGPIPE`.
async fn pump(
    mut stdout: ChildStdout,
    chunks: mpsc::Sender<io::Result<Vec<u8>>>,
    verdict: oneshot::Receiver<io::Result<()>>,
) {
    let mut reader_gone = false;
    loop {
        let mut chunk = vec![0_u8; CHUNK];
        let count = match stdout.read(&mut chunk).await {
            Ok(0) => break,
            Ok(count) => count,
            Err(error) if error.kind() == io::ErrorKind::Interrupted => continue,
            Err(error) => {
                // A pipe that cannot be read is beyond repair; restic is stopped by the
                // caller once the consumer gave up on this error.
                let _ = chunks.send(Err(error)).await;
                return;
            }
        };
        if reader_gone {
            continue;
        }
        chunk.truncate(count);
        if chunks.send(Ok(chunk)).await.is_err() {
            reader_gone = true;
        }
    }
    if reader_gone {
        return;
    }
    match verdict.await {
        Ok(Ok(())) => {}
        Ok(Err(error)) => {
            let _ = chunks.send(Err(error)).await;
        }
        Err(_) => {
            let _ = chunks
                .send(Err(io::Error::other(
                    "restic's exit status is unknown, so the dump may be incomplete",
                )))
                .await;
        }
    }
}

/// A file of a snapshot as restic streams it out (see [`Restic::dump_into`]): an
/// [`AsyncRead`] that ends only after restic exited successfully, and fails with restic's
/// error (scrubbed) when it did not.
pub struct DumpReader {
    /// Chunks of restic's stdout, then restic's verdict.
    queue: mpsc::Receiver<io::Result<Vec<u8>>>,
    /// The chunk being handed on.
    chunk: Vec<u8>,
    /// How much of `chunk` was handed on.
    offset: usize,
    /// How far the consumer got, shared with `dump_into`.
    progress: Arc<Progress>,
    /// Whether the end or an error was reported (nothing follows either).
    ended: bool,
}

impl DumpReader {
    /// Bytes read so far.
    #[must_use]
    pub fn bytes_read(&self) -> u64 {
        self.progress.bytes.load(Ordering::SeqCst)
    }
}

/// How far a consumer read, for `dump_into`'s verdict after the reader is gone.
#[derive(Debug, Default)]
struct Progress {
    /// Bytes handed to the consumer.
    bytes: AtomicU64,
    /// Set once the end was reported, so a consumer that stopped early is told apart.
    reached_end: AtomicBool,
}

impl fmt::Debug for DumpReader {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DumpReader")
            .field("bytes", &self.bytes_read())
            .field("ended", &self.ended)
            .finish_non_exhaustive()
    }
}

impl AsyncRead for DumpReader {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        loop {
            if this.offset < this.chunk.len() {
                let rest = &this.chunk[this.offset..];
                let count = rest.len().min(buf.remaining());
                buf.put_slice(&rest[..count]);
                this.offset += count;
                this.progress
                    .bytes
                    .fetch_add(count as u64, Ordering::SeqCst);
                return Poll::Ready(Ok(()));
            }
            if this.ended {
                return Poll::Ready(Ok(()));
            }
            match this.queue.poll_recv(cx) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(Some(Ok(chunk))) => {
                    this.chunk = chunk;
                    this.offset = 0;
                }
                Poll::Ready(Some(Err(error))) => {
                    this.ended = true;
                    return Poll::Ready(Err(error));
                }
                Poll::Ready(None) => {
                    this.ended = true;
                    this.chunk = Vec::new();
                    this.offset = 0;
                    this.progress.reached_end.store(true, Ordering::SeqCst);
                    return Poll::Ready(Ok(()));
                }
            }
        }
    }
}

/// The path `restic dump` is given: `file` with exactly one leading `/`; refuses what is not
/// a plain path (empty, control characters, `.` or `..` components).
fn snapshot_path(file: &str) -> Result<String, String> {
    let components: Vec<&str> = file.split('/').filter(|c| !c.is_empty()).collect();
    if components.is_empty() {
        Err("no file was named; give the file's path in the snapshot".to_owned())
    } else if file.chars().any(char::is_control) {
        Err(format!("file name {file:?} contains control characters"))
    } else if components.iter().any(|c| *c == "." || *c == "..") {
        Err(format!("file name {file:?} contains `.` or `..`"))
    } else {
        Ok(format!("/{}", components.join("/")))
    }
}

#[cfg(test)]
mod tests {
    use super::snapshot_path;

    #[test]
    fn the_file_becomes_one_absolute_plain_path() {
        assert_eq!(
            snapshot_path("app-db/dump.sql").unwrap(),
            "/app-db/dump.sql"
        );
        assert_eq!(
            snapshot_path("/app-db//dump.sql").unwrap(),
            "/app-db/dump.sql"
        );
        for bad in ["", "/", "a/../b", "./a", "a\nb"] {
            assert!(snapshot_path(bad).is_err(), "{bad:?}");
        }
    }
}
