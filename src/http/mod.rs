//! The HTTP surface on one port: health, readiness and the read-only API, all answered from
//! the latest published [`Snapshot`] — handlers never touch the reconciler's state.

mod api;

use std::sync::Arc;

use axum::Router;
use axum::routing::get;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use crate::reconcile::Snapshot;

/// What handlers read.
#[derive(Clone)]
pub struct AppState {
    /// The latest snapshot of the state graph.
    pub snapshots: watch::Receiver<Arc<Snapshot>>,
    /// Cancelled when Marina shuts down: readiness turns false at once.
    pub shutdown: CancellationToken,
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
        .fallback(api::not_found)
        .with_state(state)
}
