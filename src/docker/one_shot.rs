//! Marina's own short-lived containers: volume helpers (SPEC §3.2) and custom-image backends
//! (SPEC §4.2), and the removal of those a crash left behind.
//!
//! Marina's containers follow one lifecycle: create (never `auto_remove`, which would lose the
//! exit code and the last output — bollard pitfall 4), attach to the output *before* start so
//! no line is lost, start, wait with condition `not-running` (pitfall 2; a non-zero exit comes
//! back as an error, pitfall 3), then force-remove — in every case: on success, failure,
//! timeout, cancellation, and when the caller drops the future (a guard spawns the removal).
//! Whatever a crash still leaves behind carries the job label and is removed at start-up.

use std::collections::HashMap;
use std::path::PathBuf;
use std::pin::pin;
use std::time::Duration;

use bollard::Docker;
use bollard::models::{ContainerCreateBody, HostConfig, Mount, MountType};
use bollard::query_parameters::{
    AttachContainerOptionsBuilder, ContainerArchiveInfoOptionsBuilder, KillContainerOptions,
    ListContainersOptionsBuilder, RemoveContainerOptionsBuilder, WaitContainerOptionsBuilder,
};
use futures::StreamExt;
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn};

use super::client::is_not_found;
use super::containers::{ContainerRef, container_ref};
use super::error::{Result, RuntimeError, container_error};
use super::exec::{Frames, pump_lines};
use super::images::{PullPolicy, ensure_image, image_has_entrypoint};
use super::lines::OutputLine;
use crate::model::Secret;
use crate::model::labels::JOB_LABEL;

/// Label on every container Marina starts, saying what it is for: [`ROLE_HELPER`] or
/// [`ROLE_BACKEND`]. The job id is in [`crate::model::labels::JOB_LABEL`].
pub const ROLE_LABEL: &str = "dev.polarfox.marina.role";
/// [`ROLE_LABEL`] value of a helper container that reads volumes.
pub const ROLE_HELPER: &str = "helper";
/// [`ROLE_LABEL`] value of a custom-image backend container.
pub const ROLE_BACKEND: &str = "backend";
/// [`ROLE_LABEL`] value of a container created from an image only to look at its files
/// (never started).
pub const ROLE_PROBE: &str = "probe";
/// Label on every container Marina starts naming the Marina that started it (a digest of its
/// job store's path), so start-up recovery removes only its own leftovers when several
/// Marinas share one engine.
pub const OWNER_LABEL: &str = "dev.polarfox.marina.owner";
/// Label on a backend container naming the instance it backs up.
pub const INSTANCE_LABEL: &str = "dev.polarfox.marina.instance";

/// Where a custom image without an ENTRYPOINT finds its script (SPEC §4.2).
pub const DEFAULT_BACKUP_COMMAND: &str = "/backup.sh";
/// What restores from a custom image's backups when the instance sets no
/// `restoreEntrypoint` and the image holds it (docs/custom-backends.md, "Restore contract").
pub const DEFAULT_RESTORE_COMMAND: &str = "/restore.sh";
/// Where a custom image sees the instance's staging directory.
pub const BACKUP_MOUNT: &str = "/backup";

/// After a container exited, how long its output may still take to arrive before Marina stops
/// waiting for it (the engine closes the attach stream right after exit).
const OUTPUT_DRAIN: Duration = Duration::from_secs(10);

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

/// A custom-image backend container (SPEC §4.2): a backup, or a restore (the restore
/// contract of docs/custom-backends.md).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobContainerSpec {
    /// The user's image; its ENTRYPOINT runs, or `/backup.sh` when it has none, unless
    /// `command` says otherwise.
    pub image: String,
    /// The program and its arguments to run instead of the image's ENTRYPOINT and CMD (a
    /// restore's `restoreEntrypoint` or `/restore.sh`); `None` runs what a backup runs.
    pub command: Option<Vec<String>>,
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

/// `Runtime::remove_containers_with_label` on the engine.
pub(super) async fn remove_labelled(docker: &Docker, label: &str) -> Result<Vec<ContainerRef>> {
    let filters = HashMap::from([("label".to_owned(), vec![label.to_owned()])]);
    let options = ListContainersOptionsBuilder::new()
        .all(true)
        .filters(&filters)
        .build();
    let summaries = docker
        .list_containers(Some(options))
        .await
        .map_err(|source| RuntimeError::ListContainers { source })?;
    let mut removed = Vec::new();
    for container in summaries
        .into_iter()
        .filter_map(|c| container_ref(c.id, c.names))
    {
        match remove_force(docker, &container.id).await {
            Ok(()) => {
                info!(container = %container.id, name = %container.name, label = %label,
                    "Removed a leftover Marina container.");
                removed.push(container);
            }
            Err(error) => warn!(container = %container.id, name = %container.name,
                error = %error, "Cannot remove a leftover Marina container."),
        }
    }
    Ok(removed)
}

