//! Jobs and logs from the job store, in the compatible shapes of SPEC §6, and "back up now".

use axum::Json;
use axum::extract::State;
use axum::http::header::CONTENT_TYPE;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use tokio::sync::oneshot;
use tracing::warn;

use super::api::{ApiError, ApiPath, ApiQuery};
use super::{AppState, peers};
use crate::clock;
use crate::model::{InstanceId, JobKind, RestoreRequest};
use crate::reconcile::queue::Trigger;
use crate::reconcile::{Command, Message, Reply, TriggerAnswer};
use crate::store::{
    JobFilter, JobId, JobRecord, JobStatus, LogId, LogLevel, LogRecord, StoreError,
};

/// Rows answered when the request names no limit.
const DEFAULT_LIMIT: u32 = 100;

/// Lines of a job's log answered when the request names no limit (Marina 0.9 answered the
/// first 1000 too); a long log is read page by page with `afterId`.
pub const DEFAULT_LOG_PAGE: u32 = 1000;

/// The most rows one request may ask for.
const MAX_LIMIT: u32 = 10_000;

/// A job as `GET /api/status/{instanceId}` shows it (Marina 0.9's shape), plus the trigger
/// and summary for `GET /api/jobs`.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct JobEntry {
    id: i64,
    iid: i64,
    instance_id: InstanceId,
    node_name: String,
    is_active: bool,
    status: &'static str,
    last_started_at: Option<DateTime<Utc>>,
    last_completed_at: Option<DateTime<Utc>>,
    last_targets_successful: u32,
    last_targets_total: u32,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
    trigger: Trigger,
    message: Option<String>,
    kind: JobKind,
    #[serde(skip_serializing_if = "Option::is_none")]
    restore: Option<RestoreRequest>,
}

impl From<JobRecord> for JobEntry {
    fn from(job: JobRecord) -> Self {
        Self {
            id: job.id.0,
            iid: job.iid,
            instance_id: job.instance,
            node_name: job.node,
            is_active: job.status.is_active(),
            status: job.status.as_str(),
            last_started_at: job.started_at,
            last_completed_at: job.completed_at,
            last_targets_successful: job.targets_successful,
            last_targets_total: job.targets_total,
            created_at: job.created_at,
            updated_at: job.updated_at,
            trigger: job.trigger,
            message: job.message,
            kind: job.kind,
            restore: job.restore,
        }
    }
}

/// A log line as the log endpoints show it (Marina 0.9's shape).
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct LogEntry {
    id: i64,
    timestamp: DateTime<Utc>,
    level: &'static str,
    message: String,
    instance_id: Option<InstanceId>,
    target_id: Option<String>,
    job_status_id: Option<i64>,
    job_status_iid: Option<i64>,
}

impl From<LogRecord> for LogEntry {
    fn from(record: LogRecord) -> Self {
        Self {
            id: record.id.0,
            timestamp: record.line.ts,
            level: record.line.level.as_str(),
            message: record.line.message,
            instance_id: record.line.instance,
            target_id: record.line.target,
            job_status_id: record.line.job_id.map(|j| j.0),
            job_status_iid: record.job_iid,
        }
    }
}

/// `?limit=` and the filters some endpoints take.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ListQuery {
    limit: Option<u32>,
    instance_id: Option<String>,
    status: Option<String>,
    level: Option<String>,
    /// Only log lines after this one (how the dashboard follows a running job).
    after_id: Option<i64>,
    /// A configured peer whose job log to pass through.
    peer: Option<String>,
}

impl ListQuery {
    fn limit(&self) -> u32 {
        self.limit.unwrap_or(DEFAULT_LIMIT).clamp(1, MAX_LIMIT)
    }

    fn instance(&self) -> Result<Option<InstanceId>, ApiError> {
        self.instance_id
            .as_deref()
            .map(|id| {
                InstanceId::parse(id)
                    .map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, format!("instanceId {e}")))
            })
            .transpose()
    }
}

pub(super) fn store_error(e: &StoreError) -> ApiError {
    warn!(error = %e, "A job store query failed.");
    ApiError::new(
        StatusCode::INTERNAL_SERVER_ERROR,
        "the job store could not answer; see Marina's log",
    )
}

fn instance_id(id: &str) -> Result<InstanceId, ApiError> {
    InstanceId::parse(id)
        .map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, format!("instance id {e}")))
}

/// `GET /api/status/{instanceId}`: the instance's jobs on this node and on its peers (an
/// instance id may run on several nodes), newest first.
pub async fn status(
    State(state): State<AppState>,
    ApiPath(id): ApiPath<String>,
    ApiQuery(query): ApiQuery<ListQuery>,
    request: HeaderMap,
) -> Result<(HeaderMap, Json<Vec<Value>>), ApiError> {
    let instance = instance_id(&id)?;
    let limit = query.limit();
    let jobs = state
        .store
        .instance_jobs(&instance, limit)
        .await
        .map_err(|e| store_error(&e))?;
    let local: Vec<JobEntry> = jobs.into_iter().map(JobEntry::from).collect();
    let path = format!("/api/status/{instance}?limit={limit}");
    let (headers, mut entries) = state
        .federation
        .merge(&state.snapshot(), &request, local, &path)
        .await;
    // Stable: this node's jobs stay ahead of a peer's created at the same instant.
    entries.sort_by_key(|e| std::cmp::Reverse(timestamp(&e["createdAt"])));
    entries.truncate(usize::try_from(limit).unwrap_or(usize::MAX));
    Ok((headers, Json(entries)))
}

