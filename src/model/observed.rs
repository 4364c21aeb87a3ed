//! The observed state: what the Docker engine reports about volumes and containers, reduced
//! to what Marina needs. Built by the Docker adapter, read by the reconciler.

use std::collections::BTreeMap;
use std::fmt;
use std::path::PathBuf;

use serde::Serialize;

/// Every volume and container the engine reported in one listing, kept up to date by events.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Inventory {
    /// Volumes by name.
    pub volumes: BTreeMap<String, VolumeInfo>,
    /// Containers by id (names can be reused; ids cannot).
    pub containers: BTreeMap<String, ContainerInfo>,
}

impl Inventory {
    /// The container currently carrying `name`, if any.
    #[must_use]
    pub fn container_named(&self, name: &str) -> Option<&ContainerInfo> {
        self.containers.values().find(|c| c.name == name)
    }

    /// Containers that mount the volume `name`.
    pub fn containers_mounting<'a>(
        &'a self,
        name: &'a str,
    ) -> impl Iterator<Item = &'a ContainerInfo> + 'a {
        self.containers
            .values()
            .filter(move |c| c.mounts.iter().any(|m| m.volume == name))
    }
}

/// A Docker volume.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct VolumeInfo {
    /// The volume's name (anonymous volumes have a 64-hex name).
    pub name: String,
    /// The volume driver (`local` for plain volumes).
    pub driver: String,
    /// Where the data lives on the host, when the engine says.
    pub mountpoint: Option<PathBuf>,
    /// All labels, Marina's and others'.
    pub labels: BTreeMap<String, String>,
}

impl VolumeInfo {
    /// Whether Docker generated the name (a volume declared by an image or `-v /path`).
    #[must_use]
    pub fn is_anonymous(&self) -> bool {
        self.name.len() == 64 && self.name.bytes().all(|b| b.is_ascii_hexdigit())
    }
}

/// A Docker container.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ContainerInfo {
    /// The full container id.
    pub id: String,
    /// The name, without Docker's leading `/`.
    pub name: String,
    /// The image reference the container was created from (e.g. `postgres:16`).
    pub image: String,
    /// All labels, Marina's and others'.
    pub labels: BTreeMap<String, String>,
    /// Running, exited, …
    pub state: ContainerState,
    /// The volumes it mounts (bind mounts and tmpfs are left out: they are not targets).
    pub mounts: Vec<VolumeMount>,
}

/// A named volume mounted into a container.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct VolumeMount {
    /// The volume's name.
    pub volume: String,
    /// Where it is mounted inside the container.
    pub destination: String,
    /// Whether the container can write to it (only writers are stopped by `stopAttached`).
    pub read_write: bool,
}

/// A container's lifecycle state, as Docker names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ContainerState {
    /// Created but never started.
    Created,
    /// Running.
    Running,
    /// Paused.
    Paused,
    /// Restarting.
    Restarting,
    /// Being removed.
    Removing,
    /// Stopped.
    Exited,
    /// Failed to stop or start properly.
    Dead,
    /// A state this version of Marina does not know.
    Unknown,
}

impl ContainerState {
    /// Reads Docker's state word (`running`, `exited`, …).
    #[must_use]
    pub fn from_docker(state: &str) -> Self {
        match state {
            "created" => Self::Created,
            "running" => Self::Running,
            "paused" => Self::Paused,
            "restarting" => Self::Restarting,
            "removing" => Self::Removing,
            "exited" => Self::Exited,
            "dead" => Self::Dead,
            _ => Self::Unknown,
        }
    }
}

impl fmt::Display for ContainerState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let word = match self {
            Self::Created => "created",
            Self::Running => "running",
            Self::Paused => "paused",
            Self::Restarting => "restarting",
            Self::Removing => "removing",
            Self::Exited => "exited",
            Self::Dead => "dead",
            Self::Unknown => "unknown",
        };
        f.write_str(word)
    }
}

/// A change in what Docker reports, as the Docker adapter translates it. The reconciler
/// applies these idempotently: the same change twice leaves the same state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InventoryChange {
    /// A complete listing, which replaces the whole inventory (at start-up, after a
    /// reconnect, and on every periodic resync), so deletions missed meanwhile are noticed.
    Listed(Inventory),
    /// A volume appeared or changed.
    VolumeUpdated(VolumeInfo),
    /// A volume is gone.
    VolumeRemoved {
        /// Its name.
        name: String,
    },
    /// A container appeared or changed (created, started, stopped, renamed, …).
    ContainerUpdated(ContainerInfo),
    /// A container is gone.
    ContainerRemoved {
        /// Its id.
        id: String,
    },
    /// The connection to the engine is lost; the adapter reconnects and relists by itself.
    Disconnected {
        /// Why, for the API and logs.
        reason: String,
    },
}

impl InventoryChange {
    /// Applies the change to an inventory.
    pub fn apply(self, inventory: &mut Inventory) {
        match self {
            Self::Listed(listed) => *inventory = listed,
            Self::VolumeUpdated(volume) => {
                inventory.volumes.insert(volume.name.clone(), volume);
            }
            Self::VolumeRemoved { name } => {
                inventory.volumes.remove(&name);
            }
            Self::ContainerUpdated(container) => {
                inventory.containers.insert(container.id.clone(), container);
            }
            Self::ContainerRemoved { id } => {
                inventory.containers.remove(&id);
            }
            Self::Disconnected { .. } => {}
        }
    }
}
