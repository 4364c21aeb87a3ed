//! Jobs and logs from the job store, in the compatible shapes of SPEC §6, and "back up now".

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::json;
use tracing::warn;

use super::AppState;
use super::api::{ApiError, ApiPath, ApiQuery};
use crate::clock;
use crate::model::InstanceId;
use crate::reconcile::queue::Trigger;
use crate::reconcile::{Command, Message};
use crate::store::{JobFilter, JobId, JobRecord, JobStatus, LogLevel, LogRecord, StoreError};

/// Rows answered when the request names no limit.
const DEFAULT_LIMIT: u32 = 100;

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

fn store_error(e: &StoreError) -> ApiError {
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

/// `GET /api/status/{instanceId}`: the instance's jobs, newest first.
pub async fn status(
    State(state): State<AppState>,
    ApiPath(id): ApiPath<String>,
    ApiQuery(query): ApiQuery<ListQuery>,
) -> Result<Json<Vec<JobEntry>>, ApiError> {
    let instance = instance_id(&id)?;
    let jobs = state
        .store
        .instance_jobs(&instance, query.limit())
        .await
        .map_err(|e| store_error(&e))?;
    Ok(Json(jobs.into_iter().map(JobEntry::from).collect()))
}

/// `GET /api/jobs?instanceId=&status=&limit=`: jobs, newest first.
pub async fn jobs(
    State(state): State<AppState>,
    ApiQuery(query): ApiQuery<ListQuery>,
) -> Result<Json<Vec<JobEntry>>, ApiError> {
    let status = query
        .status
        .as_deref()
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

/// `GET /api/logs/job/{jobId}?limit=`: a job's log, oldest first.
pub async fn job_logs(
    State(state): State<AppState>,
    ApiPath(id): ApiPath<i64>,
    ApiQuery(query): ApiQuery<ListQuery>,
) -> Result<Json<Vec<LogEntry>>, ApiError> {
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
    let logs = state
        .store
        .job_logs(job, query.limit.map(|l| l.clamp(1, MAX_LIMIT)))
        .await
        .map_err(|e| store_error(&e))?;
    Ok(Json(logs.into_iter().map(LogEntry::from).collect()))
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
) -> Result<Json<Vec<LogEntry>>, ApiError> {
    let level = query
        .level
        .as_deref()
        .map(|l| {
            l.parse::<LogLevel>().map_err(|_| {
                ApiError::new(
                    StatusCode::BAD_REQUEST,
                    format!("level `{l}` is not one of ERROR, WARN, INFO, DEBUG"),
                )
            })
        })
        .transpose()?;
    let logs = state
        .store
        .system_logs(query.limit(), level)
        .await
        .map_err(|e| store_error(&e))?;
    Ok(Json(logs.into_iter().map(LogEntry::from).collect()))
}

/// `POST /api/instances/{id}/backup`: `202 {jobId}`; `404` for an unknown instance, `409`
/// when it is already running or queued.
pub async fn trigger(
    State(state): State<AppState>,
    ApiPath(id): ApiPath<String>,
) -> Result<(StatusCode, Json<serde_json::Value>), ApiError> {
    let snapshot = state.snapshot();
    let Some(instance) = snapshot.instance(&id) else {
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            format!("no instance `{id}` is configured on this node"),
        ));
    };
    if instance.running || instance.queued.is_some() {
        let what = if instance.running {
            "running"
        } else {
            "queued"
        };
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            format!("instance `{id}` is already {what}; wait for it to finish"),
        ));
    }
    if state.shutdown.is_cancelled() {
        return Err(ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "Marina is shutting down",
        ));
    }
    if !snapshot.ready {
        return Err(ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "Marina has not listed Docker yet; try again in a moment",
        ));
    }
    let job = state
        .store
        .create_job(
            &instance.id,
            &snapshot.node_name,
            Trigger::Manual,
            clock::now(),
        )
        .await
        .map_err(|e| store_error(&e))?;
    let command = Command::Trigger {
        instance: instance.id.clone(),
        job: Some(job.id),
    };
    if state.inbox.send(Message::Command(command)).await.is_err() {
        let reason = Some("Marina shut down before the job started".to_owned());
        if let Err(e) = state
            .store
            .set_job_status(job.id, JobStatus::Aborted, reason, clock::now())
            .await
        {
            warn!(job = %job.id, error = %e, "Could not close a job that will not run.");
        }
        return Err(ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "Marina is shutting down",
        ));
    }
    Ok((
        StatusCode::ACCEPTED,
        Json(json!({ "jobId": job.id.0, "iid": job.iid })),
    ))
}
