//! Loading a dump back into a database container — the counterpart of [`dump`](super::dump):
//! [`load_dump`] takes the dump as a stream (from `restic dump`, say) and makes the server
//! hold what it held when the dump was made.
//!
//! A load *replaces* what the server holds, on the running source container (in place) as on
//! a freshly started clone of it:
//!
//! - postgres: every database but the templates is dropped, `postgres` is recreated empty,
//!   then the `pg_dumpall` SQL is piped into `psql`. Roles are not dropped (a role that
//!   exists makes `CREATE ROLE` fail harmlessly and the `ALTER ROLE` after it applies), so a
//!   role created after the dump stays. `template1` is left as it is: objects someone added
//!   to it exist already when the dump creates them again, which fails the load;
//! - mariadb / mysql: every database but `mysql`, `information_schema`,
//!   `performance_schema` and `sys` is dropped, then the dump is piped into the client
//!   (`mariadb`, else `mysql`). The dump of `mysql` replaces users and passwords, and the
//!   privileges are reloaded at its end: that is what a full restore is;
//! - mongo: `mongorestore --archive --drop`, which replaces the collections the dump holds
//!   and leaves others alone;
//! - redis: there is no load command: the RDB file replaces the server's own while the
//!   container is stopped (see `redis`), and the server reads it as it starts.
//!
//! Credentials come from the container's environment exactly as the dump's do (see
//! `command`). Before anything is changed, the first bytes of the dump are read (a dump that
//! cannot be read, or is empty, changes nothing) and the server must accept connections: a
//! freshly created container is still initialising, and the wait for it is bounded.
//!
//! The parts: `command` builds the commands, `feed` pipes the dump into a client, `verdict`
//! sorts the errors a client prints, `piped` loads the SQL engines and mongo, `redis` replaces
//! the RDB file; this file holds the entry point and what every kind shares.

mod command;
mod feed;
mod piped;
mod redis;
mod verdict;

use std::collections::BTreeSet;
use std::fmt;
use std::io;
use std::path::PathBuf;
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt};
use tokio_util::sync::CancellationToken;
use tracing::{debug, info};

use super::DumpCommand;
use super::command::scrub;
use crate::clock::Clock;
use crate::docker::{
    ContainerDetails, Deadline, ExecInterrupted, ExecLimits, ExecSpec, Interruption, OutputLine,
    OutputStream, Runtime, RuntimeError,
};
use crate::model::{ContainerState, DbKind};

/// How much of the dump is read before anything is changed: enough to see that the dump
/// streams and what it begins with.
const HEAD: usize = 64 * 1024;
/// How long a short step (a listing, the reset, a restart check) may take.
const STEP_LIMIT: StepLimit = (Duration::from_mins(5), "the limit for one restore step of");
/// How long one probe (for tools, for readiness) may take; a probe that takes longer is
/// tried again.
const PROBE_LIMIT: StepLimit = (Duration::from_secs(15), "the probe limit of");
/// The pause between readiness probes.
const PROBE_PAUSE: Duration = Duration::from_millis(500);
/// How long a server must have answered on its socket alone before it counts as ready (see
/// `command::LOCAL_ONLY`).
const LOCAL_ONLY_SETTLE: Duration = Duration::from_secs(10);
/// Lines of a command's stdout kept for parsing (listings are short; this bounds a surprise).
const STDOUT_LINES: usize = 100_000;
/// Characters of a command's stderr kept for its error message.
const STDERR_CHARS: usize = 8 * 1024;

/// How a load is bounded and where it may keep what it must.
#[derive(Debug, Clone)]
pub struct LoadOptions {
    /// What stops the load: the job's cancellation and a deadline for the whole of it. Every
    /// command the load runs in the container is killed when they are reached.
    pub limits: ExecLimits,
    /// How long to wait for the server to accept connections (a fresh container initialises
    /// its data directory first).
    pub ready_within: Duration,
    /// How long `docker stop` gives a redis server to shut down before killing it.
    pub stop_timeout: Duration,
    /// Where a redis RDB is kept on Marina's side between reading it and uploading it into
    /// the stopped container (an upload must know its size up front). `stagingDir` is a good
    /// place; the file is removed however the load ends.
    pub spool_dir: PathBuf,
}

impl LoadOptions {
    /// Options for a job cancelled by `cancel`, with no deadline of its own, a two-minute
    /// readiness wait and the system's temporary directory as the spool.
    #[must_use]
    pub fn new(cancel: CancellationToken) -> Self {
        Self {
            limits: ExecLimits {
                deadline: None,
                cancel: Some(cancel),
            },
            ready_within: Duration::from_mins(2),
            stop_timeout: Duration::from_mins(1),
            spool_dir: std::env::temp_dir(),
        }
    }
}

