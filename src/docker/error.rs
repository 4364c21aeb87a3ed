//! The errors of container operations ([`RuntimeError`]), shared by every layer of the
//! runtime: the trait, execs, containers and the output they stream.

use super::client::is_not_found;
use super::limits::ExecInterrupted;

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
    /// The engine refused or failed an operation on a volume.
    #[error("cannot {action} Docker volume {volume}: {source}")]
    Volume {
        /// What Marina was doing (`inspect`, `create`, `remove`).
        action: &'static str,
        /// The volume's name.
        volume: String,
        /// What bollard reported.
        #[source]
        source: bollard::errors::Error,
    },
    /// A volume Marina was to create already exists: Marina never writes into a volume it did
    /// not create for the purpose.
    #[error(
        "Docker volume {volume} already exists; choose a name no volume has, or remove that \
         volume first if its data is not needed"
    )]
    VolumeExists {
        /// The volume's name.
        volume: String,
    },
    /// A volume Marina was to remove is mounted by containers (running or not).
    #[error(
        "Docker volume {volume} is in use by {}; remove those containers first (Marina never \
         force-removes a volume)",
        if containers.is_empty() { "a container".to_owned() } else { containers.join(", ") }
    )]
    VolumeInUse {
        /// The volume's name.
        volume: String,
        /// The names (else ids) of the containers that mount it, as far as they could be
        /// listed.
        containers: Vec<String>,
    },
    /// A container Marina was to create has a name another container already has.
    #[error(
        "a Docker container named {container} already exists; choose another name, or remove \
         that container first"
    )]
    ContainerExists {
        /// The name asked for.
        container: String,
    },
    /// A file cannot be uploaded as asked (nothing was sent to the engine).
    #[error("cannot upload {path} into Docker container {container}: {reason}")]
    Upload {
        /// The container's id or name.
        container: String,
        /// Where the file was to go.
        path: String,
        /// What is wrong with the request.
        reason: String,
    },
}

/// A result whose error is a [`RuntimeError`].
pub type Result<T, E = RuntimeError> = std::result::Result<T, E>;

/// A failed operation on a container, telling "does not exist" apart.
pub(super) fn container_error(
    action: &'static str,
    container: &str,
    source: bollard::errors::Error,
) -> RuntimeError {
    if is_not_found(&source) {
        RuntimeError::NoSuchContainer {
            container: container.to_owned(),
        }
    } else {
        RuntimeError::Container {
            action,
            container: container.to_owned(),
            source,
        }
    }
}
