//! Wiring: start-up and shutdown order of the daemon (`marina run`), the one-shot
//! `marina plan`, and the commands that ask a running daemon for something ([`client`]:
//! `marina backup`; [`restore`]: `marina snapshots` and `marina restore`).
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
use crate::docker::own_container::own_container_id;
use crate::docker::{DockerClient, DockerError, DockerRuntime};
use crate::executor::Executor;
use crate::executor::recovery::recover;
use crate::gauges;
use crate::http::{self, AppState};
use crate::metrics::{Metrics, MetricsError};
use crate::model::InventoryChange;
use crate::reconcile::state::Decision;
use crate::reconcile::{Controller, Message, Snapshot, State, reconcile};
use crate::sources::{config_file, docker_events};
use crate::store::{Store, StoreError};
use crate::telemetry;

pub mod client;
pub mod restore;
pub mod restore_text;

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
    /// The job store could not be opened or read.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The config watcher could not start.
    #[error(transparent)]
    Watch(#[from] config_file::WatchError),
    /// The daemon refused a request (`marina backup`, `snapshots`, `restore`).
    #[error("{0}")]
    Refused(String),
    /// The daemon answered in a shape this command does not know: another version of Marina.
    #[error(
        "Marina at {url} answered in a form this command does not understand ({detail}); are `marina` and the daemon the same version?"
    )]
    Unexpected {
        /// The daemon's base URL.
        url: String,
        /// What did not fit.
        detail: String,
    },
    /// Following a queued job failed; the job itself goes on in the daemon.
    #[error(
        "{source}; job {job} was queued and goes on without this command: follow it in the dashboard or with `GET /api/logs/job/{job}`"
    )]
    LostJob {
        /// The job that was being followed.
        job: i64,
        /// Why following it failed.
        source: Box<AppError>,
    },
    /// The daemon could not be reached (`marina backup`, `snapshots`, `restore`).
    #[error("cannot reach Marina at {url}: {source}; is `marina run` running there?")]
    Unreachable {
        /// The daemon's base URL.
        url: String,
        /// Why.
        source: reqwest::Error,
    },
    /// Docker could not be reached or listed (`marina plan`).
    #[error("{0}; is the Docker engine running, and is DOCKER_HOST right?")]
    Docker(#[from] DockerError),
    /// The metrics registry could not be built (a bug).
    #[error(transparent)]
    Metrics(#[from] MetricsError),
}

/// Reads and validates the config, as both commands start.
fn load_config(path: &Path) -> Result<(Loaded, Vec<u8>), AppError> {
    let bytes = std::fs::read(path).unwrap_or_default();
    let loaded = config::load(path, &ProcessEnvironment).map_err(AppError::InvalidConfig)?;
    Ok((loaded, bytes))
}

/// Runs the daemon until SIGTERM or SIGINT. A second signal exits at once.
///
/// Start-up order: config (invalid → exit 2) → job store → logging into it → HTTP port →
/// controller → Docker (retrying until it answers) → recovery of an interrupted run →
/// executor → config and Docker watches. The controller takes no decision before the first
/// Docker listing, which comes after recovery, so nothing new runs before recovery is done.
#[allow(clippy::too_many_lines)] // The start-up order reads best as one sequence, top to bottom.
pub async fn run(config_path: PathBuf) -> Result<(), AppError> {
    let (loaded, bytes) = load_config(&config_path)?;
    let config = Arc::new(loaded.config);
    let store = Store::open(&config.db_path).await?;
    telemetry::init(Some(store.clone()));
    for warning in &loaded.warnings {
        warn!(problem = %warning, "The config has a warning.");
    }
    let addr = SocketAddr::new(config.api.bind, config.api.port);
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|source| AppError::Listen { addr, source })?;
    let bound = listener.local_addr().unwrap_or(addr);
    info!(config = %config_path.display(), node = %config.node_name, instances = config.instances.len(), db = %config.db_path.display(), "Marina is starting.");

    let shutdown = CancellationToken::new();
    let tasks = TaskTracker::new();
    // Not tracked: after the first signal it waits for a second one, which may never come.
    tokio::spawn(handle_signals(shutdown.clone()));

    let history = store.history().await?;
    let metrics = Metrics::new()?;
    let (inbox, receiver) = mpsc::channel(INBOX_CAPACITY);
    let (orders_tx, orders) = mpsc::unbounded_channel();
    let (controller, snapshots) = Controller::new(
        State::new(history),
        receiver,
        Some(orders_tx),
        Clock::System,
        metrics.clone(),
    );
    tasks.spawn(controller.run(shutdown.clone()));
    tasks.spawn(gauges::follow(
        metrics.clone(),
        snapshots.clone(),
        shutdown.clone(),
    ));
    let first = Message::ConfigLoaded {
        config: Arc::clone(&config),
        warnings: loaded.warnings,
    };
    if inbox.send(first).await.is_err() {
        error!("The controller stopped before the config reached it.");
    }

    let app = http::router(AppState {
        snapshots,
        shutdown: shutdown.clone(),
        store: store.clone(),
        inbox: inbox.clone(),
        metrics: metrics.clone(),
        auth: http::auth::Auth::new(&config.api, Clock::System),
        federation: http::peers::Federation::new(config.api.auth_password.clone(), Clock::System),
    })
    .into_make_service_with_connect_info::<SocketAddr>();
    info!(address = %bound, "HTTP API listening.");
    let graceful = shutdown.clone();
    let server = tokio::spawn(async move {
        axum::serve(listener, app)
            .with_graceful_shutdown(async move { graceful.cancelled().await })
            .await
    });

    let env: Arc<dyn Environment + Send + Sync> = Arc::new(ProcessEnvironment);
    let watcher = config_file::watch(
        config_path.clone(),
        env,
        inbox.clone(),
        bytes,
        shutdown.clone(),
        metrics.clone(),
    );
    let watcher_shutdown = shutdown.clone();
    tasks.spawn(async move {
        if let Err(e) = watcher.await {
            error!(error = %e, "Config changes will not be picked up; restart Marina to apply a new config.");
            watcher_shutdown.cancelled().await;
        }
    });
    tasks.spawn(prune_logs(
        store.clone(),
        config.log_retention,
        shutdown.clone(),
    ));

    if let Some(client) = connect_docker(&inbox, &shutdown).await {
        let runtime = Arc::new(DockerRuntime::new(client.clone()));
        let owner = owner_of(&config.db_path);
        match recover(&*runtime, &store, &owner).await {
            Ok(_) => {}
            Err(e) => error!(error = %e, "Recovery could not read the job store; check dbPath."),
        }
        let own_container = own_container_id(&*runtime, &config.staging_dir).await;
        let executor = Executor::new(
            runtime,
            store.clone(),
            inbox.clone(),
            own_container,
            owner,
            metrics.clone(),
        );
        tasks.spawn(executor.run(orders, shutdown.clone(), config.shutdown_grace));
        tasks.spawn(docker_events::watch(
            client,
            inbox,
            config.resync_interval,
            shutdown.clone(),
            metrics,
        ));
    }

    let outcome = server.await;
    shutdown.cancel();
    tasks.close();
    tasks.wait().await;
    if let Err(e) = store.close().await {
        error!(error = %e, "The job store did not close cleanly.");
    }
    info!("Marina stopped.");
    match outcome {
        Ok(result) => result.map_err(AppError::Serve),
        Err(e) => Err(AppError::Serve(std::io::Error::other(e))),
    }
}

