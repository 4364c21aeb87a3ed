//! The reconciler's inbox: everything that happens reaches the one writer of the state as a
//! message. Sources (Docker watch, config watch, API) only translate; they never decide.

use std::fmt;
use std::sync::Arc;

use tokio::sync::oneshot;

use crate::config::{Config, Diagnostic};
use crate::model::{
    InstanceId, InventoryChange, JobId, JobKind, ProbeResult, Refusal, RestoreAnswer,
    RestoreQuestion,
};

/// One thing that happened. Not `Clone`: a command may carry the one reply channel its
/// caller waits on.
#[derive(Debug)]
pub enum Message {
    /// Docker reported a change (or a complete listing).
    Inventory(InventoryChange),
    /// A valid config was read (at start-up, on a file change, or on SIGHUP).
    ConfigLoaded {
        /// The new config.
        config: Arc<Config>,
        /// Warnings found while validating it.
        warnings: Vec<Diagnostic>,
    },
    /// A changed config file was invalid; the last good config stays in force.
    ConfigRejected {
        /// Every problem found, with positions.
        diagnostics: Vec<Diagnostic>,
    },
    /// An operator asked for something.
    Command(Command),
    /// The executor finished an instance's job.
    JobFinished {
        /// Whose job.
        instance: InstanceId,
        /// What it did; only backups count in the instance's history.
        kind: JobKind,
        /// Whether it did everything (`success`).
        succeeded: bool,
    },
    /// The executor looked for the dump tools in a database container (an
    /// [`Order::Probe`](super::Order::Probe)).
    DbProbed {
        /// The container looked into; a recreated container has a new id.
        container_id: String,
        /// What the tools tell, or why they could not be looked for.
        result: Result<ProbeResult, String>,
    },
}

/// Requests from operators (API, CLI).
#[derive(Debug)]
pub enum Command {
    /// Back up this instance now, unless it is already running or queued. The reconciler
    /// decides and answers on `reply`, so that of two concurrent requests exactly one wins.
    Trigger {
        /// Which instance.
        instance: InstanceId,
        /// The job record the API created for this request. Accepted, the run takes it
        /// over; refused, it stays the caller's (who deletes it).
        job: Option<JobId>,
        /// Where the decision goes; `None` when nobody waits for it.
        reply: Option<Reply>,
    },
    /// Run this restore job: its record (kind `restore`) holds the request. It waits while
    /// a job of the instance runs, so a target is never backed up and restored at once.
    Restore {
        /// Which instance.
        instance: InstanceId,
        /// The record the API created. Accepted, the run takes it over.
        job: JobId,
        /// Where the decision goes.
        reply: Reply,
    },
    /// Answer a question that needs the instance's repository or Docker (its snapshots, a
    /// restore's plan). The reconciler checks the instance and hands it to the executor.
    Ask {
        /// Which instance.
        instance: InstanceId,
        /// The question.
        question: RestoreQuestion,
        /// Where the answer goes.
        reply: AskReply,
    },
}

/// The reconciler's answer to [`Command::Trigger`] and [`Command::Restore`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TriggerAnswer {
    /// Queued; the job record (if any) now belongs to the run.
    Accepted,
    /// A job of the instance is running.
    Running,
    /// A run of the instance (of the same kind) already waits in the queue.
    Queued,
    /// No instance of that id is configured.
    NotConfigured,
    /// Marina has not seen a config and a complete Docker listing yet.
    NotReady,
}

/// The channel a [`Command::Trigger`] is answered on.
pub struct Reply(pub oneshot::Sender<TriggerAnswer>);

impl fmt::Debug for Reply {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Reply")
    }
}

/// The channel a [`Command::Ask`] is answered on.
pub struct AskReply(pub oneshot::Sender<Result<RestoreAnswer, Refusal>>);

impl AskReply {
    /// Answers; a caller that stopped waiting is no one's problem.
    pub fn send(self, answer: Result<RestoreAnswer, Refusal>) {
        let _ = self.0.send(answer);
    }
}

impl fmt::Debug for AskReply {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("AskReply")
    }
}
