//! `stopAttached` (SPEC §3.2): the running containers that write to a target's volume are
//! stopped while the volume is read, each journaled before it is stopped, and started again
//! as soon as the volume is read or copied. Whatever started again here is crossed off the
//! journal; what could not be is started by the job's undo-work.

use std::time::Duration;

use tracing::{error, info, warn};

use crate::docker::{ContainerRef, Runtime};
use crate::executor::context::JobContext;
use crate::executor::fault;
use crate::executor::undo::UndoAction;
use crate::model::TargetKind;
use crate::reconcile::graph::{Found, Target};
use crate::store::JournalId;

/// How long a container stopped for `stopAttached` may take to stop before it is killed.
const STOP_TIMEOUT: Duration = Duration::from_secs(30);

/// The containers stopped for a target, each with the journal entry that starts it again.
pub(crate) type Stopped = Vec<(ContainerRef, JournalId)>;

/// Stops the running containers that write to the target's volume when `stopAttached` says
/// so (SPEC §3.2), journaling each before stopping it.
pub(crate) async fn stop_attached<R: Runtime + 'static>(
    ctx: &JobContext<R>,
    target: &Target,
) -> Result<Stopped, String> {
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
    let stopped = stop_journaled(ctx, writers, "while its volume is staged").await?;
    fault::point("after-stop");
    Ok(stopped)
}

/// Stops `containers`, each journaled first so that it is started again however the job
/// ends; a Swarm task (Swarm would replace it) and Marina's own container are left running.
/// `why` ends the log line: "Stopping the container {why}."
pub(crate) async fn stop_journaled<R: Runtime + 'static>(
    ctx: &JobContext<R>,
    containers: Vec<ContainerRef>,
    why: &str,
) -> Result<Stopped, String> {
    let mut stopped = Vec::with_capacity(containers.len());
    for container in containers {
        if container.swarm_task {
            warn!(container = %container.name, "The container is a Swarm task; Swarm would replace it if it were stopped, so it keeps running {why}.");
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
        info!(container = %container.name, "Stopping the container {why}.");
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
    Ok(stopped)
}

/// Starts the containers stopped for staging, as soon as the volume is staged.
pub(crate) async fn start_again<R: Runtime + 'static>(ctx: &JobContext<R>, stopped: Stopped) {
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
