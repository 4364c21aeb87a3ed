//! Marina, a backup controller for Docker hosts.
//!
//! Marina keeps a *desired state* — backup instances from `config.yml` and targets found
//! through `dev.polarfox.marina.*` labels — and reconciles it against the *observed state*
//! of the Docker engine, running each instance's backups on its schedule.
//!
//! # Layout
//!
//! Data flows one way: sources translate what happens into messages, one reconciler decides,
//! and the executor acts. The modules follow that flow:
//!
//! - [`clock`] — the only reader of time; everything else takes `now` as an argument.
//! - [`model`] — pure vocabulary shared by every stage: instance and target ids, target
//!   specs, schedules, retention, secrets, and the label model ([`model::labels`]) that turns
//!   Docker labels into target intents.
//! - [`config`] — `config.yml` bytes → a validated [`config::Config`]: a position-aware YAML
//!   tree, environment expansion, and validation that reports every problem with
//!   `file:line:column`.
//!
//! The binary (`src/main.rs`) is the command line; it is the only place errors become exit
//! codes.

pub mod app;
pub mod clock;
pub mod config;
pub mod docker;
pub mod http;
pub mod model;
pub mod plan;
pub mod reconcile;
pub mod telemetry;