impl Default for LoadOptions {
    fn default() -> Self {
        Self::new(CancellationToken::new())
    }
}

/// What a load did, for the job log.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LoadReport {
    /// The tool that loaded the dump (`psql`, `mariadb`, `mongorestore`, …; for redis, the
    /// engine's archive upload: `upload`).
    pub tool: &'static str,
    /// The databases dropped before the dump was loaded.
    pub dropped: Vec<String>,
    /// The databases emptied (recreated) before the dump was loaded.
    pub emptied: Vec<String>,
    /// Bytes of the dump fed to the server.
    pub bytes: u64,
    /// How many errors the client reported that are expected and harmless (see `verdict`).
    pub ignored_errors: u64,
    /// The first few of them.
    pub ignored: Vec<String>,
    /// redis: the keys the server holds after the load.
    pub keys: Option<u64>,
}

impl fmt::Display for LoadReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} bytes loaded with {}", self.bytes, self.tool)?;
        if !self.dropped.is_empty() {
            write!(f, "; dropped first: {}", self.dropped.join(", "))?;
        }
        if !self.emptied.is_empty() {
            write!(f, "; emptied first: {}", self.emptied.join(", "))?;
        }
        if let Some(keys) = self.keys {
            write!(f, "; the server holds {keys} keys")?;
        }
        if self.ignored_errors > 0 {
            write!(
                f,
                "; {} expected error(s) ignored ({})",
                self.ignored_errors,
                self.ignored.join("; ")
            )?;
        }
        Ok(())
    }
}

