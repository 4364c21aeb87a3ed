//! One job: an instance's run from `scheduled` to its end (SPEC §3).
//!
//! ```text
//! scheduled → in_progress → success | partial_success | failed | aborted | timed_out
//! ```
//!
//! Targets are staged one after another; each target's steps are the same for both backends
//! (pre-hook, stop attached containers, read, start them again, post-hook), only where the
//! data goes differs: restic reads a volume in place and streams dumps into the repository;
//! a custom image gets the staging layout and then runs once over it. Whatever happens —
//! success, failure, timeout, shutdown — the job's undo-work runs: stopped containers are
//! started again and staging is removed.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use tokio::io::AsyncWriteExt;
use tokio_util::sync::CancellationToken;
use tracing::{Instrument, error, info, info_span, warn};

use super::beneath;
use super::checked::CheckedDump;
use super::locks::VolumeLocks;
use super::probe::{self, DbProbes};
use super::staging::{self, RESTIC_COPY_DIR, RunLayout};
use super::undo::{Undo, UndoAction};
use crate::backend::format_bytes;
use crate::backend::restic::{BackupOptions, Restic, Session};
use crate::clock;
use crate::config::{Backend, Config, Instance};
use crate::docker::dump::{DumpError, DumpStream, dump_within};
use crate::docker::own_container::host_path;
use crate::docker::{
    ContainerRef, Deadline, ExecLimits, ExecSpec, HelperSpec, JobContainerSpec, MountSpec,
    OutputLine, PullPolicy, RunOutcome, Runtime, RuntimeError, interruption,
};
use crate::metrics::{BackupImageFinished, Metrics, TargetBackedUp, TargetStaged};
use crate::model::{ContainerInfo, DbKind, Secret, TargetId, TargetKind, VolumePath};
use crate::reconcile::JobOrder;
use crate::reconcile::graph::{DB_KIND_FROM_PROBE, DB_KIND_PROBING, Found, Target};
use crate::store::{JobId, JobStatus, JournalId, JournalKind, Store};

/// How long a container stopped for `stopAttached` may take to stop before it is killed.
const STOP_TIMEOUT: Duration = Duration::from_secs(30);

/// Everything a running job needs.
pub struct JobContext<R> {
    /// The container runtime.
    pub runtime: Arc<R>,
    /// The job store (status, journal; log lines arrive through `tracing`).
    pub store: Store,
    /// Per-volume locks shared by all jobs.
    pub locks: VolumeLocks,
    /// Marina's own container id when it runs in a container (for host paths).
    pub own_container: Option<String>,
    /// This Marina's owner label value (see [`crate::docker::OWNER_LABEL`]).
    pub owner: String,
    /// The job's record.
    pub job: JobId,
    /// The instance as configured when the job started.
    pub instance: Instance,
    /// The config the job started under.
    pub config: Arc<Config>,
    /// Fires when the job must stop (timeout, shutdown): running containers are killed.
    pub cancel: CancellationToken,
    /// Undo-work, journaled.
    pub undo: Undo,
    /// Where targets' results and bytes are counted.
    pub metrics: Metrics,
    /// Database kinds found from the dump tools in containers whose image says nothing.
    pub probes: DbProbes,
}

/// How one target went.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TargetOutcome {
    /// Shipped (restic) or staged (custom image).
    Done(Done),
    /// Failed, with the reason.
    Failed(String),
}

/// What a target that made it reports, for the job log and metrics.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Done {
    /// One line for the job log.
    pub summary: String,
    /// Bytes the repository grew by (restic; a custom image ships the data itself).
    pub bytes_added: u64,
    /// Bytes of the target's data read: the volume's files or the dump.
    pub bytes_read: u64,
}

impl Done {
    /// A target staged for a custom image: `bytes` read, nothing shipped yet.
    fn staged(summary: String, bytes: u64) -> Self {
        Self {
            summary,
            bytes_added: 0,
            bytes_read: bytes,
        }
    }
}

/// How a job's body ended, before timeouts and shutdown are taken into account.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobResult {
    /// The final status.
    pub status: JobStatus,
    /// Targets in the job.
    pub total: u32,
    /// Targets that made it.
    pub successful: u32,
    /// One line for the job record.
    pub message: String,
}

/// Runs the job of `order` to its end and returns its final status. The caller races it
/// against the instance timeout and shutdown by cancelling `ctx.cancel`.
pub async fn run<R: Runtime + 'static>(ctx: &JobContext<R>, order: &JobOrder) -> JobResult {
    let targets: Vec<&Target> = order.targets.iter().collect();
    let total = u32::try_from(targets.len()).unwrap_or(u32::MAX);
    if let Err(e) = ctx
        .store
        .set_job_targets(ctx.job, total, 0, clock::now())
        .await
    {
        warn!(error = %e, "Could not record the job's target count.");
    }
    if targets.is_empty() {
        warn!(
            "The instance has no targets: nothing to back up. Add targets in the config or label volumes and containers."
        );
        return JobResult {
            status: JobStatus::Failed,
            total,
            successful: 0,
            message: "no targets to back up".into(),
        };
    }
    let outcomes = match &ctx.instance.backend {
        Backend::Restic { .. } => restic_job(ctx, &targets).await,
        Backend::CustomImage { image } => custom_image_job(ctx, &targets, image).await,
    };
    summarise(total, &outcomes)
}

