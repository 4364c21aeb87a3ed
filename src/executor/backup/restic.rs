//! The restic path of a backup: one repository session for the whole job, its targets backed
//! up one after another (see [`super::volume`] and [`super::db`] for what restic reads of
//! each), then the instance's retention. A repository that refuses Marina (a wrong password,
//! a broken repository) fails the job as a whole at once.

use tracing::{Instrument, error, info, info_span};

use super::target::{Destination, back_up_target};
use crate::backend::restic::Restic;
use crate::clock;
use crate::config::{Backend, Instance};
use crate::docker::Runtime;
use crate::executor::context::{JobContext, TargetOutcome, record_progress};
use crate::metrics::TargetBackedUp;
use crate::reconcile::graph::Target;

/// Backs up `targets` into the instance's restic repository, then applies retention.
pub(super) async fn job<R: Runtime + 'static>(
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
        let outcome = back_up_target(ctx, Destination::Repository(&mut session), target)
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
            Ok(summary) => {
                info!(retention = %retention(&ctx.instance), "Retention applied: {summary}.");
            }
            Err(e) => {
                error!(error = %e, "Retention could not be applied; old snapshots are kept until the next run.");
            }
        }
    }
    Ok(outcomes)
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

/// The instance's retention, as the log shows it.
fn retention(instance: &Instance) -> String {
    match &instance.backend {
        Backend::Restic { retention, .. } => retention.to_string(),
        Backend::CustomImage { .. } => String::new(),
    }
}
