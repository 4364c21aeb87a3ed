//! Output plumbing shared by every process Marina runs through Docker: an exec's streamed
//! stdout ([`ExecStream`]) with its stderr kept aside in a bounded tail ([`StderrTail`]), and
//! the splitting of output into lines ([`OutputLine`]) for live job logs.
//!
//! Nothing here talks to the engine: the real adapter and an in-memory fake build the same
//! types, so the executor cannot tell them apart.

use std::collections::VecDeque;
use std::fmt;
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll};
use std::time::Duration;

use futures::future::BoxFuture;
use tokio::io::{AsyncRead, ReadBuf};

use super::runtime::RuntimeError;

/// How much of a process's stderr is kept: enough for any tool's error message, small enough
/// that a tool chattering on stderr for hours cannot exhaust memory.
pub const STDERR_TAIL_BYTES: usize = 64 * 1024;

/// A line longer than this is delivered in pieces, so one endless line (a progress bar without
/// newlines, binary garbage) cannot grow a buffer without bound.
pub const MAX_LINE_BYTES: usize = 16 * 1024;

/// Which of a process's output streams a line came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum OutputStream {
    /// Standard output.
    Stdout,
    /// Standard error.
    Stderr,
}

/// One line of a process's output, without its line ending, decoded as UTF-8 (invalid bytes
/// are replaced, so binary noise cannot break a log).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutputLine {
    /// Where the line came from.
    pub stream: OutputStream,
    /// The text, without `\n` (or `\r\n`).
    pub text: String,
}

/// Cuts a byte stream into lines as bytes arrive, keeping an unfinished line for the next
/// chunk. One splitter per output stream, so stdout and stderr lines never mix.
#[derive(Debug)]
pub(crate) struct LineSplitter {
    /// Which stream the lines are attributed to.
    stream: OutputStream,
    /// The unfinished line so far (never more than [`MAX_LINE_BYTES`]).
    partial: Vec<u8>,
}

impl LineSplitter {
    pub(crate) fn new(stream: OutputStream) -> Self {
        Self {
            stream,
            partial: Vec::new(),
        }
    }

    /// Feeds a chunk, delivering every line it completes.
    pub(crate) fn push(&mut self, mut chunk: &[u8], on_line: &mut impl FnMut(OutputLine)) {
        while !chunk.is_empty() {
            let room = MAX_LINE_BYTES - self.partial.len();
            match chunk.iter().take(room).position(|&b| b == b'\n') {
                Some(end) => {
                    self.partial.extend_from_slice(&chunk[..end]);
                    chunk = &chunk[end + 1..];
                    self.emit(on_line);
                }
                None if chunk.len() < room => {
                    self.partial.extend_from_slice(chunk);
                    chunk = &[];
                }
                None => {
                    // The line is too long: deliver what fits and go on with the rest.
                    self.partial.extend_from_slice(&chunk[..room]);
                    chunk = &chunk[room..];
                    self.emit(on_line);
                }
            }
        }
    }

    /// Delivers an unfinished last line (output that did not end with a newline).
    pub(crate) fn finish(&mut self, on_line: &mut impl FnMut(OutputLine)) {
        if !self.partial.is_empty() {
            self.emit(on_line);
        }
    }

    fn emit(&mut self, on_line: &mut impl FnMut(OutputLine)) {
        if self.partial.last() == Some(&b'\r') {
            self.partial.pop();
        }
        let text = String::from_utf8_lossy(&self.partial).into_owned();
        self.partial.clear();
        on_line(OutputLine {
            stream: self.stream,
            text,
        });
    }
}

/// The last [`STDERR_TAIL_BYTES`] bytes a process wrote to stderr. Cheap to clone: clones share
/// one buffer, so the reader that fills it and the code that reports it can live apart.
#[derive(Clone, Default)]
pub struct StderrTail(Arc<Mutex<TailBuffer>>);

#[derive(Default)]
struct TailBuffer {
    /// The kept bytes, oldest first.
    bytes: VecDeque<u8>,
    /// Whether older bytes were dropped, so a report can say it is not the whole output.
    truncated: bool,
}

impl StderrTail {
    /// An empty tail.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// Appends bytes, dropping the oldest beyond the limit.
    pub fn push(&self, chunk: &[u8]) {
        // A panic while holding the lock cannot leave the bytes inconsistent: keep going.
        let mut tail = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        let chunk = if chunk.len() > STDERR_TAIL_BYTES {
            tail.truncated = true;
            &chunk[chunk.len() - STDERR_TAIL_BYTES..]
        } else {
            chunk
        };
        let overflow = (tail.bytes.len() + chunk.len()).saturating_sub(STDERR_TAIL_BYTES);
        if overflow > 0 {
            tail.truncated = true;
            tail.bytes.drain(..overflow);
        }
        tail.bytes.extend(chunk);
    }