/// Why a load failed. Every message names the container and says whether its data was
/// changed and what to do.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// Talking to the engine failed, or a command was stopped by the load's limits.
    #[error(transparent)]
    Runtime(#[from] RuntimeError),
    /// The container does not run, so nothing can run inside it.
    #[error(
        "cannot load a dump into database container {container}: it is {state}, not running; start it first"
    )]
    NotRunning {
        /// The container.
        container: String,
        /// Its state.
        state: ContainerState,
    },
    /// The dump could not be read before anything was changed.
    #[error(
        "the dump for database container {container} could not be read: {source}; nothing was changed"
    )]
    DumpUnreadable {
        /// The container.
        container: String,
        /// What went wrong.
        #[source]
        source: io::Error,
    },
    /// The dump holds nothing.
    #[error("the dump for database container {container} is empty; nothing was changed")]
    EmptyDump {
        /// The container.
        container: String,
    },
    /// The dump is not what the engine loads.
    #[error(
        "the dump for database container {container} is not a {kind} dump ({reason}); nothing was changed"
    )]
    NotADump {
        /// The container.
        container: String,
        /// The kind it was to be loaded as.
        kind: DbKind,
        /// What is wrong with it.
        reason: String,
    },
    /// A tool the load needs is not in the container.
    #[error(
        "database container {container} has no {tool}; loading a {kind} dump runs the server's own client tools inside its container"
    )]
    MissingTool {
        /// The container.
        container: String,
        /// The tool.
        tool: String,
        /// The kind.
        kind: DbKind,
    },
    /// The server did not accept connections in time.
    #[error(
        "the {kind} server in container {container} did not accept connections within {}; nothing was changed. Check its logs (docker logs {container}); {last}",
        humantime::format_duration(*.waited)
    )]
    NotReady {
        /// The container.
        container: String,
        /// The kind.
        kind: DbKind,
        /// How long the load waited.
        waited: Duration,
        /// What the last probe said.
        last: String,
    },
    /// The load refuses to go on: what it would do would not restore the dump, or would harm
    /// the container. Nothing was changed.
    #[error("cannot load the dump into database container {container}: {reason}")]
    Refused {
        /// The container.
        container: String,
        /// Why, and what to do.
        reason: String,
    },
    /// A step before the load failed.
    #[error(
        "cannot {step} in database container {container}: {tool} failed with exit code {exit_code}: {stderr}"
    )]
    Step {
        /// The container.
        container: String,
        /// What was being done, with what it means for the data (`list the databases to
        /// replace (nothing was changed)`, …).
        step: String,
        /// The tool.
        tool: &'static str,
        /// Its exit code.
        exit_code: i64,
        /// The end of its stderr, secrets scrubbed.
        stderr: String,
    },
    /// The dump failed while it was being loaded.
    #[error(
        "the dump broke off after {bytes} bytes while {tool} loaded it into database container {container}: {source}; {tool} was stopped, and the server holds only part of the dump: restore again"
    )]
    DumpBroke {
        /// The container.
        container: String,
        /// The tool.
        tool: &'static str,
        /// Bytes fed before it broke.
        bytes: u64,
        /// What went wrong.
        #[source]
        source: io::Error,
    },
    /// The client failed.
    #[error(
        "{tool} failed with exit code {exit_code} loading the dump into database container {container} after {bytes} bytes: {message}; the server holds only part of the dump"
    )]
    Failed {
        /// The container.
        container: String,
        /// The tool.
        tool: &'static str,
        /// Its exit code.
        exit_code: i64,
        /// Bytes fed.
        bytes: u64,
        /// Its errors or the end of its stderr, secrets scrubbed.
        message: String,
    },
    /// The client loaded the dump but reported errors that are not the expected ones.
    #[error(
        "loading the dump into database container {container} with {tool} reported {count} SQL error(s){}: {}; the server holds what the rest of the dump created. Fix the cause and restore again",
        ignored_note(*.ignored),
        .errors.join("; ")
    )]
    SqlErrors {
        /// The container.
        container: String,
        /// The tool.
        tool: &'static str,
        /// How many errors.
        count: u64,
        /// The first few.
        errors: Vec<String>,
        /// How many expected errors were ignored besides.
        ignored: u64,
    },
    /// The client exited successfully without reading the whole dump.
    #[error(
        "{tool} in database container {container} stopped reading the dump after {bytes} bytes, before its end; the server holds only part of the dump"
    )]
    Unfinished {
        /// The container.
        container: String,
        /// The tool.
        tool: &'static str,
        /// Bytes fed.
        bytes: u64,
    },
    /// Replacing a redis server's RDB file went wrong after the server was stopped.
    #[error("restoring the RDB file of redis container {container} failed: {detail}")]
    Redis {
        /// The container.
        container: String,
        /// What happened, and the state the server was left in.
        detail: String,
    },
    /// The load was stopped (job timeout or shutdown) while it waited, before anything was
    /// changed.
    #[error(
        "the load into database container {container} was stopped before anything was changed: {reason}"
    )]
    Stopped {
        /// The container.
        container: String,
        /// Why.
        reason: String,
    },
    /// Keeping the RDB file on Marina's side failed (nothing was changed).
    #[error(
        "cannot keep the RDB file for redis container {container} in {} while it is restored: {source}; nothing was changed. Check the free space there",
        .path.display()
    )]
    Spool {
        /// The container.
        container: String,
        /// The spool file.
        path: PathBuf,
        /// What went wrong.
        #[source]
        source: io::Error,
    },
}

/// ` (besides N expected ones)`, or nothing.
fn ignored_note(ignored: u64) -> String {
    if ignored == 0 {
        String::new()
    } else {
        format!(" (besides {ignored} expected ones that were ignored)")
    }
}

/// Loads `dump` into the database server of `container` (id or name), which must be
/// running, replacing what it holds (see the module docs for what each kind does).
///
/// Nothing is changed until the first bytes of the dump have been read and the server
/// accepts connections; errors say whether the data was changed. The load is bounded by
/// `options.limits`: reaching them kills what runs in the container.
pub async fn load_dump<R, D>(
    runtime: &R,
    container: &str,
    kind: DbKind,
    mut dump: D,
    options: &LoadOptions,
) -> Result<LoadReport, LoadError>
where
    R: Runtime,
    D: AsyncRead + Send + Unpin,
{
    let details = runtime.inspect_container(container).await?;
    let name = if details.name.is_empty() {
        container.to_owned()
    } else {
        details.name.clone()
    };
    if details.state != ContainerState::Running {
        return Err(LoadError::NotRunning {
            container: name,
            state: details.state,
        });
    }
    let head = read_head(&mut dump)
        .await
        .map_err(|source| LoadError::DumpUnreadable {
            container: name.clone(),
            source,
        })?;
    if head.is_empty() {
        return Err(LoadError::EmptyDump { container: name });
    }
    let target = Target {
        runtime,
        name,
        kind,
        details,
        options,
    };
    info!(container = %target.name, kind = %kind, "Loading a dump into the database container.");
    let report = match kind {
        DbKind::Postgres => piped::postgres(&target, head, &mut dump).await?,
        DbKind::Mysql | DbKind::Mariadb => piped::mysql(&target, head, &mut dump).await?,
        DbKind::Mongo => piped::mongo(&target, head, &mut dump).await?,
        DbKind::Redis => redis::replace_rdb(&target, head, &mut dump).await?,
    };
    info!(container = %target.name, kind = %kind, report = %report, "The dump was loaded.");
    Ok(report)
}

