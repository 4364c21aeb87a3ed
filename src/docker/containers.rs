//! Containers: stopping and starting targets' containers, reading their details, and running
//! Marina's own short-lived containers (volume helpers, custom-image backends).
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

use bollard::models::{
    ContainerCreateBody, ContainerInspectResponse, HostConfig, Mount, MountType,
};
use bollard::query_parameters::{
    AttachContainerOptionsBuilder, CreateImageOptionsBuilder, KillContainerOptions,
    ListContainersOptionsBuilder, RemoveContainerOptionsBuilder, StopContainerOptionsBuilder,
    WaitContainerOptionsBuilder,
};
use futures::StreamExt;
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn};

use super::client::is_not_found;
use super::exec::{Frames, container_error, pump_lines};
use super::output::OutputLine;
use super::runtime::{
    ContainerDetails, ContainerMount, ContainerRef, DockerRuntime, HelperSpec, INSTANCE_LABEL,
    JobContainerSpec, MountKind, MountSpec, OWNER_LABEL, PullPolicy, ROLE_BACKEND, ROLE_HELPER,
    ROLE_LABEL, Result, RunOutcome, RuntimeError,
};
use crate::model::labels::JOB_LABEL;
use crate::model::{ContainerState, Secret};

/// Where a custom image without an ENTRYPOINT finds its script (SPEC §4.2).
pub const DEFAULT_BACKUP_COMMAND: &str = "/backup.sh";
/// Where a custom image sees the instance's staging directory.
pub const BACKUP_MOUNT: &str = "/backup";

/// After a container exited, how long its output may still take to arrive before Marina stops
/// waiting for it (the engine closes the attach stream right after exit).
const OUTPUT_DRAIN: Duration = Duration::from_secs(10);

impl DockerRuntime {
    /// [`super::Runtime::inspect_container`] on the engine.
    pub(super) async fn inspect(&self, container: &str) -> Result<ContainerDetails> {
        let inspected = self
            .docker()
            .inspect_container(container, None)
            .await
            .map_err(|e| container_error("inspect", container, e))?;
        Ok(convert_details(inspected))
    }

    /// [`super::Runtime::stop_container`] on the engine.
    pub(super) async fn stop(&self, container: &str, timeout: Duration) -> Result<()> {
        let seconds = i32::try_from(timeout.as_secs()).unwrap_or(i32::MAX);
        let options = StopContainerOptionsBuilder::new().t(seconds).build();
        debug!(container = %container, timeout_s = seconds, "Stopping a container.");
        self.docker()
            .stop_container(container, Some(options))
            .await
            .map_err(|e| container_error("stop", container, e))
    }

    /// [`super::Runtime::start_container`] on the engine.
    pub(super) async fn start(&self, container: &str) -> Result<()> {
        debug!(container = %container, "Starting a container.");
        self.docker()
            .start_container(container, None)
            .await
            .map_err(|e| container_error("start", container, e))
    }

    /// [`super::Runtime::running_writers`] (`writers_only`) and
    /// [`super::Runtime::running_mounters`] on the engine.
    pub(super) async fn mounters(
        &self,
        volume: &str,
        writers_only: bool,
    ) -> Result<Vec<ContainerRef>> {
        let filters = HashMap::from([
            ("volume".to_owned(), vec![volume.to_owned()]),
            ("status".to_owned(), vec!["running".to_owned()]),
        ]);
        let options = ListContainersOptionsBuilder::new()
            .all(true)
            .filters(&filters)
            .build();
        let summaries = self
            .docker()
            .list_containers(Some(options))
            .await
            .map_err(|source| RuntimeError::ListContainers { source })?;
        let mut mounters: Vec<ContainerRef> = summaries
            .into_iter()
            .filter(|c| {
                // The `volume` filter also matches a mount *destination* of that name; keep
                // only real mounts of this volume (writable ones when asked).
                c.mounts.iter().flatten().any(|m| {
                    m.typ.as_deref() == Some("volume")
                        && m.name.as_deref() == Some(volume)
                        && (!writers_only || m.rw.unwrap_or(true))
                })
            })
            .filter_map(|c| {
                let swarm_task = c
                    .labels
                    .as_ref()
                    .is_some_and(|l| l.contains_key(SWARM_TASK_LABEL));
                container_ref(c.id, c.names).map(|r| ContainerRef { swarm_task, ..r })
            })
            .collect();
        mounters.sort();
        Ok(mounters)
    }