/// Turns per-target outcomes (and, for custom images, the container's) into the job result.
fn summarise(total: u32, outcomes: &Result<Vec<TargetOutcome>, String>) -> JobResult {
    let outcomes = match outcomes {
        Ok(outcomes) => outcomes,
        Err(message) => {
            return JobResult {
                status: JobStatus::Failed,
                total,
                successful: 0,
                message: message.clone(),
            };
        }
    };
    let successful = u32::try_from(
        outcomes
            .iter()
            .filter(|o| matches!(o, TargetOutcome::Done(_)))
            .count(),
    )
    .unwrap_or(u32::MAX);
    let failed = total - successful.min(total);
    let (status, message) = match (successful, failed) {
        (_, 0) => (JobStatus::Success, format!("all {total} targets backed up")),
        (0, _) => (JobStatus::Failed, format!("all {total} targets failed")),
        _ => (
            JobStatus::PartialSuccess,
            format!("{failed} of {total} targets failed"),
        ),
    };
    JobResult {
        status,
        total,
        successful,
        message,
    }
}

async fn record_progress<R>(ctx: &JobContext<R>, total: usize, outcomes: &[TargetOutcome]) {
    let done = outcomes
        .iter()
        .filter(|o| matches!(o, TargetOutcome::Done(_)))
        .count();
    let (total, done) = (
        u32::try_from(total).unwrap_or(u32::MAX),
        u32::try_from(done).unwrap_or(u32::MAX),
    );
    if let Err(e) = ctx
        .store
        .set_job_targets(ctx.job, total, done, clock::now())
        .await
    {
        warn!(error = %e, "Could not record the job's progress.");
    }
}

// ---------------------------------------------------------------------------------------
// restic

async fn restic_job<R: Runtime + 'static>(
    ctx: &JobContext<R>,
    targets: &[&Target],
) -> Result<Vec<TargetOutcome>, String> {
    let Some(restic) = Restic::for_instance(&ctx.config, &ctx.instance) else {
        return Err("the instance has no restic repository".into());
    };
    // The repository is checked (and initialised when missing) by the job's first restic
    // command rather than by runs of its own: each restic run costs a key derivation.
    let mut session = restic.session();
    let mut outcomes = Vec::with_capacity(targets.len());
    for target in targets {
        if ctx.cancel.is_cancelled() {
            return Err("the job was stopped".into());
        }
        let span = info_span!("target", target = %target.spec.id);
        let outcome = restic_target(ctx, &mut session, target)
            .instrument(span.clone())
            .await;
        if let Some(reason) = session.refused() {
            error!(error = %reason, "The restic repository cannot be used; no target was backed up.");
            return Err(reason.to_owned());
        }
        span.in_scope(|| report_backed_up(ctx, target, &outcome));
        outcomes.push(outcome);
        record_progress(ctx, targets.len(), &outcomes).await;
    }
    if outcomes.iter().any(|o| matches!(o, TargetOutcome::Done(_))) {
        match session.forget_prune().await {
            Ok(summary) => info!(retention = %ctx.retention(), "Retention applied: {summary}."),
            Err(e) => {
                error!(error = %e, "Retention could not be applied; old snapshots are kept until the next run.");
            }
        }
    }
    Ok(outcomes)
}

async fn restic_target<R: Runtime + 'static>(
    ctx: &JobContext<R>,
    session: &mut Session<'_>,
    target: &Target,
) -> TargetOutcome {
    if let Some(problem) = not_ready(target) {
        return TargetOutcome::Failed(problem);
    }
    match (&target.spec.kind, &target.found) {
        (TargetKind::Volume { paths, .. }, Some(Found::Volume(volume))) => {
            let _lock = ctx.locks.lock(&volume.name).await;
            with_hooks(ctx, target, None, || async {
                let stopped = stop_attached(ctx, target).await?;
                restic_volume(
                    ctx,
                    session,
                    target,
                    &volume.name,
                    volume.mountpoint.as_deref(),
                    paths,
                    stopped,
                )
                .await
            })
            .await
        }
        (TargetKind::Db { dump_args, .. }, Some(Found::Container(container))) => {
            let kind = match db_kind(ctx, target, &container.id, &container.name).await {
                Ok(kind) => kind,
                Err(reason) => return TargetOutcome::Failed(reason),
            };
            let db = DbContainer::new(container);
            with_hooks(ctx, target, Some(&db), || async {
                // A stream is read once: the repository must be open before the dump starts.
                session.open().await.map_err(|e| e.to_string())?;
                let stream = start_dump(ctx, &db, kind, dump_args).await?;
                let tool = stream.tool();
                info!(tool, "Streaming the dump into restic.");
                let filename = format!("{}/{}", container.name, kind.dump_file_name());
                let mut checked = CheckedDump::new(stream);
                let summary = session
                    .backup_stdin(
                        &target.spec.id,
                        &filename,
                        &mut checked,
                        &BackupOptions::default(),
                    )
                    .await
                    .map_err(|e| e.to_string())?;
                let bytes = match checked.outcome() {
                    Some(Ok(dumped)) => dumped.bytes,
                    Some(Err(e)) => return Err(e.clone()),
                    None => 0,
                };
                Ok(Done {
                    summary: format!("{tool} dump of {bytes} bytes; {summary}"),
                    bytes_added: summary.bytes_added,
                    bytes_read: bytes,
                })
            })
            .await
        }
        _ => TargetOutcome::Failed("the target's volume or container is not there".into()),
    }
}

