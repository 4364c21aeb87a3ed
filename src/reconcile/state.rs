//! The state graph's owner-side data: everything the reconciler knows, changed only by
//! [`State::apply`] (messages) and [`State::apply_decision`] (its own decisions).

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use chrono::{DateTime, Utc};

use super::graph::{self, Graph};
use super::message::{Command, Message, Reply, TriggerAnswer};
use super::queue::{Queued, Trigger, WorkQueue};
use crate::config::{Config, Diagnostic, Instance};
use crate::model::{
    InstanceId, Inventory, InventoryChange, JobId, JobKind, ProbeResult, TargetId, ToolProbe,
};

/// An instance's next run, as far as the reconciler has worked it out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NextRun {
    /// Not computed yet (new instance, changed schedule, or not ready).
    Unknown,
    /// The next time it is due.
    At(DateTime<Utc>),
    /// The schedule has no future occurrence.
    Never,
}

/// What the reconciler keeps per configured instance besides its config.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InstanceRuntime {
    /// When it is due next.
    pub next_run: NextRun,
    /// When this instance first appeared in the config (this process's view).
    pub created_at: DateTime<Utc>,
    /// When its config last changed.
    pub updated_at: DateTime<Utc>,
}

pub use crate::model::History;

/// The outcome of the latest config load.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReloadOutcome {
    /// When it was read.
    pub at: DateTime<Utc>,
    /// Whether it was applied.
    pub accepted: bool,
    /// Errors (when rejected) or warnings (when accepted).
    pub diagnostics: Vec<Diagnostic>,
}

/// The connection to Docker as the reconciler sees it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DockerStatus {
    /// Whether the event stream is up.
    pub connected: bool,
    /// When the last complete listing arrived.
    pub listed_at: Option<DateTime<Utc>>,
    /// Why the connection was lost last.
    pub last_error: Option<String>,
}

/// Everything the reconciler knows.
#[derive(Debug, Clone)]
pub struct State {
    /// The config in force; `None` until the first valid load.
    pub config: Option<Arc<Config>>,
    /// Bumped on every applied config.
    pub config_generation: u64,
    /// The latest load, applied or rejected.
    pub last_reload: Option<ReloadOutcome>,
    /// Volumes and containers; `None` until the first complete listing.
    pub inventory: Option<Inventory>,
    /// Connection status.
    pub docker: DockerStatus,
    /// The joined view, rebuilt after changes.
    pub graph: Graph,
    /// Per-instance runtime data, for every configured instance.
    pub instances: BTreeMap<InstanceId, InstanceRuntime>,
    /// Due work.
    pub queue: WorkQueue,
    /// Past jobs per instance.
    pub history: BTreeMap<InstanceId, History>,
    /// Whether missed runs were checked since start-up (done once, SPEC §5).
    pub catch_up_checked: bool,
    /// Unassigned target/instance pairs already logged, so each is warned about once.
    pub warned_unassigned: BTreeSet<(TargetId, InstanceId)>,
    /// Job records that lost their run (merged into another queued run, or their instance
    /// was removed), with why; the controller has the executor close them.
    pub orphaned_jobs: Vec<(JobId, &'static str)>,
    /// What the dump tools tell of database containers whose kind nothing else tells, by
    /// container id: asked for once per container, kept while it exists.
    pub probes: BTreeMap<String, ToolProbe>,
    /// Set when config or inventory changed and the graph must be rebuilt.
    graph_stale: bool,
}

/// What the reconciler decided, applied by [`State::apply_decision`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// Set an instance's next run.
    Schedule {
        /// Whose.
        instance: InstanceId,
        /// When.
        next_run: NextRun,
    },
    /// Queue a job.
    Enqueue {
        /// Whose.
        instance: InstanceId,
        /// When it became due and why.
        job: Queued,
    },
    /// Missed runs have been checked; do not check again.
    CatchUpChecked,
    /// Tell the operator once that a labelled target names an unknown instance.
    WarnUnassigned {
        /// The target.
        target: TargetId,
        /// The unknown instance id.
        instance: InstanceId,
    },
    /// Look for the dump tools in a running database container whose kind neither the
    /// config, a label nor the image name tells (once per container id).
    Probe {
        /// The container's id.
        container_id: String,
        /// Its name, for messages.
        container: String,
    },
}

impl State {
    /// Nothing known yet; `history` comes from the job store.
    #[must_use]
    pub fn new(history: BTreeMap<InstanceId, History>) -> Self {
        Self {
            config: None,
            config_generation: 0,
            last_reload: None,
            inventory: None,
            docker: DockerStatus::default(),
            graph: Graph::default(),
            instances: BTreeMap::new(),
            queue: WorkQueue::new(1),
            history,
            catch_up_checked: false,
            warned_unassigned: BTreeSet::new(),
            orphaned_jobs: Vec::new(),
            probes: BTreeMap::new(),
            graph_stale: false,
        }
    }