/// `Runtime::run_helper` on the engine.
pub(super) async fn helper<F>(
    docker: &Docker,
    spec: HelperSpec,
    on_line: F,
    cancel: CancellationToken,
) -> Result<RunOutcome>
where
    F: FnMut(OutputLine) + Send,
{
    ensure_image(docker, &spec.image, spec.pull).await?;
    let labels = HashMap::from([
        (JOB_LABEL.to_owned(), spec.job_id.clone()),
        (OWNER_LABEL.to_owned(), spec.owner.clone()),
        (ROLE_LABEL.to_owned(), ROLE_HELPER.to_owned()),
    ]);
    let mounts = spec.mounts.iter().map(convert_mount_spec).collect();
    let body = ContainerCreateBody {
        image: Some(spec.image.clone()),
        cmd: Some(spec.command.clone()),
        labels: Some(labels),
        host_config: Some(HostConfig {
            mounts: Some(mounts),
            // Copying files needs no network.
            network_mode: Some("none".to_owned()),
            ..container_host_config()
        }),
        ..container_body()
    };
    debug!(job = %spec.job_id, image = %spec.image, command = ?spec.command,
        "Running a helper container.");
    run_to_completion(docker, body, &spec.job_id, spec.timeout, on_line, cancel).await
}

/// `Runtime::run_job_container` on the engine.
pub(super) async fn job_container<F>(
    docker: &Docker,
    spec: JobContainerSpec,
    on_line: F,
    cancel: CancellationToken,
) -> Result<RunOutcome>
where
    F: FnMut(OutputLine) + Send,
{
    ensure_image(docker, &spec.image, spec.pull).await?;
    let has_entrypoint =
        spec.command.is_none() && image_has_entrypoint(docker, &spec.image).await?;
    let labels = HashMap::from([
        (JOB_LABEL.to_owned(), spec.job_id.clone()),
        (OWNER_LABEL.to_owned(), spec.owner.clone()),
        (ROLE_LABEL.to_owned(), ROLE_BACKEND.to_owned()),
        (INSTANCE_LABEL.to_owned(), spec.instance_id.clone()),
    ]);
    let env = spec
        .env
        .iter()
        .map(|(name, value): &(String, Secret)| format!("{name}={}", value.expose()))
        .collect();
    let bind = Mount {
        typ: Some(MountType::BIND),
        source: Some(spec.host_dir.to_string_lossy().into_owned()),
        target: Some(BACKUP_MOUNT.to_owned()),
        read_only: Some(false),
        ..Mount::default()
    };
    let (entrypoint, cmd, runs) = match &spec.command {
        // An ENTRYPOINT of the request's own replaces the image's, and with it its CMD.
        Some(command) => (Some(command.clone()), None, command.join(" ")),
        // The image's own ENTRYPOINT (with its CMD) when it has one, else the script.
        None if has_entrypoint => (None, None, "the image's entrypoint".to_owned()),
        None => (
            None,
            Some(vec![DEFAULT_BACKUP_COMMAND.to_owned()]),
            DEFAULT_BACKUP_COMMAND.to_owned(),
        ),
    };
    let body = ContainerCreateBody {
        image: Some(spec.image.clone()),
        entrypoint,
        cmd,
        env: Some(env),
        labels: Some(labels),
        host_config: Some(HostConfig {
            mounts: Some(vec![bind]),
            ..container_host_config()
        }),
        ..container_body()
    };
    info!(job = %spec.job_id, instance = %spec.instance_id, image = %spec.image,
        command = %runs, "Running the custom image's container.");
    run_to_completion(docker, body, &spec.job_id, spec.timeout, on_line, cancel).await
}