/// The owner label value of this Marina's containers: a digest of its job store's absolute
/// path, stable across restarts and different for two Marinas on one host. FNV-1a, so the
/// value does not change with the Rust version.
fn owner_of(db_path: &Path) -> String {
    let path = std::fs::canonicalize(db_path).unwrap_or_else(|_| db_path.to_path_buf());
    let digest = path
        .as_os_str()
        .as_encoded_bytes()
        .iter()
        .fold(0xcbf2_9ce4_8422_2325_u64, |hash, byte| {
            (hash ^ u64::from(*byte)).wrapping_mul(0x0100_0000_01b3)
        });
    format!("{digest:016x}")
}

/// Deletes log rows older than `logRetention`, at start and then hourly.
async fn prune_logs(store: Store, retention: Duration, shutdown: CancellationToken) {
    let mut hourly = tokio::time::interval(Duration::from_hours(1));
    loop {
        tokio::select! {
            () = shutdown.cancelled() => return,
            _ = hourly.tick() => {}
        }
        // A retention too long to subtract from now keeps everything.
        let Some(cutoff) = chrono::TimeDelta::from_std(retention)
            .ok()
            .and_then(|keep| clock::now().checked_sub_signed(keep))
        else {
            continue;
        };
        match store.prune_logs(cutoff).await {
            Ok(0) => {}
            Ok(rows) => info!(rows, "Old log lines pruned."),
            Err(e) => warn!(error = %e, "Could not prune old log lines."),
        }
    }
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

/// Connects to Docker, retrying with backoff while the engine does not answer; `None` if
/// Marina is shut down first.
async fn connect_docker(
    inbox: &mpsc::Sender<Message>,
    shutdown: &CancellationToken,
) -> Option<DockerClient> {
    let mut backoff = Duration::from_millis(250);
    loop {
        match DockerClient::connect().await {
            Ok(client) => return Some(client),
            Err(e) => {
                warn!(error = %e, retry_in = ?backoff, "Cannot reach the Docker engine; retrying. Nothing is scheduled until it answers.");
                let reason = e.to_string();
                let _ = inbox
                    .send(Message::Inventory(InventoryChange::Disconnected { reason }))
                    .await;
                tokio::select! {
                    () = shutdown.cancelled() => return None,
                    () = tokio::time::sleep(backoff) => {}
                }
                backoff = (backoff * 2).min(MAX_CONNECT_BACKOFF);
            }
        }
    }
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
        // Read-only: no container is looked into, so a kind only its dump tools can tell
        // shows as not looked for yet.
        if !matches!(decision, Decision::Probe { .. }) {
            state.apply_decision(decision);
        }
    }
    Ok(Plan {
        snapshot: Snapshot::build(&state, now),
        config_path,
    })
}