/// Backs up a volume's paths: in place when Marina can read the volume's data directory
/// (a host binary, or a container with the volumes mounted), else from a fresh copy made by
/// a helper container into a stable staging directory.
async fn restic_volume<R: Runtime + 'static>(
    ctx: &JobContext<R>,
    session: &mut Session<'_>,
    target: &Target,
    volume: &str,
    mountpoint: Option<&Path>,
    paths: &[VolumePath],
    stopped: Vec<(ContainerRef, JournalId)>,
) -> Result<Done, String> {
    let in_place = match mountpoint {
        Some(dir) if tokio::fs::metadata(dir).await.is_ok_and(|m| m.is_dir()) => {
            Some(dir.to_path_buf())
        }
        _ => None,
    };
    let (root, options, copy, still_stopped) = if let Some(dir) = in_place {
        // Read in place: the containers stay stopped until restic has read the volume.
        (dir, BackupOptions::default(), None, stopped)
    } else {
        let copy = ctx
            .config
            .staging_dir
            .join(ctx.instance.id.as_str())
            .join(RESTIC_COPY_DIR)
            .join("vol")
            .join(volume);
        info!(
            volume,
            "The volume's data is not visible to Marina; copying it with a helper container."
        );
        let undo = match ctx.undo.promise(UndoAction::RemoveDir(copy.clone())).await {
            Ok(undo) => undo,
            Err(e) => {
                start_again(ctx, stopped).await;
                return Err(e.to_string());
            }
        };
        let copied = copy_volume(ctx, volume, paths, &copy).await;
        // Staged: the containers run again while restic reads the copy (SPEC §3.2).
        start_again(ctx, stopped).await;
        copied?;
        let options = BackupOptions {
            ignore_inode: true,
            ..BackupOptions::default()
        };
        (copy.clone(), options, Some((copy, undo)), Vec::new())
    };
    let result = backup_volume_paths(session, target, volume, &root, paths, &options).await;
    start_again(ctx, still_stopped).await;
    if let Some((copy, undo)) = copy
        && tokio::fs::remove_dir_all(&copy).await.is_ok()
    {
        ctx.undo.fulfilled(undo).await;
    }
    result
}

/// Checks a volume's paths and backs them up as one snapshot.
async fn backup_volume_paths(
    session: &mut Session<'_>,
    target: &Target,
    volume: &str,
    root: &Path,
    paths: &[VolumePath],
    options: &BackupOptions,
) -> Result<Done, String> {
    let absolute = resolve_beneath(root, volume, paths).await?;
    if !target.spec.allow_empty && !any_content(&absolute).await? {
        return Err(format!(
            "no data staged for {} — is the volume empty? (set allowEmpty to accept an empty volume)",
            target.spec.id
        ));
    }
    let summary = session
        .backup_paths(&target.spec.id, &absolute, options)
        .await
        .map_err(|e| e.to_string())?;
    Ok(Done {
        summary: summary.to_string(),
        bytes_added: summary.bytes_added,
        bytes_read: summary.bytes_processed,
    })
}

/// Resolves each path inside the volume root (see [`beneath`]), so restic is handed only
/// places Marina has checked: a link out of the volume fails the target. Without links on
/// the way the paths are exactly `root/path`, as they always were, so the parent snapshot and
/// `forget` grouping stay the same from run to run.
///
/// A window remains: a container writing to the volume could swap a checked directory for a
/// link between this check and restic's read. Stopping the writers (`stopAttached`) closes
/// it; restic itself never follows links below the paths it is given.
async fn resolve_beneath(
    root: &Path,
    volume: &str,
    paths: &[VolumePath],
) -> Result<Vec<PathBuf>, String> {
    let (root, volume, paths) = (root.to_path_buf(), volume.to_owned(), paths.to_vec());
    tokio::task::spawn_blocking(move || {
        paths
            .iter()
            .map(|path| beneath::resolve(&root, &volume, path).map_err(|e| e.to_string()))
            .collect()
    })
    .await
    .map_err(|e| format!("the path check failed: {e}"))?
}

async fn any_content(paths: &[PathBuf]) -> Result<bool, String> {
    let paths = paths.to_vec();
    tokio::task::spawn_blocking(move || {
        for path in &paths {
            if staging::has_content(path)
                .map_err(|e| format!("cannot read {}: {e}", path.display()))?
            {
                return Ok(true);
            }
        }
        Ok(false)
    })
    .await
    .map_err(|e| format!("the content check failed: {e}"))?
}

/// The bytes of content staged under `dir` (SPEC §3.5: 0 means no data).
async fn content_size(dir: &Path) -> Result<u64, String> {
    let dir = dir.to_path_buf();
    tokio::task::spawn_blocking(move || {
        staging::content_size(&dir).map_err(|e| format!("cannot read {}: {e}", dir.display()))
    })
    .await
    .map_err(|e| format!("the content check failed: {e}"))?
}

// ---------------------------------------------------------------------------------------
// custom image