    /// The kept text (invalid UTF-8 replaced), prefixed with `…` when older output was dropped.
    #[must_use]
    pub fn text(&self) -> String {
        let tail = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        let (front, back) = tail.bytes.as_slices();
        let mut bytes = Vec::with_capacity(tail.bytes.len());
        bytes.extend_from_slice(front);
        bytes.extend_from_slice(back);
        let text = String::from_utf8_lossy(&bytes);
        if tail.truncated {
            format!("…{text}")
        } else {
            text.into_owned()
        }
    }
}

impl fmt::Debug for StderrTail {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let tail = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        f.debug_struct("StderrTail")
            .field("bytes", &tail.bytes.len())
            .field("truncated", &tail.truncated)
            .finish()
    }
}

/// What the engine says about an exec instance.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExecStatus {
    /// Whether the process is still running.
    pub running: bool,
    /// The exit code, once it has exited.
    pub exit_code: Option<i64>,
    /// The command line as the engine recorded it (entrypoint, then arguments): what anyone
    /// with access to the engine can read, so it must never carry a secret.
    pub command: Vec<String>,
    /// The user it runs as, when one was given.
    pub user: Option<String>,
}

/// How an exec ended, once its output was read to the end.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExecOutcome {
    /// The process's exit code.
    pub exit_code: i64,
    /// The tail of its stderr (see [`StderrTail::text`]).
    pub stderr: String,
    /// How many bytes of stdout were delivered (including any drained by `finish`).
    pub stdout_bytes: u64,
}

/// Asks the engine for an exec's status; the real adapter calls `inspect_exec`.
pub type StatusProbe =
    Arc<dyn Fn() -> BoxFuture<'static, Result<ExecStatus, RuntimeError>> + Send + Sync>;

/// A command running in a container: its stdout as an [`AsyncRead`] that yields bytes as they
/// arrive (binary-safe; never the whole output in memory), its stderr collected aside into a
/// bounded tail, and [`ExecStream::finish`] for the exit code once the output has ended.
///
/// Dropping it closes the connection; the process then gets `SIGPIPE` on its next write.
pub struct ExecStream {
    /// The engine's id of the exec instance, for `inspect_exec`.
    exec_id: String,
    /// The container the command runs in, for messages.
    container: String,
    /// Stdout; reading it also moves stderr into `stderr`.
    stdout: Pin<Box<dyn AsyncRead + Send>>,
    /// Stderr so far.
    stderr: StderrTail,
    /// Bytes of stdout delivered so far.
    stdout_bytes: u64,
    /// How to learn the exit code.
    status: StatusProbe,
}

impl fmt::Debug for ExecStream {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ExecStream")
            .field("exec_id", &self.exec_id)
            .field("container", &self.container)
            .field("stdout_bytes", &self.stdout_bytes)
            .field("stderr", &self.stderr)
            .finish_non_exhaustive()
    }
}

/// The first pause between status polls while the engine records an exit code.
const STATUS_POLL_START: Duration = Duration::from_millis(10);
/// The longest pause between status polls.
const STATUS_POLL_MAX: Duration = Duration::from_millis(250);
/// How many polls (about 15 s in total) before giving up on an exit code. The output ends when
/// the process exits, so the engine normally has the code at the first poll.
const STATUS_POLLS: u32 = 70;

impl ExecStream {
    /// Assembles a stream from its parts: how a runtime (real or fake) hands out an exec.
    /// `stdout` must push what it reads of stderr into `stderr` (a fake may fill it up front).
    pub fn from_parts(
        exec_id: String,
        container: String,
        stdout: impl AsyncRead + Send + 'static,
        stderr: StderrTail,
        status: StatusProbe,
    ) -> Self {
        Self {
            exec_id,
            container,
            stdout: Box::pin(stdout),
            stderr,
            stdout_bytes: 0,
            status,
        }
    }

    /// The engine's id of the exec instance.
    #[must_use]
    pub fn exec_id(&self) -> &str {
        &self.exec_id
    }

    /// The container the command runs in.
    #[must_use]
    pub fn container(&self) -> &str {
        &self.container
    }

    /// Bytes of stdout delivered so far.
    #[must_use]
    pub fn stdout_bytes(&self) -> u64 {
        self.stdout_bytes
    }

    /// The stderr tail collected so far.
    #[must_use]
    pub fn stderr(&self) -> String {
        self.stderr.text()
    }

