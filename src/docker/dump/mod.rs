//! Database dumps (SPEC §3.4): [`dump`] runs the engine's dump tool with `docker exec` and
//! streams the result; the command itself, with its credentials, comes from [`dump_command`].
//! [`load_dump`] is the way back: a dump streamed into the server (a restore).
//!
//! The dump is streamed out, never written inside the container, never held in memory. It
//! fails when the tool exits non-zero (with its stderr, secrets scrubbed) or writes nothing.

mod command;
mod load;

use std::fmt;
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncReadExt, ReadBuf};
use tracing::{debug, info};

use super::error::RuntimeError;
use super::exec::ExecSpec;
use super::limits::{Deadline, ExecLimits, interruption};
use super::output::{ExecOutcome, ExecStream};
use super::runtime::Runtime;
use crate::model::{ContainerState, DbKind, Secret};

pub use command::{DumpAttempt, DumpCommand, dump_command, scrub};
pub use load::{LoadError, LoadOptions, LoadReport, load_dump};

/// The first read of a dump, held back to tell "the tool failed before writing anything"
/// (retry or fail early) from a dump that has begun.
const FIRST_CHUNK: usize = 64 * 1024;

/// How long `mariadb-dump --version` may take: it answers at once, unless something is wrong.
const PROBE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30);

/// A dump tool ran and was not happy, or could not even start.
#[derive(Debug, thiserror::Error)]
pub enum DumpError {
    /// Talking to the engine failed.
    #[error(transparent)]
    Runtime(#[from] RuntimeError),
    /// The database container is not running, so nothing can run inside it.
    #[error("cannot dump database container {container}: it is {state}, not running")]
    NotRunning {
        /// The container's name.
        container: String,
        /// Its state.
        state: ContainerState,
    },
    /// The dump tool exited with a non-zero code.
    #[error("{tool} in database container {container} failed with exit code {exit_code}: {stderr}")]
    Failed {
        /// The container's name.
        container: String,
        /// The tool (`pg_dumpall`, …).
        tool: &'static str,
        /// Its exit code.
        exit_code: i64,
        /// The tail of its stderr, with every known secret replaced by `***`.
        stderr: String,
    },
    /// The dump tool succeeded but wrote nothing.
    #[error("{tool} in database container {container} produced no data")]
    Empty {
        /// The container's name.
        container: String,
        /// The tool.
        tool: &'static str,
    },
    /// Reading the dump failed midway.
    #[error("reading the dump of database container {container} failed: {source}")]
    Read {
        /// The container's name.
        container: String,
        /// What went wrong.
        #[source]
        source: io::Error,
    },
}

/// A running dump: read it to the end as an [`AsyncRead`], then call [`DumpStream::finish`],
/// which fails when the tool failed or wrote nothing.
pub struct DumpStream {
    /// The database container's name, for messages.
    container: String,
    /// The tool that runs.
    tool: &'static str,
    /// The first chunk, read early to see that the dump has begun.
    first: Vec<u8>,
    /// How much of `first` was handed on.
    first_offset: usize,
    /// The rest of the output.
    exec: ExecStream,
    /// What to scrub from error messages.
    secrets: Vec<Secret>,
}

/// What a finished dump produced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DumpSummary {
    /// The tool that made it.
    pub tool: &'static str,
    /// The dump's size in bytes.
    pub bytes: u64,
}

impl fmt::Debug for DumpStream {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DumpStream")
            .field("container", &self.container)
            .field("tool", &self.tool)
            .field("exec", &self.exec)
            .finish_non_exhaustive()
    }
}

impl DumpStream {
    /// The tool that runs (`pg_dumpall`, `mysqldump`, …).
    #[must_use]
    pub fn tool(&self) -> &'static str {
        self.tool
    }

    /// The engine's id of the exec, for `inspect_exec`.
    #[must_use]
    pub fn exec_id(&self) -> &str {
        self.exec.exec_id()
    }

    /// Waits for the tool to exit (discarding output not read yet) and checks it succeeded and
    /// wrote something.
    pub async fn finish(self) -> Result<DumpSummary, DumpError> {
        let outcome = self.exec.finish().await?;
        check(&self.container, self.tool, &outcome, &self.secrets)?;
        info!(container = %self.container, tool = self.tool, bytes = outcome.stdout_bytes,
            "Database dump finished.");
        Ok(DumpSummary {
            tool: self.tool,
            bytes: outcome.stdout_bytes,
        })
    }
}

impl AsyncRead for DumpStream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if this.first_offset < this.first.len() {
            let rest = &this.first[this.first_offset..];
            let n = rest.len().min(buf.remaining());
            buf.put_slice(&rest[..n]);
            this.first_offset += n;
            if this.first_offset == this.first.len() {
                this.first = Vec::new();
                this.first_offset = 0;
            }
            return Poll::Ready(Ok(()));
        }
        Pin::new(&mut this.exec).poll_read(cx, buf)
    }
}

