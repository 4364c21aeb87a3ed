//! The backup kind of job: the instance's targets copied into its backend (SPEC §3, §4).
//!
//! Targets are staged one after another; each target's steps are the same for both backends
//! (pre-hook, stop attached containers, read, start them again, post-hook — see [`target`]),
//! only where the data goes differs: restic reads a volume in place and streams dumps into the
//! repository ([`restic`]); a custom image gets the staging layout and then runs once over it
//! ([`custom_image`]). What each backend does with a volume and with a database is in
//! [`volume`] and [`db`]. Whatever happens — success, failure, timeout, shutdown — the job's
//! undo-work runs: stopped containers are started again and staging is removed.
//!
//! The files build on one another downwards only: this one picks the backend; [`restic`] and
//! [`custom_image`] run their targets through [`target`], handing each to [`volume`] or
//! [`db`]; those use the shared steps in [`super::steps`].

pub(super) mod custom_image;
pub(super) mod db;
mod restic;
mod target;
pub(super) mod volume;

use tracing::warn;

use super::context::{JobContext, TargetOutcome};
use crate::config::Backend;
use crate::docker::Runtime;
use crate::reconcile::graph::Target;

/// Backs up `targets` with the instance's backend; the outcome of each target, or why the job
/// failed as a whole.
pub(crate) async fn run<R: Runtime + 'static>(
    ctx: &JobContext<R>,
    targets: &[Target],
) -> Result<Vec<TargetOutcome>, String> {
    let targets: Vec<&Target> = targets.iter().collect();
    if targets.is_empty() {
        warn!(
            "The instance has no targets: nothing to back up. Add targets in the config or label volumes and containers."
        );
        return Err("no targets to back up".into());
    }
    match &ctx.instance.backend {
        Backend::Restic { .. } => restic::job(ctx, &targets).await,
        Backend::CustomImage { image, .. } => custom_image::job(ctx, &targets, image).await,
    }
}