    /// Waits for the process to end and returns its exit code and stderr. Stdout not read yet
    /// is read and discarded first: the process cannot finish while its output is unread.
    pub async fn finish(mut self) -> Result<ExecOutcome, RuntimeError> {
        let mut sink = tokio::io::sink();
        tokio::io::copy(&mut self, &mut sink)
            .await
            .map_err(|source| RuntimeError::Output {
                container: self.container.clone(),
                source,
            })?;
        let exit_code = poll_exit_code(&self.exec_id, || (self.status)()).await?;
        Ok(ExecOutcome {
            exit_code,
            stderr: self.stderr.text(),
            stdout_bytes: self.stdout_bytes,
        })
    }
}

/// Asks `status` until the exec no longer runs and returns its exit code. Once the output has
/// ended the engine normally has the code at the first ask; the pauses cover the short moment
/// when it has not recorded it yet.
pub(crate) async fn poll_exit_code<F, Fut>(
    exec_id: &str,
    mut status: F,
) -> Result<i64, RuntimeError>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<ExecStatus, RuntimeError>>,
{
    let unknown = || RuntimeError::ExitCodeUnknown {
        exec_id: exec_id.to_owned(),
    };
    let mut pause = STATUS_POLL_START;
    for _ in 0..STATUS_POLLS {
        let status = status().await?;
        if !status.running {
            return status.exit_code.ok_or_else(unknown);
        }
        tokio::time::sleep(pause).await;
        pause = (pause * 2).min(STATUS_POLL_MAX);
    }
    Err(unknown())
}

impl AsyncRead for ExecStream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let before = buf.filled().len();
        let result = this.stdout.as_mut().poll_read(cx, buf);
        let read = buf.filled().len() - before;
        this.stdout_bytes += read as u64;
        result
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn split(chunks: &[&[u8]]) -> Vec<String> {
        let mut lines = Vec::new();
        let mut splitter = LineSplitter::new(OutputStream::Stdout);
        let mut on_line = |line: OutputLine| lines.push(line.text);
        for chunk in chunks {
            splitter.push(chunk, &mut on_line);
        }
        splitter.finish(&mut on_line);
        lines
    }

    #[test]
    fn lines_are_reassembled_across_chunks() {
        assert_eq!(
            split(&[b"one\ntw", b"o\r\n", b"", b"three"]),
            ["one", "two", "three"]
        );
        assert_eq!(split(&[b"\n\n"]), ["", ""]);
        assert!(split(&[]).is_empty());
    }

    #[test]
    fn an_endless_line_is_cut_into_bounded_pieces() {
        let long = vec![b'x'; MAX_LINE_BYTES * 2 + 10];
        let lines = split(&[&long, b"\nend\n"]);
        assert_eq!(
            lines.iter().map(String::len).collect::<Vec<_>>(),
            [MAX_LINE_BYTES, MAX_LINE_BYTES, 10, 3]
        );
    }

    #[test]
    fn invalid_utf8_is_replaced_not_fatal() {
        assert_eq!(split(&[b"a\xffb\n"]), ["a\u{fffd}b"]);
    }

    #[test]
    fn the_stderr_tail_keeps_only_the_newest_bytes() {
        let tail = StderrTail::new();
        tail.push(b"hello ");
        tail.push(b"world");
        assert_eq!(tail.text(), "hello world");
        tail.push(&vec![b'a'; STDERR_TAIL_BYTES - 3]);
        tail.push(b"end");
        let text = tail.text();
        assert!(text.starts_with('…'), "{}", &text[..10]);
        assert!(text.ends_with("aaaend"));
        assert_eq!(text.len(), '…'.len_utf8() + STDERR_TAIL_BYTES);
        tail.push(&vec![b'b'; STDERR_TAIL_BYTES * 2]);
        assert_eq!(tail.text().len(), '…'.len_utf8() + STDERR_TAIL_BYTES);
    }

    #[tokio::test]
    async fn finish_drains_stdout_and_reports_the_exit_code() {
        let status: StatusProbe = Arc::new(|| {
            Box::pin(async {
                Ok(ExecStatus {
                    running: false,
                    exit_code: Some(3),
                    command: vec!["x".into()],
                    user: None,
                })
            })
        });
        let stderr = StderrTail::new();
        stderr.push(b"bad things");
        let stream =
            ExecStream::from_parts("e1".into(), "c1".into(), &b"0123456789"[..], stderr, status);
        let outcome = stream.finish().await.unwrap();
        assert_eq!(
            outcome,
            ExecOutcome {
                exit_code: 3,
                stderr: "bad things".into(),
                stdout_bytes: 10
            }
        );
    }
}
