//! A target's hooks (SPEC §3.3): the pre-hook runs before the target's work and a failing one
//! fails the target; the post-hook runs after it whatever happened, and only warns. A hook runs
//! with `sh -c` in the database container, or in a running container that mounts the volume.

use tracing::{info, warn};

use super::db_container::DbContainer;
use crate::docker::{Deadline, ExecLimits, ExecSpec, Runtime, RuntimeError};
use crate::executor::context::{Done, JobContext, TargetOutcome, log_output};
use crate::reconcile::graph::{Found, Target};

/// Runs `stage` between the target's pre-hook and post-hook (SPEC §3.3): a failing pre-hook
/// fails the target; the post-hook runs whatever happened and only warns. A db target's hooks
/// run in `db`.
pub(crate) async fn with_hooks<R, F, Fut>(
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
        (Some(db), _) => Some((db.current(ctx).await?, db.name().to_owned())),
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
