//! The seam between the executor and Docker: the [`Runtime`] trait with everything a job does
//! to containers, and [`DockerRuntime`], its real implementation on the engine.
//!
//! The executor is generic over `Runtime`, so scenario tests drive it with an in-memory fake
//! while the real-engine tests (`tests/docker_runtime.rs`, `tests/db_dump.rs`) prove this
//! adapter. The types here carry no bollard type, so a fake needs no Docker at all.

use std::collections::BTreeMap;
use std::fmt;
use std::future::Future;
use std::path::PathBuf;
use std::time::Duration;

use tokio::io::AsyncRead;
use tokio_util::sync::CancellationToken;

use super::client::DockerClient;
use super::output::{ExecInterrupted, ExecLimits, ExecStatus, ExecStream, OutputLine};
use crate::model::{ContainerState, Secret};

/// Label on every container Marina starts, saying what it is for: [`ROLE_HELPER`] or
/// [`ROLE_BACKEND`]. The job id is in [`crate::model::labels::JOB_LABEL`].
pub const ROLE_LABEL: &str = "dev.polarfox.marina.role";
/// [`ROLE_LABEL`] value of a helper container that reads volumes.
pub const ROLE_HELPER: &str = "helper";
/// [`ROLE_LABEL`] value of a custom-image backend container.
pub const ROLE_BACKEND: &str = "backend";
/// Label on every container Marina starts naming the Marina that started it (a digest of its
/// job store's path), so start-up recovery removes only its own leftovers when several
/// Marinas share one engine.
pub const OWNER_LABEL: &str = "dev.polarfox.marina.owner";
/// Label on a backend container naming the instance it backs up.
pub const INSTANCE_LABEL: &str = "dev.polarfox.marina.instance";

/// Everything the executor does to containers. Implemented on the engine by
/// [`DockerRuntime`]; tests implement it in memory.
///
/// Methods return `Send` futures, so jobs can run on any worker thread.
pub trait Runtime: Send + Sync {
    /// Starts `spec.cmd` in a running container (never with a TTY, which would corrupt binary
    /// output) and returns its streaming stdout; see [`ExecStream`].
    fn exec(&self, spec: ExecSpec) -> impl Future<Output = Result<ExecStream>> + Send;

    /// Reads an exec's status (running, exit code, recorded command line).
    fn inspect_exec(&self, exec_id: &str) -> impl Future<Output = Result<ExecStatus>> + Send;

    /// Runs a short command (a hook) in a running container, delivering its stdout and stderr
    /// lines to `on_line` as they arrive, and returns its exit code. When `spec.limits` are
    /// reached the command is killed inside the container and the answer is
    /// [`RuntimeError::Interrupted`]; dropping the future before it ends kills it too.
    fn exec_capture<F>(
        &self,
        spec: ExecSpec,
        on_line: F,
    ) -> impl Future<Output = Result<i64>> + Send
    where
        F: FnMut(OutputLine) + Send;

    /// Reads a container's current state, environment, command line and mounts.
    /// [`RuntimeError::NoSuchContainer`] when it does not exist.
    fn inspect_container(
        &self,
        container: &str,
    ) -> impl Future<Output = Result<ContainerDetails>> + Send;

    /// Stops a container, killing it after `timeout`. Stopping a stopped container succeeds.
    fn stop_container(
        &self,
        container: &str,
        timeout: Duration,
    ) -> impl Future<Output = Result<()>> + Send;

    /// Starts a container. Starting a running container succeeds.
    fn start_container(&self, container: &str) -> impl Future<Output = Result<()>> + Send;

    /// The running containers that mount the volume `volume` read-write, freshly listed: the
    /// ones `stopAttached` stops while the volume is staged.
    fn running_writers(
        &self,
        volume: &str,
    ) -> impl Future<Output = Result<Vec<ContainerRef>>> + Send;

    /// The running containers that mount the volume `volume` at all (read-only mounts count),
    /// freshly listed: where its hooks run (SPEC §3.3).
    fn running_mounters(
        &self,
        volume: &str,
    ) -> impl Future<Output = Result<Vec<ContainerRef>>> + Send;

    /// Runs a helper container to completion (SPEC §3.2), without network: output lines go to
    /// `on_line` as they arrive; the container is removed afterwards in every case, also when
    /// this future is dropped. Cancelling `cancel` or reaching `spec.timeout` kills it.
    fn run_helper<F>(
        &self,
        spec: HelperSpec,
        on_line: F,
        cancel: CancellationToken,
    ) -> impl Future<Output = Result<RunOutcome>> + Send
    where
        F: FnMut(OutputLine) + Send;

    /// Runs a custom-image backend container to completion (SPEC §4.2), with the same
    /// lifecycle as [`Runtime::run_helper`]; the image is pulled according to `spec.pull`.
    fn run_job_container<F>(
        &self,
        spec: JobContainerSpec,
        on_line: F,
        cancel: CancellationToken,
    ) -> impl Future<Output = Result<RunOutcome>> + Send
    where
        F: FnMut(OutputLine) + Send;

