//! One restic command from start to end: the checks every command needs, the child process
//! with its minimal environment and cache flags, running it to completion or to its timeout
//! (feeding its stdin, capturing stdout and the bounded stderr tail, killing it), and the
//! errors a finished command turns into. A command whose stdout is a stream for someone else
//! (`dump`) runs as a [`StreamingChild`], which is stopped so that restic removes its lock.

use std::ffi::OsString;
use std::io;
use std::path::PathBuf;
use std::process::{ExitStatus, Stdio};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};
use tokio::process::{Child, ChildStderr, ChildStdin, ChildStdout, Command};
use tracing::{debug, warn};

use super::output::{BackupStream, read_backup_stream};
use super::scrub::{describe_status, hint, summarize};
use super::settings::Cache;
use super::{Restic, ResticError, Result};

/// The cache directory's name under `TMPDIR` (see [`Cache::InTmpDir`]).
const CACHE_DIR_NAME: &str = "marina-restic-cache";
/// The environment variables restic reads its password from. Without one of them restic
/// reads the password from stdin, which for `backup --stdin` is the data itself.
const PASSWORD_VARS: [&str; 3] = [
    "RESTIC_PASSWORD",
    "RESTIC_PASSWORD_FILE",
    "RESTIC_PASSWORD_COMMAND",
];
/// How much of restic's stderr is kept: its last lines say what went wrong, and a restic that
/// floods stderr must not grow Marina's memory.
pub(super) const STDERR_TAIL: usize = 8 * 1024;
/// Upper bound on the stdout kept for JSON answers (`snapshots`, `forget`); tens of thousands
/// of snapshots fit, and a runaway output cannot exhaust memory.
const STDOUT_LIMIT: usize = 64 * 1024 * 1024;
/// Buffer for feeding a stream to `backup --stdin`: the only memory a stream of any size uses.
const STDIN_CHUNK: usize = 64 * 1024;
/// How long a stopped restic gets to remove its lock and exit before it is killed. Removing a
/// lock is one delete in the repository; a slow remote backend may take seconds.
const STOP_GRACE: Duration = Duration::from_secs(30);

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

impl Restic {
    /// Checks what every command needs before anything runs.
    pub(super) fn preflight(&self, command: &'static str) -> Result<()> {
        let has_password = PASSWORD_VARS.iter().any(|name| {
            self.settings
                .env
                .get(*name)
                .is_some_and(|value| !value.expose().is_empty())
        });
        if !has_password {
            return Err(ResticError::NoPassword {
                instance: self.settings.instance.clone(),
            });
        }
        if self.settings.host.trim().is_empty() {
            return Err(self.invalid(
                command,
                "the node name (restic's --host) is empty; set `nodeName`".to_owned(),
            ));
        }
        Ok(())
    }