/// A backup the daemon accepted.
#[derive(Debug, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Accepted {
    /// The job record.
    pub job_id: i64,
}

/// Asks the daemon to back up `instance` now (`marina backup`). The daemon is found at `url`,
/// else at the `apiBind:apiPort` of the config (loopback when it binds every address).
pub async fn backup(
    config_path: &Path,
    instance: &str,
    url: Option<String>,
) -> Result<Accepted, AppError> {
    let daemon = client::Daemon::connect(config_path, url).await?;
    let answer = daemon
        .post(&format!("/api/instances/{instance}/backup"), None)
        .await?;
    if answer.status == reqwest::StatusCode::ACCEPTED {
        daemon.parse(&answer.body, "the accepted backup")
    } else {
        Err(daemon.refused(&answer))
    }
}

/// Asks the daemon whether it is alive (`GET /healthz`), for container health checks. The
/// daemon is found at `url`, else from the config; when the config cannot be read (a broken
/// edit the daemon itself is ignoring), at the default port, so a typo in `config.yml` never
/// makes a healthy Marina look dead.
pub async fn healthcheck(config_path: &Path, url: Option<String>) -> Result<(), AppError> {
    let base = match url {
        Some(url) => url.trim_end_matches('/').to_owned(),
        None => load_config(config_path).map_or_else(
            |_| format!("http://127.0.0.1:{}", config::DEFAULT_API_PORT),
            |(loaded, _)| local_url(&loaded.config.api),
        ),
    };
    let unreachable = |source| AppError::Unreachable {
        url: base.clone(),
        source,
    };
    let response = reqwest::Client::builder()
        .timeout(std::time::Duration::from_secs(5))
        .build()
        .map_err(unreachable)?
        .get(format!("{base}/healthz"))
        .send()
        .await
        .map_err(unreachable)?;
    if response.status().is_success() {
        Ok(())
    } else {
        Err(AppError::Refused(format!(
            "Marina at {base} answered {} to /healthz",
            response.status()
        )))
    }
}

/// The daemon's URL from this machine: `apiBind:apiPort`, loopback when it binds every
/// address.
fn local_url(api: &config::ApiConfig) -> String {
    let host = if api.bind.is_unspecified() {
        if api.bind.is_ipv4() {
            "127.0.0.1".to_owned()
        } else {
            "[::1]".to_owned()
        }
    } else if api.bind.is_ipv6() {
        format!("[{}]", api.bind)
    } else {
        api.bind.to_string()
    };
    format!("http://{host}:{}", api.port)
}
