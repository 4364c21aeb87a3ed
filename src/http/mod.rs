//! The HTTP surface on one port: health, readiness and the read-only API, all answered from
//! the latest published [`Snapshot`] — handlers never touch the reconciler's state.

mod api;
mod jobs;

use std::sync::Arc;

use axum::Router;
use axum::routing::{get, post};
use tokio::sync::{mpsc, watch};
use tokio_util::sync::CancellationToken;

use crate::reconcile::{Message, Snapshot};
use crate::store::Store;

/// What handlers read.
#[derive(Clone)]
pub struct AppState {
    /// The latest snapshot of the state graph.
    pub snapshots: watch::Receiver<Arc<Snapshot>>,
    /// Cancelled when Marina shuts down: readiness turns false at once.
    pub shutdown: CancellationToken,
    /// Job history and logs.
    pub store: Store,
    /// The reconciler's inbox, for commands ("back up now").
    pub inbox: mpsc::Sender<Message>,
}

impl AppState {
    fn snapshot(&self) -> Arc<Snapshot> {
        self.snapshots.borrow().clone()
    }
}

/// The router with every endpoint.
pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/healthz", get(api::healthz))
        .route("/readyz", get(api::readyz))
        .route("/api/health", get(api::health))
        .route("/api/info", get(api::info))
        .route("/api/schedules", get(api::schedules))
        .route("/api/instances", get(api::instances))
        .route("/api/instances/{id}", get(api::instance))
        .route("/api/targets", get(api::targets))
        .route("/api/config", get(api::config))
        .route("/api/instances/{id}/backup", post(jobs::trigger))
        .route("/api/status/{id}", get(jobs::status))
        .route("/api/jobs", get(jobs::jobs))
        .route("/api/logs/job", get(jobs::instance_logs))
        .route("/api/logs/job/{id}", get(jobs::job_logs))
        .route("/api/logs/system", get(jobs::system_logs))
        .fallback(api::not_found)
        .with_state(state)
}
