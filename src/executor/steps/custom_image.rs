//! Running an instance's custom image once over a run directory (SPEC §4.2, and the restore
//! contract of docs/custom-backends.md): for a backup of what was staged there, for the
//! safety backup an in-place restore makes first, and for a restore that has the image fill
//! the directory. The container gets the instance `env` and Marina's variables, the
//! instance's staging directory at `/backup`, and is journaled while it runs.

use tracing::{info, warn};

use crate::clock;
use crate::docker::own_container::host_path;
use crate::docker::{JobContainerSpec, PullPolicy, RunOutcome, Runtime};
use crate::executor::context::{JobContext, log_output};
use crate::executor::fault;
use crate::executor::staging::RunLayout;
use crate::model::{Secret, SnapshotChoice, TargetId};
use crate::store::JournalKind;

/// `MARINA_PRE_RESTORE`: set to `1` on the backup an in-place restore makes of what it is
/// about to replace, so the image can name that backup apart from the scheduled ones.
pub(crate) const PRE_RESTORE_ENV: &str = "MARINA_PRE_RESTORE";
/// `MARINA_RESTORE`: set to `1` when the image is run to restore.
pub(crate) const RESTORE_ENV: &str = "MARINA_RESTORE";
/// `MARINA_RESTORE_TARGET`: the target to restore, `volume:NAME` or `db:NAME`.
pub(crate) const RESTORE_TARGET_ENV: &str = "MARINA_RESTORE_TARGET";
/// `MARINA_RESTORE_SNAPSHOT`: which backup, `latest` or the image's own name of one.
pub(crate) const RESTORE_SNAPSHOT_ENV: &str = "MARINA_RESTORE_SNAPSHOT";

/// Why the image runs.
#[derive(Debug, Clone, Copy)]
pub(crate) enum ImageRun<'a> {
    /// A backup of what is staged in the run directory.
    Backup,
    /// The backup an in-place restore makes of what it replaces, before it replaces it.
    PreRestoreBackup,
    /// A restore of `target` from the image's backup `snapshot`: the image fills the run
    /// directory with the target's part of the staging layout.
    Restore {
        /// The target restored.
        target: &'a TargetId,
        /// The backup asked for.
        snapshot: &'a SnapshotChoice,
        /// The program and its arguments (`restoreEntrypoint`, or `/restore.sh`).
        command: &'a [String],
    },
}

impl ImageRun<'_> {
    /// What the run is called in the log and in messages.
    fn what(&self) -> &'static str {
        match self {
            Self::Backup => "backup image",
            Self::PreRestoreBackup => "safety backup with the image",
            Self::Restore { .. } => "restore image",
        }
    }
}

/// Runs `image` once with `MARINA_BACKUP_DIR` at the run directory of `layout` (which must
/// exist), as `run` says; `Ok` when it exited with code 0.
pub(crate) async fn run_image<R: Runtime + 'static>(
    ctx: &JobContext<R>,
    layout: &RunLayout,
    image: &str,
    run: ImageRun<'_>,
) -> Result<(), String> {
    let what = run.what();
    let host_dir = host_path(
        &*ctx.runtime,
        ctx.own_container.as_deref(),
        &layout.instance_root,
    )
    .await
    .map_err(|e| format!("cannot find the host path of the staging directory: {e}"))?;
    let spec = JobContainerSpec {
        image: image.to_owned(),
        command: match run {
            ImageRun::Restore { command, .. } => Some(command.to_vec()),
            ImageRun::Backup | ImageRun::PreRestoreBackup => None,
        },
        job_id: ctx.job.to_string(),
        owner: ctx.owner.clone(),
        instance_id: ctx.instance.id.to_string(),
        env: environment(ctx, layout, run),
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
        .map_err(|e| format!("cannot journal the container of the {what}: {e}"))?;
    match run {
        ImageRun::Restore { command, .. } => {
            info!(image, command = %command.join(" "), "Running the restore image.");
        }
        ImageRun::Backup => info!(image, "Running the backup image."),
        ImageRun::PreRestoreBackup => info!(
            image,
            "Running the backup image with {PRE_RESTORE_ENV}=1 to save what the restore replaces."
        ),
    }
    let outcome = ctx
        .runtime
        .run_job_container(
            spec,
            |line| {
                fault::point("backend-output");
                log_output(line);
            },
            ctx.cancel.clone(),
        )
        .await;
    if let Err(e) = ctx.store.journal_resolve(journal, clock::now()).await {
        warn!(error = %e, "Could not mark the custom image's container as removed.");
    }
    match outcome.map_err(|e| e.to_string())? {
        RunOutcome::Exited(0) => Ok(()),
        RunOutcome::Exited(code) => Err(match run {
            ImageRun::Backup => format!("the backup image {image} exited with code {code}"),
            _ => format!("the {what} {image} exited with code {code}"),
        }),
        RunOutcome::TimedOut | RunOutcome::Cancelled => {
            Err(format!("the {what} {image} was stopped before it finished"))
        }
    }
}

/// The container's environment: the instance `env`, then Marina's variables (which `env`
/// cannot set: `marina validate` refuses them there).
fn environment<R>(
    ctx: &JobContext<R>,
    layout: &RunLayout,
    run: ImageRun<'_>,
) -> Vec<(String, Secret)> {
    let mut env: Vec<(String, Secret)> = ctx
        .instance
        .env
        .iter()
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    let mut set = |name: &str, value: String| env.push((name.to_owned(), Secret::new(value)));
    set("MARINA_INSTANCE_ID", ctx.instance.id.to_string());
    set("MARINA_HOSTNAME", ctx.config.node_name.clone());
    set("MARINA_BACKUP_DIR", layout.backup_dir_in_container());
    match run {
        ImageRun::Backup => {}
        ImageRun::PreRestoreBackup => set(PRE_RESTORE_ENV, "1".to_owned()),
        ImageRun::Restore {
            target, snapshot, ..
        } => {
            set(RESTORE_ENV, "1".to_owned());
            set(RESTORE_TARGET_ENV, target.to_string());
            set(RESTORE_SNAPSHOT_ENV, snapshot.to_string());
        }
    }
    env
}
