//! The seam between the executor and Docker: the [`Runtime`] trait with everything a job does
//! to containers, and [`DockerRuntime`], its real implementation on the engine.
//!
//! The executor is generic over `Runtime`, so scenario tests drive it with an in-memory fake
//! while the real-engine tests (`tests/docker_runtime.rs`, `tests/db_dump.rs`) prove this
//! adapter. The types the trait speaks in carry no bollard type, so a fake needs no Docker at
//! all.
//!
//! `DockerRuntime` decides nothing itself: each method hands the connection to the file below
//! that does the work (`exec`, `containers`, `one_shot`, `volumes`, `clone`, `upload`), which
//! never refers back up here.

use std::collections::BTreeMap;
use std::future::Future;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use super::client::DockerClient;
use super::clone;
use super::containers::{self, ContainerDetails, ContainerRef};
use super::error::Result;
use super::exec::{self, ExecSpec};
use super::images::PullPolicy;
use super::lines::OutputLine;
use super::one_shot::{self, HelperSpec, JobContainerSpec, RunOutcome};
use super::output::{ExecStatus, ExecStream};
use super::upload::{self, UploadFile};
use super::volumes::{self, NewVolume, VolumeDetails};

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
    /// [`RuntimeError::Interrupted`](super::RuntimeError::Interrupted); dropping the future before it ends kills it too.
    fn exec_capture<F>(
        &self,
        spec: ExecSpec,
        on_line: F,
    ) -> impl Future<Output = Result<i64>> + Send
    where
        F: FnMut(OutputLine) + Send;

    /// Reads a container's current state, environment, command line and mounts.
    /// [`RuntimeError::NoSuchContainer`](super::RuntimeError::NoSuchContainer) when it does not exist.
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

    /// Whether `image` holds a file that is not a directory at `path`, seen by the engine
    /// itself: a container is created from the image (pulled as `pull` says), never started,
    /// asked for the path through the archive API and removed again. It carries `owner`
    /// (the value of [`super::OWNER_LABEL`]), so a crash before its removal leaves nothing
    /// start-up recovery misses.
    fn image_has_file(
        &self,
        image: &str,
        path: &str,
        owner: &str,
        pull: PullPolicy,
    ) -> impl Future<Output = Result<bool>> + Send;

    /// Force-removes every container (any state) matching the Docker label filter `label`
    /// (`key` or `key=value`), returning those removed. Start-up recovery passes
    /// [`crate::model::labels::JOB_LABEL`].
    fn remove_containers_with_label(
        &self,
        label: &str,
    ) -> impl Future<Output = Result<Vec<ContainerRef>>> + Send;

    /// Reads a volume's driver, options, labels, mountpoint and scope; `None` when it does
    /// not exist.
    fn volume_info(
        &self,
        volume: &str,
    ) -> impl Future<Output = Result<Option<VolumeDetails>>> + Send;

    /// Creates a volume, refusing a name that exists
    /// ([`RuntimeError::VolumeExists`](super::RuntimeError::VolumeExists)), where the engine
    /// would hand back the existing volume; returns it as created.
    fn create_volume(
        &self,
        volume: NewVolume,
    ) -> impl Future<Output = Result<VolumeDetails>> + Send;

    /// Removes a volume, never forced: one that a container mounts stays
    /// ([`RuntimeError::VolumeInUse`](super::RuntimeError::VolumeInUse)). A volume already gone
    /// counts as removed.
    fn remove_volume(&self, volume: &str) -> impl Future<Output = Result<()>> + Send;

    /// Creates an offline clone of the database container `source` named `name` and returns
    /// its id; [`RuntimeError::ContainerExists`](super::RuntimeError::ContainerExists) when
    /// the name is taken. The caller starts it ([`Runtime::start_container`]) and removes it
    /// ([`Runtime::remove_container`]).
    ///
    /// The clone runs the exact image the source runs (by id, so a tag moved since changes
    /// nothing), with the source's environment (passwords included: the server must accept
    /// the same credentials), command, entrypoint, user, working directory and stop signal;
    /// `network_mode: none`; no published ports, no restart policy; none of the source's bind
    /// mounts or named volumes — directories the image declares as volumes get fresh
    /// anonymous volumes, removed with the clone. Its labels are the source's except Marina's
    /// own and the orchestrators' ([`crate::model::labels::labels_of_copy`]), plus `labels`.
    /// The engine adds the image's own labels back, so a caller that must keep the clone from
    /// ever being a target passes [`crate::model::labels::JOB_LABEL`] (a container carrying
    /// it never is one), beside [`super::OWNER_LABEL`] for start-up recovery.
    fn create_db_clone(
        &self,
        source: &str,
        name: &str,
        labels: BTreeMap<String, String>,
    ) -> impl Future<Output = Result<String>> + Send;

    /// Force-removes a container with its anonymous volumes; one already gone counts as
    /// removed.
    fn remove_container(&self, container: &str) -> impl Future<Output = Result<()>> + Send;

    /// Puts one regular file into a container's filesystem with the engine's archive upload,
    /// replacing a file of that name, with the owner and mode `file` gives. Works on a stopped
    /// container (a database whose data file is replaced while the server is down).
    fn upload_file(
        &self,
        container: &str,
        file: UploadFile,
    ) -> impl Future<Output = Result<()>> + Send;

    /// Whether the engine removes the container (and its anonymous volumes) once it stops
    /// (`docker run --rm`): such a container must never be stopped to be started again.
    fn removes_itself_when_stopped(
        &self,
        container: &str,
    ) -> impl Future<Output = Result<bool>> + Send;
}

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

    /// The bollard client the engine-side functions take.
    fn docker(&self) -> &bollard::Docker {
        self.client.docker()
    }
}

