//! Reading volumes and containers from the engine into Marina's observed-state model.
//!
//! One conversion per bollard type, shared by the full listing and the single-object refresh
//! that follows an event, so both paths always agree. Nothing from Docker is trusted to be
//! complete: a missing field becomes a default, and an object without an identity is skipped
//! with a warning instead of failing the whole listing.

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;

use bollard::models::{ContainerSummary, MountPoint, Volume};
use bollard::query_parameters::{ListContainersOptionsBuilder, ListVolumesOptions};

use super::client::{DockerClient, DockerError, Result, is_not_found};
use crate::model::{ContainerInfo, ContainerState, Inventory, VolumeInfo, VolumeMount};

impl DockerClient {
    /// Lists every volume and every container (running or not).
    pub async fn list(&self) -> Result<Inventory> {
        let volumes = self.list_volumes().await?;
        let containers = self
            .list_containers(HashMap::new())
            .await
            .map_err(|source| DockerError::ListContainers { source })?;
        Ok(Inventory {
            volumes: volumes.into_iter().map(|v| (v.name.clone(), v)).collect(),
            containers: containers.into_iter().map(|c| (c.id.clone(), c)).collect(),
        })
    }

    /// Reads one volume by name; `None` when it does not exist.
    pub async fn volume(&self, name: &str) -> Result<Option<VolumeInfo>> {
        match self.docker().inspect_volume(name).await {
            Ok(volume) => Ok(convert_volume(volume)),
            Err(e) if is_not_found(&e) => Ok(None),
            Err(source) => Err(DockerError::InspectVolume {
                name: name.to_owned(),
                source,
            }),
        }
    }

    /// Reads one container by its full id; `None` when it does not exist.
    pub async fn container(&self, id: &str) -> Result<Option<ContainerInfo>> {
        // Listing with an id filter rather than inspecting gives the same summary shape as the
        // full listing, so one conversion serves both and they cannot drift apart.
        let filters = HashMap::from([("id".to_owned(), vec![id.to_owned()])]);
        let containers = self.list_containers(filters).await.map_err(|source| {
            DockerError::InspectContainer {
                id: id.to_owned(),
                source,
            }
        })?;
        // The daemon matches the id filter as an unanchored pattern, so a short id could match
        // inside another container's id; keep only a real prefix match.
        Ok(containers.into_iter().find(|c| c.id.starts_with(id)))
    }

    async fn list_volumes(&self) -> Result<Vec<VolumeInfo>> {
        let response = self
            .docker()
            .list_volumes(None::<ListVolumesOptions>)
            .await
            .map_err(|source| DockerError::ListVolumes { source })?;
        for warning in response.warnings.unwrap_or_default() {
            tracing::warn!(warning = %warning, "The Docker engine warned while listing volumes.");
        }
        Ok(response
            .volumes
            .unwrap_or_default()
            .into_iter()
            .filter_map(convert_volume)
            .collect())
    }

    async fn list_containers(
        &self,
        filters: HashMap<String, Vec<String>>,
    ) -> Result<Vec<ContainerInfo>, bollard::errors::Error> {
        // Stopped containers matter too: their volumes are targets and their names are taken.
        let mut options = ListContainersOptionsBuilder::new().all(true);
        if !filters.is_empty() {
            options = options.filters(&filters);
        }
        let summaries = self.docker().list_containers(Some(options.build())).await?;
        Ok(summaries
            .into_iter()
            .filter_map(convert_container)
            .collect())
    }
}

/// A volume as Marina sees it; `None` (with a warning) for a volume without a name.
fn convert_volume(volume: Volume) -> Option<VolumeInfo> {
    if volume.name.is_empty() {
        tracing::warn!(driver = %volume.driver, "Skipping a Docker volume without a name.");
        return None;
    }
    Some(VolumeInfo {
        name: volume.name,
        driver: volume.driver,
        mountpoint: Some(volume.mountpoint)
            .filter(|m| !m.is_empty())
            .map(PathBuf::from),
        labels: sorted(volume.labels),
    })
}

/// A container as Marina sees it; `None` (with a warning) for one without an id or a name.
fn convert_container(summary: ContainerSummary) -> Option<ContainerInfo> {
    let Some(id) = summary.id.filter(|id| !id.is_empty()) else {
        tracing::warn!(names = ?summary.names, "Skipping a Docker container without an id.");
        return None;
    };
    let Some(name) = primary_name(summary.names.as_deref().unwrap_or_default()) else {
        tracing::warn!(container = %id, "Skipping a Docker container without a name.");
        return None;
    };
    let state = summary.state.map_or(ContainerState::Unknown, |s| {
        ContainerState::from_docker(s.as_ref())
    });
    let mounts = summary
        .mounts
        .unwrap_or_default()
        .into_iter()
        .filter_map(|m| convert_mount(&id, m))
        .collect();
    Some(ContainerInfo {
        id,
        name,
        image: summary.image.unwrap_or_default(),
        labels: sorted(summary.labels.unwrap_or_default()),
        state,
        mounts,
    })
}