    /// Whether Marina has seen the whole world: a config and a complete Docker listing. No
    /// decision is taken before.
    #[must_use]
    pub fn is_ready(&self) -> bool {
        self.config.is_some() && self.inventory.is_some()
    }

    /// The config of `instance`, if configured.
    #[must_use]
    pub fn instance(&self, id: &InstanceId) -> Option<&Instance> {
        self.config.as_ref()?.instances.iter().find(|i| &i.id == id)
    }

    /// Takes in one message.
    pub fn apply(&mut self, message: Message, now: DateTime<Utc>) {
        match message {
            Message::Inventory(change) => self.apply_inventory(change, now),
            Message::ConfigLoaded { config, warnings } => self.apply_config(config, warnings, now),
            Message::ConfigRejected { diagnostics } => {
                self.last_reload = Some(ReloadOutcome {
                    at: now,
                    accepted: false,
                    diagnostics,
                });
            }
            Message::Command(Command::Trigger {
                instance,
                job,
                reply,
            }) => self.apply_trigger(instance, job, reply, now),
            Message::Command(Command::Restore {
                instance,
                job,
                reply: Reply(reply),
            }) => {
                let answer = self.restore(instance, job, now);
                if reply.send(answer).is_err() && answer != TriggerAnswer::Accepted {
                    self.orphaned_jobs
                        .push((job, "the restore request was refused"));
                }
            }
            Message::Command(Command::Ask { reply, .. }) => {
                // The controller answers questions itself; one reaching the state has no
                // executor to go to.
                reply.send(Err(crate::model::Refusal::new(
                    crate::model::RefusalKind::Unavailable,
                    "Marina is not running jobs; try again when it is ready",
                )));
            }
            Message::JobFinished {
                instance,
                kind,
                succeeded,
            } => {
                self.queue.finished(&instance);
                if kind != JobKind::Backup {
                    return;
                }
                let history = self.history.entry(instance).or_default();
                history.last_finished = Some((now, succeeded));
                if succeeded {
                    history.last_success = Some(now);
                }
            }
            Message::DbProbed {
                container_id,
                result,
            } => self.apply_probe(container_id, result),
        }
    }

    /// Keeps what a container's dump tools told, unless the container is gone meanwhile (a
    /// recreated one has a new id and is asked about anew).
    fn apply_probe(&mut self, container_id: String, result: Result<ProbeResult, String>) {
        let exists = self
            .inventory
            .as_ref()
            .is_some_and(|inventory| inventory.containers.contains_key(&container_id));
        if !exists {
            self.probes.remove(&container_id);
            return;
        }
        let probe = match result {
            Ok(told) => ToolProbe::Answered(told),
            Err(message) => ToolProbe::Failed(message),
        };
        self.probes.insert(container_id, probe);
        self.graph_stale = true;
    }

    /// Decides a run-now request. Only here, in the single writer, is it known for certain
    /// whether the instance runs or waits: two requests in one batch see each other.
    #[must_use]
    pub fn trigger(
        &mut self,
        instance: InstanceId,
        job: Option<JobId>,
        now: DateTime<Utc>,
    ) -> TriggerAnswer {
        let answer = if !self.instances.contains_key(&instance) {
            TriggerAnswer::NotConfigured
        } else if !self.is_ready() {
            TriggerAnswer::NotReady
        } else if self.queue.is_running(&instance) {
            TriggerAnswer::Running
        } else if self.queue.waiting(&instance).is_some() {
            TriggerAnswer::Queued
        } else {
            TriggerAnswer::Accepted
        };
        if answer == TriggerAnswer::Accepted {
            let queued = Queued {
                job,
                ..Queued::new(now, Trigger::Manual)
            };
            self.enqueue(instance, queued);
        }
        answer
    }

    /// Decides a restore request: it waits behind a running job of the instance, but only
    /// one restore of an instance waits at a time.
    #[must_use]
    pub fn restore(
        &mut self,
        instance: InstanceId,
        job: JobId,
        now: DateTime<Utc>,
    ) -> TriggerAnswer {
        let answer = if !self.instances.contains_key(&instance) {
            TriggerAnswer::NotConfigured
        } else if !self.is_ready() {
            TriggerAnswer::NotReady
        } else if self.queue.waiting_of(&instance, JobKind::Restore).is_some() {
            TriggerAnswer::Queued
        } else {
            TriggerAnswer::Accepted
        };
        if answer == TriggerAnswer::Accepted {
            let queued = Queued {
                kind: JobKind::Restore,
                job: Some(job),
                ..Queued::new(now, Trigger::Manual)
            };
            self.enqueue(instance, queued);
        }
        answer
    }