impl Runtime for DockerRuntime {
    fn exec(&self, spec: ExecSpec) -> impl Future<Output = Result<ExecStream>> + Send {
        exec::exec_stream(self.docker(), spec)
    }

    fn inspect_exec(&self, exec_id: &str) -> impl Future<Output = Result<ExecStatus>> + Send {
        exec::inspect_exec(self.docker().clone(), exec_id.to_owned())
    }

    fn exec_capture<F>(
        &self,
        spec: ExecSpec,
        on_line: F,
    ) -> impl Future<Output = Result<i64>> + Send
    where
        F: FnMut(OutputLine) + Send,
    {
        exec::exec_lines(self.docker(), spec, on_line)
    }

    fn inspect_container(
        &self,
        container: &str,
    ) -> impl Future<Output = Result<ContainerDetails>> + Send {
        containers::inspect(self.docker(), container)
    }

    fn stop_container(
        &self,
        container: &str,
        timeout: Duration,
    ) -> impl Future<Output = Result<()>> + Send {
        containers::stop(self.docker(), container, timeout)
    }

    fn start_container(&self, container: &str) -> impl Future<Output = Result<()>> + Send {
        containers::start(self.docker(), container)
    }

    fn running_writers(
        &self,
        volume: &str,
    ) -> impl Future<Output = Result<Vec<ContainerRef>>> + Send {
        containers::mounters(self.docker(), volume, true)
    }

    fn running_mounters(
        &self,
        volume: &str,
    ) -> impl Future<Output = Result<Vec<ContainerRef>>> + Send {
        containers::mounters(self.docker(), volume, false)
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
        one_shot::helper(self.docker(), spec, on_line, cancel)
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
        one_shot::job_container(self.docker(), spec, on_line, cancel)
    }

    fn image_has_file(
        &self,
        image: &str,
        path: &str,
        owner: &str,
        pull: PullPolicy,
    ) -> impl Future<Output = Result<bool>> + Send {
        one_shot::image_has_file(self.docker(), image, path, owner, pull)
    }

    fn remove_containers_with_label(
        &self,
        label: &str,
    ) -> impl Future<Output = Result<Vec<ContainerRef>>> + Send {
        one_shot::remove_labelled(self.docker(), label)
    }

    fn volume_info(
        &self,
        volume: &str,
    ) -> impl Future<Output = Result<Option<VolumeDetails>>> + Send {
        volumes::inspect(self.docker(), volume)
    }

    fn create_volume(
        &self,
        volume: NewVolume,
    ) -> impl Future<Output = Result<VolumeDetails>> + Send {
        volumes::create(self.docker(), volume)
    }

    fn remove_volume(&self, volume: &str) -> impl Future<Output = Result<()>> + Send {
        volumes::remove(self.docker(), volume)
    }

    fn create_db_clone(
        &self,
        source: &str,
        name: &str,
        labels: BTreeMap<String, String>,
    ) -> impl Future<Output = Result<String>> + Send {
        clone::create(self.docker(), source, name, labels)
    }

    fn remove_container(&self, container: &str) -> impl Future<Output = Result<()>> + Send {
        one_shot::remove_force(self.docker(), container)
    }

    fn upload_file(
        &self,
        container: &str,
        file: UploadFile,
    ) -> impl Future<Output = Result<()>> + Send {
        upload::upload_file(self.docker(), container, file)
    }

    fn removes_itself_when_stopped(
        &self,
        container: &str,
    ) -> impl Future<Output = Result<bool>> + Send {
        upload::auto_removes(self.docker(), container)
    }
}
