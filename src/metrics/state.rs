//! The gauges that say what *is*: one [`StateReading`] sets them all at once.
//!
//! A reading is plain data — counts, ids and times — so this file knows nothing of where it
//! comes from; the `gauges` module takes one from each snapshot the controller publishes. The
//! same call removes the series of instances and targets that are no longer in the reading,
//! so no stale series outlives its object.

use std::collections::{BTreeSet, HashMap};

use chrono::{DateTime, Utc};
use prometheus::core::{Collector, MetricVec, MetricVecBuilder};

use super::{FINAL_STATUSES, Metrics, TARGET_KINDS};
use crate::model::{InstanceId, TargetId};

/// What the state gauges show, read at one moment.
#[derive(Debug, Clone, Default)]
pub struct StateReading<'a> {
    /// Whether the latest config load was applied.
    pub config_applied: bool,
    /// Labelled targets naming no configured instance.
    pub unassigned_targets: usize,
    /// Volumes no instance backs up.
    pub unprotected_volumes: usize,
    /// Jobs running now.
    pub jobs_running: usize,
    /// Jobs due and waiting.
    pub jobs_queued: usize,
    /// Every configured instance; series of instances not listed are removed.
    pub instances: Vec<InstanceReading<'a>>,
}

/// One instance's part of a [`StateReading`].
#[derive(Debug, Clone)]
pub struct InstanceReading<'a> {
    /// The instance.
    pub id: &'a InstanceId,
    /// Its targets with their kind (`volume`, `db`); series of other targets are removed.
    pub targets: Vec<(&'a TargetId, &'static str)>,
    /// Its next scheduled run, if known.
    pub next_run_at: Option<DateTime<Utc>>,
    /// Seconds between its next two runs, if known.
    pub schedule_interval_seconds: Option<i64>,
    /// The end of its last successful backup, if known.
    pub last_success_at: Option<DateTime<Utc>>,
}

impl Metrics {
    /// Sets the gauges that describe state from `reading`, creates the series of new
    /// instances (at 0) and removes those of instances and targets that left the config.
    pub fn set_state(&self, reading: &StateReading<'_>) {
        let m = &*self.inner;
        m.config_last_reload_successful
            .set(i64::from(reading.config_applied));
        m.unassigned_targets.set(count(reading.unassigned_targets));
        m.unprotected_volumes
            .set(count(reading.unprotected_volumes));
        m.jobs_running.set(count(reading.jobs_running));
        m.jobs_queued.set(count(reading.jobs_queued));

        let mut instances = BTreeSet::new();
        let mut targets = BTreeSet::new();
        for instance in &reading.instances {
            let id = instance.id.as_str();
            instances.insert(id);
            for kind in TARGET_KINDS {
                let n = instance.targets.iter().filter(|(_, k)| *k == kind).count();
                m.targets.with_label_values(&[id, kind]).set(count(n));
            }
            for (target, _) in &instance.targets {
                targets.insert((id, target.to_string()));
            }
            set_or_remove(
                &m.instance_next_run,
                id,
                instance.next_run_at.map(|at| at.timestamp()),
            );
            set_or_remove(&m.instance_interval, id, instance.schedule_interval_seconds);
            set_or_remove(
                &m.instance_last_success,
                id,
                instance.last_success_at.map(|at| at.timestamp()),
            );
            for status in FINAL_STATUSES {
                m.jobs.with_label_values(&[id, status.as_str()]);
                m.restores.with_label_values(&[id, status.as_str()]);
            }
            m.job_duration.with_label_values(&[id]);
            m.backup_bytes_added.with_label_values(&[id]);
            m.staged_bytes.with_label_values(&[id]);
        }

        let configured = |labels: &HashMap<&str, &str>| {
            labels
                .get("instance")
                .is_some_and(|id| instances.contains(id))
        };
        retain(&m.targets, configured);
        retain(&m.instance_next_run, configured);
        retain(&m.instance_interval, configured);
        retain(&m.instance_last_success, configured);
        retain(&m.jobs, configured);
        retain(&m.restores, configured);
        retain(&m.job_duration, configured);
        retain(&m.backup_bytes_added, configured);
        retain(&m.staged_bytes, configured);
        retain(&m.target_last_success, |labels| {
            match (labels.get("instance"), labels.get("target")) {
                (Some(instance), Some(target)) => {
                    targets.contains(&(*instance, (*target).to_owned()))
                }
                _ => false,
            }
        });
    }
}

/// Sets the `instance` series of `vec` to `value`, or removes it while the value is unknown.
fn set_or_remove(vec: &prometheus::IntGaugeVec, instance: &str, value: Option<i64>) {
    match value {
        Some(value) => vec.with_label_values(&[instance]).set(value),
        None => {
            let _ = vec.remove_label_values(&[instance]);
        }
    }
}

/// A count as a gauge value (a gauge is an `i64`; no real count comes near its limit).
fn count(n: usize) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

/// Removes the series of `vec` whose labels `keep` rejects.
fn retain<T: MetricVecBuilder>(vec: &MetricVec<T>, keep: impl Fn(&HashMap<&str, &str>) -> bool) {
    for family in vec.collect() {
        for metric in family.get_metric() {
            let labels: HashMap<&str, &str> = metric
                .get_label()
                .iter()
                .map(|pair| (pair.name(), pair.value()))
                .collect();
            if !keep(&labels) {
                let _ = vec.remove(&labels);
            }
        }
    }
}