/// A named-volume mount; `None` for bind mounts, tmpfs and the like, which are not targets.
fn convert_mount(container: &str, mount: MountPoint) -> Option<VolumeMount> {
    if mount.typ.as_deref() != Some("volume") {
        return None;
    }
    let Some(volume) = mount.name.filter(|n| !n.is_empty()) else {
        tracing::warn!(container = %container, destination = ?mount.destination,
            "Skipping a volume mount without a volume name.");
        return None;
    };
    Some(VolumeMount {
        volume,
        destination: mount.destination.unwrap_or_default(),
        // Unknown counts as writable: `stopAttached` then errs on the side of a consistent copy.
        read_write: mount.rw.unwrap_or(true),
    })
}

/// The container's own name. Docker prefixes names with `/`, and legacy links add aliases of
/// the form `/other/alias`; the own name is the one without a further `/`.
fn primary_name(names: &[String]) -> Option<String> {
    let stripped = names.iter().map(|n| n.strip_prefix('/').unwrap_or(n));
    let mut fallback = None;
    for name in stripped {
        if name.is_empty() {
            continue;
        }
        if !name.contains('/') {
            return Some(name.to_owned());
        }
        fallback.get_or_insert(name);
    }
    fallback.map(str::to_owned)
}

fn sorted(labels: HashMap<String, String>) -> BTreeMap<String, String> {
    labels.into_iter().collect()
}

#[cfg(test)]
mod tests {
    use bollard::models::ContainerSummaryStateEnum;

    use super::*;

    fn mount(typ: &str, name: Option<&str>, rw: Option<bool>) -> MountPoint {
        MountPoint {
            typ: Some(typ.to_owned()),
            name: name.map(str::to_owned),
            destination: Some("/data".to_owned()),
            rw,
            ..MountPoint::default()
        }
    }

    #[test]
    fn only_named_volume_mounts_are_kept() {
        let summary = ContainerSummary {
            id: Some("abc".to_owned()),
            names: Some(vec!["/web".to_owned()]),
            image: Some("nginx:1".to_owned()),
            state: Some(ContainerSummaryStateEnum::RUNNING),
            mounts: Some(vec![
                mount("volume", Some("data"), Some(false)),
                mount("bind", None, Some(true)),
                mount("tmpfs", None, Some(true)),
                mount("volume", None, Some(true)),
                mount("volume", Some("cache"), None),
            ]),
            ..ContainerSummary::default()
        };
        let info = convert_container(summary).unwrap();
        assert_eq!(info.name, "web");
        assert_eq!(info.state, ContainerState::Running);
        assert_eq!(
            info.mounts,
            [
                VolumeMount {
                    volume: "data".into(),
                    destination: "/data".into(),
                    read_write: false,
                },
                VolumeMount {
                    volume: "cache".into(),
                    destination: "/data".into(),
                    read_write: true,
                },
            ]
        );
    }

    #[test]
    fn a_container_without_id_or_name_is_skipped_and_missing_fields_get_defaults() {
        let no_id = ContainerSummary {
            names: Some(vec!["/x".to_owned()]),
            ..ContainerSummary::default()
        };
        assert_eq!(convert_container(no_id), None);
        let no_name = ContainerSummary {
            id: Some("abc".to_owned()),
            ..ContainerSummary::default()
        };
        assert_eq!(convert_container(no_name), None);
        let bare = ContainerSummary {
            id: Some("abc".to_owned()),
            names: Some(vec!["/x".to_owned()]),
            ..ContainerSummary::default()
        };
        let info = convert_container(bare).unwrap();
        assert_eq!(info.state, ContainerState::Unknown);
        assert_eq!(info.image, "");
        assert!(info.labels.is_empty() && info.mounts.is_empty());
    }

    #[test]
    fn the_own_name_wins_over_link_aliases() {
        let names = |n: &[&str]| n.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>();
        assert_eq!(
            primary_name(&names(&["/app/db", "/db"])).as_deref(),
            Some("db")
        );
        assert_eq!(
            primary_name(&names(&["/app/db"])).as_deref(),
            Some("app/db")
        );
        assert_eq!(primary_name(&names(&["/", ""])), None);
        assert_eq!(primary_name(&[]), None);
    }

    #[test]
    fn volumes_keep_labels_and_drop_an_empty_mountpoint() {
        let volume = Volume {
            name: "v".to_owned(),
            driver: "local".to_owned(),
            labels: HashMap::from([("a".to_owned(), "1".to_owned())]),
            ..Volume::default()
        };
        let info = convert_volume(volume).unwrap();
        assert_eq!(info.mountpoint, None);
        assert_eq!(info.labels.get("a").map(String::as_str), Some("1"));
        assert_eq!(convert_volume(Volume::default()), None);
    }
}
