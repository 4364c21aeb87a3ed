//! One restic child process: what to do with its stdout, the bounded stderr tail, feeding
//! its stdin, and killing it when its time is up.

#[allow(clippy::wildcard_imports)] // The backend's own vocabulary, shared by its parts.
use super::*;

/// A duration as people write it in `resticTimeout` (`1h 30m`).
pub(super) fn human(duration: &Duration) -> humantime::FormattedDuration {
    humantime::format_duration(*duration)
}

/// Kills `child` and reaps it. Errors mean it had already exited, which is the goal.
pub(super) async fn kill(child: &mut tokio::process::Child) {
    if let Err(error) = child.start_kill() {
        debug!(error = %error, "restic had already exited when it was to be killed.");
    }
    if let Err(error) = child.wait().await {
        debug!(error = %error, "Waiting for the killed restic failed.");
    }
}

/// What to do with restic's stdout.
#[derive(Debug, Clone, Copy)]
pub(super) enum Capture {
    /// Keep it (up to [`STDOUT_LIMIT`]) for JSON parsing.
    Text,
    /// Parse `backup --json` lines as they come, keeping only the summary and errors.
    Backup,
}

/// The end of a process's output.
#[derive(Debug, Default)]
pub(super) struct Tail {
    /// The bytes kept.
    pub(super) bytes: Vec<u8>,
    /// Whether more was written than kept.
    pub(super) truncated: bool,
}

/// What was kept of stdout.
#[derive(Debug)]
pub(super) enum Stdout {
    /// See [`Capture::Text`].
    Text(Tail),
    /// See [`Capture::Backup`].
    Backup(BackupStream),
}

/// A restic process that ran to its end (or was killed because its input failed).
#[derive(Debug)]
pub(super) struct Finished {
    /// How it exited.
    pub(super) status: ExitStatus,
    /// Its stdout, as asked for.
    pub(super) stdout: Stdout,
    /// The end of its stderr.
    pub(super) stderr: Tail,
    /// How feeding its stdin went, when it had one.
    pub(super) fed: Option<Feed>,
}

/// How feeding a stream to restic's stdin ended.
#[derive(Debug)]
pub(super) enum Feed {
    /// The whole stream was passed on and stdin was closed.
    Done,
    /// Reading the stream failed; restic's stdin is still open.
    ReaderFailed {
        /// The reader's error.
        error: io::Error,
        /// Bytes passed on before it.
        bytes: u64,
    },
    /// restic stopped accepting input; its exit status and stderr say why.
    ChildClosed,
}

/// Copies `reader` into restic's stdin through a fixed buffer, then closes stdin (the end of
/// the stream for restic). On a read error stdin is left open for the caller to kill restic
/// first.
pub(super) async fn feed_stdin(
    reader: &mut (dyn AsyncRead + Unpin + Send),
    slot: &mut Option<ChildStdin>,
) -> Feed {
    let Some(stdin) = slot.as_mut() else {
        return Feed::ChildClosed;
    };
    let mut buffer = vec![0_u8; STDIN_CHUNK];
    let mut bytes: u64 = 0;
    loop {
        let count = match reader.read(&mut buffer).await {
            Ok(0) => break,
            Ok(count) => count,
            Err(error) if error.kind() == io::ErrorKind::Interrupted => continue,
            Err(error) => return Feed::ReaderFailed { error, bytes },
        };
        if stdin.write_all(&buffer[..count]).await.is_err() {
            return Feed::ChildClosed;
        }
        bytes += count as u64;
    }
    if stdin.flush().await.is_err() {
        return Feed::ChildClosed;
    }
    // Dropping the handle closes the pipe: restic sees the end of the stream.
    *slot = None;
    Feed::Done
}

pub(super) async fn read_stdout(pipe: ChildStdout, capture: Capture) -> io::Result<Stdout> {
    match capture {
        Capture::Text => read_head(pipe, STDOUT_LIMIT).await.map(Stdout::Text),
        Capture::Backup => read_backup_stream(pipe).await.map(Stdout::Backup),
    }
}

/// Reads `pipe` to its end, keeping the first `limit` bytes.
pub(super) async fn read_head(mut pipe: ChildStdout, limit: usize) -> io::Result<Tail> {
    let mut tail = Tail::default();
    let mut buffer = vec![0_u8; 8 * 1024];
    loop {
        let count = pipe.read(&mut buffer).await?;
        if count == 0 {
            return Ok(tail);
        }
        let room = limit - tail.bytes.len();
        if count > room {
            tail.truncated = true;
        }
        tail.bytes.extend_from_slice(&buffer[..count.min(room)]);
    }
}

/// Reads `pipe` to its end, keeping the last `limit` bytes.
pub(super) async fn read_tail(mut pipe: ChildStderr, limit: usize) -> io::Result<Tail> {
    let mut tail = Tail::default();
    let mut buffer = vec![0_u8; 4 * 1024];
    loop {
        let count = pipe.read(&mut buffer).await?;
        if count == 0 {
            break;
        }
        tail.bytes.extend_from_slice(&buffer[..count]);
        // Trim in batches, not on every read.
        if tail.bytes.len() > 2 * limit {
            let excess = tail.bytes.len() - limit;
            tail.bytes.drain(..excess);
            tail.truncated = true;
        }
    }
    if tail.bytes.len() > limit {
        let excess = tail.bytes.len() - limit;
        tail.bytes.drain(..excess);
        tail.truncated = true;
    }
    Ok(tail)
}
