//! The hands: runs the jobs the controller starts (SPEC §3, §5).
//!
//! The controller's work queue already bounds how many jobs run (`maxConcurrentJobs`) and
//! never starts one instance twice; the executor runs each order as its own task, enforces
//! the instance `timeout`, and on shutdown gives running jobs `shutdownGrace` to finish before
//! aborting them cleanly. Every outcome goes back to the controller as a message.
//!
//! - `runner` — one job of any kind: its target count, the body of its kind, its status.
//! - `context` — what every job is given and reports (the lowest layer of a job).
//! - `steps` — steps on a target that every job kind reuses: hooks, stopAttached, the
//!   database container and its dump, the helper's copy of a volume.
//! - `backup` — the backup kind: which backend, and what it does with each kind of target.
//! - [`staging`] — the staging layout and the empty-data check.
//! - [`undo`] — journaled undo-work; [`recovery`] replays it after a crash.
//! - [`locks`] — one volume is staged by one job at a time.
//! - `sizes` — what each snapshot restores, counted once per process.
//! - [`checked`] — a dump stream that fails at its end when the dump tool failed.
//! - [`fault`] — test-only panics at named points (feature `fault-injection`).

mod backup;
pub mod beneath;
pub mod checked;
mod context;
pub mod fault;
pub mod locks;
pub mod probe;
pub mod recovery;
mod restore;
mod runner;
mod sizes;
pub mod staging;
mod steps;
pub mod undo;

use std::any::Any;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::time::Duration;

use futures::FutureExt;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::{Instrument, error, info, info_span, warn};

use self::context::JobContext;
use self::locks::VolumeLocks;
use self::recovery::undo_job;
use self::runner::JobResult;
use self::undo::Undo;
use crate::clock::{self, Clock};
use crate::docker::Runtime;
use crate::metrics::{JobFinished, Metrics};
use crate::model::JobKind;
use crate::reconcile::{JobOrder, Message, Order};
use crate::store::{JobId, JobStatus, Store};

/// How long an interrupted job's steps get to stop their containers before they are dropped.
const STOP_WAIT: Duration = Duration::from_secs(30);

/// Runs jobs; see the [module docs](self).
pub struct Executor<R> {
    runtime: Arc<R>,
    store: Store,
    inbox: mpsc::Sender<Message>,
    locks: VolumeLocks,
    /// Marina's own container, when it runs in one (host paths of staging).
    own_container: Option<String>,
    /// The owner label value of the containers this Marina starts.
    owner: String,
    /// Where jobs and targets are counted.
    metrics: Metrics,
    /// Database kinds found by looking for dump tools, by container id, so each container
    /// is probed once.
    probes: probe::DbProbes,
    /// What each snapshot restores, once counted.
    sizes: sizes::Sizes,
}

