//! Volumes Marina creates and removes itself — the new volume a restore writes into — and
//! reading one volume with everything needed to make another like it.
//!
//! Docker's `volume create` is not a "create new": for a name that already exists (with the
//! same driver) it answers with the existing volume and no error. Marina must never mistake
//! someone's volume for the empty one it asked for, so [`create`] looks first, and checks the
//! answer against the request afterwards (see there for what that can and cannot tell).

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;

use bollard::Docker;
use bollard::models::{Volume, VolumeCreateRequest, VolumeScopeEnum};
use bollard::query_parameters::{ListContainersOptionsBuilder, RemoveVolumeOptionsBuilder};
use tracing::{debug, info};

use super::client::is_not_found;
use super::containers::container_ref;
use super::error::{Result, RuntimeError};

/// A volume as `inspect_volume` reports it, with what it takes to create one like it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VolumeDetails {
    /// The volume's name.
    pub name: String,
    /// The volume driver (`local` for plain volumes).
    pub driver: String,
    /// The options it was created with (`docker volume create --opt`), e.g. `type`, `o`,
    /// `device` for a local volume backed by a bind mount, NFS or tmpfs.
    pub driver_opts: BTreeMap<String, String>,
    /// All labels, Marina's and others'.
    pub labels: BTreeMap<String, String>,
    /// Where the data lives on the host, when the engine says.
    pub mountpoint: Option<PathBuf>,
    /// Whether the volume exists on this machine only or in the whole cluster.
    pub scope: VolumeScope,
}

/// Where a volume exists, as its driver declares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VolumeScope {
    /// On this machine only (the `local` driver, and most plugins). Engines that say nothing
    /// mean this.
    Local,
    /// Cluster-wide: every node sees the same volume (some plugins, Swarm cluster volumes).
    Global,
}

/// A volume to create with [`Runtime::create_volume`](super::Runtime::create_volume).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewVolume {
    /// Its name; creating it fails when a volume of that name exists.
    pub name: String,
    /// The driver: `local` for a plain volume in Docker's data directory (empty means the
    /// engine's default, which is `local`).
    pub driver: String,
    /// Driver options. Copying an original's options is not always a copy of its storage:
    /// a `local` volume with a `device` option (a bind mount of a host directory, an NFS
    /// export) names *existing* storage, so a volume created with the same options shows the
    /// original's very files, and writing into it overwrites the original.
    pub driver_opts: BTreeMap<String, String>,
    /// Its labels (see [`crate::model::labels::labels_of_copy`] for a copy of another
    /// volume).
    pub labels: BTreeMap<String, String>,
}

/// `Runtime::volume_info` on the engine.
pub(super) async fn inspect(docker: &Docker, volume: &str) -> Result<Option<VolumeDetails>> {
    match docker.inspect_volume(volume).await {
        Ok(found) => Ok(Some(convert(found))),
        Err(e) if is_not_found(&e) => Ok(None),
        Err(source) => Err(RuntimeError::Volume {
            action: "inspect",
            volume: volume.to_owned(),
            source,
        }),
    }
}

/// `Runtime::create_volume` on the engine: refuses a name that exists.
///
/// The engine gives no atomic "create only if new" for volumes, so this looks first, creates,
/// and then compares the engine's answer with the request: a volume that another client
/// created in between with a different driver, other options or other labels is recognised
/// and refused. One created in that instant with exactly the same driver, options and labels
/// cannot be told apart from the one asked for, so callers serialise their own creations of
/// one name (the executor must hold that volume's lock while it creates it).
pub(super) async fn create(docker: &Docker, new: NewVolume) -> Result<VolumeDetails> {
    if inspect(docker, &new.name).await?.is_some() {
        return Err(RuntimeError::VolumeExists { volume: new.name });
    }
    let request = VolumeCreateRequest {
        name: Some(new.name.clone()),
        driver: Some(new.driver.clone()).filter(|d| !d.is_empty()),
        driver_opts: Some(new.driver_opts.clone().into_iter().collect()),
        labels: Some(new.labels.clone().into_iter().collect()),
        ..VolumeCreateRequest::default()
    };
    let created = match docker.create_volume(request).await {
        Ok(created) => convert(created),
        // A volume of that name with another driver or other options appeared meanwhile.
        Err(bollard::errors::Error::DockerResponseServerError {
            status_code: 409, ..
        }) => return Err(RuntimeError::VolumeExists { volume: new.name }),
        Err(source) => {
            return Err(RuntimeError::Volume {
                action: "create",
                volume: new.name,
                source,
            });
        }
    };
    if !is_what_was_asked(&created, &new) {
        debug!(volume = %new.name, found = ?created,
            "A volume of the name being created appeared meanwhile.");
        return Err(RuntimeError::VolumeExists { volume: new.name });
    }
    info!(volume = %created.name, driver = %created.driver, "Created a volume.");
    Ok(created)
}

