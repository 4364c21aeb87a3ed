//! `reconcile`: the pure decision function. Given the state and the time, it says what
//! should change — next runs, due jobs, one-time warnings — without doing anything. It is
//! level-triggered: it never asks why it was called, and calling it twice in a row returns
//! nothing new the second time once the first decisions are applied.

use std::collections::BTreeSet;

use chrono::{DateTime, Utc};

use super::graph::Found;
use super::queue::{Queued, Trigger};
use super::state::{Decision, NextRun, State};
use crate::config::Instance;
use crate::model::{ContainerState, DbKind, TargetKind};

/// What should change, given `state` at `now`.
#[must_use]
pub fn reconcile(state: &State, now: DateTime<Utc>) -> Vec<Decision> {
    let Some(config) = state.config.as_ref().filter(|_| state.is_ready()) else {
        // Don't act before seeing the whole world (DESIGN.md).
        return Vec::new();
    };
    let mut decisions = Vec::new();
    for instance in &config.instances {
        let Some(runtime) = state.instances.get(&instance.id) else {
            continue;
        };
        match runtime.next_run {
            NextRun::Unknown => decisions.push(Decision::Schedule {
                instance: instance.id.clone(),
                next_run: next_run_after(instance, now),
            }),
            NextRun::At(due) if due <= now => {
                let job = Queued::new(due, Trigger::Schedule);
                decisions.push(Decision::Enqueue {
                    instance: instance.id.clone(),
                    job,
                });
                // Feed the fired occurrence back as the start, so a DST repeat fires once;
                // if Marina was busy past further occurrences, they are covered by this job.
                let following = match next_run_after(instance, due) {
                    NextRun::At(next) if next <= now => next_run_after(instance, now),
                    other => other,
                };
                decisions.push(Decision::Schedule {
                    instance: instance.id.clone(),
                    next_run: following,
                });
            }
            NextRun::At(_) | NextRun::Never => {}
        }
        if !state.catch_up_checked && missed_a_run(state, instance, now) {
            let job = Queued::new(now, Trigger::CatchUp);
            decisions.push(Decision::Enqueue {
                instance: instance.id.clone(),
                job,
            });
        }
    }
    if !state.catch_up_checked {
        decisions.push(Decision::CatchUpChecked);
    }
    for unassigned in &state.graph.unassigned {
        for instance in &unassigned.unknown_instances {
            let key = (unassigned.target.clone(), instance.clone());
            if !state.warned_unassigned.contains(&key) {
                decisions.push(Decision::WarnUnassigned {
                    target: key.0,
                    instance: key.1,
                });
            }
        }
    }
    decisions.extend(probes_to_ask(state));
    decisions
}

/// Running database containers whose kind neither the config, a label nor the image name
/// tells, and whose dump tools were not asked about yet: each is probed once (by container
/// id, so a recreated container is probed again). A stopped one is not: it has no tools to
/// run until it starts.
fn probes_to_ask(state: &State) -> Vec<Decision> {
    let mut asked = BTreeSet::new();
    let mut decisions = Vec::new();
    for target in state.graph.targets.values().flatten() {
        let (TargetKind::Db { kind: None, .. }, Some(Found::Container(container))) =
            (&target.spec.kind, &target.found)
        else {
            continue;
        };
        if container.state == ContainerState::Running
            && DbKind::detect_from_image(&container.image).is_none()
            && !state.probes.contains_key(&container.id)
            && asked.insert(container.id.as_str())
        {
            decisions.push(Decision::Probe {
                container_id: container.id.clone(),
                container: container.name.clone(),
            });
        }
    }
    decisions
}

/// The first occurrence of the instance's schedule strictly after `after`, in its zone.
#[must_use]
pub fn next_run_after(instance: &Instance, after: DateTime<Utc>) -> NextRun {
    instance
        .schedule
        .next_after(&after.with_timezone(&instance.timezone))
        .map_or(NextRun::Never, |next| NextRun::At(next.to_utc()))
}

/// Whether the instance's schedule fired since its last success while Marina was not
/// running it (SPEC §5). An instance that ran but never succeeded counts from its last run:
/// a failure yesterday and no run since is a missed run too. An instance that never ran has
/// nothing to catch up: it is new, and its first run comes at its scheduled time.
fn missed_a_run(state: &State, instance: &Instance, now: DateTime<Utc>) -> bool {
    if !instance.catch_up {
        return false;
    }
    let Some(history) = state.history.get(&instance.id) else {
        return false;
    };
    let Some(covered_until) = history
        .last_success
        .or(history.last_finished.map(|(at, _)| at))
    else {
        return false;
    };
    instance
        .schedule
        .previous_at_or_before(&now.with_timezone(&instance.timezone))
        .is_some_and(|previous| previous.to_utc() > covered_until)
}
