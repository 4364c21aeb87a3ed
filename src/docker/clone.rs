//! Offline clones of database containers: a new container that runs the same database server
//! as an existing one — same image, environment, command, entrypoint, user and working
//! directory — but reaches nothing and nothing reaches it, and holds none of the original's
//! data. A restore loads a dump into such a clone to prove that the dump restores, without
//! touching the original or its clients.

use std::collections::BTreeMap;

use bollard::Docker;
use bollard::models::{ContainerCreateBody, HostConfig};
use bollard::query_parameters::CreateContainerOptionsBuilder;
use tracing::{info, warn};

use super::error::{Result, RuntimeError, container_error};
use crate::model::labels::labels_of_copy;

/// `Runtime::create_db_clone` on the engine (its documentation says what is copied and what
/// not).
pub(super) async fn create(
    docker: &Docker,
    source: &str,
    name: &str,
    labels: BTreeMap<String, String>,
) -> Result<String> {
    let inspected = docker
        .inspect_container(source, None)
        .await
        .map_err(|e| container_error("inspect", source, e))?;
    let config = inspected.config.unwrap_or_default();
    let image = inspected
        .image
        .filter(|id| !id.is_empty())
        .or(config.image)
        .unwrap_or_default();
    let labels = labels_of_copy(config.labels.iter().flatten(), labels);
    let body = ContainerCreateBody {
        image: Some(image.clone()),
        env: config.env,
        // Explicit, even when empty: an absent entrypoint would let the image's come back,
        // where the source was created with it cleared.
        entrypoint: Some(config.entrypoint.unwrap_or_default()),
        cmd: Some(config.cmd.unwrap_or_default()),
        user: config.user,
        working_dir: config.working_dir,
        stop_signal: config.stop_signal,
        stop_timeout: config.stop_timeout,
        labels: Some(labels.into_iter().collect()),
        tty: Some(false),
        host_config: Some(HostConfig {
            // Offline: its clients must never reach it by mistake, nor it them.
            network_mode: Some("none".to_owned()),
            auto_remove: Some(false),
            ..HostConfig::default()
        }),
        ..ContainerCreateBody::default()
    };
    let options = CreateContainerOptionsBuilder::new().name(name).build();
    let created = match docker.create_container(Some(options), body).await {
        Ok(created) => created,
        // The name is taken: the engine refuses atomically, so no look beforehand is needed.
        Err(bollard::errors::Error::DockerResponseServerError {
            status_code: 409, ..
        }) => {
            return Err(RuntimeError::ContainerExists {
                container: name.to_owned(),
            });
        }
        Err(e) => return Err(container_error("create a clone of", source, e)),
    };
    for warning in &created.warnings {
        warn!(container = %created.id, warning = %warning,
            "The Docker engine warned while creating a container.");
    }
    info!(source = %source, clone = %name, container = %created.id, image = %image,
        "Created an offline clone of a database container.");
    Ok(created.id)
}