/// Reads up to [`HEAD`] bytes (fewer only at the end of the dump).
async fn read_head<D: AsyncRead + Unpin>(dump: &mut D) -> io::Result<Vec<u8>> {
    let mut head = vec![0_u8; HEAD];
    let mut filled = 0;
    while filled < HEAD {
        match dump.read(&mut head[filled..]).await {
            Ok(0) => break,
            Ok(count) => filled += count,
            Err(error) if error.kind() == io::ErrorKind::Interrupted => {}
            Err(error) => return Err(error),
        }
    }
    head.truncate(filled);
    Ok(head)
}

/// The container a load works on, and what every step needs.
struct Target<'a, R> {
    runtime: &'a R,
    /// Its name, for messages.
    name: String,
    /// The engine.
    kind: DbKind,
    /// Its id, environment and command line (where the credentials come from).
    details: ContainerDetails,
    /// The load's bounds.
    options: &'a LoadOptions,
}

/// What a short command printed and how it exited.
#[derive(Debug, Default)]
struct Captured {
    /// Its exit code.
    code: i64,
    /// Its stdout lines (the first [`STDOUT_LINES`]).
    stdout: Vec<String>,
    /// The end of its stderr, secrets scrubbed.
    stderr: String,
}

impl<R: Runtime> Target<'_, R> {
    /// The exec of `command` with the load's limits (at most `limit`), named for messages.
    fn spec(&self, command: &DumpCommand, limit: Option<StepLimit>) -> ExecSpec {
        let limits = match limit {
            Some((limit, setting)) => self.options.limits.at_most(Deadline::after(limit, setting)),
            None => self.options.limits.clone(),
        };
        ExecSpec {
            user: command.user.clone(),
            env: command.env.clone(),
            ..ExecSpec::new(self.details.id.clone(), command.cmd.clone())
                .what(format!("{} in container {}", command.tool, self.name))
                .limits(limits)
        }
    }

    /// Runs a short command (fed `stdin` when given) and keeps what it printed.
    async fn capture(
        &self,
        command: &DumpCommand,
        stdin: Option<String>,
        limit: StepLimit,
    ) -> Result<Captured, RuntimeError> {
        let mut spec = self.spec(command, Some(limit));
        if let Some(input) = stdin {
            spec = spec.stdin(io::Cursor::new(input.into_bytes()));
        }
        let mut stdout = Vec::new();
        let mut stderr = String::new();
        let code = self
            .runtime
            .exec_capture(spec, |line: OutputLine| match line.stream {
                OutputStream::Stdout => {
                    if stdout.len() < STDOUT_LINES {
                        stdout.push(line.text);
                    }
                }
                OutputStream::Stderr => {
                    stderr.push_str(&line.text);
                    stderr.push('\n');
                    if stderr.len() > 2 * STDERR_CHARS {
                        let cut = stderr.len() - STDERR_CHARS;
                        let cut = (cut..stderr.len())
                            .find(|&i| stderr.is_char_boundary(i))
                            .unwrap_or(stderr.len());
                        stderr.drain(..cut);
                    }
                }
            })
            .await?;
        Ok(Captured {
            code,
            stdout,
            stderr: scrub(stderr.trim(), &command.secrets),
        })
    }

    /// Which of `tools` the container has.
    async fn tools(&self, tools: &[&str]) -> Result<BTreeSet<String>, LoadError> {
        let probe = DumpCommand {
            tool: "sh",
            cmd: command::tools_probe(tools),
            env: Vec::new(),
            user: None,
            secrets: Vec::new(),
        };
        let found = self.capture(&probe, None, PROBE_LIMIT).await?;
        match found.code {
            0 => Ok(found.stdout.into_iter().collect()),
            126 | 127 => Err(self.missing("sh")),
            code => Err(self.step_failed(
                "look for the database's tools (nothing was changed)",
                &probe,
                code,
                found.stderr,
            )),
        }
    }

    /// The first of `candidates` the container has.
    fn pick(
        &self,
        found: &BTreeSet<String>,
        candidates: &[&'static str],
    ) -> Result<&'static str, LoadError> {
        candidates
            .iter()
            .find(|tool| found.contains(**tool))
            .copied()
            .ok_or_else(|| self.missing(&candidates.join(" or ")))
    }

    fn missing(&self, tool: &str) -> LoadError {
        LoadError::MissingTool {
            container: self.name.clone(),
            tool: tool.to_owned(),
            kind: self.kind,
        }
    }

    fn step_failed(
        &self,
        step: &str,
        command: &DumpCommand,
        exit_code: i64,
        stderr: String,
    ) -> LoadError {
        LoadError::Step {
            container: self.name.clone(),
            step: step.to_owned(),
            tool: command.tool,
            exit_code,
            stderr,
        }
    }

    /// Runs `probe` until the server answers (exit code 0, or [`command::LOCAL_ONLY`] for
    /// [`LOCAL_ONLY_SETTLE`] on end), for at most `options.ready_within`.
    async fn wait_ready(&self, probe: &DumpCommand) -> Result<(), LoadError> {
        let waited = self.options.ready_within;
        let deadline = Deadline::after(waited, "the readiness wait");
        let mut local_since: Option<tokio::time::Instant> = None;
        let mut last = String::from("it did not answer");
        loop {
            match self.capture(probe, None, PROBE_LIMIT).await {
                Ok(answer) => match answer.code {
                    0 => return Ok(()),
                    command::LOCAL_ONLY => {
                        let since = *local_since.get_or_insert_with(|| Clock::System.instant());
                        if Clock::System.instant() >= since + LOCAL_ONLY_SETTLE {
                            debug!(container = %self.name, "The server answers on its local socket only; going on.");
                            return Ok(());
                        }
                        "it answers on its local socket but not yet over TCP (still initialising?)"
                            .clone_into(&mut last);
                    }
                    command::REFUSED => {
                        return Err(LoadError::Refused {
                            container: self.name.clone(),
                            reason: format!(
                                "the server refuses the credentials from the container's environment ({}); nothing was changed",
                                scrub(&answer.stdout.join(" "), &probe.secrets)
                            ),
                        });
                    }
                    126 | 127 => return Err(self.missing(probe.tool)),
                    _ => {
                        local_since = None;
                        last = format!(
                            "the last answer was: {}",
                            scrub(
                                non_empty(&answer.stdout.join(" "), &answer.stderr),
                                &probe.secrets
                            )
                        );
                    }
                },
                Err(RuntimeError::Interrupted(interrupted)) if !probe_timed_out(&interrupted) => {
                    return Err(RuntimeError::Interrupted(interrupted).into());
                }
                Err(error) => {
                    self.check_running().await?;
                    last = format!("the last probe failed: {error}");
                }
            }
            if Clock::System.instant() >= deadline.at {
                return Err(LoadError::NotReady {
                    container: self.name.clone(),
                    kind: self.kind,
                    waited,
                    last,
                });
            }
            tokio::select! {
                () = tokio::time::sleep(PROBE_PAUSE) => {}
                interruption = self.options.limits.reached() => {
                    return Err(LoadError::Stopped {
                        container: self.name.clone(),
                        reason: describe(interruption),
                    });
                }
            }
        }
    }

    /// Fails when the container no longer runs (it exited while it was waited for).
    async fn check_running(&self) -> Result<(), LoadError> {
        let details = self.runtime.inspect_container(&self.details.id).await?;
        if details.state == ContainerState::Running {
            Ok(())
        } else {
            Err(LoadError::NotRunning {
                container: self.name.clone(),
                state: details.state,
            })
        }
    }
}

/// A limit for one command: how long, and the words that name it in messages.
type StepLimit = (Duration, &'static str);

/// Whether a probe was killed by its own [`PROBE_LIMIT`] (try again) rather than by the
/// load's limits (stop).
fn probe_timed_out(interrupted: &ExecInterrupted) -> bool {
    matches!(interrupted.interruption, Interruption::Deadline(deadline) if deadline.setting == PROBE_LIMIT.1)
}

/// `first` unless empty, else `second`.
fn non_empty<'a>(first: &'a str, second: &'a str) -> &'a str {
    if first.trim().is_empty() {
        second
    } else {
        first
    }
}

/// Why a load was stopped, in words.
fn describe(interruption: Interruption) -> String {
    match interruption {
        Interruption::Deadline(deadline) => format!(
            "it ran longer than {} {}",
            deadline.setting,
            humantime::format_duration(deadline.limit)
        ),
        Interruption::Cancelled => "its job was stopped (job timeout or shutdown)".to_owned(),
    }
}
