//! The reconciler's inbox: everything that happens reaches the one writer of the state as a
//! message. Sources (Docker watch, config watch, API) only translate; they never decide.

use std::sync::Arc;

use crate::config::{Config, Diagnostic};
use crate::model::{InstanceId, InventoryChange};
use crate::store::JobId;

/// One thing that happened.
#[derive(Debug, Clone)]
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
        /// Whether it backed up everything (`success`).
        succeeded: bool,
    },
}

/// Requests from operators (API, CLI).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    /// Back up this instance now.
    Trigger {
        /// Which instance.
        instance: InstanceId,
        /// The job record the API already created (and answered with).
        job: Option<JobId>,
    },
}
