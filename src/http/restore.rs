//! Restore endpoints: an instance's restore points, a restore's dry run, and the restore
//! job itself. The questions need the instance's repository and the engine, so they go
//! through the reconciler (which knows the instance) to the executor (which may run restic);
//! a restore is a job record of kind `restore`, queued like a run-now backup.

use axum::Json;
use axum::extract::State;
use axum::extract::rejection::JsonRejection;
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use serde_json::json;
use tokio::sync::oneshot;
use tracing::warn;

use super::AppState;
use super::api::{ApiError, ApiPath, ApiQuery};
use super::jobs::{not_configured, shutting_down, store_error};
use crate::clock;
use crate::model::{
    DockerName, InstanceId, Refusal, RefusalKind, RestoreAnswer, RestorePlan, RestorePoint,
    RestoreQuestion, RestoreRequest, SnapshotChoice, TargetId,
};
use crate::reconcile::{AskReply, Command, Message, Reply, TriggerAnswer};
use crate::store::NewJob;

/// `?target=&count=` of `GET /api/instances/{id}/snapshots`.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SnapshotsQuery {
    target: Option<String>,
    #[serde(default)]
    count: bool,
}

/// The answer of `GET /api/instances/{id}/snapshots`.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct SnapshotList {
    instance: InstanceId,
    target: Option<TargetId>,
    snapshots: Vec<RestorePoint>,
}

/// `GET /api/instances/{id}/snapshots`: the instance's snapshots on every node that shares
/// its repository, newest first; with `count=true` sizes restic did not record are counted.
pub async fn snapshots(
    State(state): State<AppState>,
    ApiPath(id): ApiPath<String>,
    ApiQuery(query): ApiQuery<SnapshotsQuery>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let instance = InstanceId::parse(&id).map_err(|_| not_configured(&id))?;
    let target = query
        .target
        .as_deref()
        .map(TargetId::parse)
        .transpose()
        .map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, format!("target: {e}")))?;
    let question = RestoreQuestion::Snapshots {
        target: target.clone(),
        count: query.count,
    };
    match ask(&state, &instance, question).await? {
        RestoreAnswer::Snapshots(snapshots) => Ok(Json(json!(SnapshotList {
            instance,
            target,
            snapshots,
        }))),
        RestoreAnswer::Plan(_) => Err(unexpected()),
    }
}

/// The body of `POST /api/instances/{id}/restore`.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RestoreBody {
    target: String,
    #[serde(default)]
    snapshot: Option<String>,
    #[serde(default)]
    to: Option<String>,
    #[serde(default)]
    in_place: bool,
    #[serde(default)]
    dry_run: bool,
}

impl RestoreBody {
    fn request(&self) -> Result<RestoreRequest, ApiError> {
        let bad = |field: &str, e: String| {
            ApiError::new(StatusCode::BAD_REQUEST, format!("{field}: {e}"))
        };
        let request = RestoreRequest {
            target: TargetId::parse(&self.target).map_err(|e| bad("target", e.to_string()))?,
            snapshot: match &self.snapshot {
                Some(text) => SnapshotChoice::parse(text).map_err(|e| bad("snapshot", e))?,
                None => SnapshotChoice::Latest,
            },
            to: self
                .to
                .as_deref()
                .map(DockerName::parse)
                .transpose()
                .map_err(|e| bad("to", e.to_string()))?,
            in_place: self.in_place,
        };
        request
            .check()
            .map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, e))?;
        Ok(request)
    }
}

/// `POST /api/instances/{id}/restore`: with `dryRun`, `200` and the plan; else the restore is
/// queued as a job (`202 {jobId, iid, plan}`), unless its plan has conflicts (`409`).
pub async fn restore(
    State(state): State<AppState>,
    ApiPath(id): ApiPath<String>,
    body: Result<Json<RestoreBody>, JsonRejection>,
) -> Result<(StatusCode, Json<serde_json::Value>), ApiError> {
    let Json(body) = body.map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, e.body_text()))?;
    let instance = InstanceId::parse(&id).map_err(|_| not_configured(&id))?;
    if state.shutdown.is_cancelled() {
        return Err(shutting_down());
    }
    let request = body.request()?;
    let plan = match ask(&state, &instance, RestoreQuestion::Plan(request.clone())).await? {
        RestoreAnswer::Plan(plan) => plan,
        RestoreAnswer::Snapshots(_) => return Err(unexpected()),
    };
    if body.dry_run {
        return Ok((StatusCode::OK, Json(json!(*plan))));
    }
    if !plan.conflicts.is_empty() {
        return Err(ApiError::with_details(
            StatusCode::CONFLICT,
            format!(
                "the restore cannot run as asked: {}",
                plan.conflicts.join("; ")
            ),
            json!({ "plan": *plan }),
        ));
    }
    // Its own task, so a client hanging up cannot cut it off between creating the record
    // and deleting a refused one.
    tokio::spawn(queue(state, instance, request, plan))
        .await
        .map_err(|e| {
            warn!(instance = %id, error = %e, "A restore request failed unexpectedly.");
            ApiError::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "the request failed; see Marina's log",
            )
        })?
}

