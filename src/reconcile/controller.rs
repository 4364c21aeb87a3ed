//! The controller task: the single writer of the state. It takes messages from the inbox in
//! batches, rebuilds the graph, runs the pure `reconcile`, applies its decisions, starts
//! queued jobs within the limits, and publishes a snapshot. Between messages it sleeps until
//! the earliest next run — no polling.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{mpsc, watch};
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn};

use super::decide::reconcile;
use super::graph::Target;
use super::message::{AskReply, Command, Message};
use super::queue::Queued;
use super::snapshot::Snapshot;
use super::state::{Decision, NextRun, State};
use crate::clock::Clock;
use crate::config::{Config, Instance};
use crate::metrics::{Metrics, Reconciled};
use crate::model::{InstanceId, JobId, JobKind, Refusal, RefusalKind, RestoreQuestion};

/// At most this many messages are applied before the state is reconciled and published, so
/// a burst (a relist of thousands of volumes, say) cannot starve readers.
const BATCH: usize = 1024;

/// Even with nothing due, look again this often, so a wall-clock jump (NTP correction, a
/// suspended VM) delays a run by at most this much.
const MAX_SLEEP: Duration = Duration::from_mins(1);

/// A job handed to the executor: the instance as configured when it was started (a reload
/// does not change a running job) and its targets as observed then.
#[derive(Debug, Clone)]
pub struct JobOrder {
    /// The kind of work the job does.
    pub kind: JobKind,
    /// The instance's settings.
    pub instance: Instance,
    /// Its targets with their observed status.
    pub targets: Vec<Target>,
    /// When it became due and why, and its job record if one exists already.
    pub job: Queued,
    /// The whole config it started under, for global settings (node name, staging, helper
    /// image); a reload does not change a running job.
    pub config: Arc<Config>,
}

/// A question about an instance's restore points, for the executor to answer: the instance
/// as configured now and its targets as observed now.
#[derive(Debug)]
pub struct AskOrder {
    /// The instance's settings.
    pub instance: Instance,
    /// Its targets with their observed status.
    pub targets: Vec<Target>,
    /// The config in force, for global settings.
    pub config: Arc<Config>,
    /// The question.
    pub question: RestoreQuestion,
    /// Where the answer goes.
    pub reply: AskReply,
}

/// What the controller asks of the executor.
#[derive(Debug)]
pub enum Order {
    /// Run this job.
    Run(Box<JobOrder>),
    /// Close a job record that will never run (its run was merged into another, or its
    /// instance was removed), marking it aborted with `reason`.
    Close {
        /// The record.
        job: JobId,
        /// Why it does not run.
        reason: &'static str,
    },
    /// Answer a question about restore points (snapshots, a restore's plan).
    Ask(Box<AskOrder>),
    /// Look for the dump tools in a database container whose kind nothing else tells, and
    /// report what they tell as [`Message::DbProbed`].
    Probe {
        /// The container's id.
        container_id: String,
        /// Its name, for messages.
        container: String,
    },
}

/// The controller and its connections.
pub struct Controller {
    state: State,
    inbox: mpsc::Receiver<Message>,
    snapshots: watch::Sender<Arc<Snapshot>>,
    /// Where started jobs go; `None` keeps due jobs waiting in the queue (no executor).
    executor: Option<mpsc::UnboundedSender<Order>>,
    clock: Clock,
    /// Times each reconcile pass; the state-derived gauges come from the snapshots.
    metrics: Metrics,
    /// Questions taken in since the last pass, answered after the graph is rebuilt.
    questions: Vec<(InstanceId, RestoreQuestion, AskReply)>,
}

impl Controller {
    /// A controller starting from `state`, reading `inbox`. Returns it with the receiver
    /// readers use to get snapshots.
    #[must_use]
    pub fn new(
        state: State,
        inbox: mpsc::Receiver<Message>,
        executor: Option<mpsc::UnboundedSender<Order>>,
        clock: Clock,
        metrics: Metrics,
    ) -> (Self, watch::Receiver<Arc<Snapshot>>) {
        let (snapshots, receiver) = watch::channel(Arc::new(Snapshot::build(&state, clock.now())));
        let controller = Self {
            state,
            inbox,
            snapshots,
            executor,
            clock,
            metrics,
            questions: Vec::new(),
        };
        (controller, receiver)
    }

    /// Runs until `shutdown` is cancelled or every sender of the inbox is gone.
    pub async fn run(mut self, shutdown: CancellationToken) {
        loop {
            self.step();
            let sleep = self.time_to_next_run();
            tokio::select! {
                biased;
                () = shutdown.cancelled() => break,
                message = self.inbox.recv() => {
                    let Some(message) = message else { break };
                    self.take_batch(message);
                }
                () = tokio::time::sleep(sleep) => {}
            }
        }
        self.close_waiting();
        debug!("Controller stopped.");
    }

    /// On shutdown: job records of runs that waited in the queue will never run; have them
    /// closed rather than left `scheduled`.
    fn close_waiting(&mut self) {
        let Some(executor) = &self.executor else {
            return;
        };
        for job in self.state.queue.drain_records() {
            let _ = executor.send(Order::Close {
                job,
                reason: "Marina shut down before the job started",
            });
        }
    }

    fn time_to_next_run(&self) -> Duration {
        self.state
            .next_wakeup()
            .map_or(MAX_SLEEP, |at| {
                (at - self.clock.now()).to_std().unwrap_or(Duration::ZERO)
            })
            .min(MAX_SLEEP)
    }

