//! The Docker adapter: the only module that talks to the Docker engine (through bollard).
//!
//! - [`DockerClient`] — one negotiated connection, cheap to clone; [`DockerClient::list`]
//!   reads every volume and container into a [`crate::model::Inventory`], and
//!   [`DockerClient::volume`] / [`DockerClient::container`] re-read one object after an event.
//! - [`watch`] — the Docker *source* of the reconciler's inbox: a complete listing, then
//!   changes as events arrive, with reconnect-and-relist when the engine goes away.
//!
//! Everything leaving this module is Marina's own model; bollard types stay inside.

mod client;
mod inventory;
mod watch;

pub use client::{DockerClient, DockerError, Result};
pub use watch::watch;
