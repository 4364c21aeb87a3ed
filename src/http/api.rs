//! Handlers of the read-only API (SPEC §6). The shapes of compatible endpoints
//! (`/api/health`, `/api/info`, `/api/schedules`) follow Marina 0.9 field by field.

use std::collections::BTreeMap;

use axum::Json;
use axum::extract::{FromRequestParts, Path, Query, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::json;
use tracing::warn;

use super::AppState;
use super::peers::PeerStatus;
use crate::clock;
use crate::model::{InstanceId, TargetId};
use crate::reconcile::Snapshot;
use crate::reconcile::graph::{InvalidLabels, TargetSource, UnassignedTarget};
use crate::reconcile::snapshot::{ConfigView, InstanceView};
use crate::reconcile::status::Condition;

/// An error answer: `{"error": "..."}` with its status, and what else explains it.
pub struct ApiError(StatusCode, String, Option<serde_json::Value>);

impl ApiError {
    /// An error with `status` and a message for the operator.
    pub fn new(status: StatusCode, message: impl Into<String>) -> Self {
        Self(status, message.into(), None)
    }

    /// An error whose answer carries the fields of `details` besides `error` (a refused
    /// restore's plan, say).
    pub fn with_details(
        status: StatusCode,
        message: impl Into<String>,
        details: serde_json::Value,
    ) -> Self {
        Self(status, message.into(), Some(details))
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut body = json!({ "error": self.1 });
        if let (Some(serde_json::Value::Object(details)), Some(fields)) =
            (self.2, body.as_object_mut())
        {
            fields.extend(details);
        }
        (self.0, Json(body)).into_response()
    }
}

/// `Query` whose rejection (a malformed query string) is a JSON error like every other.
pub struct ApiQuery<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequestParts<S> for ApiQuery<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        Query::<T>::from_request_parts(parts, state)
            .await
            .map(|Query(value)| Self(value))
            .map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, e.body_text()))
    }
}

/// `Path` whose rejection (e.g. a job id that is not a number) is a JSON error.
pub struct ApiPath<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned + Send> FromRequestParts<S> for ApiPath<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        Path::<T>::from_request_parts(parts, state)
            .await
            .map(|Path(value)| Self(value))
            .map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, e.body_text()))
    }
}

/// Liveness: the process answers.
pub async fn healthz() -> &'static str {
    "ok\n"
}

/// Readiness: a config is loaded, Docker has been listed once, and Marina is not stopping.
pub async fn readyz(State(state): State<AppState>) -> Response {
    let snapshot = state.snapshot();
    let reason = if state.shutdown.is_cancelled() {
        Some("shutting down")
    } else if snapshot.config.generation == 0 {
        Some("no config loaded yet")
    } else if !snapshot.ready {
        Some("waiting for the first complete Docker listing")
    } else {
        None
    };
    match reason {
        None => (StatusCode::OK, Json(json!({ "ready": true }))).into_response(),
        Some(reason) => (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({ "ready": false, "reason": reason })),
        )
            .into_response(),
    }
}

/// `GET /api/health` → `{status: "ok", time}`.
pub async fn health() -> Json<serde_json::Value> {
    Json(json!({ "status": "ok", "time": clock::now() }))
}

/// `GET /api/info` → `{nodeName, version}`.
pub async fn info(State(state): State<AppState>) -> Json<serde_json::Value> {
    let snapshot = state.snapshot();
    Json(json!({ "nodeName": snapshot.node_name, "version": env!("CARGO_PKG_VERSION") }))
}

/// One entry of `GET /api/schedules`, as Marina 0.9 shaped it.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ScheduleEntry {
    instance_id: InstanceId,
    node_name: String,
    schedule_cron: String,
    next_run_at: Option<DateTime<Utc>>,
    target_ids: Vec<TargetId>,
    retention: RetentionEntry,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
    #[serde(skip_serializing_if = "Option::is_none")]
    latest_job_status: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    latest_job_completed_at: Option<DateTime<Utc>>,
}

/// Retention as 0.9 reported it (custom images keep their own: zeros here).
#[allow(clippy::struct_field_names)] // The names are the compatible JSON keys.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct RetentionEntry {
    keep_daily: u32,
    keep_weekly: u32,
    keep_monthly: u32,
}

/// `GET /api/schedules`: one entry per instance of this node, with its latest job, followed by
/// the peers' entries (federation).
pub async fn schedules(
    State(state): State<AppState>,
    request: HeaderMap,
) -> (HeaderMap, Json<Vec<serde_json::Value>>) {
    let snapshot = state.snapshot();
    let local = local_schedules(&state, &snapshot).await;
    let (headers, mut entries) = state
        .federation
        .merge(&snapshot, &request, local, "/api/schedules")
        .await;
    // A node listed twice (or a peer that is this node) must not show its instances twice.
    let mut seen = std::collections::HashSet::new();
    entries.retain(|e| seen.insert((e["nodeName"].clone(), e["instanceId"].clone())));
    (headers, Json(entries))
}