    /// Runs one restic command to completion or to its timeout, feeding `stdin` if given.
    pub(super) async fn run(
        &self,
        command: &'static str,
        arguments: &[OsString],
        capture: Capture,
        stdin: Option<&mut (dyn AsyncRead + Unpin + Send)>,
    ) -> Result<Finished> {
        // Declared before `child` so that, if this future is dropped mid-stream, the child is
        // killed (kill_on_drop) before its stdin closes: end-of-file would let restic save
        // what it has read so far as a complete snapshot.
        let mut stdin_slot: Option<ChildStdin>;
        debug!(instance = %self.settings.instance, command, "Running restic.");
        let mut child = self
            .command(arguments, stdin.is_some())
            .spawn()
            .map_err(|source| ResticError::Spawn {
                instance: self.settings.instance.clone(),
                command,
                binary: self.settings.binary.clone(),
                source,
            })?;
        stdin_slot = child.stdin.take();
        let (Some(stdout), Some(stderr)) = (child.stdout.take(), child.stderr.take()) else {
            return Err(self.io_error(
                command,
                io::Error::other("restic's output pipes are missing"),
            ));
        };

        let work = async {
            let pipes = async {
                tokio::join!(read_stdout(stdout, capture), read_tail(stderr, STDERR_TAIL))
            };
            tokio::pin!(pipes);
            let mut pipes_done = None;
            let mut stdin_outcome = None;
            if let Some(reader) = stdin {
                let outcome = {
                    let feed = feed_stdin(reader, &mut stdin_slot);
                    tokio::pin!(feed);
                    // Read restic's output while feeding it: a full stdout pipe would stall
                    // restic and with it the stream.
                    loop {
                        tokio::select! {
                            outcome = &mut feed => break outcome,
                            output = &mut pipes, if pipes_done.is_none() => pipes_done = Some(output),
                        }
                    }
                };
                if let Feed::ReaderFailed { .. } = outcome {
                    // Kill first, close stdin after (see `stdin_slot`).
                    kill(&mut child).await;
                    stdin_slot = None;
                    let status = child.wait().await.map_err(|e| self.io_error(command, e))?;
                    return Ok(Finished {
                        status,
                        stdout: Stdout::Text(Tail::default()),
                        stderr: Tail::default(),
                        fed: Some(outcome),
                    });
                }
                stdin_outcome = Some(outcome);
            }
            let (stdout, stderr) = match pipes_done {
                Some(output) => output,
                None => pipes.await,
            };
            let status = child.wait().await.map_err(|e| self.io_error(command, e))?;
            Ok(Finished {
                status,
                stdout: stdout.map_err(|e| self.io_error(command, e))?,
                stderr: stderr.map_err(|e| self.io_error(command, e))?,
                fed: stdin_outcome,
            })
        };
        let outcome = tokio::time::timeout(self.settings.timeout, work).await;
        if let Ok(finished) = outcome {
            if let Ok(finished) = &finished {
                debug!(instance = %self.settings.instance, command, status = %describe_status(finished.status), "restic finished.");
            }
            return finished;
        }
        warn!(
            instance = %self.settings.instance,
            command,
            timeout = %humantime::format_duration(self.settings.timeout),
            "restic did not finish within resticTimeout; killing it."
        );
        kill(&mut child).await;
        drop(stdin_slot);
        Err(ResticError::Timeout {
            instance: self.settings.instance.clone(),
            command,
            timeout: self.settings.timeout,
        })
    }

    /// The child process, with the minimal environment.
    fn command(&self, arguments: &[OsString], piped_stdin: bool) -> Command {
        let mut command = Command::new(&self.settings.binary);
        command
            .env_clear()
            .env("PATH", &self.base_env.path)
            .env("HOME", &self.base_env.home)
            .env("TMPDIR", &self.base_env.tmpdir);
        for (name, value) in &self.settings.env {
            command.env(name, value.expose());
        }
        // The configured `repository` wins over an `env` entry of the same name.
        command.env("RESTIC_REPOSITORY", self.settings.repository.expose());
        command
            .args(self.cache_args())
            .args(arguments)
            .stdin(if piped_stdin {
                Stdio::piped()
            } else {
                Stdio::null()
            })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            // If the caller stops waiting (job aborted), restic must not live on.
            .kill_on_drop(true)
            // Out of Marina's process group: a terminal's Ctrl-C (SIGINT to the foreground
            // group) reaches Marina alone, which then lets the job finish within
            // `shutdownGrace` instead of restic dying mid-backup.
            .process_group(0);
        command
    }

    /// Starts a command whose stdout the caller streams elsewhere (`dump`), with the same
    /// environment and cache flags as [`Restic::run`]. The caller reads stdout and stderr,
    /// bounds the run with `resticTimeout`, and stops it with [`StreamingChild::stop`].
    pub(super) fn spawn_streaming(
        &self,
        command: &'static str,
        arguments: &[OsString],
    ) -> Result<StreamingChild> {
        debug!(instance = %self.settings.instance, command, "Running restic.");
        let mut child = self
            .command(arguments, false)
            // A dropped stream is stopped by `StreamingChild`'s own drop, with SIGINT: the
            // SIGKILL of `kill_on_drop` would leave restic's lock in the repository.
            .kill_on_drop(false)
            .spawn()
            .map_err(|source| ResticError::Spawn {
                instance: self.settings.instance.clone(),
                command,
                binary: self.settings.binary.clone(),
                source,
            })?;
        let (Some(stdout), Some(stderr)) = (child.stdout.take(), child.stderr.take()) else {
            // Without its pipes the child is of no use; it must not linger either.
            let _ = child.start_kill();
            return Err(self.io_error(
                command,
                io::Error::other("restic's output pipes are missing"),
            ));
        };
        Ok(StreamingChild {
            child: Some(child),
            stdout: Some(stdout),
            stderr: Some(stderr),
            exited: None,
            command,
        })
    }