/// Records the restore job (with the snapshot and destination the plan resolved, so the job
/// does what the plan showed) and asks the reconciler to queue it.
async fn queue(
    state: AppState,
    instance: InstanceId,
    request: RestoreRequest,
    plan: Box<RestorePlan>,
) -> Result<(StatusCode, Json<serde_json::Value>), ApiError> {
    // restic's plan names the snapshot by its full id; a custom image's keeps what was
    // asked (`latest` included), which the image resolves itself when the job runs.
    let snapshot =
        SnapshotChoice::parse(&plan.snapshot.id).unwrap_or_else(|_| request.snapshot.clone());
    let resolved = RestoreRequest {
        snapshot,
        to: (!request.in_place).then(|| plan.destination.clone()),
        ..request
    };
    let node = state.snapshots.borrow().node_name.clone();
    let job = state
        .store
        .record_job(&instance, &node, NewJob::Restore(resolved), clock::now())
        .await
        .map_err(|e| store_error(&e))?;
    let (reply, answer) = oneshot::channel();
    let command = Command::Restore {
        instance: instance.clone(),
        job: job.id,
        reply: Reply(reply),
    };
    let answer = match state.inbox.send(Message::Command(command)).await {
        Ok(()) => answer.await.ok(),
        Err(_) => None,
    };
    if answer == Some(TriggerAnswer::Accepted) {
        return Ok((
            StatusCode::ACCEPTED,
            Json(json!({ "jobId": job.id.0, "iid": job.iid, "plan": *plan })),
        ));
    }
    if let Err(e) = state.store.delete_job(job.id).await {
        warn!(instance = %instance, job = %job.id, error = %e, "Could not delete the record of a refused restore request.");
    }
    let id = instance.as_str();
    Err(match answer {
        Some(TriggerAnswer::Queued) => ApiError::new(
            StatusCode::CONFLICT,
            format!("a restore of instance `{id}` already waits to run; wait for it to finish"),
        ),
        Some(TriggerAnswer::NotConfigured) => not_configured(id),
        Some(TriggerAnswer::NotReady) => ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "Marina has not listed Docker yet; try again in a moment",
        ),
        Some(TriggerAnswer::Running | TriggerAnswer::Accepted) | None => shutting_down(),
    })
}

/// Asks the reconciler (and through it the executor) a question about `instance`.
async fn ask(
    state: &AppState,
    instance: &InstanceId,
    question: RestoreQuestion,
) -> Result<RestoreAnswer, ApiError> {
    let (reply, answer) = oneshot::channel();
    let command = Command::Ask {
        instance: instance.clone(),
        question,
        reply: AskReply(reply),
    };
    if state.inbox.send(Message::Command(command)).await.is_err() {
        return Err(shutting_down());
    }
    match answer.await {
        Ok(Ok(answer)) => Ok(answer),
        Ok(Err(refusal)) => Err(refused(&refusal)),
        Err(_) => Err(shutting_down()),
    }
}

fn refused(refusal: &Refusal) -> ApiError {
    let status = match refusal.kind {
        RefusalKind::NotFound => StatusCode::NOT_FOUND,
        RefusalKind::Invalid => StatusCode::BAD_REQUEST,
        RefusalKind::Conflict => StatusCode::CONFLICT,
        RefusalKind::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
    };
    ApiError::new(status, refusal.message.clone())
}

fn unexpected() -> ApiError {
    ApiError::new(
        StatusCode::INTERNAL_SERVER_ERROR,
        "the answer did not fit the question; see Marina's log",
    )
}