async fn custom_image_job<R: Runtime + 'static>(
    ctx: &JobContext<R>,
    targets: &[&Target],
    image: &str,
) -> Result<Vec<TargetOutcome>, String> {
    let layout = RunLayout::new(&ctx.config.staging_dir, &ctx.instance.id, clock::now());
    let run_dir = layout.run_dir();
    let undo = ctx
        .undo
        .promise(UndoAction::RemoveDir(run_dir.clone()))
        .await
        .map_err(|e| format!("cannot journal the staging directory: {e}"))?;
    tokio::fs::create_dir_all(&run_dir).await.map_err(|e| {
        format!(
            "cannot create the staging directory {}: {e}",
            run_dir.display()
        )
    })?;
    let mut outcomes = Vec::with_capacity(targets.len());
    for target in targets {
        if ctx.cancel.is_cancelled() {
            break;
        }
        let span = info_span!("target", target = %target.spec.id);
        let outcome = stage_target(ctx, &layout, target)
            .instrument(span.clone())
            .await;
        span.in_scope(|| report_staged(ctx, &outcome));
        outcomes.push(outcome);
    }
    let staged = outcomes
        .iter()
        .filter(|o| matches!(o, TargetOutcome::Done(_)))
        .count();
    let leftovers = remove_failed_targets(&layout, targets, &outcomes).await;
    let result = if ctx.cancel.is_cancelled() {
        Err("the job was stopped".to_owned())
    } else if let Err(e) = leftovers {
        Err(e)
    } else if staged == 0 {
        Err("no target could be staged; the backup image was not run".to_owned())
    } else {
        let shipped: Vec<&TargetId> = targets
            .iter()
            .zip(&outcomes)
            .filter(|(_, outcome)| matches!(outcome, TargetOutcome::Done(_)))
            .map(|(target, _)| &target.spec.id)
            .collect();
        run_backend(ctx, &layout, image, &shipped)
            .await
            .map(|()| outcomes)
    };
    if let Ok(outcomes) = &result {
        record_progress(ctx, targets.len(), outcomes).await;
    }
    match tokio::fs::remove_dir_all(&run_dir).await {
        Ok(()) => ctx.undo.fulfilled(undo).await,
        Err(e) => {
            warn!(path = %run_dir.display(), error = %e, "Could not remove the staging directory now; it is retried at the end of the job.");
        }
    }
    result
}

/// Removes what failed targets left in the run directory, so the image never ships a
/// partial copy or a truncated dump as if it were whole.
async fn remove_failed_targets(
    layout: &RunLayout,
    targets: &[&Target],
    outcomes: &[TargetOutcome],
) -> Result<(), String> {
    for (target, outcome) in targets.iter().zip(outcomes) {
        if !matches!(outcome, TargetOutcome::Failed(_)) {
            continue;
        }
        let path = match &target.spec.id {
            TargetId::Volume(name) => layout.volume_dir(name.as_str()),
            TargetId::Db(name) => layout.run_dir().join("dbs").join(name.as_str()),
        };
        match tokio::fs::remove_dir_all(&path).await {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => {
                return Err(format!(
                    "cannot remove the partial data of failed target {} ({}): {e}; the backup image was not run",
                    target.spec.id,
                    path.display()
                ));
            }
        }
    }
    Ok(())
}

/// Stages one target in the seed's layout.
async fn stage_target<R: Runtime + 'static>(
    ctx: &JobContext<R>,
    layout: &RunLayout,
    target: &Target,
) -> TargetOutcome {
    if let Some(problem) = not_ready(target) {
        return TargetOutcome::Failed(problem);
    }
    match (&target.spec.kind, &target.found) {
        (TargetKind::Volume { paths, .. }, Some(Found::Volume(volume))) => {
            let _lock = ctx.locks.lock(&volume.name).await;
            with_hooks(ctx, target, None, || async {
                let stopped = stop_attached(ctx, target).await?;
                let dir = layout.volume_dir(&volume.name);
                let result = copy_volume(ctx, &volume.name, paths, &dir).await;
                start_again(ctx, stopped).await;
                result?;
                let bytes = content_size(&dir).await?;
                if !target.spec.allow_empty && bytes == 0 {
                    return Err(format!("no data staged for {} — is the volume empty? (set allowEmpty to accept an empty volume)", target.spec.id));
                }
                Ok(Done::staged(
                    format!("{} in {}", format_bytes(bytes), dir.display()),
                    bytes,
                ))
            })
            .await
        }
        (TargetKind::Db { dump_args, .. }, Some(Found::Container(container))) => {
            let kind = match db_kind(ctx, target, &container.id, &container.name).await {
                Ok(kind) => kind,
                Err(reason) => return TargetOutcome::Failed(reason),
            };
            let db = DbContainer::new(container);
            with_hooks(ctx, target, Some(&db), || async {
                dump_to_file(
                    ctx,
                    &db,
                    kind,
                    dump_args,
                    &layout.dump_file(&container.name, kind),
                )
                .await
            })
            .await
        }
        _ => TargetOutcome::Failed("the target's volume or container is not there".into()),
    }
}