/// `Runtime::image_has_file` on the engine: a container created from the image (never
/// started, on no network) is asked for the path through the archive API, then removed.
/// The image's own ENTRYPOINT and CMD do not matter: the container is given `path` as its
/// entrypoint, so an image with neither can be created too.
pub(super) async fn image_has_file(
    docker: &Docker,
    image: &str,
    path: &str,
    owner: &str,
    pull: PullPolicy,
) -> Result<bool> {
    ensure_image(docker, image, pull).await?;
    let labels = HashMap::from([
        (JOB_LABEL.to_owned(), ROLE_PROBE.to_owned()),
        (OWNER_LABEL.to_owned(), owner.to_owned()),
        (ROLE_LABEL.to_owned(), ROLE_PROBE.to_owned()),
    ]);
    let body = ContainerCreateBody {
        image: Some(image.to_owned()),
        entrypoint: Some(vec![path.to_owned()]),
        cmd: Some(Vec::new()),
        labels: Some(labels),
        network_disabled: Some(true),
        host_config: Some(HostConfig {
            network_mode: Some("none".to_owned()),
            ..container_host_config()
        }),
        ..ContainerCreateBody::default()
    };
    let created = docker
        .create_container(None, body)
        .await
        .map_err(|e| container_error("create a container from image", image, e))?;
    let mut guard = RemoveOnDrop {
        docker: Some(docker.clone()),
        id: created.id.clone(),
    };
    let options = ContainerArchiveInfoOptionsBuilder::new().path(path).build();
    let found = match docker
        .get_container_archive_info(&created.id, Some(options))
        .await
    {
        // Go's FileMode: the directory bit is the highest of 32.
        Ok(stat) => Ok(stat.file_mode & GO_MODE_DIR == 0),
        Err(e) if is_not_found(&e) => Ok(false),
        Err(e) => Err(container_error("look into", image, e)),
    };
    let removed = remove_force(docker, &created.id).await;
    guard.docker = None;
    if let Err(error) = removed {
        warn!(container = %created.id, error = %error,
            "Cannot remove the container made to look into an image; start-up cleanup will retry.");
    }
    debug!(image, path, found = ?found.as_ref().ok(), "Looked for a file in an image.");
    found
}

/// The directory bit of a Go `os.FileMode`, as the archive API's path stat reports modes.
const GO_MODE_DIR: u32 = 1 << 31;

/// Creates, attaches, starts and waits for a container, then removes it.
async fn run_to_completion<F>(
    docker: &Docker,
    body: ContainerCreateBody,
    job_id: &str,
    timeout: Option<Duration>,
    mut on_line: F,
    cancel: CancellationToken,
) -> Result<RunOutcome>
where
    F: FnMut(OutputLine) + Send,
{
    let image = body.image.clone().unwrap_or_default();
    let created = docker
        .create_container(None, body)
        .await
        .map_err(|e| container_error("create a container from image", &image, e))?;
    for warning in &created.warnings {
        warn!(container = %created.id, warning = %warning,
            "The Docker engine warned while creating a container.");
    }
    let mut guard = RemoveOnDrop {
        docker: Some(docker.clone()),
        id: created.id.clone(),
    };
    let outcome = attach_start_wait(docker, &created.id, timeout, &mut on_line, cancel).await;
    // Removing here (not only in the guard) means the container is gone when this returns.
    // The guard stays armed until the removal was answered, in case this is dropped now.
    let removed = remove_force(docker, &created.id).await;
    guard.docker = None;
    match removed {
        Ok(()) => debug!(container = %created.id, job = %job_id, "Removed a container."),
        Err(error) => warn!(container = %created.id, job = %job_id, error = %error,
            "Cannot remove a finished container; start-up cleanup will retry."),
    }
    outcome
}

async fn attach_start_wait<F>(
    docker: &Docker,
    id: &str,
    timeout: Option<Duration>,
    on_line: &mut F,
    cancel: CancellationToken,
) -> Result<RunOutcome>
where
    F: FnMut(OutputLine) + Send,
{
    let attach = AttachContainerOptionsBuilder::new()
        .stream(true)
        .stdout(true)
        .stderr(true)
        .build();
    // Attached before start, so not even the first line can be missed.
    let attached = docker
        .attach_container(id, Some(attach))
        .await
        .map_err(|e| container_error("attach to", id, e))?;
    docker
        .start_container(id, None)
        .await
        .map_err(|e| container_error("start", id, e))?;
    let run = pump_and_wait(docker, id, attached.output, on_line);
    let deadline = async {
        match timeout {
            Some(limit) => tokio::time::sleep(limit).await,
            None => std::future::pending().await,
        }
    };
    let outcome = tokio::select! {
        biased;
        () = cancel.cancelled() => RunOutcome::Cancelled,
        () = deadline => RunOutcome::TimedOut,
        code = run => RunOutcome::Exited(code?),
    };
    if matches!(outcome, RunOutcome::Cancelled | RunOutcome::TimedOut) {
        warn!(container = %id, outcome = ?outcome, "Killing a container.");
        if let Err(error) = docker
            .kill_container(id, None::<KillContainerOptions>)
            .await
        {
            // It may have exited meanwhile; the forced removal follows anyway.
            debug!(container = %id, error = %error, "Killing a container failed.");
        }
    }
    Ok(outcome)
}

