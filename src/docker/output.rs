//! An exec's output as Marina reads it: the streamed stdout ([`ExecStream`]) with its stderr
//! kept aside in a bounded tail ([`StderrTail`]), and the exit code once the output has ended.
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

use super::error::RuntimeError;
use super::limits::{Control, ExecKill, ExecLimits, KillOnDrop, interruption};

/// How much of a process's stderr is kept: enough for any tool's error message, small enough
/// that a tool chattering on stderr for hours cannot exhaust memory.
pub const STDERR_TAIL_BYTES: usize = 64 * 1024;

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
    /// What ends the process early and how it is killed; `None` when nothing does.
    control: Option<Box<Control>>,
    /// Kills the process inside its container when the stream is dropped before it exited.
    guard: KillOnDrop,
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
/// The longest pause between status polls: a busy engine is asked about once a second.
const STATUS_POLL_MAX: Duration = Duration::from_secs(1);

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
            control: None,
            guard: KillOnDrop::disarmed(),
        }
    }

    /// Lets `limits` end the process early: once its deadline passes or its token fires, `kill`
    /// runs and reading fails with an [`ExecInterrupted`](super::ExecInterrupted) naming `what`. `kill` also runs when
    /// the stream is dropped before the process exited.
    #[must_use]
    pub fn with_control(mut self, what: String, limits: &ExecLimits, kill: ExecKill) -> Self {
        self.guard = KillOnDrop::new(Arc::clone(&kill), what.clone());
        self.control = Some(Box::new(Control::new(what, limits, kill)));
        self
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
        if let Err(source) = tokio::io::copy(&mut self, &mut sink).await {
            return Err(match interruption(&source) {
                Some(interrupted) => RuntimeError::Interrupted(interrupted.clone()),
                None => RuntimeError::Output {
                    container: self.container.clone(),
                    source,
                },
            });
        }
        let status = Arc::clone(&self.status);
        let exec_id = self.exec_id.clone();
        let polled = poll_exit_code(&exec_id, || status());
        // The output can end before the process does (it closed stdout): the limits still hold.
        let exit_code = match self.control.as_mut() {
            None => polled.await,
            Some(control) => {
                let code = tokio::select! {
                    biased;
                    interrupted = std::future::poll_fn(|cx| control.poll_stop(cx)) => {
                        Err(RuntimeError::Interrupted(interrupted))
                    }
                    code = polled => code,
                };
                if code.is_ok() && control.stopping() {
                    // It exited because the kill had begun: report the kill, not its exit code.
                    let interrupted = std::future::poll_fn(|cx| control.poll_stop(cx)).await;
                    Err(RuntimeError::Interrupted(interrupted))
                } else {
                    code
                }
            }
        };
        if matches!(exit_code, Ok(_) | Err(RuntimeError::Interrupted(_))) {
            // It exited, or the kill already ran: nothing is left to kill on drop.
            self.guard.disarm();
        }
        let exit_code = exit_code?;
        Ok(ExecOutcome {
            exit_code,
            stderr: self.stderr.text(),
            stdout_bytes: self.stdout_bytes,
        })
    }
}

/// Asks `status` until the exec no longer runs and returns its exit code. Once the output has
/// ended the engine normally has the code at the first ask; the pauses (growing to a second)
/// cover the moment when it has not recorded it yet, however long a busy engine takes. There
/// is no count of its own: the caller's deadline bounds the wait.
pub(super) async fn poll_exit_code<F, Fut>(
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
    loop {
        let status = status().await?;
        if !status.running {
            return status.exit_code.ok_or_else(unknown);
        }
        tokio::time::sleep(pause).await;
        pause = (pause * 2).min(STATUS_POLL_MAX);
    }
}

impl AsyncRead for ExecStream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if let Some(control) = this.control.as_mut() {
            match control.poll_stop(cx) {
                Poll::Ready(interrupted) => {
                    // The kill ran: nothing is left to kill on drop.
                    this.guard.disarm();
                    return Poll::Ready(Err(io::Error::other(interrupted)));
                }
                // The end of output a kill causes must not pass for the end of the dump.
                Poll::Pending if control.stopping() => return Poll::Pending,
                Poll::Pending => {}
            }
        }
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

#[cfg(test)]
mod poll_tests {
    use std::sync::atomic::{AtomicU32, Ordering};

    use super::*;