    /// Force-removes every container (any state) matching the Docker label filter `label`
    /// (`key` or `key=value`), returning those removed. Start-up recovery passes
    /// [`crate::model::labels::JOB_LABEL`].
    fn remove_containers_with_label(
        &self,
        label: &str,
    ) -> impl Future<Output = Result<Vec<ContainerRef>>> + Send;
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

/// A container as `inspect_container` reports it, reduced to what jobs need.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContainerDetails {
    /// The full id.
    pub id: String,
    /// The name, without Docker's leading `/`.
    pub name: String,
    /// The image reference it was created from.
    pub image: String,
    /// Running, exited, …
    pub state: ContainerState,
    /// `Config.Env`. Values often are passwords: they are [`Secret`]s and never logged.
    pub env: BTreeMap<String, Secret>,
    /// The main process's command line (`Path` then `Args`); it may carry secrets too
    /// (`redis-server --requirepass …`).
    pub command: Vec<Secret>,
    /// Bind mounts and volumes, with their host paths.
    pub mounts: Vec<ContainerMount>,
}

/// What kind of storage a [`ContainerMount`] is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MountKind {
    /// A host directory or file.
    Bind,
    /// A Docker volume.
    Volume,
    /// tmpfs, named pipes, …: nothing with a host path.
    Other,
}

/// One mount of a container.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContainerMount {
    /// Bind, volume, …
    pub kind: MountKind,
    /// The volume's name (volumes only).
    pub name: Option<String>,
    /// The host path behind it (for a volume, its data directory); empty when unknown.
    pub source: PathBuf,
    /// Where it appears inside the container.
    pub destination: PathBuf,
    /// Whether the container can write to it.
    pub read_write: bool,
}

/// A container named in a result.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct ContainerRef {
    /// The full id.
    pub id: String,
    /// The name, without Docker's leading `/` (empty when the engine gave none).
    pub name: String,
    /// Whether it is a Docker Swarm task: Swarm replaces a stopped task with a new one, so
    /// Marina must not stop it (`stopAttached`) and start it again afterwards.
    pub swarm_task: bool,
}

/// When to pull an image before running a container from it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum PullPolicy {
    /// Pull every time (a moving tag gets its update); when the pull fails but the image is
    /// present, warn and use the local image (SPEC §4.2).
    Always,
    /// Pull only when the image is not present.
    #[default]
    IfMissing,
    /// Never pull; a missing image is an error.
    Never,
}

/// Storage mounted into a helper container.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MountSpec {
    /// A Docker volume by name.
    Volume {
        /// The volume's name.
        volume: String,
        /// Where it appears in the container.
        target: String,
        /// Mount it read-only (volumes are always read read-only when staging).
        read_only: bool,
    },
    /// A host directory (it must exist).
    Bind {
        /// The host path.
        source: PathBuf,
        /// Where it appears in the container.
        target: String,
        /// Mount it read-only.
        read_only: bool,
    },
}

/// A helper container that reads volumes (SPEC §3.2).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HelperSpec {
    /// The image (config `helperImage`).
    pub image: String,
    /// The job it works for: the value of the job label.
    pub job_id: String,
    /// The Marina that runs it: the value of [`OWNER_LABEL`].
    pub owner: String,
    /// Volumes (read-only) and the staging directory (read-write).
    pub mounts: Vec<MountSpec>,
    /// The command, e.g. `["sh", "-c", "cp -a /source/. /staging/"]`.
    pub command: Vec<String>,
    /// When to pull the image.
    pub pull: PullPolicy,
    /// Kill it after this long; `None` waits as long as it takes (SPEC §3.2: no lifetime cap).
    pub timeout: Option<Duration>,
}

/// A custom-image backend container (SPEC §4.2).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobContainerSpec {
    /// The user's image; its ENTRYPOINT runs, or `/backup.sh` when it has none.
    pub image: String,
    /// The job it runs for: the value of the job label.
    pub job_id: String,
    /// The Marina that runs it: the value of [`OWNER_LABEL`].
    pub owner: String,
    /// The instance it backs up: the value of [`INSTANCE_LABEL`].
    pub instance_id: String,
    /// The container's environment (instance `env` and Marina's variables).
    pub env: Vec<(String, Secret)>,
    /// The host directory mounted at `/backup` — the only mount; it must exist.
    pub host_dir: PathBuf,
    /// When to pull the image.
    pub pull: PullPolicy,
    /// Kill it after this long.
    pub timeout: Option<Duration>,
}

/// How a helper or job container ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RunOutcome {
    /// It exited by itself with this code.
    Exited(i64),
    /// It ran past its timeout and was killed.
    TimedOut,
    /// The cancellation token fired and it was killed.
    Cancelled,
}

impl RunOutcome {
    /// Whether it exited with code 0.
    #[must_use]
    pub fn succeeded(self) -> bool {
        self == Self::Exited(0)
    }

    /// The exit code, when it exited by itself.
    #[must_use]
    pub fn exit_code(self) -> Option<i64> {
        match self {
            Self::Exited(code) => Some(code),
            Self::TimedOut | Self::Cancelled => None,
        }
    }
}

