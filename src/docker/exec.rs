//! `docker exec` with streamed output: dumps and hooks run inside their containers. An
//! [`ExecSpec`] says what to run; [`exec_stream`] hands back its stdout as an [`ExecStream`],
//! [`exec_lines`] delivers its output line by line.
//!
//! Execs always run without a TTY (DEPENDENCIES.md, bollard pitfall 5): a TTY would buffer
//! until newline and turn `\n` into `\r\n`, corrupting binary dumps. Without one the engine
//! multiplexes stdout and stderr in binary-safe frames (32 KB at most), which are handed on
//! one at a time: a dump never sits in memory as a whole.
//!
//! Docker cannot kill an exec. So every exec carries a random token in its environment
//! (`MARINA_EXEC`, inherited by its children), and killing it is a second exec, as root, that
//! signals every process whose environment holds the token ([`KILL_SCRIPT`]). It runs when an
//! exec's limits are reached and when its stream or future is dropped before it exited.

use std::fmt;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use bollard::Docker;
use bollard::container::LogOutput;
use bollard::exec::{CreateExecOptions, StartExecOptions, StartExecResults};
use futures::{Stream, StreamExt};
use tokio::io::{AsyncRead, AsyncWriteExt, ReadBuf};

use super::error::{Result, RuntimeError, container_error};
use super::limits::{ExecInterrupted, ExecKill, ExecLimits, KillOnDrop, KillOutcome};
use super::lines::{LineSplitter, OutputLine, OutputStream};
use super::output::{ExecStatus, ExecStream, StatusProbe, StderrTail, poll_exit_code};
use crate::model::Secret;

/// The multiplexed output of an exec or an attached container, as bollard delivers it.
pub(super) type Frames =
    Pin<Box<dyn Stream<Item = Result<LogOutput, bollard::errors::Error>> + Send>>;

/// The environment variable that marks every process of one exec (children inherit it).
const TOKEN_VAR: &str = "MARINA_EXEC";

/// Kills every process whose environment holds `MARINA_EXEC=$1`: `TERM`, up to five seconds to
/// exit, then `KILL`. The token is only on this script's command line, never in its (or its
/// `grep`'s) environment, so it does not find itself.
const KILL_SCRIPT: &str = r#"t="MARINA_EXEC=$1"
find_them() {
  found=""
  for p in $1; do
    [ "$p" = "$$" ] && continue
    grep -qsa "$t" "/proc/$p/environ" && found="$found $p"
  done
}
find_them "$(cd /proc && echo [0-9]*)"
[ -z "$found" ] && exit 0
kill -TERM $found 2>/dev/null
for i in 1 2 3 4 5; do
  sleep 1
  find_them "$found"
  [ -z "$found" ] && exit 0
done
kill -KILL $found 2>/dev/null
exit 0
"#;

/// How long the kill itself may take (the script gives processes five seconds).
const KILL_TIMEOUT: Duration = Duration::from_secs(30);

/// A fresh random token for one exec.
fn exec_token() -> String {
    format!("{:016x}{:016x}", fastrand::u64(..), fastrand::u64(..))
}

/// A command to run in a running container.
#[derive(Debug)]
pub struct ExecSpec {
    /// Container id or name.
    pub container: String,
    /// The command and its arguments; never put a secret here (the engine shows it to anyone
    /// who can inspect the exec): pass it in `env`.
    pub cmd: Vec<String>,
    /// `user`, `user:group`, `uid` or `uid:gid`; `None` runs as the container's user.
    pub user: Option<String>,
    /// Extra environment on top of the container's own.
    pub env: Vec<(String, Secret)>,
    /// Bytes fed to the command's stdin, which is closed at their end; `None` attaches none.
    pub stdin: Option<ExecStdin>,
    /// What runs, for messages (`pre-hook in container app-1`); `None` says "a command in
    /// container …".
    pub what: Option<String>,
    /// When the command is killed inside the container if it has not ended.
    pub limits: ExecLimits,
}

impl ExecSpec {
    /// Runs `cmd` in `container` as its default user, with its own environment.
    #[must_use]
    pub fn new(container: impl Into<String>, cmd: Vec<String>) -> Self {
        Self {
            container: container.into(),
            cmd,
            user: None,
            env: Vec::new(),
            stdin: None,
            what: None,
            limits: ExecLimits::default(),
        }
    }

