//! Wiring: start-up and shutdown order of the daemon (`marina run`), and the one-shot
//! `marina plan`.
//!
//! Start-up follows DESIGN.md: parse the whole config before binding the port, then start
//! the controller (which decides nothing until it has a config *and* a complete Docker
//! listing), the config watcher, the Docker watcher and the HTTP server. Shutdown is a
//! protocol: readiness turns false, intake stops, tasks end, the process exits 0.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use tokio::signal::unix::{SignalKind, signal};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::{error, info, warn};

use crate::clock::{self, Clock};
use crate::config::{self, ConfigError, Environment, Loaded, ProcessEnvironment};
use crate::docker::{self, DockerClient, DockerError};
use crate::http::{self, AppState};
use crate::model::InventoryChange;
use crate::reconcile::{Controller, Message, Snapshot, State, reconcile};

/// How many messages may wait in the reconciler's inbox before sources wait.
const INBOX_CAPACITY: usize = 4096;

/// Longest pause between attempts to reach a Docker engine that does not answer.
const MAX_CONNECT_BACKOFF: Duration = Duration::from_secs(30);

/// Why `marina run` or `marina plan` stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum AppError {
    /// The config file is invalid (exit code 2).
    #[error("{0}")]
    InvalidConfig(ConfigError),
    /// The HTTP port could not be opened.
    #[error("cannot listen on {addr}: {source}; set apiBind/apiPort to a free address")]
    Listen {
        /// The address.
        addr: SocketAddr,
        /// Why.
        source: std::io::Error,
    },
    /// The HTTP server failed.
    #[error("the HTTP server failed: {0}")]
    Serve(std::io::Error),
    /// The config watcher could not start.
    #[error(transparent)]
    Watch(#[from] config::watch::WatchError),
    /// Docker could not be reached or listed (`marina plan`).
    #[error("{0}; is the Docker engine running, and is DOCKER_HOST right?")]
    Docker(#[from] DockerError),
}

/// Reads and validates the config, as both commands start.
fn load_config(path: &Path) -> Result<(Loaded, Vec<u8>), AppError> {
    let bytes = std::fs::read(path).unwrap_or_default();
    let loaded = config::load(path, &ProcessEnvironment).map_err(AppError::InvalidConfig)?;
    for warning in &loaded.warnings {
        warn!(problem = %warning, "The config has a warning.");
    }
    Ok((loaded, bytes))
}

/// Runs the daemon until SIGTERM or SIGINT. A second signal exits at once.
pub async fn run(config_path: PathBuf) -> Result<(), AppError> {
    let (loaded, bytes) = load_config(&config_path)?;
    let config = Arc::new(loaded.config);
    let addr = SocketAddr::new(config.api.bind, config.api.port);
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|source| AppError::Listen { addr, source })?;
    let bound = listener.local_addr().unwrap_or(addr);
    info!(config = %config_path.display(), node = %config.node_name, instances = config.instances.len(), "Marina is starting.");

    let shutdown = CancellationToken::new();
    let tasks = TaskTracker::new();
    // Not tracked: after the first signal it waits for a second one, which may never come.
    tokio::spawn(handle_signals(shutdown.clone()));

    let (inbox, receiver) = mpsc::channel(INBOX_CAPACITY);
    let (controller, snapshots) =
        Controller::new(State::new(BTreeMap::new()), receiver, None, Clock::System);
    tasks.spawn(controller.run(shutdown.clone()));
    let first = Message::ConfigLoaded {
        config: Arc::clone(&config),
        warnings: loaded.warnings,
    };
    if inbox.send(first).await.is_err() {
        error!("The controller stopped before the config reached it.");
    }

    let env: Arc<dyn Environment + Send + Sync> = Arc::new(ProcessEnvironment);
    let watcher = config::watch::watch(
        config_path.clone(),
        env,
        inbox.clone(),
        bytes,
        shutdown.clone(),
    );
    let watcher_shutdown = shutdown.clone();
    tasks.spawn(async move {
        if let Err(e) = watcher.await {
            error!(error = %e, "Config changes will not be picked up; restart Marina to apply a new config.");
            // Keep running: the loaded config stays in force.
            watcher_shutdown.cancelled().await;
        }
    });
    tasks.spawn(follow_docker(
        inbox,
        config.resync_interval,
        shutdown.clone(),
    ));

    let app = http::router(AppState {
        snapshots,
        shutdown: shutdown.clone(),
    });
    info!(address = %bound, "HTTP API listening.");
    let graceful = shutdown.clone();
    let served = axum::serve(listener, app)
        .with_graceful_shutdown(async move { graceful.cancelled().await })
        .await;
    shutdown.cancel();
    tasks.close();
    tasks.wait().await;
    info!("Marina stopped.");
    served.map_err(AppError::Serve)
}

/// Cancels `shutdown` on the first SIGTERM or SIGINT; exits the process on the second.
async fn handle_signals(shutdown: CancellationToken) {
    let (Ok(mut term), Ok(mut int)) = (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) else {
        error!("Cannot listen for SIGTERM/SIGINT; stop Marina with SIGKILL.");
        return;
    };
    tokio::select! {
        () = shutdown.cancelled() => return,
        _ = term.recv() => info!(signal = "SIGTERM", "Shutting down."),
        _ = int.recv() => info!(signal = "SIGINT", "Shutting down."),
    }
    shutdown.cancel();
    tokio::select! {
        _ = term.recv() => {}
        _ = int.recv() => {}
    }
    warn!("Second signal received; exiting at once.");
    std::process::exit(1);
}

/// Connects to Docker (retrying with backoff while the engine does not answer) and follows
/// it until shutdown.
async fn follow_docker(
    inbox: mpsc::Sender<Message>,
    resync: Duration,
    shutdown: CancellationToken,
) {
    let mut backoff = Duration::from_millis(250);
    let client = loop {
        match DockerClient::connect().await {
            Ok(client) => break client,
            Err(e) => {
                warn!(error = %e, retry_in = ?backoff, "Cannot reach the Docker engine; retrying. Nothing is scheduled until it answers.");
                let reason = e.to_string();
                let _ = inbox
                    .send(Message::Inventory(InventoryChange::Disconnected { reason }))
                    .await;
                tokio::select! {
                    () = shutdown.cancelled() => return,
                    () = tokio::time::sleep(backoff) => {}
                }
                backoff = (backoff * 2).min(MAX_CONNECT_BACKOFF);
            }
        }
    };
    docker::watch(client, inbox, resync, shutdown).await;
}

/// What `marina plan` found: the snapshot the controller would publish after its first
/// complete listing, and the config warnings.
pub struct Plan {
    /// The state graph as the controller sees it.
    pub snapshot: Snapshot,
    /// The config file.
    pub config_path: PathBuf,
}

/// Loads the config, lists Docker once, and works out what the controller would do.
/// Read-only: nothing is started, stopped or written.
pub async fn plan(config_path: PathBuf) -> Result<Plan, AppError> {
    let (loaded, _) = load_config(&config_path)?;
    let client = DockerClient::connect().await?;
    let inventory = client.list().await?;
    let now = clock::now();
    let mut state = State::new(BTreeMap::new());
    state.apply(
        Message::ConfigLoaded {
            config: Arc::new(loaded.config),
            warnings: loaded.warnings,
        },
        now,
    );
    state.apply(Message::Inventory(InventoryChange::Listed(inventory)), now);
    state.refresh_graph();
    for decision in reconcile(&state, now) {
        state.apply_decision(decision);
    }
    Ok(Plan {
        snapshot: Snapshot::build(&state, now),
        config_path,
    })
}