/// A container operation that failed, saying what Marina was doing and with which object.
#[derive(Debug, thiserror::Error)]
pub enum RuntimeError {
    /// The container does not exist.
    #[error("Docker container {container} does not exist")]
    NoSuchContainer {
        /// Its id or name.
        container: String,
    },
    /// The engine refused or failed an operation on a container.
    #[error("cannot {action} Docker container {container}: {source}")]
    Container {
        /// What Marina was doing (`stop`, `start exec in`, …).
        action: &'static str,
        /// Its id or name.
        container: String,
        /// What bollard reported.
        #[source]
        source: bollard::errors::Error,
    },
    /// Reading an exec's status failed.
    #[error("cannot inspect exec {exec_id}: {source}")]
    InspectExec {
        /// The exec's id.
        exec_id: String,
        /// What bollard reported.
        #[source]
        source: bollard::errors::Error,
    },
    /// A command in a container ran past its limits and was killed (or could not be).
    #[error(transparent)]
    Interrupted(#[from] ExecInterrupted),
    /// The engine never reported an exit code for an exec whose output had ended.
    #[error("the Docker engine reported no exit code for exec {exec_id}")]
    ExitCodeUnknown {
        /// The exec's id.
        exec_id: String,
    },
    /// Reading a process's output failed midway.
    #[error("reading the output of a process in Docker container {container} failed: {source}")]
    Output {
        /// Its id or name.
        container: String,
        /// What went wrong.
        #[source]
        source: std::io::Error,
    },
    /// Listing containers failed.
    #[error("cannot list Docker containers: {source}")]
    ListContainers {
        /// What bollard reported.
        #[source]
        source: bollard::errors::Error,
    },
    /// Inspecting an image failed (other than because it is missing).
    #[error("cannot inspect Docker image {image}: {source}")]
    InspectImage {
        /// The image reference.
        image: String,
        /// What bollard reported.
        #[source]
        source: bollard::errors::Error,
    },
    /// The image is not present and could not be pulled.
    #[error("Docker image {image} is not present and cannot be pulled: {reason}")]
    ImageMissing {
        /// The image reference.
        image: String,
        /// Why the pull failed (or that pulling is disabled).
        reason: String,
    },
}

/// A result whose error is a [`RuntimeError`].
pub type Result<T, E = RuntimeError> = std::result::Result<T, E>;

/// [`Runtime`] on the real Docker engine. Cheap to clone: clones share one connection pool.
#[derive(Debug, Clone)]
pub struct DockerRuntime {
    /// The negotiated connection (DEPENDENCIES.md, bollard pitfall 1).
    client: DockerClient,
}

impl DockerRuntime {
    /// Wraps a connected client.
    #[must_use]
    pub fn new(client: DockerClient) -> Self {
        Self { client }
    }

    /// The bollard client, for the rest of the adapter.
    pub(super) fn docker(&self) -> &bollard::Docker {
        self.client.docker()
    }
}

impl Runtime for DockerRuntime {
    fn exec(&self, spec: ExecSpec) -> impl Future<Output = Result<ExecStream>> + Send {
        self.exec_stream(spec)
    }

    fn inspect_exec(&self, exec_id: &str) -> impl Future<Output = Result<ExecStatus>> + Send {
        super::exec::inspect_exec(self.docker().clone(), exec_id.to_owned())
    }

    fn exec_capture<F>(
        &self,
        spec: ExecSpec,
        on_line: F,
    ) -> impl Future<Output = Result<i64>> + Send
    where
        F: FnMut(OutputLine) + Send,
    {
        self.exec_lines(spec, on_line)
    }

    fn inspect_container(
        &self,
        container: &str,
    ) -> impl Future<Output = Result<ContainerDetails>> + Send {
        self.inspect(container)
    }

    fn stop_container(
        &self,
        container: &str,
        timeout: Duration,
    ) -> impl Future<Output = Result<()>> + Send {
        self.stop(container, timeout)
    }

    fn start_container(&self, container: &str) -> impl Future<Output = Result<()>> + Send {
        self.start(container)
    }

    fn running_writers(
        &self,
        volume: &str,
    ) -> impl Future<Output = Result<Vec<ContainerRef>>> + Send {
        self.mounters(volume, true)
    }

    fn running_mounters(
        &self,
        volume: &str,
    ) -> impl Future<Output = Result<Vec<ContainerRef>>> + Send {
        self.mounters(volume, false)
    }

    fn run_helper<F>(
        &self,
        spec: HelperSpec,
        on_line: F,
        cancel: CancellationToken,
    ) -> impl Future<Output = Result<RunOutcome>> + Send
    where
        F: FnMut(OutputLine) + Send,
    {
        self.helper(spec, on_line, cancel)
    }

    fn run_job_container<F>(
        &self,
        spec: JobContainerSpec,
        on_line: F,
        cancel: CancellationToken,
    ) -> impl Future<Output = Result<RunOutcome>> + Send
    where
        F: FnMut(OutputLine) + Send,
    {
        self.job_container(spec, on_line, cancel)
    }

    fn remove_containers_with_label(
        &self,
        label: &str,
    ) -> impl Future<Output = Result<Vec<ContainerRef>>> + Send {
        self.remove_labelled(label)
    }
}
