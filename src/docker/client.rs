//! The connection to the Docker engine and the errors talking to it can produce.

use bollard::Docker;

/// Where bollard connects when `DOCKER_HOST` is unset; only used to name the engine in errors.
const DEFAULT_HOST: &str = "unix:///var/run/docker.sock";

/// A failed conversation with the Docker engine, saying what Marina was doing and with which
/// object.
#[derive(Debug, thiserror::Error)]
pub enum DockerError {
    /// The engine could not be reached, or it did not say which API version it speaks.
    #[error("cannot connect to the Docker engine at {host}: {source}")]
    Connect {
        /// `DOCKER_HOST`, or the default socket.
        host: String,
        /// What bollard reported.
        #[source]
        source: bollard::errors::Error,
    },
    /// Listing all volumes failed.
    #[error("cannot list Docker volumes: {source}")]
    ListVolumes {
        /// What bollard reported.
        #[source]
        source: bollard::errors::Error,
    },
    /// Listing all containers failed.
    #[error("cannot list Docker containers: {source}")]
    ListContainers {
        /// What bollard reported.
        #[source]
        source: bollard::errors::Error,
    },
    /// Reading one volume failed (other than because it does not exist).
    #[error("cannot inspect Docker volume {name}: {source}")]
    InspectVolume {
        /// The volume's name.
        name: String,
        /// What bollard reported.
        #[source]
        source: bollard::errors::Error,
    },
    /// Reading one container failed (other than because it does not exist).
    #[error("cannot read Docker container {id}: {source}")]
    InspectContainer {
        /// The container's id.
        id: String,
        /// What bollard reported.
        #[source]
        source: bollard::errors::Error,
    },
    /// The event stream broke (a closed connection or an event that did not decode).
    #[error("the Docker event stream failed: {source}")]
    EventStream {
        /// What bollard reported.
        #[source]
        source: bollard::errors::Error,
    },
}

/// A result whose error is a [`DockerError`].
pub type Result<T, E = DockerError> = std::result::Result<T, E>;

/// A connected Docker client that speaks the engine's API version.
///
/// Cheap to clone: clones share one connection pool.
#[derive(Debug, Clone)]
pub struct DockerClient {
    /// Already negotiated, so every request uses a dialect the engine understands
    /// (DEPENDENCIES.md, bollard pitfall 1).
    docker: Docker,
}

impl DockerClient {
    /// Connects to the engine named by `DOCKER_HOST` (else the local socket) and agrees on an
    /// API version with it. Fails when the engine does not answer.
    pub async fn connect() -> Result<Self> {
        let host = std::env::var("DOCKER_HOST").unwrap_or_else(|_| DEFAULT_HOST.to_owned());
        let connect_error = |source| DockerError::Connect {
            host: host.clone(),
            source,
        };
        let docker = Docker::connect_with_defaults().map_err(connect_error)?;
        // bollard 0.21 does not put the version in the URL (upstream issue #736), but once it
        // does, only a negotiated client keeps working against older engines.
        let docker = docker.negotiate_version().await.map_err(connect_error)?;
        tracing::debug!(
            host = %host,
            api_version = %docker.client_version(),
            "Connected to the Docker engine."
        );
        Ok(Self { docker })
    }

    /// The API version agreed with the engine, for logs and diagnostics.
    #[must_use]
    pub fn api_version(&self) -> String {
        self.docker.client_version().to_string()
    }

    /// The bollard client, for the rest of the adapter; bollard stays inside `src/docker`.
    pub(super) fn docker(&self) -> &Docker {
        &self.docker
    }
}

/// Whether bollard reports that the object does not exist.
pub(super) fn is_not_found(error: &bollard::errors::Error) -> bool {
    matches!(
        error,
        bollard::errors::Error::DockerResponseServerError {
            status_code: 404,
            ..
        }
    )
}
