//! The containers Marina works with but did not start — targets, databases, the ones that
//! mount a volume: reading their details, stopping and starting them, and finding who mounts
//! a volume.

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::time::Duration;

use bollard::Docker;
use bollard::models::ContainerInspectResponse;
use bollard::query_parameters::{ListContainersOptionsBuilder, StopContainerOptionsBuilder};
use tracing::debug;

use super::error::{Result, RuntimeError, container_error};
use crate::model::{ContainerState, Secret};

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

/// `Runtime::inspect_container` on the engine.
pub(super) async fn inspect(docker: &Docker, container: &str) -> Result<ContainerDetails> {
    let inspected = docker
        .inspect_container(container, None)
        .await
        .map_err(|e| container_error("inspect", container, e))?;
    Ok(convert_details(inspected))
}

/// `Runtime::stop_container` on the engine.
pub(super) async fn stop(docker: &Docker, container: &str, timeout: Duration) -> Result<()> {
    let seconds = i32::try_from(timeout.as_secs()).unwrap_or(i32::MAX);
    let options = StopContainerOptionsBuilder::new().t(seconds).build();
    debug!(container = %container, timeout_s = seconds, "Stopping a container.");
    docker
        .stop_container(container, Some(options))
        .await
        .map_err(|e| container_error("stop", container, e))
}

/// `Runtime::start_container` on the engine.
pub(super) async fn start(docker: &Docker, container: &str) -> Result<()> {
    debug!(container = %container, "Starting a container.");
    docker
        .start_container(container, None)
        .await
        .map_err(|e| container_error("start", container, e))
}

/// `Runtime::running_writers` (`writers_only`) and
/// `Runtime::running_mounters` on the engine.
pub(super) async fn mounters(
    docker: &Docker,
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
    let summaries = docker
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

/// A listed container as a [`ContainerRef`] (not a Swarm task); `None` without an id.
pub(super) fn container_ref(
    id: Option<String>,
    names: Option<Vec<String>>,
) -> Option<ContainerRef> {
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