    /// Names what runs, for messages.
    #[must_use]
    pub fn what(mut self, what: impl Into<String>) -> Self {
        self.what = Some(what.into());
        self
    }

    /// Kills the command inside the container when `limits` are reached.
    #[must_use]
    pub fn limits(mut self, limits: ExecLimits) -> Self {
        self.limits = limits;
        self
    }

    /// What runs, for messages.
    #[must_use]
    pub fn description(&self) -> String {
        self.what
            .clone()
            .unwrap_or_else(|| format!("a command in container {}", self.container))
    }

    /// Runs as `user` instead.
    #[must_use]
    pub fn user(mut self, user: impl Into<String>) -> Self {
        self.user = Some(user.into());
        self
    }

    /// Adds an environment variable.
    #[must_use]
    pub fn env(mut self, name: impl Into<String>, value: Secret) -> Self {
        self.env.push((name.into(), value));
        self
    }

    /// Feeds `input` to the command's stdin.
    #[must_use]
    pub fn stdin(mut self, input: impl AsyncRead + Send + Unpin + 'static) -> Self {
        self.stdin = Some(ExecStdin(Box::new(input)));
        self
    }
}

/// What an exec reads on stdin.
pub struct ExecStdin(pub Box<dyn AsyncRead + Send + Unpin>);

impl fmt::Debug for ExecStdin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ExecStdin(..)")
    }
}

/// Creates and starts an exec marked with `token`, returning its id and output frames.
async fn start_exec(
    docker: &Docker,
    spec: ExecSpec,
    token: Option<&str>,
) -> Result<(String, Frames)> {
    let container = spec.container;
    let refused = |action, source| container_error(action, &container, source);
    // Secrets are only in `env`, which the engine does not show in `inspect_exec`.
    let env: Vec<String> = spec
        .env
        .iter()
        .map(|(name, value)| format!("{name}={}", value.expose()))
        .chain(token.map(|token| format!("{TOKEN_VAR}={token}")))
        .collect();
    let options = CreateExecOptions {
        attach_stdin: Some(spec.stdin.is_some()),
        attach_stdout: Some(true),
        attach_stderr: Some(true),
        tty: Some(false),
        env: Some(env),
        cmd: Some(spec.cmd),
        user: spec.user,
        ..CreateExecOptions::default()
    };
    let created = docker
        .create_exec(&container, options)
        .await
        .map_err(|e| refused("create an exec in", e))?;
    let start = StartExecOptions {
        detach: false,
        tty: false,
        output_capacity: None,
    };
    let started = docker
        .start_exec(&created.id, Some(start))
        .await
        .map_err(|e| refused("start an exec in", e))?;
    let StartExecResults::Attached { output, input } = started else {
        // Only a detached start answers without output, and this one was not detached.
        return Err(refused(
            "attach to an exec in",
            bollard::errors::Error::DockerStreamError {
                error: "the engine started the exec detached".to_owned(),
            },
        ));
    };
    if let Some(ExecStdin(mut stdin)) = spec.stdin {
        let exec_id = created.id.clone();
        tokio::spawn(async move {
            let mut input = input;
            // Closing our end is what tells the process its stdin has ended.
            let fed = tokio::io::copy(&mut stdin, &mut input).await;
            let closed = input.shutdown().await;
            if let Err(error) = fed.and(closed) {
                tracing::warn!(exec = %exec_id, error = %error,
                    "Feeding stdin to a command in a container failed.");
            }
        });
    }
    Ok((created.id, output))
}

/// How to kill the exec marked `token` in `container`.
fn killer(docker: &Docker, container: String, token: String) -> ExecKill {
    let docker = docker.clone();
    Arc::new(move || {
        let docker = docker.clone();
        let container = container.clone();
        let token = token.clone();
        Box::pin(async move { kill_marked(&docker, &container, &token).await })
    })
}

