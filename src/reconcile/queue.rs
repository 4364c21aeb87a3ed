//! The work queue: due jobs wait here until the executor may take them. It dedupes (an
//! instance has at most one waiting job of each kind; a backup is queued at its earliest due
//! time), never hands out an instance that is already running — so a backup and a restore of
//! one instance never run at once — and never lets more than `maxConcurrentJobs` run.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Utc};
use serde::Serialize;

pub use crate::model::Trigger;
use crate::model::{InstanceId, JobId, JobKind};

/// A queued job.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Queued {
    /// What the job does.
    pub kind: JobKind,
    /// When it became due; the earliest wins when queued twice.
    pub due: DateTime<Utc>,
    /// Why it was queued.
    pub trigger: Trigger,
    /// The job record already created for it (a manual trigger answers with its id at
    /// once); `None` until the executor creates one.
    pub job: Option<JobId>,
}

impl Queued {
    /// A backup due at `due` for `trigger`, without a job record yet.
    #[must_use]
    pub fn new(due: DateTime<Utc>, trigger: Trigger) -> Self {
        Self {
            kind: JobKind::Backup,
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
    /// Waiting jobs, one per instance and kind. An instance may wait while it runs: it
    /// starts again after.
    waiting: BTreeMap<(InstanceId, JobKind), Queued>,
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

    /// Queues a job of `instance`; if one of its kind already waits, the two become one
    /// run: the earlier due time (and its trigger) wins, and a job record either of them had
    /// is kept. When both had a record, the later one's record has no run left and is
    /// returned, for the caller to close.
    pub fn push(&mut self, instance: InstanceId, job: Queued) -> Option<JobId> {
        let Some(existing) = self.waiting.get_mut(&(instance.clone(), job.kind)) else {
            self.waiting.insert((instance, job.kind), job);
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

    /// Forgets the waiting jobs of `instance` (it was removed from the config) and returns
    /// them. A running job is left to finish.
    pub fn forget(&mut self, instance: &InstanceId) -> Vec<Queued> {
        JobKind::ALL
            .iter()
            .filter_map(|kind| self.waiting.remove(&(instance.clone(), *kind)))
            .collect()
    }

    /// Takes the waiting job that is due first among instances not running, if the limit
    /// allows one more; it is then counted as running until [`WorkQueue::finished`].
    pub fn next_to_start(&mut self) -> Option<(InstanceId, Queued)> {
        if self.running.len() >= self.limit {
            return None;
        }
        let (key, _) = self
            .waiting
            .iter()
            .filter(|((id, _), _)| !self.running.contains(id))
            .min_by_key(|(key, job)| (job.due, (*key).clone()))?;
        let key = key.clone();
        let job = self.waiting.remove(&key)?;
        let (instance, _) = key;
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

    /// The waiting backup of `instance`, if any.
    #[must_use]
    pub fn waiting(&self, instance: &InstanceId) -> Option<&Queued> {
        self.waiting_of(instance, JobKind::Backup)
    }

    /// The waiting job of `kind` of `instance`, if any.
    #[must_use]
    pub fn waiting_of(&self, instance: &InstanceId, kind: JobKind) -> Option<&Queued> {
        self.waiting.get(&(instance.clone(), kind))
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
    fn a_restore_waits_beside_a_backup_and_never_runs_with_one() {
        let mut queue = WorkQueue::new(5);
        let restore = Queued {
            kind: JobKind::Restore,
            ..manual(2, 7)
        };
        queue.push(id("a"), at(1));
        assert_eq!(queue.push(id("a"), restore), None, "two kinds, two jobs");
        assert_eq!(queue.waiting_of(&id("a"), JobKind::Restore), Some(&restore));
        assert_eq!(queue.next_to_start(), Some((id("a"), at(1))));
        assert_eq!(queue.next_to_start(), None, "the backup of a runs");
        queue.finished(&id("a"));
        assert_eq!(queue.next_to_start(), Some((id("a"), restore)));
        queue.push(id("a"), at(3));
        assert_eq!(queue.next_to_start(), None, "the restore of a runs");
        assert_eq!(queue.forget(&id("a")), vec![at(3)]);
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

    /// One step a caller of the queue can take.
    #[derive(Debug, Clone)]
    enum Op {
        /// Queue instance `who` due at second `due`, with a job record when `record`.
        Push {
            who: usize,
            due: i64,
            trigger: Trigger,
            record: bool,
        },
        NextToStart,
        Finished(usize),
        Forget(usize),
        SetLimit(usize),
        DrainRecords,
    }

    const NAMES: [&str; 5] = ["a", "b", "c", "d", "e"];

    fn op() -> impl Strategy<Value = Op> {
        let trigger = prop_oneof![
            Just(Trigger::Schedule),
            Just(Trigger::CatchUp),
            Just(Trigger::Manual)
        ];
        let who = 0..NAMES.len();
        prop_oneof![
            4 => (who.clone(), 0i64..50, trigger, any::<bool>()).prop_map(|(who, due, trigger, record)| Op::Push { who, due, trigger, record }),
            3 => Just(Op::NextToStart),
            2 => who.clone().prop_map(Op::Finished),
            1 => who.prop_map(Op::Forget),
            1 => (0usize..4).prop_map(Op::SetLimit),
            1 => Just(Op::DrainRecords),
        ]
    }

    /// The queue as the module documentation describes it, written the plain way: waiting
    /// jobs by instance, the running instances, and the limit.
    #[derive(Debug, Default)]
    struct Model {
        limit: usize,
        waiting: BTreeMap<String, Queued>,
        running: BTreeSet<String>,
    }

    impl Model {
        /// Returns the job record that no longer has a run.
        fn push(&mut self, who: &str, job: Queued) -> Option<JobId> {
            let Some(old) = self.waiting.get(who).copied() else {
                self.waiting.insert(who.to_owned(), job);
                return None;
            };
            // The earliest due time wins; on a tie the job already waiting stays.
            let (mut kept, dropped) = if job.due < old.due {
                (job, old)
            } else {
                (old, job)
            };
            let orphan = match (kept.job, dropped.job) {
                (Some(_), dropped_record) => dropped_record,
                (None, dropped_record) => {
                    kept.job = dropped_record;
                    None
                }
            };
            self.waiting.insert(who.to_owned(), kept);
            orphan
        }

        fn next_to_start(&mut self) -> Option<(String, Queued)> {
            if self.running.len() >= self.limit.max(1) {
                return None;
            }
            let mut candidates: Vec<(&String, &Queued)> = self
                .waiting
                .iter()
                .filter(|(who, _)| !self.running.contains(*who))
                .collect();
            candidates.sort_by_key(|(who, job)| (job.due, (*who).clone()));
            let (who, job) = candidates.first().map(|(w, j)| ((*w).clone(), **j))?;
            self.waiting.remove(&who);
            self.running.insert(who.clone());
            Some((who, job))
        }
    }

    /// Crosses a job record the queue handed back off the list of those still out.
    fn give_back(
        outstanding: &mut BTreeSet<i64>,
        record: Option<JobId>,
    ) -> Result<(), TestCaseError> {
        if let Some(JobId(record)) = record {
            prop_assert!(
                outstanding.remove(&record),
                "record {} returned twice or never handed in",
                record
            );
        }
        Ok(())
    }

    proptest! {
        /// Drives the real queue and the model with the same operations and compares every
        /// answer and every observable count after each step; job records handed in must come
        /// back exactly once (merged away, started, forgotten or drained), never lost or
        /// duplicated.
        #[test]
        fn behaves_like_the_reference_model(ops in proptest::collection::vec(op(), 0..150), limit in 1usize..4) {
            let mut queue = WorkQueue::new(limit);
            let mut model = Model { limit, ..Model::default() };
            let mut next_record = 0_i64;
            let mut outstanding: BTreeSet<i64> = BTreeSet::new();
            for op in ops {
                match op {
                    Op::Push { who, due, trigger, record } => {
                        let job = Queued {
                            kind: JobKind::Backup,
                            due: at(due).due,
                            trigger,
                            job: record.then(|| {
                                next_record += 1;
                                outstanding.insert(next_record);
                                JobId(next_record)
                            }),
                        };
                        let real = queue.push(id(NAMES[who]), job);
                        let expected = model.push(NAMES[who], job);
                        prop_assert_eq!(real, expected, "push {:?} of {}", job, NAMES[who]);
                        give_back(&mut outstanding, real)?;
                    }
                    Op::NextToStart => {
                        let real = queue.next_to_start();
                        let expected = model.next_to_start();
                        prop_assert_eq!(
                            real.as_ref().map(|(who, job)| (who.as_str().to_owned(), *job)),
                            expected
                        );
                        give_back(&mut outstanding, real.and_then(|(_, job)| job.job))?;
                    }
                    Op::Finished(who) => {
                        queue.finished(&id(NAMES[who]));
                        model.running.remove(NAMES[who]);
                    }
                    Op::Forget(who) => {
                        let real = queue.forget(&id(NAMES[who]));
                        prop_assert_eq!(real.clone(), model.waiting.remove(NAMES[who]).into_iter().collect::<Vec<_>>());
                        for job in real {
                            give_back(&mut outstanding, job.job)?;
                        }
                    }
                    Op::SetLimit(new_limit) => {
                        queue.set_limit(new_limit);
                        model.limit = new_limit;
                    }
                    Op::DrainRecords => {
                        let mut real = queue.drain_records();
                        let mut expected: Vec<JobId> = std::mem::take(&mut model.waiting)
                            .into_values()
                            .filter_map(|job| job.job)
                            .collect();
                        real.sort_by_key(|r| r.0);
                        expected.sort_by_key(|r| r.0);
                        prop_assert_eq!(&real, &expected);
                        for record in real {
                            give_back(&mut outstanding, Some(record))?;
                        }
                    }
                }
                prop_assert_eq!(queue.waiting_count(), model.waiting.len());
                prop_assert_eq!(queue.running_count(), model.running.len());
                for name in NAMES {
                    prop_assert_eq!(queue.waiting(&id(name)), model.waiting.get(name), "waiting job of {}", name);
                    prop_assert_eq!(queue.is_running(&id(name)), model.running.contains(name), "running {}", name);
                }
                // Every record still out is held by exactly one waiting job.
                let held: BTreeSet<i64> = model.waiting.values().filter_map(|job| job.job.map(|r| r.0)).collect();
                prop_assert_eq!(&held, &outstanding);
            }
        }
    }
}