/// Streams a dump into its file in the staging layout (never through memory, never inside
/// the database container).
async fn dump_to_file<R: Runtime + 'static>(
    ctx: &JobContext<R>,
    db: &DbContainer,
    kind: DbKind,
    dump_args: &[String],
    file: &Path,
) -> Result<Done, String> {
    if let Some(dir) = file.parent() {
        tokio::fs::create_dir_all(dir)
            .await
            .map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    }
    let mut stream = start_dump(ctx, db, kind, dump_args).await?;
    let tool = stream.tool();
    let container_name = &db.name;
    let mut out = tokio::fs::File::create(file)
        .await
        .map_err(|e| format!("cannot create {}: {e}", file.display()))?;
    tokio::io::copy(&mut stream, &mut out)
        .await
        .map_err(|e| match interruption(&e) {
            // Killed at its deadline: the reason says it all.
            Some(interrupted) => interrupted.to_string(),
            None => format!("writing the dump of {container_name} failed: {e}"),
        })?;
    out.flush()
        .await
        .map_err(|e| format!("writing the dump of {container_name} failed: {e}"))?;
    let summary = stream.finish().await.map_err(|e| e.to_string())?;
    Ok(Done::staged(
        format!(
            "{tool} dump of {} bytes staged as {}",
            summary.bytes,
            file.display()
        ),
        summary.bytes,
    ))
}

/// Runs the custom image once over the staged run (SPEC §4.2).
async fn run_backend<R: Runtime + 'static>(
    ctx: &JobContext<R>,
    layout: &RunLayout,
    image: &str,
    staged: &[&TargetId],
) -> Result<(), String> {
    let host_dir = host_path(
        &*ctx.runtime,
        ctx.own_container.as_deref(),
        &layout.instance_root,
    )
    .await
    .map_err(|e| format!("cannot find the host path of the staging directory: {e}"))?;
    let mut env: Vec<(String, Secret)> = ctx
        .instance
        .env
        .iter()
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    env.push((
        "MARINA_INSTANCE_ID".into(),
        Secret::new(ctx.instance.id.to_string()),
    ));
    env.push((
        "MARINA_HOSTNAME".into(),
        Secret::new(ctx.config.node_name.clone()),
    ));
    env.push((
        "MARINA_BACKUP_DIR".into(),
        Secret::new(layout.backup_dir_in_container()),
    ));
    let spec = JobContainerSpec {
        image: image.to_owned(),
        job_id: ctx.job.to_string(),
        owner: ctx.owner.clone(),
        instance_id: ctx.instance.id.to_string(),
        env,
        host_dir,
        pull: PullPolicy::IfMissing,
        timeout: None,
    };
    let journal = ctx
        .store
        .journal_add(
            ctx.job,
            JournalKind::BackendContainer,
            &ctx.job.to_string(),
            image,
            clock::now(),
        )
        .await
        .map_err(|e| format!("cannot journal the backup container: {e}"))?;
    info!(image, "Running the backup image.");
    let outcome = ctx
        .runtime
        .run_job_container(
            spec,
            |line| {
                super::fault::point("backend-output");
                log_output(line);
            },
            ctx.cancel.clone(),
        )
        .await;
    if let Err(e) = ctx.store.journal_resolve(journal, clock::now()).await {
        warn!(error = %e, "Could not mark the backup container as removed.");
    }
    match outcome.map_err(|e| e.to_string())? {
        RunOutcome::Exited(0) => {
            ctx.metrics.emit(BackupImageFinished {
                instance: &ctx.instance.id,
                image,
                targets: staged,
                at: clock::now(),
            });
            Ok(())
        }
        RunOutcome::Exited(code) => {
            Err(format!("the backup image {image} exited with code {code}"))
        }
        RunOutcome::TimedOut | RunOutcome::Cancelled => Err(format!(
            "the backup image {image} was stopped before it finished"
        )),
    }
}

// ---------------------------------------------------------------------------------------
// steps shared by both backends

/// The kind of a database target: as configured, detected from the image name or told by
/// the dump tools the controller had looked for; else (the job started before that answer)
/// found from the dump tools in the container now (once per container).
async fn db_kind<R: Runtime + 'static>(
    ctx: &JobContext<R>,
    target: &Target,
    id: &str,
    name: &str,
) -> Result<DbKind, String> {
    match target.db_kind {
        Some(kind) => {
            if target.ready.reason == DB_KIND_FROM_PROBE {
                // The log says why the kind is what it is, as it would had the job probed.
                info!(container = name, kind = %kind, "Database kind told by the dump tools: {}.", target.ready.message);
            }
            Ok(kind)
        }
        None => probe::db_kind(&*ctx.runtime, &ctx.probes, id, name).await,
    }
}

/// Why a target cannot be backed up now, if it cannot. A database whose dump tools are still
/// being looked for is not refused: the job looks for them itself.
fn not_ready(target: &Target) -> Option<String> {
    (!target.ready.is_true() && target.ready.reason != DB_KIND_PROBING)
        .then(|| format!("{}: {}", target.ready.reason, target.ready.message))
}

/// Runs `stage` between the target's pre-hook and post-hook (SPEC §3.3): a failing pre-hook
/// fails the target; the post-hook runs whatever happened and only warns. A db target's hooks
/// run in `db`.
async fn with_hooks<R, F, Fut>(
    ctx: &JobContext<R>,
    target: &Target,
    db: Option<&DbContainer>,
    stage: F,
) -> TargetOutcome
where
    R: Runtime + 'static,
    F: FnOnce() -> Fut,
    Fut: Future<Output = Result<Done, String>>,
{
    let result = match &target.spec.pre_hook {
        Some(hook) => match run_hook(ctx, target, db, "pre", hook).await {
            Ok(()) => stage().await,
            Err(e) => Err(e),
        },
        None => stage().await,
    };
    if let Some(hook) = &target.spec.post_hook
        && let Err(e) = run_hook(ctx, target, db, "post", hook).await
    {
        warn!("{e}");
    }
    match result {
        Ok(done) => TargetOutcome::Done(done),
        Err(reason) => TargetOutcome::Failed(reason),
    }
}