    /// [`super::Runtime::remove_containers_with_label`] on the engine.
    pub(super) async fn remove_labelled(&self, label: &str) -> Result<Vec<ContainerRef>> {
        let filters = HashMap::from([("label".to_owned(), vec![label.to_owned()])]);
        let options = ListContainersOptionsBuilder::new()
            .all(true)
            .filters(&filters)
            .build();
        let summaries = self
            .docker()
            .list_containers(Some(options))
            .await
            .map_err(|source| RuntimeError::ListContainers { source })?;
        let mut removed = Vec::new();
        for container in summaries
            .into_iter()
            .filter_map(|c| container_ref(c.id, c.names))
        {
            match remove_force(self.docker(), &container.id).await {
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

    /// [`super::Runtime::run_helper`] on the engine.
    pub(super) async fn helper<F>(
        &self,
        spec: HelperSpec,
        on_line: F,
        cancel: CancellationToken,
    ) -> Result<RunOutcome>
    where
        F: FnMut(OutputLine) + Send,
    {
        self.ensure_image(&spec.image, spec.pull).await?;
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
        self.run_to_completion(body, &spec.job_id, spec.timeout, on_line, cancel)
            .await
    }

    /// [`super::Runtime::run_job_container`] on the engine.
    pub(super) async fn job_container<F>(
        &self,
        spec: JobContainerSpec,
        on_line: F,
        cancel: CancellationToken,
    ) -> Result<RunOutcome>
    where
        F: FnMut(OutputLine) + Send,
    {
        self.ensure_image(&spec.image, spec.pull).await?;
        let has_entrypoint = self.image_has_entrypoint(&spec.image).await?;
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
        let body = ContainerCreateBody {
            image: Some(spec.image.clone()),
            // The image's own ENTRYPOINT (with its CMD) when it has one, else the script.
            cmd: (!has_entrypoint).then(|| vec![DEFAULT_BACKUP_COMMAND.to_owned()]),
            env: Some(env),
            labels: Some(labels),
            host_config: Some(HostConfig {
                mounts: Some(vec![bind]),
                ..container_host_config()
            }),
            ..container_body()
        };
        info!(job = %spec.job_id, instance = %spec.instance_id, image = %spec.image,
            entrypoint = if has_entrypoint { "image" } else { DEFAULT_BACKUP_COMMAND },
            "Running the backup container.");
        self.run_to_completion(body, &spec.job_id, spec.timeout, on_line, cancel)
            .await
    }

    /// Creates, attaches, starts and waits for a container, then removes it.
    async fn run_to_completion<F>(
        &self,
        body: ContainerCreateBody,
        job_id: &str,
        timeout: Option<Duration>,
        mut on_line: F,
        cancel: CancellationToken,
    ) -> Result<RunOutcome>
    where
        F: FnMut(OutputLine) + Send,
    {
        let docker = self.docker();
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
        let outcome = self
            .attach_start_wait(&created.id, timeout, &mut on_line, cancel)
            .await;
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
        &self,
        id: &str,
        timeout: Option<Duration>,
        on_line: &mut F,
        cancel: CancellationToken,
    ) -> Result<RunOutcome>
    where
        F: FnMut(OutputLine) + Send,
    {
        let docker = self.docker();
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

    /// Makes sure `image` is present, pulling it as `policy` says.
    async fn ensure_image(&self, image: &str, policy: PullPolicy) -> Result<()> {
        let present = || async { self.image_present(image).await };
        match policy {
            PullPolicy::Never => {
                if present().await? {
                    Ok(())
                } else {
                    Err(RuntimeError::ImageMissing {
                        image: image.to_owned(),
                        reason: "pulling is disabled".to_owned(),
                    })
                }
            }
            PullPolicy::IfMissing if present().await? => Ok(()),
            PullPolicy::IfMissing | PullPolicy::Always => match self.pull(image).await {
                Ok(()) => Ok(()),
                Err(reason) if present().await? => {
                    warn!(image = %image, error = %reason,
                        "Cannot pull the image; using the local copy.");
                    Ok(())
                }
                Err(reason) => Err(RuntimeError::ImageMissing {
                    image: image.to_owned(),
                    reason,
                }),
            },
        }
    }

    async fn image_present(&self, image: &str) -> Result<bool> {
        match self.docker().inspect_image(image).await {
            Ok(_) => Ok(true),
            Err(e) if is_not_found(&e) => Ok(false),
            Err(source) => Err(RuntimeError::InspectImage {
                image: image.to_owned(),
                source,
            }),
        }
    }

    async fn image_has_entrypoint(&self, image: &str) -> Result<bool> {
        let inspected = self.docker().inspect_image(image).await.map_err(|source| {
            RuntimeError::InspectImage {
                image: image.to_owned(),
                source,
            }
        })?;
        Ok(inspected
            .config
            .and_then(|c| c.entrypoint)
            .is_some_and(|e| e.iter().any(|part| !part.is_empty())))
    }

    /// Pulls `image`; the error is the engine's message.
    async fn pull(&self, image: &str) -> Result<(), String> {
        let (from_image, tag) = pull_reference(image);
        let mut options = CreateImageOptionsBuilder::new().from_image(from_image);
        if let Some(tag) = tag {
            options = options.tag(tag);
        }
        info!(image = %image, "Pulling an image.");
        let mut progress = pin!(
            self.docker()
                .create_image(Some(options.build()), None, None)
        );
        while let Some(step) = progress.next().await {
            step.map_err(|e| e.to_string())?;
        }
        Ok(())
    }
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
async fn remove_force(docker: &bollard::Docker, id: &str) -> Result<()> {
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

/// Removes the container when dropped before [`DockerRuntime::run_to_completion`] could: the
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

/// `fromImage` and `tag` for a pull. Without a tag the engine would pull *every* tag of the
/// repository, so a bare name gets `latest`, as `docker pull` does.
fn pull_reference(image: &str) -> (&str, Option<&str>) {
    let last_segment = image.rsplit('/').next().unwrap_or(image);
    if image.contains('@') || last_segment.contains(':') {
        (image, None)
    } else {
        (image, Some("latest"))
    }
}

fn container_ref(id: Option<String>, names: Option<Vec<String>>) -> Option<ContainerRef> {
    let id = id.filter(|id| !id.is_empty())?;
    let name = names
        .unwrap_or_default()
        .into_iter()
        .map(|n| n.trim_start_matches('/').to_owned())
        .find(|n| !n.is_empty() && !n.contains('/'))
        .unwrap_or_default();
    Some(ContainerRef {
        id,
        name,
        swarm_task: false,
    })
}

/// The label Docker Swarm puts on every task container.
const SWARM_TASK_LABEL: &str = "com.docker.swarm.task.id";

fn convert_details(inspected: ContainerInspectResponse) -> ContainerDetails {
    let config = inspected.config.unwrap_or_default();
    let env = config
        .env
        .unwrap_or_default()
        .into_iter()
        .map(|pair| match pair.split_once('=') {
            Some((name, value)) => (name.to_owned(), Secret::new(value.to_owned())),
            None => (pair, Secret::new(String::new())),
        })
        .collect();
    let command = inspected
        .path
        .into_iter()
        .chain(inspected.args.unwrap_or_default())
        .map(Secret::new)
        .collect();
    let state = inspected
        .state
        .and_then(|s| s.status)
        .map_or(ContainerState::Unknown, |s| {
            ContainerState::from_docker(s.as_ref())
        });
    let mounts = inspected
        .mounts
        .unwrap_or_default()
        .into_iter()
        .map(|m| ContainerMount {
            kind: match m.typ.as_deref() {
                Some("bind") => MountKind::Bind,
                Some("volume") => MountKind::Volume,
                _ => MountKind::Other,
            },
            name: m.name.filter(|n| !n.is_empty()),
            source: PathBuf::from(m.source.unwrap_or_default()),
            destination: PathBuf::from(m.destination.unwrap_or_default()),
            read_write: m.rw.unwrap_or(true),
        })
        .collect();
    ContainerDetails {
        id: inspected.id.unwrap_or_default(),
        name: inspected
            .name
            .unwrap_or_default()
            .trim_start_matches('/')
            .to_owned(),
        image: config.image.unwrap_or_default(),
        state,
        env,
        command,
        mounts,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_pull_always_names_a_tag_or_digest() {
        assert_eq!(pull_reference("alpine"), ("alpine", Some("latest")));
        assert_eq!(pull_reference("alpine:3.20"), ("alpine:3.20", None));
        assert_eq!(
            pull_reference("registry:5000/team/app"),
            ("registry:5000/team/app", Some("latest"))
        );
        assert_eq!(
            pull_reference("registry:5000/team/app:1"),
            ("registry:5000/team/app:1", None)
        );
        assert_eq!(pull_reference("app@sha256:abcd"), ("app@sha256:abcd", None));
    }

    #[test]
    fn details_keep_env_values_secret() {
        let inspected = ContainerInspectResponse {
            id: Some("abc".into()),
            name: Some("/db".into()),
            path: Some("redis-server".into()),
            args: Some(vec!["--requirepass".into(), "pw".into()]),
            config: Some(bollard::models::ContainerConfig {
                env: Some(vec!["A=1=2".into(), "EMPTY=".into(), "BARE".into()]),
                image: Some("redis:7".into()),
                ..Default::default()
            }),
            ..Default::default()
        };
        let details = convert_details(inspected);
        assert_eq!(details.name, "db");
        assert_eq!(details.env["A"].expose(), "1=2");
        assert_eq!(details.env["EMPTY"].expose(), "");
        assert_eq!(details.env["BARE"].expose(), "");
        assert_eq!(details.command.len(), 3);
        assert_eq!(details.state, ContainerState::Unknown);
        assert!(!format!("{details:?}").contains("pw\""));
    }
}