/// Runs [`KILL_SCRIPT`] as root in `container` for `token`.
async fn kill_marked(docker: &Docker, container: &str, token: &str) -> KillOutcome {
    let spec = ExecSpec::new(
        container,
        vec![
            "sh".to_owned(),
            "-c".to_owned(),
            KILL_SCRIPT.to_owned(),
            "marina-kill".to_owned(),
            token.to_owned(),
        ],
    )
    .user("0");
    let (exec_id, frames) = match start_exec(docker, spec, None).await {
        Ok(started) => started,
        Err(RuntimeError::NoSuchContainer { .. }) => return KillOutcome::ContainerGone,
        Err(RuntimeError::Container { source, .. }) if is_conflict(&source) => {
            // 409: the container is not running, so neither is anything in it.
            return KillOutcome::ContainerGone;
        }
        Err(RuntimeError::Container { source, .. }) if no_shell(&source.to_string()) => {
            return KillOutcome::NoShell;
        }
        Err(e) => return KillOutcome::Failed(e.to_string()),
    };
    let mut output = String::new();
    let ran = async {
        pump_lines(frames, &mut |line: OutputLine| {
            if output.len() < 1024 {
                output.push_str(&line.text);
                output.push(' ');
            }
        })
        .await
        .map_err(|e| e.to_string())?;
        poll_exit_code(&exec_id, || inspect_exec(docker.clone(), exec_id.clone()))
            .await
            .map_err(|e| e.to_string())
    };
    let code = match tokio::time::timeout(KILL_TIMEOUT, ran).await {
        Ok(Ok(code)) => code,
        Ok(Err(e)) => return KillOutcome::Failed(format!("the kill command failed: {e}")),
        Err(_) => {
            return KillOutcome::Failed(format!(
                "the kill command did not finish within {}",
                humantime::format_duration(KILL_TIMEOUT)
            ));
        }
    };
    match code {
        0 => KillOutcome::Killed,
        126 | 127 => KillOutcome::NoShell,
        _ if no_shell(&output) => KillOutcome::NoShell,
        code => KillOutcome::Failed(format!(
            "the kill command exited with code {code}: {}",
            output.trim()
        )),
    }
}

/// `Runtime::exec` on the engine.
pub(super) async fn exec_stream(docker: &Docker, spec: ExecSpec) -> Result<ExecStream> {
    let container = spec.container.clone();
    let what = spec.description();
    let limits = spec.limits.clone();
    tracing::debug!(container = %container, command = ?spec.cmd, user = ?spec.user,
        "Starting a command in a container.");
    let token = exec_token();
    let (exec_id, frames) = start_exec(docker, spec, Some(&token)).await?;
    let kill = killer(docker, container.clone(), token);
    let stderr = StderrTail::new();
    let reader = FrameReader {
        frames,
        pending: None,
        offset: 0,
        stderr: stderr.clone(),
    };
    let probe: StatusProbe = {
        let docker = docker.clone();
        let exec_id = exec_id.clone();
        Arc::new(move || Box::pin(inspect_exec(docker.clone(), exec_id.clone())))
    };
    Ok(
        ExecStream::from_parts(exec_id, container, reader, stderr, probe)
            .with_control(what, &limits, kill),
    )
}

/// `Runtime::exec_capture` on the engine.
pub(super) async fn exec_lines<F>(docker: &Docker, spec: ExecSpec, mut on_line: F) -> Result<i64>
where
    F: FnMut(OutputLine) + Send,
{
    let container = spec.container.clone();
    let what = spec.description();
    let limits = spec.limits.clone();
    tracing::debug!(container = %container, command = ?spec.cmd, user = ?spec.user,
        "Running a command in a container.");
    let token = exec_token();
    let (exec_id, frames) = start_exec(docker, spec, Some(&token)).await?;
    let kill = killer(docker, container.clone(), token);
    // Dropping this future (a cancelled caller) kills the command too.
    let mut guard = KillOnDrop::new(Arc::clone(&kill), what.clone());
    let ran = async {
        pump_lines(frames, &mut on_line)
            .await
            .map_err(|source| RuntimeError::Output {
                container: container.clone(),
                source: io::Error::other(source),
            })?;
        // The output can end before the process does (it closed stdout): the limits
        // still hold while the exit code is awaited.
        poll_exit_code(&exec_id, || inspect_exec(docker.clone(), exec_id.clone())).await
    };
    let result = tokio::select! {
        result = ran => result,
        interruption = limits.reached() => {
            let kill = kill().await;
            let interrupted = ExecInterrupted { what, interruption, kill };
            tracing::warn!(container = %container, kill_worked = interrupted.kill.is_gone(), "{interrupted}.");
            Err(RuntimeError::Interrupted(interrupted))
        }
    };
    if matches!(result, Ok(_) | Err(RuntimeError::Interrupted(_))) {
        // It exited, or the kill already ran.
        guard.disarm();
    }
    result
}