    fn apply_trigger(
        &mut self,
        instance: InstanceId,
        job: Option<JobId>,
        reply: Option<Reply>,
        now: DateTime<Utc>,
    ) {
        let answer = self.trigger(instance, job, now);
        let delivered = reply.is_some_and(|Reply(reply)| reply.send(answer).is_ok());
        // A refused request's record is its caller's to delete; when nobody heard the
        // refusal, nobody will, so have it closed rather than left `scheduled`.
        if answer != TriggerAnswer::Accepted
            && !delivered
            && let Some(job) = job
        {
            self.orphaned_jobs
                .push((job, "the run-now request was refused"));
        }
    }

    fn apply_inventory(&mut self, change: InventoryChange, now: DateTime<Utc>) {
        match change {
            InventoryChange::Listed(listed) => {
                self.inventory = Some(listed);
                self.docker.connected = true;
                self.docker.listed_at = Some(now);
            }
            InventoryChange::Disconnected { reason } => {
                self.docker.connected = false;
                self.docker.last_error = Some(reason);
                return;
            }
            change => match &mut self.inventory {
                Some(inventory) => change.apply(inventory),
                // Changes before the first listing are covered by that listing.
                None => return,
            },
        }
        if let Some(inventory) = &self.inventory {
            self.probes
                .retain(|id, _| inventory.containers.contains_key(id));
        }
        self.graph_stale = true;
    }

    /// Applies a new config, diffing instances by id: new ones get a runtime, changed ones a
    /// new `updated_at` (and a fresh next run if their timing changed), removed ones leave
    /// the queue. A running job is never touched.
    fn apply_config(&mut self, config: Arc<Config>, warnings: Vec<Diagnostic>, now: DateTime<Utc>) {
        let previous = self.config.take();
        let mut instances = BTreeMap::new();
        for instance in &config.instances {
            let old = previous
                .as_ref()
                .and_then(|c| c.instances.iter().find(|i| i.id == instance.id));
            let runtime = match (old, self.instances.remove(&instance.id)) {
                (Some(old), Some(mut runtime)) => {
                    if old != instance {
                        runtime.updated_at = now;
                    }
                    if old.schedule != instance.schedule || old.timezone != instance.timezone {
                        runtime.next_run = NextRun::Unknown;
                    }
                    runtime
                }
                _ => InstanceRuntime {
                    next_run: NextRun::Unknown,
                    created_at: now,
                    updated_at: now,
                },
            };
            instances.insert(instance.id.clone(), runtime);
        }
        for removed in self.instances.keys() {
            for job in self.queue.forget(removed).into_iter().filter_map(|q| q.job) {
                self.orphaned_jobs
                    .push((job, "the instance was removed from the config"));
            }
        }
        self.instances = instances;
        self.queue.set_limit(config.max_concurrent_jobs.get());
        self.config = Some(config);
        self.config_generation += 1;
        self.last_reload = Some(ReloadOutcome {
            at: now,
            accepted: true,
            diagnostics: warnings,
        });
        self.graph_stale = true;
    }

    /// Rebuilds the graph if config or inventory changed since the last call.
    pub fn refresh_graph(&mut self) {
        if !self.graph_stale {
            return;
        }
        self.graph_stale = false;
        if let (Some(config), Some(inventory)) = (&self.config, &self.inventory) {
            self.graph = graph::build(config, inventory, &self.probes);
        }
    }

    /// Applies one of the reconciler's decisions.
    pub fn apply_decision(&mut self, decision: Decision) {
        match decision {
            Decision::Schedule { instance, next_run } => {
                if let Some(runtime) = self.instances.get_mut(&instance) {
                    runtime.next_run = next_run;
                }
            }
            Decision::Enqueue { instance, job } => self.enqueue(instance, job),
            Decision::CatchUpChecked => self.catch_up_checked = true,
            Decision::WarnUnassigned { target, instance } => {
                self.warned_unassigned.insert((target, instance));
            }
            Decision::Probe { container_id, .. } => {
                self.probes.insert(container_id, ToolProbe::Pending);
                self.graph_stale = true;
            }
        }
    }

    /// Queues a run, remembering a job record that lost its run in the merge.
    fn enqueue(&mut self, instance: InstanceId, job: Queued) {
        if let Some(orphan) = self.queue.push(instance, job) {
            self.orphaned_jobs.push((
                orphan,
                "merged into another queued run of the same instance",
            ));
        }
    }

    /// The earliest next run of any instance: when the reconciler must look again even if
    /// nothing happens.
    #[must_use]
    pub fn next_wakeup(&self) -> Option<DateTime<Utc>> {
        self.instances
            .values()
            .filter_map(|r| match r.next_run {
                NextRun::At(at) => Some(at),
                NextRun::Unknown | NextRun::Never => None,
            })
            .min()
    }
}