fn check(
    container: &str,
    tool: &'static str,
    outcome: &ExecOutcome,
    secrets: &[Secret],
) -> Result<(), DumpError> {
    if outcome.exit_code != 0 {
        return Err(DumpError::Failed {
            container: container.to_owned(),
            tool,
            exit_code: outcome.exit_code,
            stderr: scrub(outcome.stderr.trim(), secrets),
        });
    }
    if outcome.stdout_bytes == 0 {
        return Err(DumpError::Empty {
            container: container.to_owned(),
            tool,
        });
    }
    Ok(())
}

/// Starts dumping the database in `container` (id or name) with the tool for `kind` plus
/// `dump_args`, and returns the dump as a stream once its first bytes arrived. Fails at once
/// when the container is not running, or when the tool fails or ends before writing anything.
/// Nothing but dropping the stream ends it early; jobs use [`dump_within`].
pub async fn dump<R: Runtime>(
    runtime: &R,
    container: &str,
    kind: DbKind,
    dump_args: &[String],
) -> Result<DumpStream, DumpError> {
    dump_within(runtime, container, kind, dump_args, &ExecLimits::default()).await
}

/// [`dump`] bounded by `limits`: once they are reached (before the first byte, while the dump
/// is read, or while its exit code is awaited) the tool is killed inside the container and the
/// dump fails with [`RuntimeError::Interrupted`]. The version probe gets the same limits, and
/// at most [`PROBE_TIMEOUT`].
pub async fn dump_within<R: Runtime>(
    runtime: &R,
    container: &str,
    kind: DbKind,
    dump_args: &[String],
    limits: &ExecLimits,
) -> Result<DumpStream, DumpError> {
    let details = runtime.inspect_container(container).await?;
    let name = if details.name.is_empty() {
        container.to_owned()
    } else {
        details.name.clone()
    };
    if details.state != ContainerState::Running {
        return Err(DumpError::NotRunning {
            container: name,
            state: details.state,
        });
    }
    let mut attempt = DumpAttempt::First;
    if kind == DbKind::Mariadb && !has_mariadb_dump(runtime, &details.id, &name, limits).await? {
        info!(container = %name, "mariadb-dump is missing; dumping with mysqldump.");
        attempt = DumpAttempt::Fallback;
    }
    loop {
        let command = dump_command(kind, &details.env, &details.command, dump_args, attempt);
        debug!(container = %name, command = ?command.cmd, user = ?command.user,
            "Starting a database dump.");
        let spec = ExecSpec {
            user: command.user.clone(),
            env: command.env.clone(),
            ..ExecSpec::new(details.id.clone(), command.cmd.clone())
                .what(format!("{} in container {name}", command.tool))
                .limits(limits.clone())
        };
        let mut exec = runtime.exec(spec).await?;
        let mut first = vec![0; FIRST_CHUNK];
        let read = exec
            .read(&mut first)
            .await
            .map_err(|source| match interruption(&source) {
                Some(interrupted) => {
                    DumpError::Runtime(RuntimeError::Interrupted(interrupted.clone()))
                }
                None => DumpError::Read {
                    container: name.clone(),
                    source,
                },
            })?;
        if read > 0 {
            first.truncate(read);
            return Ok(DumpStream {
                container: name,
                tool: command.tool,
                first,
                first_offset: 0,
                exec,
                secrets: command.secrets,
            });
        }
        let outcome = exec.finish().await?;
        if kind == DbKind::Postgres
            && attempt == DumpAttempt::First
            && outcome.exit_code != 0
            && outcome
                .stderr
                .to_ascii_lowercase()
                .contains("peer authentication failed")
        {
            info!(container = %name,
                "Peer authentication refused the container's user; dumping as user postgres.");
            attempt = DumpAttempt::Fallback;
            continue;
        }
        check(&name, command.tool, &outcome, &command.secrets)?;
        // Unreachable in practice: no output and success is `Empty`, which `check` reported.
        return Err(DumpError::Empty {
            container: name,
            tool: command.tool,
        });
    }
}

/// Whether `mariadb-dump` runs in the container; "not found" (126/127) means use mysqldump.
async fn has_mariadb_dump<R: Runtime>(
    runtime: &R,
    container: &str,
    name: &str,
    limits: &ExecLimits,
) -> Result<bool, DumpError> {
    let probe = ExecSpec::new(
        container,
        vec!["mariadb-dump".to_owned(), "--version".to_owned()],
    )
    .what(format!("mariadb-dump --version in container {name}"))
    .limits(limits.at_most(Deadline::after(PROBE_TIMEOUT, "the probe limit of")));
    let code = runtime.exec_capture(probe, |_| {}).await?;
    Ok(!matches!(code, 126 | 127))
}
