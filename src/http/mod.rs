//! The HTTP surface on one port: health, readiness and the read-only API, all answered from
//! the latest published [`Snapshot`] — handlers never touch the reconciler's state.

mod api;
pub mod auth;
mod dashboard;
mod jobs;
mod metrics;
pub mod peers;
mod restore;

use std::sync::Arc;

use axum::Router;
use axum::routing::{get, post};
use tokio::sync::{mpsc, watch};
use tokio_util::sync::CancellationToken;

use crate::metrics::Metrics;
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
    /// What `/metrics` renders.
    pub metrics: Metrics,
    /// Sessions, login rate limits and CORS (SPEC §6); read from the config at start.
    pub auth: auth::Auth,
    /// Peers' circuits and sessions, for merged answers.
    pub federation: peers::Federation,
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
        .route("/api/auth/login", post(auth::login))
        .route("/api/auth/logout", post(auth::logout))
        .route("/api/auth/check", get(auth::check))
        .route("/api/info", get(api::info))
        .route("/api/schedules", get(api::schedules))
        .route("/api/peers", get(api::peers))
        .route("/api/instances", get(api::instances))
        .route("/api/instances/{id}", get(api::instance))
        .route("/api/targets", get(api::targets))
        .route("/api/config", get(api::config))
        .route("/api/instances/{id}/backup", post(jobs::trigger))
        .route("/api/instances/{id}/snapshots", get(restore::snapshots))
        .route("/api/instances/{id}/restore", post(restore::restore))
        .route("/api/status/{id}", get(jobs::status))
        .route("/api/jobs", get(jobs::jobs))
        .route("/api/logs/job", get(jobs::instance_logs))
        .route("/api/logs/job/{id}", get(jobs::job_logs))
        .route("/api/logs/system", get(jobs::system_logs))
        .route("/metrics", get(metrics::metrics))
        .merge(dashboard::router())
        .fallback(api::not_found)
        // Last, so it covers every route above (and the fallback).
        .layer(axum::middleware::from_fn_with_state(
            state.auth.clone(),
            auth::guard,
        ))
        .with_state(state)
}
