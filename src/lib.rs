//! Marina, a backup controller for Docker hosts.
//!
//! Marina keeps a *desired state* — backup instances from `config.yml` and targets found
//! through `dev.polarfox.marina.*` labels — and reconciles it against the *observed state*
//! of the Docker engine, running each instance's backups on its schedule.
//!
//! # Layout
//!
//! Data flows one way: sources translate what happens into messages, one reconciler decides,
//! and readers only look at what it publishes.
//!
//! ```text
//!  sources (translate)                 brain (single writer)              hands (effects)
//!  sources::docker_events ─┐                                         ┌─► executor ─► backend (restic,
//!  sources::config_file   ─┼─► inbox ─► reconcile::Controller ─ orders┘      │          custom image)
//!  clock / API            ─┘     ▲              │                             │   docker runtime, store
//!                                │              ▼ Arc<Snapshot>               │
//!                                │    http (API, metrics) · plan · store      │
//!                                └──────────── JobFinished ◄──────────────────┘
//! ```
//!
//! - [`clock`] — the only reader of time; everything else takes `now` as an argument.
//! - [`model`] — pure vocabulary shared by every stage: instance and target ids, target
//!   specs, schedules, retention, secrets, the observed inventory, and the label model
//!   ([`model::labels`]) that turns Docker labels into target intents.
//! - [`config`] — `config.yml` bytes → a validated [`config::Config`] (position-aware YAML,
//!   environment expansion, every problem with `file:line:column`); no watching, no metrics.
//! - [`docker`] — the bollard adapter, the only module that talks to the engine: listing, the
//!   event stream, and the [`docker::Runtime`] the executor acts through (exec streams,
//!   database dumps, helper and backend containers, stop/start).
//! - [`sources`] — what happens outside becomes inbox messages, without deciding anything:
//!   [`sources::config_file`] (edits of `config.yml`, `SIGHUP`) and [`sources::docker_events`]
//!   (a listing, then events, with reconnect-and-relist).
//! - [`reconcile`] — the inbox messages, the state graph, the pure `reconcile` function, the
//!   work queue, and the controller task that owns them and publishes snapshots.
//! - [`executor`] — runs the jobs the controller starts: staging, hooks, `stopAttached`,
//!   dumps, shipping, timeouts, journaled undo-work and start-up recovery.
//! - [`backend`] — where data goes: the restic backend ([`backend::restic`]: one child process
//!   per command, minimal environment, timeouts, parsed `--json`, secret-free errors) and the
//!   backup summary shared by all backends.
//! - [`http`] — health, readiness, the API and `/metrics`: state from snapshots, jobs and
//!   logs from the store, "back up now" as a command into the inbox.
//! - [`metrics`] — the Prometheus metrics of SPEC §7 in one registry: typed events that log
//!   and count in one place ([`metrics::events`]), and gauges refreshed from each snapshot.
//! - [`plan`] — `marina plan`'s table and JSON, rendered from a snapshot.
//! - [`store`] — the SQLite job store, the only module that imports rusqlite: jobs, log
//!   lines (batched by one writer thread, fed by [`store::LogLayer`] from `tracing`) and
//!   the crash journal of undo-work.
//! - [`app`] — wiring: start-up and shutdown order of `marina run`, and `marina plan`.
//! - [`telemetry`] — logging setup.
//!
//! The binary (`src/main.rs`) is the command line; it is the only place errors become exit
//! codes.

pub mod app;
pub mod backend;
pub mod clock;
pub mod config;
pub mod docker;
pub mod executor;
pub mod gauges;
pub mod http;
pub mod metrics;
pub mod model;
pub mod plan;
pub mod reconcile;
pub mod sources;
pub mod store;
pub mod telemetry;