/// A JSON timestamp as the API writes it; unreadable ones sort first (oldest).
fn timestamp(value: &Value) -> Option<DateTime<Utc>> {
    value
        .as_str()
        .and_then(|s| DateTime::parse_from_rfc3339(s).ok())
        .map(|t| t.with_timezone(&Utc))
}

/// `GET /api/jobs?instanceId=&status=&limit=`: jobs, newest first.
pub async fn jobs(
    State(state): State<AppState>,
    ApiQuery(query): ApiQuery<ListQuery>,
) -> Result<Json<Vec<JobEntry>>, ApiError> {
    let status = query
        .status
        .as_deref()
        .filter(|s| !s.is_empty())
        .map(|s| {
            s.parse::<JobStatus>().map_err(|_| {
                ApiError::new(
                    StatusCode::BAD_REQUEST,
                    format!("status `{s}` is not one of scheduled, in_progress, success, partial_success, failed, aborted, timed_out"),
                )
            })
        })
        .transpose()?;
    let filter = JobFilter {
        instance: query.instance()?,
        status,
        limit: query.limit(),
    };
    let jobs = state
        .store
        .jobs(filter)
        .await
        .map_err(|e| store_error(&e))?;
    Ok(Json(jobs.into_iter().map(JobEntry::from).collect()))
}

/// `GET /api/logs/job/{jobId}?limit=&afterId=`: a job's log, oldest first, one page of at
/// most `limit` lines (default [`DEFAULT_LOG_PAGE`], as Marina 0.9): from the first line, or
/// with `afterId` from the line after that one. A client pages through a long log by asking
/// again with the last id it got until a page comes back short.
pub async fn job_logs(
    State(state): State<AppState>,
    ApiPath(id): ApiPath<i64>,
    ApiQuery(query): ApiQuery<ListQuery>,
    request: HeaderMap,
) -> Result<Response, ApiError> {
    if let Some(peer) = &query.peer {
        return peer_job_logs(&state, &request, peer, id, &query).await;
    }
    let job = JobId(id);
    if state
        .store
        .job(job)
        .await
        .map_err(|e| store_error(&e))?
        .is_none()
    {
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            format!("no job {id} on this node"),
        ));
    }
    // Line ids start at 1, so "after 0" is the whole log from its start.
    let after = LogId(query.after_id.unwrap_or(0));
    let limit = query.limit.unwrap_or(DEFAULT_LOG_PAGE).clamp(1, MAX_LIMIT);
    let logs = state
        .store
        .job_logs_after(job, after, limit)
        .await
        .map_err(|e| store_error(&e))?;
    Ok(Json(logs.into_iter().map(LogEntry::from).collect::<Vec<_>>()).into_response())
}

/// `GET /api/logs/job/{jobId}?peer=URL`: the log of a job on a peer, passed through. Only a
/// configured peer is asked, so this is no open proxy.
async fn peer_job_logs(
    state: &AppState,
    request: &HeaderMap,
    peer: &str,
    id: i64,
    query: &ListQuery,
) -> Result<Response, ApiError> {
    if peers::is_mesh_request(request) {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "a request from a peer is answered from this node only; it is not forwarded",
        ));
    }
    let snapshot = state.snapshot();
    let Some(url) = peers::configured(&snapshot.peers, peer) else {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            format!("`{peer}` is not one of this node's configured peers; only those are asked"),
        ));
    };
    let mut params = Vec::new();
    if let Some(limit) = query.limit {
        params.push(format!("limit={limit}"));
    }
    if let Some(after) = query.after_id {
        params.push(format!("afterId={after}"));
    }
    let path = format!("/api/logs/job/{id}?{}", params.join("&"));
    match state
        .federation
        .get(url, snapshot.peer_timeout, &path)
        .await
    {
        Ok(answer) => Ok((
            answer.status,
            [(CONTENT_TYPE, "application/json")],
            answer.body,
        )
            .into_response()),
        Err(e) => Err(ApiError::new(
            StatusCode::BAD_GATEWAY,
            format!("peer {url} {e}"),
        )),
    }
}

/// `GET /api/logs/job?instanceId=X&limit=`: the logs of an instance's jobs.
pub async fn instance_logs(
    State(state): State<AppState>,
    ApiQuery(query): ApiQuery<ListQuery>,
) -> Result<Json<Vec<LogEntry>>, ApiError> {
    let Some(instance) = query.instance()? else {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "instanceId is required",
        ));
    };
    let logs = state
        .store
        .instance_logs(&instance, query.limit())
        .await
        .map_err(|e| store_error(&e))?;
    Ok(Json(logs.into_iter().map(LogEntry::from).collect()))
}