/// `GET /api/peers`: each configured peer, asked for `/api/info` now.
pub async fn peers(State(state): State<AppState>) -> Json<Vec<PeerStatus>> {
    let snapshot = state.snapshot();
    Json(
        state
            .federation
            .probe(&snapshot.peers, snapshot.peer_timeout)
            .await,
    )
}

async fn local_schedules(state: &AppState, snapshot: &Snapshot) -> Vec<ScheduleEntry> {
    let mut entries = Vec::with_capacity(snapshot.instances.len());
    for instance in &snapshot.instances {
        // Custom images own their retention: Marina applies none, shown as zeros.
        let retention = instance.retention.map_or(
            RetentionEntry {
                keep_daily: 0,
                keep_weekly: 0,
                keep_monthly: 0,
            },
            |r| RetentionEntry {
                keep_daily: r.keep_daily,
                keep_weekly: r.keep_weekly,
                keep_monthly: r.keep_monthly,
            },
        );
        let latest = match state.store.latest_backup(&instance.id).await {
            Ok(latest) => latest,
            Err(e) => {
                warn!(instance = %instance.id, error = %e, "Could not read the latest backup for /api/schedules.");
                None
            }
        };
        entries.push(ScheduleEntry {
            instance_id: instance.id.clone(),
            node_name: snapshot.node_name.clone(),
            schedule_cron: instance.schedule.clone(),
            next_run_at: instance.next_run_at,
            target_ids: instance.targets.iter().map(|t| t.id.clone()).collect(),
            retention,
            created_at: instance.created_at,
            updated_at: instance.updated_at,
            latest_job_status: latest.as_ref().map(|job| job.status.as_str().to_owned()),
            latest_job_completed_at: latest.and_then(|job| job.completed_at),
        });
    }
    entries
}

/// `GET /api/instances`: every instance with targets and conditions.
pub async fn instances(State(state): State<AppState>) -> Json<Vec<InstanceView>> {
    Json(state.snapshot().instances.clone())
}

/// `GET /api/instances/{id}`.
pub async fn instance(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<InstanceView>, ApiError> {
    state
        .snapshot()
        .instance(&id)
        .cloned()
        .map(Json)
        .ok_or_else(|| {
            ApiError::new(
                StatusCode::NOT_FOUND,
                format!("no instance `{id}` is configured on this node"),
            )
        })
}

/// One discovered target across instances.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct TargetEntry {
    id: TargetId,
    kind: &'static str,
    /// The configured instances that back it up.
    instances: Vec<InstanceId>,
    /// Instance ids its labels name that are not configured.
    unknown_instances: Vec<InstanceId>,
    /// `true` when no configured instance backs it up.
    unassigned: bool,
    source: Option<TargetSource>,
    conditions: Vec<Condition>,
}

/// `GET /api/targets` answer.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct TargetsAnswer {
    targets: Vec<TargetEntry>,
    unassigned: Vec<UnassignedTarget>,
    invalid_labels: Vec<InvalidLabels>,
    unprotected_volumes: Vec<String>,
}

/// `GET /api/targets`: every target with its instances (or "unassigned"), wrong labels, and
/// volumes no policy covers.
pub async fn targets(State(state): State<AppState>) -> Json<TargetsAnswer> {
    let snapshot = state.snapshot();
    let mut entries: BTreeMap<TargetId, TargetEntry> = BTreeMap::new();
    for instance in &snapshot.instances {
        for target in &instance.targets {
            let entry = entries
                .entry(target.id.clone())
                .or_insert_with(|| TargetEntry {
                    id: target.id.clone(),
                    kind: target.kind,
                    instances: Vec::new(),
                    unknown_instances: Vec::new(),
                    unassigned: false,
                    source: Some(target.source),
                    conditions: target.conditions.clone(),
                });
            entry.instances.push(instance.id.clone());
        }
    }
    for unassigned in &snapshot.unassigned_targets {
        let kind = match unassigned.target {
            TargetId::Volume(_) => "volume",
            TargetId::Db(_) => "db",
        };
        let entry = entries
            .entry(unassigned.target.clone())
            .or_insert_with(|| TargetEntry {
                id: unassigned.target.clone(),
                kind,
                instances: Vec::new(),
                unknown_instances: Vec::new(),
                unassigned: true,
                source: Some(TargetSource::Label),
                conditions: Vec::new(),
            });
        entry
            .unknown_instances
            .extend(unassigned.unknown_instances.iter().cloned());
    }
    Json(TargetsAnswer {
        targets: entries.into_values().collect(),
        unassigned: snapshot.unassigned_targets.clone(),
        invalid_labels: snapshot.invalid_labels.clone(),
        unprotected_volumes: snapshot.unprotected_volumes.clone(),
    })
}

/// `GET /api/config`: generation and the latest reload, with located errors; never a secret
/// (diagnostics never contain values of secret fields).
pub async fn config(State(state): State<AppState>) -> Json<ConfigView> {
    Json(state.snapshot().config.clone())
}

/// Unknown paths.
pub async fn not_found() -> ApiError {
    ApiError::new(StatusCode::NOT_FOUND, "no such endpoint")
}