/// Reads an exec's status.
pub(super) async fn inspect_exec(docker: Docker, exec_id: String) -> Result<ExecStatus> {
    let inspected =
        docker
            .inspect_exec(&exec_id)
            .await
            .map_err(|source| RuntimeError::InspectExec {
                exec_id: exec_id.clone(),
                source,
            })?;
    let process = inspected.process_config.unwrap_or_default();
    let command = process
        .entrypoint
        .into_iter()
        .chain(process.arguments.unwrap_or_default())
        .collect();
    Ok(ExecStatus {
        running: inspected.running.unwrap_or(false),
        exit_code: inspected.exit_code,
        command,
        user: process.user.filter(|u| !u.is_empty()),
    })
}

/// Delivers every line of multiplexed output to `on_line`, stdout and stderr each split on
/// their own, until the output ends.
pub(super) async fn pump_lines(
    mut frames: Frames,
    on_line: &mut impl FnMut(OutputLine),
) -> Result<(), bollard::errors::Error> {
    let mut stdout = LineSplitter::new(OutputStream::Stdout);
    let mut stderr = LineSplitter::new(OutputStream::Stderr);
    let mut result = Ok(());
    while let Some(frame) = frames.next().await {
        match frame {
            Ok(LogOutput::StdOut { message } | LogOutput::Console { message }) => {
                stdout.push(&message, on_line);
            }
            Ok(LogOutput::StdErr { message }) => stderr.push(&message, on_line),
            Ok(LogOutput::StdIn { .. }) => {}
            Err(error) => {
                result = Err(error);
                break;
            }
        }
    }
    stdout.finish(on_line);
    stderr.finish(on_line);
    result
}

/// An exec's stdout as an [`AsyncRead`]: hands on one stdout frame at a time and moves stderr
/// frames into the tail as they pass. Reading at the reader's pace is the backpressure: the
/// engine stops reading from the process when Marina stops reading from the socket.
struct FrameReader {
    /// The multiplexed frames.
    frames: Frames,
    /// A stdout frame not yet handed on completely.
    pending: Option<LogOutput>,
    /// How much of `pending` was handed on.
    offset: usize,
    /// Where stderr goes.
    stderr: StderrTail,
}

impl AsyncRead for FrameReader {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        loop {
            if let Some(frame) = &this.pending {
                let bytes = &frame.as_ref()[this.offset..];
                let n = bytes.len().min(buf.remaining());
                buf.put_slice(&bytes[..n]);
                this.offset += n;
                if this.offset == frame.as_ref().len() {
                    this.pending = None;
                    this.offset = 0;
                }
                if n > 0 || buf.remaining() == 0 {
                    return Poll::Ready(Ok(()));
                }
            }
            match this.frames.as_mut().poll_next(cx) {
                Poll::Pending => return Poll::Pending,
                // End of output: a read of zero bytes.
                Poll::Ready(None) => return Poll::Ready(Ok(())),
                Poll::Ready(Some(Err(error))) => {
                    return Poll::Ready(Err(io::Error::other(error)));
                }
                Poll::Ready(Some(Ok(frame))) => match frame {
                    LogOutput::StdOut { .. } | LogOutput::Console { .. } => {
                        if !frame.as_ref().is_empty() {
                            this.pending = Some(frame);
                            this.offset = 0;
                        }
                    }
                    LogOutput::StdErr { message } => this.stderr.push(&message),
                    LogOutput::StdIn { .. } => {}
                },
            }
        }
    }
}

/// Whether the engine answered 409 Conflict (e.g. the container is not running).
fn is_conflict(error: &bollard::errors::Error) -> bool {
    matches!(
        error,
        bollard::errors::Error::DockerResponseServerError {
            status_code: 409,
            ..
        }
    )
}

/// Whether an engine or runtime message says the command (`sh`) does not exist.
fn no_shell(message: &str) -> bool {
    let message = message.to_ascii_lowercase();
    message.contains("executable file not found") || message.contains("no such file or directory")
}