    /// A busy engine may take a long time to record an exit: the poll waits as long as the
    /// exec runs (the caller's deadline bounds it), it does not give up after a fixed count.
    #[tokio::test(start_paused = true)]
    async fn the_exit_code_poll_waits_past_a_long_running_exec() {
        let asked = Arc::new(AtomicU32::new(0));
        let started = crate::clock::Clock::System.instant();
        let probe = {
            let asked = Arc::clone(&asked);
            move || {
                asked.fetch_add(1, Ordering::SeqCst);
                let running = started.elapsed() < Duration::from_mins(1);
                async move {
                    Ok(ExecStatus {
                        running,
                        exit_code: (!running).then_some(7),
                        command: Vec::new(),
                        user: None,
                    })
                }
            }
        };
        let code = poll_exit_code("e1", probe).await.unwrap();
        assert_eq!(code, 7);
        assert!(started.elapsed() >= Duration::from_mins(1));
        // Backoff is capped: about one ask per second at most, not a busy loop.
        let asks = asked.load(Ordering::SeqCst);
        assert!((60..=400).contains(&asks), "{asks} asks");
    }
}

#[cfg(test)]
mod control_tests {
    use std::sync::atomic::{AtomicU32, Ordering};

    use tokio::io::AsyncReadExt;
    use tokio_util::sync::CancellationToken;

    use super::*;
    use crate::docker::limits::{Deadline, ExecInterrupted, KillOutcome};

    fn running() -> StatusProbe {
        Arc::new(|| {
            Box::pin(async {
                Ok(ExecStatus {
                    running: true,
                    exit_code: None,
                    command: Vec::new(),
                    user: None,
                })
            })
        })
    }

    fn counting_kill(kills: &Arc<AtomicU32>, outcome: KillOutcome) -> ExecKill {
        let kills = Arc::clone(kills);
        Arc::new(move || {
            kills.fetch_add(1, Ordering::SeqCst);
            let outcome = outcome.clone();
            Box::pin(async move { outcome })
        })
    }

    /// A stdout that never ends while the other half is kept, like a hung dump tool's.
    fn silent_stream(kill: ExecKill, limits: &ExecLimits) -> (ExecStream, tokio::io::DuplexStream) {
        let (writer, silent) = tokio::io::duplex(8);
        let stream = ExecStream::from_parts(
            "e1".into(),
            "db-1".into(),
            silent,
            StderrTail::new(),
            running(),
        )
        .with_control("pg_dumpall in container db-1".into(), limits, kill);
        (stream, writer)
    }

    #[tokio::test(start_paused = true)]
    async fn a_read_past_the_deadline_kills_once_and_reports_why() {
        let kills = Arc::new(AtomicU32::new(0));
        let limits = ExecLimits {
            deadline: Some(Deadline::after(Duration::from_secs(3), "resticTimeout")),
            cancel: None,
        };
        let (mut stream, _writer) =
            silent_stream(counting_kill(&kills, KillOutcome::Killed), &limits);
        let mut buf = [0; 16];
        let error = stream.read(&mut buf).await.unwrap_err();
        assert_eq!(
            interruption(&error).unwrap().to_string(),
            "pg_dumpall in container db-1 ran longer than resticTimeout 3s and was killed"
        );
        assert!(matches!(
            stream.finish().await,
            Err(RuntimeError::Interrupted(ExecInterrupted {
                kill: KillOutcome::Killed,
                ..
            }))
        ));
        tokio::task::yield_now().await;
        assert_eq!(
            kills.load(Ordering::SeqCst),
            1,
            "killed once, not again on drop"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn cancelling_kills_and_says_when_the_kill_could_not_work() {
        let kills = Arc::new(AtomicU32::new(0));
        let cancel = CancellationToken::new();
        let limits = ExecLimits {
            deadline: None,
            cancel: Some(cancel.clone()),
        };
        let (stream, _writer) = silent_stream(counting_kill(&kills, KillOutcome::NoShell), &limits);
        cancel.cancel();
        let error = stream.finish().await.unwrap_err().to_string();
        assert!(
            error.contains("was stopped because its job was stopped"),
            "{error}"
        );
        assert!(
            error.contains("(it has no sh); it may still be running"),
            "{error}"
        );
        assert_eq!(kills.load(Ordering::SeqCst), 1);
    }

    #[tokio::test(start_paused = true)]
    async fn a_stream_dropped_before_its_process_exited_is_killed() {
        let kills = Arc::new(AtomicU32::new(0));
        let (stream, _writer) = silent_stream(
            counting_kill(&kills, KillOutcome::Killed),
            &ExecLimits::default(),
        );
        drop(stream);
        tokio::task::yield_now().await;
        assert_eq!(kills.load(Ordering::SeqCst), 1);
    }
}
