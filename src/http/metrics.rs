//! `GET /metrics`: the Prometheus text format (SPEC §6, §7). No auth unless `metricsAuth`.

use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use tracing::error;

use super::AppState;
use super::api::ApiError;
use crate::metrics::CONTENT_TYPE;

/// Renders every metric.
pub async fn metrics(State(state): State<AppState>) -> Response {
    match state.metrics.render() {
        Ok(text) => ([(header::CONTENT_TYPE, CONTENT_TYPE)], text).into_response(),
        Err(e) => {
            error!(error = %e, "The metrics could not be rendered.");
            ApiError::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                format!("the metrics could not be rendered: {e}"),
            )
            .into_response()
        }
    }
}