    /// Applies `first` and whatever else is already waiting, up to [`BATCH`].
    fn take_batch(&mut self, first: Message) {
        let now = self.clock.now();
        self.take(first, now);
        for _ in 1..BATCH {
            match self.inbox.try_recv() {
                Ok(message) => self.take(message, now),
                Err(_) => break,
            }
        }
    }

    /// Applies a message to the state; a question is kept for the next pass instead.
    fn take(&mut self, message: Message, now: chrono::DateTime<chrono::Utc>) {
        match message {
            Message::Command(Command::Ask {
                instance,
                question,
                reply,
            }) => self.questions.push((instance, question, reply)),
            message => self.state.apply(message, now),
        }
    }

    /// Hands each question to the executor with the instance it is about, or refuses it.
    fn ask(&mut self) {
        for (id, question, reply) in std::mem::take(&mut self.questions) {
            let (Some(executor), Some(config)) = (&self.executor, self.state.config.clone()) else {
                reply.send(Err(Refusal::new(
                    RefusalKind::Unavailable,
                    "Marina has not read its config yet; try again in a moment",
                )));
                continue;
            };
            if !self.state.is_ready() {
                reply.send(Err(Refusal::new(
                    RefusalKind::Unavailable,
                    "Marina has not listed Docker yet; try again in a moment",
                )));
                continue;
            }
            let Some(instance) = self.state.instance(&id).cloned() else {
                reply.send(Err(Refusal::new(
                    RefusalKind::NotFound,
                    format!("no instance `{id}` is configured"),
                )));
                continue;
            };
            let targets = self
                .state
                .graph
                .targets
                .get(&id)
                .cloned()
                .unwrap_or_default();
            let order = AskOrder {
                instance,
                targets,
                config,
                question,
                reply,
            };
            if let Err(mpsc::error::SendError(Order::Ask(order))) =
                executor.send(Order::Ask(Box::new(order)))
            {
                order.reply.send(Err(Refusal::new(
                    RefusalKind::Unavailable,
                    "Marina is shutting down",
                )));
            }
        }
    }

    /// Reconciles, starts what may start, and publishes.
    fn step(&mut self) {
        let started = self.clock.instant();
        let now = self.clock.now();
        self.state.refresh_graph();
        let mut probes = Vec::new();
        for decision in reconcile(&self.state, now) {
            log_decision(&decision);
            if let Decision::Probe {
                container_id,
                container,
            } = &decision
            {
                probes.push(Order::Probe {
                    container_id: container_id.clone(),
                    container: container.clone(),
                });
            }
            self.state.apply_decision(decision);
        }
        // A probe asked for shows as pending in the snapshot below.
        self.state.refresh_graph();
        self.order_probes(probes);
        self.ask();
        self.start_jobs();
        let snapshot = Arc::new(Snapshot::build(&self.state, now));
        self.snapshots.send_replace(snapshot);
        self.metrics.emit(Reconciled {
            duration: started.elapsed(),
        });
    }

    /// Hands the probes decided on to the executor. Without one they stay pending, and a
    /// job's own probe (there is no job either) never comes.
    fn order_probes(&self, probes: Vec<Order>) {
        let Some(executor) = &self.executor else {
            return;
        };
        for probe in probes {
            if executor.send(probe).is_err() {
                warn!(
                    "The executor has stopped; the dump tools of a database container are not looked for."
                );
                return;
            }
        }
    }

    fn start_jobs(&mut self) {
        let Some(executor) = &self.executor else {
            return;
        };
        for (job, reason) in self.state.orphaned_jobs.drain(..) {
            let _ = executor.send(Order::Close { job, reason });
        }
        // Don't act before seeing the whole world: a job started before the first listing
        // would see no targets (and could overtake start-up recovery).
        if !self.state.is_ready() {
            return;
        }
        let Some(config) = self.state.config.clone() else {
            return;
        };
        let config = &config;
        while let Some((id, job)) = self.state.queue.next_to_start() {
            let Some(instance) = self.state.instance(&id).cloned() else {
                self.state.queue.finished(&id);
                continue;
            };
            let targets = self
                .state
                .graph
                .targets
                .get(&id)
                .cloned()
                .unwrap_or_default();
            info!(instance = %id, kind = %job.kind, trigger = ?job.trigger, due = %job.due, "Starting {} job.", job.kind);
            let order = JobOrder {
                kind: job.kind,
                instance,
                targets,
                job,
                config: Arc::clone(config),
            };
            if executor.send(Order::Run(Box::new(order))).is_err() {
                warn!(instance = %id, "The executor has stopped; the job stays queued.");
                self.state.queue.finished(&id);
                self.state.queue.push(id, job);
                return;
            }
        }
    }
}

fn log_decision(decision: &Decision) {
    match decision {
        Decision::Schedule {
            instance,
            next_run: NextRun::At(at),
        } => {
            debug!(instance = %instance, next_run = %at, "Next run scheduled.");
        }
        Decision::Schedule {
            instance,
            next_run: NextRun::Never,
        } => {
            warn!(instance = %instance, "The schedule has no future occurrence; the instance will not run.");
        }
        Decision::Schedule { .. } | Decision::CatchUpChecked => {}
        Decision::Enqueue { instance, job } => {
            info!(instance = %instance, trigger = ?job.trigger, due = %job.due, "Backup is due; queued.");
        }
        Decision::Probe { container, .. } => {
            debug!(container = %container, "The image of a database container does not name a database; looking for its dump tools.");
        }
        Decision::WarnUnassigned { target, instance } => {
            warn!(target = %target, instance = %instance, "A labelled target names an instance that is not configured; it is not backed up. Fix the label or add the instance.");
        }
    }
}