    /// The global cache flags (none when the instance `env` sets `RESTIC_CACHE_DIR`).
    fn cache_args(&self) -> Vec<OsString> {
        if self.settings.env.contains_key("RESTIC_CACHE_DIR") {
            return Vec::new();
        }
        match &self.settings.cache {
            Cache::InTmpDir => vec![
                "--cache-dir".into(),
                self.effective_tmpdir().join(CACHE_DIR_NAME).into(),
            ],
            Cache::At(dir) => vec!["--cache-dir".into(), dir.into()],
            Cache::Disabled => vec!["--no-cache".into()],
        }
    }

    /// `TMPDIR` as restic will see it (the instance `env` may override Marina's).
    fn effective_tmpdir(&self) -> PathBuf {
        self.settings.env.get("TMPDIR").map_or_else(
            || PathBuf::from(&self.base_env.tmpdir),
            |value| PathBuf::from(value.expose()),
        )
    }

    pub(super) fn io_error(&self, command: &'static str, source: io::Error) -> ResticError {
        ResticError::Io {
            instance: self.settings.instance.clone(),
            command,
            source,
        }
    }
}

// The errors a command ends with, named for the instance and scrubbed of secrets.
impl Restic {
    /// The error for a command that exited unsuccessfully.
    pub(super) fn failed(&self, command: &'static str, finished: &Finished) -> ResticError {
        let message = self.message(&finished.stderr);
        ResticError::Failed {
            instance: self.settings.instance.clone(),
            command,
            status: describe_status(finished.status),
            hint: hint(command, &message),
            message,
        }
    }

    /// restic's stderr as a short, secret-free message.
    pub(super) fn message(&self, stderr: &Tail) -> String {
        let text = String::from_utf8_lossy(&stderr.bytes);
        // A cut-off first line could hold the end of a secret that no longer matches in full.
        let text = if stderr.truncated {
            text.split_once('\n').map_or("", |(_, rest)| rest)
        } else {
            &text
        };
        summarize(&self.scrubber.scrub(text))
    }

    /// stdout as bytes, or an error if it was cut off at [`STDOUT_LIMIT`].
    pub(super) fn complete_stdout<'f>(
        &self,
        command: &'static str,
        finished: &'f Finished,
    ) -> Result<&'f [u8]> {
        match &finished.stdout {
            Stdout::Text(tail) if !tail.truncated => Ok(&tail.bytes),
            Stdout::Text(_) => Err(self.output_error(
                command,
                &format!("the output is larger than {STDOUT_LIMIT} bytes"),
            )),
            Stdout::Backup(_) => Err(self.output_error(command, "no text output was captured")),
        }
    }

    /// The error for a request restic must not be run with; nothing was run.
    pub(super) fn invalid(&self, command: &'static str, reason: String) -> ResticError {
        ResticError::InvalidRequest {
            instance: self.settings.instance.clone(),
            command,
            reason,
        }
    }

    /// The error for output this version of Marina cannot read.
    pub(super) fn output_error(&self, command: &'static str, detail: &str) -> ResticError {
        ResticError::Output {
            instance: self.settings.instance.clone(),
            command,
            detail: self.scrubber.scrub(detail),
        }
    }
}

/// restic's arguments from string literals and borrowed strings.
pub(super) fn args<'a>(items: impl IntoIterator<Item = &'a str>) -> Vec<OsString> {
    items.into_iter().map(OsString::from).collect()
}

