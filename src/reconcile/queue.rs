//! The work queue: due instances wait here until the executor may take them. It dedupes
//! (an instance is queued at most once, at its earliest due time), never hands out an
//! instance that is already running, and never lets more than `maxConcurrentJobs` run.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::model::InstanceId;
use crate::store::JobId;

/// Why a job was queued.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum Trigger {
    /// Its schedule came due.
    Schedule,
    /// A run was missed while Marina was down (SPEC §5).
    CatchUp,
    /// An operator asked for it.
    Manual,
}

/// A queued job.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Queued {
    /// When it became due; the earliest wins when queued twice.
    pub due: DateTime<Utc>,
    /// Why it was queued.
    pub trigger: Trigger,
    /// The job record already created for it (a manual trigger answers with its id at
    /// once); `None` until the executor creates one.
    pub job: Option<JobId>,
}

impl Queued {
    /// A job due at `due` for `trigger`, without a job record yet.
    #[must_use]
    pub fn new(due: DateTime<Utc>, trigger: Trigger) -> Self {
        Self {
            due,
            trigger,
            job: None,
        }
    }
}

/// The queue with its running set.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WorkQueue {
    /// Jobs allowed to run at once (`maxConcurrentJobs`).
    limit: usize,
    /// Waiting instances. An instance may wait while it runs: it starts again after.
    waiting: BTreeMap<InstanceId, Queued>,
    /// Instances whose job is running.
    running: BTreeSet<InstanceId>,
}

impl WorkQueue {
    /// An empty queue that lets `limit` jobs run at once.
    #[must_use]
    pub fn new(limit: usize) -> Self {
        Self {
            limit: limit.max(1),
            waiting: BTreeMap::new(),
            running: BTreeSet::new(),
        }
    }

    /// Changes the concurrency limit (a config reload); running jobs are not touched.
    pub fn set_limit(&mut self, limit: usize) {
        self.limit = limit.max(1);
    }

    /// Queues `instance`; if it already waits, the two become one run: the earlier due time
    /// (and its trigger) wins, and a job record either of them had is kept. When both had a
    /// record, the later one's record has no run left and is returned, for the caller to
    /// close.
    pub fn push(&mut self, instance: InstanceId, job: Queued) -> Option<JobId> {
        let Some(existing) = self.waiting.get_mut(&instance) else {
            self.waiting.insert(instance, job);
            return None;
        };
        let (kept, other) = if job.due < existing.due {
            (job, *existing)
        } else {
            (*existing, job)
        };
        let (record, orphan) = match (kept.job, other.job) {
            (Some(kept_record), orphan) => (Some(kept_record), orphan),
            (None, record) => (record, None),
        };
        *existing = Queued {
            job: record,
            ..kept
        };
        orphan
    }

    /// Forgets a waiting job (its instance was removed from the config) and returns it. A
    /// running job is left to finish.
    pub fn forget(&mut self, instance: &InstanceId) -> Option<Queued> {
        self.waiting.remove(instance)
    }

    /// Takes the waiting job that is due first among instances not running, if the limit
    /// allows one more; it is then counted as running until [`WorkQueue::finished`].
    pub fn next_to_start(&mut self) -> Option<(InstanceId, Queued)> {
        if self.running.len() >= self.limit {
            return None;
        }
        let (instance, _) = self
            .waiting
            .iter()
            .filter(|(id, _)| !self.running.contains(*id))
            .min_by_key(|(id, job)| (job.due, (*id).clone()))?;
        let instance = instance.clone();
        let job = self.waiting.remove(&instance)?;
        self.running.insert(instance.clone());
        Some((instance, job))
    }

    /// Empties the waiting list, returning the job records it held.
    pub fn drain_records(&mut self) -> Vec<JobId> {
        std::mem::take(&mut self.waiting)
            .into_values()
            .filter_map(|q| q.job)
            .collect()
    }

    /// Marks the running job of `instance` as finished.
    pub fn finished(&mut self, instance: &InstanceId) {
        self.running.remove(instance);
    }

    /// Whether a job of `instance` is running.
    #[must_use]
    pub fn is_running(&self, instance: &InstanceId) -> bool {
        self.running.contains(instance)
    }