/// Runs a hook with `sh -c` in the db container, or in the first running container that
/// mounts the volume (read-only mounts count; Marina's own container does not); without one,
/// the hook is skipped with a warning. The hook text is run as written: `$VAR` in it is the
/// container's variable, never Marina's. Past `hookTimeout`, or when the job is stopped, the
/// hook is killed inside the container and fails.
async fn run_hook<R: Runtime + 'static>(
    ctx: &JobContext<R>,
    target: &Target,
    db: Option<&DbContainer>,
    which: &str,
    hook: &str,
) -> Result<(), String> {
    if ctx.cancel.is_cancelled() {
        // It would be killed the moment it started.
        return Err(format!("the {which}-hook did not run: the job was stopped"));
    }
    let container = match (db, &target.found) {
        (Some(db), _) => Some((db.current(ctx).await?, db.name.clone())),
        (None, Some(Found::Volume(volume))) => ctx
            .runtime
            .running_mounters(&volume.name)
            .await
            .map_err(|e| format!("{which}-hook: cannot list the containers using the volume: {e}"))?
            .into_iter()
            .find(|c| ctx.own_container.as_deref() != Some(c.id.as_str()))
            .map(|c| {
                let name = if c.name.is_empty() {
                    c.id.clone()
                } else {
                    c.name
                };
                (c.id, name)
            }),
        (None, _) => None,
    };
    let Some((container, name)) = container else {
        warn!(
            hook = which,
            "No running container mounts the volume; the {which}-hook is skipped."
        );
        return Ok(());
    };
    info!(hook = which, container = %name, "Running the {which}-hook.");
    let limits = ExecLimits::new(
        Deadline::after(ctx.instance.hook_timeout, "hookTimeout"),
        ctx.cancel.clone(),
    );
    let spec = ExecSpec::new(container, vec!["sh".into(), "-c".into(), hook.to_owned()])
        .what(format!("{which}-hook in container {name}"))
        .limits(limits);
    let code = match ctx.runtime.exec_capture(spec, log_output).await {
        Ok(code) => code,
        Err(RuntimeError::Interrupted(interrupted)) => return Err(interrupted.to_string()),
        Err(e) => return Err(format!("{which}-hook could not run: {e}")),
    };
    if code == 0 {
        Ok(())
    } else {
        Err(format!(
            "{which}-hook in container {name} exited with code {code}"
        ))
    }
}

/// A db target's container. The job was scheduled with the container observed then; if it was
/// recreated since (a compose `up`, an image upgrade), Docker no longer knows that id, and the
/// container is looked up again by its name.
struct DbContainer {
    /// Its name, which survives recreation.
    name: String,
    /// The id last seen.
    id: Mutex<String>,
}

impl DbContainer {
    fn new(observed: &ContainerInfo) -> Self {
        Self {
            name: observed.name.clone(),
            id: Mutex::new(observed.id.clone()),
        }
    }

    fn id(&self) -> String {
        self.id
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// The id of the container now: the one last seen if Docker still knows it, else the one
    /// that carries the name now.
    async fn current<R: Runtime>(&self, ctx: &JobContext<R>) -> Result<String, String> {
        let known = self.id();
        match ctx.runtime.inspect_container(&known).await {
            Ok(details) => return Ok(details.id),
            Err(RuntimeError::NoSuchContainer { .. }) => {}
            Err(e) => return Err(e.to_string()),
        }
        match ctx.runtime.inspect_container(&self.name).await {
            Ok(details) => {
                info!(container = %self.name, old_id = %known, new_id = %details.id,
                    "The database container was recreated since the job was scheduled; going on with the new one.");
                details
                    .id
                    .clone_into(&mut self.id.lock().unwrap_or_else(PoisonError::into_inner));
                Ok(details.id)
            }
            Err(RuntimeError::NoSuchContainer { .. }) => Err(format!(
                "database container {} no longer exists (it was removed after the job was scheduled)",
                self.name
            )),
            Err(e) => Err(e.to_string()),
        }
    }
}

/// Starts the dump of `db` bounded by `resticTimeout` and the job's cancellation; a container
/// recreated under the dump's feet is looked up again once.
async fn start_dump<R: Runtime + 'static>(
    ctx: &JobContext<R>,
    db: &DbContainer,
    kind: DbKind,
    dump_args: &[String],
) -> Result<DumpStream, String> {
    let limits = ExecLimits::new(
        Deadline::after(ctx.instance.dump_timeout, "resticTimeout"),
        ctx.cancel.clone(),
    );
    let mut looked_again = false;
    loop {
        let id = db.current(ctx).await?;
        match dump_within(&*ctx.runtime, &id, kind, dump_args, &limits).await {
            Err(DumpError::Runtime(RuntimeError::NoSuchContainer { .. })) if !looked_again => {
                looked_again = true;
            }
            result => return result.map_err(|e| e.to_string()),
        }
    }
}