/// Copies `reader` into restic's stdin through a fixed buffer, then closes stdin (the end of
/// the stream for restic). On a read error stdin is left open for the caller to kill restic
/// first.
async fn feed_stdin(
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

/// A restic process whose stdout is a stream for someone else (`restic dump` into a
/// database), and which is never left to die in a way that keeps its lock.
///
/// restic holds a lock in the repository while it runs and removes it when it exits — also on
/// `SIGINT`, which runs its cleanup. It does not on `SIGKILL`, nor on `SIGPIPE` (its stdout
/// closed while it writes, which kills a Go program), nor on `SIGTERM` before restic 0.17:
/// each of those leaves a lock that blocks `prune` and `check` until `unlock` removes it. So a
/// stream that is not read to its end is stopped with `SIGINT` while its stdout is still open
/// (the caller keeps draining it), and killed only if it has not exited after [`STOP_GRACE`].
/// Dropped while restic still runs, it sends `SIGINT` too and leaves waiting (and the kill
/// after the grace) to a background task.
#[derive(Debug)]
pub(super) struct StreamingChild {
    /// The process; `None` once handed to the background task of `Drop`.
    child: Option<Child>,
    /// Its stdout, until the caller takes it to stream it.
    pub(super) stdout: Option<ChildStdout>,
    /// Its stderr, until the caller takes it to keep its tail.
    pub(super) stderr: Option<ChildStderr>,
    /// How it exited, once it was reaped.
    exited: Option<ExitStatus>,
    /// The command, for logs.
    command: &'static str,
}

impl StreamingChild {
    /// Waits for restic to exit on its own. Cancel-safe, so it can sit in a `select!`.
    pub(super) async fn wait(&mut self) -> io::Result<ExitStatus> {
        if let Some(status) = self.exited {
            return Ok(status);
        }
        let Some(child) = self.child.as_mut() else {
            return Err(io::Error::other("restic was handed off"));
        };
        let status = child.wait().await?;
        self.exited = Some(status);
        Ok(status)
    }

    /// How restic exited, if it did.
    pub(super) fn exit_status(&self) -> Option<ExitStatus> {
        self.exited
    }

    /// Stops restic if it still runs: `SIGINT`, up to [`STOP_GRACE`] to remove its lock and
    /// exit, then `SIGKILL`. Returns how it exited. Whoever reads its stdout and stderr must
    /// go on reading until they end, or restic could block writing instead of exiting.
    pub(super) async fn stop(&mut self) -> Option<ExitStatus> {
        if self.exited.is_some() {
            return self.exited;
        }
        let child = self.child.as_mut()?;
        interrupt(child, self.command);
        let status = match tokio::time::timeout(STOP_GRACE, child.wait()).await {
            Ok(Ok(status)) => Some(status),
            Ok(Err(error)) => {
                debug!(error = %error, command = self.command, "Waiting for the stopped restic failed.");
                None
            }
            Err(_) => {
                warn!(command = self.command, grace = %humantime::format_duration(STOP_GRACE),
                    "restic did not exit after SIGINT; killing it. Its lock may stay in the repository until `restic unlock` removes it.");
                kill(child).await;
                child.try_wait().ok().flatten()
            }
        };
        self.exited = status;
        status
    }
}

impl Drop for StreamingChild {
    fn drop(&mut self) {
        if self.exited.is_some() {
            return;
        }
        let Some(mut child) = self.child.take() else {
            return;
        };
        if let Ok(Some(_)) = child.try_wait() {
            return;
        }
        interrupt(&child, self.command);
        let command = self.command;
        match tokio::runtime::Handle::try_current() {
            Ok(runtime) => {
                runtime.spawn(async move {
                    if tokio::time::timeout(STOP_GRACE, child.wait())
                        .await
                        .is_err()
                    {
                        warn!(command, "restic did not exit after SIGINT; killing it.");
                        kill(&mut child).await;
                    }
                });
            }
            // No runtime to wait on: killing it now is all that is left.
            Err(_) => {
                let _ = child.start_kill();
            }
        }
    }
}

/// Sends `SIGINT` to restic alone (not its process group: restic stops its own helpers, such
/// as `rclone` or `ssh`, after removing its lock through them).
fn interrupt(child: &Child, command: &'static str) {
    // `id()` is `None` once the child was reaped; until then its pid cannot be reused.
    let Some(pid) = child
        .id()
        .and_then(|id| i32::try_from(id).ok())
        .and_then(rustix::process::Pid::from_raw)
    else {
        return;
    };
    if let Err(error) = rustix::process::kill_process(pid, rustix::process::Signal::INT) {
        debug!(error = %error, command, "restic had already exited when it was to be stopped.");
    }
}

async fn read_stdout(pipe: ChildStdout, capture: Capture) -> io::Result<Stdout> {
    match capture {
        Capture::Text => read_head(pipe, STDOUT_LIMIT).await.map(Stdout::Text),
        Capture::Backup => read_backup_stream(pipe).await.map(Stdout::Backup),
    }
}

/// Reads `pipe` to its end, keeping the first `limit` bytes.
async fn read_head(mut pipe: ChildStdout, limit: usize) -> io::Result<Tail> {
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

/// Kills `child` and reaps it. Errors mean it had already exited, which is the goal.
async fn kill(child: &mut tokio::process::Child) {
    if let Err(error) = child.start_kill() {
        debug!(error = %error, "restic had already exited when it was to be killed.");
    }
    if let Err(error) = child.wait().await {
        debug!(error = %error, "Waiting for the killed restic failed.");
    }
}