/// Deliver output lines until the output ends while waiting for the exit; returns the code.
async fn pump_and_wait(
    docker: &bollard::Docker,
    id: &str,
    output: Frames,
    on_line: &mut (impl FnMut(OutputLine) + Send),
) -> Result<i64> {
    let mut pump = pin!(pump_lines(output, on_line));
    let mut wait = pin!(wait_for_exit(docker, id));
    let mut pumped = false;
    let code = loop {
        tokio::select! {
            result = &mut pump, if !pumped => {
                pumped = true;
                if let Err(error) = result {
                    warn!(container = %id, error = %error,
                        "Lost the output of a container; waiting for it to exit.");
                }
            }
            code = &mut wait => break code?,
        }
    };
    if !pumped && tokio::time::timeout(OUTPUT_DRAIN, pump).await.is_err() {
        warn!(container = %id, "The output of an exited container did not end; moving on.");
    }
    Ok(code)
}

/// Waits until the container is not running and returns its exit code.
async fn wait_for_exit(docker: &bollard::Docker, id: &str) -> Result<i64> {
    let options = WaitContainerOptionsBuilder::new()
        .condition("not-running")
        .build();
    let mut wait = pin!(docker.wait_container(id, Some(options)));
    match wait.next().await {
        Some(Ok(response)) => Ok(response.status_code),
        // bollard reports a non-zero exit as an error (pitfall 3): it is a result here.
        Some(Err(bollard::errors::Error::DockerContainerWaitError { code, .. })) => Ok(code),
        Some(Err(e)) => Err(container_error("wait for", id, e)),
        None => Err(RuntimeError::Container {
            action: "wait for",
            container: id.to_owned(),
            source: bollard::errors::Error::DockerStreamError {
                error: "the wait ended without an exit code".to_owned(),
            },
        }),
    }
}

/// Force-removes a container with its anonymous volumes; one that is already gone counts.
/// Also `Runtime::remove_container` on the engine.
pub(super) async fn remove_force(docker: &bollard::Docker, id: &str) -> Result<()> {
    let options = RemoveContainerOptionsBuilder::new()
        .force(true)
        .v(true)
        .build();
    match docker.remove_container(id, Some(options)).await {
        // 409: a removal is already in progress (e.g. the drop guard's); it will finish.
        Ok(())
        | Err(bollard::errors::Error::DockerResponseServerError {
            status_code: 409, ..
        }) => Ok(()),
        Err(e) if is_not_found(&e) => Ok(()),
        Err(e) => Err(container_error("remove", id, e)),
    }
}

/// Removes the container when dropped before [`run_to_completion`] could: the
/// caller dropped the future (job aborted). The removal runs on a spawned task because `Drop`
/// cannot await; if no runtime is left, start-up cleanup removes it by its job label.
struct RemoveOnDrop {
    /// `None` once the container was removed the ordinary way.
    docker: Option<bollard::Docker>,
    id: String,
}

impl Drop for RemoveOnDrop {
    fn drop(&mut self) {
        let Some(docker) = self.docker.take() else {
            return;
        };
        let id = std::mem::take(&mut self.id);
        if let Ok(handle) = tokio::runtime::Handle::try_current() {
            handle.spawn(async move {
                match remove_force(&docker, &id).await {
                    Ok(()) => debug!(container = %id, "Removed an abandoned container."),
                    Err(error) => warn!(container = %id, error = %error,
                        "Cannot remove an abandoned container; start-up cleanup will."),
                }
            });
        } else {
            warn!(container = %id,
                "Cannot remove an abandoned container outside the runtime; start-up cleanup will.");
        }
    }
}

/// The settings every Marina container shares.
fn container_body() -> ContainerCreateBody {
    ContainerCreateBody {
        // Without a TTY output stays byte-exact and stdout/stderr stay apart (pitfall 5).
        tty: Some(false),
        attach_stdout: Some(true),
        attach_stderr: Some(true),
        ..ContainerCreateBody::default()
    }
}

fn container_host_config() -> HostConfig {
    HostConfig {
        // Marina removes its containers itself, after reading the exit code (pitfall 4).
        auto_remove: Some(false),
        ..HostConfig::default()
    }
}

fn convert_mount_spec(spec: &MountSpec) -> Mount {
    let (typ, source, target, read_only) = match spec {
        MountSpec::Volume {
            volume,
            target,
            read_only,
        } => (MountType::VOLUME, volume.clone(), target, *read_only),
        MountSpec::Bind {
            source,
            target,
            read_only,
        } => (
            MountType::BIND,
            source.to_string_lossy().into_owned(),
            target,
            *read_only,
        ),
    };
    Mount {
        typ: Some(typ),
        source: Some(source),
        target: Some(target.clone()),
        read_only: Some(read_only),
        ..Mount::default()
    }
}
