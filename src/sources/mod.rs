//! Sources: each translates what happens outside Marina — edits of `config.yml`, Docker
//! events — into messages for the reconciler's inbox. A source never decides; the reconciler
//! does.
//!
//! - [`config_file`] — `config.yml` changes (and `SIGHUP`) become
//!   [`crate::reconcile::Message::ConfigLoaded`] or `ConfigRejected`.
//! - [`docker_events`] — a complete Docker listing, then changes as events arrive, with
//!   reconnect-and-relist when the engine goes away, as [`crate::reconcile::Message::Inventory`].
//!
//! Sources use the config and Docker layers through their APIs: nothing here parses YAML or
//! speaks the engine's protocol.

pub mod config_file;
pub mod docker_events;