/// Stops the running containers that write to the target's volume when `stopAttached` says
/// so (SPEC §3.2), journaling each before stopping it.
async fn stop_attached<R: Runtime + 'static>(
    ctx: &JobContext<R>,
    target: &Target,
) -> Result<Vec<(ContainerRef, JournalId)>, String> {
    let (TargetKind::Volume { stop_attached, .. }, Some(Found::Volume(volume))) =
        (&target.spec.kind, &target.found)
    else {
        return Ok(Vec::new());
    };
    if !stop_attached.unwrap_or(ctx.instance.stop_attached) {
        return Ok(Vec::new());
    }
    let writers = ctx
        .runtime
        .running_writers(&volume.name)
        .await
        .map_err(|e| format!("cannot list the containers using the volume: {e}"))?;
    let mut stopped = Vec::with_capacity(writers.len());
    for container in writers {
        if container.swarm_task {
            warn!(container = %container.name, "The container is a Swarm task; Swarm would replace it if it were stopped, so it keeps running while its volume is staged.");
            continue;
        }
        if ctx.own_container.as_deref() == Some(container.id.as_str()) {
            continue;
        }
        let action = UndoAction::StartContainer {
            id: container.id.clone(),
            name: container.name.clone(),
        };
        let journal = ctx
            .undo
            .promise(action)
            .await
            .map_err(|e| format!("cannot journal the stop of {}: {e}", container.name))?;
        info!(container = %container.name, "Stopping the container while its volume is staged.");
        if let Err(e) = ctx
            .runtime
            .stop_container(&container.id, STOP_TIMEOUT)
            .await
        {
            // It may have stopped all the same: starting a running container is harmless.
            let name = container.name.clone();
            stopped.push((container, journal));
            start_again(ctx, stopped).await;
            return Err(format!("cannot stop container {name}: {e}"));
        }
        stopped.push((container, journal));
    }
    super::fault::point("after-stop");
    Ok(stopped)
}

/// Starts the containers stopped for staging, as soon as the volume is staged.
async fn start_again<R: Runtime + 'static>(
    ctx: &JobContext<R>,
    stopped: Vec<(ContainerRef, JournalId)>,
) {
    for (container, journal) in stopped {
        match ctx.runtime.start_container(&container.id).await {
            Ok(()) => {
                info!(container = %container.name, "Started the container again.");
                ctx.undo.fulfilled(journal).await;
            }
            Err(e) => {
                error!(container = %container.name, error = %e, "Could not start the container again; Marina retries at the end of the job.");
            }
        }
    }
}

/// Copies a volume's paths into `dest` (as Marina sees it) with a helper container that
/// mounts the volume read-only. Every exit code is checked; there is no time limit.
async fn copy_volume<R: Runtime + 'static>(
    ctx: &JobContext<R>,
    volume: &str,
    paths: &[VolumePath],
    dest: &Path,
) -> Result<(), String> {
    // A copy left by an earlier run would bring back files deleted since.
    match tokio::fs::remove_dir_all(dest).await {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(format!("cannot clear {}: {e}", dest.display())),
    }
    tokio::fs::create_dir_all(dest)
        .await
        .map_err(|e| format!("cannot create {}: {e}", dest.display()))?;
    let host_dest = host_path(&*ctx.runtime, ctx.own_container.as_deref(), dest)
        .await
        .map_err(|e| format!("cannot find the host path of the staging directory: {e}"))?;
    let spec = HelperSpec {
        image: ctx.config.helper_image.clone(),
        job_id: ctx.job.to_string(),
        owner: ctx.owner.clone(),
        mounts: vec![
            MountSpec::Volume {
                volume: volume.to_owned(),
                target: "/source".into(),
                read_only: true,
            },
            MountSpec::Bind {
                source: host_dest,
                target: "/staging".into(),
                read_only: false,
            },
        ],
        command: vec!["sh".into(), "-c".into(), copy_script(volume, paths)],
        pull: PullPolicy::IfMissing,
        timeout: None,
    };
    // The script's own refusals (a missing path, a path out of the volume) are its last
    // line: they become the target's reason, not only a line in the log.
    let mut last_line = String::new();
    let outcome = ctx
        .runtime
        .run_helper(
            spec,
            |line: OutputLine| {
                last_line.clone_from(&line.text);
                log_output(line);
            },
            ctx.cancel.clone(),
        )
        .await
        .map_err(|e| e.to_string())?;
    match outcome {
        RunOutcome::Exited(0) => Ok(()),
        RunOutcome::Exited(COPY_MISSING | COPY_ESCAPES) if !last_line.is_empty() => Err(last_line),
        RunOutcome::Exited(code) => Err(format!(
            "copying volume {volume} failed (the helper exited with code {code}; its output is in the log above)"
        )),
        RunOutcome::TimedOut | RunOutcome::Cancelled => {
            Err(format!("copying volume {volume} was stopped"))
        }
    }
}

/// Exit code of the helper's script when a path is not in the volume.
const COPY_MISSING: i64 = 3;
/// Exit code of the helper's script when a path leads out of the volume.
const COPY_ESCAPES: i64 = 4;