/// Whether the engine's answer to a create is the new volume asked for rather than an
/// existing one the engine handed back. The driver compares by name with the tag dropped
/// (`plugin:latest` is reported as `plugin`); none asked for is the engine's default, `local`.
fn is_what_was_asked(created: &VolumeDetails, new: &NewVolume) -> bool {
    let driver = |name: &str| match name.strip_suffix(":latest").unwrap_or(name) {
        "" => "local".to_owned(),
        name => name.to_owned(),
    };
    created.name == new.name
        && driver(&created.driver) == driver(&new.driver)
        && created.driver_opts == new.driver_opts
        && created.labels == new.labels
}

/// `Runtime::remove_volume` on the engine: never forced, so a volume that a container (running
/// or not) mounts stays, and the error names those containers. A volume already gone counts
/// as removed.
pub(super) async fn remove(docker: &Docker, volume: &str) -> Result<()> {
    let options = RemoveVolumeOptionsBuilder::new().force(false).build();
    match docker.remove_volume(volume, Some(options)).await {
        Ok(()) => {
            info!(volume = %volume, "Removed a volume.");
            Ok(())
        }
        Err(e) if is_not_found(&e) => Ok(()),
        Err(bollard::errors::Error::DockerResponseServerError {
            status_code: 409, ..
        }) => Err(RuntimeError::VolumeInUse {
            volume: volume.to_owned(),
            containers: users(docker, volume).await,
        }),
        Err(source) => Err(RuntimeError::Volume {
            action: "remove",
            volume: volume.to_owned(),
            source,
        }),
    }
}

/// The containers (any state) that mount `volume`, by name (else id), for the error that
/// says why it cannot be removed; empty when they cannot be listed.
async fn users(docker: &Docker, volume: &str) -> Vec<String> {
    let filters = HashMap::from([("volume".to_owned(), vec![volume.to_owned()])]);
    let options = ListContainersOptionsBuilder::new()
        .all(true)
        .filters(&filters)
        .build();
    let Ok(summaries) = docker.list_containers(Some(options)).await else {
        return Vec::new();
    };
    let mut names: Vec<String> = summaries
        .into_iter()
        .filter_map(|c| container_ref(c.id, c.names))
        .map(|c| if c.name.is_empty() { c.id } else { c.name })
        .collect();
    names.sort();
    names
}

fn convert(volume: Volume) -> VolumeDetails {
    VolumeDetails {
        name: volume.name,
        driver: volume.driver,
        driver_opts: volume.options.into_iter().collect(),
        labels: volume.labels.into_iter().collect(),
        mountpoint: Some(volume.mountpoint)
            .filter(|m| !m.is_empty())
            .map(PathBuf::from),
        scope: match volume.scope {
            Some(VolumeScopeEnum::GLOBAL) => VolumeScope::Global,
            Some(VolumeScopeEnum::LOCAL | VolumeScopeEnum::EMPTY) | None => VolumeScope::Local,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn asked() -> NewVolume {
        NewVolume {
            name: "copy".into(),
            driver: "local".into(),
            driver_opts: BTreeMap::new(),
            labels: BTreeMap::from([("a".into(), "1".into())]),
        }
    }

    fn answer(labels: &[(&str, &str)]) -> VolumeDetails {
        VolumeDetails {
            name: "copy".into(),
            driver: "local".into(),
            driver_opts: BTreeMap::new(),
            labels: labels
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
            mountpoint: None,
            scope: VolumeScope::Local,
        }
    }

    #[test]
    fn an_existing_volume_handed_back_by_create_is_recognised() {
        assert!(is_what_was_asked(&answer(&[("a", "1")]), &asked()));
        assert!(!is_what_was_asked(&answer(&[]), &asked()));
        assert!(!is_what_was_asked(&answer(&[("a", "2")]), &asked()));
        let mut other_driver = answer(&[("a", "1")]);
        other_driver.driver = "nfs-plugin".into();
        assert!(!is_what_was_asked(&other_driver, &asked()));
        for driver in ["local:latest", ""] {
            let mut new = asked();
            new.driver = driver.into();
            assert!(is_what_was_asked(&answer(&[("a", "1")]), &new), "{driver}");
        }
    }

    #[test]
    fn a_volume_without_a_scope_is_local() {
        let volume = Volume {
            name: "v".into(),
            driver: "local".into(),
            mountpoint: String::new(),
            options: HashMap::from([("type".into(), "tmpfs".into())]),
            ..Volume::default()
        };
        let details = convert(volume);
        assert_eq!(details.scope, VolumeScope::Local);
        assert_eq!(details.mountpoint, None);
        assert_eq!(details.driver_opts["type"], "tmpfs");
    }
}