impl<R: Runtime + 'static> Executor<R> {
    /// An executor reporting to the controller's `inbox`.
    pub fn new(
        runtime: Arc<R>,
        store: Store,
        inbox: mpsc::Sender<Message>,
        own_container: Option<String>,
        owner: String,
        metrics: Metrics,
    ) -> Self {
        Self {
            runtime,
            store,
            inbox,
            locks: VolumeLocks::default(),
            own_container,
            owner,
            metrics,
            probes: probe::DbProbes::default(),
            sizes: sizes::Sizes::default(),
        }
    }

    /// Takes orders until `shutdown`; then lets running jobs finish for `grace` and aborts
    /// what is still running (containers started again, staging removed, jobs `aborted`).
    pub async fn run(
        self,
        mut orders: mpsc::UnboundedReceiver<Order>,
        shutdown: CancellationToken,
        grace: Duration,
    ) {
        let this = Arc::new(self);
        let jobs = TaskTracker::new();
        // Probes only look into containers: at shutdown they are dropped, not waited for.
        let lookups = TaskTracker::new();
        let abort = CancellationToken::new();
        loop {
            let order = tokio::select! {
                () = shutdown.cancelled() => break,
                order = orders.recv() => order,
            };
            match order {
                Some(Order::Run(order)) => {
                    let this = Arc::clone(&this);
                    let abort = abort.clone();
                    jobs.spawn(async move { this.run_job(*order, abort).await });
                }
                Some(Order::Close { job, reason }) => this.close(job, reason).await,
                Some(Order::Ask(order)) => {
                    let this = Arc::clone(&this);
                    let shutdown = shutdown.clone();
                    lookups.spawn(async move {
                        tokio::select! {
                            () = shutdown.cancelled() => {}
                            () = restore::answer(&*this.runtime, &this.sizes, &this.owner, *order) => {}
                        }
                    });
                }
                Some(Order::Probe {
                    container_id,
                    container,
                }) => {
                    let this = Arc::clone(&this);
                    let shutdown = shutdown.clone();
                    lookups.spawn(async move {
                        tokio::select! {
                            () = shutdown.cancelled() => {}
                            () = this.probe(container_id, container) => {}
                        }
                    });
                }
                None => break,
            }
        }
        // Orders still in the channel never run: close their records.
        orders.close();
        while let Ok(order) = orders.try_recv() {
            match order {
                Order::Close { job, reason } => this.close(job, reason).await,
                Order::Run(order) => {
                    if let Some(job) = order.job.job {
                        this.close(job, "Marina shut down before the job started")
                            .await;
                    }
                }
                Order::Probe { .. } | Order::Ask(_) => {}
            }
        }
        lookups.close();
        lookups.wait().await;
        jobs.close();
        if !jobs.is_empty() {
            info!(jobs = jobs.len(), grace = ?grace, "Waiting for running jobs to finish before stopping.");
        }
        if tokio::time::timeout(grace, jobs.wait()).await.is_err() {
            warn!(
                jobs = jobs.len(),
                "The shutdown grace period is over; aborting the running jobs."
            );
            abort.cancel();
            jobs.wait().await;
        }
        if let Err(e) = this.store.flush().await {
            error!(error = %e, "Could not write the last log lines to the job store.");
        }
    }

    /// Looks for the dump tools in a database container and tells the controller what they
    /// tell; the answer is remembered for this executor's jobs too.
    async fn probe(&self, container_id: String, container: String) {
        let result = probe::look(&*self.runtime, &self.probes, &container_id, &container).await;
        match &result {
            Ok(Ok((kind, tool))) => {
                info!(container = %container, kind = %kind, tool, "The image does not name a database: kind {kind}, found {tool} in the container.");
            }
            Ok(Err(e)) => {
                warn!(container = %container, found = %e, "The dump tools in the container do not tell its database kind; it is not backed up until dbKind (config) or dev.polarfox.marina.db (label) is set.");
            }
            Err(e) => {
                warn!(container = %container, error = %e, "Could not look for the dump tools in the container; its kind stays unknown until the container is recreated or Marina restarts. Set dbKind (config) or dev.polarfox.marina.db (label).");
            }
        }
        let message = Message::DbProbed {
            container_id,
            result,
        };
        if self.inbox.send(message).await.is_err() {
            warn!(container = %container, "The controller has stopped; what the dump tools tell is not shown.");
        }
    }

    /// Closes a job record that will never run.
    async fn close(&self, job: JobId, reason: &str) {
        if let Err(e) = self
            .store
            .set_job_status(
                job,
                JobStatus::Aborted,
                Some(reason.to_owned()),
                clock::now(),
            )
            .await
        {
            warn!(job = %job, error = %e, "Could not close a job that will not run.");
        }
    }

    async fn run_job(self: Arc<Self>, order: JobOrder, abort: CancellationToken) {
        let instance = order.instance.id.clone();
        let job = match order.job.job {
            Some(job) => job,
            None => match self
                .store
                .create_job(
                    &instance,
                    &order.config.node_name,
                    order.job.trigger,
                    clock::now(),
                )
                .await
            {
                Ok(record) => record.id,
                Err(e) => {
                    error!(instance = %instance, error = %e, "Cannot record the job; it does not run. Check the job store (dbPath).");
                    self.finished(&order, false).await;
                    return;
                }
            },
        };
        let span = info_span!("job", job_id = job.0, instance = %instance);
        // A bug in a job must not wedge its instance: whatever panics, the job ends `failed`,
        // what it changed is put back, and the controller hears that it finished.
        let run = AssertUnwindSafe(self.run_recorded(job, &order, abort))
            .catch_unwind()
            .instrument(span.clone())
            .await;
        let succeeded = match run {
            Ok(succeeded) => succeeded,
            Err(panic) => {
                self.after_panic(job, &panic_message(&*panic))
                    .instrument(span)
                    .await;
                false
            }
        };
        self.finished(&order, succeeded).await;
    }

    /// Cleans up after a job whose task panicked outside its body (where
    /// [`Executor::run_recorded`] could not): its journal says what to put back.
    async fn after_panic(&self, job: JobId, message: &str) {
        error!(
            panic = message,
            "The job failed because Marina hit a bug (a panic); what the job changed is put back. Please report this with the job log."
        );
        if let Err(e) = undo_job(&*self.runtime, &self.store, job).await {
            error!(error = %e, "Could not read the job's journal; the next start of Marina puts back what it changed.");
        }
        let reason = format!("Marina hit a bug (a panic): {message}");
        if let Err(e) = self
            .store
            .set_job_status(job, JobStatus::Failed, Some(reason), clock::now())
            .await
        {
            error!(error = %e, "Could not record the job's outcome.");
        }
    }

    /// Runs a job that has a record, racing it against its timeout and shutdown; returns
    /// whether it succeeded.
    async fn run_recorded(&self, job: JobId, order: &JobOrder, abort: CancellationToken) -> bool {
        if let Err(e) = self
            .store
            .set_job_status(job, JobStatus::InProgress, None, clock::now())
            .await
        {
            error!(error = %e, "Cannot record the job's start; it does not run.");
            return false;
        }
        match order.kind {
            JobKind::Backup => info!(trigger = ?order.job.trigger, "Backup started."),
            JobKind::Restore => info!("Restore started."),
        }
        let started = Clock::System.instant();
        let ctx = JobContext {
            runtime: Arc::clone(&self.runtime),
            store: self.store.clone(),
            locks: self.locks.clone(),
            own_container: self.own_container.clone(),
            owner: self.owner.clone(),
            job,
            instance: order.instance.clone(),
            config: Arc::clone(&order.config),
            cancel: CancellationToken::new(),
            undo: Undo::new(self.store.clone(), job),
            metrics: self.metrics.clone(),
            probes: self.probes.clone(),
            sizes: self.sizes.clone(),
        };
        let deadline = order.instance.timeout;
        // A panic inside the body ends the job `failed`; the undo-work below still runs.
        let body = AssertUnwindSafe(runner::run(&ctx, order)).catch_unwind();
        tokio::pin!(body);
        let interruption = tokio::select! {
            result = &mut body => Ok(result),
            () = sleep_or_forever(deadline) => Err(interrupted(JobStatus::TimedOut, format!("the job ran longer than its timeout of {}", humantime::format_duration(deadline.unwrap_or_default())))),
            () = abort.cancelled() => Err(interrupted(JobStatus::Aborted, "Marina shut down before the job finished".to_owned())),
        };
        // A job that did not end by itself keeps the progress it recorded as it went.
        let (result, ended_by_itself) = match interruption {
            Ok(Ok(result)) => (result, true),
            Ok(Err(panic)) => (panicked(&panic_message(&*panic)), false),
            Err(result) => {
                // Let the body stop its containers itself (they are killed and removed when
                // `cancel` fires); a step that does not listen is dropped after a while.
                ctx.cancel.cancel();
                if tokio::time::timeout(STOP_WAIT, &mut body).await.is_err() {
                    warn!("A step of the interrupted job did not stop in time; it was dropped.");
                }
                (result, false)
            }
        };
        fault::point("before-undo");
        // Put back what the job changed: stopped containers, staging.
        ctx.undo.run_all(&*self.runtime).await;
        self.metrics.emit(JobFinished {
            instance: &order.instance.id,
            kind: order.kind,
            status: result.status,
            duration: started.elapsed(),
            message: &result.message,
        });
        let now = clock::now();
        if ended_by_itself
            && let Err(e) = self
                .store
                .set_job_targets(job, result.total, result.successful, now)
                .await
        {
            warn!(error = %e, "Could not record the job's target counts.");
        }
        if let Err(e) = self
            .store
            .set_job_status(job, result.status, Some(result.message.clone()), now)
            .await
        {
            error!(error = %e, "Could not record the job's outcome.");
        }
        result.status == JobStatus::Success
    }

    async fn finished(&self, order: &JobOrder, succeeded: bool) {
        let message = Message::JobFinished {
            instance: order.instance.id.clone(),
            kind: order.kind,
            succeeded,
        };
        if self.inbox.send(message).await.is_err() {
            warn!(instance = %order.instance.id, "The controller has stopped; the job's end is only in the job store.");
        }
    }
}

/// The result of a job whose body panicked, logged in the job's log.
fn panicked(message: &str) -> JobResult {
    error!(
        panic = message,
        "The job failed because Marina hit a bug (a panic); what the job changed is put back. Please report this with the job log."
    );
    JobResult {
        status: JobStatus::Failed,
        total: 0,
        successful: 0,
        message: format!("Marina hit a bug (a panic): {message}"),
    }
}

/// The text a panic was raised with (`panic!("…")` gives a `&str` or a `String`).
fn panic_message(payload: &(dyn Any + Send)) -> String {
    payload
        .downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "a panic without a message".to_owned())
}

fn interrupted(status: JobStatus, message: String) -> JobResult {
    JobResult {
        status,
        total: 0,
        successful: 0,
        message,
    }
}

async fn sleep_or_forever(deadline: Option<Duration>) {
    match deadline {
        Some(deadline) => tokio::time::sleep(deadline).await,
        None => std::future::pending().await,
    }
}