/// The helper's shell function that refuses a path leading out of the volume, with the same
/// rule and message as [`beneath::resolve`] for in-place reads: every symlink on the way must
/// resolve under `/source` (inside the helper an outside target is the helper's own file, not
/// the volume's). It sets `src` to the place to copy from: the path itself when no link is on
/// the way (the common case, byte for byte what it always was), else its resolved location.
/// As in place, a writer swapping a checked directory for a link before `cp` reads it could
/// still redirect the copy (to the helper's own files only: the host is not mounted);
/// `stopAttached` closes that window.
const BENEATH_SH: &str = r#"beneath() {
  shown=$1; rel=$2; volume=$3; prefix=/source; src=/source/$rel; linked=
  old_ifs=$IFS; IFS=/; set -f
  for part in $rel; do
    prefix=$prefix/$part
    if [ -L "$prefix" ]; then
      linked=1
      real=$(readlink -f "$prefix" 2>/dev/null) || real=
      target=$(readlink "$prefix")
      case "$real" in
        /source|/source/*) ;;
        '') case "$target" in
              /source|/source/*) ;;
              /*) echo "path $shown of volume $volume escapes the volume: ${prefix#/source/} is a symlink to $target" >&2; exit 4;;
            esac;;
        *) echo "path $shown of volume $volume escapes the volume: ${prefix#/source/} is a symlink to $target" >&2; exit 4;;
      esac
    fi
  done
  IFS=$old_ifs; set +f
  if [ ! -e "$src" ]; then echo "path $shown does not exist in volume $volume" >&2; exit 3; fi
  if [ -n "$linked" ]; then src=$(readlink -f "$src"); fi
}
"#;

/// The helper's shell script: copy each path (a missing one, or one leading out of the
/// volume, is an error), preserving everything `cp -a` preserves.
fn copy_script(volume: &str, paths: &[VolumePath]) -> String {
    let mut script = String::from("set -e\n");
    if paths.iter().any(|p| !p.is_root()) {
        script.push_str(BENEATH_SH);
    }
    let volume = shell_quote(volume);
    for path in paths {
        if path.is_root() {
            script.push_str("cp -a /source/. /staging/\n");
        } else {
            let quoted = shell_quote(path.relative());
            let shown = shell_quote(&path.to_string());
            let _ = write!(
                script,
                "beneath {shown} {quoted} {volume}\nmkdir -p \"$(dirname /staging/{quoted})\"\ncp -a \"$src\" /staging/{quoted}\n"
            );
        }
    }
    script
}

/// Quotes `text` for `sh` with single quotes.
fn shell_quote(text: &str) -> String {
    format!("'{}'", text.replace('\'', r"'\''"))
}

/// Output of hooks, helpers and backend containers goes into the job log line by line.
#[allow(clippy::needless_pass_by_value)] // The runtime hands each line over by value.
fn log_output(line: OutputLine) {
    info!("{}", line.text);
}

/// Reports a target of a restic job: backed up (logged and counted) or failed.
fn report_backed_up<R>(ctx: &JobContext<R>, target: &Target, outcome: &TargetOutcome) {
    match outcome {
        TargetOutcome::Done(done) => ctx.metrics.emit(TargetBackedUp {
            instance: &ctx.instance.id,
            target: &target.spec.id,
            summary: &done.summary,
            bytes_added: done.bytes_added,
            bytes_read: done.bytes_read,
            at: clock::now(),
        }),
        TargetOutcome::Failed(reason) => error!("Target failed: {reason}."),
    }
}

/// Reports a target staged for a custom image (counted; backed up once the image succeeds)
/// or failed.
fn report_staged<R>(ctx: &JobContext<R>, outcome: &TargetOutcome) {
    match outcome {
        TargetOutcome::Done(done) => ctx.metrics.emit(TargetStaged {
            instance: &ctx.instance.id,
            summary: &done.summary,
            bytes: done.bytes_read,
        }),
        TargetOutcome::Failed(reason) => error!("Target failed: {reason}."),
    }
}

impl<R> JobContext<R> {
    fn retention(&self) -> String {
        match &self.instance.backend {
            Backend::Restic { retention, .. } => retention.to_string(),
            Backend::CustomImage { .. } => String::new(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn copy_scripts_quote_paths() {
        let paths = [
            VolumePath::root(),
            VolumePath::parse("/it's here/x").unwrap(),
        ];
        let script = copy_script("app-data", &paths);
        assert!(script.contains("cp -a /source/. /staging/"));
        assert!(
            script.contains(r"beneath '/it'\''s here/x' 'it'\''s here/x' 'app-data'"),
            "{script}"
        );
    }

    #[test]
    fn the_job_status_follows_the_targets() {
        let done = TargetOutcome::Done(Done::default());
        let failed = TargetOutcome::Failed("no".into());
        assert_eq!(
            summarise(2, &Ok(vec![done.clone(), done.clone()])).status,
            JobStatus::Success
        );
        let partial = summarise(2, &Ok(vec![done, failed.clone()]));
        assert_eq!(
            (partial.status, partial.successful, partial.message.as_str()),
            (JobStatus::PartialSuccess, 1, "1 of 2 targets failed")
        );
        assert_eq!(summarise(1, &Ok(vec![failed])).status, JobStatus::Failed);
        assert_eq!(
            summarise(3, &Err("repository broken".into())).message,
            "repository broken"
        );
    }
}