/// `GET /api/logs/system?limit=&level=`: lines that belong to no job.
pub async fn system_logs(
    State(state): State<AppState>,
    ApiQuery(query): ApiQuery<ListQuery>,
    request: HeaderMap,
) -> Result<(HeaderMap, Json<Vec<Value>>), ApiError> {
    let level = query
        .level
        .as_deref()
        .filter(|l| !l.is_empty())
        .map(|l| {
            l.parse::<LogLevel>().map_err(|_| {
                ApiError::new(
                    StatusCode::BAD_REQUEST,
                    format!("level `{l}` is not one of ERROR, WARN, INFO, DEBUG"),
                )
            })
        })
        .transpose()?;
    let limit = query.limit();
    let logs = state
        .store
        .system_logs(limit, level)
        .await
        .map_err(|e| store_error(&e))?;
    let local: Vec<LogEntry> = logs.into_iter().map(LogEntry::from).collect();
    let mut path = format!("/api/logs/system?limit={limit}");
    if let Some(level) = level {
        path.push_str("&level=");
        path.push_str(level.as_str());
    }
    let (headers, mut entries) = state
        .federation
        .merge(&state.snapshot(), &request, local, &path)
        .await;
    // Oldest first across nodes, keeping the newest `limit` lines.
    entries.sort_by_key(|e| timestamp(&e["timestamp"]));
    let excess = entries
        .len()
        .saturating_sub(usize::try_from(limit).unwrap_or(usize::MAX));
    entries.drain(..excess);
    Ok((headers, Json(entries)))
}

/// `POST /api/instances/{id}/backup`: `202 {jobId}`; `404` for an unknown instance, `409`
/// when it is already running or queued. The reconciler decides, not the snapshot: of
/// concurrent requests exactly one is accepted.
pub async fn trigger(
    State(state): State<AppState>,
    ApiPath(id): ApiPath<String>,
) -> Result<(StatusCode, Json<serde_json::Value>), ApiError> {
    let Ok(instance) = InstanceId::parse(&id) else {
        return Err(not_configured(&id));
    };
    if state.shutdown.is_cancelled() {
        return Err(shutting_down());
    }
    // Its own task, so a client hanging up mid-request cannot cut it off between creating
    // the record and deleting a refused one.
    tokio::spawn(run_now(state, instance)).await.map_err(|e| {
        warn!(instance = %id, error = %e, "A run-now request failed unexpectedly.");
        ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "the request failed; see Marina's log",
        )
    })?
}

/// Creates the job record, asks the reconciler, and deletes the record when refused.
///
/// The record comes first because the 202 must carry its id, and a run the reconciler
/// accepted may start at once: the executor then needs the record already, or it would make
/// a second one. A refused request's record never reached the queue or the executor, so
/// nothing else can touch it and deleting it leaves no trace (its `iid` is free again unless
/// a concurrent request took the next one).
async fn run_now(
    state: AppState,
    instance: InstanceId,
) -> Result<(StatusCode, Json<serde_json::Value>), ApiError> {
    let job = state
        .store
        .create_job(
            &instance,
            &state.snapshot().node_name,
            Trigger::Manual,
            clock::now(),
        )
        .await
        .map_err(|e| store_error(&e))?;
    let (reply, answer) = oneshot::channel();
    let command = Command::Trigger {
        instance: instance.clone(),
        job: Some(job.id),
        reply: Some(Reply(reply)),
    };
    // No answer means the reconciler stopped before reading the request.
    let answer = match state.inbox.send(Message::Command(command)).await {
        Ok(()) => answer.await.ok(),
        Err(_) => None,
    };
    if answer == Some(TriggerAnswer::Accepted) {
        return Ok((
            StatusCode::ACCEPTED,
            Json(json!({ "jobId": job.id.0, "iid": job.iid })),
        ));
    }
    if let Err(e) = state.store.delete_job(job.id).await {
        warn!(instance = %instance, job = %job.id, error = %e, "Could not delete the record of a refused run-now request.");
    }
    let id = instance.as_str();
    Err(match answer {
        Some(TriggerAnswer::Running) => ApiError::new(
            StatusCode::CONFLICT,
            format!("instance `{id}` is already running; wait for it to finish"),
        ),
        Some(TriggerAnswer::Queued) => ApiError::new(
            StatusCode::CONFLICT,
            format!("instance `{id}` is already queued; wait for it to finish"),
        ),
        Some(TriggerAnswer::NotConfigured) => not_configured(id),
        Some(TriggerAnswer::NotReady) => ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "Marina has not listed Docker yet; try again in a moment",
        ),
        Some(TriggerAnswer::Accepted) | None => shutting_down(),
    })
}

pub(super) fn not_configured(id: &str) -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        format!("no instance `{id}` is configured on this node"),
    )
}

pub(super) fn shutting_down() -> ApiError {
    ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "Marina is shutting down")
}