    /// The waiting job of `instance`, if any.
    #[must_use]
    pub fn waiting(&self, instance: &InstanceId) -> Option<&Queued> {
        self.waiting.get(instance)
    }

    /// How many jobs wait.
    #[must_use]
    pub fn waiting_count(&self) -> usize {
        self.waiting.len()
    }

    /// How many jobs run.
    #[must_use]
    pub fn running_count(&self) -> usize {
        self.running.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn id(s: &str) -> InstanceId {
        InstanceId::parse(s).unwrap()
    }

    fn at(seconds: i64) -> Queued {
        Queued::new(
            DateTime::from_timestamp(seconds, 0).unwrap(),
            Trigger::Schedule,
        )
    }

    fn manual(seconds: i64, job: i64) -> Queued {
        Queued {
            job: Some(JobId(job)),
            trigger: Trigger::Manual,
            ..at(seconds)
        }
    }

    #[test]
    fn an_instance_is_queued_once_at_its_earliest_due_time() {
        let mut queue = WorkQueue::new(2);
        assert_eq!(queue.push(id("a"), at(20)), None);
        assert_eq!(queue.push(id("a"), at(10)), None);
        assert_eq!(queue.push(id("a"), at(30)), None);
        assert_eq!(queue.waiting_count(), 1);
        assert_eq!(queue.next_to_start(), Some((id("a"), at(10))));
        assert_eq!(queue.next_to_start(), None);
    }

    #[test]
    fn job_records_survive_merging_and_extra_ones_are_returned() {
        let mut queue = WorkQueue::new(1);
        queue.push(id("a"), at(10));
        assert_eq!(
            queue.push(id("a"), manual(20, 7)),
            None,
            "the record joins the waiting run"
        );
        assert_eq!(queue.waiting(&id("a")).unwrap().job, Some(JobId(7)));
        assert_eq!(queue.waiting(&id("a")).unwrap().due, at(10).due);
        assert_eq!(
            queue.push(id("a"), manual(5, 8)),
            Some(JobId(7)),
            "two records for one run: the later is returned"
        );
        assert_eq!(queue.waiting(&id("a")).unwrap().job, Some(JobId(8)));
        assert_eq!(queue.push(id("a"), manual(30, 9)), Some(JobId(9)));
    }

    #[test]
    fn a_running_instance_is_not_started_twice() {
        let mut queue = WorkQueue::new(5);
        queue.push(id("a"), at(1));
        assert!(queue.next_to_start().is_some());
        queue.push(id("a"), at(2));
        assert_eq!(queue.next_to_start(), None, "a is still running");
        queue.finished(&id("a"));
        assert_eq!(queue.next_to_start(), Some((id("a"), at(2))));
    }

    #[test]
    fn the_limit_bounds_running_jobs_and_earliest_goes_first() {
        let mut queue = WorkQueue::new(2);
        for (name, due) in [("c", 3), ("a", 1), ("b", 2)] {
            queue.push(id(name), at(due));
        }
        assert_eq!(queue.next_to_start().map(|(i, _)| i), Some(id("a")));
        assert_eq!(queue.next_to_start().map(|(i, _)| i), Some(id("b")));
        assert_eq!(queue.next_to_start(), None);
        queue.finished(&id("a"));
        assert_eq!(queue.next_to_start().map(|(i, _)| i), Some(id("c")));
    }

    proptest! {
        #[test]
        fn invariants_hold_under_any_sequence(ops in proptest::collection::vec((0u8..4, 0u8..5, 0i64..100), 0..200), limit in 1usize..4) {
            let mut queue = WorkQueue::new(limit);
            let names = ["a", "b", "c", "d", "e"];
            for (op, who, due) in ops {
                let instance = id(names[usize::from(who)]);
                match op {
                    0 | 1 => { queue.push(instance, at(due)); }
                    2 => {
                        if let Some((started, _)) = queue.next_to_start() {
                            prop_assert!(queue.is_running(&started));
                        }
                    }
                    _ => queue.finished(&instance),
                }
                prop_assert!(queue.running_count() <= limit);
                prop_assert!(queue.waiting_count() <= names.len());
            }
        }
    }
}
