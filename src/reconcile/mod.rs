//! The brain: the one task that owns the state graph, decides what is due, and publishes
//! snapshots for readers.
//!
//! - [`message`] — the inbox: what sources report.
//! - [`state`] — what the reconciler knows, changed only by messages and its own decisions.
//! - [`graph`] — desired state joined with observed state (pure).
//! - [`decide`] — `reconcile(&State, now) -> Vec<Decision>` (pure).
//! - [`queue`] — due work, deduped and bounded.
//! - [`snapshot`] — the immutable view readers get.
//! - [`controller`] — the task that ties them together.

pub mod controller;
pub mod decide;
pub mod graph;
pub mod message;
pub mod queue;
pub mod snapshot;
pub mod state;
pub mod status;

#[cfg(test)]
mod scenarios;

pub use controller::{AskOrder, Controller, JobOrder, Order};
pub use decide::reconcile;
pub use message::{AskReply, Command, Message, Reply, TriggerAnswer};
pub use snapshot::Snapshot;
pub use state::State;
