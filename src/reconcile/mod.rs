//! The brain: the one task that owns the state graph, decides what is due, and publishes
//! snapshots for readers.

pub mod message;

pub use message::{Command, Message};
